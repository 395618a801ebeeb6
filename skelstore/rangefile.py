"""A read-only file object over fsspec that fetches few, well-chosen byte ranges.

Why not fsspec's own caches: HDF5 jumps between metadata (small, scattered) and
chunk data (large, clustered) and seeks backwards. Measured here, h5py over s3fs's
default read-ahead cache moved 75x a 95 MB dump's bytes to read it once (each
backward seek re-downloads a 50 MB block), and 64 KiB blocks cost thousands of
requests. :class:`RangeCacheFile` instead

* fetches the whole object in one request when it is small (``whole_below``);
* serves metadata misses from aligned blocks (``block_size``) that are kept;
* takes explicit byte ranges from its caller (:meth:`RangeCacheFile.prefetch`:
  the HDF5 engine passes the chunk ranges of the arrays it is about to read),
  merges neighbours and fetches them concurrently in one ``cat_ranges`` call;
* grows a read-ahead window (doubling, up to ``max_readahead``) when successive
  prefetches move forward through the file, so reading a whole dump takes a few
  large requests rather than one per shot.

Nothing is ever evicted: memory is bounded by the bytes actually read, which for
the access patterns above is at most about the file size.

Failures. Every fetch goes through :func:`call_with_retries` under a
:class:`RetryPolicy` (:func:`default_retry` unless given): transient failures
(HTTP 5xx/408/429, timeouts, refused or dropped connections, short reads) are
tried again a bounded number of times with jittered exponential backoff, each
attempt bounded in wall-clock time (for async filesystems: fsspec cancels the
attempt); a permanent failure, or a transient one that outlasts the attempts,
raises :class:`~skelstore.errors.RemoteError` (or its ``Timeout``/``Access``
subclasses) naming the URL. :func:`retry_async` does the same for coroutines (the
Zarr engine's remote stores use it). These retries come on top of the
filesystem's own (s3fs and botocore, gcsfs), so they only act once those have
given up.

Threads: the cache is guarded by a lock, so :meth:`RangeCacheFile.prefetch`,
:meth:`RangeCacheFile.read_at` and :meth:`RangeCacheFile.cached_bytes` may be
called from any thread. ``seek``/``read`` share one position, as in any file
object: h5py serialises them (one HDF5 call at a time per process).
"""

from __future__ import annotations

import asyncio
import bisect
import errno
import io
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from skelstore.config import Settings, get_options
from skelstore.errors import (
    NotFoundError,
    RemoteAccessError,
    RemoteError,
    RemoteTimeoutError,
    SkelstoreError,
)

__all__ = [
    "RangeCacheFile",
    "RetryPolicy",
    "call_with_retries",
    "classify",
    "default_retry",
    "fs_call",
    "fs_retried",
    "remote_error",
    "retry_async",
]

T = TypeVar("T")


# ---------------------------------------------------------------- retry policy


@dataclass(frozen=True)
class RetryPolicy:
    """How remote reads are retried; bounded in count and in time.

    Attributes:
        attempts: tries per request, the first included (``1``: no retry).
        backoff: pause before the first retry, in seconds; doubled for each
            further retry, capped at ``max_backoff``; each pause is drawn
            uniformly from its upper half (jitter).
        max_backoff: the longest pause.
        timeout: wall-clock limit of one attempt, in seconds, plus
            ``1 / min_rate`` seconds per byte requested (so large ranges on slow
            links are not cut short). ``None``: no limit of skelstore's own (the
            filesystem's timeouts still apply). Only enforceable on async
            filesystems (s3fs, gcsfs, http), where the attempt is cancelled.
        min_rate: the slowest transfer rate, bytes a second, not taken for a hang.

    A request therefore takes at most about
    ``attempts * (timeout + size / min_rate) + (attempts - 1) * max_backoff``.
    """

    attempts: int = 3
    backoff: float = 0.25
    max_backoff: float = 4.0
    timeout: float | None = 30.0
    min_rate: float = 512 * 1024

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be >= 1")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The default policy with the limits of ``settings`` (``remote_timeout``,
        ``remote_attempts``; see :mod:`skelstore.config`)."""
        return cls(attempts=settings.remote_attempts, timeout=settings.remote_timeout)

    @classmethod
    def from_env(cls, environ: Any = None) -> RetryPolicy:
        """The default policy with the limits the environment variables
        ``SKELSTORE_REMOTE_TIMEOUT`` and ``SKELSTORE_REMOTE_ATTEMPTS`` ask for
        (of ``environ``, ``os.environ`` by default; read by
        :meth:`skelstore.config.Settings.from_environ`).

        Raises:
            ValueError: a variable that is not a number (attempts: an integer >= 1).
        """
        return cls.from_settings(Settings.from_environ(environ))

    def attempt_timeout(self, nbytes: int | None = None) -> float | None:
        """The time limit of one attempt that requests ``nbytes`` bytes."""
        if self.timeout is None:
            return None
        return self.timeout + max(0, nbytes or 0) / self.min_rate

    def pause(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1, 2, ...)."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def default_retry() -> RetryPolicy:
    """The policy used when none is given, for reads and writes alike, from the
    settings in force (:func:`skelstore.get_options`: ``remote_timeout``,
    ``remote_attempts``), asked for when a remote file or store is opened. By
    default 3 attempts, pauses of 0.125-0.25 s and 0.25-0.5 s, 30 s (+2 s per MiB)
    an attempt. See docs/remote.md ("Failures") for how it stacks with the
    filesystem's own retries."""
    return RetryPolicy.from_settings(get_options())


