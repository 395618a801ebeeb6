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
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from skelstore.compression import Encoding
from skelstore.errors import (
    EngineError,
    FormatError,
    NotFoundError,
    ReadOnlyError,
    SkelstoreError,
)
from skelstore.rangefile import RangeCacheFile
from skelstore.storage import Array, Attrs, Engine, Group, Probe, natural_key
from skelstore.urls import is_local, local_path, to_fs

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
    """Attribute values as h5py stores them the way skelshop wrote them."""
    if value is None:
        raise FormatError("HDF5 attributes cannot hold None")
    if isinstance(value, list):
        arr = np.asarray(value)
        if arr.dtype.kind == "U":
            return arr.astype(h5py.string_dtype())
        return arr
    return value


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

    def __init__(self, ds: h5py.Dataset, source: str, writable: bool) -> None:
        self._ds = ds
        self._source = source
        self._writable = writable

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
        return Attrs(
            self._ds.attrs, writable=self._writable, where=self.where(), encode=_encode_attr
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return self._ds.shape

    @property
    def dtype(self) -> np.dtype:
        return self._ds.dtype

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

    def __getitem__(self, selection: Any) -> np.ndarray:
        try:
            if selection is Ellipsis or selection == ():
                return self._ds[()]
            return self._ds[selection]
        except OSError as exc:
            raise FormatError(f"{self.where()}: cannot read ({exc})") from exc

    def __setitem__(self, selection: Any, values: Any) -> None:
        self._check_writable()
        self._ds[selection] = values

    def append(self, values: np.ndarray) -> None:
        self._check_writable()
        values = np.asarray(values)
        if not self.growable:
            raise FormatError(f"{self.where()}: array was not created growable")
        if values.shape[1:] != self.shape[1:]:
            raise FormatError(
                f"{self.where()}: cannot append shape {values.shape} to {self.shape}"
            )
        if len(values) == 0:
            return
        n = self._ds.shape[0]
        self._ds.resize(n + len(values), axis=0)
        self._ds[n:] = values

    def truncate(self, length: int) -> None:
        self._check_writable()
        if not self.growable or not 0 <= length <= len(self):
            raise FormatError(f"{self.where()}: cannot truncate to {length}")
        self._ds.resize(length, axis=0)

    def _check_writable(self) -> None:
        if not self._writable:
            raise ReadOnlyError(f"{self.where()}: opened read-only")


class HDF5Group(Group):
    """An ``h5py.Group`` (or ``h5py.File`` for the root).

    A root opened by :class:`HDF5Engine` owns its file and closes it; ``finalize``
    runs after the file is closed (used to upload a remote write).
    """

    engine_name = "hdf5"

    def __init__(
        self,
        grp: h5py.Group,
        source: str,
        *,
        owner: bool = False,
        finalize: Any = None,
        rangefile: RangeCacheFile | None = None,
    ) -> None:
        self._grp = grp
        self._source = source
        self._owner = owner
        self._finalize = finalize
        self._rangefile = rangefile
        self._writable = grp.file.mode == "r+"

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
        return Attrs(
            self._grp.attrs, writable=self._writable, where=self.where(), encode=_encode_attr
        )

    @property
    def format_info(self) -> dict[str, Any]:
        return {"hdf5_version": h5py.version.hdf5_version}

    def keys(self) -> list[str]:
        return sorted(self._grp.keys(), key=natural_key)

    def _wrap(self, obj: Any) -> HDF5Group | HDF5Array | None:
        if isinstance(obj, h5py.Group):
            return HDF5Group(obj, self._source, rangefile=self._rangefile)
        if isinstance(obj, h5py.Dataset):
            return HDF5Array(obj, self._source, self._writable)
        return None

    def _child(self, name: str) -> HDF5Group | HDF5Array | None:
        try:
            return self._wrap(self._grp[name])
        except (KeyError, OSError, ValueError):
            return None

    def create_group(self, name: str, attrs: dict[str, Any] | None = None) -> HDF5Group:
        self._check_writable()
        if name in self._grp:
            raise FormatError(f"{self.where()}: {name!r} already exists")
        group = HDF5Group(
            self._grp.create_group(name, track_order=True), self._source, rangefile=self._rangefile
        )
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
    ) -> HDF5Array:
        self._check_writable()
        if name in self._grp:
            raise FormatError(f"{self.where()}: {name!r} already exists")
        if data is not None:
            data = np.asarray(data, dtype=dtype)
            shape = data.shape
            dtype = data.dtype
        if shape is None:
            raise FormatError(f"{self.where()}/{name}: give data or shape")
        kwargs = encoding_kwargs(encoding)
        if engine_options:
            kwargs.update(engine_options)
        if chunks is not None:
            chunks = tuple(max(1, int(c)) for c in chunks)
        elif growable or kwargs:
            chunks = True  # type: ignore[assignment]
        maxshape = (None, *shape[1:]) if growable or shape[:1] == (0,) else None
        if data is not None and len(data) == 0:
            data = None  # h5py rejects empty data with filters; the shape says it all
        try:
            ds = self._grp.create_dataset(
                name,
                shape=shape,
                dtype=dtype,
                data=data,
                chunks=chunks,
                maxshape=maxshape,
                **kwargs,
            )
        except (TypeError, ValueError) as exc:
            raise EngineError(f"{self.where()}/{name}: h5py refused the settings ({exc})") from exc
        return HDF5Array(ds, self._source, True)

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
            self._grp.file.flush()

    @property
    def owns_file(self) -> bool:
        return self._owner

    def delete(self, name: str) -> None:
        self._check_writable()
        if name not in self._grp:
            raise NotFoundError(f"{self.where()}: no member {name!r} to delete")
        del self._grp[name]

    def close(self) -> None:
        if not self._owner:
            return
        if self._grp.id.valid:
            self._run_close_hooks()
        self._owner = False
        try:
            if self._grp.id.valid:
                self._grp.file.close()
        finally:
            if self._finalize is not None:
                finalize, self._finalize = self._finalize, None
                finalize()

    def _check_writable(self) -> None:
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


