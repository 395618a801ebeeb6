"""The one place the Zarr engine touches zarr-python's internals.

Everything else in the engine uses zarr's public API (``zarr.AsyncArray``,
``zarr.buffer.default_buffer_prototype``, ``zarr.storage.StorePath``,
``Array.async_array``, ``Group.metadata``). What is not public lives here, each
behind a named probe, as xarray's ``has_zarr_async_index()`` does: the engine asks
the probe and takes the public path where a probe says no. Nothing here catches
errors to switch itself off: if an internal changes shape while its probe still
says yes, the engine's tests fail, as they should.

The internals, with the zarr versions known to have them (3.1.3 to 3.3):

- ``zarr.core.sync.sync`` and ``zarr.core.sync._get_loop``: run a coroutine on
  zarr's event loop from synchronous code, waiting for it (:func:`run`) or not
  (:func:`submit`); :func:`has_sync`.
- ``zarr.core.array.init_array``, ``zarr.core.group.GroupMetadata`` and
  ``zarr.core.metadata.v3.ArrayV3Metadata``: metadata documents made without a
  store round trip, for batch writes (:func:`has_batch_writes`).
- ``AsyncGroup._getitem_consolidated`` and ``Group._async_group``: a member built
  from consolidated metadata without an event-loop round trip
  (:func:`consolidated_member`; :func:`has_consolidated_lookup`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
import zarr
from zarr.storage import MemoryStore, StorePath

try:
    from zarr.core.sync import _get_loop
    from zarr.core.sync import sync as _sync
except ImportError:  # pragma: no cover - depends on the zarr version
    _sync = _get_loop = None

try:
    from zarr.core.array import init_array as _init_array
    from zarr.core.group import GroupMetadata as _GroupMetadata
    from zarr.core.metadata.v3 import ArrayV3Metadata as _ArrayV3Metadata
except ImportError:  # pragma: no cover - depends on the zarr version
    _init_array = _GroupMetadata = _ArrayV3Metadata = None

__all__ = [
    "array_v3_document",
    "array_v3_metadata",
    "consolidated_member",
    "group_v3_document",
    "has_batch_writes",
    "has_consolidated_lookup",
    "has_sync",
    "run",
    "submit",
]

T = TypeVar("T")


def has_sync() -> bool:
    """Whether :func:`run` and :func:`submit` can run coroutines on zarr's own
    event loop."""
    return _sync is not None and _get_loop is not None


def has_batch_writes() -> bool:
    """Whether metadata documents can be made in memory for batch writes
    (:func:`array_v3_document`, :func:`array_v3_metadata`, :func:`group_v3_document`)."""
    return has_sync() and None not in (_init_array, _GroupMetadata, _ArrayV3Metadata)


def has_consolidated_lookup() -> bool:
    """Whether :func:`consolidated_member` can build members from consolidated
    metadata without an event-loop round trip."""
    return hasattr(zarr.AsyncGroup, "_getitem_consolidated")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on zarr's event loop (the one its stores' sessions belong to).

    Only call it where :func:`has_sync` is true."""
    if _sync is None:  # pragma: no cover - a caller that did not ask has_sync()
        raise RuntimeError("zarr has no sync helper here: ask has_sync() first")
    return _sync(coro)


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Start ``coro`` on zarr's event loop and return at once: the future's
    ``result()`` waits for it (and raises its error).

    Only call it where :func:`has_sync` is true."""
    if _get_loop is None:  # pragma: no cover - a caller that did not ask has_sync()
        raise RuntimeError("zarr has no event loop helper here: ask has_sync() first")
    return asyncio.run_coroutine_threadsafe(coro, _get_loop())


def array_v3_document(
    dtype: np.dtype, trailing: tuple[int, ...], filters: Any, compressors: Any, fill: Any
) -> dict[str, Any]:
    """The Zarr 3 metadata document zarr itself writes for an unsharded array of
    rows of shape ``trailing`` (shape and chunks to be filled in by the caller)."""

    async def make() -> dict[str, Any]:
        arr = await _init_array(
            store_path=StorePath(MemoryStore(), "t"),
            shape=(1, *trailing),
            dtype=dtype,
            chunks=(1, *(max(1, d) for d in trailing)),
            shards=None,
            filters=filters,
            compressors=compressors,
            fill_value=fill,
            zarr_format=3,
        )
        return arr.metadata.to_dict()

    return run(make())


def array_v3_metadata(document: dict[str, Any]) -> Any:
    """The metadata object of a Zarr 3 array document (for ``zarr.AsyncArray``)."""
    return _ArrayV3Metadata.from_dict(document)


def group_v3_document(attributes: dict[str, Any], prototype: Any) -> bytes:
    """The ``zarr.json`` bytes zarr writes for a Zarr 3 group with ``attributes``."""
    buffers = _GroupMetadata(attributes=attributes, zarr_format=3).to_buffer_dict(prototype)
    return buffers["zarr.json"].to_bytes()


def consolidated_member(group: zarr.Group, name: str) -> zarr.Array | zarr.Group | None:
    """The member ``name`` of a group opened with consolidated metadata, built from
    that metadata, or ``None`` when the group has none (ask the store).

    zarr-python's ``Group[name]`` does the same lookup (no I/O) inside a round trip
    through its event loop. Raises KeyError if the consolidated metadata has no
    such member (zarr-python trusts it the same way). Only call it where
    :func:`has_consolidated_lookup` is true.
    """
    agroup = group._async_group
    if agroup.metadata.consolidated_metadata is None:
        return None
    node = agroup._getitem_consolidated(agroup.store_path / name, name, prefix=agroup.name)
    if isinstance(node, zarr.AsyncGroup):
        return zarr.Group(node)
    return zarr.Array(node)
