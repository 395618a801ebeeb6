"""Stage, then publish: every output is built under a temporary name and put in
place in one step, so that nobody ever sees half of it.

:class:`Staged` is one temporary local file or directory that becomes a
destination (a local path or an fsspec URL) when :meth:`Staged.publish` is
called: renamed into place beside a local destination, or uploaded to a remote
one (a directory tree with its root metadata last). Conversion, OpenPose import
and export, movement export, the HDF5 engine's remote writes and the Zarr
engine's ``.zarr.zip`` writes all go through it.

:class:`Destination` is a command's output: :func:`check_destination` first
(what is there may be replaced only if it is provably a dump, or what the command
itself writes, or an empty directory), then a :class:`Staged` copy, published
once complete and removed on any failure.

**Temporary names.** A staged name carries its owner:
``.NAME.skelstore-tmp-PID-HOST-RANDOM[SUFFIX]`` beside a local destination, and
``skelstore-tmp-PID-HOST-RANDOM/`` in the system's temporary directory for a
remote one. A process killed by SIGKILL or SIGTERM cannot remove what it staged;
the next staging for the same destination (or, in the temporary directory, any
staging) removes every such name whose owner is a dead process on this host
(:func:`sweep_stale`). Names of live processes, and of other hosts (a shared
filesystem), are left alone.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import os
import re
import secrets
import shutil
import socket
import tempfile
import warnings
import zipfile
from typing import Any

from skelstore.errors import (
    EngineError,
    OverwriteRefusedError,
    SkelstoreError,
    StorageFullError,
    WriteError,
)
from skelstore.locks import pid_alive
from skelstore.rangefile import fs_retried
from skelstore.urls import invalidate, is_local, local_path, split_suffix, to_fs

__all__ = [
    "TAG",
    "Destination",
    "Staged",
    "check_destination",
    "check_replaceable",
    "exists",
    "sweep_stale",
    "write_error",
]

#: Marks every temporary name skelstore makes.
TAG = "skelstore-tmp"
#: Marks a staged copy kept after a failed upload (never swept).
KEPT_TAG = "skelstore-kept"
#: Root metadata documents of a Zarr store: uploaded last.
_ROOT_METADATA = ("zarr.json", ".zmetadata", ".zgroup", ".zattrs")
#: Zarr metadata documents (any node).
_ZARR_DOCS = frozenset({"zarr.json", ".zgroup", ".zattrs", ".zarray", ".zmetadata"})
#: Error numbers that mean "storage cannot take more" (StorageFullError).
_FULL_ERRNOS = frozenset(
    e for e in (errno_mod.ENOSPC, getattr(errno_mod, "EDQUOT", None), errno_mod.EFBIG) if e
)
#: Error numbers of failed writes (WriteError).
_WRITE_ERRNOS = _FULL_ERRNOS | {errno_mod.EIO, errno_mod.EROFS}
_ERRNO_TEXT = re.compile(r"errno = (\d+)")


def _host() -> str:
    """This host's name as it appears in temporary names (no dots or separators)."""
    return re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())[:63] or "host"


def _tag() -> str:
    return f"{TAG}-{os.getpid()}-{_host()}-{secrets.token_hex(4)}"


_TAG_RE = re.compile(rf"{TAG}-(\d+)-([A-Za-z0-9_-]+)-[0-9a-f]{{8}}(?![0-9a-f])")


def sweep_stale(directory: str, prefix: str = "") -> list[str]:
    """Remove the temporary names in ``directory`` (starting with ``prefix``) whose
    owner is a dead process on this host; returns what was removed."""
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    host = _host()
    for name in names:
        if not name.startswith(prefix) or TAG not in name:
            continue
        m = _TAG_RE.search(name)
        if m is None or m.group(2) != host or pid_alive(int(m.group(1))):
            continue
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            _remove_local(path)
            removed.append(path)
    return removed


