"""HDF5 groups as skelstore groups (:class:`HDF5Group`)."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from skelstore.backends.hdf5.arrays import HDF5Array, _H5Node, chunk_byte_ranges
from skelstore.backends.hdf5.direct import blosc_settings, write_chunks
from skelstore.backends.hdf5.encoding import encoding_kwargs
from skelstore.backends.hdf5.errors import (
    _FAILED,
    _detach,
    _fileno,
    _sync,
    _writing,
    h5_errors,
)
from skelstore.compression import Encoding, check_lossy
from skelstore.config import get_options
from skelstore.errors import (
    EngineError,
    FormatError,
    NotFoundError,
    WriteError,
)
from skelstore.locks import WriteLock
from skelstore.rangefile import RangeCacheFile
from skelstore.staging import write_error
from skelstore.storage import (
    Array,
    ArraySpec,
    Group,
    GroupSpec,
    NodeInfo,
    check_specs,
    natural_key,
)

#: Soft links followed in a row before giving up (HDF5's own default limit).
_MAX_SOFT_HOPS = 16


class HDF5Group(_H5Node, Group):
    """An ``h5py.Group`` (or ``h5py.File`` for the root).

    A root opened by :class:`HDF5Engine` owns its file and closes it; ``finalize``
    runs after the file is closed; ``publish(ok)`` then puts a staged remote write
    in place (``ok``) or discards it; ``lock`` (the write lock) is released last.
    """

    engine_name = "hdf5"

    def __init__(
        self,
        grp: h5py.Group,
        source: str,
        *,
        owner: bool = False,
        finalize: Any = None,
        publish: Any = None,
        lock: WriteLock | None = None,
        rangefile: RangeCacheFile | None = None,
        allow_external: bool = False,
    ) -> None:
        self._grp = grp
        self._source = source
        self._owner = owner
        self._finalize = finalize
        self._publish = publish
        self._rangefile = rangefile
        #: Groups below this one that a listing opened (read-only files only),
        #: by relative path: see :mod:`skelstore.backends.hdf5.tree`.
        self._listed: dict[str, tuple[Any, Any]] = {}
        self._allow_external = allow_external or get_options().allow_external
        self._writable = grp.file.mode == "r+"
        # a root dropped without close() still lets the next writer in
        self._unlock = weakref.finalize(self, lock.release) if lock is not None else None

    @property
    def raw(self) -> h5py.Group:
        return self._grp

    @property
    def format_info(self) -> dict[str, Any]:
        return {"hdf5_version": h5py.version.hdf5_version}

    def keys(self) -> list[str]:
        with h5_errors(self.where, "cannot list the group"):
            return sorted(self._grp.keys(), key=natural_key)

    def _wrap(self, obj: Any) -> HDF5Group | HDF5Array | None:
        if isinstance(obj, h5py.Group):
            return HDF5Group(
                obj, self._source, rangefile=self._rangefile, allow_external=self._allow_external
            )
        if isinstance(obj, h5py.Dataset):
            return HDF5Array(obj, self._source, self._writable, allow_external=self._allow_external)
        return None

    def child(self, name: str, _hops: int = 0) -> HDF5Group | HDF5Array | None:
        """The child ``name``; links are looked at before they are followed: external
        links raise FormatError (unless opened with ``allow_external``), soft links are
        resolved here, one checked component at a time (at most 16 in a row)."""
        if name == ".":
            return self

        def where() -> str:  # for messages only: h5py's .name costs a library call
            return f"{self.source}:{self.path.rstrip('/')}/{name}"

        with h5_errors(where, "cannot read the link"):
            links = self._grp.id.links
            key = name.encode("utf-8", "surrogateescape")
            if not links.exists(key):
                return None
            kind = links.get_info(key).type
            target = None if kind == h5py.h5l.TYPE_HARD else links.get_val(key)
        if kind != h5py.h5l.TYPE_HARD and not self._allow_external:
            if kind == h5py.h5l.TYPE_SOFT:
                path = bytes(target).decode("utf-8", "replace")
                return self._follow_soft(path, _hops + 1, where())
            what = f"to {target[0]!r}:{target[1]!r}" if kind == h5py.h5l.TYPE_EXTERNAL else ""
            raise FormatError(
                f"{where()}: an external or user-defined link {what}; skelstore does not follow "
                "links out of the dump file (in Python, skelstore.open(..., allow_external=True) "
                "allows it)"
            )
        try:
            with h5_errors(where, "cannot open", passing=(KeyError,)):
                return self._wrap(self._open(key))
        except KeyError:
            if kind != h5py.h5l.TYPE_HARD:  # a dangling soft or external link: missing
                return None
            raise FormatError(f"{where()}: cannot open the object (damaged file?)") from None

    def _open(self, key: bytes) -> Any:
        """The h5py object linked as ``key`` (h5py's ``group[name]`` without its
        per-call File object; 3x fewer Python calls per child)."""
        oid = h5py.h5o.open(self._grp.id, key)
        if isinstance(oid, h5py.h5g.GroupID):
            return h5py.Group(oid)
        if isinstance(oid, h5py.h5d.DatasetID):
            return h5py.Dataset(oid, readonly=not self._writable)
        return None  # a named datatype: not a node of the interface

    def _follow_soft(self, target: str, hops: int, where: str) -> HDF5Group | HDF5Array | None:
        """The node a soft link's ``target`` path names (``None`` if dangling)."""
        if hops > _MAX_SOFT_HOPS:
            raise FormatError(f"{where}: more than {_MAX_SOFT_HOPS} soft links in a row (a cycle?)")
        node: HDF5Group | HDF5Array | None = self
        if target.startswith("/"):
            with h5_errors(where, "cannot open the root group"):
                node = HDF5Group(
                    self._grp.file["/"],
                    self._source,
                    rangefile=self._rangefile,
                    allow_external=self._allow_external,
                )
        for part in (p for p in target.split("/") if p):
            if not isinstance(node, HDF5Group):
                return None
            node = node.child(part, hops)
        return node

    def _check_new_name(self, name: str, may_exist: bool = True) -> None:
        """Refuse names HDF5 would take literally but no other engine can store, and
        names already there (not looked up when ``may_exist`` is False: the parent
        was made in the same batch)."""
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise FormatError(f"{self.where()}: invalid name {name!r}")
        if may_exist and name in self._grp:
            raise FormatError(f"{self.where()}: {name!r} already exists")

    def create_group(self, name: str, attrs: dict[str, Any] | None = None) -> HDF5Group:
        return self._create_group(name, attrs)

    def _create_group(
        self, name: str, attrs: dict[str, Any] | None = None, may_exist: bool = True
    ) -> HDF5Group:
        self._check_writable()
        self._check_new_name(name, may_exist)
        with _writing(self._grp, self._source):
            created = self._grp.create_group(name, track_order=True)
        group = HDF5Group(created, self._source, rangefile=self._rangefile)
        if attrs:
            group.attrs.update(attrs)
        return group

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
        may_exist: bool = True,
        shards: tuple[int, ...] | None = None,
        dimension_names: tuple[str, ...] | None = None,
    ) -> HDF5Array:
        """As :meth:`Group.create_array`; ``may_exist=False`` skips the lookup of
        ``name`` (for :meth:`write_many`, whose parent groups are new). HDF5 has no
        shards and the dump layouts keep no dimension scales: both are ignored."""
        self._check_writable()
        self._check_new_name(name, may_exist)
        if data is not None:
            data = np.asarray(data, dtype=dtype)
            shape = data.shape
            dtype = data.dtype
        if shape is None:
            raise FormatError(f"{self.where()}/{name}: give data or shape")
        kwargs = encoding_kwargs(encoding)
        if engine_options:
            kwargs.update(engine_options)
        if data is not None and kwargs.get("scaleoffset") not in (None, False):
            check_lossy(data, kwargs["scaleoffset"], f"{self.where().rstrip('/')}/{name}")
        if chunks is not None:
            chunks = tuple(max(1, int(c)) for c in chunks)
        elif growable or kwargs:
            chunks = True  # type: ignore[assignment]
        maxshape = (None, *shape[1:]) if growable or shape[:1] == (0,) else None
        if data is not None and data.ndim and len(data) == 0:
            data = None  # h5py rejects empty data with filters; the shape says it all
        refused = h5_errors(
            lambda: f"{self.where()}/{name}",
            "h5py refused the settings",
            error=EngineError,
            catch=(TypeError, ValueError),
        )
        with refused, _writing(self._grp, self._source):
            ds = self._grp.create_dataset(
                name,
                shape=shape,
                dtype=dtype,
                data=data,
                chunks=chunks,
                maxshape=maxshape,
                **kwargs,
            )
            if data is not None:
                _sync(ds)
        return HDF5Array(ds, self._source, True, allow_external=self._allow_external)

    def write_many(self, nodes: Sequence[GroupSpec | ArraySpec]) -> None:
        """Create the nodes in order; arrays whose only filter is Blosc are created
        empty and their chunks compressed together on a thread pool and written
        with ``write_direct_chunk`` (see :mod:`skelstore.backends.hdf5.direct`)."""
        self._check_writable()
        check_specs(self.where(), nodes)
        direct = []
        made: set[str] = set()  # groups made here: their children need no lookup
        for node in nodes:
            may_exist = node.path.rpartition("/")[0] not in made
            if isinstance(node, GroupSpec):
                self._create_group(node.path, node.attrs, may_exist)
                made.add(node.path)
                continue
            data = np.asarray(node.data)
            arr = self.create_array(
                node.path,
                shape=data.shape,
                dtype=data.dtype,
                chunks=node.chunks,
                encoding=node.encoding,
                engine_options=node.engine_options,
                may_exist=may_exist,
            )
            if not data.size:
                continue
            ds = arr.raw
            settings = blosc_settings(ds)
            if settings is None:
                failed = h5_errors(arr.where, "cannot write", error=EngineError)
                with failed, _writing(ds, self._source):
                    ds[...] = data
                    _sync(ds)
            else:
                direct.append((ds, settings, data))
        failed = h5_errors(self.where, "cannot write chunks", error=EngineError)
        with failed, _writing(self._grp, self._source):
            write_chunks(direct)

    def list_tree(self, depth: int = 1) -> dict[str, NodeInfo]:
        """See :meth:`Group.list_tree`; listed by :mod:`skelstore.backends.hdf5.tree`."""
        from skelstore.backends.hdf5.tree import list_tree

        return list_tree(self, depth)

    def arrays_at(self, paths: Sequence[str]) -> list[Array]:
        """See :meth:`Group.arrays_at`; opened by :mod:`skelstore.backends.hdf5.tree`."""
        from skelstore.backends.hdf5.tree import arrays_at

        return arrays_at(self, paths)

    def read_at(self, paths: Sequence[str]) -> list[np.ndarray]:
        """See :meth:`Group.read_at`; local files are read by
        :mod:`skelstore.backends.hdf5.tree`, remote ones through :meth:`read_many`
        (one concurrent fetch of every chunk)."""
        if self._rangefile is not None:
            return super().read_at(paths)
        from skelstore.backends.hdf5.tree import read_at

        return read_at(self, paths)

    def read_nodes(self, paths: Sequence[str]) -> list[tuple[NodeInfo, np.ndarray]]:
        """See :meth:`Group.read_nodes`; local files are read by
        :mod:`skelstore.backends.hdf5.tree`, remote ones as :meth:`read_at`."""
        if self._rangefile is not None:
            return super().read_nodes(paths)
        from skelstore.backends.hdf5.tree import read_nodes

        return read_nodes(self, paths)

    def read_many(self, requests: Sequence[Array | tuple[Array, Any]]) -> list[np.ndarray]:
        """Read in sequence; on remote files, first fetch every chunk the requests
        touch in one concurrent batch of byte ranges (h5py then reads from memory)."""
        if self._rangefile is not None:
            ranges: list[tuple[int, int]] = []
            for req in requests:
                arr, sel = req if isinstance(req, tuple) else (req, ...)
                if isinstance(arr, HDF5Array):
                    ranges.extend(chunk_byte_ranges(arr.raw, sel))
            self._rangefile.prefetch(ranges)
        return super().read_many(requests)

    def flush(self) -> None:
        if self._writable:
            self.check_open()
            with _writing(self._grp, self._source):
                self._grp.file.flush()

    @property
    def owns_file(self) -> bool:
        return self._owner

    def delete(self, name: str) -> None:
        self._check_writable()
        if name not in self._grp:
            raise NotFoundError(f"{self.where()}: no member {name!r} to delete")
        with _writing(self._grp, self._source):
            del self._grp[name]

    def close(self) -> None:
        """Close the file (running close hooks first), then publish a staged remote
        write and release the write lock.

        Raises:
            WriteError: a write failed (now, or earlier: the file was detached, see
                :func:`_detach`, and closes cleanly) and no other exception is
                leaving the ``with`` block. A staged remote write is then discarded.
        """
        if not self._owner:
            return
        ok = self.exit_ok
        key = _fileno(self._grp) if self._grp.id.valid else None
        failure: WriteError | None = None
        done = False
        try:
            if key is not None and key not in _FAILED:
                with contextlib.suppress(WriteError):  # remembered in _FAILED
                    self.run_close_hooks()
            self.drop_close_hooks()
            self._owner = False
            if self._grp.id.valid:
                try:
                    self._grp.file.close()
                except Exception as exc:
                    err = write_error(self._source, exc)
                    if err is None or key is None:
                        raise
                    _FAILED.setdefault(key, err)
                    _detach(self._grp)
                    self._grp.file.close()
            done = True
        finally:
            self._owner = False
            failure = _FAILED.pop(key, None) if key is not None else None
            if self._finalize is not None:
                finalize, self._finalize = self._finalize, None
                finalize()
            if self._unlock is not None:
                self._unlock()
            if self._publish is not None and not done:
                publish, self._publish = self._publish, None
                with contextlib.suppress(Exception):
                    publish(False)
        if self._publish is not None:
            publish, self._publish = self._publish, None
            publish(failure is None)
        if failure is not None and ok:
            raise failure

    def abort(self) -> None:
        """Close without writing anything more: the file is detached first
        (:func:`_detach`), a staged remote write is discarded."""
        if not self._owner:
            return
        self.drop_close_hooks()
        if self._writable and self._grp.id.valid:
            key = _fileno(self._grp)
            _detach(self._grp)
            if key is not None:  # closing raises nothing about the detached file
                _FAILED.pop(key, None)
        self.exit_ok = False
        publish, self._publish = self._publish, None
        try:
            self.close()
        finally:
            if publish is not None:
                publish(False)