# Exception classes (by name, so neither aiohttp nor botocore is imported here)
# that mean a connection failed or broke: worth another try.
_TRANSIENT_NAMES = frozenset({
    "ClientConnectionError", "ClientConnectorError", "ClientOSError",
    "ServerDisconnectedError", "ServerTimeoutError", "ClientPayloadError",
    "ConnectionTimeoutError", "SocketTimeoutError",
    "HTTPClientError", "ConnectionClosedError", "EndpointConnectionError",
    "ReadTimeoutError", "ConnectTimeoutError", "ResponseStreamingError",
    "IncompleteRead", "ProtocolError", "ShortReadError",
})  # fmt: skip
# Errors from HTTP clients that are not OSErrors but still mean "the server said no".
_REMOTE_NAMES = frozenset({"ClientError", "ClientResponseError", "HttpError", "BotoCoreError"})


class ShortReadError(OSError):
    """The server sent fewer bytes than asked for (a truncated response)."""


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes/contexts, outermost first (at most 8)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < 8 and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _status(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (aiohttp, gcsfs, botocore), if any."""
    for name in ("status", "code", "status_code"):
        value = getattr(exc, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(value, int):
            return value
    return None


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def classify(exc: BaseException) -> tuple[bool, bool, int | None]:
    """``(remote, transient, status)`` of an exception raised by a filesystem call.

    ``remote``: it is a storage failure at all (an ``OSError``, or an HTTP client's
    error), not a programming error. ``transient``: worth retrying (HTTP 5xx, 408,
    429; timeouts; connection failures; short reads). ``status``: the HTTP status
    found on the exception or its causes.
    """
    chain = _chain(exc)
    status = next((s for s in map(_status, chain) if s is not None), None)
    remote = any(
        isinstance(e, OSError) or _names(e) & (_REMOTE_NAMES | _TRANSIENT_NAMES) for e in chain
    )
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        if _connection_failure(exc):  # fsspec's HTTP filesystem says "not found" for these
            return True, True, None
        return True, False, status or 404
    if status is not None:
        return True, status >= 500 or status in (408, 429), status
    if isinstance(exc, PermissionError):
        return True, False, None
    for e in chain:
        if isinstance(e, (TimeoutError, ConnectionError)) or _names(e) & _TRANSIENT_NAMES:
            return True, True, None
        if isinstance(e, OSError) and e.errno in (errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT):
            return True, True, None
    return remote, False, None


def _connection_failure(exc: BaseException) -> BaseException | None:
    """The connection error (refused, reset, unreachable, timed out) behind ``exc``, if
    a cause of it is one: fsspec's HTTP filesystem reports a refused connection as
    ``FileNotFoundError``."""
    for e in _chain(exc)[1:]:
        if isinstance(e, (ConnectionError, TimeoutError)) or _names(e) & _TRANSIENT_NAMES:
            return e
    return None


def _is_timeout(exc: BaseException) -> bool:
    return any(isinstance(e, TimeoutError) or "Timeout" in type(e).__name__ for e in _chain(exc))


def remote_error(
    exc: BaseException,
    what: str,
    attempts: int = 1,
    *,
    during_read: bool = False,
    action: str = "read",
) -> SkelstoreError:
    """The skelstore error for a failed remote request on ``what`` (a URL or path).

    404-like failures become :class:`~skelstore.errors.NotFoundError`, or with
    ``during_read`` (the object was there when opened) a
    :class:`~skelstore.errors.RemoteError` saying it vanished; 401/403
    :class:`~skelstore.errors.RemoteAccessError`; timeouts that outlasted every
    attempt :class:`~skelstore.errors.RemoteTimeoutError`; anything else
    :class:`~skelstore.errors.RemoteError`. The message names ``what``, the
    status, the attempts and the underlying error (a connection that failed is never
    "no such object"); ``action`` (``read``, ``write``, ...) says what was tried.
    """
    if isinstance(exc, SkelstoreError):
        return exc
    _, transient, status = classify(exc)
    cause = _connection_failure(exc) if isinstance(exc, FileNotFoundError) else None
    shown_exc = cause or exc
    detail = (
        f"{type(shown_exc).__name__}: {shown_exc}" if str(shown_exc) else type(shown_exc).__name__
    )
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if cause is not None:
        if _is_timeout(cause):
            return RemoteTimeoutError(
                f"{what}: {action} timed out{tries} ({detail})", url=what, attempts=attempts
            )
        return RemoteError(f"{what}: cannot connect{tries} ({detail})", url=what, attempts=attempts)
    if isinstance(exc, FileNotFoundError) or status in (404, 410):
        if during_read:  # not "no such node": the object went away under the reader
            return RemoteError(
                f"{what}: the object vanished while being read (deleted or replaced?; {detail})",
                url=what,
                status=status or 404,
                attempts=attempts,
            )
        return NotFoundError(f"{what}: no such object ({detail})")
    if status in (401, 403) or isinstance(exc, PermissionError):
        return RemoteAccessError(
            f"{what}: access denied ({detail})", url=what, status=status, attempts=attempts
        )
    if transient and status is None and _is_timeout(exc):
        return RemoteTimeoutError(
            f"{what}: {action} timed out{tries} ({detail})", url=what, attempts=attempts
        )
    shown = f"HTTP {status}" if status is not None else "failed"
    kind = "transient error persisted" if transient else "permanent error"
    return RemoteError(
        f"{what}: {action} {shown}{tries} ({kind}; {detail})",
        url=what,
        status=status,
        attempts=attempts,
    )


def _raise_unless_retried(
    exc: Exception,
    what: str,
    attempt: int,
    policy: RetryPolicy,
    during_read: bool,
    action: str,
) -> None:
    """Return if attempt ``attempt``'s failure ``exc`` is worth another try under
    ``policy``; else raise it: skelstore's own errors and non-remote ones (such as
    programming errors) unchanged, remote ones as :func:`remote_error`."""
    if isinstance(exc, SkelstoreError):
        raise exc
    remote, transient, _ = classify(exc)
    if not remote:
        raise exc
    if not transient or attempt == policy.attempts:
        raise remote_error(exc, what, attempt, during_read=during_read, action=action) from exc


def call_with_retries(
    call: Callable[[float | None], T],
    what: str,
    policy: RetryPolicy | None = None,
    nbytes: int | None = None,
    *,
    during_read: bool = False,
    action: str = "read",
) -> T:
    """``call(timeout)`` until it succeeds, retrying transient failures under
    ``policy``; failures are raised as :func:`remote_error` (other exceptions, such
    as programming errors, pass unchanged). ``timeout`` is the attempt's time limit,
    for ``call`` to enforce (``None``: none). ``action`` names what is tried, for
    messages (``read``, ``write``)."""
    policy = policy or default_retry()
    for attempt in range(1, policy.attempts + 1):
        try:
            return call(policy.attempt_timeout(nbytes))
        except Exception as exc:
            _raise_unless_retried(exc, what, attempt, policy, during_read, action)
        time.sleep(policy.pause(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


async def retry_async(
    call: Callable[[], Awaitable[T]],
    what: str,
    policy: RetryPolicy | None = None,
    nbytes: int | None = None,
    *,
    action: str = "read",
) -> T:
    """The coroutine version of :func:`call_with_retries`: ``await call()`` under
    ``asyncio.wait_for`` with the attempt's time limit."""
    policy = policy or default_retry()
    for attempt in range(1, policy.attempts + 1):
        try:
            return await asyncio.wait_for(call(), policy.attempt_timeout(nbytes))
        except Exception as exc:
            _raise_unless_retried(exc, what, attempt, policy, False, action)
        await asyncio.sleep(policy.pause(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _can_time_out(fs: Any) -> bool:
    """True for fsspec async filesystems used synchronously (fsspec's ``sync`` can
    cancel their coroutines after a timeout)."""
    return bool(getattr(fs, "async_impl", False)) and not getattr(fs, "asynchronous", False)


def fs_call(fs: Any, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """``fs.<method>(*args, **kwargs)``, cancelled after ``timeout`` seconds on an
    async filesystem (through fsspec's ``sync``, which then raises a
    ``TimeoutError``); other filesystems are called as they are."""
    if timeout is not None and _can_time_out(fs):
        from fsspec.asyn import sync

        return sync(fs.loop, getattr(fs, f"_{method}"), *args, timeout=timeout, **kwargs)
    return getattr(fs, method)(*args, **kwargs)


def fs_retried(
    fs: Any,
    method: str,
    *args: Any,
    what: str,
    action: str = "write",
    nbytes: int | None = None,
    policy: RetryPolicy | None = None,
    **kwargs: Any,
) -> Any:
    """``fs.<method>(*args, **kwargs)`` under :func:`call_with_retries`: each attempt
    bounded in time (async filesystems) and transient failures retried, failures
    raised as :func:`remote_error` naming ``what``. For writes (``put_file``,
    ``rm``, ...) and the lookups around them, which must not hang on a stalled
    server any more than reads; ``nbytes`` (an upload's size) extends each
    attempt's time limit as for reads."""
    return call_with_retries(
        lambda t: fs_call(fs, method, *args, timeout=t, **kwargs),
        what,
        policy,
        nbytes,
        action=action,
    )


# ---------------------------------------------------------------- the file


class RangeCacheFile(io.RawIOBase):
    """Random-access, read-only view of ``fs``/``path`` with a range cache.

    ``retry`` is the :class:`RetryPolicy` of every fetch (:func:`default_retry`
    when the file is made, if not given); ``url`` names the object in errors.

    Attributes:
        requests: number of fetches tried so far, retries included (a
            ``cat_ranges`` batch counts once per range).
        bytes_fetched: bytes received so far.
    """

    def __init__(
        self,
        fs: Any,
        path: str,
        *,
        size: int | None = None,
        block_size: int = 256 * 1024,
        whole_below: int = 16 * 2**20,
        merge_gap: int = 256 * 1024,
        max_readahead: int = 64 * 2**20,
        retry: RetryPolicy | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__()
        self.fs = fs
        self.path = path
        self.url = url or path
        self.retry = retry or default_retry()
        if size is None:
            size = call_with_retries(
                lambda t: fs_call(fs, "size", path, timeout=t), self.url, self.retry
            )
        self.size = int(size)
        self.block_size = block_size
        self.merge_gap = merge_gap
        self.max_readahead = max_readahead
        self.requests = 0
        self.bytes_fetched = 0
        self._pos = 0
        self._starts: list[int] = []  # sorted, non-overlapping extents
        self._data: list[bytes] = []
        self._lock = threading.Lock()
        self._stream_start = 0
        self._last_end = -1
        self._last_len = 0
        if self.size <= whole_below:
            self._insert(0, self._fetch([(0, self.size)])[0])

    # -- io.RawIOBase ------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif whence == io.SEEK_END:
            self._pos = self.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = self._read_into(self._pos, view)
        self._pos += n
        return n

    def read_at(self, offset: int, size: int) -> bytes:
        """``size`` bytes from ``offset`` (fewer at the end), without moving the
        shared position: safe to call from several threads at once."""
        buf = bytearray(max(0, min(size, self.size - offset)))
        n = self._read_into(offset, memoryview(buf))
        return bytes(buf[:n])

    def _read_into(self, pos: int, view: memoryview) -> int:
        n = min(len(view), max(0, self.size - pos))
        if n <= 0:
            return 0
        # a failure raises here; h5py passes the exception on to its caller as is
        with self._lock:
            self._fill(pos, view[:n])
        return n

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self._pos
        buf = bytearray(max(0, min(size, self.size - self._pos)))
        n = self.readinto(buf)
        return bytes(buf[:n])

    # -- caching ----------------------------------------------------------
    def cached_bytes(self) -> int:
        """Bytes held in the cache."""
        with self._lock:
            return sum(len(d) for d in self._data)

    def prefetch(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Fetch the byte ranges ``[start, end)`` not cached yet, in one batch
        (neighbours closer than ``merge_gap`` merged; read-ahead as for misses)."""
        wanted = sorted((max(0, s), min(self.size, e)) for s, e in ranges if e > s)
        with self._lock:
            self._fetch_missing([g for s, e in wanted for g in self._gaps(s, e)])

    def _fetch_missing(self, gaps: list[tuple[int, int]]) -> None:
        """Fetch ``gaps`` (uncached, sorted), as part of a forward stream if they are.

        A *stream* is a run of fetches moving forward through the file (HDF5 reads
        metadata and chunks of consecutive shots in file order, with small steps
        back). A fetch that advances a stream's front is extended to a read-ahead
        window that doubles each time, up to ``max_readahead``, and fills the
        holes it leaves behind: a whole-file read takes O(log size) large
        requests, while a read of one region stays close to its size.
        """
        if not gaps:
            return
        first, last = gaps[0][0], gaps[-1][1]
        reach = self._last_end + max(self.merge_gap, self._last_len)
        in_stream = self._last_end >= 0 and self._stream_start - self.merge_gap <= first <= reach
        if not in_stream:
            self._stream_start, self._last_end, self._last_len = first, last, last - first
        elif last > self._last_end:
            window = min(self.max_readahead, max(2 * self._last_len, last - self._last_end))
            new_end = min(self.size, max(last, self._last_end + window))
            gaps = self._gaps(min(first, self._last_end), new_end)
            self._last_end, self._last_len = new_end, window
        merged: list[tuple[int, int]] = []
        for gs, ge in gaps:
            if merged and gs - merged[-1][1] <= self.merge_gap:
                merged[-1] = (merged[-1][0], max(merged[-1][1], ge))
            else:
                merged.append((gs, ge))
        for (s, _), blob in zip(merged, self._fetch(merged), strict=True):
            self._insert(s, blob)

    def _gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """Sub-ranges of ``[start, end)`` not covered by the cache."""
        gaps = []
        pos = start
        i = max(0, bisect.bisect_right(self._starts, pos) - 1)
        while pos < end and i < len(self._starts):
            s, e = self._starts[i], self._starts[i] + len(self._data[i])
            if e <= pos:
                i += 1
                continue
            if s >= end:
                break
            if s > pos:
                gaps.append((pos, s))
            pos = max(pos, e)
            i += 1
        if pos < end:
            gaps.append((pos, end))
        return gaps

    def _insert(self, start: int, blob: bytes) -> None:
        """Add ``blob`` at ``start``, keeping only the parts not cached yet."""
        for gs, ge in self._gaps(start, start + len(blob)):
            i = bisect.bisect_left(self._starts, gs)
            self._starts.insert(i, gs)
            self._data.insert(i, blob[gs - start : ge - start])

    def _fetch(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """The bytes of ``ranges``, fetched concurrently (one ``cat_ranges`` batch,
        or ``cat_file`` for one range); ranges that fail transiently are fetched
        again under :attr:`retry`, the others raise at once."""
        out: dict[tuple[int, int], bytes] = {}

        def attempt(timeout: float | None) -> None:
            todo = [r for r in ranges if r not in out]
            for r, blob in zip(todo, self._fetch_once(todo, timeout), strict=True):
                if isinstance(blob, BaseException):
                    raise blob  # the first failure decides; the rest are fetched again
                out[r] = blob

        nbytes = sum(e - s for s, e in ranges)
        call_with_retries(attempt, self.url, self.retry, nbytes, during_read=True)
        blobs = [out[r] for r in ranges]
        self.bytes_fetched += nbytes
        return blobs

    def _fetch_once(self, ranges: list[tuple[int, int]], timeout: float | None) -> list[Any]:
        """One try at ``ranges``: bytes or an exception for each (a failure of the
        whole call is raised). ``timeout`` bounds the call on async filesystems."""
        self.requests += len(ranges)
        if len(ranges) == 1:
            s, e = ranges[0]
            blobs = [fs_call(self.fs, "cat_file", self.path, start=s, end=e, timeout=timeout)]
        else:
            blobs = fs_call(
                self.fs, "cat_ranges", [self.path] * len(ranges), [s for s, _ in ranges],
                [e for _, e in ranges], on_error="return", timeout=timeout,
            )  # fmt: skip
        out: list[Any] = []
        for (s, e), blob in zip(ranges, blobs, strict=True):
            if not isinstance(blob, BaseException) and len(blob) != e - s:
                blob = ShortReadError(
                    f"{self.url}: short read at {s} ({len(blob)} of {e - s} bytes)"
                )
            out.append(blob)
        return out

    def _fill(self, pos: int, out: memoryview) -> None:
        n = len(out)
        done = 0
        while done < n:
            p = pos + done
            i = bisect.bisect_right(self._starts, p) - 1
            if i >= 0 and p < self._starts[i] + len(self._data[i]):
                blob = self._data[i]
                off = p - self._starts[i]
                k = min(n - done, len(blob) - off)
                out[done : done + k] = blob[off : off + k]
                done += k
                continue
            # a miss: fetch the aligned block(s) around the rest of this read
            b0 = (p // self.block_size) * self.block_size
            b1 = min(self.size, -(-(pos + n) // self.block_size) * self.block_size)
            self._fetch_missing(self._gaps(b0, b1))
