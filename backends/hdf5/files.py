"""Opening local HDF5 files: h5py's modes, the write lock, roots on file objects."""

from __future__ import annotations

import atexit
import contextlib
import os
import weakref

import h5py

from skelstore.backends.hdf5.encoding import FILE_KWARGS, limit_metadata_cache
from skelstore.backends.hdf5.groups import HDF5Group
from skelstore.errors import (
    EngineError,
    FormatError,
    LockedError,
    NotFoundError,
)
from skelstore.locks import WriteLock, check_file_unlocked, flock_holder
from skelstore.urls import local_path

#: Roots read through Python file objects. HDF5 calls back into such an object
#: while closing; left open until interpreter teardown, that crashes the process,
#: so whatever the caller did not close is closed at exit.
_OPEN_ON_FILE_OBJECTS: weakref.WeakSet[HDF5Group] = weakref.WeakSet()


@atexit.register
def _close_file_object_roots() -> None:
    for root in list(_OPEN_ON_FILE_OBJECTS):
        with contextlib.suppress(Exception):  # best effort at exit: nothing left to tell
            root.close()


def _h5_mode(mode: str) -> str:
    return "w-" if mode == "x" else mode


#: libhdf5's rule for a file it has open, told to a refused writer.
_HDF5_RULE = "HDF5 allows one writer or any number of readers"


def _open_local(path: str, mode: str, url: str) -> h5py.File:
    """Open a local file with h5py in ``mode``. A writer first asks for libhdf5's
    own lock on an existing file (:func:`~skelstore.locks.check_file_unlocked`):
    a file another process (or this one) has open is refused before ``w`` could
    truncate it."""
    try:
        if mode in ("w", "a", "r+") and os.path.isfile(path):  # (w-/x never change a file)
            check_file_unlocked(url, path, _HDF5_RULE)
        f = h5py.File(path, _h5_mode(mode), **FILE_KWARGS)
        if mode == "r":
            limit_metadata_cache(f)
        return f
    except LockedError:
        raise
    except FileNotFoundError:
        raise NotFoundError(f"{url}: no such file") from None
    except FileExistsError:
        raise EngineError(f"{url}: already exists (mode {mode!r})") from None
    except OSError as exc:
        msg = str(exc)
        if "file signature not found" in msg or "not an HDF5 file" in msg.lower():
            raise FormatError(f"{url}: not an HDF5 file") from exc
        if "unable to lock file" in msg or "unable to truncate" in msg or "already open" in msg:
            # opened meanwhile (the check above and the open are two steps)
            holder = flock_holder(path)
            who = f" by {holder}" if holder else ""
            raise LockedError(
                f"{url}: file is in use{who}: {_HDF5_RULE} ({msg})", path=url, holder=holder
            ) from exc
        if "No such file" in msg:
            raise NotFoundError(f"{url}: no such file") from exc
        raise FormatError(f"{url}: cannot open as HDF5 ({msg})") from exc


def _open_local_root(url: str, mode: str, allow_external: bool) -> HDF5Group:
    """A local file's root; writers hold :class:`~skelstore.locks.WriteLock`, taken
    before the file is looked at."""
    path = local_path(url)
    # (h5py does not create missing directories: neither does the lock)
    lock = WriteLock.acquire(url, path, make_parents=False) if mode != "r" else None
    try:
        f = _open_local(path, mode, url)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return HDF5Group(f, url, owner=True, lock=lock, allow_external=allow_external)
