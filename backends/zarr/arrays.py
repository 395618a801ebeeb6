"""Zarr nodes as skelstore nodes: the common base and :class:`ZarrArray`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import zarr
import zarr.buffer
import zarr.errors
import zarr.storage

from skelstore.backends.zarr.attrs import V2_DIMENSIONS_ATTR, _json_safe, _ZarrAttrMap
from skelstore.backends.zarr.codecs import _array_codecs, _codec_spec, _encoding_of, _unsafe_reason
from skelstore.backends.zarr.session import _Session
from skelstore.backends.zarr.util import _META_ERRORS, _quiet
from skelstore.compression import Encoding, check_lossy
from skelstore.errors import (
    EngineError,
    FormatError,
    SkelstoreError,
)
from skelstore.storage import (
    CHECKED_READ_BYTES,
    MAX_EXPANSION,
    Array,
    Attrs,
)


def _selection_bytes(shape: tuple[int, ...], itemsize: int, sel: Any) -> int:
    """Bytes a read of ``sel`` allocates (the whole first axis unless ``sel`` is a
    simple int or slice along it)."""
    if not shape:
        return itemsize
    n = shape[0]
    first = sel[0] if isinstance(sel, tuple) and sel else sel
    if isinstance(first, slice) and first.step in (None, 1):
        a, b, _ = first.indices(n)
        rows = max(0, b - a)
    elif isinstance(first, (int, np.integer)) and not isinstance(first, bool):
        rows = 1
    else:
        rows = n
    return rows * itemsize * math.prod(shape[1:])


class _ZarrNode:
    """What Zarr arrays and groups share: a zarr object in a session."""

    _raw: Any
    _s: _Session

    @property
    def path(self) -> str:
        return "/" + self._raw.path

    @property
    def source(self) -> str:
        return self._s.source

    @property
    def raw(self) -> Any:
        return self._raw

    @property
    def attrs(self) -> Attrs:
        where = self.where()
        hidden = frozenset()
        if self._s.zarr_format == 2 and isinstance(self._raw, zarr.Array):
            hidden = frozenset({V2_DIMENSIONS_ATTR})
        return Attrs(
            _ZarrAttrMap(self._raw, hidden, self._s.writing),
            writable=self._s.writable,
            where=where,
            encode=lambda v: _json_safe(v, where),
            guard=self._check_writable,
        )

    @property
    def writable(self) -> bool:
        return self._s.writable and not self._s.closed

    def check_open(self) -> None:
        self._s.check_write_state()


class ZarrArray(_ZarrNode, Array):
    """A ``zarr.Array`` (format 2 or 3). Any array can grow along its first axis.

    Raises:
        FormatError: on construction, if the array's codecs would decode Python
            objects (pickle and the like) — such arrays are never read.
    """

    def __init__(self, raw: Any, session: _Session) -> None:
        self._raw = raw
        self._s = session
        try:
            filters, serializer, compressors = _array_codecs(raw)
            codecs = [*filters, *([serializer] if serializer is not None else []), *compressors]
            reason = _unsafe_reason([_codec_spec(c)[0] for c in codecs], np.dtype(raw.dtype))
        except _META_ERRORS as exc:
            raise FormatError(f"{self.where()}: unusable array metadata ({exc})") from exc
        if reason:
            raise FormatError(f"{self.where()}: refusing to read this array: {reason}")

    @property
    def shape(self) -> tuple[int, ...]:
        shape = tuple(int(d) for d in self._raw.shape)
        if any(d >= 2**63 for d in shape):  # beyond any index (len() fails on it)
            raise FormatError(f"{self.where()}: impossible shape {shape}")
        return shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._raw.dtype)

    @property
    def chunks(self) -> tuple[int, ...] | None:
        try:
            return tuple(int(c) for c in self._raw.chunks)
        except (NotImplementedError, TypeError, ValueError):  # pragma: no cover
            return None

    @property
    def encoding(self) -> Encoding | None:
        try:
            return _encoding_of(self._raw)
        except _META_ERRORS:  # codec settings skelstore cannot read: a foreign encoding
            return None

    @property
    def growable(self) -> bool:
        return True

    @property
    def shards(self) -> tuple[int, ...] | None:
        try:
            found = getattr(self._raw, "shards", None)
            return tuple(int(c) for c in found) if found else None
        except (NotImplementedError, TypeError, ValueError):  # pragma: no cover
            return None

    @property
    def nbytes_stored(self) -> int | None:
        try:
            return int(self._raw.nbytes_stored())
        except Exception:  # optional information only
            return None

    def check_read(self, selection: Any) -> None:
        """Refuse a large read that the bytes the array stores cannot account for."""
        need = _selection_bytes(self.shape, self.dtype.itemsize, selection)
        if need <= CHECKED_READ_BYTES:
            return
        stored = self.nbytes_stored  # None where the store cannot list (plain HTTP)
        if stored is not None and need > stored * MAX_EXPANSION:
            raise FormatError(
                f"{self.where()}: shape {self.shape} ({self.dtype}) asks for {need} bytes "
                f"but the store holds {stored} bytes for it; refusing to read"
            )

    def read_error(self, exc: Exception) -> SkelstoreError:
        """The typed error for ``exc``, raised by zarr or a codec while reading."""
        if isinstance(exc, SkelstoreError):
            return exc
        if isinstance(exc, OSError):
            return EngineError(f"{self.where()}: cannot read ({type(exc).__name__}: {exc})")
        return FormatError(f"{self.where()}: cannot decode ({type(exc).__name__}: {exc})")

    def __getitem__(self, selection: Any) -> np.ndarray:
        self._s.check_open()
        self.check_read(selection)
        try:
            return np.asarray(self._raw[selection])
        except MemoryError:
            raise
        except Exception as exc:  # codecs raise anything for damaged chunks
            raise self.read_error(exc) from exc

    def _check_values(self, values: Any) -> None:
        """Refuse values this array's scale-offset filter cannot keep (InputError)."""
        if self.dtype.kind == "f":
            enc = self.encoding
            check_lossy(values, enc.scale_digits if enc else None, self.where())

    def __setitem__(self, selection: Any, values: Any) -> None:
        self._check_writable()
        self._check_values(values)
        with self._s.writing():
            self._raw[selection] = values

    def append(self, values: np.ndarray) -> None:
        """Append along the first axis (values are cast to the array's dtype)."""
        self._check_writable()
        values = np.asarray(values)
        self._check_values(values)
        shape = self.shape
        if not shape or values.ndim != len(shape) or values.shape[1:] != shape[1:]:
            raise FormatError(f"{self.where()}: cannot append shape {values.shape} to {shape}")
        if len(values) == 0:
            return
        with self._s.writing():
            self._raw.append(values.astype(self.dtype, copy=False), axis=0)

    def truncate(self, length: int) -> None:
        """Shrink the first axis to ``length``."""
        self._check_writable()
        if not self.shape or not 0 <= length <= self.shape[0]:
            raise FormatError(f"{self.where()}: cannot truncate to {length}")
        with _quiet(), self._s.writing():
            self._raw.resize((length, *self.shape[1:]))


def _is_basic(selection: Any) -> bool:
    """True for selections zarr's async ``getitem`` takes: ints, slices, ``...``."""
    items = selection if isinstance(selection, tuple) else (selection,)
    return all(
        s is Ellipsis
        or isinstance(s, slice)
        or (isinstance(s, (int, np.integer)) and not isinstance(s, bool))
        for s in items
    )
