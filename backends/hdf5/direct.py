"""Direct chunk writes for the HDF5 engine: Blosc compression on several cores.

HDF5 runs its filter pipeline in the calling thread, and h5py holds the GIL for
every library call, so writing a dump through h5py compresses every chunk on one
core, one after the other; with skelshop's lossless preset (Blosc, zstd level 5,
bit-shuffle) that is about half of the shot writer's time. For a filled array whose
filter pipeline is exactly one Blosc filter, :func:`write_chunks` compresses its
chunks with numcodecs' Blosc (which releases the GIL) on a small thread pool and
hands the compressed chunks to HDF5 with ``H5Dwrite_chunk`` (h5py's
``write_direct_chunk``) in the calling thread. The file is what h5py would have
written: same dataset, chunks, filter and parameters; each chunk a Blosc buffer
with the filter's settings (the stored bytes may differ from the filter's own by
the Blosc build; HDF5's filter reads either).

Reads stay with h5py: reading chunks directly and decompressing them on threads
gained nothing end to end (skelshop's 25 KB chunks cost a thread hand-off each;
the figures are in docs/performance.md, measurements behind the code).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h5py
import numpy as np

from skelstore.compression import BLOSC_FILTER_ID
from skelstore.config import codec_threads

__all__ = ["BloscSettings", "blosc_settings", "write_chunks"]

#: Blosc's compressor codes (the last parameter of HDF5's Blosc filter).
_COMPRESSORS = {0: "blosclz", 1: "lz4", 2: "lz4hc", 3: "snappy", 4: "zlib", 5: "zstd"}
#: Below this many raw bytes a batch is compressed in the calling thread (handing
#: work to a pool costs more than it saves).
PARALLEL_MIN_BYTES = 256 * 2**10


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(codec_threads(), thread_name_prefix="skelstore-blosc")
        return _POOL


def _forget_pool() -> None:
    # A forked child inherits the executor but not its threads: work submitted to
    # it would wait forever. The child makes its own pool on first use.
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


class BloscSettings:
    """What HDF5's Blosc filter on one dataset does: compressor, level, shuffle."""

    __slots__ = ("clevel", "cname", "shuffle")

    def __init__(self, cname: str, clevel: int, shuffle: int) -> None:
        self.cname = cname
        self.clevel = clevel
        self.shuffle = shuffle

    def compress(self, chunk: np.ndarray) -> bytes:
        """One chunk (C-contiguous, its dtype's size as Blosc's type size, as the
        filter takes it from the dataset's type) as a Blosc buffer."""
        from numcodecs import blosc

        return blosc.compress(chunk, self.cname.encode(), self.clevel, self.shuffle)


def blosc_settings(ds: h5py.Dataset) -> BloscSettings | None:
    """The settings of ``ds``'s filter pipeline if it is exactly one Blosc filter on
    a plain numeric type with chunks spanning whole rows, else ``None``."""
    dcpl = ds.id.get_create_plist()
    if dcpl.get_nfilters() != 1:
        return None
    code, _flags, values, _name = dcpl.get_filter(0)
    dtype, chunks = ds.dtype, ds.chunks
    if (
        code != BLOSC_FILTER_ID
        or len(values) < 7
        or values[6] not in _COMPRESSORS
        or values[5] not in (0, 1, 2)
        or chunks is None
        or tuple(chunks[1:]) != tuple(ds.shape[1:])
        or dtype.kind not in "iuf"
        or dtype.names is not None
        or values[2] != dtype.itemsize
    ):
        return None
    return BloscSettings(_COMPRESSORS[values[6]], int(values[4]), int(values[5]))


def _chunks_of(data: np.ndarray, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first_row, chunk)`` for every chunk of ``rows`` rows; the last one padded
    with zeros (HDF5's default fill value) to a whole chunk, as HDF5 stores it."""
    for r0 in range(0, len(data), rows):
        chunk = data[r0 : r0 + rows]
        if len(chunk) < rows:
            whole = np.zeros((rows, *data.shape[1:]), dtype=data.dtype)
            whole[: len(chunk)] = chunk
            chunk = whole
        yield r0, np.ascontiguousarray(chunk)


def write_chunks(jobs: Sequence[tuple[h5py.Dataset, BloscSettings, np.ndarray]]) -> None:
    """Write every ``(dataset, settings, data)``: ``data`` fills the dataset (same
    shape and dtype); chunks are compressed on the pool when the batch is large
    enough, and written in order, in the calling thread, as they are ready."""
    work = [
        (ds.id, (r0,) + (0,) * (data.ndim - 1), settings, chunk)
        for ds, settings, data in jobs
        for r0, chunk in _chunks_of(data, ds.chunks[0])
    ]
    if not work:
        return
    threads = codec_threads()
    if threads == 1 or len(work) < 2 or sum(w[3].nbytes for w in work) < PARALLEL_MIN_BYTES:
        parts = [work]
        results: Iterator[list[bytes]] = map(_compress_part, parts)
    else:
        # one task per thread (contiguous runs of about equal bytes), not one per
        # chunk: a task costs a few thread wake-ups, as much as compressing a
        # small chunk (docs/performance.md, measurements behind the code)
        parts = _split(work, threads)
        results = _pool().map(_compress_part, parts)  # the first part is written
        # while the others still compress
    for part, blobs in zip(parts, results, strict=True):
        for (dsid, offset, _, _), blob in zip(part, blobs, strict=True):
            dsid.write_direct_chunk(offset, blob)


_Work = tuple[Any, tuple[int, ...], BloscSettings, np.ndarray]


def _split(work: list[_Work], parts: int) -> list[list[_Work]]:
    """``work`` in at most ``parts`` contiguous runs of about equal raw bytes."""
    share = sum(w[3].nbytes for w in work) / parts
    out: list[list[_Work]] = [[]]
    acc = 0
    for w in work:
        if acc >= share * len(out) and len(out) < parts:
            out.append([])
        out[-1].append(w)
        acc += w[3].nbytes
    return out


def _compress_part(part: list[_Work]) -> list[bytes]:
    return [settings.compress(chunk) for _, _, settings, chunk in part]
