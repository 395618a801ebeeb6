"""The storage interface: abstract :class:`Group` and :class:`Array`, and :class:`Engine`.

Everything above this module (the CSR layout, the readers and writers, conversion,
the CLI) talks to storage only through these classes; everything below it (one
module per engine in ``skelstore.backends``) implements them. Nothing here knows
h5py or zarr.

The contracts, shared by every engine:

* **Paths.** A node's :attr:`Node.path` is absolute inside its file (``"/"`` for the
  root, ``"/timeline/shot0"``). ``group["a/b"]`` walks down.
* **Attributes.** :attr:`Node.attrs` is a mutable mapping. Values read back are
  plain Python scalars (``int``, ``float``, ``bool``), ``str`` (never ``bytes``) or
  ``list``; :func:`normalize_attr` is the one normalisation, applied on read by
  every engine, so a value survives any conversion between engines unchanged.
* **Order.** Children are listed in natural order (``shot2`` before ``shot10``),
  whatever order the engine stores them in.
* **Reading.** ``array[sel]`` and :meth:`Array.read` return numpy arrays;
  :meth:`Group.read_many` reads several arrays in one call, which engines may
  serve concurrently (Zarr) or in sequence (HDF5).
* **Growing.** Arrays created with ``growable=True`` take :meth:`Array.append`
  along their first axis; nothing is resized per element.
* **Batch writing.** :meth:`Group.write_many` creates many groups and filled
  arrays (a whole shot) in one call, which engines may write concurrently (Zarr:
  one batch of store writes instead of one round trip per node).
* **Errors.** A missing child raises :class:`~skelstore.errors.NotFoundError` naming
  the file and path; a write on a read-only group raises
  :class:`~skelstore.errors.ReadOnlyError`.
"""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from skelstore.compression import Encoding, check_lossy, effective_scale_digits
from skelstore.errors import FormatError, NotFoundError, ReadOnlyError
from skelstore.storage_attrs import Attrs, normalize_attr

__all__ = [
    "Array",
    "ArraySpec",
    "Attrs",
    "Engine",
    "Group",
    "GroupSpec",
    "Mode",
    "Node",
    "NodeInfo",
    "Probe",
    "check_specs",
    "natural_key",
    "normalize_attr",
]

#: The read-size guard every engine applies: reads of more than this many bytes
#: are first checked against the bytes the array really stores, so that a forged
#: shape cannot make skelstore allocate memory for data that is not there.
CHECKED_READ_BYTES = 64 * 2**20
#: The most an array's stored bytes may grow when decoded (compression ratio).
MAX_EXPANSION = 1024

#: Open modes, with h5py's meanings: ``r`` read only, must exist; ``r+`` read/write,
#: must exist; ``w`` create, truncate if it exists; ``w-``/``x`` create, fail if it
#: exists; ``a`` read/write if it exists, create otherwise.
Mode = Literal["r", "r+", "w", "w-", "x", "a"]
MODES: tuple[str, ...] = ("r", "r+", "w", "w-", "x", "a")

_DIGITS = re.compile(r"(\d+)")


def _nothing() -> None:
    """What :meth:`Group.start_set_many` returns where the write is over already."""


@dataclass(frozen=True)
class GroupSpec:
    """A group for :meth:`Group.write_many`: ``path`` is relative to the group
    written into (``"shot3"``, ``"shot3/pose0"``)."""

    path: str
    attrs: dict[str, Any] | None = None


@dataclass(frozen=True)
class ArraySpec:
    """A fixed-size array, created from ``data``, for :meth:`Group.write_many`.

    The fields mean what :meth:`Group.create_array`'s arguments of the same names
    mean; ``chunks`` is a preference that an engine writing the array in one
    piece may override (Zarr stores a small array as a single chunk).
    """

    path: str
    data: np.ndarray
    chunks: tuple[int, ...] | None = None
    encoding: Encoding | None = None
    engine_options: dict[str, Any] | None = None


