"""One opened hierarchy's shared state (:class:`_Session`): open mode, write lock,
failed-write guard, node cache, consolidation on close."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import zarr
import zarr.buffer
import zarr.errors
import zarr.storage

from skelstore.backends.zarr import compat
from skelstore.backends.zarr.util import _join, _quiet
from skelstore.backends.zarr.zipsink import _ZipSink
from skelstore.errors import (
    ClosedError,
    EngineError,
    SkelstoreError,
    WriteError,
)
from skelstore.locks import WriteLock
from skelstore.staging import Staged, write_error


class _Session:
    """State shared by every node of one opened (or wrapped) hierarchy.

    ``nodes`` maps zarr paths to the one zarr object used for each node during the
    session, so that attributes and shapes changed through one handle are seen
    through every other (zarr objects hold their metadata in memory).

    The first failed write (:meth:`writing`) is kept in ``failed``: every later
    write raises it again, and :meth:`close` neither consolidates nor publishes.

    ``dirty``: something was written in this session (a new store always is).
    An existing store opened for writing is left byte for byte as it was until
    the first write: only then is its consolidated metadata dropped
    (``first_write``), and only a dirty session consolidates (or publishes a zip)
    on close.
    """

    def __init__(
        self,
        *,
        source: str,
        store: Any,
        writable: bool,
        owner: bool,
        zarr_format: int,
        zip_sink: _ZipSink | None = None,
        build: Staged | None = None,
        lock: WriteLock | None = None,
        dirty: bool = True,
    ) -> None:
        self.source = source
        self.dirty = dirty
        self._first_write: Any = None
        self.store = store
        self.writable = writable
        self.owner = owner
        self.zarr_format = zarr_format
        self.zip_sink = zip_sink
        self.build = build
        self.nodes: dict[str, Any] = {}
        #: Checks consolidated metadata against the store's listings, once: when a
        #: group is first listed or a member is missed (see :meth:`check_stale`).
        self.stale_check: Any = None
        self.stale = False
        self._fresh: dict[str, Any] = {}
        self.closed = False
        self.failed: WriteError | None = None
        #: Writes started and not yet waited for (:meth:`ZarrGroup.start_set_many`):
        #: :meth:`close` waits for them, so nothing is written after it.
        self.pending: set[concurrent.futures.Future[Any]] = set()
        self._close_lock = threading.Lock()
        self._cleanup = weakref.finalize(self, build.discard) if build is not None else None
        # a root dropped without close() still lets the next writer in
        self.lock = lock
        self._unlock = weakref.finalize(self, lock.release) if lock is not None else None

    def set_first_write(self, action: Any) -> None:
        """Run ``action()`` before the session's first write."""
        self._first_write = action

    def check_open(self) -> None:
        if self.closed:
            raise EngineError(f"{self.source}: the store has been closed")

    def check_write_state(self) -> None:
        """Refuse a write to a closed root (ClosedError) or after a failed write (that
        error again)."""
        if self.closed:
            raise ClosedError(f"{self.source}: the dump has been closed; cannot write to it")
        if self.failed is not None:
            raise type(self.failed)(
                f"{self.source}: an earlier write failed ({self.failed})",
                path=self.source,
                errno=self.failed.errno,
            )

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around every write: run ``first_write`` once, and turn a failed write
        (full disk, I/O error) into WriteError, remembered."""
        try:
            if not self.dirty:
                self.dirty = True
                if self._first_write is not None:
                    self._first_write()
            yield
        except SkelstoreError:
            raise
        except Exception as exc:
            err = write_error(self.source, exc)
            if err is None:
                raise
            self.failed = self.failed or err
            _settle_pending_writes()
            raise err from exc

    def wait_for(self, future: concurrent.futures.Future[Any]) -> Any:
        """The result of a write started on zarr's event loop, inside
        :meth:`writing` (a failed write is remembered)."""
        try:
            with _quiet(), self.writing():
                return future.result()
        finally:
            self.pending.discard(future)

    def check_stale(self) -> bool:
        """True if the consolidated metadata was found stale (checked once, on first
        need: reading members by name costs no listing)."""
        if self.stale_check is not None:
            check, self.stale_check = self.stale_check, None
            self.stale = bool(check())
            if self.stale:
                self.nodes.clear()
        return self.stale

    def fresh_group(self, path: str) -> Any:
        """The group at ``path`` opened without consolidated metadata."""
        grp = self._fresh.get(path)
        if grp is None:
            with _quiet():
                grp = zarr.open_group(self.store, path=path, mode="r", use_consolidated=False)
            self._fresh[path] = grp
        return grp

    def close(self, ok: bool = True, *, finish: bool = True) -> None:
        """Consolidate metadata (writable roots), release the store, publish a zip.

        After a failed write, or without ``finish``, nothing is consolidated or
        published (a zip's build directory is removed); a failure is raised if
        ``ok`` (no other error is on its way out)."""
        with self._close_lock:  # two threads closing: one does the work
            if self.closed or not self.owner:
                return
            self.closed = True
        failure: WriteError | None = self.failed
        for future in list(self.pending):
            try:
                self.wait_for(future)
            except WriteError as exc:
                failure = failure or exc
            except Exception as exc:  # a write nobody waited for: the dump is not whole
                failure = failure or WriteError(
                    f"{self.source}: a write failed ({exc})", path=self.source
                )
        if not finish:
            self.dirty = False
        try:
            if self.writable and failure is None and self.dirty:
                try:
                    with _quiet(), self.writing():
                        zarr.consolidate_metadata(self.store, zarr_format=self.zarr_format)
                except WriteError as exc:
                    failure = exc
            with contextlib.suppress(Exception):
                self.store.close()
            if (
                self.zip_sink is not None
                and self.build is not None
                and failure is None
                and self.dirty
            ):
                self.zip_sink.publish(self.build.path)
        finally:
            if self._cleanup is not None:
                self._cleanup()
            if self._unlock is not None:
                self._unlock()  # the lock goes last: nothing is written after it
        if failure is not None and ok:
            raise failure


#: How long a failed write waits for its sibling writes still in flight.
SETTLE_SECONDS = 30.0


def _settle_pending_writes() -> None:
    """After a failed write, wait (at most :data:`SETTLE_SECONDS`) for every task
    still running on zarr's event loop, and take their errors.

    zarr writes a chunk's siblings concurrently; when one fails, the others are
    left running. Waiting for them means nothing is written behind the failure's
    back, and their errors (a full disk fails them all) are not reported as
    "exception was never retrieved" tracebacks when the process exits. The loop is
    zarr's one for the whole process: tasks of other roots in other threads are
    waited for too (their results stay theirs; only errors of finished tasks are
    marked as seen).
    """
    if not compat.has_sync():  # pragma: no cover - zarr without its sync helper
        return

    async def settle() -> None:
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=SETTLE_SECONDS)
        for task in pending:
            if task.done() and not task.cancelled():
                task.exception()  # taken: not reported at exit

    compat.run(settle())


_METADATA_KEYS = frozenset({"zarr.json", ".zgroup", ".zattrs", ".zarray", ".zmetadata"})


def _consolidated_is_stale(raw: Any) -> bool:
    """True if ``raw``'s consolidated metadata disagrees with the store's listing.

    Checks the members of the root and of each group directly under it (one
    concurrent LIST each): a store that another tool changed without
    re-consolidating (an added or removed shot or top-level group) is caught. A
    store that cannot be listed (plain HTTP) is trusted.
    """
    cm = raw.metadata.consolidated_metadata
    if cm is None:
        return False
    levels: list[tuple[str, set[str]]] = [("", set(cm.metadata))]
    for name, meta in cm.metadata.items():
        if getattr(meta, "consolidated_metadata", None) is not None:  # a group's
            levels.append((name, set(meta.consolidated_metadata.metadata)))

    async def listing(prefix: str) -> set[str]:
        return {e async for e in raw.store.list_dir(prefix) if e not in _METADATA_KEYS}

    async def all_listings() -> list[set[str]]:
        return list(await asyncio.gather(*(listing(p) for p, _ in levels)))

    if not compat.has_sync():  # pragma: no cover - zarr without its sync helper
        return False
    try:
        found = compat.run(all_listings())
    except Exception:  # cannot list (e.g. HTTP without an index): trust the document
        return False
    return any(f != expected for f, (_, expected) in zip(found, levels, strict=True))


def _drop_consolidated(raw: Any, session: _Session) -> None:
    """Remove consolidated metadata left by an earlier session before this one
    first writes, so a crash during it can never leave readers a stale listing (it
    is rewritten on close)."""
    with _quiet():
        raw.update_attributes({})  # rewrites zarr.json without consolidated_metadata
    if session.zarr_format == 2 and compat.has_sync():
        with contextlib.suppress(Exception):
            compat.run(session.store.delete(_join(raw.path, ".zmetadata")))
