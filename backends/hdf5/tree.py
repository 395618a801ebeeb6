"""Listing an HDF5 tree in one go (:func:`list_tree`, behind
:meth:`HDF5Group.list_tree <skelstore.storage.Group.list_tree>`), and opening or
reading many arrays at once (:func:`arrays_at`, :func:`read_at`).

The interface's default walk wraps every node in an :class:`HDF5Group` or
:class:`HDF5Array` (each looking up its file object and options) and reads
attributes through h5py's high-level managers; a skelshop dump has thousands of
tiny nodes, and that per-node Python cost is most of what listing it takes. Here
hard links are opened with h5py's low-level calls, attributes are read only from
nodes that have any (through the same :class:`_H5Attrs` the nodes use, so values
are identical), and anything else (soft, external or user-defined links) is
handed to the group's own ``child``, so every link rule of the interface holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import h5py
import numpy as np

from skelstore.backends.hdf5.attrs import _H5Attrs
from skelstore.backends.hdf5.errors import _H5_ERRORS, h5_errors
from skelstore.errors import FormatError, SkelstoreError
from skelstore.storage import (
    CHECKED_READ_BYTES,
    Array,
    Attrs,
    Group,
    NodeInfo,
    natural_key,
    normalize_attr,
)

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
        name, tid = aid.name, aid.get_type()
        dtype = tid.dtype
        if not name.isascii() or aid.shape != () or dtype.kind not in "iuf" or dtype.names:
            return None
        value = np.empty((), dtype=dtype)
        aid.read(value, mtype=tid)  # the stored type is the array's: nothing converts
        out[name.decode("ascii")] = normalize_attr(value[()])
    return out


def list_tree(group: HDF5Group, depth: int) -> dict[str, NodeInfo]:
    """See :meth:`skelstore.storage.Group.list_tree`. On a read-only file the
    groups reached through hard links stay open in ``group`` (at most
    :data:`LISTED_GROUPS`), for later reads below it."""
    source = group.source
    out: dict[str, NodeInfo] = {}
    listed = None if group.writable else group._listed
    skip = len(group.path.rstrip("/")) + 1  # child paths relative to ``group``

    def attrs_of(oid: Any, path: str) -> dict[str, Any]:
        try:
            fast = _scalar_attrs(oid)
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except _H5_ERRORS:
            fast = None  # the nodes' own reader names the problem
        if fast is not None:
            return fast
        where = f"{source}:{path}"
        obj = h5py.Group(oid) if isinstance(oid, h5py.h5g.GroupID) else h5py.Dataset(oid)
        return dict(Attrs(_H5Attrs(obj, where, source), writable=False, where=where))

    def members(gid: Any) -> list[tuple[str, bool | None]]:
        """``(name, hard link?)`` of a group's members in natural order (``None``:
        not known, looked at one by one)."""
        found: list[tuple[bytes, int]] = []
        gid.links.iterate(lambda n, info: found.append((n, info.type)), info=True)
        if all(n.isascii() for n, _ in found):
            named = [(n.decode("ascii"), t == h5py.h5l.TYPE_HARD) for n, t in found]
            return sorted(named, key=lambda nt: natural_key(nt[0]))
        return [(n, None) for n in sorted(h5py.Group(gid).keys(), key=natural_key)]

    def visit(gid: Any, path: str, level: int) -> None:
        where = f"{source}:{path}"
        with h5_errors(where, "cannot list the group"):
            names = members(gid)
            links = gid.links
        out[path] = NodeInfo(path, attrs_of(gid, path), tuple(n for n, _ in names))
        if level >= depth:
            return
        wrapper: HDF5Group | None = None
        for name, hard in names:
            child_path = f"{path.rstrip('/')}/{name}"
            key = name.encode("utf-8", "surrogateescape")
            try:
                if hard is None:
                    hard = links.exists(key) and links.get_info(key).type == h5py.h5l.TYPE_HARD
                oid = h5py.h5o.open(gid, key) if hard else None
            except SkelstoreError:
                raise
            except _H5_ERRORS:
                oid, hard = None, False  # the group's own child() names the problem
            if isinstance(oid, h5py.h5g.GroupID):
                if listed is not None and len(listed) < LISTED_GROUPS:
                    listed[child_path[skip:]] = (oid, oid.links)
                visit(oid, child_path, level + 1)
            elif isinstance(oid, h5py.h5d.DatasetID):
                try:  # (not h5_errors: a context manager per dataset costs more here)
                    shape, dtype = oid.shape, oid.get_type().dtype
                except SkelstoreError:
                    raise
                except _H5_ERRORS as exc:
                    raise FormatError(f"{source}:{child_path}: cannot read ({exc})") from exc
                if shape and max(shape) >= 2**63:  # as HDF5Array.shape refuses it
                    raise FormatError(f"{source}:{child_path}: impossible shape {shape}")
                out[child_path] = NodeInfo(
                    child_path, attrs_of(oid, child_path), shape=shape, dtype=dtype
                )
            elif not hard:
                # links, and objects that would not open: the interface's own rules
                if wrapper is None:  # this group's wrapper, made once and only if needed
                    wrapper = cast("HDF5Group", group._wrap(h5py.Group(gid)))
                child = wrapper.child(name)
                if isinstance(child, Group):
                    visit(child.raw.id, child_path, level + 1)
                elif child is not None:
                    out[child_path] = NodeInfo(
                        child_path, dict(child.attrs), shape=child.shape, dtype=child.dtype
                    )
            # else: a named datatype, which is not a node of the interface

    visit(group.raw.id, group.path, 0)
    return out


#: Most groups a read-only group keeps open after listing its tree (~1.5 KB of
#: libhdf5's memory each), for :func:`read_at` and :func:`read_nodes` to look up
#: arrays in without opening their groups again.
LISTED_GROUPS = 2**14


class _HardPaths:
    """Opens the datasets at paths relative to the group ``gid`` whose every link
    is hard; each group on the way is looked at and opened once (its datasets are
    then looked up in it, not from ``gid`` again)."""

    def __init__(self, gid: Any, known: dict[str, tuple[Any, Any]] | None = None) -> None:
        #: Groups reached through hard links only, by relative path (``None``:
        #: not a group, or a link on the way is not hard); ``known``: groups a
        #: listing of this read-only group opened already.
        self.groups: dict[str, tuple[Any, Any] | None] = {"": (gid, gid.links)}
        self.known = known or {}

    def _group(self, path: str) -> tuple[Any, Any] | None:
        """``(GroupID, its links)`` at ``path`` (relative, no leading slash)."""
        if path in self.groups:
            return self.groups[path]
        if path in self.known:
            return self.known[path]
        parent, _, name = path.rpartition("/")
        found = self._group(parent)
        oid = self._member(found, name) if found is not None else None
        group = (oid, oid.links) if isinstance(oid, h5py.h5g.GroupID) else None
        self.groups[path] = group
        return group

    @staticmethod
    def _member(group: tuple[Any, Any], name: str) -> Any:
        """The object ``name`` of ``group`` if it is a hard link, else ``None``."""
        gid, links = group
        key = name.encode("utf-8", "surrogateescape")
        if links.get_info(key).type != h5py.h5l.TYPE_HARD:
            return None
        return h5py.h5o.open(gid, key)

    def open(self, path: str) -> Any:
        """The ``DatasetID`` at ``path``, or ``None`` (a soft or external link on
        the way, a group, an empty path): the interface's own rules apply to it."""
        parent, _, name = path.strip("/").rpartition("/")
        group = self._group(parent)
        if not name or group is None:
            return None
        oid = self._member(group, name)
        return oid if isinstance(oid, h5py.h5d.DatasetID) else None


