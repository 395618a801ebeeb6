"""The HDF5 engine: h5py behind the storage interface.

Local files are opened by h5py directly, with skelshop's settings (``libver``
earliest..v110, a 16 MiB chunk cache). Other fsspec URLs are read through an
fsspec file object, and written to a local temporary file that is uploaded as one
object when the root is closed (h5py cannot write to object storage, and readers
must never see a partial file).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import weakref
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from skelstore.backends.hdf5_direct import blosc_settings, write_chunks
from skelstore.compression import Encoding, check_lossy
from skelstore.config import get_options
from skelstore.errors import (
    ClosedError,
    EngineError,
    FormatError,
    LockedError,
    NotFoundError,
    ReadOnlyError,
    RemoteAccessError,
    RemoteError,
    SkelstoreError,
    WriteError,
)
from skelstore.locks import WriteLock, check_file_unlocked, flock_holder
from skelstore.rangefile import RangeCacheFile, call_with_retries, fs_call, fs_retried
from skelstore.staging import Staged, write_error
from skelstore.storage import (
    Array,
    ArraySpec,
    Attrs,
    Engine,
    Group,
    GroupSpec,
    Probe,
    check_specs,
    natural_key,
    normalize_attr,
)
from skelstore.urls import confirmed, invalidate, is_local, local_path, to_fs

__all__ = ["HDF5Array", "HDF5Engine", "HDF5Group"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: HDF5 looks for its superblock at 0 and at every power of two from 512 on.
_MAGIC_OFFSETS = (0, 512, 1024, 2048)

#: skelshop's file settings (skelshop.utils.h5py.h5out).
FILE_KWARGS: dict[str, Any] = {
    "libver": ("earliest", "v110"),
    "rdcc_nbytes": 16 * 1024 * 1024,
    "rdcc_w0": 1,
    "rdcc_nslots": 8297,
}

BLOSC_FILTER_ID = 32001
_BLOSC_ZSTD = 5
_BLOSC_BITSHUFFLE = 2
_SCALEOFFSET_FILTER_ID = 6  # H5Z_FILTER_SCALEOFFSET

#: Reads of more than this many bytes are first checked against the bytes the
#: dataset really stores, so that a forged shape cannot make skelstore allocate
#: memory for data the file does not hold.
CHECKED_READ_BYTES = 64 * 2**20
#: The most a dataset's stored bytes may grow when decoded (compression ratio).
MAX_EXPANSION = 1024
#: Soft links followed in a row before giving up (HDF5's own default limit).
_MAX_SOFT_HOPS = 16
#: What h5py raises for damaged files (corrupt metadata, failing filters, types
#: it cannot map); turned into FormatError naming the file and node.
_H5_ERRORS = (OSError, RuntimeError, ValueError, TypeError, KeyError, IndexError, OverflowError)

#: Open files whose write failed, by HDF5 file number: the error, raised again by
#: every later write and by closing the root.
_FAILED: dict[int, WriteError] = {}


def _fileno(obj: Any) -> int | None:
    """HDF5's number of the open file ``obj`` (an h5py object) belongs to."""
    try:
        return int(obj.id.fileno[0])
    except Exception:  # closed, or not an HDF5 object
        return None


def _detach(obj: Any) -> None:
    """Point the failed file's descriptor at ``/dev/null``.

    After a failed write libhdf5 still holds dirty metadata and chunks, and tries
    to write them whenever an object is released, at close and at interpreter exit;
    each attempt fails again (a traceback per dataset), close fails, and the
    library crashes at exit. With the descriptor on ``/dev/null`` those writes go
    nowhere and the file closes cleanly; the file on disk stays as the failure
    left it (as a crashed writer leaves it).
    """
    try:
        fd = obj.file.id.get_vfd_handle()
    except Exception:  # pragma: no cover - not a POSIX-file driver
        return
    if not isinstance(fd, int) or fd < 0:  # pragma: no cover
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def _sync(ds: Any) -> None:
    """Write the chunks of ``ds`` that libhdf5 still caches, now: a failed write
    then fails in the call that made it, not when libhdf5 releases the dataset
    (where its error cannot be raised, only printed)."""
    ds.id.flush()


