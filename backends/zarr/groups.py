"""Zarr groups as skelstore groups (:class:`ZarrGroup`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import numpy as np
import zarr
import zarr.buffer
import zarr.errors
import zarr.storage
from zarr.storage import StorePath

from skelstore.backends.zarr import compat
from skelstore.backends.zarr.arrays import ZarrArray, _is_basic, _ZarrNode
from skelstore.backends.zarr.attrs import V2_DIMENSIONS_ATTR, _json_safe, _new_dimension_names
from skelstore.backends.zarr.batch import _BatchPlan
from skelstore.backends.zarr.chunking import ZARR_MIN_CHUNK_BYTES, _default_chunks, _shard_shape
from skelstore.backends.zarr.codecs import _new_array_codecs
from skelstore.backends.zarr.session import _Session
from skelstore.backends.zarr.util import _EXISTS_ERRORS, _META_ERRORS, _join, _quiet
from skelstore.compression import Encoding, check_lossy
from skelstore.errors import (
    EngineError,
    FormatError,
    NotFoundError,
    RemoteAccessError,
    SkelstoreError,
    WriteError,
)
from skelstore.storage import (
    Array,
    ArraySpec,
    Group,
    GroupSpec,
    check_specs,
    natural_key,
    normalize_attr,
)


class ZarrGroup(_ZarrNode, Group):
    """A ``zarr.Group``; the root returned by :meth:`ZarrEngine.open` owns its store.

    Children are listed with one concurrent metadata fetch (``members()``), or
    from consolidated metadata when reading a consolidated store.
    """

    engine_name = "zarr"
    default_layout = "packed"

    def __init__(self, raw: Any, session: _Session, *, root: bool = False) -> None:
        self._raw = raw
        self._s = session
        self._root = root

    @property
    def min_chunk_bytes(self) -> int | None:
        """Pose arrays are chunked in >= 1 MiB pieces: zarr-python decodes each
        chunk through an async pipeline at a fixed cost a chunk (the figures:
        docs/performance.md, measurements behind the code)."""
        return ZARR_MIN_CHUNK_BYTES

    @property
    def format_info(self) -> dict[str, Any]:
        return {"zarr_format": int(self._raw.metadata.zarr_format)}

    # -- listing ---------------------------------------------------------
    def _wrap(self, raw: Any) -> ZarrGroup | ZarrArray:
        if isinstance(raw, zarr.Group):
            return ZarrGroup(raw, self._s)
        return ZarrArray(raw, self._s)

    def _members(self) -> list[tuple[str, Any]]:
        """``(name, zarr object)`` of every child, session objects preferred."""
        self._s.check_open()
        raw = self._s.fresh_group(self._raw.path) if self._s.check_stale() else self._raw
        try:
            with _quiet():
                found = list(raw.members())
        except FileNotFoundError:
            return []
        except _META_ERRORS as exc:
            raise FormatError(f"{self.where()}: cannot list the group ({exc})") from exc
        except RemoteAccessError as exc:  # the server refuses listings (HTTP 401/403)
            raise EngineError(
                f"{self.where()}: cannot list the group ({exc}); a store on a server that "
                "cannot list (plain HTTP) needs consolidated metadata"
            ) from exc
        except (SkelstoreError, Warning):  # warnings only arrive here if made errors
            raise
        except Exception as exc:  # the filesystem's own, e.g. aiohttp's for an HTTP 403
            raise EngineError(
                f"{self.where()}: cannot list the group ({type(exc).__name__}: {exc}); "
                "a store on a server that cannot list (plain HTTP) needs consolidated metadata"
            ) from exc
        base = self._raw.path
        return [(name, self._s.nodes.setdefault(_join(base, name), obj)) for name, obj in found]

    def keys(self) -> list[str]:
        return sorted((name for name, _ in self._members()), key=natural_key)

    def items(self) -> list[tuple[str, Group | Array]]:
        members = sorted(self._members(), key=lambda m: natural_key(m[0]))
        return [(name, self._wrap(obj)) for name, obj in members]

    def child(self, name: str) -> ZarrGroup | ZarrArray | None:
        self._s.check_open()
        if not name or name in (".", "..") or "/" in name:
            return None
        path = _join(self._raw.path, name)
        obj = self._s.nodes.get(path)
        if obj is None:
            try:
                with _quiet():
                    if self._s.stale:
                        obj = self._s.fresh_group(self._raw.path)[name]
                    else:
                        obj = None
                        if compat.has_consolidated_lookup():
                            obj = compat.consolidated_member(self._raw, name)
                        if obj is None:
                            obj = self._raw[name]
            except (KeyError, FileNotFoundError):
                if not self._s.stale and self._s.check_stale():
                    return self.child(name)  # the consolidated metadata is stale
                return None
            except _META_ERRORS as exc:
                raise FormatError(
                    f"{self.source}: cannot open /{path} as a Zarr node ({exc})"
                ) from exc
            obj = self._s.nodes.setdefault(path, obj)
        return self._wrap(obj)

    # -- writing ---------------------------------------------------------
    def _name_parts(self, name: str) -> list[str]:
        """The components of a relative path for a new node (no empty, ``.`` or
        ``..`` ones: a store key must stay inside its store)."""
        parts = [p for p in name.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise FormatError(f"{self.where()}: invalid name {name!r}")
        return parts

    def _parent_for(self, name: str) -> tuple[ZarrGroup, str]:
        """The group that will hold ``name`` (intermediate groups are created)."""
        parts = self._name_parts(name)
        parent: ZarrGroup = self
        for part in parts[:-1]:
            node = parent.require_group(part)
            assert isinstance(node, ZarrGroup)
            parent = node
        return parent, parts[-1]

    def _exists_error(self, name: str) -> FormatError:
        return FormatError(f"{self.source}:{_join(self.path.rstrip('/'), name)}: already exists")

    def create_group(self, name: str, attrs: dict[str, Any] | None = None) -> ZarrGroup:
        self._check_writable()
        parent, leaf = self._parent_for(name)
        if parent is not self:
            return parent.create_group(leaf, attrs)
        where = f"{self.source}:{_join(self.path.rstrip('/'), leaf)}"
        attributes = (
            {k: _json_safe(normalize_attr(v), where) for k, v in attrs.items()} if attrs else None
        )
        try:
            with _quiet(), self._s.writing():
                raw = self._raw.create_group(leaf, attributes=attributes)
        except _EXISTS_ERRORS as exc:
            raise self._exists_error(leaf) from exc
        except ValueError as exc:
            raise FormatError(f"{self.where()}: cannot create group {leaf!r} ({exc})") from exc
        self._s.nodes[raw.path] = raw
        return ZarrGroup(raw, self._s)

    def create_array(
        self,
        name: str,
        *,
        data: np.ndarray | None = None,
        shape: tuple[int, ...] | None = None,
        dtype: Any = None,
        chunks: tuple[int, ...] | None = None,
        encoding: Encoding | None = None,
        growable: bool = False,
        engine_options: dict[str, Any] | None = None,
        shards: tuple[int, ...] | None = None,
        dimension_names: tuple[str, ...] | None = None,
    ) -> ZarrArray:
        """Create an array (see :meth:`Group.create_array`).

        ``shards`` is honoured in Zarr 3 (ignored in Zarr 2, which has no sharding);
        ``dimension_names`` go in the array metadata in Zarr 3 and in the
        ``_ARRAY_DIMENSIONS`` attribute (xarray's convention) in Zarr 2.

        ``engine_options`` are h5py ``create_dataset`` keywords: those that map
        exactly onto an :class:`Encoding` (Blosc zstd + bit-shuffle, ``scaleoffset``)
        override ``encoding`` field by field, ``chunks``/``fillvalue`` are honoured,
        ``maxshape``/``track_times``/``track_order`` ignored, anything else raises
        :class:`~skelstore.errors.EngineError`.
        """
        self._check_writable()
        parent, leaf = self._parent_for(name)
        if parent is not self:
            return parent.create_array(
                leaf,
                data=data,
                shape=shape,
                dtype=dtype,
                chunks=chunks,
                encoding=encoding,
                growable=growable,
                engine_options=engine_options,
                shards=shards,
                dimension_names=dimension_names,
            )
        where = f"{self.source}:{_join(self.path.rstrip('/'), leaf)}"
        if data is not None:
            data = np.asarray(data) if dtype is None else np.asarray(data, dtype=dtype)
            if shape is not None and tuple(shape) != data.shape:
                raise FormatError(f"{where}: shape {tuple(shape)} disagrees with data {data.shape}")
            shape, np_dtype = data.shape, data.dtype
        else:
            if shape is None:
                raise FormatError(f"{where}: give data or shape")
            shape = (
                (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(map(int, shape))
            )
            np_dtype = np.dtype(dtype if dtype is not None else "f4")
        if np_dtype.kind == "O":
            raise FormatError(f"{where}: object arrays cannot be stored")

        filters, compressors, extra = _new_array_codecs(
            encoding, engine_options, np_dtype, self._s.zarr_format, where
        )
        if data is not None:
            digits = extra.get("scale_digits", encoding.scale_digits if encoding else None)
            check_lossy(data, digits, where)

        if chunks is None:
            chunks = extra.get("chunks")
        if isinstance(chunks, (int, np.integer)):
            chunks = (int(chunks),)
        if chunks is not None:
            chunk_shape: Any = tuple(max(1, int(c)) for c in chunks)
            if len(chunk_shape) != len(shape):
                raise FormatError(f"{where}: chunks {chunk_shape} do not fit shape {shape}")
        else:
            chunk_shape = _default_chunks(shape, np_dtype, growable)

        names = (
            tuple(dimension_names)
            if dimension_names is not None
            else (_new_dimension_names(_join(self._raw.path, leaf), len(shape)))
        )
        dims: dict[str, Any] = {"dimension_names": names}
        if self._s.zarr_format != 3:  # zarr-python refuses dimension_names for format 2
            shards = None
            dims = {"attributes": {V2_DIMENSIONS_ATTR: list(names)}}  # xarray's attribute
        elif shards is not None:
            shards = tuple(int(x) for x in shards)
            if (
                not isinstance(chunk_shape, tuple)
                or len(shards) != len(chunk_shape)
                or any(sh % c for sh, c in zip(shards, chunk_shape, strict=True))
            ):
                raise FormatError(f"{where}: shards {shards} are not a multiple of {chunk_shape}")
            if shards == chunk_shape:
                shards = None
        else:
            shards = _shard_shape(shape, chunk_shape, np_dtype, growable)
        try:
            with _quiet(), self._s.writing():
                raw = self._raw.create_array(
                    leaf,
                    shape=shape,
                    dtype=np_dtype,
                    chunks=chunk_shape,
                    shards=shards,
                    filters=filters,
                    compressors=compressors,
                    fill_value=extra.get("fill_value", 0),
                    **dims,
                )
        except _EXISTS_ERRORS as exc:
            raise self._exists_error(leaf) from exc
        except (TypeError, ValueError) as exc:
            raise EngineError(f"{where}: zarr refused the settings ({exc})") from exc
        self._s.nodes[raw.path] = raw
        if data is not None and data.size:
            with self._s.writing():
                raw[...] = data
        return ZarrArray(raw, self._s)

    def write_many(self, nodes: Sequence[GroupSpec | ArraySpec]) -> None:
        """Write the batch in one concurrent round of store writes (Zarr v3).

        zarr-python spends milliseconds of CPU per node it creates (existence
        checks, parent documents, validation) and one event-loop round trip per
        call, which made writing a shot's few dozen nodes slower than skelshop's
        HDF5 writer. Here each node's metadata document is made from a cached
        template built by zarr itself (:func:`_array_template`), arrays of at most
        :data:`SHARD_BYTES` are stored as a single chunk encoded by zarr's own codec
        pipeline, and every document and chunk is written in one ``gather``. Only
        the batch's top-level names are checked for existing nodes; their children
        are new by construction. Larger arrays, Zarr v2 and batches whose parents
        are not in the batch are created one by one (see :meth:`Group.write_many`),
        as is every batch where zarr lacks the internals the batch path uses
        (:func:`compat.has_batch_writes`).
        """
        self._check_writable()
        check_specs(self.where(), nodes)
        plan = _BatchPlan.make(self, nodes)
        if plan is None:
            super().write_many(nodes)
            return
        for name in plan.top_level:
            if self.child(name) is not None:
                raise self._exists_error(name)
        store = self._raw.store_path.store
        base = self._raw.path
        proto = zarr.buffer.default_buffer_prototype()
        documents = [(_join(base, k), proto.buffer.from_bytes(d)) for k, d in plan.documents]
        # arrays are made before anything is written, for the same reason
        arrays = [
            (zarr.AsyncArray(metadata=meta, store_path=StorePath(store, _join(base, path))), data)
            for path, meta, data in plan.chunks
        ]

        jobs = [store.set(key, doc) for key, doc in documents]
        jobs += [arr.setitem(..., data) for arr, data in arrays]
        self._run_concurrently(jobs, "writing a batch of nodes")
        for spec in plan.one_by_one:  # their parents exist now
            self.create_array(
                spec.path,
                data=spec.data,
                chunks=spec.chunks,
                encoding=spec.encoding,
                engine_options=spec.engine_options,
            )

    def append_many(self, items: Sequence[tuple[Array, np.ndarray]]) -> None:
        """Append to every array concurrently in one event-loop call (zarr's async
        ``append``: resize, then write); arrays of other engines one by one."""
        self._check_writable()
        batch = []
        for arr, values in items:
            values = np.asarray(values)
            async_arr = _async_target(arr, values)
            shape = arr.shape
            if not shape or values.ndim != len(shape) or values.shape[1:] != shape[1:]:
                raise FormatError(f"{arr.where()}: cannot append shape {values.shape} to {shape}")
            if async_arr is None:
                arr.append(values)
            elif len(values):
                batch.append((async_arr, values.astype(arr.dtype, copy=False)))
        if batch:
            jobs = [a.append(v, axis=0) for a, v in batch]
            self._run_concurrently(jobs, "appending to arrays")

    def set_many(self, items: Sequence[tuple[Array, int, np.ndarray]]) -> None:
        """Write every slice concurrently in one event-loop call (zarr's async
        ``setitem``); arrays of other engines one by one. Chunks are stored even
        where they hold only the fill value (zarr's ``write_empty_chunks``): what
        was written is then what the store holds, as on HDF5, and no chunk is
        compared with the fill value first."""
        jobs = self._set_jobs(items)
        if jobs:
            self._run_concurrently(jobs, "writing to arrays")

    def start_set_many(self, items: Sequence[tuple[Array, int, np.ndarray]]) -> Callable[[], None]:
        """:meth:`set_many` handed to zarr's event loop, returning at once (see
        :meth:`Group.start_set_many`); a store's first write is made at once
        (it may first drop stale consolidated metadata)."""
        if not self._s.dirty or not compat.has_sync():
            return super().start_set_many(items)
        jobs = self._set_jobs(items)
        if not jobs:
            return super().start_set_many([])

        async def run_all() -> None:
            await asyncio.gather(*jobs)

        future = compat.submit(run_all())
        self._s.pending.add(future)

        def finish() -> None:
            try:
                self._finish(future.result, "writing to arrays")
            finally:
                self._s.pending.discard(future)

        return finish

    def _set_jobs(self, items: Sequence[tuple[Array, int, np.ndarray]]) -> list[Any]:
        """zarr's ``setitem`` coroutines of ``items`` (arrays of other engines are
        written here, one by one)."""
        self._check_writable()
        jobs: list[Any] = []
        for arr, start, values in items:
            values = np.asarray(values)
            async_arr = _async_target(arr, values)
            if async_arr is None:
                arr[start : start + len(values)] = values
            elif len(values):
                values = values.astype(arr.dtype, copy=False)
                if hasattr(async_arr, "with_config"):  # zarr >= 3.1
                    async_arr = async_arr.with_config({"write_empty_chunks": True})
                jobs.append(async_arr.setitem(slice(start, start + len(values)), values))
        return jobs

    def _run_concurrently(self, jobs: list[Coroutine[Any, Any, Any]], doing: str) -> None:
        """Await ``jobs`` together in one call on zarr's event loop, inside the
        failed-write guard; a failure other than skelstore's is an EngineError."""

        async def run_all() -> None:
            await asyncio.gather(*jobs)

        self._finish(lambda: compat.run(run_all()), doing)

    def _finish(self, wait: Callable[[], Any], doing: str) -> None:
        """``wait()`` for a write inside the failed-write guard; a failure other
        than skelstore's is an EngineError."""
        try:
            with _quiet(), self._s.writing():
                wait()
        except SkelstoreError:
            raise
        except Exception as exc:
            raise EngineError(f"{self.where()}: {doing} failed ({exc})") from exc

    # -- bulk reading ----------------------------------------------------
    def read_many(self, requests: Sequence[Array | tuple[Array, Any]]) -> list[np.ndarray]:
        """Read every request concurrently in one event-loop call (zarr's async API).

        Requests that are not Zarr arrays, or whose selection is not a basic one
        (ints, slices, ``...``), are read one by one.
        """
        self._s.check_open()
        pairs = [req if isinstance(req, tuple) else (req, ...) for req in requests]
        out: list[Any] = [None] * len(pairs)
        batch: list[tuple[int, Any, Any]] = []
        for i, (arr, sel) in enumerate(pairs):
            async_arr = None
            if isinstance(arr, ZarrArray) and _is_basic(sel) and compat.has_sync():
                async_arr = arr.raw.async_array
            if async_arr is None:
                out[i] = arr[sel]
            else:
                arr.check_read(sel)
                batch.append((i, async_arr, sel))
        if batch:

            async def gather() -> list[Any]:
                return await asyncio.gather(*(a.getitem(sel) for _, a, sel in batch))

            try:
                results = compat.run(gather())
            except (MemoryError, SkelstoreError):
                raise
            except Exception:  # read one by one: the failing array raises, named
                for i, _, _ in batch:
                    arr, sel = pairs[i]
                    out[i] = arr[sel]
                return out
            for (i, _, _), result in zip(batch, results, strict=True):
                out[i] = np.asarray(result)
        return out

    # -- lifetime --------------------------------------------------------
    def flush(self) -> None:
        """Nothing to do: writes reach the store at once. (A ``.zarr.zip`` is only
        written by :meth:`close`; metadata is consolidated there too.)"""
        self._s.check_open()

    def close(self) -> None:
        """For the root opened by :meth:`ZarrEngine.open`: consolidate metadata if
        writable, release the store and write a ``.zarr.zip``. Otherwise nothing.
        Safe to call twice.

        Raises:
            WriteError: a write failed (now, or earlier in the session) and no
                other exception is leaving the ``with`` block.
        """
        if not self._root:
            return
        ok = self.exit_ok
        try:
            if self._s.closed:
                pass
            elif self._s.failed is None:
                self.run_close_hooks()
            else:  # nothing more can be written
                self.drop_close_hooks()
        except WriteError:
            pass  # remembered by the session, raised by its close
        finally:
            self._s.close(ok)

    def abort(self) -> None:
        """Release the store without consolidating or publishing anything."""
        if self._root:
            self.drop_close_hooks()
            self._s.close(False, finish=False)

    @property
    def owns_file(self) -> bool:
        return bool(self._root and self._s.owner and not self._s.closed)

    def delete(self, name: str) -> None:
        """Delete child ``name`` and everything under it."""
        self._check_writable()
        if self.child(name) is None:
            raise NotFoundError(f"{self.where()}: no member {name!r} to delete")
        with _quiet(), self._s.writing():
            del self._raw[name]
        prefix = _join(self._raw.path, name)
        for key in [k for k in self._s.nodes if k == prefix or k.startswith(prefix + "/")]:
            del self._s.nodes[key]


def _async_target(arr: Array, values: np.ndarray) -> Any | None:
    """The zarr ``AsyncArray`` to write ``values`` to concurrently (after the lossy
    check), or ``None`` for arrays written one by one (other engines')."""
    if isinstance(arr, ZarrArray) and compat.has_sync():
        arr._check_values(values)
        return arr.raw.async_array
    return None