@dataclass(frozen=True)
class NodeInfo:
    """What :meth:`Group.list_tree` says of one node, without keeping it open."""

    #: Absolute path inside the file, as reached from the listed group.
    path: str
    #: The node's attributes as :attr:`Node.attrs` reads them (normalised).
    attrs: dict[str, Any]
    #: A group's member names in natural order (as :meth:`Group.keys`); ``None``
    #: for an array.
    members: tuple[str, ...] | None = None
    #: An array's shape and dtype (``None`` for a group).
    shape: tuple[int, ...] | None = None
    dtype: np.dtype | None = None

    @property
    def is_group(self) -> bool:
        return self.members is not None

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def check_specs(where: str, nodes: Sequence[GroupSpec | ArraySpec]) -> None:
    """Refuse a batch for :meth:`Group.write_many` before anything of it is written:
    values a lossy array cannot store (see :func:`skelstore.compression.check_lossy`).
    ``where`` is ``source:path`` of the group written into."""
    for node in nodes:
        if isinstance(node, ArraySpec):
            digits = effective_scale_digits(node.encoding, node.engine_options)
            if digits is not None:
                check_lossy(node.data, digits, f"{where.rstrip('/')}/{node.path}")


@functools.lru_cache(maxsize=2**14)
def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders embedded numbers by value: ``shot2`` < ``shot10``
    (cached: a dump's member names repeat, ``data``, ``pose0``...)."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))


class Node(ABC):
    """What groups and arrays share: a path, attributes and the file they live in."""

    @property
    @abstractmethod
    def path(self) -> str:
        """Absolute path inside the file: ``"/"`` for the root."""

    @property
    def name(self) -> str:
        """Last component of :attr:`path` (``""`` for the root)."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    @abstractmethod
    def attrs(self) -> Attrs:
        """The node's attributes; see :class:`Attrs`."""

    @property
    @abstractmethod
    def source(self) -> str:
        """The file or URL this node lives in, for messages."""

    @property
    @abstractmethod
    def raw(self) -> Any:
        """The engine's own object (``h5py.Group``/``Dataset``, ``zarr.Group``/``Array``)."""

    @property
    def writable(self) -> bool:
        """True if this node's file was opened for writing (groups must say; arrays
        of read-only engines need not)."""
        return False

    def where(self) -> str:
        """``source:path``, the form every error message uses."""
        return f"{self.source}:{self.path}"

    def check_open(self) -> None:
        """Raise if writes can no longer reach this node's file: engines raise
        :class:`~skelstore.errors.ClosedError` once it is closed (and may raise an
        earlier failed write's error again). The default raises nothing."""
        return None

    def _check_writable(self) -> None:
        """Refuse a write to this node: what :meth:`check_open` raises, then
        :class:`~skelstore.errors.ReadOnlyError` if it is not :attr:`writable`."""
        self.check_open()
        if not self.writable:
            raise ReadOnlyError(f"{self.where()}: opened read-only")


class Array(Node):
    """An n-dimensional array of one dtype.

    Pose groups use three: ``data`` (n, 3) float32, ``indices`` (n,) uint16 and
    ``indptr`` (rows + 1,) uint32.
    """

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]:
        """Current shape."""

    @property
    @abstractmethod
    def dtype(self) -> np.dtype:
        """Element type."""

    @property
    @abstractmethod
    def chunks(self) -> tuple[int, ...] | None:
        """Chunk shape, or ``None`` for contiguous storage."""

    @property
    @abstractmethod
    def encoding(self) -> Encoding | None:
        """The engine-neutral encoding found on storage, or ``None`` if it is not one
        skelstore knows (foreign filters)."""

    @property
    @abstractmethod
    def growable(self) -> bool:
        """True if :meth:`append` may extend the first axis."""

    @property
    def nbytes_stored(self) -> int | None:
        """Bytes the array takes on storage, if the engine can tell cheaply."""
        return None

    @property
    def shards(self) -> tuple[int, ...] | None:
        """Shard shape (a multiple of :attr:`chunks`) where the engine stores several
        chunks in one object (Zarr 3 sharding), else ``None``. Reading a whole shard
        costs one request; part of one, a request for its index and one per chunk."""
        return None

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    @abstractmethod
    def __getitem__(self, selection: Any) -> np.ndarray:
        """Read ``selection`` (ints, slices, tuples of them) into a numpy array."""

    def read(self) -> np.ndarray:
        """Read the whole array in one call."""
        return self[...]

    @abstractmethod
    def __setitem__(self, selection: Any, values: Any) -> None:
        """Write ``values`` into ``selection`` (shape unchanged)."""

    @abstractmethod
    def append(self, values: np.ndarray) -> None:
        """Append ``values`` along the first axis; trailing dimensions must match.

        Raises:
            ReadOnlyError: the file is open read-only.
            FormatError: the array was not created growable or shapes disagree.
        """

    def truncate(self, length: int) -> None:
        """Shrink a growable array's first axis to ``length`` (used by repair).

        Raises:
            ReadOnlyError: the file is open read-only.
            FormatError: the array is not growable or ``length`` exceeds it.
        """
        raise ReadOnlyError(f"{self.where()}: this engine cannot truncate arrays")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where()} shape={self.shape} dtype={self.dtype}>"