@contextlib.contextmanager
def _writing(obj: Any, source: str) -> Iterator[None]:
    """Around every write to ``obj``'s file: refuse writes after a failed one, and
    turn a failed write (full disk, file-size limit, I/O error) into WriteError,
    detaching the file (:func:`_detach`) so that nothing more is tried."""
    key = _fileno(obj)
    failed = _FAILED.get(key) if key is not None else None
    if failed is not None:
        raise type(failed)(
            f"{source}: an earlier write failed ({failed})", path=source, errno=failed.errno
        )
    try:
        yield
    except SkelstoreError:
        raise
    except Exception as exc:
        err = write_error(source, exc)
        if err is None:
            raise
        if key is not None:
            _FAILED[key] = err
            _detach(obj)
        raise err from exc



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
        try:
            return self._obj.attrs
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except _H5_ERRORS as exc:
            raise FormatError(f"{self._where}: cannot read attributes ({exc})") from exc

    def _json_names(self, raw: Any) -> list[str]:
        try:
            names = raw.get(JSON_ATTRS)
        except _H5_ERRORS:
            return []
        if names is None or isinstance(names, h5py.Empty):
            return []
        names = np.atleast_1d(np.asarray(names))
        return [n.decode("utf-8", "surrogateescape") if isinstance(n, bytes) else str(n)
                for n in names.tolist()]

    def _set_json_names(self, raw: Any, names: list[str]) -> None:
        if names:
            raw[JSON_ATTRS] = np.array(names, dtype=h5py.string_dtype())
        elif JSON_ATTRS in raw:
            del raw[JSON_ATTRS]

    def __getitem__(self, key: str) -> Any:
        if key == JSON_ATTRS:
            raise KeyError(key)
        raw = self._raw()
        try:
            value = _scalar_attr(self._obj, key)
            if value is not None:
                return value
            value = raw[key]
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except KeyError:
            raise
        except _H5_ERRORS as exc:
            raise FormatError(f"{self._where}: cannot read attribute {key!r} ({exc})") from exc
        if isinstance(value, h5py.Empty):
            return None
        if isinstance(value, (str, bytes)) and key in self._json_names(raw):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise FormatError(
                    f"{self._where}: attribute {key!r} is marked as JSON but does not parse "
                    f"({exc})"
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
        try:
            return key in self._raw()
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except _H5_ERRORS as exc:
            raise FormatError(f"{self._where}: cannot read attributes ({exc})") from exc

    def _names(self) -> list[str]:
        try:
            return [k for k in self._raw() if k != JSON_ATTRS]
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except _H5_ERRORS as exc:
            raise FormatError(f"{self._where}: cannot list attributes ({exc})") from exc

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def update(self, other: Any = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        with _writing(self._obj, self._source):
            self._store(self._raw(), {**dict(other), **kwargs})


def encoding_kwargs(encoding: Encoding | None) -> dict[str, Any]:
    """h5py ``create_dataset`` keywords for an engine-neutral :class:`Encoding`."""
    kwargs: dict[str, Any] = {}
    if encoding is None:
        return kwargs
    if encoding.blosc_level is not None:
        kwargs["compression"] = hdf5plugin.Blosc(
            cname="zstd", clevel=encoding.blosc_level, shuffle=hdf5plugin.Blosc.BITSHUFFLE
        )
    if encoding.scale_digits is not None:
        kwargs["scaleoffset"] = encoding.scale_digits
    return kwargs


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
    if not ds.shape:
        return ds.dtype.itemsize
    a, b = _row_span(ds, sel)
    return (b - a) * ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64))


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


class HDF5Array(Array):
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
    def path(self) -> str:
        return self._ds.name

    @property
    def source(self) -> str:
        return self._source

    @property
    def raw(self) -> h5py.Dataset:
        return self._ds

    @property
    def attrs(self) -> Attrs:
        where = self.where()
        return Attrs(
            _H5Attrs(self._ds, where, self._source),
            writable=self._writable,
            where=where,
            encode=_encode_attr,
            guard=self._check_open,
        )

    @property
    def shape(self) -> tuple[int, ...]:
        try:
            shape = self._ds.shape
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except _H5_ERRORS as exc:
            raise FormatError(f"{self.where()}: cannot read the shape ({exc})") from exc
        if shape and max(shape) >= 2**63:  # beyond any index (len() fails on it)
            raise FormatError(f"{self.where()}: impossible shape {shape}")
        return shape

    @property
    def dtype(self) -> np.dtype:
        try:
            return self._ds.dtype
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except _H5_ERRORS as exc:
            raise FormatError(f"{self.where()}: cannot read the data type ({exc})") from exc

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
                if values[5] != _BLOSC_BITSHUFFLE or values[6] != _BLOSC_ZSTD:
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
        try:
            self._check_source()
            self._check_size(selection)
            if selection is Ellipsis or selection == ():
                return _read_whole(self._ds)
            return self._ds[selection]
        except SkelstoreError:
            raise
        except _H5_ERRORS as exc:
            raise FormatError(f"{self.where()}: cannot read ({exc})") from exc

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
            raise FormatError(
                f"{self.where()}: cannot append shape {values.shape} to {self.shape}"
            )
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

    def _check_open(self) -> None:
        if not self._ds.id.valid:
            raise ClosedError(f"{self._source}: the dump has been closed; cannot write to it")

    def _check_writable(self) -> None:
        self._check_open()
        if not self._writable:
            raise ReadOnlyError(f"{self.where()}: opened read-only")