def _remove_local(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def write_error(target: str, exc: BaseException) -> WriteError | None:
    """The typed error for ``exc`` if it is a failed write (a full disk, a file-size
    limit, an I/O error), naming ``target``; ``None`` otherwise.

    Recognises ``OSError`` with such an ``errno`` and libhdf5's error text
    (``errno = 28``), which h5py raises as ``OSError`` or ``RuntimeError``.
    """
    if isinstance(exc, WriteError):
        return exc
    if isinstance(exc, SkelstoreError) or not isinstance(exc, (OSError, RuntimeError)):
        return None
    code = getattr(exc, "errno", None)
    if code not in _WRITE_ERRNOS:
        m = _ERRNO_TEXT.search(str(exc))
        code = int(m.group(1)) if m else None
    if code not in _WRITE_ERRNOS:
        return None
    assert code is not None
    cls = StorageFullError if code in _FULL_ERRNOS else WriteError
    return cls(
        f"{target}: write failed: {os.strerror(code)} (errno {code})", path=target, errno=code
    )


class Staged:
    """A temporary local file or directory (:attr:`path`, not created here) that
    becomes ``dst`` on :meth:`publish`.

    Beside a local ``dst`` (same filesystem: published by renaming); in the
    system's temporary directory for a remote one (published by uploading). Stale
    temporary names of dead processes are swept on creation (:func:`sweep_stale`).
    """

    def __init__(
        self,
        dst: str,
        storage_options: dict[str, Any] | None = None,
        *,
        suffix: str | None = None,
    ) -> None:
        self.dst = dst
        self.storage_options = storage_options
        self.local = is_local(dst)
        suffix = split_suffix(dst) if suffix is None else suffix
        if self.local:
            self.final = os.path.abspath(local_path(dst))
            parent = os.path.dirname(self.final)
            os.makedirs(parent, exist_ok=True)
            prefix = f".{os.path.basename(self.final)}."
            sweep_stale(parent, prefix)
            sweep_stale(parent, "." + prefix)  # the write locks of staged copies
            self.tmpdir: str | None = None
            self.path = os.path.join(parent, prefix + _tag() + suffix)
        else:
            self.final = dst
            sweep_stale(tempfile.gettempdir(), TAG)
            self.tmpdir = os.path.join(tempfile.gettempdir(), _tag())
            os.mkdir(self.tmpdir, 0o700)
            self.path = os.path.join(self.tmpdir, "staged" + suffix)

    def mkdir(self) -> str:
        """Create :attr:`path` as an empty directory; returns it."""
        os.mkdir(self.path)
        return self.path

    def publish(self) -> None:
        """Put :attr:`path` in place of ``dst``, then forget it. What is there is
        replaced (callers decide whether that is allowed): locally by renaming; a
        remote object by putting the new one over it; a staged directory is
        uploaded after everything under ``dst`` was deleted.

        Raises:
            WriteError: the rename or upload failed (:attr:`path` is kept).
        """
        if self.local:
            self._rename()
        else:
            self._upload()
        self.discard()

    def _rename(self) -> None:
        final = self.final
        backup = None
        if os.path.isdir(final) and not os.path.islink(final):
            backup = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.{_tag()}")
            os.rename(final, backup)
        try:
            os.replace(self.path, final)
        except OSError as exc:
            if backup is not None:
                with contextlib.suppress(OSError):
                    os.rename(backup, final)
            raise write_error(self.dst, exc) or WriteError(
                f"{self.dst}: cannot put the new copy in place ({exc})", path=self.dst
            ) from exc
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)

    def _upload(self) -> None:
        """Upload what was staged; every request bounded in time and retried as
        reads are (:func:`skelstore.rangefile.fs_retried`)."""
        fs, path = to_fs(self.dst, self.storage_options)
        dst = self.dst
        try:
            if os.path.isdir(self.path):
                if fs_retried(fs, "exists", path, what=dst, action="look up"):
                    fs_retried(fs, "rm", path, recursive=True, what=dst, action="delete")
                self._upload_tree(fs, path)
            else:  # one object: put over what is there (never a prefix's objects)
                fs_retried(fs, "put_file", self.path, path, what=dst, action="upload",
                           nbytes=os.path.getsize(self.path))  # fmt: skip
        except SkelstoreError:
            raise
        except Exception as exc:
            raise WriteError(f"{self.dst}: upload failed ({exc})", path=self.dst) from exc
        finally:
            invalidate(fs, path)

    def _upload_tree(self, fs: Any, path: str) -> None:
        """Upload a directory store with its root metadata last."""
        files, last = [], []
        for dirpath, _, names in os.walk(self.path):
            for n in names:
                local = os.path.join(dirpath, n)
                rel = os.path.relpath(local, self.path).replace(os.sep, "/")
                (last if rel in _ROOT_METADATA else files).append((local, f"{path}/{rel}"))
        for group in (files, last):
            if group:
                fs_retried(fs, "put", [lp for lp, _ in group], [rp for _, rp in group],
                           what=self.dst, action="upload",
                           nbytes=sum(os.path.getsize(lp) for lp, _ in group))  # fmt: skip

    def keep(self) -> str:
        """Move what was staged to a directory of its own whose name is never swept
        (``skelstore-kept-RANDOM/NAME``, beside the staging directory), to recover
        it by hand after a failed upload; returns its new path."""
        base = os.path.basename(self.final.rstrip("/")) or "staged"
        parent = os.path.dirname(self.tmpdir or os.path.dirname(self.path))
        kept_dir = os.path.join(parent, f"{KEPT_TAG}-{secrets.token_hex(4)}")
        os.mkdir(kept_dir, 0o700)
        kept = os.path.join(kept_dir, base)
        os.rename(self.path, kept)
        self.discard()
        return kept

    def discard(self) -> None:
        """Remove what was staged (idempotent)."""
        with contextlib.suppress(OSError):
            _remove_local(self.path)
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


