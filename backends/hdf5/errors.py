"""h5py's errors as skelstore's: what h5py raises for damaged files, and the
guard around every write (the first failed write stops the file)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from skelstore.errors import (
    FormatError,
    SkelstoreError,
    WriteError,
)
from skelstore.staging import write_error

#: What h5py raises for damaged files (corrupt metadata, failing filters, types
#: it cannot map); turned into FormatError naming the file and node.
_H5_ERRORS = (OSError, RuntimeError, ValueError, TypeError, KeyError, IndexError, OverflowError)


@contextlib.contextmanager
def h5_errors(
    where: str | Callable[[], str],
    doing: str,
    *,
    error: type[SkelstoreError] = FormatError,
    catch: tuple[type[BaseException], ...] = _H5_ERRORS,
    passing: tuple[type[BaseException], ...] = (),
) -> Iterator[None]:
    """Around a call into h5py: what h5py raises (``catch``) becomes ``error``
    with the message ``"{where}: {doing} ({exc})"``; skelstore's own errors (e.g. a
    RemoteError raised while HDF5 read) and ``passing`` go through unchanged.
    ``where`` may be a callable, called only for the message (h5py's ``.name``
    costs a library call)."""
    try:
        yield
    except SkelstoreError:
        raise
    except passing:
        raise
    except catch as exc:
        at = where() if callable(where) else where
        raise error(f"{at}: {doing} ({exc})") from exc


#: Open files whose write failed, by HDF5 file number: the error, raised again by
#: every later write and by closing the root.
_FAILED: dict[int, WriteError] = {}


def _fileno(obj: Any) -> int | None:
    """HDF5's number of the open file ``obj`` (an h5py object) belongs to."""
    try:
        return int(obj.id.fileno[0])
    except Exception:  # closed, or not an HDF5 object
        return None


def _detach(obj: Any) -> None:
    """Point the failed file's descriptor at ``/dev/null``.

    After a failed write libhdf5 still holds dirty metadata and chunks, and tries
    to write them whenever an object is released, at close and at interpreter exit;
    each attempt fails again (a traceback per dataset), close fails, and the
    library crashes at exit. With the descriptor on ``/dev/null`` those writes go
    nowhere and the file closes cleanly; the file on disk stays as the failure
    left it (as a crashed writer leaves it).
    """
    try:
        fd = obj.file.id.get_vfd_handle()
    except Exception:  # pragma: no cover - not a POSIX-file driver
        return
    if not isinstance(fd, int) or fd < 0:  # pragma: no cover
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def _sync(ds: Any) -> None:
    """Write the chunks of ``ds`` that libhdf5 still caches, now: a failed write
    then fails in the call that made it, not when libhdf5 releases the dataset
    (where its error cannot be raised, only printed)."""
    ds.id.flush()


@contextlib.contextmanager
def _writing(obj: Any, source: str) -> Iterator[None]:
    """Around every write to ``obj``'s file: refuse writes after a failed one, and
    turn a failed write (full disk, file-size limit, I/O error) into WriteError,
    detaching the file (:func:`_detach`) so that nothing more is tried."""
    key = _fileno(obj)
    failed = _FAILED.get(key) if key is not None else None
    if failed is not None:
        raise type(failed)(
            f"{source}: an earlier write failed ({failed})", path=source, errno=failed.errno
        )
    try:
        yield
    except SkelstoreError:
        raise
    except Exception as exc:
        err = write_error(source, exc)
        if err is None:
            raise
        if key is not None:
            _FAILED[key] = err
            _detach(obj)
        raise err from exc