class HDF5Group(Group):
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
        self._allow_external = allow_external or get_options().allow_external
        self._writable = grp.file.mode == "r+"
        # a root dropped without close() still lets the next writer in
        self._unlock = weakref.finalize(self, lock.release) if lock is not None else None

    @property
    def path(self) -> str:
        return self._grp.name

    @property
    def source(self) -> str:
        return self._source

    @property
    def raw(self) -> h5py.Group:
        return self._grp

    @property
    def writable(self) -> bool:
        return self._writable

    @property
    def attrs(self) -> Attrs:
        where = self.where()
        return Attrs(
            _H5Attrs(self._grp, where, self._source),
            writable=self._writable,
            where=where,
            encode=_encode_attr,
            guard=self._check_open,
        )

    @property
    def format_info(self) -> dict[str, Any]:
        return {"hdf5_version": h5py.version.hdf5_version}

    def keys(self) -> list[str]:
        try:
            return sorted(self._grp.keys(), key=natural_key)
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except _H5_ERRORS as exc:
            raise FormatError(f"{self.where()}: cannot list the group ({exc})") from exc

    def _wrap(self, obj: Any) -> HDF5Group | HDF5Array | None:
        if isinstance(obj, h5py.Group):
            return HDF5Group(
                obj, self._source, rangefile=self._rangefile, allow_external=self._allow_external
            )
        if isinstance(obj, h5py.Dataset):
            return HDF5Array(obj, self._source, self._writable, allow_external=self._allow_external)
        return None

    def _child(self, name: str, _hops: int = 0) -> HDF5Group | HDF5Array | None:
        """The child ``name``; links are looked at before they are followed: external
        links raise FormatError (unless opened with ``allow_external``), soft links are
        resolved here, one checked component at a time (at most 16 in a row)."""
        if name == ".":
            return self

        def where() -> str:  # for messages only: h5py's .name costs a library call
            return f"{self.source}:{self.path.rstrip('/')}/{name}"

        try:
            links = self._grp.id.links
            key = name.encode("utf-8", "surrogateescape")
            if not links.exists(key):
                return None
            kind = links.get_info(key).type
            target = None if kind == h5py.h5l.TYPE_HARD else links.get_val(key)
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except _H5_ERRORS as exc:
            raise FormatError(f"{where()}: cannot read the link ({exc})") from exc
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
            return self._wrap(self._open(key))
        except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
            raise
        except KeyError:
            if kind != h5py.h5l.TYPE_HARD:  # a dangling soft or external link: missing
                return None
            raise FormatError(f"{where()}: cannot open the object (damaged file?)") from None
        except _H5_ERRORS as exc:
            raise FormatError(f"{where()}: cannot open ({exc})") from exc

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
            try:
                node = HDF5Group(
                    self._grp.file["/"], self._source, rangefile=self._rangefile,
                    allow_external=self._allow_external,
                )
            except SkelstoreError:  # e.g. a RemoteError raised while HDF5 read
                raise
            except _H5_ERRORS as exc:
                raise FormatError(f"{where}: cannot open the root group ({exc})") from exc
        for part in (p for p in target.split("/") if p):
            if not isinstance(node, HDF5Group):
                return None
            node = node._child(part, hops)
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
        if data is not None and len(data) == 0:
            data = None  # h5py rejects empty data with filters; the shape says it all
        try:
            with _writing(self._grp, self._source):
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
        except (TypeError, ValueError) as exc:
            raise EngineError(f"{self.where()}/{name}: h5py refused the settings ({exc})") from exc
        return HDF5Array(ds, self._source, True, allow_external=self._allow_external)

    def write_many(self, nodes: Sequence[GroupSpec | ArraySpec]) -> None:
        """Create the nodes in order; arrays whose only filter is Blosc are created
        empty and their chunks compressed together on a thread pool and written
        with ``write_direct_chunk`` (see :mod:`skelstore.backends.hdf5_direct`)."""
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
                try:
                    with _writing(ds, self._source):
                        ds[...] = data
                        _sync(ds)
                except SkelstoreError:
                    raise
                except _H5_ERRORS as exc:
                    raise EngineError(f"{arr.where()}: cannot write ({exc})") from exc
            else:
                direct.append((ds, settings, data))
        try:
            with _writing(self._grp, self._source):
                write_chunks(direct)
        except SkelstoreError:
            raise
        except _H5_ERRORS as exc:
            raise EngineError(f"{self.where()}: cannot write chunks ({exc})") from exc

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
            self._check_open()
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
        ok = self.__dict__.get("_close_ok", True)
        key = _fileno(self._grp) if self._grp.id.valid else None
        failure: WriteError | None = None
        done = False
        try:
            if key is not None and key not in _FAILED:
                with contextlib.suppress(WriteError):  # remembered in _FAILED
                    self._run_close_hooks()
            self.__dict__.pop("_close_hooks", None)
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
        self.__dict__.pop("_close_hooks", None)
        if self._writable and self._grp.id.valid:
            key = _fileno(self._grp)
            _detach(self._grp)
            if key is not None:  # closing raises nothing about the detached file
                _FAILED.pop(key, None)
        self.__dict__["_close_ok"] = False
        publish, self._publish = self._publish, None
        try:
            self.close()
        finally:
            if publish is not None:
                publish(False)

    def _check_open(self) -> None:
        if not self._grp.id.valid:
            raise ClosedError(f"{self._source}: the dump has been closed; cannot write to it")

    def _check_writable(self) -> None:
        self._check_open()
        if not self._writable:
            raise ReadOnlyError(f"{self.where()}: opened read-only")