# ---------------------------------------------------------------- what may be replaced


def _state(url: str, storage_options: dict[str, Any] | None) -> str:
    """``missing``, ``file``, ``empty`` (a directory with nothing in it) or ``dir``."""
    if is_local(url):
        path = local_path(url)
        if not os.path.lexists(path):
            return "missing"
        if not os.path.isdir(path):
            return "file"
        return "dir" if os.listdir(path) else "empty"
    fs, path = to_fs(url, storage_options)
    invalidate(fs, path)  # a listing cached earlier may predate another client's upload
    try:
        if fs_retried(fs, "isfile", path, what=url, action="look up"):
            return "file"
        members = fs_retried(fs, "ls", path, detail=False, what=url, action="look up")
    except FileNotFoundError:
        return "missing"
    except PermissionError as exc:
        raise EngineError(f"{url}: access denied ({exc})") from exc
    members = [m for m in members if m.rstrip("/") != path.rstrip("/")]
    return "dir" if members else ("empty" if fs.isdir(path) else "missing")


def exists(url: str, storage_options: dict[str, Any] | None = None) -> bool:
    """True if a file, an object or a directory (a prefix, on object stores) is at
    ``url``; an empty local directory counts. A cached listing is not trusted."""
    return _state(url, storage_options) != "missing"


def _store_keys(url: str, storage_options: dict[str, Any] | None) -> list[str]:
    """Every file under the directory or prefix ``url``, relative to it."""
    if is_local(url):
        base = local_path(url)
        out = []
        for dirpath, _, names in os.walk(base):
            for n in names:
                out.append(os.path.relpath(os.path.join(dirpath, n), base).replace(os.sep, "/"))
        return out
    fs, path = to_fs(url, storage_options)
    base = path.rstrip("/") + "/"
    return [p[len(base) :] for p in fs.find(path) if p.startswith(base)]


def _tree(root: Any) -> tuple[set[str], set[str]]:
    """``(groups, arrays)``: the paths (relative, ``""`` for the root) of a tree."""
    from skelstore.storage import Group

    groups, arrays = {""}, set()
    stack = [root]
    while stack:
        group = stack.pop()
        for _, child in group.items():
            rel = child.path.strip("/")
            if isinstance(child, Group):
                groups.add(rel)
                stack.append(child)
            else:
                arrays.add(rel)
    return groups, arrays


def _foreign_key(keys: list[str], groups: set[str], arrays: set[str]) -> str | None:
    """The first key that is not part of the tree (a metadata document of a group,
    or anything inside an array), or ``None``."""
    for key in keys:
        parts = key.split("/")
        ok = False
        for i in range(len(parts)):
            node = "/".join(parts[:i])
            if node in arrays:  # chunks, shards and documents of an array
                ok = True
                break
            if node not in groups:
                break
            if i == len(parts) - 1:  # a file directly in a group: its documents only
                ok = parts[-1] in _ZARR_DOCS
        if not ok:
            return key
    return None


def _identify(url: str, storage_options: dict[str, Any] | None, accept: str, state: str) -> str:
    """Why ``url`` (a file or a non-empty directory) may not be replaced under
    ``accept``, or ``""`` if it may."""
    from skelstore.engines import open as open_store
    from skelstore.face import FACES

    if accept == "file":
        return "" if state == "file" else "a directory"
    if accept == "openpose-zip":
        if state != "file":
            return "not a zip of OpenPose JSON files"
        try:
            fs, path = to_fs(url, storage_options)
            with fs.open(path, "rb") as f, zipfile.ZipFile(f) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            return f"not a zip file ({exc})"
        if not all(n.endswith("_keypoints.json") for n in names):
            return "a zip holding files other than OpenPose *_keypoints.json"
        return ""
    engine = None
    if accept == "movement":
        engine = "hdf5" if state == "file" else "zarr"
    try:
        root = open_store(url, "r", engine=engine, storage_options=storage_options,
                          allow_incomplete=True)  # fmt: skip
    except SkelstoreError as exc:
        detail = str(exc).removeprefix(f"{url}: ")
        if isinstance(exc, EngineError) and "cannot tell the storage engine" in detail:
            detail = "neither an HDF5 file nor a Zarr store"
        return f"not a readable {'dataset' if accept == 'movement' else 'dump'} ({detail})"
    with root:
        if accept == "movement":
            if root.attrs.get("ds_type") != "poses":
                return "not a movement poses dataset"
        elif "fmt_type" not in root.attrs and FACES not in root:
            return "not a skeleton or face dump (no fmt_type attribute, no /faces)"
        if state == "dir":
            groups, arrays = _tree(root)
            foreign = _foreign_key(_store_keys(url, storage_options), groups, arrays)
            if foreign is not None:
                return f"a store that also holds {foreign!r}, which is not part of it"
    return ""


