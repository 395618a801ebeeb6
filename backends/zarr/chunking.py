"""Chunk and shard shapes of new Zarr arrays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Target chunk size of arrays whose length is unknown (growable or empty).
_GROWABLE_CHUNK_BYTES = 1 << 16


#: See :attr:`ZarrGroup.min_chunk_bytes`.
ZARR_MIN_CHUNK_BYTES = 2**20


#: Zarr v3 arrays keep their (small, skelshop-sized) chunks inside shards of up to
#: this many uncompressed bytes, one object each: an object store then serves a
#: whole pose track in one request instead of one per 16-512 KiB chunk.
SHARD_BYTES = 8 * 2**20


#: Growable arrays use smaller shards, since every append rewrites the last one.
GROWABLE_SHARD_BYTES = 2**20


def _shard_shape(
    shape: tuple[int, ...], chunks: Any, dtype: np.dtype, growable: bool
) -> tuple[int, ...] | None:
    """Shard shape for a v3 array: whole chunks along axis 0, trailing axes whole.

    ``None`` (no sharding) where a shard would hold a single chunk anyway.
    """
    if not shape or not isinstance(chunks, tuple) or len(chunks) != len(shape):
        return None
    if tuple(chunks[1:]) != tuple(max(1, d) for d in shape[1:]):
        return None
    row = dtype.itemsize * math.prod(max(1, d) for d in shape[1:])
    c0 = chunks[0]
    target = GROWABLE_SHARD_BYTES if growable else SHARD_BYTES
    rows = c0 * max(1, target // max(1, row * c0))
    if not growable:
        rows = min(rows, -(-shape[0] // c0) * c0)
    if rows <= c0:
        return None
    return (rows, *chunks[1:])


def _default_chunks(shape: tuple[int, ...], dtype: np.dtype, growable: bool) -> Any:
    """Chunks when the caller gives none: zarr's guess for fixed, non-empty arrays;
    about 64 KiB along the first axis (whole trailing dimensions) otherwise."""
    if not shape:
        return ()
    if not growable and all(shape):
        return "auto"
    row = dtype.itemsize * math.prod(max(1, d) for d in shape[1:])
    rows = max(1, _GROWABLE_CHUNK_BYTES // max(1, row))
    return (rows, *(max(1, d) for d in shape[1:]))
