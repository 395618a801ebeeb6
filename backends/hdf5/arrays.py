"""HDF5 datasets as skelstore arrays (:class:`HDF5Array`), with read-size guards
and exact chunk byte ranges for remote reads; what groups and arrays share."""

from __future__ import annotations

import math
from typing import Any

import h5py
import numpy as np

from skelstore.backends.hdf5.attrs import _encode_attr, _H5Attrs
from skelstore.backends.hdf5.encoding import _SCALEOFFSET_FILTER_ID
from skelstore.backends.hdf5.errors import _sync, _writing, h5_errors
from skelstore.compression import (
    BLOSC_BITSHUFFLE,
    BLOSC_FILTER_ID,
    BLOSC_ZSTD,
    Encoding,
    check_lossy,
)
from skelstore.config import get_options
from skelstore.errors import (
    ClosedError,
    FormatError,
)
from skelstore.storage import (
    CHECKED_READ_BYTES,
    MAX_EXPANSION,
    Array,
    Attrs,
)


def _read_whole(ds: Any) -> np.ndarray:
    """``ds[()]`` for plain numeric datasets without h5py's selection machinery
    (which costs more than reading a small pose array); h5py's path otherwise."""
    dtype, shape = ds.dtype, ds.shape
    if shape is None or dtype.kind not in "iuf" or dtype.names is not None or dtype.subdtype:
        return ds[()]
    out = np.empty(shape, dtype=dtype)
    if out.size:
        ds.id.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out


def _row_span(ds: h5py.Dataset, sel: Any) -> tuple[int, int]:
    """Rows ``[a, b)`` of axis 0 that ``sel`` touches (all rows if unknown)."""
    n = ds.shape[0] if ds.shape else 0
    first = sel[0] if isinstance(sel, tuple) and sel else sel
    if isinstance(first, slice) and first.step in (None, 1):
        a, b, _ = first.indices(n)
        return a, max(a, b)
    if isinstance(first, (int, np.integer)):
        a = int(first) % n if n else 0
        return a, a + 1
    return 0, n


def _selection_bytes(ds: h5py.Dataset, sel: Any) -> int:
    """Bytes ``ds[sel]`` allocates (for the whole first axis if ``sel`` is not a
    simple int/slice selection)."""
    shape, itemsize = ds.shape, ds.dtype.itemsize  # each an HDF5 call: asked once
    if not shape:
        return itemsize
    a, b = _row_span(ds, sel)
    return (b - a) * itemsize * math.prod(shape[1:])


