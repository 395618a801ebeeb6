"""The HDF5 engine: guessing, opening (local, remote read, remote write) and
wrapping (:class:`HDF5Engine`)."""

from __future__ import annotations

from typing import Any

import h5py

from skelstore.backends.hdf5.encoding import FILE_KWARGS, limit_metadata_cache
from skelstore.backends.hdf5.errors import h5_errors
from skelstore.backends.hdf5.files import _OPEN_ON_FILE_OBJECTS, _open_local, _open_local_root
from skelstore.backends.hdf5.groups import HDF5Group
from skelstore.errors import (
    EngineError,
    NotFoundError,
    RemoteAccessError,
    RemoteError,
    WriteError,
)
from skelstore.rangefile import RangeCacheFile, call_with_retries, fs_call, fs_retried
from skelstore.staging import Staged
from skelstore.storage import (
    Engine,
    Probe,
)
from skelstore.urls import confirmed, invalidate, is_local, to_fs

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


#: HDF5 looks for its superblock at 0 and at every power of two from 512 on.
_MAGIC_OFFSETS = (0, 512, 1024, 2048)


class HDF5Engine(Engine):
    """Entry point of the HDF5 engine."""

    name = "hdf5"
    suffixes = (".h5", ".hdf5", ".hdf")

    def sniff(self, probe: Probe) -> bool:
        head = probe.head or b""
        return any(head[o : o + 8] == HDF5_MAGIC for o in _MAGIC_OFFSETS)

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, h5py.Group)

    def wrap(self, obj: Any) -> HDF5Group:
        return HDF5Group(obj, obj.file.filename)

    def open(
        self,
        url: str,
        mode: str,
        *,
        storage_options: dict[str, Any] | None = None,
        allow_external: bool = False,
    ) -> HDF5Group:
        if is_local(url):
            return _open_local_root(url, mode, allow_external)
        fs, path = to_fs(url, storage_options)
        if mode == "r":
            return self._open_remote_read(fs, path, url, allow_external)
        return self._open_remote_write(fs, path, url, mode, storage_options)

    def _open_remote_read(
        self, fs: Any, path: str, url: str, allow_external: bool = False
    ) -> HDF5Group:
        """Read through a :class:`~skelstore.rangefile.RangeCacheFile`: the whole
        object at once when small, else metadata blocks plus exact chunk ranges."""

        def size_of() -> int | None:  # transient failures are retried; the rest typed
            return call_with_retries(lambda t: fs_call(fs, "size", path, timeout=t), url)

        try:
            try:
                size = size_of()
            except NotFoundError:  # perhaps from a listing cached before it was written
                invalidate(fs, path)
                size = size_of()
        except RemoteAccessError as exc:
            raise EngineError(f"{url}: access denied ({exc})") from exc
        if size is None:
            raise NotFoundError(f"{url}: no such object")
        fobj = RangeCacheFile(fs, path, size=size, url=url)
        try:
            with h5_errors(url, "not an HDF5 file", catch=(OSError,)):
                f = h5py.File(fobj, "r", **FILE_KWARGS)
                limit_metadata_cache(f)
        except BaseException:
            fobj.close()
            raise
        root = HDF5Group(
            f, url, owner=True, finalize=fobj.close, rangefile=fobj, allow_external=allow_external
        )
        _OPEN_ON_FILE_OBJECTS.add(root)
        return root

    def _open_remote_write(
        self, fs: Any, path: str, url: str, mode: str, storage_options: dict[str, Any] | None
    ) -> HDF5Group:
        """Write to a local staged copy (:class:`~skelstore.staging.Staged`; the
        object downloaded first for ``r+``/``a``), uploaded as one object on close.
        Every request is bounded in time and retried as reads are (RetryPolicy)."""
        exists = confirmed(
            fs, path, lambda: fs_retried(fs, "exists", path, what=url, action="look up")
        )
        if mode in ("w-", "x") and exists:
            raise EngineError(f"{url}: already exists (mode {mode!r})")
        if mode == "r+" and not exists:
            raise NotFoundError(f"{url}: no such object")
        staged = Staged(url, storage_options, suffix=".h5")
        try:
            if exists and mode in ("r+", "a"):
                size = fs_retried(fs, "size", path, what=url, action="look up")
                fs_retried(fs, "get_file", path, staged.path, what=url, action="download",
                           nbytes=size)  # fmt: skip
            f = _open_local(staged.path, "a" if mode in ("r+", "a") else "w", url)
        except BaseException:
            staged.discard()
            raise

        def publish(ok: bool) -> None:
            if not ok:
                staged.discard()
                return
            try:
                staged.publish()
            except (WriteError, RemoteError, NotFoundError) as exc:  # upload failed: keep it
                kept = staged.keep()
                raise WriteError(
                    f"{exc}; the written file is kept at {kept}", path=url, errno=exc.errno
                ) from exc

        return HDF5Group(f, url, owner=True, publish=publish)