#: Roots read through Python file objects. HDF5 calls back into such an object
#: while closing; left open until interpreter teardown, that crashes the process,
#: so whatever the caller did not close is closed at exit.
_OPEN_ON_FILE_OBJECTS: weakref.WeakSet[HDF5Group] = weakref.WeakSet()


@atexit.register
def _close_file_object_roots() -> None:
    for root in list(_OPEN_ON_FILE_OBJECTS):
        with contextlib.suppress(Exception):  # best effort at exit: nothing left to tell
            root.close()


def _h5_mode(mode: str) -> str:
    return "w-" if mode == "x" else mode


#: libhdf5's rule for a file it has open, told to a refused writer.
_HDF5_RULE = "HDF5 allows one writer or any number of readers"


def _open_local(path: str, mode: str, url: str) -> h5py.File:
    """Open a local file with h5py in ``mode``. A writer first asks for libhdf5's
    own lock on an existing file (:func:`~skelstore.locks.check_file_unlocked`):
    a file another process (or this one) has open is refused before ``w`` could
    truncate it."""
    try:
        if mode in ("w", "a", "r+") and os.path.isfile(path):  # (w-/x never change a file)
            check_file_unlocked(url, path, _HDF5_RULE)
        return h5py.File(path, _h5_mode(mode), **FILE_KWARGS)
    except LockedError:
        raise
    except FileNotFoundError:
        raise NotFoundError(f"{url}: no such file") from None
    except FileExistsError:
        raise EngineError(f"{url}: already exists (mode {mode!r})") from None
    except OSError as exc:
        msg = str(exc)
        if "file signature not found" in msg or "not an HDF5 file" in msg.lower():
            raise FormatError(f"{url}: not an HDF5 file") from exc
        if "unable to lock file" in msg or "unable to truncate" in msg or "already open" in msg:
            # opened meanwhile (the check above and the open are two steps)
            holder = flock_holder(path)
            who = f" by {holder}" if holder else ""
            raise LockedError(
                f"{url}: file is in use{who}: {_HDF5_RULE} ({msg})", path=url, holder=holder
            ) from exc
        if "No such file" in msg:
            raise NotFoundError(f"{url}: no such file") from exc
        raise FormatError(f"{url}: cannot open as HDF5 ({msg})") from exc


