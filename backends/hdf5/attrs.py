"""HDF5 attributes as skelstore attributes: scalar reads through the low-level API,
values HDF5 cannot hold natively stored as JSON text (and recorded)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, MutableMapping
from typing import Any

import h5py
import numpy as np

from skelstore.backends.hdf5.errors import _H5_ERRORS, _writing, h5_errors
from skelstore.errors import (
    FormatError,
)
from skelstore.storage import (
    normalize_attr,
)


def _scalar_attr(obj: Any, key: str) -> Any:
    """A scalar numeric attribute read with two library calls, or ``None`` for
    anything else (strings, arrays, empty attributes: h5py's reader handles those).

    Raises KeyError if there is no such attribute (as h5py does)."""
    aid = h5py.h5a.open(obj.id, key.encode("utf-8", "surrogateescape"))
    dtype = aid.dtype
    if aid.shape != () or dtype.kind not in "iuf" or dtype.names is not None:
        return None
    out = np.empty((), dtype=dtype)
    aid.read(out)
    return out[()]


#: Attribute listing the names of a node's attributes stored as JSON text: values
#: HDF5 has no type for (mappings, ``None``, integers beyond 64 bits, lists mixing
#: types or of uneven lengths). Readers through skelstore get the values back and
#: never see this attribute; plain h5py sees the JSON text.
JSON_ATTRS = "skelstore_json_attrs"


class _JSONText(str):
    """An attribute value to store as JSON text (see :data:`JSON_ATTRS`)."""


def _same(a: Any, b: Any) -> bool:
    """``a == b`` as attribute values (NaN equal to NaN, a str never equal to a number)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, str) != isinstance(b, str) or isinstance(a, list) != isinstance(b, list):
        return False
    return bool(a == b)


class _H5Attrs(MutableMapping[str, Any]):
    """An h5py object's attributes, whose read failures raise FormatError.

    A missing attribute still raises ``KeyError`` (which :class:`Attrs` turns into
    NotFoundError); unreadable ones (damaged metadata, unsupported types) raise
    :class:`~skelstore.errors.FormatError` naming the node. Values stored as JSON
    text (:data:`JSON_ATTRS`) are decoded, and the list itself is hidden; an empty
    attribute (``h5py.Empty``) reads as ``None``.
    """

    def __init__(self, obj: Any, where: str, source: str | None = None) -> None:
        self._obj = obj
        self._where = where
        self._source = source or where

    def _raw(self) -> Any:
        with h5_errors(self._where, "cannot read attributes"):
            return self._obj.attrs

    def _json_names(self, raw: Any) -> list[str]:
        try:
            names = raw.get(JSON_ATTRS)
        except _H5_ERRORS:
            return []
        if names is None or isinstance(names, h5py.Empty):
            return []
        names = np.atleast_1d(np.asarray(names))
        return [
            n.decode("utf-8", "surrogateescape") if isinstance(n, bytes) else str(n)
            for n in names.tolist()
        ]

    def _set_json_names(self, raw: Any, names: list[str]) -> None:
        if names:
            raw[JSON_ATTRS] = np.array(names, dtype=h5py.string_dtype())
        elif JSON_ATTRS in raw:
            del raw[JSON_ATTRS]

    def __getitem__(self, key: str) -> Any:
        if key == JSON_ATTRS:
            raise KeyError(key)
        raw = self._raw()
        with h5_errors(self._where, f"cannot read attribute {key!r}", passing=(KeyError,)):
            value = _scalar_attr(self._obj, key)
            if value is not None:
                return value
            value = raw[key]
        if isinstance(value, h5py.Empty):
            return None
        if isinstance(value, (str, bytes)) and key in self._json_names(raw):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise FormatError(
                    f"{self._where}: attribute {key!r} is marked as JSON but does not parse ({exc})"
                ) from exc
        return value

    def _store(self, raw: Any, values: dict[str, Any]) -> None:
        for key in values:
            if key == JSON_ATTRS:
                raise FormatError(f"{self._where}: attribute name {JSON_ATTRS!r} is reserved")
        names = self._json_names(raw)
        before = list(names)
        for key, value in values.items():
            raw[key] = str(value) if isinstance(value, _JSONText) else value
            if isinstance(value, _JSONText) and key not in names:
                names.append(key)
            elif not isinstance(value, _JSONText) and key in names:
                names.remove(key)
        if names != before:
            self._set_json_names(raw, names)

    def __setitem__(self, key: str, value: Any) -> None:
        with _writing(self._obj, self._source):
            self._store(self._raw(), {key: value})

    def __delitem__(self, key: str) -> None:
        if key == JSON_ATTRS:
            raise KeyError(key)
        with _writing(self._obj, self._source):
            raw = self._raw()
            del raw[key]
            names = self._json_names(raw)
            if key in names:
                names.remove(key)
                self._set_json_names(raw, names)

    def __contains__(self, key: object) -> bool:
        if key == JSON_ATTRS:
            return False
        with h5_errors(self._where, "cannot read attributes"):
            return key in self._raw()

    def _names(self) -> list[str]:
        with h5_errors(self._where, "cannot list attributes"):
            return [k for k in self._raw() if k != JSON_ATTRS]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def update(self, other: Any = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        with _writing(self._obj, self._source):
            self._store(self._raw(), {**dict(other), **kwargs})


def _encode_attr(value: Any) -> Any:
    """Attribute values as h5py stores them the way skelshop wrote them; values HDF5
    cannot hold faithfully (see :data:`JSON_ATTRS`) as JSON text."""
    if value is None or isinstance(value, dict):
        return _as_json(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**64 else _as_json(value)
    if isinstance(value, list):
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError, OverflowError):  # ragged lists and the like
            return _as_json(value)
        if arr.dtype.kind not in "biufU" or not _same(normalize_attr(arr), value):
            return _as_json(value)  # objects, or a list numpy would change (mixed types)
        if arr.dtype.kind == "U":
            return arr.astype(h5py.string_dtype())
        return arr
    return value


def _as_json(value: Any) -> _JSONText:
    try:
        return _JSONText(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise FormatError(f"cannot store {value!r} as an HDF5 attribute ({exc})") from exc
