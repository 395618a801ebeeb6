"""Listing an HDF5 tree in one go (:func:`list_tree`, behind
:meth:`HDF5Group.list_tree <skelstore.storage.Group.list_tree>`), and opening many
arrays at once (:func:`arrays_at`).

The interface's default walk wraps every node in an :class:`HDF5Group` or
:class:`HDF5Array` (each looking up its file object and options) and reads
attributes through h5py's high-level managers; a skelshop dump has thousands of
tiny nodes, and that per-node Python cost is most of what listing it takes. Here
hard links are opened with h5py's low-level calls, attributes are read only from
nodes that have any (through the same :class:`_H5Attrs` the nodes use, so values
are identical), and anything else (soft, external or user-defined links) is
handed to the group's own ``_child``, so every link rule of the interface holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from skelstore.backends.hdf5.attrs import _H5Attrs
from skelstore.backends.hdf5.errors import _H5_ERRORS
from skelstore.errors import FormatError, SkelstoreError
from skelstore.storage import Array, Attrs, Group, NodeInfo, natural_key, normalize_attr

if TYPE_CHECKING:
    from skelstore.backends.hdf5.groups import HDF5Group


def _scalar_attrs(oid: Any) -> dict[str, Any] | None:
    """Every attribute of the object ``oid`` if all are plain numeric scalars with
    ASCII names (what skelshop's shot and pose groups hold), read by index as
    :func:`skelstore.backends.hdf5.attrs._scalar_attr` reads one; ``None`` for
    anything else (strings, arrays, JSON values: :class:`_H5Attrs` reads those)."""
    out: dict[str, Any] = {}
    for i in range(h5py.h5a.get_num_attrs(oid)):
        aid = h5py.h5a.open(oid, index=i)
        name, dtype = aid.name, aid.dtype
        if not name.isascii() or aid.shape != () or dtype.kind not in "iuf" or dtype.names:
            return None
        value = np.empty((), dtype=dtype)
        aid.read(value)
        out[name.decode("ascii")] = normalize_attr(value[()])
    return out


def list_tree(group: HDF5Group, depth: int) -> dict[str, NodeInfo]:
    """See :meth:`skelstore.storage.Group.list_tree`."""
    source = group.source
    out: dict[str, NodeInfo] = {}

    def attrs_of(obj: Any, path: str) -> dict[str, Any]:
        where = f"{source}:{path}"
        try:
            fast = _scalar_attrs(obj.id)
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except _H5_ERRORS:
            fast = None  # the nodes' own reader names the problem
        if fast is not None:
            return fast
        return dict(Attrs(_H5Attrs(obj, where, source), writable=False, where=where))

    def visit(grp: h5py.Group, path: str, level: int) -> None:
        where = f"{source}:{path}"
        try:
            names = sorted(grp.keys(), key=natural_key)
            links = grp.id.links
        except SkelstoreError:
            raise
        except _H5_ERRORS as exc:
            raise FormatError(f"{where}: cannot list the group ({exc})") from exc
        out[path] = NodeInfo(path, attrs_of(grp, path), tuple(names))
        if level >= depth:
            return
        wrapper: HDF5Group | None = None
        for name in names:
            child_path = f"{path.rstrip('/')}/{name}"
            key = name.encode("utf-8", "surrogateescape")
            try:
                hard = links.exists(key) and links.get_info(key).type == h5py.h5l.TYPE_HARD
                oid = h5py.h5o.open(grp.id, key) if hard else None
            except SkelstoreError:
                raise
            except _H5_ERRORS:
                oid, hard = None, False  # the group's own _child names the problem
            if isinstance(oid, h5py.h5g.GroupID):
                visit(h5py.Group(oid), child_path, level + 1)
            elif isinstance(oid, h5py.h5d.DatasetID):
                ds = h5py.Dataset(oid)
                try:
                    shape, dtype = oid.shape, oid.dtype
                except SkelstoreError:
                    raise
                except _H5_ERRORS as exc:
                    raise FormatError(f"{source}:{child_path}: cannot read ({exc})") from exc
                if shape and max(shape) >= 2**63:  # as HDF5Array.shape refuses it
                    raise FormatError(f"{source}:{child_path}: impossible shape {shape}")
                out[child_path] = NodeInfo(
                    child_path, attrs_of(ds, child_path), shape=shape, dtype=dtype
                )
            elif not hard:
                # links, and objects that would not open: the interface's own rules
                if wrapper is None:
                    wrapper = group._wrap(grp)  # type: ignore[assignment]
                assert wrapper is not None
                child = wrapper._child(name)
                if isinstance(child, Group):
                    visit(child.raw, child_path, level + 1)
                elif child is not None:
                    out[child_path] = NodeInfo(
                        child_path, dict(child.attrs), shape=child.shape, dtype=child.dtype
                    )
            # else: a named datatype, which is not a node of the interface

    visit(group.raw, group.path, 0)
    return out


def arrays_at(group: HDF5Group, paths: Sequence[str]) -> list[Array]:
    """See :meth:`skelstore.storage.Group.arrays_at`. Paths made of hard links
    only are opened directly, each group on the way looked at once per call; any
    other path (links, missing or damaged nodes) goes through ``group[path]``,
    which applies the interface's rules and names the problem. The arrays read
    as any other (:class:`HDF5Array`: the same guards)."""
    groups: dict[tuple[str, ...], Any] = {(): group.raw.id}

    def open_hard(parts: list[str]) -> Any:
        gid = groups[()]
        for i, part in enumerate(parts):
            prefix = tuple(parts[: i + 1])
            if prefix in groups:
                gid = groups[prefix]
                continue
            key = part.encode("utf-8", "surrogateescape")
            links = gid.links
            if not links.exists(key) or links.get_info(key).type != h5py.h5l.TYPE_HARD:
                return None
            oid = h5py.h5o.open(gid, key)
            if i == len(parts) - 1:
                return oid if isinstance(oid, h5py.h5d.DatasetID) else None
            if not isinstance(oid, h5py.h5g.GroupID):
                return None
            groups[prefix] = gid = oid
        return None

    out: list[Array] = []
    for path in paths:
        parts = [p for p in path.split("/") if p]
        try:
            oid = open_hard(parts) if parts else None
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except _H5_ERRORS:
            oid = None
        if oid is None:
            out.extend(Group.arrays_at(group, [path]))  # the interface's rules
        else:
            node = group._wrap(h5py.Dataset(oid, readonly=not group.writable))
            assert isinstance(node, Array)
            out.append(node)
    return out
