"""Which dumps a corpus run covers: glob expansion and destination names.

A source is a path or fsspec URL, kept as it is (even when it does not exist:
that file's task then reports it), or a glob, expanded to what it matches:

* ``*``, ``?`` and ``[...]`` match within one path component, ``**`` across
  components (local globs: :func:`glob.glob` with ``recursive=True``; URLs:
  the protocol's fsspec ``glob``). On ``http(s)://`` only ``*`` and ``[`` are
  glob characters (``?`` starts the query).
* A match is kept if it is a file, or a directory whose name ends in ``.zarr``
  (a Zarr store). Other directories are skipped (they hold dumps, they are not
  dumps), and so is everything inside a ``.zarr`` store, so ``dumps/*.zarr``
  and ``dumps/**`` list stores, never their inner files.
* Names starting with a dot are never matched (as in the shell): staging copies
  of a conversion in progress stay out.
* Matches are sorted; a source listed twice is run once (first place kept).
* A glob that matches nothing raises :class:`~skelstore.errors.NotFoundError`.
"""

from __future__ import annotations

import glob as _glob
import os
import re
from collections.abc import Iterable
from typing import Any

from skelstore.errors import EngineError, NotFoundError
from skelstore.urls import is_local, local_path, protocol, split_suffix, to_fs

__all__ = ["destination_for", "expand_sources", "is_glob"]

_MAGIC = re.compile(r"[*?\[]")
_MAGIC_HTTP = re.compile(r"[*\[]")

#: Name endings of the stores that are directories.
_STORE_DIR_SUFFIXES = (".zarr",)

#: Destination name ending per engine.
_ENGINE_SUFFIX = {"zarr": ".zarr", "hdf5": ".h5"}


def is_glob(source: str) -> bool:
    """True if ``source`` holds glob characters (in its last URL of a chain)."""
    last = source.split("::")[-1]
    magic = _MAGIC_HTTP if protocol(last) in ("http", "https") else _MAGIC
    path = last.split("://", 1)[-1]
    return bool(magic.search(path))


def _inside_store(parts: list[str]) -> bool:
    """True if any ancestor component of a match is a Zarr store directory."""
    return any(p.lower().endswith(_STORE_DIR_SUFFIXES) for p in parts[:-1])


def _keep(path: str, is_dir: bool) -> bool:
    parts = [p for p in path.replace(os.sep, "/").split("/") if p]
    if not parts or parts[-1].startswith(".") or _inside_store(parts):
        return False
    return not is_dir or parts[-1].lower().endswith(_STORE_DIR_SUFFIXES)


def _expand_local(pattern: str) -> list[str]:
    prefix = "file://" if pattern.startswith("file://") else ""
    path = local_path(pattern)
    out = []
    for match in _glob.glob(path, recursive=True):
        if _keep(match, os.path.isdir(match)):
            out.append(prefix + match)
    return sorted(out)


def _expand_remote(pattern: str, storage_options: dict[str, Any] | None) -> list[str]:
    chain, sep, last = pattern.rpartition("::")
    head = chain + sep
    fs, path = to_fs(last, storage_options)
    found = fs.glob(path, detail=True)
    out = []
    for p, info in found.items():
        if _keep(p, info.get("type") == "directory"):
            out.append(head + fs.unstrip_protocol(p))
    return sorted(out)


def expand_sources(
    sources: str | Iterable[str], storage_options: dict[str, Any] | None = None
) -> list[str]:
    """The dumps ``sources`` name: plain paths and URLs as given, globs expanded.

    Args:
        sources: one source or several; each a path, an fsspec URL or a glob of
            either (``dumps/*.h5``, ``s3://bucket/dumps/**/*.zarr``).
        storage_options: fsspec options for listing remote globs.

    Returns:
        The sources in order (each glob's matches sorted), without duplicates.

    Raises:
        NotFoundError: a glob matches nothing.
        MissingDependencyError: a remote glob's filesystem is not installed.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [os.fspath(sources)]
    out: list[str] = []
    seen: set[str] = set()
    for source in sources:
        source = os.fspath(source)
        if is_glob(source):
            last = source.split("::")[-1]
            matches = (
                _expand_local(source)
                if is_local(source)
                else _expand_remote(source, storage_options)
                if "://" in last
                else _expand_local(last)
            )
            if not matches:
                raise NotFoundError(f"{source}: the pattern matches no dump")
        else:
            matches = [source]
        for m in matches:
            if m not in seen:
                seen.add(m)
                out.append(m)
    return out


def destination_for(src: str, to_dir: str, engine: str) -> str:
    """Where ``src`` goes in ``to_dir`` when converted to ``engine``:
    ``to_dir/<stem><suffix>`` (``.zarr`` for zarr, ``.h5`` for hdf5, ``.<engine>``
    for third-party engines)."""
    base = src.rstrip("/").rsplit("/", 1)[-1]
    suffix = split_suffix(src)
    stem = base[: -len(suffix)] if suffix else base
    ext = _ENGINE_SUFFIX.get(engine, "." + engine)
    return to_dir.rstrip("/") + "/" + stem + ext


def check_distinct(pairs: list[tuple[str, str]]) -> None:
    """Refuse a plan in which two sources would be written to the same destination.

    Raises:
        EngineError: naming the first two sources that collide.
    """
    taken: dict[str, str] = {}
    for src, dst in pairs:
        key = os.path.abspath(local_path(dst)) if is_local(dst) else dst.rstrip("/")
        if key in taken:
            raise EngineError(
                f"{taken[key]} and {src} would both be converted to {dst}; "
                "convert them into different directories"
            )
        taken[key] = src