class Group(Node):
    """A group of named children (groups and arrays); the root is a group too.

    A root group returned by :func:`skelstore.open` owns its file: use it as a
    context manager, or call :meth:`close`.
    """

    #: Engine name, as in the registry (``"hdf5"``, ``"zarr"``).
    engine_name: ClassVar[str] = ""
    #: The dump layout writers use on this engine when nothing else chooses one
    #: (``"skelshop"`` or ``"packed"``; see :func:`skelstore.packed.writer_layout`).
    default_layout: ClassVar[str] = "skelshop"
    #: The layout asked for with ``skelstore.open(..., layout=...)`` (``None``: not asked).
    requested_layout: str | None = None

    @property
    @abstractmethod
    def writable(self) -> bool:
        """True if this group's file was opened for writing."""

    @property
    def min_chunk_bytes(self) -> int | None:
        """Chunks smaller than this (uncompressed) cost this engine disproportionately
        per chunk; writers of large arrays scale their chunk shape up to a multiple
        that reaches it. ``None``: no such floor (any chunk size is efficient)."""
        return None

    @property
    def format_info(self) -> dict[str, Any]:
        """Engine facts for ``skelstore info``: e.g. ``{"zarr_format": 3}``."""
        return {}

    # -- listing ---------------------------------------------------------
    @abstractmethod
    def keys(self) -> list[str]:
        """Names of the direct children, in natural order."""

    @abstractmethod
    def child(self, name: str) -> Group | Array | None:
        """The direct child called ``name``, or ``None`` if there is none."""

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __bool__(self) -> bool:
        """Always true, as h5py's and zarr's groups are (an empty group is not "no group")."""
        return True

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        try:
            self[path]
        except NotFoundError:
            return False
        return True

    def __getitem__(self, path: str) -> Group | Array:
        """The node at ``path`` relative to this group (``"a/b"``; a leading ``/``
        means relative to this group too, as for the root).

        Raises:
            NotFoundError: no such node; the message names the file and path.
        """
        node: Group | Array = self
        for part in [p for p in path.split("/") if p]:
            child = node.child(part) if isinstance(node, Group) else None
            if child is None:
                full = (self.path.rstrip("/") + "/" + path.strip("/")).replace("//", "/")
                raise NotFoundError(f"{self.source}: no group or array at {full!r}")
            node = child
        return node

    def get(self, path: str, default: Any = None) -> Group | Array | Any:
        """``self[path]``, or ``default`` if there is nothing there."""
        try:
            return self[path]
        except NotFoundError:
            return default

    def items(self) -> list[tuple[str, Group | Array]]:
        """``(name, child)`` pairs in natural order."""
        out = []
        for k in self.keys():
            child = self.child(k)
            if child is not None:
                out.append((k, child))
        return out

    def groups(self) -> list[tuple[str, Group]]:
        """Child groups in natural order."""
        return [(k, v) for k, v in self.items() if isinstance(v, Group)]

    def arrays(self) -> list[tuple[str, Array]]:
        """Child arrays in natural order."""
        return [(k, v) for k, v in self.items() if isinstance(v, Array)]

    def list_tree(self, depth: int = 1) -> dict[str, NodeInfo]:
        """This group and every node below it down to ``depth`` levels (1: its
        children), keyed by absolute path (as reached from this group: a member
        reached through a soft link is listed under the link's path), parents
        before children and members in natural order: what :attr:`~Node.attrs`,
        :meth:`keys`, :attr:`Array.shape` and :attr:`Array.dtype` say of each,
        without keeping any node open. Members the interface does not return
        (dangling links) are left out, as :meth:`items` leaves them out.

        The default walks the interface; engines that can list a tree faster
        override it (HDF5: object headers read directly, no per-node wrappers).
        Raises what the interface raises for the same nodes.
        """
        out: dict[str, NodeInfo] = {}

        def visit(group: Group, path: str, level: int) -> None:
            names = tuple(group.keys())
            out[path] = NodeInfo(path, dict(group.attrs), names)
            if level >= depth:
                return
            for name in names:
                child = group.child(name)
                child_path = f"{path.rstrip('/')}/{name}"
                if isinstance(child, Group):
                    visit(child, child_path, level + 1)
                elif child is not None:
                    out[child_path] = NodeInfo(
                        child_path, dict(child.attrs), shape=child.shape, dtype=child.dtype
                    )

        visit(self, self.path, 0)
        return out

    def arrays_at(self, paths: Sequence[str]) -> list[Array]:
        """The arrays at ``paths`` (relative to this group), as ``self[path]``
        gives them, in one call: engines that can open many nodes faster than one
        path component at a time override it (HDF5: groups shared by the paths
        are looked at once).

        Raises:
            NotFoundError: nothing at a path.
            FormatError: a group where an array was asked for.
        """
        out = []
        for path in paths:
            node = self[path]
            if not isinstance(node, Array):
                raise FormatError(f"{node.where()}: expected an array, found a group")
            out.append(node)
        return out

    def read_at(self, paths: Sequence[str]) -> list[np.ndarray]:
        """The whole arrays at ``paths`` (relative to this group), read in one
        call, in order: ``self.read_many(self.arrays_at(paths))``, with the same
        checks and errors. Engines that can read many small arrays faster without
        making an array object for each override it (HDF5, local files).

        Raises:
            NotFoundError: nothing at a path.
            FormatError: a group where an array was asked for, or an array that
                cannot be read.
        """
        return self.read_many(self.arrays_at(paths))

    def read_nodes(self, paths: Sequence[str]) -> list[tuple[NodeInfo, np.ndarray]]:
        """:meth:`read_at` with what :meth:`list_tree` says of each array (its
        :class:`NodeInfo`: path, attributes, shape, dtype), for callers that check
        arrays as they read them instead of listing them first.

        Raises:
            as :meth:`read_at`.
        """
        arrays = self.arrays_at(paths)
        values = self.read_many(arrays)
        return [
            (NodeInfo(a.path, dict(a.attrs), shape=v.shape, dtype=v.dtype), v)
            for a, v in zip(arrays, values, strict=True)
        ]

    # -- writing ---------------------------------------------------------
    @abstractmethod
    def create_group(self, name: str, attrs: dict[str, Any] | None = None) -> Group:
        """Create and return a new child group, with ``attrs`` set (in the same
        metadata write where the engine can: one request instead of two remotely).

        Raises:
            ReadOnlyError: read-only file.
            FormatError: something already exists under ``name``.
        """

    def require_group(self, name: str) -> Group:
        """The child group ``name``, created if missing."""
        node = self.get(name)
        if node is None:
            return self.create_group(name)
        if not isinstance(node, Group):
            raise FormatError(f"{node.where()}: expected a group, found an array")
        return node

    @abstractmethod
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
    ) -> Array:
        """Create a child array, from ``data`` or empty with ``shape``/``dtype``.

        Args:
            data: initial contents (its dtype is cast to ``dtype`` if given).
            shape: the shape when ``data`` is not given.
            dtype: the element type (``data`` is cast to it if both are given).
            chunks: chunk shape (every entry ≥ 1); ``None`` lets the engine choose.
            encoding: engine-neutral compression; ``None`` means none.
            growable: allow :meth:`Array.append` along the first axis.
            engine_options: h5py ``create_dataset`` keywords (skelshop's writers
                pass its ``lossless_kwargs``/``lossy_kwargs``): HDF5 takes them as
                they are, other engines through
                :func:`skelstore.compression.translate_h5py`. An engine that cannot
                honour one raises :class:`~skelstore.errors.EngineError` naming it.
            shards: a shard shape (a multiple of ``chunks``) for engines that store
                several chunks per object (Zarr 3); the others ignore it.
            dimension_names: a name per dimension, for engines that record them
                (Zarr: what xarray reads); the others ignore them.
        """

    def write_many(self, nodes: Sequence[GroupSpec | ArraySpec]) -> None:
        """Create every group and filled array of ``nodes`` under this group.

        Paths are relative to this group; a node's parent is this group or a
        :class:`GroupSpec` earlier in ``nodes``. What one node would raise in
        :meth:`create_group`/:meth:`create_array` is raised here (nothing may be
        there already). The default creates the nodes one by one, in order;
        engines may write them concurrently, in which case a failure can leave
        part of the batch written. Nothing outside the batch is changed.
        Values a lossy array cannot store raise
        :class:`~skelstore.errors.InputError` before anything is written.
        """
        check_specs(self.where(), nodes)
        for node in nodes:
            if isinstance(node, GroupSpec):
                self.create_group(node.path, node.attrs)
            else:
                self.create_array(
                    node.path,
                    data=node.data,
                    chunks=node.chunks,
                    encoding=node.encoding,
                    engine_options=node.engine_options,
                )

    def append_many(self, items: Sequence[tuple[Array, np.ndarray]]) -> None:
        """Append ``values`` to each growable array of ``(array, values)`` (as
        :meth:`Array.append`), in one call that engines may serve concurrently
        (Zarr: one round of store writes). Nothing is promised about the order in
        which the arrays change: a writer that needs an order makes two calls."""
        for arr, values in items:
            arr.append(values)

    def set_many(self, items: Sequence[tuple[Array, int, np.ndarray]]) -> None:
        """Write each ``values`` into its array from row ``start`` on (first axis,
        within the array's shape), as ``array[start:start + len(values)] = values``,
        in one call that engines may serve concurrently."""
        for arr, start, values in items:
            arr[start : start + len(values)] = values

    def start_set_many(self, items: Sequence[tuple[Array, int, np.ndarray]]) -> Callable[[], None]:
        """:meth:`set_many`, started: returns ``finish``, which waits until the
        write has ended and raises its error, if any. Until ``finish`` returns the
        caller must not change ``values`` (the engine may still be reading them)
        and must call it before the next write to the same arrays and before
        closing. Engines that can write in the background (Zarr) return at once;
        the default writes now, and ``finish`` does nothing."""
        self.set_many(items)
        return _nothing

    # -- bulk reading ----------------------------------------------------
    def read_many(self, requests: Sequence[Array | tuple[Array, Any]]) -> list[np.ndarray]:
        """Read several arrays (or ``(array, selection)`` pairs) in one call.

        Results come back in request order. The default reads in sequence;
        engines with concurrent I/O override it.
        """
        out = []
        for req in requests:
            arr, sel = req if isinstance(req, tuple) else (req, ...)
            out.append(arr[sel])
        return out

    def delete(self, name: str) -> None:
        """Delete the child ``name`` (and everything under it).

        Raises:
            ReadOnlyError: read-only file.
            NotFoundError: no such child.
        """
        raise ReadOnlyError(f"{self.where()}: this engine cannot delete members")

    # -- lifetime --------------------------------------------------------
    @property
    def owns_file(self) -> bool:
        """True for a root that owns its file (from :func:`skelstore.open`): closing
        it releases the file. Groups wrapped around the caller's own h5py/zarr
        objects, and child groups, do not."""
        return False

    def add_close_hook(self, hook: Any) -> bool:
        """Run ``hook(ok)`` when this root is closed, before the file is released;
        ``ok`` is False when the ``with`` block exited with an exception.

        Only roots that own their file run hooks: elsewhere this returns False and
        registers nothing.
        """
        if not self.owns_file:
            return False
        self.__dict__.setdefault("_close_hooks", []).append(hook)
        return True

    def run_close_hooks(self) -> None:
        """Run the hooks of :meth:`add_close_hook`, each once, with
        :attr:`exit_ok`. Engines call this first thing in :meth:`close` (or
        :meth:`drop_close_hooks` instead, when nothing more may be written)."""
        ok = self.__dict__.pop("_close_ok", True)
        for hook in self.__dict__.pop("_close_hooks", []):
            hook(ok)

    def drop_close_hooks(self) -> None:
        """Forget the hooks of :meth:`add_close_hook` without running them (in
        :meth:`abort`, or in :meth:`close` after a failed write)."""
        self.__dict__.pop("_close_hooks", None)

    @property
    def exit_ok(self) -> bool:
        """False while closing after the ``with`` block raised (or after
        :meth:`abort`): close hooks get it as ``ok``, and :meth:`close` then raises
        no error of its own over the one already leaving. Engines may set it."""
        return bool(self.__dict__.get("_close_ok", True))

    @exit_ok.setter
    def exit_ok(self, ok: bool) -> None:
        self.__dict__["_close_ok"] = ok

    def flush(self) -> None:
        """Make everything written so far durable (no-op where writes are immediate)."""

    def close(self) -> None:
        """Finish writing and release the file. Only root groups own a file;
        closing a child group does nothing. Safe to call twice."""

    def abort(self) -> None:
        """Release the file without finishing it: no close hooks run and nothing
        more is written (no flush of buffers, no consolidation, no upload); what
        was already written stays. Used when an open is refused after the engine
        opened the target, so that the target is left byte for byte as it was.
        Engines override it; the default runs :meth:`close` without hooks."""
        self.drop_close_hooks()
        self.close()

    def __enter__(self) -> Group:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.exit_ok = exc_type is None
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where()} ({len(self.keys())} members)>"