def _open_local(path: str, mode: str, url: str) -> h5py.File:
    try:
        return h5py.File(path, _h5_mode(mode), **FILE_KWARGS)
    except FileNotFoundError:
        raise NotFoundError(f"{url}: no such file") from None
    except FileExistsError:
        raise EngineError(f"{url}: already exists (mode {mode!r})") from None
    except OSError as exc:
        msg = str(exc)
        if "file signature not found" in msg or "not an HDF5 file" in msg.lower():
            raise FormatError(f"{url}: not an HDF5 file") from exc
        if "unable to lock file" in msg or "unable to truncate" in msg:
            raise EngineError(f"{url}: file is in use by another writer ({msg})") from exc
        if "No such file" in msg:
            raise NotFoundError(f"{url}: no such file") from exc
        raise FormatError(f"{url}: cannot open as HDF5 ({msg})") from exc


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
    ) -> HDF5Group:
        if zarr_format is not None:
            raise EngineError(f"{url}: zarr_format= does not apply to the hdf5 engine")
        if is_local(url):
            f = _open_local(local_path(url), mode, url)
            return HDF5Group(f, url, owner=True)
        fs, path = to_fs(url, storage_options)
        if mode == "r":
            return self._open_remote_read(fs, path, url)
        return self._open_remote_write(fs, path, url, mode)

    def _open_remote_read(self, fs: Any, path: str, url: str) -> HDF5Group:
        """Read through a :class:`~skelstore.rangefile.RangeCacheFile`: the whole
        object at once when small, else metadata blocks plus exact chunk ranges."""
        try:
            size = fs.size(path)
        except FileNotFoundError:
            raise NotFoundError(f"{url}: no such object") from None
        except PermissionError as exc:
            raise EngineError(f"{url}: access denied ({exc})") from exc
        if size is None:
            raise NotFoundError(f"{url}: no such object")
        fobj = RangeCacheFile(fs, path, size=size)
        try:
            f = h5py.File(fobj, "r", **FILE_KWARGS)
        except OSError as exc:
            fobj.close()
            raise FormatError(f"{url}: not an HDF5 file ({exc})") from exc
        root = HDF5Group(f, url, owner=True, finalize=fobj.close, rangefile=fobj)
        _OPEN_ON_FILE_OBJECTS.add(root)
        return root

    def _open_remote_write(self, fs: Any, path: str, url: str, mode: str) -> HDF5Group:
        exists = fs.exists(path)
        if mode in ("w-", "x") and exists:
            raise EngineError(f"{url}: already exists (mode {mode!r})")
        if mode == "r+" and not exists:
            raise NotFoundError(f"{url}: no such object")
        tmpdir = tempfile.mkdtemp(prefix="skelstore-")
        local = os.path.join(tmpdir, "upload.h5")
        if exists and mode in ("r+", "a"):
            fs.get(path, local)
        f = _open_local(local, "a" if mode in ("r+", "a") else "w", url)

        def upload() -> None:
            try:
                fs.put(local, path)
                if hasattr(fs, "invalidate_cache"):
                    fs.invalidate_cache(path)
            except Exception as exc:
                raise SkelstoreError(
                    f"{url}: upload failed ({exc}); the written file is kept at {local}"
                ) from exc
            shutil.rmtree(tmpdir, ignore_errors=True)

        return HDF5Group(f, url, owner=True, finalize=upload)
