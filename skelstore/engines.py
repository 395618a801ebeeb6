"""The engine registry, engine guessing and :func:`open`.

Built-in engines are listed as lazy ``"module:Class"`` strings and merged with
entry points of the group ``skelstore.backends`` (third-party engines register
there); nothing is imported until an engine is needed. Guessing an engine for a
target goes: the explicit ``engine=``, then the name's suffix, then (for reading)
the target's own bytes or marker files.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
from collections.abc import Callable, Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from skelstore.config import get_options
from skelstore.errors import (
    EngineError,
    MissingDependencyError,
    NotFoundError,
    ReadOnlyError,
    RemoteAccessError,
)
from skelstore.rangefile import fs_retried
from skelstore.storage import MODES, Engine, Group, Probe
from skelstore.urls import confirmed, is_read_only, split_suffix, to_fs

__all__ = [
    "as_group",
    "get_engine",
    "guess_engine",
    "list_engines",
    "open",
    "register_open_check",
]

#: Built-in engines, in the manner of fsspec's ``known_implementations``: name ->
#: ``{"class": "module:Class", "err": what to install when its library is missing}``.
#: Entry points add more (``{"class": ...}`` only).
BUILTIN_ENGINES: dict[str, dict[str, str]] = {
    "hdf5": {"class": "skelstore.backends.hdf5:HDF5Engine", "err": "pip install h5py hdf5plugin"},
    "zarr": {
        "class": "skelstore.backends.zarr:ZarrEngine",
        "err": "pip install 'zarr>=3.1.3' numcodecs",
    },
}

_ALIASES = {"h5": "hdf5", "h5py": "hdf5", "zarr3": "zarr", "zarr2": "zarr"}


@cache
def _engine_table() -> dict[str, dict[str, str]]:
    table = {name: dict(entry) for name, entry in BUILTIN_ENGINES.items()}
    for ep in entry_points(group="skelstore.backends"):
        table.setdefault(ep.name, {"class": ep.value})
    return table


def list_engines() -> list[str]:
    """Names of every registered engine (installed or not)."""
    return sorted(_engine_table())


def get_engine(name: str) -> Engine:
    """The engine registered as ``name``.

    Raises:
        EngineError: no engine has that name (the message lists the known ones).
        MissingDependencyError: the engine's library is not installed.
    """
    if not isinstance(name, str):
        raise EngineError(f"engine must be a name such as 'hdf5' or 'zarr', not {name!r}")
    key = _ALIASES.get(name.lower(), name.lower())
    table = _engine_table()
    if key not in table:
        raise EngineError(
            f"unknown engine {name!r}; registered engines: {', '.join(sorted(table))}"
        )
    return _load_engine(key)


def _install_hint(err: str | None, missing: str) -> str:
    """What to install for the missing module ``missing``: the requirement of an
    engine's ``pip install`` hint (its ``err``) that names it (``pip install h5py``
    of ``pip install h5py hdf5plugin``), else the whole hint."""
    if not err:
        return "install it"
    words = shlex.split(err)
    if words[:2] == ["pip", "install"]:
        for requirement in words[2:]:
            name = re.split(r"[<>=!~\[;@ ]", requirement, maxsplit=1)[0]
            if name.lower().replace("-", "_") == missing.lower():
                return f"pip install {shlex.quote(requirement)}"
    return err


@cache
def _load_engine(key: str) -> Engine:
    """Import and instantiate the registered engine ``key`` (once)."""
    entry = _engine_table()[key]
    module_name, _, cls_name = entry["class"].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        top = (exc.name or "").split(".")[0]
        if top == "skelstore":  # a bug in skelstore's own modules, not a missing library
            raise
        hint = _install_hint(entry.get("err"), top)
        raise MissingDependencyError(
            f"engine {key!r} needs a library that is not installed ({exc}): {hint}"
        ) from exc
    engine = getattr(module, cls_name)()
    if not isinstance(engine, Engine):
        raise EngineError(f"{entry['class']} is not a skelstore Engine")
    return engine


def _engines() -> list[Engine]:
    out = []
    for name in list_engines():
        try:
            out.append(get_engine(name))
        except EngineError:
            continue
    return out


def _probe(url: str, storage_options: dict[str, Any] | None) -> Probe:
    """Look at a target's first bytes or directory listing, for sniffing."""
    probe = Probe(url=url, suffix=split_suffix(url))
    fs, path = to_fs(url, storage_options)

    def call(method: str, *args: Any, **kwargs: Any) -> Any:  # bounded in time, retried
        return fs_retried(fs, method, *args, what=url, action="look up", **kwargs)

    try:
        kind = confirmed(fs, path, lambda: "dir" if call("isdir", path) else call("isfile", path))
        if kind == "dir":
            found = call("ls", path, detail=False)
            probe.members = {p.rstrip("/").rsplit("/", 1)[-1] for p in found}
        elif kind:
            probe.head = bytes(call("cat_file", path, start=0, end=2048))[:2048]
        else:
            raise NotFoundError(f"{url}: no such file, directory or object")
    except FileNotFoundError:
        raise NotFoundError(f"{url}: no such file, directory or object") from None
    except RemoteAccessError as exc:
        raise EngineError(f"{url}: access denied ({exc})") from exc
    except PermissionError as exc:
        raise EngineError(f"{url}: access denied ({exc})") from exc
    return probe


