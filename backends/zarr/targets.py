"""Targets and open modes: what is at a URL (missing, a store, a file), whether
a mode may open it, and opening the root group."""

from __future__ import annotations

import contextlib
import os
import zipfile
from typing import Any

import zarr
import zarr.buffer
import zarr.errors
import zarr.storage

from skelstore import rangefile as _rangefile
from skelstore.backends.zarr.groups import ZarrGroup
from skelstore.backends.zarr.session import _consolidated_is_stale, _drop_consolidated, _Session
from skelstore.backends.zarr.util import _EXISTS_ERRORS, _META_ERRORS, _quiet
from skelstore.backends.zarr.zipsink import _ZipSink
from skelstore.errors import (
    EngineError,
    FormatError,
    NotFoundError,
    SkelstoreError,
)
from skelstore.locks import WriteLock
from skelstore.staging import Staged
from skelstore.urls import (
    confirmed,
    is_chained,
    to_fs,
)

#: Names of the marker documents of a Zarr group or array (v3, then v2).
_MARKERS = frozenset({"zarr.json", ".zgroup", ".zarray"})


_ZIP_MAGIC = b"PK\x03\x04"


def _dir_state(members: set[str]) -> str:
    """State of an existing directory from the names directly inside it."""
    if not members:
        return "empty"
    return "zarr" if members & _MARKERS else "other"


def _local_state(path: str) -> str:
    """``missing``, ``file``, ``zip`` (a file with zip magic), ``empty``, ``zarr``, ``other``."""
    if os.path.isfile(path):
        try:
            with open(path, "rb") as f:
                head = f.read(4)
        except OSError:
            return "file"
        return "zip" if head == _ZIP_MAGIC else "file"
    if not os.path.isdir(path):
        return "missing" if not os.path.lexists(path) else "file"
    return _dir_state(set(os.listdir(path)))


def _remote_state(url: str, storage_options: dict[str, Any] | None) -> str:
    """Like :func:`_local_state` for an fsspec URL (no zip detection)."""
    fs, path = to_fs(url, storage_options)

    def lookup() -> str | set[str]:  # bounded in time and retried, as reads are
        if _rangefile.fs_retried(fs, "isfile", path, what=url, action="look up"):
            return "file"
        found = _rangefile.fs_retried(fs, "ls", path, detail=False, what=url, action="list")
        return {p.rstrip("/").rsplit("/", 1)[-1] for p in found}

    try:
        found = confirmed(fs, path, lookup)
    except (FileNotFoundError, NotFoundError):
        return "missing"
    except PermissionError as exc:
        raise EngineError(f"{url}: access denied ({exc})") from exc
    return found if isinstance(found, str) else _dir_state(found)


def _is_zip_url(url: str) -> bool:
    """True for ``zip::...`` and names ending in ``.zip`` (also ``memory://x.zarr.zip``,
    whose name is a URL host)."""
    chained = is_chained(url)
    last = (url.split("::")[-1] if chained else url).split("?", 1)[0].rstrip("/").lower()
    return (chained and url.startswith("zip::")) or last.endswith(".zip")


def _check_state(url: str, mode: str, state: str) -> None:
    """Refuse what ``mode`` must not do to a target in ``state`` (see ZarrEngine.open)."""
    if state == "unknown":
        return
    if mode in ("r", "r+"):
        if state == "missing":
            raise NotFoundError(f"{url}: no such file, directory or object")
        if state != "zarr":
            raise FormatError(f"{url}: not a Zarr store (no zarr.json or .zgroup)")
    elif mode in ("w-", "x"):
        if state not in ("missing", "empty"):
            raise EngineError(f"{url}: already exists (mode {mode!r})")
    elif mode == "w":
        if state in ("file", "zip", "other"):
            raise EngineError(
                f"{url}: exists and is not a Zarr store; refusing to delete it (mode 'w')"
            )
    elif mode == "a" and state in ("file", "zip", "other"):
        raise FormatError(f"{url}: not a Zarr store (no zarr.json or .zgroup)")


def _open_root(
    url: str,
    mode: str,
    store: Any,
    zarr_format: int | None,
    state: str,
    state_of: Any,
    *,
    zip_sink: _ZipSink | None = None,
    build: Staged | None = None,
    lock: WriteLock | None = None,
) -> ZarrGroup:
    """Open or create the root group in ``store`` and wrap it in a session (which
    releases ``lock``, if any, when closed)."""
    existing = state == "zarr" or mode in ("r", "r+")
    zmode = {"x": "w-", "a": "r+" if state == "zarr" else "w-"}.get(mode, mode)
    try:
        with _quiet():
            raw = None
            if mode == "r":  # format 3 first: one request, where zarr asks for both formats
                with contextlib.suppress(FileNotFoundError):
                    raw = zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=None)
            if raw is None:
                raw = zarr.open_group(
                    store,
                    mode=zmode,
                    zarr_format=None if existing else (zarr_format or 3),
                    use_consolidated=None if mode == "r" else False,
                )
    except SkelstoreError:
        raise
    except (FileExistsError, *_EXISTS_ERRORS) as exc:
        if zmode == "w-":
            raise EngineError(f"{url}: already exists (mode {mode!r})") from exc
        raise FormatError(f"{url}: holds a Zarr array, not a group") from exc
    except PermissionError as exc:
        raise EngineError(f"{url}: access denied ({exc})") from exc
    except (FileNotFoundError, NotADirectoryError, zipfile.BadZipFile, *_META_ERRORS) as exc:
        if state_of() == "missing":
            raise NotFoundError(f"{url}: no such file, directory or object") from None
        raise FormatError(f"{url}: not a Zarr store ({exc})") from exc
    except OSError as exc:  # a damaged zip makes zipfile seek to impossible offsets
        if "zip" not in url.lower():
            raise EngineError(f"{url}: cannot read the store ({exc})") from exc
        raise FormatError(f"{url}: not a readable .zarr.zip ({exc})") from exc
    # A zip is written in one go and not changed in place, and fsspec's zip
    # filesystem lists nested prefixes wrongly: its document is trusted as is.
    is_zip = _is_zip_url(url)
    writable = mode != "r"
    # an existing store is left as it is until the first write (a refused or idle
    # writer changes nothing); a new or emptied one has been written already
    untouched = existing and mode in ("r+", "a")
    session = _Session(
        source=url,
        store=raw.store,
        writable=writable,
        owner=True,
        zarr_format=int(raw.metadata.zarr_format),
        zip_sink=zip_sink,
        build=build,
        lock=lock,
        dirty=not untouched,
    )
    session.nodes[raw.path] = raw
    if mode == "r" and not is_zip and raw.metadata.consolidated_metadata is not None:
        # written by another tool since? checked when first listing or missing a member
        session.stale_check = lambda: _consolidated_is_stale(raw)
    if writable and untouched and zip_sink is None:
        session.set_first_write(lambda: _drop_consolidated(raw, session))
    return ZarrGroup(raw, session, root=True)
