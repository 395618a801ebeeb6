"""Batch writes (:meth:`ZarrGroup.write_many`): a shot's documents and chunks planned
in memory and written in one concurrent round."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
import zarr.buffer
import zarr.errors
import zarr.storage

from skelstore.backends.zarr import compat
from skelstore.backends.zarr.attrs import _json_safe, _new_dimension_names
from skelstore.backends.zarr.chunking import SHARD_BYTES
from skelstore.backends.zarr.codecs import _new_array_codecs
from skelstore.backends.zarr.util import _join, _quiet
from skelstore.errors import (
    FormatError,
)
from skelstore.storage import (
    ArraySpec,
    GroupSpec,
)

if TYPE_CHECKING:
    from skelstore.backends.zarr.groups import ZarrGroup


#: Array templates for write_many: (dtype, trailing shape, codecs, fill) -> v3 document.
_TEMPLATES: dict[tuple[Any, ...], dict[str, Any]] = {}


_TEMPLATES_LOCK = threading.Lock()


def _array_template(
    dtype: np.dtype, trailing: tuple[int, ...], filters: Any, compressors: Any, fill: Any
) -> dict[str, Any]:
    """The v3 metadata document zarr itself writes for an unsharded array of this
    kind (made once per kind, in memory: :func:`compat.array_v3_document`); shape
    and chunks are filled in per array."""
    key = (dtype.str, trailing, repr(filters), repr(compressors), repr(fill))
    with _TEMPLATES_LOCK:
        doc = _TEMPLATES.get(key)
    if doc is None:
        with _quiet():
            doc = compat.array_v3_document(dtype, trailing, filters, compressors, fill)
        with _TEMPLATES_LOCK:
            _TEMPLATES[key] = doc
    return doc


@dataclass
class _BatchPlan:
    """What :meth:`ZarrGroup.write_many` writes: documents, chunks, leftovers."""

    top_level: list[str]
    documents: list[tuple[str, bytes]]
    chunks: list[tuple[str, Any, np.ndarray]]
    one_by_one: list[ArraySpec]

    @classmethod
    def make(cls, group: ZarrGroup, nodes: Sequence[GroupSpec | ArraySpec]) -> _BatchPlan | None:
        """The plan, or ``None`` where the batch path does not apply."""
        if group._s.zarr_format != 3 or not compat.has_batch_writes() or not nodes:
            return None
        proto = zarr.buffer.default_buffer_prototype()
        plan = cls([], [], [], [])
        groups: set[str] = set()
        for node in nodes:
            parts = group._name_parts(node.path)
            path, parent = "/".join(parts), "/".join(parts[:-1])
            if parent and parent not in groups:
                return None  # parent outside the batch: the general path handles it
            if not parent:
                plan.top_level.append(path)
            where = f"{group.source}:{_join(group._raw.path, path)}"
            if isinstance(node, GroupSpec):
                attrs = {k: _json_safe(v, where) for k, v in (node.attrs or {}).items()}
                plan.documents.append((f"{path}/zarr.json", compat.group_v3_document(attrs, proto)))
                groups.add(path)
                continue
            data = np.asarray(node.data)
            if data.dtype.kind == "O":
                raise FormatError(f"{where}: object arrays cannot be stored")
            if data.nbytes > SHARD_BYTES or data.ndim == 0 or data.dtype.kind not in "biuf":
                plan.one_by_one.append(node)
                continue
            filters, compressors, extra = _new_array_codecs(
                node.encoding, node.engine_options, data.dtype, 3, where
            )
            doc = dict(
                _array_template(
                    data.dtype, data.shape[1:], filters, compressors, extra.get("fill_value", 0)
                )
            )
            doc["shape"] = list(data.shape)
            doc["dimension_names"] = list(
                _new_dimension_names(_join(group._raw.path, path), data.ndim)
            )
            doc["chunk_grid"] = {
                "name": "regular",
                "configuration": {"chunk_shape": [max(1, d) for d in data.shape]},
            }
            # the document as zarr writes it (json.dumps of to_dict()), without a
            # second round trip through the metadata class
            plan.documents.append((f"{path}/zarr.json", json.dumps(doc, indent=2).encode()))
            if data.size:
                with _quiet():
                    meta = compat.array_v3_metadata(doc)
                plan.chunks.append((path, meta, data))
        return plan