#: How a guess failure tells Python callers to choose the engine (the command line
#: spells it ``--engine``).
ENGINE_HINT = "skelstore.open(..., engine=...)"


def guess_engine(
    url: str,
    mode: str = "r",
    storage_options: dict[str, Any] | None = None,
    *,
    hint: str = ENGINE_HINT,
) -> Engine:
    """Choose an engine for ``url``: by suffix first, then by sniffing its bytes.

    Sniffing only happens for modes that read an existing target.

    Args:
        url: the target.
        mode: the open mode; only reading modes sniff.
        storage_options: fsspec options for sniffing.
        hint: the argument that chooses the engine where the caller was called
            (e.g. ``"engine=..."``), named in the error message.

    Raises:
        EngineError: the engine cannot be told; the message lists the engines and
            names ``hint``.
    """
    suffix = split_suffix(url)
    engines = _engines()
    for engine in engines:
        if suffix and suffix in engine.suffixes:
            return engine
    exists_required = mode in ("r", "r+")
    probe: Probe | None = None
    if mode in ("r", "r+", "a"):
        try:
            probe = _probe(url, storage_options)
        except NotFoundError:
            if exists_required:
                raise
    if probe is not None:
        for engine in engines:
            if engine.sniff(probe):
                return engine
    known = ", ".join(f"{e.name} ({' '.join(e.suffixes)})" for e in engines)
    what = "its name or contents" if probe is not None else "its name"
    raise EngineError(
        f"{url}: cannot tell the storage engine from {what}; "
        f"choose it with {hint} (installed engines: {known})"
    )


def as_group(obj: Any) -> Group:
    """Adapt ``obj`` to a :class:`~skelstore.storage.Group`.

    ``obj`` may already be a skelstore group (returned as is), or an open
    ``h5py.File``/``h5py.Group`` or ``zarr.Group`` (wrapped, not closed by us).

    Raises:
        EngineError: no engine recognises ``obj``.
    """
    if isinstance(obj, Group):
        return obj
    for engine in _engines():
        if engine.owns(obj):
            return engine.wrap(obj)
    raise EngineError(
        f"cannot use a {type(obj).__module__}.{type(obj).__qualname__} as a dump; "
        "pass a skelstore group (skelstore.open), an h5py.File/Group or a zarr.Group"
    )


#: What every root :func:`open` opens for reading or changing (modes ``r``, ``r+``,
#: ``a``) goes through before it is handed out, in order: ``check(root, *, mode,
#: allow_incomplete)`` returns the group to hand out (the root, or a view of it) or
#: raises, and the root is then aborted (the target left as it was). The registry
#: knows nothing of dumps: the dump layer registers its completeness check
#: (:func:`skelstore.recovery.check_complete`) when ``skelstore`` is imported.
_OPEN_CHECKS: list[Callable[..., Group]] = []


def register_open_check(check: Callable[..., Group]) -> None:
    """Add ``check`` to what :func:`open` runs on the roots it opens for reading or
    changing (see :data:`_OPEN_CHECKS`); registering it again changes nothing."""
    if check not in _OPEN_CHECKS:
        _OPEN_CHECKS.append(check)


def _engine_options(url: str, engine: Engine, given: Mapping[str, Any]) -> dict[str, Any]:
    """The options of ``given`` set to a value, all of them declared by ``engine``
    (:attr:`~skelstore.storage.Engine.open_options`).

    Raises:
        EngineError: an option the engine does not declare, named with the engine.
    """
    options = {key: value for key, value in given.items() if value is not None}
    for key in options:
        if key not in engine.open_options:
            raise EngineError(f"{url}: {key}= does not apply to the {engine.name} engine")
    return options