@dataclass
class Probe:
    """What engine guessing knows about a target, gathered lazily.

    Attributes:
        url: the target as given (path or URL).
        suffix: lower-cased name ending used for guessing (``.h5``, ``.zarr``,
            ``.zarr.zip``, ...), ``""`` if none.
        head: the first bytes of the target if it is a file (``None`` if it is a
            directory or does not exist).
        members: names found directly inside the target if it is a directory.
    """

    url: str
    suffix: str
    head: bytes | None = None
    members: set[str] = field(default_factory=set)


class Engine(ABC):
    """One storage engine: how to open, create, sniff and adapt its targets.

    Engine classes are small entry points (as in xarray's backends); the heavy
    library is imported when a method runs. Registered under the entry-point
    group ``skelstore.backends``.
    """

    #: Registry name.
    name: ClassVar[str]
    #: Name endings this engine claims, longest first (``.zarr.zip`` before ``.zip``).
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: The engine's own keywords of :meth:`open` (``{"zarr_format"}`` for Zarr):
    #: :func:`skelstore.open` forwards an option given a value (not ``None``) only
    #: to engines that declare it, and refuses it for the others.
    open_options: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def sniff(self, probe: Probe) -> bool:
        """True if ``probe`` looks like this engine's format (magic bytes, marker files)."""

    @abstractmethod
    def open(
        self,
        url: str,
        mode: str,
        *,
        storage_options: dict[str, Any] | None = None,
        allow_external: bool = False,
        **options: Any,
    ) -> Group:
        """Open ``url`` in ``mode`` and return its root group (which owns the file).

        ``allow_external``: follow references to data in other files (HDF5 external
        links, external raw storage, virtual datasets); engines refuse them with
        :class:`~skelstore.errors.FormatError` by default. It is only passed when
        true, so engines written before it existed keep working.

        ``options``: the engine's own keywords, those named in :attr:`open_options`
        (an engine declaring none need not take ``**options``)."""

    @abstractmethod
    def owns(self, obj: Any) -> bool:
        """True if ``obj`` is this engine's own open object (e.g. an ``h5py.Group``)."""

    @abstractmethod
    def wrap(self, obj: Any) -> Group:
        """Adapt an already open object to :class:`Group`; closing it stays the caller's job."""
