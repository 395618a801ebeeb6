"""Attributes in the storage interface: :class:`Attrs`, the mapping every node's
``attrs`` is, and :func:`normalize_attr`, the one normalisation of values read
(both re-exported by :mod:`skelstore.storage`)."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import numpy as np

from skelstore.errors import NotFoundError, ReadOnlyError

__all__ = ["Attrs", "normalize_attr"]


def normalize_attr(value: Any) -> Any:
    """Turn an attribute value as stored by any engine into plain Python.

    numpy scalars become ``int``/``float``/``bool``/``str``; ``bytes`` are decoded as
    UTF-8; numpy arrays and tuples become (nested) lists of such values.
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return normalize_attr(value[()])
        return [normalize_attr(v) for v in value]
    if isinstance(value, np.generic):
        return normalize_attr(value.item())
    if isinstance(value, (list, tuple)):
        return [normalize_attr(v) for v in value]
    return value


class Attrs(MutableMapping[str, Any]):
    """Attributes of a node: a mutable mapping over the engine's own attributes.

    Reads go through :func:`normalize_attr`; writes through the engine's
    ``encode`` function (which may, for example, turn a list into a numpy array
    for HDF5). ``raw`` is the engine's mapping (``h5py.AttributeManager``,
    ``zarr`` attributes); ``writable`` guards every write, and so does ``guard``
    if given: a callable that raises when a write is not possible now (e.g.
    :class:`~skelstore.errors.ClosedError` once the file is closed).
    """

    def __init__(
        self,
        raw: MutableMapping[str, Any],
        *,
        writable: bool,
        where: str,
        encode: Any = None,
        guard: Any = None,
    ) -> None:
        self._raw = raw
        self._writable = writable
        self._where = where
        self._encode = encode or (lambda v: v)
        self._guard = guard

    def __getitem__(self, key: str) -> Any:
        try:
            return normalize_attr(self._raw[key])
        except KeyError:
            raise NotFoundError(f"{self._where}: no attribute {key!r}") from None

    def __setitem__(self, key: str, value: Any) -> None:
        self._check_writable()
        self._raw[key] = self._encode(normalize_attr(value))

    def __delitem__(self, key: str) -> None:
        self._check_writable()
        try:
            del self._raw[key]
        except KeyError:
            raise NotFoundError(f"{self._where}: no attribute {key!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._raw.keys()))

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def update_all(self, values: dict[str, Any]) -> None:
        """Set many attributes in one write where the engine allows it (Zarr writes its
        metadata document once instead of once per attribute)."""
        self._check_writable()
        self._raw.update({k: self._encode(normalize_attr(v)) for k, v in values.items()})

    def update(self, other: Any = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        """Like ``dict.update``, written in one go (see :meth:`update_all`)."""
        self.update_all({**dict(other), **kwargs})

    def _check_writable(self) -> None:
        if self._guard is not None:
            self._guard()
        if not self._writable:
            raise ReadOnlyError(f"{self._where}: opened read-only, cannot change attributes")

    def __repr__(self) -> str:
        return f"<Attrs of {self._where}: {dict(self)!r}>"
