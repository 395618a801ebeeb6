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
"""

from __future__ import annotations

import bisect
import io
import threading
from collections.abc import Iterable
from typing import Any

__all__ = ["RangeCacheFile"]


class RangeCacheFile(io.RawIOBase):
    """Random-access, read-only view of ``fs``/``path`` with a range cache.

    Attributes:
        requests: number of fetch calls made so far (a ``cat_ranges`` batch counts
            once per range).
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
    ) -> None:
        super().__init__()
        self.fs = fs
        self.path = path
        self.size = int(size if size is not None else fs.size(path))
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
        n = min(len(view), max(0, self.size - self._pos))
        if n <= 0:
            return 0
        with self._lock:
            self._fill(self._pos, view[:n])
        self._pos += n
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
        if len(ranges) == 1:
            s, e = ranges[0]
            blobs = [self.fs.cat_file(self.path, start=s, end=e)]
        else:
            blobs = self.fs.cat_ranges(
                [self.path] * len(ranges), [s for s, _ in ranges], [e for _, e in ranges]
            )
        for (s, e), blob in zip(ranges, blobs, strict=True):
            if isinstance(blob, BaseException):
                raise blob
            if len(blob) != e - s:
                raise OSError(f"{self.path}: short read at {s} ({len(blob)} of {e - s} bytes)")
        self.requests += len(ranges)
        self.bytes_fetched += sum(len(b) for b in blobs)
        return list(blobs)

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
