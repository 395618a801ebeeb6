"""The Zarr engine: guessing, opening and wrapping (:class:`ZarrEngine`)."""

from __future__ import annotations

from typing import Any

import zarr
import zarr.buffer
import zarr.errors
import zarr.storage

from skelstore.backends.zarr.groups import ZarrGroup
from skelstore.backends.zarr.session import _Session
from skelstore.backends.zarr.stores import _ConfinedLocalStore, _RetryingStore
from skelstore.backends.zarr.targets import (
    _ZIP_MAGIC,
    _check_state,
    _is_zip_url,
    _local_state,
    _open_root,
    _remote_state,
)
from skelstore.backends.zarr.zipsink import _ZipSink
from skelstore.config import codec_threads
from skelstore.errors import (
    EngineError,
    FormatError,
    NotFoundError,
)
from skelstore.locks import WriteLock
from skelstore.storage import (
    MODES,
    Engine,
    Probe,
)
from skelstore.urls import (
    is_chained,
    is_local,
    local_path,
    protocol,
    to_fs,
    with_defaults,
)


def size_zarr_thread_pool() -> None:
    """zarr compresses and decompresses chunks on a thread pool it makes once,
    the first time it runs; unless zarr's own ``threading.max_workers`` says how
    large, make it skelstore's ``threads`` setting
    (:func:`skelstore.config.codec_threads`). Python's default, CPUs + 4 threads,
    only competes for the CPUs with the thread that reads or writes the dump, and
    each thread keeps its own memory arena (docs/performance.md)."""
    if zarr.config.get("threading.max_workers", None) is None:
        zarr.config.set({"threading.max_workers": codec_threads()})


class ZarrEngine(Engine):
    """Entry point of the Zarr engine (directory stores, fsspec URLs, ``.zarr.zip``)."""

    name = "zarr"
    suffixes = (".zarr.zip", ".zarr")
    open_options = frozenset({"zarr_format"})

    def sniff(self, probe: Probe) -> bool:
        if probe.members & {"zarr.json", ".zgroup"}:
            return True
        head = probe.head or b""
        return head.startswith(_ZIP_MAGIC) and probe.suffix.endswith(".zip")

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, zarr.Group)

    def wrap(self, obj: Any) -> ZarrGroup:
        """Adapt an open ``zarr.Group``; its store stays the caller's to close."""
        size_zarr_thread_pool()
        store = obj.store
        session = _Session(
            source=str(store),
            store=store,
            writable=not store.read_only,
            owner=False,
            zarr_format=int(obj.metadata.zarr_format),
        )
        session.nodes[obj.path] = obj
        return ZarrGroup(obj, session)

    def open(
        self,
        url: str,
        mode: str = "r",
        *,
        storage_options: dict[str, Any] | None = None,
        allow_external: bool = False,
        zarr_format: int | None = None,
    ) -> ZarrGroup:
        """Open ``url`` in ``mode`` (h5py's meanings) and return its root group.

        ``allow_external`` has no effect: a Zarr store cannot point outside itself
        (path-traversing keys are refused either way).

        ``zarr_format`` (2 or 3, default 3) applies when a store is created; an
        existing store keeps its own format.

        Raises:
            NotFoundError: ``r``/``r+`` on a missing target.
            EngineError: ``w-``/``x`` on an existing target; ``w`` on something that
                is not a Zarr store (it is never deleted); access denied.
            FormatError: the target exists but is not a Zarr group.
        """
        if mode not in MODES:
            raise EngineError(f"{url}: invalid mode {mode!r}; use one of {', '.join(MODES)}")
        if zarr_format not in (None, 2, 3):
            raise EngineError(f"{url}: zarr_format must be 2 or 3, not {zarr_format!r}")
        size_zarr_thread_pool()
        if _is_zip_url(url):
            return self._open_zip(url, mode, storage_options, zarr_format)
        if is_local(url):
            path = local_path(url)
            state = _local_state(path)
            if state == "zip" and mode in ("r", "r+", "a"):
                return self._open_zip(url, mode, storage_options, zarr_format)
            if mode == "r":
                _check_state(url, mode, state)
            # writers take the lock before judging the target: another writer may be
            # half-way through creating it (a directory without zarr.json yet)
            lock = WriteLock.acquire(url, path) if mode != "r" else None
            try:
                if lock is not None:  # as it is now that nobody else writes
                    state = _local_state(path)
                    _check_state(url, mode, state)
                store = _ConfinedLocalStore(path, read_only=mode == "r", url=url)
                return _open_root(
                    url, mode, store, zarr_format, state, lambda: _local_state(path), lock=lock
                )
            except BaseException:
                if lock is not None:
                    lock.release()
                raise

        def state_of() -> str:
            return _remote_state(url, storage_options)

        state = "unknown" if mode == "r" else state_of()
        _check_state(url, mode, state)
        try:
            store = zarr.storage.FsspecStore.from_url(
                url, storage_options=with_defaults(url, storage_options), read_only=mode == "r"
            )
        except (ImportError, ValueError) as exc:
            to_fs(url, storage_options)  # raises MissingDependencyError / EngineError if that is it
            raise EngineError(f"{url}: cannot open ({exc})") from exc
        return _open_root(url, mode, _RetryingStore(store, url), zarr_format, state, state_of)

    def _open_zip(
        self,
        url: str,
        mode: str,
        storage_options: dict[str, Any] | None,
        zarr_format: int | None,
    ) -> ZarrGroup:
        inner = url.removeprefix("zip::") if is_chained(url) else url
        sink = _ZipSink(url, inner, storage_options)
        exists = sink.exists()
        if exists and not sink.is_file():
            if mode in ("r", "r+", "a"):
                raise FormatError(f"{url}: is a directory, not a .zarr.zip file")
            raise EngineError(f"{url}: is a directory, not a .zarr.zip file; not replacing it")
        if mode in ("r", "r+") and not exists:
            raise NotFoundError(f"{url}: no such file or object")
        if mode in ("w-", "x") and exists:
            raise EngineError(f"{url}: already exists (mode {mode!r})")

        if mode == "r":
            if sink.local:
                store: Any = zarr.storage.ZipStore(sink.dest, mode="r")
            else:
                opts = storage_options or {}
                inner_proto = protocol(inner)
                if opts and inner_proto not in opts:
                    opts = {inner_proto: opts}
                store = _RetryingStore(
                    zarr.storage.FsspecStore.from_url(
                        "zip::" + inner, storage_options=opts, read_only=True
                    ),
                    url,
                )
            return _open_root(url, "r", store, zarr_format, "unknown", lambda: "file")

        # one writer at a time for a local zip (the zip itself is replaced whole)
        lock = WriteLock.acquire(url, sink.dest) if sink.local else None
        try:
            exists = sink.exists()
            if mode in ("w-", "x") and exists:
                raise EngineError(f"{url}: already exists (mode {mode!r})")
            build = sink.build_dir()
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        try:
            extend = exists and mode in ("r+", "a")
            if extend:
                sink.extract_to(build.path)
            store = zarr.storage.LocalStore(build.path)
            root = _open_root(
                url,
                "r+" if extend else "w-",
                store,
                zarr_format,
                "zarr" if extend else "empty",
                lambda: "file",
                zip_sink=sink,
                build=build,
                lock=lock,
            )
        except BaseException:
            build.discard()
            if lock is not None:
                lock.release()
            raise
        return root
