"""Attributes of Zarr nodes: JSON-safe values, dimension names, one metadata
write per update."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from typing import Any

from skelstore.dimensions import dimension_names
from skelstore.errors import (
    FormatError,
)
from skelstore.storage import (
    normalize_attr,
)


def _json_safe(value: Any, where: str) -> Any:
    """``value`` as JSON-able Python (what zarr stores); raise FormatError otherwise."""
    value = normalize_attr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_json_safe(v, where) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise FormatError(f"{where}: attribute mapping keys must be str, not {k!r}")
            out[k] = _json_safe(v, where)
        return out
    raise FormatError(
        f"{where}: cannot store a {type(value).__name__} as a Zarr attribute (JSON only)"
    )


#: The attribute in which Zarr 2 arrays keep their dimension names (xarray's
#: convention; Zarr 3 has ``dimension_names`` in the metadata instead). It is
#: metadata, not a skeleton attribute: hidden from ``attrs`` and never copied.
V2_DIMENSIONS_ATTR = "_ARRAY_DIMENSIONS"


def _new_dimension_names(path: str, ndim: int) -> tuple[str, ...]:
    """The dimension names of a new array at ``path`` (inside the store): the one
    place every array the engine creates gets them from (:meth:`ZarrGroup.create_array`
    and the batch plan of :meth:`ZarrGroup.write_many`)."""
    return dimension_names(path, ndim)


class _ZarrAttrMap(MutableMapping[str, Any]):
    """A zarr node's attributes, written with one metadata write per update
    (inside ``writing``, the session's failed-write guard).

    ``hidden`` names are metadata kept in attributes (Zarr 2's
    :data:`V2_DIMENSIONS_ATTR`): not listed or read, and kept when others change.
    """

    def __init__(
        self, node: Any, hidden: frozenset[str] = frozenset(), writing: Any = contextlib.nullcontext
    ) -> None:
        self._node = node
        self._hidden = hidden
        self._writing = writing

    def _attrs(self) -> dict[str, Any]:
        attrs = self._node.metadata.attributes
        if self._hidden and not self._hidden.isdisjoint(attrs):
            return {k: v for k, v in attrs.items() if k not in self._hidden}
        return attrs

    def __getitem__(self, key: str) -> Any:
        return self._attrs()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        with self._writing():
            self._node.update_attributes({key: value})

    def __delitem__(self, key: str) -> None:
        if key in self._hidden:
            raise KeyError(key)
        attrs = dict(self._node.metadata.attributes)  # hidden ones included
        del attrs[key]
        with self._writing():
            self._node.attrs.put(attrs)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._attrs()))

    def __len__(self) -> int:
        return len(self._attrs())

    def update(self, other: Any = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        values = {**dict(other), **kwargs}
        if values:
            with self._writing():
                self._node.update_attributes(values)