def _open_hard(opener: _HardPaths, path: str) -> Any:
    """``opener.open(path)``, ``None`` where h5py fails (the interface's own rules
    then name the problem)."""
    try:
        return opener.open(path)
    except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
        raise
    except _H5_ERRORS:
        return None


def arrays_at(group: HDF5Group, paths: Sequence[str]) -> list[Array]:
    """See :meth:`skelstore.storage.Group.arrays_at`. Paths made of hard links
    only are opened directly, each group on the way looked at once per call; any
    other path (links, missing or damaged nodes) goes through ``group[path]``,
    which applies the interface's rules and names the problem. The arrays read
    as any other (:class:`HDF5Array`: the same guards)."""
    opener = _HardPaths(group.raw.id, group._listed)
    out: list[Array] = []
    for path in paths:
        oid = _open_hard(opener, path)
        if oid is None:
            out.extend(Group.arrays_at(group, [path]))  # the interface's rules
        else:
            node = group._wrap(h5py.Dataset(oid, readonly=not group.writable))
            assert isinstance(node, Array)
            out.append(node)
    return out


def _read_plain(oid: Any, check_external: bool) -> np.ndarray | None:
    """The whole dataset ``oid`` if it is plain and small: a numeric dtype, raw
    data in this file (unless ``check_external`` is off), at most
    :data:`~skelstore.storage.CHECKED_READ_BYTES`; ``None`` for any other, which
    :class:`HDF5Array` reads with its guards."""
    if check_external:
        dcpl = oid.get_create_plist()
        if dcpl.get_external_count() or dcpl.get_layout() == h5py.h5d.VIRTUAL:
            return None
    shape, tid = oid.shape, oid.get_type()
    dtype = tid.dtype
    if shape is None or dtype.kind not in "iuf" or dtype.names is not None or dtype.subdtype:
        return None
    if any(n >= 2**63 for n in shape) or math.prod(shape) * dtype.itemsize > CHECKED_READ_BYTES:
        return None
    out = np.empty(shape, dtype=dtype)
    if out.size:  # read as stored (the array's dtype is the stored type's): no conversion
        oid.read(h5py.h5s.ALL, h5py.h5s.ALL, out, mtype=tid)
    return out