def _open_local_root(url: str, mode: str, allow_external: bool) -> HDF5Group:
    """A local file's root; writers hold :class:`~skelstore.locks.WriteLock`, taken
    before the file is looked at."""
    path = local_path(url)
    # (h5py does not create missing directories: neither does the lock)
    lock = WriteLock.acquire(url, path, make_parents=False) if mode != "r" else None
    try:
        f = _open_local(path, mode, url)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return HDF5Group(f, url, owner=True, lock=lock, allow_external=allow_external)


class HDF5Engine(Engine):
    """Entry point of the HDF5 engine."""

    name = "hdf5"
    suffixes = (".h5", ".hdf5", ".hdf")
    install_hint = "pip install h5py hdf5plugin"

    def sniff(self, probe: Probe) -> bool:
        head = probe.head or b""
        return any(head[o : o + 8] == HDF5_MAGIC for o in _MAGIC_OFFSETS)

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, h5py.Group)

    def wrap(self, obj: Any) -> HDF5Group:
        return HDF5Group(obj, obj.file.filename)

    def open(
        self,
        url: str,
        mode: str,
        *,
        storage_options: dict[str, Any] | None = None,
        zarr_format: int | None = None,
        allow_external: bool = False,
    ) -> HDF5Group:
        if zarr_format is not None:
            raise EngineError(f"{url}: zarr_format= does not apply to the hdf5 engine")
        if is_local(url):
            return _open_local_root(url, mode, allow_external)
        fs, path = to_fs(url, storage_options)
        if mode == "r":
            return self._open_remote_read(fs, path, url, allow_external)
        return self._open_remote_write(fs, path, url, mode, storage_options)

    def _open_remote_read(
        self, fs: Any, path: str, url: str, allow_external: bool = False
    ) -> HDF5Group:
        """Read through a :class:`~skelstore.rangefile.RangeCacheFile`: the whole
        object at once when small, else metadata blocks plus exact chunk ranges."""
        def size_of() -> int | None:  # transient failures are retried; the rest typed
            return call_with_retries(lambda t: fs_call(fs, "size", path, timeout=t), url)

        try:
            try:
                size = size_of()
            except NotFoundError:  # perhaps from a listing cached before it was written
                invalidate(fs, path)
                size = size_of()
        except RemoteAccessError as exc:
            raise EngineError(f"{url}: access denied ({exc})") from exc
        if size is None:
            raise NotFoundError(f"{url}: no such object")
        fobj = RangeCacheFile(fs, path, size=size, url=url)
        try:
            f = h5py.File(fobj, "r", **FILE_KWARGS)
        except SkelstoreError:  # a RemoteError while HDF5 read the superblock
            fobj.close()
            raise
        except OSError as exc:
            fobj.close()
            raise FormatError(f"{url}: not an HDF5 file ({exc})") from exc
        root = HDF5Group(
            f, url, owner=True, finalize=fobj.close, rangefile=fobj, allow_external=allow_external
        )
        _OPEN_ON_FILE_OBJECTS.add(root)
        return root

    def _open_remote_write(
        self, fs: Any, path: str, url: str, mode: str, storage_options: dict[str, Any] | None
    ) -> HDF5Group:
        """Write to a local staged copy (:class:`~skelstore.staging.Staged`; the
        object downloaded first for ``r+``/``a``), uploaded as one object on close.
        Every request is bounded in time and retried as reads are (RetryPolicy)."""
        exists = confirmed(
            fs, path, lambda: fs_retried(fs, "exists", path, what=url, action="look up")
        )
        if mode in ("w-", "x") and exists:
            raise EngineError(f"{url}: already exists (mode {mode!r})")
        if mode == "r+" and not exists:
            raise NotFoundError(f"{url}: no such object")
        staged = Staged(url, storage_options, suffix=".h5")
        try:
            if exists and mode in ("r+", "a"):
                size = fs_retried(fs, "size", path, what=url, action="look up")
                fs_retried(fs, "get_file", path, staged.path, what=url, action="download",
                           nbytes=size)  # fmt: skip
            f = _open_local(staged.path, "a" if mode in ("r+", "a") else "w", url)
        except BaseException:
            staged.discard()
            raise

        def publish(ok: bool) -> None:
            if not ok:
                staged.discard()
                return
            try:
                staged.publish()
            except (WriteError, RemoteError, NotFoundError) as exc:  # upload failed: keep it
                kept = staged.keep()
                raise WriteError(
                    f"{exc}; the written file is kept at {kept}", path=url, errno=exc.errno
                ) from exc

        return HDF5Group(f, url, owner=True, publish=publish)