def open(
    target: Any,
    mode: str = "r",
    *,
    engine: str | None = None,
    storage_options: dict[str, Any] | None = None,
    zarr_format: int | None = None,
    allow_incomplete: bool = False,
    allow_external: bool = False,
    untrusted: bool | None = None,
    layout: str | None = None,
    open_options: Mapping[str, Any] | None = None,
) -> Group:
    """Open a skeleton dump (or any HDF5/Zarr hierarchy) and return its root group.

    Args:
        target: a local path, an fsspec URL (``file://``, ``memory://``, ``s3://``,
            ``gs://``, ``https://``, ``zip::...``), or an already open ``h5py`` or
            ``zarr`` object (wrapped; closing it stays with you).
        mode: ``r``, ``r+``, ``w``, ``w-``/``x`` or ``a``, with h5py's meanings.
        engine: ``"hdf5"`` or ``"zarr"`` (or a third-party engine name); guessed
            from the suffix (``.h5 .hdf5 .hdf`` → hdf5; ``.zarr .zarr.zip`` → zarr)
            and, when reading, from the target's bytes if not given.
        storage_options: passed to fsspec (credentials, ``endpoint_url``, ...).
        zarr_format: 2 or 3 when creating a Zarr store (3 by default); an
            option of the Zarr engine (see ``open_options``).
        allow_incomplete: open a dump whose writer did not finish (it still
            carries the in-progress mark). Reading: only what is complete is
            shown (its complete shots; the complete rows of an ``unseg`` dump's
            tracks). Writing (``r+``, ``a``): the dump is repaired first (the
            unfinished shot is deleted), with a
            :class:`~skelstore.errors.RepairWarning` saying what went.
        allow_external: follow HDF5 external links, external raw storage and
            virtual datasets into other files (refused by default: a dump is one
            file, and a file from elsewhere could name any path on your machine).
        untrusted: first walk all of the target's metadata in a watchdog child
            process (:func:`skelstore.sandbox.check_untrusted`), so that a damaged
            or hostile file raises :class:`~skelstore.errors.FormatError` instead of
            hanging or crashing this process (libhdf5 can loop forever or allocate
            gigabytes on some damaged structures). Costs a process start (about
            half a second). ``None`` (default): on if the environment variable
            ``SKELSTORE_UNTRUSTED=1`` is set. Reading only.
        layout: ``"skelshop"`` or ``"packed"``: the layout writers use in this root
            when they are not given one (a writer's own ``layout=`` wins; a dump that
            already has a timeline keeps its own; without either, Zarr stores are
            packed and HDF5 files skelshop's). Reading detects the layout.
        open_options: the chosen engine's own options (``Engine.open_options``;
            ``zarr_format`` is one of the Zarr engine's), forwarded to its
            ``open``. Options set to ``None`` are left out; one the engine does
            not declare raises :class:`~skelstore.errors.EngineError` naming it.

    Returns:
        The root :class:`~skelstore.storage.Group`; use it as a context manager.

    Raises:
        EngineError: unknown engine, or one that cannot be guessed; an option the
            engine does not take (``zarr_format`` for HDF5).
        NotFoundError: reading a target that does not exist.
        ReadOnlyError: a mode other than ``r`` for a read-only URL (``http(s)://``).
        IncompleteDumpError: opening a dump still marked in progress, without
            ``allow_incomplete`` (the message says how many shots are intact);
            for ``r+``/``a`` the dump is left as it was.
        LockedError: another writer (this process or another) has the local
            target open for writing; for HDF5 also any open of the file by
            another process. The target is left as it was.
    """
    if mode not in MODES:
        raise EngineError(f"{target}: invalid mode {mode!r}; use one of {', '.join(MODES)}")
    from skelstore.packed import check_layout_name

    check_layout_name(layout)
    if not isinstance(target, (str, os.PathLike)):
        group = as_group(target)
        if layout is not None:
            group.requested_layout = layout
        return group
    url = os.fspath(target)
    if mode != "r" and is_read_only(url):
        raise ReadOnlyError(f"{url}: HTTP(S) URLs are read only; cannot open with mode {mode!r}")
    eng = get_engine(engine) if engine else guess_engine(url, mode, storage_options)
    given = dict(open_options or {})
    if zarr_format is not None:
        given["zarr_format"] = zarr_format
    options = _engine_options(url, eng, given)
    if untrusted is None:
        untrusted = get_options().untrusted
    if untrusted and mode == "r":
        from skelstore.sandbox import check_untrusted

        check_untrusted(
            url, engine=eng.name, storage_options=storage_options, allow_external=allow_external
        )
    if allow_external:
        options["allow_external"] = True
    root = eng.open(url, mode, storage_options=storage_options, **options)
    if layout is not None and mode != "r":
        root.requested_layout = layout
    if mode in ("w", "w-", "x"):
        return root
    opened = root
    try:
        for check in _OPEN_CHECKS:
            root = check(root, allow_incomplete=allow_incomplete, mode=mode)
    except BaseException:
        opened.abort()  # refused: leave the target as it was
        raise
    return root