_WHAT = {
    "dump": "a skeleton dump",
    "movement": "a movement dataset",
    "openpose-zip": "a zip of OpenPose JSON files",
    "file": "a single file",
}


def check_replaceable(
    url: str, storage_options: dict[str, Any] | None = None, *, accept: str = "dump"
) -> None:
    """Raise :class:`~skelstore.errors.OverwriteRefusedError` unless what is at
    ``url`` may be replaced by a command writing ``accept`` there.

    Replaceable: nothing; an empty directory; a file or store that is provably
    ``accept``: ``"dump"``, a skeleton or face dump skelstore reads (an unfinished
    one too); ``"movement"``, a movement poses dataset (``ds_type = "poses"``);
    ``"openpose-zip"``, a zip of ``*_keypoints.json`` files only; ``"file"``, any
    single file (for commands that write one file of a format of their own, which
    check its suffix themselves). A directory or
    prefix must hold nothing but that store's own keys.
    """
    if accept not in _WHAT:
        raise ValueError(f"accept must be one of {', '.join(_WHAT)}, not {accept!r}")
    state = _state(url, storage_options)
    if state in ("missing", "empty"):
        return
    with warnings.catch_warnings():  # zarr's about objects foreign to a store: said below
        warnings.simplefilter("ignore")
        why = _identify(url, storage_options, accept, state)
    if why:
        raise OverwriteRefusedError(
            f"{url}: exists and is {why}; overwriting replaces only {_WHAT[accept]} (or an "
            "empty directory): nothing was deleted; remove it yourself or choose another "
            "destination",
            path=url,
        )


def check_destination(
    dst: str,
    storage_options: dict[str, Any] | None = None,
    *,
    overwrite: bool,
    accept: str = "dump",
) -> None:
    """Refuse a destination a command must not write: one that exists without
    ``overwrite`` (:class:`~skelstore.errors.EngineError`), or one that ``overwrite``
    may not replace (:func:`check_replaceable`)."""
    if overwrite:
        check_replaceable(dst, storage_options, accept=accept)
    elif _state(dst, storage_options) != "missing":
        raise EngineError(f"{dst}: already exists (pass overwrite=True)")


def name_destination(exc: BaseException, staged: str, dst: str) -> None:
    """Make ``exc``, raised while writing or checking the staged copy at ``staged``,
    name the destination the user gave (``dst``) instead of the staging name (in
    place: its message and, for an ``OSError``, its file name)."""
    if isinstance(exc, OSError) and isinstance(exc.filename, str) and staged in exc.filename:
        exc.filename = exc.filename.replace(staged, dst)
    if exc.args and isinstance(exc.args[0], str) and staged in exc.args[0]:
        exc.args = (exc.args[0].replace(staged, dst), *exc.args[1:])


class Destination:
    """A command's output: checked (:func:`check_destination`), staged
    (:attr:`path`), and published by :meth:`publish` after a second check (nothing
    new may have appeared meanwhile). Used as a context manager: any failure
    removes what was staged, and a :class:`~skelstore.errors.WriteError` about the
    staged copy names ``dst`` instead."""

    def __init__(
        self,
        dst: str,
        storage_options: dict[str, Any] | None = None,
        *,
        overwrite: bool,
        accept: str = "dump",
        suffix: str | None = None,
    ) -> None:
        self.dst = dst
        self.storage_options = storage_options
        self.overwrite = overwrite
        self.accept = accept
        check_destination(dst, storage_options, overwrite=overwrite, accept=accept)
        self._suffix = suffix
        self._staged: Staged | None = None

    @property
    def path(self) -> str:
        """The local path to write (made on first use)."""
        if self._staged is None:
            self._staged = Staged(self.dst, self.storage_options, suffix=self._suffix)
        return self._staged.path

    def publish(self) -> None:
        """Put the staged copy in place of ``dst``."""
        check_destination(
            self.dst, self.storage_options, overwrite=self.overwrite, accept=self.accept
        )
        if self._staged is not None:
            self._staged.publish()

    def discard(self) -> None:
        if self._staged is not None:
            self._staged.discard()

    def __enter__(self) -> Destination:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            return
        self.discard()
        staged = self._staged.path if self._staged is not None else None
        if staged:
            name_destination(exc, staged, self.dst)
        err = write_error(self.dst, exc) if isinstance(exc, Exception) else None
        if err is not None and staged and (err is not exc or staged in str(exc)):
            renamed = type(err)(str(err).replace(staged, self.dst), path=self.dst, errno=err.errno)
            raise renamed from exc