def chunk_byte_ranges(ds: h5py.Dataset, sel: Any = ...) -> list[tuple[int, int]]:
    """File byte ranges ``[start, end)`` holding the data ``ds[sel]`` reads.

    Chunked datasets report each chunk's address (``chunk_iter``); contiguous ones
    their single extent; compact ones live in metadata (no range).
    """
    if not ds.shape or ds.size == 0:
        return []
    dsid = ds.id
    a, b = _row_span(ds, sel)
    if a >= b:
        return []
    if ds.chunks is None:
        offset = dsid.get_offset()
        if offset is None:
            return []
        row_bytes = ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64))
        return [(offset + a * row_bytes, offset + b * row_bytes)]
    rows = ds.chunks[0]
    lo, hi = (a // rows) * rows, b
    out: list[tuple[int, int]] = []

    def visit(info: Any) -> None:
        if lo <= info.chunk_offset[0] < hi and info.byte_offset is not None:
            out.append((info.byte_offset, info.byte_offset + info.size))

    if hasattr(dsid, "chunk_iter"):
        dsid.chunk_iter(visit)
    else:  # pragma: no cover - HDF5 < 1.12.3
        for i in range(dsid.get_num_chunks()):
            visit(dsid.get_chunk_info(i))
    return out


class _H5Node:
    """What HDF5 groups and arrays share: an h5py object (:attr:`raw`) of an open
    file, its source for messages and whether the file was opened for writing."""

    _source: str
    _writable: bool
    raw: Any

    @property
    def path(self) -> str:
        return self.raw.name  # type: ignore[no-any-return]

    @property
    def source(self) -> str:
        return self._source

    @property
    def writable(self) -> bool:
        return self._writable

    @property
    def attrs(self) -> Attrs:
        where = self.where()  # type: ignore[attr-defined]
        return Attrs(
            _H5Attrs(self.raw, where, self._source),
            writable=self._writable,
            where=where,
            encode=_encode_attr,
            guard=self.check_open,
        )

    def check_open(self) -> None:
        if not self.raw.id.valid:
            raise ClosedError(f"{self._source}: the dump has been closed; cannot write to it")


class HDF5Array(_H5Node, Array):
    """An ``h5py.Dataset``."""

    def __init__(
        self, ds: h5py.Dataset, source: str, writable: bool, *, allow_external: bool = False
    ) -> None:
        self._ds = ds
        self._source = source
        self._writable = writable
        self._allow_external = allow_external or get_options().allow_external
        self._source_checked = False

    @property
    def raw(self) -> h5py.Dataset:
        return self._ds

    @property
    def shape(self) -> tuple[int, ...]:
        with h5_errors(self.where, "cannot read the shape"):
            shape = self._ds.shape
        if shape and max(shape) >= 2**63:  # beyond any index (len() fails on it)
            raise FormatError(f"{self.where()}: impossible shape {shape}")
        return shape

    @property
    def dtype(self) -> np.dtype:
        with h5_errors(self.where, "cannot read the data type"):
            return self._ds.dtype

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return self._ds.chunks

    @property
    def growable(self) -> bool:
        maxshape = self._ds.maxshape
        return bool(maxshape) and maxshape[0] is None

    @property
    def nbytes_stored(self) -> int | None:
        return int(self._ds.id.get_storage_size())

    @property
    def encoding(self) -> Encoding | None:
        dcpl = self._ds.id.get_create_plist()
        blosc: int | None = None
        digits: int | None = None
        for i in range(dcpl.get_nfilters()):
            code, _flags, values, _name = dcpl.get_filter(i)
            if code == BLOSC_FILTER_ID and len(values) >= 7:
                if values[5] != BLOSC_BITSHUFFLE or values[6] != BLOSC_ZSTD:
                    return None
                blosc = int(values[4])
            elif code == _SCALEOFFSET_FILTER_ID and self._ds.dtype.kind == "f":
                digits = self._ds.scaleoffset
            else:
                return None
        return Encoding(blosc, digits)

    def _check_source(self) -> None:
        """Refuse a dataset whose raw data lives in other files (external storage,
        virtual dataset sources), unless opened with ``allow_external``."""
        if self._source_checked or self._allow_external:
            return
        dcpl = self._ds.id.get_create_plist()
        if dcpl.get_external_count():
            raise FormatError(
                f"{self.where()}: raw data kept in external file {dcpl.get_external(0)[0]!r}; "
                "skelstore reads data from the dump file only (in Python, skelstore.open(..., "
                "allow_external=True) allows it)"
            )
        if dcpl.get_layout() == h5py.h5d.VIRTUAL:
            for i in range(dcpl.get_virtual_count()):
                if dcpl.get_virtual_filename(i) != ".":
                    raise FormatError(
                        f"{self.where()}: virtual dataset mapping file "
                        f"{dcpl.get_virtual_filename(i)!r}; skelstore reads data from the dump "
                        "file only (in Python, skelstore.open(..., allow_external=True) allows it)"
                    )
        self._source_checked = True

    def _check_size(self, selection: Any) -> None:
        """Refuse a large read the dataset's stored bytes cannot account for (a shape
        declared far beyond what was ever written)."""
        need = _selection_bytes(self._ds, selection)
        if need <= CHECKED_READ_BYTES:
            return
        stored = int(self._ds.id.get_storage_size())
        if need > stored * MAX_EXPANSION:
            raise FormatError(
                f"{self.where()}: shape {self._ds.shape} ({self._ds.dtype}) asks for {need} "
                f"bytes but the file stores {stored} bytes for it; refusing to read"
            )

    def __getitem__(self, selection: Any) -> np.ndarray:
        with h5_errors(self.where, "cannot read"):
            self._check_source()
            self._check_size(selection)
            if selection is Ellipsis or selection == ():
                return _read_whole(self._ds)
            return self._ds[selection]

    def _check_values(self, values: Any) -> None:
        """Refuse values this dataset's scale-offset filter cannot keep (InputError)."""
        if self._ds.dtype.kind == "f":
            check_lossy(values, self._ds.scaleoffset, self.where())

    def __setitem__(self, selection: Any, values: Any) -> None:
        self._check_writable()
        self._check_values(values)
        with _writing(self._ds, self._source):
            self._ds[selection] = values
            _sync(self._ds)

    def append(self, values: np.ndarray) -> None:
        self._check_writable()
        values = np.asarray(values)
        self._check_values(values)
        if not self.growable:
            raise FormatError(f"{self.where()}: array was not created growable")
        if values.shape[1:] != self.shape[1:]:
            raise FormatError(f"{self.where()}: cannot append shape {values.shape} to {self.shape}")
        if len(values) == 0:
            return
        n = self._ds.shape[0]
        with _writing(self._ds, self._source):
            self._ds.resize(n + len(values), axis=0)
            self._ds[n:] = values
            _sync(self._ds)

    def truncate(self, length: int) -> None:
        self._check_writable()
        if not self.growable or not 0 <= length <= len(self):
            raise FormatError(f"{self.where()}: cannot truncate to {length}")
        with _writing(self._ds, self._source):
            self._ds.resize(length, axis=0)