def read_at(group: HDF5Group, paths: Sequence[str]) -> list[np.ndarray]:
    """See :meth:`skelstore.storage.Group.read_at`; read as :func:`read_nodes`
    reads, without the attributes."""
    return [values for _, values in _read(group, paths, with_attrs=False)]


def read_nodes(group: HDF5Group, paths: Sequence[str]) -> list[tuple[NodeInfo, np.ndarray]]:
    """See :meth:`skelstore.storage.Group.read_nodes`. A plain small dataset
    (:func:`_read_plain`) reached through hard links is read with h5py's
    low-level calls, its shape and type asked once, numeric scalar attributes
    read by index (:func:`_scalar_attrs`), and no array object made; any other
    path, and any read h5py fails, goes through :func:`arrays_at` and
    :class:`HDF5Array`, whose guards and messages apply."""
    return _read(group, paths, with_attrs=True)


def _read(
    group: HDF5Group, paths: Sequence[str], *, with_attrs: bool
) -> list[tuple[NodeInfo, np.ndarray]]:
    opener = _HardPaths(group.raw.id, group._listed)
    check_external = not group._allow_external
    base = group.path.rstrip("/")
    out: list[tuple[NodeInfo, np.ndarray]] = []
    for path in paths:
        values: np.ndarray | None = None
        attrs: dict[str, Any] | None = {}
        oid = _open_hard(opener, path)
        if oid is not None:
            try:
                values = _read_plain(oid, check_external)
                if values is not None and with_attrs:
                    attrs = _scalar_attrs(oid)
            except SkelstoreError:
                raise
            except _H5_ERRORS:
                values = None  # read again below, where the failure is named
        full = f"{base}/{path.strip('/')}"
        if values is None or attrs is None:
            (array,) = arrays_at(group, [path])
            values = array[...]
            attrs = dict(array.attrs) if with_attrs else {}
            full = array.path
        out.append((NodeInfo(full, attrs, shape=values.shape, dtype=values.dtype), values))
    return out
