"""The Zarr engine: zarr-python 3 behind the storage interface (Zarr formats 2 and 3).

Targets:

* a local directory (plain path or ``file://``) → :class:`zarr.storage.LocalStore`;
* any other fsspec URL (``memory://``, ``s3://``, ``gs://``, ...) →
  :class:`zarr.storage.FsspecStore` (synchronous filesystems such as ``memory://``
  are wrapped by zarr itself);
* a ``.zarr.zip`` file (or a ``zip::`` prefixed URL): read in place through
  :class:`zarr.storage.ZipStore` (through fsspec's zip filesystem if remote);
  written by building a local directory store and writing the zip in one go
  when the root is closed (to a temporary name, then ``os.replace``-d into place,
  or uploaded as one object), because ``ZipStore`` appends a duplicate entry each
  time a key such as ``zarr.json`` is rewritten, and so a crash never leaves half
  a zip behind.

Writable roots opened here are consolidated (``zarr.consolidate_metadata``) on
:meth:`ZarrGroup.close`; readers use consolidated metadata when it is there.
While a root is open for writing, consolidated metadata is ignored and an old
copy is dropped at open, so nothing stale is ever listed.

One writer at a time: a local directory store (or local ``.zarr.zip``) opened
for writing holds :class:`skelstore.locks.WriteLock` (a lock file beside it,
naming the holder) until the root is closed; it is taken before the target is
looked at, so a refused writer changes nothing. Object stores have no such lock
(see docs/remote.md).

A write the storage fails (a full disk) raises
:class:`~skelstore.errors.WriteError` and stops the session: later writes raise
it again, and closing neither consolidates nor publishes a zip.

Remote stores (fsspec) are wrapped in :class:`_RetryingStore`: reads that fail
transiently are retried under :data:`skelstore.rangefile.DEFAULT_RETRY`, and
failures raise :class:`~skelstore.errors.RemoteError` naming the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import stat
import threading
import warnings
import weakref
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numcodecs
import numpy as np
import zarr
import zarr.buffer
import zarr.errors
import zarr.storage
from zarr.codecs import BloscCodec
from zarr.codecs.numcodecs import FixedScaleOffset
from zarr.storage import StorePath

from skelstore import rangefile as _rangefile
from skelstore.backends import zarr_compat as compat
from skelstore.compression import Encoding, check_lossy
from skelstore.errors import (
    ClosedError,
    EngineError,
    FormatError,
    NotFoundError,
    ReadOnlyError,
    RemoteAccessError,
    RemoteError,
    SkelstoreError,
    WriteError,
)
from skelstore.layout import dimension_names
from skelstore.locks import WriteLock
from skelstore.rangefile import RetryPolicy, retry_async
from skelstore.staging import Staged, write_error
from skelstore.storage import (
    MODES,
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
from skelstore.urls import (
    confirmed,
    is_chained,
    is_local,
    local_path,
    protocol,
    to_fs,
    with_defaults,
)

__all__ = ["ZarrArray", "ZarrEngine", "ZarrGroup"]

#: Names of the marker documents of a Zarr group or array (v3, then v2).
_MARKERS = frozenset({"zarr.json", ".zgroup", ".zarray"})
_ZIP_MAGIC = b"PK\x03\x04"

#: Codecs that decode into arbitrary Python objects (pickle can run code): refused.
_UNSAFE_CODECS = frozenset({"pickle", "json", "json2", "msgpack", "msgpack2", "vlen-array"})
#: Codecs that only (de)serialise and do not change what an Encoding describes.
_NEUTRAL_CODECS = frozenset({"bytes", "vlen-utf8", "vlen-bytes"})

#: What zarr raises for metadata documents it cannot make sense of (bad JSON,
#: wrong types, unknown codecs or dtypes): turned into FormatError.
_META_ERRORS = (
    KeyError, ValueError, TypeError, AttributeError, IndexError, ZeroDivisionError,
    OverflowError, NotImplementedError, EOFError, zipfile.BadZipFile, zlib.error,
)
#: Reads of more than this many bytes are first checked against the bytes the array
#: really stores, so that a forged shape cannot make skelstore allocate memory for
#: chunks that do not exist.
CHECKED_READ_BYTES = 64 * 2**20
#: The most an array's stored bytes may grow when decoded (compression ratio).
MAX_EXPANSION = 1024


def _selection_bytes(shape: tuple[int, ...], itemsize: int, sel: Any) -> int:
    """Bytes a read of ``sel`` allocates (the whole first axis unless ``sel`` is a
    simple int or slice along it)."""
    if not shape:
        return itemsize
    n = shape[0]
    first = sel[0] if isinstance(sel, tuple) and sel else sel
    if isinstance(first, slice) and first.step in (None, 1):
        a, b, _ = first.indices(n)
        rows = max(0, b - a)
    elif isinstance(first, (int, np.integer)) and not isinstance(first, bool):
        rows = 1
    else:
        rows = n
    return rows * itemsize * math.prod(shape[1:])

#: h5py ``create_dataset`` keywords that have no effect on a Zarr array's contents.
_IGNORED_H5PY = frozenset({"maxshape", "track_times", "track_order"})
_BLOSC_FILTER_ID = 32001
_BLOSC_ZSTD = 5
_BLOSC_BITSHUFFLE = 2

#: Target chunk size of arrays whose length is unknown (growable or empty).
_GROWABLE_CHUNK_BYTES = 1 << 16

# Warnings zarr raises for things skelstore does on purpose; filtered locally only.
_QUIET_MESSAGES = (
    r"Numcodecs codecs are not in the Zarr version 3 specification",
    r"Consolidated metadata is currently not part in the Zarr format 3 specification",
)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence zarr's warnings about numcodecs codecs and consolidated metadata in v3."""
    with warnings.catch_warnings():
        for message in _QUIET_MESSAGES:
            warnings.filterwarnings("ignore", message=message)
        yield


def _join(base: str, name: str) -> str:
    """Zarr path of child ``name`` of the node at ``base`` (``""`` is the root)."""
    return f"{base}/{name}" if base else name


# ---------------------------------------------------------------- codecs


def _codec_spec(codec: Any) -> tuple[str, dict[str, Any]]:
    """``(name, configuration)`` of a zarr v3 codec or a numcodecs codec; the
    ``numcodecs.`` prefix of wrapped numcodecs names is removed."""
    if hasattr(codec, "to_dict"):
        d = codec.to_dict()
        name = str(d.get("name", ""))
        config = dict(d.get("configuration") or {})
    elif hasattr(codec, "get_config"):
        config = dict(codec.get_config())
        name = str(config.pop("id", ""))
    else:  # pragma: no cover - not a codec zarr would hand out
        return type(codec).__name__.lower(), {}
    return name.removeprefix("numcodecs."), config


def _array_codecs(raw: Any) -> tuple[list[Any], Any, list[Any]]:
    """``(filters, serializer, compressors)`` of a zarr array of either format."""
    return list(raw.filters or ()), getattr(raw, "serializer", None), list(raw.compressors or ())


def _unsafe_reason(names: Sequence[str], dtype: np.dtype) -> str | None:
    """Why an array with these codec names and dtype must not be decoded, if so."""
    for name in names:
        if name in _UNSAFE_CODECS:
            return f"its {name!r} codec decodes Python objects"
    if dtype.kind == "O":
        return "it holds Python objects (object dtype)"
    return None


def _scale_digits(config: dict[str, Any], dtype: np.dtype) -> int | None:
    """Digits kept by a FixedScaleOffset configuration, if it is one skelstore writes."""
    try:
        scale = float(config.get("scale", 0))
        offset = float(config.get("offset", 1))
        astype = np.dtype(config.get("astype"))
        fdtype = np.dtype(config.get("dtype"))
    except (TypeError, ValueError):
        return None
    if offset != 0 or scale < 1 or astype.kind != "i" or fdtype.kind != "f":
        return None
    if fdtype.itemsize != dtype.itemsize or dtype.kind != "f":
        return None
    digits = round(math.log10(scale))
    return digits if 10.0**digits == scale else None


def _encoding_of(raw: Any) -> Encoding | None:
    """The :class:`Encoding` a zarr array's codecs implement, ``None`` if foreign."""
    filters, serializer, compressors = _array_codecs(raw)
    dtype = np.dtype(raw.dtype)
    digits: int | None = None
    level: int | None = None
    for codec in filters:
        name, config = _codec_spec(codec)
        if name in _NEUTRAL_CODECS:
            continue
        if name != "fixedscaleoffset" or digits is not None:
            return None
        digits = _scale_digits(config, dtype)
        if digits is None:
            return None
    if serializer is not None and _codec_spec(serializer)[0] not in _NEUTRAL_CODECS:
        return None
    for codec in compressors:
        name, config = _codec_spec(codec)
        if name != "blosc" or level is not None:
            return None
        shuffle = config.get("shuffle")
        if config.get("cname") != "zstd" or shuffle not in ("bitshuffle", _BLOSC_BITSHUFFLE):
            return None
        level = int(config.get("clevel", -1))
    return Encoding(level, digits)


def _scale_astype(dtype: np.dtype) -> str:
    return "<i8" if dtype.itemsize > 4 else "<i4"


def _new_array_codecs(
    encoding: Encoding | None,
    engine_options: dict[str, Any] | None,
    dtype: np.dtype,
    zarr_format: int,
    where: str,
) -> tuple[list[Any] | None, Any, dict[str, Any]]:
    """``(filters, compressors, other h5py settings)`` of a new array: ``encoding``
    overridden field by field by the h5py keywords in ``engine_options``."""
    extra = _translate_h5py(engine_options, where) if engine_options else {}
    enc = encoding or Encoding()
    enc = Encoding(
        extra.get("blosc_level", enc.blosc_level), extra.get("scale_digits", enc.scale_digits)
    )
    filters, compressors = _codecs_for(enc, dtype, zarr_format, where)
    return filters, compressors, extra


def _codecs_for(
    encoding: Encoding, dtype: np.dtype, zarr_format: int, where: str
) -> tuple[list[Any] | None, Any]:
    """``(filters, compressors)`` for zarr's ``create_array``; ``None`` means none."""
    filters: list[Any] | None = None
    compressors: Any = None
    if encoding.scale_digits is not None:
        if dtype.kind != "f":
            raise EngineError(
                f"{where}: a scale-offset filter (scale_digits) applies to float arrays only, "
                f"not {dtype}"
            )
        params = {
            "offset": 0,
            "scale": 10**encoding.scale_digits,
            "dtype": dtype.newbyteorder("<").str,
            "astype": _scale_astype(dtype),
        }
        if zarr_format == 2:
            filters = [numcodecs.FixedScaleOffset(**params)]
        else:
            with _quiet():
                filters = [FixedScaleOffset(**params)]
    if encoding.blosc_level is not None:
        level = int(encoding.blosc_level)
        if zarr_format == 2:
            compressors = numcodecs.Blosc(
                cname="zstd", clevel=level, shuffle=numcodecs.Blosc.BITSHUFFLE
            )
        else:
            typesize = (
                np.dtype(_scale_astype(dtype)).itemsize
                if encoding.scale_digits is not None
                else dtype.itemsize
            )
            compressors = BloscCodec(
                cname="zstd", clevel=level, shuffle="bitshuffle", typesize=typesize
            )
    return filters, compressors


def _h5py_unsupported(key: str, value: Any, where: str) -> EngineError:
    shown = f"{type(value).__name__} filter" if hasattr(value, "filter_id") else repr(value)
    return EngineError(
        f"{where}: the zarr engine cannot honour h5py option {key!r}; "
        f"use compression='lossless' or a preset (got {key}={shown})"
    )


def _translate_h5py(options: dict[str, Any], where: str) -> dict[str, Any]:
    """Translate h5py ``create_dataset`` keywords into what this engine can do.

    Returns a dict with any of ``blosc_level``, ``scale_digits``, ``chunks`` and
    ``fill_value``. A Blosc filter is honoured only as zstd with bit-shuffle (what
    skelshop's presets use); ``scaleoffset`` becomes a scale-offset filter.

    Raises:
        EngineError: an option that cannot be carried out exactly, named.
    """
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in _IGNORED_H5PY or key == "compression_opts":
            continue
        if key == "compression":
            if value is None:
                continue
            if hasattr(value, "filter_id"):  # hdf5plugin.Blosc and other filter refs
                fid, fopts = value.filter_id, tuple(getattr(value, "filter_options", ()) or ())
            elif isinstance(value, int) and not isinstance(value, bool):  # **hdf5plugin.Blosc()
                fid, fopts = value, tuple(options.get("compression_opts") or ())
            else:
                raise _h5py_unsupported(key, value, where)
            if (
                fid != _BLOSC_FILTER_ID
                or len(fopts) < 7
                or fopts[5] != _BLOSC_BITSHUFFLE
                or fopts[6] != _BLOSC_ZSTD
            ):
                raise _h5py_unsupported(key, value, where)
            out["blosc_level"] = int(fopts[4])
        elif key == "scaleoffset":
            if value is None or value is False:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise _h5py_unsupported(key, value, where)
            out["scale_digits"] = int(value)
        elif key in ("shuffle", "fletcher32"):
            if value:
                raise _h5py_unsupported(key, value, where)
        elif key == "chunks":
            if isinstance(value, (tuple, list)):
                out["chunks"] = tuple(value)
            elif value not in (None, True, False):
                raise _h5py_unsupported(key, value, where)
        elif key == "fillvalue":
            if value is not None:
                out["fill_value"] = value
        else:
            raise _h5py_unsupported(key, value, where)
    opts = options.get("compression_opts")
    compression = options.get("compression")
    if opts is not None and not (
        (isinstance(compression, int) and not isinstance(compression, bool))
        or (
            hasattr(compression, "filter_options")
            and tuple(opts) == tuple(compression.filter_options)
        )
    ):
        raise _h5py_unsupported("compression_opts", opts, where)
    return out


#: See :attr:`ZarrGroup.min_chunk_bytes`.
ZARR_MIN_CHUNK_BYTES = 2**20

#: Zarr v3 arrays keep their (small, skelshop-sized) chunks inside shards of up to
#: this many uncompressed bytes, one object each: an object store then serves a
#: whole pose track in one request instead of one per 16-512 KiB chunk.
SHARD_BYTES = 8 * 2**20
#: Growable arrays use smaller shards, since every append rewrites the last one.
GROWABLE_SHARD_BYTES = 2**20


def _shard_shape(
    shape: tuple[int, ...], chunks: Any, dtype: np.dtype, growable: bool
) -> tuple[int, ...] | None:
    """Shard shape for a v3 array: whole chunks along axis 0, trailing axes whole.

    ``None`` (no sharding) where a shard would hold a single chunk anyway.
    """
    if not shape or not isinstance(chunks, tuple) or len(chunks) != len(shape):
        return None
    if tuple(chunks[1:]) != tuple(max(1, d) for d in shape[1:]):
        return None
    row = dtype.itemsize * math.prod(max(1, d) for d in shape[1:])
    c0 = chunks[0]
    target = GROWABLE_SHARD_BYTES if growable else SHARD_BYTES
    rows = c0 * max(1, target // max(1, row * c0))
    if not growable:
        rows = min(rows, -(-shape[0] // c0) * c0)
    if rows <= c0:
        return None
    return (rows, *chunks[1:])


def _default_chunks(shape: tuple[int, ...], dtype: np.dtype, growable: bool) -> Any:
    """Chunks when the caller gives none: zarr's guess for fixed, non-empty arrays;
    about 64 KiB along the first axis (whole trailing dimensions) otherwise."""
    if not shape:
        return ()
    if not growable and all(shape):
        return "auto"
    row = dtype.itemsize * math.prod(max(1, d) for d in shape[1:])
    rows = max(1, _GROWABLE_CHUNK_BYTES // max(1, row))
    return (rows, *(max(1, d) for d in shape[1:]))


# ---------------------------------------------------------------- attributes


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


# ---------------------------------------------------------------- sessions


class _ZipSink:
    """Where a zip being built locally goes on close: a local path or a remote
    object (``inner``, an fsspec URL). The build directory and the zip file are
    both staged (:class:`~skelstore.staging.Staged`): beside a local destination,
    in the temporary directory for a remote one."""

    def __init__(self, url: str, inner: str, storage_options: dict[str, Any] | None) -> None:
        self.url = url
        self.inner = inner
        self.storage_options = storage_options
        self.fs: Any = None
        if is_local(inner):
            self.dest = local_path(inner)
        else:
            self.fs, self.dest = to_fs(inner, storage_options)

    @property
    def local(self) -> bool:
        return self.fs is None

    def _lookup(self, method: str) -> bool:
        """``fs.<method>(dest)`` bounded in time, a not-found confirmed (remote only)."""
        return bool(confirmed(self.fs, self.dest, lambda: _rangefile.fs_retried(
            self.fs, method, self.dest, what=self.url, action="look up")))

    def exists(self) -> bool:
        return os.path.lexists(self.dest) if self.local else self._lookup("exists")

    def is_file(self) -> bool:
        return os.path.isfile(self.dest) if self.local else self._lookup("isfile")

    def build_dir(self) -> Staged:
        """A fresh local directory to build the store in (made)."""
        staged = Staged(self.inner, self.storage_options, suffix=".build")
        staged.mkdir()
        return staged

    def extract_to(self, directory: str) -> None:
        """Unpack the existing zip into ``directory`` (later duplicates win, as in reading)."""
        try:
            if self.local:
                with zipfile.ZipFile(self.dest) as zf:
                    zf.extractall(directory)
            else:  # downloaded first: every request bounded in time and retried
                local = os.path.join(directory, f".{secrets.token_hex(6)}.download.zip")
                size = _rangefile.fs_retried(self.fs, "size", self.dest, what=self.url,
                                             action="look up")
                _rangefile.fs_retried(self.fs, "get_file", self.dest, local, what=self.url,
                                      action="download", nbytes=size)
                try:
                    with zipfile.ZipFile(local) as zf:
                        zf.extractall(directory)
                finally:
                    os.remove(local)
        except zipfile.BadZipFile as exc:
            raise FormatError(f"{self.url}: not a zip file ({exc})") from exc

    def publish(self, directory: str) -> None:
        """Write ``directory`` as the zip in one go, then move or upload it into place.

        Raises:
            WriteError: writing the zip failed (nothing is left of it), or the
                upload did (the zip is kept, and the message says where).
        """
        staged = Staged(self.inner, self.storage_options, suffix=".zip")
        try:
            with open(staged.path, "xb") as f:
                _write_zip(directory, f)
                f.flush()
                os.fsync(f.fileno())
        except Exception as exc:
            staged.discard()
            raise write_error(self.url, exc) or WriteError(
                f"{self.url}: writing the zip failed ({exc})", path=self.url
            ) from exc
        try:
            staged.publish()
        except (WriteError, RemoteError, NotFoundError) as exc:  # upload failed: keep it
            if self.local:
                staged.discard()
                raise
            kept = staged.keep()
            raise WriteError(
                f"{self.url}: {exc}; the written zip is kept at {kept}", path=self.url
            ) from exc
        except BaseException:
            staged.discard()
            raise


def _write_zip(directory: str, fileobj: Any) -> None:
    """Store every file under ``directory`` in a zip (uncompressed: chunks already are)."""
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for fname in sorted(files):
                full = os.path.join(root, fname)
                arcname = os.path.relpath(full, directory).replace(os.sep, "/")
                zf.write(full, arcname)


# ---------------------------------------------------------------- local stores


class _ConfinedLocalStore(zarr.storage.LocalStore):
    """A directory store that never reads or writes outside its directory.

    A store from elsewhere may hold symbolic links: a chunk linked to another file
    would be read as keypoints, a link to ``/dev/zero`` read until memory runs out.
    Before each read or write, a key's directory (resolved once and remembered) and
    the key itself (one ``lstat``) are checked: a link resolving outside the store,
    or anything but a regular file or directory (devices, FIFOs, sockets), raises
    :class:`~skelstore.errors.FormatError` naming the store and the member. Links
    that stay inside the store are followed.
    """

    def __init__(self, root: Any, *, read_only: bool = False, url: str | None = None) -> None:
        super().__init__(root, read_only=read_only)
        self.url = url or str(root)
        self._real_root: str | None = None
        self._real_dirs: dict[str, str] = {}

    def with_read_only(self, read_only: bool = False) -> _ConfinedLocalStore:
        return type(self)(self.root, read_only=read_only, url=self.url)

    def _inside(self, real: str) -> bool:
        if self._real_root is None:
            self._real_root = os.path.realpath(self.root)
        return real == self._real_root or real.startswith(self._real_root.rstrip(os.sep) + os.sep)

    def _refuse(self, key: str, why: str) -> FormatError:
        return FormatError(f"{self.url}: member {key!r} {why}; refusing to use it")

    def check_key(self, key: str) -> None:
        """Raise FormatError if ``key`` leads outside the store or to a special file."""
        path = os.path.join(os.fspath(self.root), key)
        directory = os.path.dirname(path)
        real_dir = self._real_dirs.get(directory)
        if real_dir is None:
            real_dir = os.path.realpath(directory)
            if not self._inside(real_dir):
                raise self._refuse(
                    key, f"lies in a linked directory outside the store ({real_dir})"
                )
            self._real_dirs[directory] = real_dir
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return  # missing: zarr reports it as missing
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(path)
            if not self._inside(target):
                raise self._refuse(key, f"is a link to {target}, outside the store")
            try:
                st = os.stat(target)
            except OSError:
                return  # a dangling link inside the store: missing
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise self._refuse(key, "is not a regular file (a device, FIFO or socket)")

    async def get(self, key: str, prototype: Any = None, byte_range: Any = None) -> Any:
        self.check_key(key)
        return await super().get(key, prototype, byte_range)

    def get_sync(self, key: str = "", *, prototype: Any = None, byte_range: Any = None) -> Any:
        self.check_key(key)
        return super().get_sync(key, prototype=prototype, byte_range=byte_range)

    async def get_partial_values(
        self, prototype: Any, key_ranges: Iterable[tuple[str, Any]]
    ) -> list[Any]:
        key_ranges = list(key_ranges)
        for key, _ in key_ranges:
            self.check_key(key)
        return await super().get_partial_values(prototype, key_ranges)

    async def _set(self, key: str, value: Any, exclusive: bool = False) -> None:
        self.check_key(key)
        await super()._set(key, value, exclusive=exclusive)

    def set_sync(self, key: str, value: Any) -> None:
        self.check_key(key)
        super().set_sync(key, value)


# ---------------------------------------------------------------- retrying reads


class _RetryingStore(zarr.storage.WrapperStore):  # type: ignore[type-arg]
    """A remote (fsspec) store whose reads retry transient failures.

    ``get``, ``get_partial_values``, ``exists`` and ``list_dir`` run under a
    :class:`~skelstore.rangefile.RetryPolicy` (each attempt bounded in time and
    cancelled when over); failures raise :class:`~skelstore.errors.RemoteError`
    naming the URL (a missing key stays a missing key). Writes are passed on.
    """

    def __init__(self, store: Any, url: str = "", policy: RetryPolicy | None = None) -> None:
        super().__init__(store)
        self.url = url or str(store)
        self.policy = policy or _rangefile.DEFAULT_RETRY

    def _with_store(self, store: Any) -> _RetryingStore:
        return type(self)(store, self.url, self.policy)

    def __str__(self) -> str:
        return str(self._store)

    def __repr__(self) -> str:
        return f"_RetryingStore({self._store!r})"

    def _where(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{key}" if key else self.url

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        return await retry_async(
            lambda: self._store.get(key, prototype, byte_range), self._where(key), self.policy
        )

    async def get_partial_values(
        self, prototype: Any, key_ranges: Iterable[tuple[str, Any]]
    ) -> list[Any]:
        key_ranges = list(key_ranges)
        where = self._where(key_ranges[0][0]) if key_ranges else self.url
        return await retry_async(
            lambda: self._store.get_partial_values(prototype, key_ranges), where, self.policy
        )

    async def exists(self, key: str) -> bool:
        return await retry_async(lambda: self._store.exists(key), self._where(key), self.policy)

    # writes: bounded in time and retried like reads (each is a whole-object PUT or
    # DELETE, so repeating one is harmless)
    async def set(self, key: str, value: Any) -> None:
        await retry_async(lambda: self._store.set(key, value), self._where(key), self.policy,
                          len(value), action="write")

    async def set_if_not_exists(self, key: str, value: Any) -> None:
        await retry_async(lambda: self._store.set_if_not_exists(key, value), self._where(key),
                          self.policy, len(value), action="write")

    async def _set_many(self, values: Iterable[tuple[str, Any]]) -> None:
        await asyncio.gather(*(self.set(key, value) for key, value in values))

    async def delete(self, key: str) -> None:
        await retry_async(lambda: self._store.delete(key), self._where(key), self.policy,
                          action="delete")

    async def delete_dir(self, prefix: str) -> None:
        await retry_async(lambda: self._store.delete_dir(prefix), self._where(prefix),
                          self.policy, action="delete")

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        async def collect() -> list[str]:
            return [k async for k in self._store.list_dir(prefix)]

        async def entries() -> AsyncIterator[str]:
            for key in await retry_async(collect, self._where(prefix), self.policy):
                yield key

        return entries()


# ---------------------------------------------------------------- batch writes

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
                plan.documents.append(
                    (f"{path}/zarr.json", compat.group_v3_document(attrs, proto))
                )
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


class _Session:
    """State shared by every node of one opened (or wrapped) hierarchy.

    ``nodes`` maps zarr paths to the one zarr object used for each node during the
    session, so that attributes and shapes changed through one handle are seen
    through every other (zarr objects hold their metadata in memory).

    The first failed write (:meth:`writing`) is kept in ``failed``: every later
    write raises it again, and :meth:`close` neither consolidates nor publishes.

    ``dirty``: something was written in this session (a new store always is).
    An existing store opened for writing is left byte for byte as it was until
    the first write: only then is its consolidated metadata dropped
    (``first_write``), and only a dirty session consolidates (or publishes a zip)
    on close.
    """

    def __init__(
        self,
        *,
        source: str,
        store: Any,
        writable: bool,
        owner: bool,
        zarr_format: int,
        zip_sink: _ZipSink | None = None,
        build: Staged | None = None,
        lock: WriteLock | None = None,
        dirty: bool = True,
    ) -> None:
        self.source = source
        self.dirty = dirty
        self._first_write: Any = None
        self.store = store
        self.writable = writable
        self.owner = owner
        self.zarr_format = zarr_format
        self.zip_sink = zip_sink
        self.build = build
        self.nodes: dict[str, Any] = {}
        #: Checks consolidated metadata against the store's listings, once: when a
        #: group is first listed or a member is missed (see :meth:`check_stale`).
        self.stale_check: Any = None
        self.stale = False
        self._fresh: dict[str, Any] = {}
        self.closed = False
        self.failed: WriteError | None = None
        self._close_lock = threading.Lock()
        self._cleanup = weakref.finalize(self, build.discard) if build is not None else None
        # a root dropped without close() still lets the next writer in
        self.lock = lock
        self._unlock = weakref.finalize(self, lock.release) if lock is not None else None

    def set_first_write(self, action: Any) -> None:
        """Run ``action()`` before the session's first write."""
        self._first_write = action

    def check_open(self) -> None:
        if self.closed:
            raise EngineError(f"{self.source}: the store has been closed")

    def check_write(self, where: str) -> None:
        """Refuse a write: to a closed root (ClosedError), after a failed write (that
        error again), or through a read-only root (ReadOnlyError)."""
        if self.closed:
            raise ClosedError(f"{self.source}: the dump has been closed; cannot write to it")
        if self.failed is not None:
            raise type(self.failed)(
                f"{self.source}: an earlier write failed ({self.failed})",
                path=self.source,
                errno=self.failed.errno,
            )
        if not self.writable:
            raise ReadOnlyError(f"{where}: opened read-only")

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around every write: run ``first_write`` once, and turn a failed write
        (full disk, I/O error) into WriteError, remembered."""
        try:
            if not self.dirty:
                self.dirty = True
                if self._first_write is not None:
                    self._first_write()
            yield
        except SkelstoreError:
            raise
        except Exception as exc:
            err = write_error(self.source, exc)
            if err is None:
                raise
            self.failed = self.failed or err
            raise err from exc

    def check_stale(self) -> bool:
        """True if the consolidated metadata was found stale (checked once, on first
        need: reading members by name costs no listing)."""
        if self.stale_check is not None:
            check, self.stale_check = self.stale_check, None
            self.stale = bool(check())
            if self.stale:
                self.nodes.clear()
        return self.stale

    def fresh_group(self, path: str) -> Any:
        """The group at ``path`` opened without consolidated metadata."""
        grp = self._fresh.get(path)
        if grp is None:
            with _quiet():
                grp = zarr.open_group(self.store, path=path, mode="r", use_consolidated=False)
            self._fresh[path] = grp
        return grp

    def close(self, ok: bool = True, *, finish: bool = True) -> None:
        """Consolidate metadata (writable roots), release the store, publish a zip.

        After a failed write, or without ``finish``, nothing is consolidated or
        published (a zip's build directory is removed); a failure is raised if
        ``ok`` (no other error is on its way out)."""
        with self._close_lock:  # two threads closing: one does the work
            if self.closed or not self.owner:
                return
            self.closed = True
        failure: WriteError | None = self.failed
        if not finish:
            self.dirty = False
        try:
            if self.writable and failure is None and self.dirty:
                try:
                    with _quiet(), self.writing():
                        zarr.consolidate_metadata(self.store, zarr_format=self.zarr_format)
                except WriteError as exc:
                    failure = exc
            with contextlib.suppress(Exception):
                self.store.close()
            if (
                self.zip_sink is not None
                and self.build is not None
                and failure is None
                and self.dirty
            ):
                self.zip_sink.publish(self.build.path)
        finally:
            if self._cleanup is not None:
                self._cleanup()
            if self._unlock is not None:
                self._unlock()  # the lock goes last: nothing is written after it
        if failure is not None and ok:
            raise failure


# ---------------------------------------------------------------- nodes


class _ZarrNode:
    """What Zarr arrays and groups share: a zarr object in a session."""

    _raw: Any
    _s: _Session

    @property
    def path(self) -> str:
        return "/" + self._raw.path

    @property
    def source(self) -> str:
        return self._s.source

    @property
    def raw(self) -> Any:
        return self._raw

    @property
    def attrs(self) -> Attrs:
        where = self.where()
        hidden = frozenset()
        if self._s.zarr_format == 2 and isinstance(self._raw, zarr.Array):
            hidden = frozenset({V2_DIMENSIONS_ATTR})
        return Attrs(
            _ZarrAttrMap(self._raw, hidden, self._s.writing),
            writable=self._s.writable,
            where=where,
            encode=lambda v: _json_safe(v, where),
            guard=lambda: self._s.check_write(where),
        )

    def _check_writable(self) -> None:
        self._s.check_write(self.where())


class ZarrArray(_ZarrNode, Array):
    """A ``zarr.Array`` (format 2 or 3). Any array can grow along its first axis.

    Raises:
        FormatError: on construction, if the array's codecs would decode Python
            objects (pickle and the like) — such arrays are never read.
    """

    def __init__(self, raw: Any, session: _Session) -> None:
        self._raw = raw
        self._s = session
        try:
            filters, serializer, compressors = _array_codecs(raw)
            codecs = [*filters, *([serializer] if serializer is not None else []), *compressors]
            reason = _unsafe_reason([_codec_spec(c)[0] for c in codecs], np.dtype(raw.dtype))
        except _META_ERRORS as exc:
            raise FormatError(f"{self.where()}: unusable array metadata ({exc})") from exc
        if reason:
            raise FormatError(f"{self.where()}: refusing to read this array: {reason}")

    @property
    def shape(self) -> tuple[int, ...]:
        shape = tuple(int(d) for d in self._raw.shape)
        if any(d >= 2**63 for d in shape):  # beyond any index (len() fails on it)
            raise FormatError(f"{self.where()}: impossible shape {shape}")
        return shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._raw.dtype)

    @property
    def chunks(self) -> tuple[int, ...] | None:
        try:
            return tuple(int(c) for c in self._raw.chunks)
        except (NotImplementedError, TypeError, ValueError):  # pragma: no cover
            return None

    @property
    def encoding(self) -> Encoding | None:
        try:
            return _encoding_of(self._raw)
        except _META_ERRORS:  # codec settings skelstore cannot read: a foreign encoding
            return None

    @property
    def growable(self) -> bool:
        return True

    @property
    def shards(self) -> tuple[int, ...] | None:
        try:
            found = getattr(self._raw, "shards", None)
            return tuple(int(c) for c in found) if found else None
        except (NotImplementedError, TypeError, ValueError):  # pragma: no cover
            return None

    @property
    def nbytes_stored(self) -> int | None:
        try:
            return int(self._raw.nbytes_stored())
        except Exception:  # optional information only
            return None

    def check_read(self, selection: Any) -> None:
        """Refuse a large read that the bytes the array stores cannot account for."""
        need = _selection_bytes(self.shape, self.dtype.itemsize, selection)
        if need <= CHECKED_READ_BYTES:
            return
        stored = self.nbytes_stored  # None where the store cannot list (plain HTTP)
        if stored is not None and need > stored * MAX_EXPANSION:
            raise FormatError(
                f"{self.where()}: shape {self.shape} ({self.dtype}) asks for {need} bytes "
                f"but the store holds {stored} bytes for it; refusing to read"
            )

    def read_error(self, exc: Exception) -> SkelstoreError:
        """The typed error for ``exc``, raised by zarr or a codec while reading."""
        if isinstance(exc, SkelstoreError):
            return exc
        if isinstance(exc, OSError):
            return EngineError(f"{self.where()}: cannot read ({type(exc).__name__}: {exc})")
        return FormatError(f"{self.where()}: cannot decode ({type(exc).__name__}: {exc})")

    def __getitem__(self, selection: Any) -> np.ndarray:
        self._s.check_open()
        self.check_read(selection)
        try:
            return np.asarray(self._raw[selection])
        except MemoryError:
            raise
        except Exception as exc:  # codecs raise anything for damaged chunks
            raise self.read_error(exc) from exc

    def _check_values(self, values: Any) -> None:
        """Refuse values this array's scale-offset filter cannot keep (InputError)."""
        if self.dtype.kind == "f":
            enc = self.encoding
            check_lossy(values, enc.scale_digits if enc else None, self.where())

    def __setitem__(self, selection: Any, values: Any) -> None:
        self._check_writable()
        self._check_values(values)
        with self._s.writing():
            self._raw[selection] = values

    def append(self, values: np.ndarray) -> None:
        """Append along the first axis (values are cast to the array's dtype)."""
        self._check_writable()
        values = np.asarray(values)
        self._check_values(values)
        shape = self.shape
        if not shape or values.ndim != len(shape) or values.shape[1:] != shape[1:]:
            raise FormatError(f"{self.where()}: cannot append shape {values.shape} to {shape}")
        if len(values) == 0:
            return
        with self._s.writing():
            self._raw.append(values.astype(self.dtype, copy=False), axis=0)

    def truncate(self, length: int) -> None:
        """Shrink the first axis to ``length``."""
        self._check_writable()
        if not self.shape or not 0 <= length <= self.shape[0]:
            raise FormatError(f"{self.where()}: cannot truncate to {length}")
        with _quiet(), self._s.writing():
            self._raw.resize((length, *self.shape[1:]))


class ZarrGroup(_ZarrNode, Group):
    """A ``zarr.Group``; the root returned by :meth:`ZarrEngine.open` owns its store.

    Children are listed with one concurrent metadata fetch (``members()``), or
    from consolidated metadata when reading a consolidated store.
    """

    engine_name = "zarr"
    default_layout = "packed"

    def __init__(self, raw: Any, session: _Session, *, root: bool = False) -> None:
        self._raw = raw
        self._s = session
        self._root = root

    @property
    def writable(self) -> bool:
        return self._s.writable and not self._s.closed

    @property
    def supports_concurrent_reads(self) -> bool:
        return True

    @property
    def min_chunk_bytes(self) -> int | None:
        """zarr-python decodes each chunk through an async pipeline at ~0.2 ms a
        chunk (measured here: 106 chunks of 25 KB took 19-24 ms to read, HDF5 5 ms,
        one chunk 2 ms), so pose arrays are chunked in >= 1 MiB pieces."""
        return ZARR_MIN_CHUNK_BYTES

    @property
    def format_info(self) -> dict[str, Any]:
        return {"zarr_format": int(self._raw.metadata.zarr_format)}

    # -- listing ---------------------------------------------------------
    def _wrap(self, raw: Any) -> ZarrGroup | ZarrArray:
        if isinstance(raw, zarr.Group):
            return ZarrGroup(raw, self._s)
        return ZarrArray(raw, self._s)

    def _members(self) -> list[tuple[str, Any]]:
        """``(name, zarr object)`` of every child, session objects preferred."""
        self._s.check_open()
        raw = self._s.fresh_group(self._raw.path) if self._s.check_stale() else self._raw
        try:
            with _quiet():
                found = list(raw.members())
        except FileNotFoundError:
            return []
        except _META_ERRORS as exc:
            raise FormatError(f"{self.where()}: cannot list the group ({exc})") from exc
        except RemoteAccessError as exc:  # the server refuses listings (HTTP 401/403)
            raise EngineError(
                f"{self.where()}: cannot list the group ({exc}); a store on a server that "
                "cannot list (plain HTTP) needs consolidated metadata"
            ) from exc
        except (SkelstoreError, Warning):  # warnings only arrive here if made errors
            raise
        except Exception as exc:  # the filesystem's own, e.g. aiohttp's for an HTTP 403
            raise EngineError(
                f"{self.where()}: cannot list the group ({type(exc).__name__}: {exc}); "
                "a store on a server that cannot list (plain HTTP) needs consolidated metadata"
            ) from exc
        base = self._raw.path
        return [(name, self._s.nodes.setdefault(_join(base, name), obj)) for name, obj in found]

    def keys(self) -> list[str]:
        return sorted((name for name, _ in self._members()), key=natural_key)

    def items(self) -> list[tuple[str, Group | Array]]:
        members = sorted(self._members(), key=lambda m: natural_key(m[0]))
        return [(name, self._wrap(obj)) for name, obj in members]

    def _child(self, name: str) -> ZarrGroup | ZarrArray | None:
        self._s.check_open()
        if not name or name in (".", "..") or "/" in name:
            return None
        path = _join(self._raw.path, name)
        obj = self._s.nodes.get(path)
        if obj is None:
            try:
                with _quiet():
                    if self._s.stale:
                        obj = self._s.fresh_group(self._raw.path)[name]
                    else:
                        obj = None
                        if compat.has_consolidated_lookup():
                            obj = compat.consolidated_member(self._raw, name)
                        if obj is None:
                            obj = self._raw[name]
            except (KeyError, FileNotFoundError):
                if not self._s.stale and self._s.check_stale():
                    return self._child(name)  # the consolidated metadata is stale
                return None
            except _META_ERRORS as exc:
                raise FormatError(
                    f"{self.source}: cannot open /{path} as a Zarr node ({exc})"
                ) from exc
            obj = self._s.nodes.setdefault(path, obj)
        return self._wrap(obj)

    # -- writing ---------------------------------------------------------
    def _name_parts(self, name: str) -> list[str]:
        """The components of a relative path for a new node (no empty, ``.`` or
        ``..`` ones: a store key must stay inside its store)."""
        parts = [p for p in name.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise FormatError(f"{self.where()}: invalid name {name!r}")
        return parts

    def _parent_for(self, name: str) -> tuple[ZarrGroup, str]:
        """The group that will hold ``name`` (intermediate groups are created)."""
        parts = self._name_parts(name)
        parent: ZarrGroup = self
        for part in parts[:-1]:
            node = parent.require_group(part)
            assert isinstance(node, ZarrGroup)
            parent = node
        return parent, parts[-1]

    def _exists_error(self, name: str) -> FormatError:
        return FormatError(f"{self.source}:{_join(self.path.rstrip('/'), name)}: already exists")

    def create_group(self, name: str, attrs: dict[str, Any] | None = None) -> ZarrGroup:
        self._check_writable()
        parent, leaf = self._parent_for(name)
        if parent is not self:
            return parent.create_group(leaf, attrs)
        where = f"{self.source}:{_join(self.path.rstrip('/'), leaf)}"
        attributes = (
            {k: _json_safe(normalize_attr(v), where) for k, v in attrs.items()} if attrs else None
        )
        try:
            with _quiet(), self._s.writing():
                raw = self._raw.create_group(leaf, attributes=attributes)
        except (
            zarr.errors.ContainsGroupError,
            zarr.errors.ContainsArrayError,
            zarr.errors.ContainsArrayAndGroupError,
        ) as exc:
            raise self._exists_error(leaf) from exc
        except ValueError as exc:
            raise FormatError(f"{self.where()}: cannot create group {leaf!r} ({exc})") from exc
        self._s.nodes[raw.path] = raw
        return ZarrGroup(raw, self._s)

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
    ) -> ZarrArray:
        """Create an array (see :meth:`Group.create_array`).

        ``shards`` is honoured in Zarr 3 (ignored in Zarr 2, which has no sharding);
        ``dimension_names`` go in the array metadata in Zarr 3 and in the
        ``_ARRAY_DIMENSIONS`` attribute (xarray's convention) in Zarr 2.

        ``engine_options`` are h5py ``create_dataset`` keywords: those that map
        exactly onto an :class:`Encoding` (Blosc zstd + bit-shuffle, ``scaleoffset``)
        override ``encoding`` field by field, ``chunks``/``fillvalue`` are honoured,
        ``maxshape``/``track_times``/``track_order`` ignored, anything else raises
        :class:`~skelstore.errors.EngineError`.
        """
        self._check_writable()
        parent, leaf = self._parent_for(name)
        if parent is not self:
            return parent.create_array(
                leaf,
                data=data,
                shape=shape,
                dtype=dtype,
                chunks=chunks,
                encoding=encoding,
                growable=growable,
                engine_options=engine_options,
                shards=shards,
                dimension_names=dimension_names,
            )
        where = f"{self.source}:{_join(self.path.rstrip('/'), leaf)}"
        if data is not None:
            data = np.asarray(data) if dtype is None else np.asarray(data, dtype=dtype)
            if shape is not None and tuple(shape) != data.shape:
                raise FormatError(f"{where}: shape {tuple(shape)} disagrees with data {data.shape}")
            shape, np_dtype = data.shape, data.dtype
        else:
            if shape is None:
                raise FormatError(f"{where}: give data or shape")
            shape = (
                (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(map(int, shape))
            )
            np_dtype = np.dtype(dtype if dtype is not None else "f4")
        if np_dtype.kind == "O":
            raise FormatError(f"{where}: object arrays cannot be stored")

        filters, compressors, extra = _new_array_codecs(
            encoding, engine_options, np_dtype, self._s.zarr_format, where
        )
        if data is not None:
            digits = extra.get("scale_digits", encoding.scale_digits if encoding else None)
            check_lossy(data, digits, where)

        if chunks is None:
            chunks = extra.get("chunks")
        if isinstance(chunks, (int, np.integer)):
            chunks = (int(chunks),)
        if chunks is not None:
            chunk_shape: Any = tuple(max(1, int(c)) for c in chunks)
            if len(chunk_shape) != len(shape):
                raise FormatError(f"{where}: chunks {chunk_shape} do not fit shape {shape}")
        else:
            chunk_shape = _default_chunks(shape, np_dtype, growable)

        names = tuple(dimension_names) if dimension_names is not None else (
            _new_dimension_names(_join(self._raw.path, leaf), len(shape))
        )
        dims: dict[str, Any] = {"dimension_names": names}
        if self._s.zarr_format != 3:  # zarr-python refuses dimension_names for format 2
            shards = None
            dims = {"attributes": {V2_DIMENSIONS_ATTR: list(names)}}  # xarray's attribute
        elif shards is not None:
            shards = tuple(int(x) for x in shards)
            if not isinstance(chunk_shape, tuple) or len(shards) != len(chunk_shape) or any(
                sh % c for sh, c in zip(shards, chunk_shape, strict=True)
            ):
                raise FormatError(f"{where}: shards {shards} are not a multiple of {chunk_shape}")
            if shards == chunk_shape:
                shards = None
        else:
            shards = _shard_shape(shape, chunk_shape, np_dtype, growable)
        try:
            with _quiet(), self._s.writing():
                raw = self._raw.create_array(
                    leaf,
                    shape=shape,
                    dtype=np_dtype,
                    chunks=chunk_shape,
                    shards=shards,
                    filters=filters,
                    compressors=compressors,
                    fill_value=extra.get("fill_value", 0),
                    **dims,
                )
        except (
            zarr.errors.ContainsGroupError,
            zarr.errors.ContainsArrayError,
            zarr.errors.ContainsArrayAndGroupError,
        ) as exc:
            raise self._exists_error(leaf) from exc
        except (TypeError, ValueError) as exc:
            raise EngineError(f"{where}: zarr refused the settings ({exc})") from exc
        self._s.nodes[raw.path] = raw
        if data is not None and data.size:
            with self._s.writing():
                raw[...] = data
        return ZarrArray(raw, self._s)

    def write_many(self, nodes: Sequence[GroupSpec | ArraySpec]) -> None:
        """Write the batch in one concurrent round of store writes (Zarr v3).

        zarr-python spends milliseconds of CPU per node it creates (existence
        checks, parent documents, validation) and one event-loop round trip per
        call, which made writing a shot's few dozen nodes slower than skelshop's
        HDF5 writer. Here each node's metadata document is made from a cached
        template built by zarr itself (:func:`_array_template`), arrays of at most
        :data:`SHARD_BYTES` are stored as a single chunk encoded by zarr's own codec
        pipeline, and every document and chunk is written in one ``gather``. Only
        the batch's top-level names are checked for existing nodes; their children
        are new by construction. Larger arrays, Zarr v2 and batches whose parents
        are not in the batch are created one by one (see :meth:`Group.write_many`),
        as is every batch where zarr lacks the internals the batch path uses
        (:func:`compat.has_batch_writes`).
        """
        self._check_writable()
        check_specs(self.where(), nodes)
        plan = _BatchPlan.make(self, nodes)
        if plan is None:
            super().write_many(nodes)
            return
        for name in plan.top_level:
            if self._child(name) is not None:
                raise self._exists_error(name)
        store = self._raw.store_path.store
        base = self._raw.path
        proto = zarr.buffer.default_buffer_prototype()
        documents = [(_join(base, k), proto.buffer.from_bytes(d)) for k, d in plan.documents]
        # arrays are made before anything is written, for the same reason
        arrays = [
            (zarr.AsyncArray(metadata=meta, store_path=StorePath(store, _join(base, path))), data)
            for path, meta, data in plan.chunks
        ]

        async def write_all() -> None:
            jobs = [store.set(key, doc) for key, doc in documents]
            jobs += [arr.setitem(..., data) for arr, data in arrays]
            await asyncio.gather(*jobs)

        try:
            with _quiet(), self._s.writing():
                compat.run(write_all())
        except SkelstoreError:
            raise
        except Exception as exc:
            raise EngineError(f"{self.where()}: writing a batch of nodes failed ({exc})") from exc
        for spec in plan.one_by_one:  # their parents exist now
            self.create_array(
                spec.path,
                data=spec.data,
                chunks=spec.chunks,
                encoding=spec.encoding,
                engine_options=spec.engine_options,
            )

    def append_many(self, items: Sequence[tuple[Array, np.ndarray]]) -> None:
        """Append to every array concurrently in one event-loop call (zarr's async
        ``append``: resize, then write); arrays of other engines one by one."""
        self._check_writable()
        batch = []
        for arr, values in items:
            values = np.asarray(values)
            async_arr = None
            if isinstance(arr, ZarrArray) and compat.has_sync():
                arr._check_values(values)
                async_arr = arr.raw.async_array
            shape = arr.shape
            if not shape or values.ndim != len(shape) or values.shape[1:] != shape[1:]:
                raise FormatError(f"{arr.where()}: cannot append shape {values.shape} to {shape}")
            if async_arr is None:
                arr.append(values)
            elif len(values):
                batch.append((async_arr, values.astype(arr.dtype, copy=False)))
        if not batch:
            return

        async def append_all() -> None:
            await asyncio.gather(*(a.append(v, axis=0) for a, v in batch))

        try:
            with _quiet(), self._s.writing():
                compat.run(append_all())
        except SkelstoreError:
            raise
        except Exception as exc:
            raise EngineError(f"{self.where()}: appending to arrays failed ({exc})") from exc

    def set_many(self, items: Sequence[tuple[Array, int, np.ndarray]]) -> None:
        """Write every slice concurrently in one event-loop call (zarr's async
        ``setitem``); arrays of other engines one by one."""
        self._check_writable()
        batch = []
        for arr, start, values in items:
            values = np.asarray(values)
            async_arr = None
            if isinstance(arr, ZarrArray) and compat.has_sync():
                arr._check_values(values)
                async_arr = arr.raw.async_array
            if async_arr is None:
                arr[start : start + len(values)] = values
            elif len(values):
                sel = slice(start, start + len(values))
                batch.append((async_arr, sel, values.astype(arr.dtype, copy=False)))
        if not batch:
            return

        async def set_all() -> None:
            await asyncio.gather(*(a.setitem(sel, v) for a, sel, v in batch))

        try:
            with _quiet(), self._s.writing():
                compat.run(set_all())
        except SkelstoreError:
            raise
        except Exception as exc:
            raise EngineError(f"{self.where()}: writing to arrays failed ({exc})") from exc

    # -- bulk reading ----------------------------------------------------
    def read_many(self, requests: Sequence[Array | tuple[Array, Any]]) -> list[np.ndarray]:
        """Read every request concurrently in one event-loop call (zarr's async API).

        Requests that are not Zarr arrays, or whose selection is not a basic one
        (ints, slices, ``...``), are read one by one.
        """
        self._s.check_open()
        pairs = [req if isinstance(req, tuple) else (req, ...) for req in requests]
        out: list[Any] = [None] * len(pairs)
        batch: list[tuple[int, Any, Any]] = []
        for i, (arr, sel) in enumerate(pairs):
            async_arr = None
            if isinstance(arr, ZarrArray) and _is_basic(sel) and compat.has_sync():
                async_arr = arr.raw.async_array
            if async_arr is None:
                out[i] = arr[sel]
            else:
                arr.check_read(sel)
                batch.append((i, async_arr, sel))
        if batch:

            async def gather() -> list[Any]:
                return await asyncio.gather(*(a.getitem(sel) for _, a, sel in batch))

            try:
                results = compat.run(gather())
            except (MemoryError, SkelstoreError):
                raise
            except Exception:  # read one by one: the failing array raises, named
                for i, _, _ in batch:
                    arr, sel = pairs[i]
                    out[i] = arr[sel]
                return out
            for (i, _, _), result in zip(batch, results, strict=True):
                out[i] = np.asarray(result)
        return out

    # -- lifetime --------------------------------------------------------
    def flush(self) -> None:
        """Nothing to do: writes reach the store at once. (A ``.zarr.zip`` is only
        written by :meth:`close`; metadata is consolidated there too.)"""
        self._s.check_open()

    def close(self) -> None:
        """For the root opened by :meth:`ZarrEngine.open`: consolidate metadata if
        writable, release the store and write a ``.zarr.zip``. Otherwise nothing.
        Safe to call twice.

        Raises:
            WriteError: a write failed (now, or earlier in the session) and no
                other exception is leaving the ``with`` block.
        """
        if not self._root:
            return
        ok = self.__dict__.get("_close_ok", True)
        try:
            if self._s.closed:
                pass
            elif self._s.failed is None:
                self._run_close_hooks()
            else:  # nothing more can be written
                self.__dict__.pop("_close_hooks", None)
        except WriteError:
            pass  # remembered by the session, raised by its close
        finally:
            self._s.close(ok)

    def abort(self) -> None:
        """Release the store without consolidating or publishing anything."""
        if self._root:
            self.__dict__.pop("_close_hooks", None)
            self._s.close(False, finish=False)

    @property
    def owns_file(self) -> bool:
        return bool(self._root and self._s.owner and not self._s.closed)

    def delete(self, name: str) -> None:
        """Delete child ``name`` and everything under it."""
        self._check_writable()
        if self._child(name) is None:
            raise NotFoundError(f"{self.where()}: no member {name!r} to delete")
        with _quiet(), self._s.writing():
            del self._raw[name]
        prefix = _join(self._raw.path, name)
        for key in [k for k in self._s.nodes if k == prefix or k.startswith(prefix + "/")]:
            del self._s.nodes[key]


def _is_basic(selection: Any) -> bool:
    """True for selections zarr's async ``getitem`` takes: ints, slices, ``...``."""
    items = selection if isinstance(selection, tuple) else (selection,)
    return all(
        s is Ellipsis
        or isinstance(s, slice)
        or (isinstance(s, (int, np.integer)) and not isinstance(s, bool))
        for s in items
    )


# ---------------------------------------------------------------- engine


def _dir_state(members: set[str]) -> str:
    """State of an existing directory from the names directly inside it."""
    if not members:
        return "empty"
    return "zarr" if members & _MARKERS else "other"


def _local_state(path: str) -> str:
    """``missing``, ``file``, ``zip`` (a file with zip magic), ``empty``, ``zarr``, ``other``."""
    if os.path.isfile(path):
        try:
            with open(path, "rb") as f:
                head = f.read(4)
        except OSError:
            return "file"
        return "zip" if head == _ZIP_MAGIC else "file"
    if not os.path.isdir(path):
        return "missing" if not os.path.lexists(path) else "file"
    return _dir_state(set(os.listdir(path)))


def _remote_state(url: str, storage_options: dict[str, Any] | None) -> str:
    """Like :func:`_local_state` for an fsspec URL (no zip detection)."""
    fs, path = to_fs(url, storage_options)

    def lookup() -> str | set[str]:  # bounded in time and retried, as reads are
        if _rangefile.fs_retried(fs, "isfile", path, what=url, action="look up"):
            return "file"
        found = _rangefile.fs_retried(fs, "ls", path, detail=False, what=url, action="list")
        return {p.rstrip("/").rsplit("/", 1)[-1] for p in found}

    try:
        found = confirmed(fs, path, lookup)
    except (FileNotFoundError, NotFoundError):
        return "missing"
    except PermissionError as exc:
        raise EngineError(f"{url}: access denied ({exc})") from exc
    return found if isinstance(found, str) else _dir_state(found)


def _is_zip_url(url: str) -> bool:
    """True for ``zip::...`` and names ending in ``.zip`` (also ``memory://x.zarr.zip``,
    whose name is a URL host)."""
    chained = is_chained(url)
    last = (url.split("::")[-1] if chained else url).split("?", 1)[0].rstrip("/").lower()
    return (chained and url.startswith("zip::")) or last.endswith(".zip")


class ZarrEngine(Engine):
    """Entry point of the Zarr engine (directory stores, fsspec URLs, ``.zarr.zip``)."""

    name = "zarr"
    suffixes = (".zarr.zip", ".zarr")
    install_hint = "pip install 'zarr>=3.1.3' numcodecs"

    def sniff(self, probe: Probe) -> bool:
        if probe.members & {"zarr.json", ".zgroup"}:
            return True
        head = probe.head or b""
        return head.startswith(_ZIP_MAGIC) and probe.suffix.endswith(".zip")

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, zarr.Group)

    def wrap(self, obj: Any) -> ZarrGroup:
        """Adapt an open ``zarr.Group``; its store stays the caller's to close."""
        store = obj.store
        session = _Session(
            source=str(store),
            store=store,
            writable=not store.read_only,
            owner=False,
            zarr_format=int(obj.metadata.zarr_format),
        )
        session.nodes[obj.path] = obj
        return ZarrGroup(obj, session)

    def open(
        self,
        url: str,
        mode: str = "r",
        *,
        storage_options: dict[str, Any] | None = None,
        zarr_format: int | None = None,
        allow_external: bool = False,
    ) -> ZarrGroup:
        """Open ``url`` in ``mode`` (h5py's meanings) and return its root group.

        ``allow_external`` has no effect: a Zarr store cannot point outside itself
        (path-traversing keys are refused either way).

        ``zarr_format`` (2 or 3, default 3) applies when a store is created; an
        existing store keeps its own format.

        Raises:
            NotFoundError: ``r``/``r+`` on a missing target.
            EngineError: ``w-``/``x`` on an existing target; ``w`` on something that
                is not a Zarr store (it is never deleted); access denied.
            FormatError: the target exists but is not a Zarr group.
        """
        if mode not in MODES:
            raise EngineError(f"{url}: invalid mode {mode!r}; use one of {', '.join(MODES)}")
        if zarr_format not in (None, 2, 3):
            raise EngineError(f"{url}: zarr_format must be 2 or 3, not {zarr_format!r}")
        if _is_zip_url(url):
            return self._open_zip(url, mode, storage_options, zarr_format)
        if is_local(url):
            path = local_path(url)
            state = _local_state(path)
            if state == "zip" and mode in ("r", "r+", "a"):
                return self._open_zip(url, mode, storage_options, zarr_format)
            if mode == "r":
                _check_state(url, mode, state)
            # writers take the lock before judging the target: another writer may be
            # half-way through creating it (a directory without zarr.json yet)
            lock = WriteLock.acquire(url, path) if mode != "r" else None
            try:
                if lock is not None:  # as it is now that nobody else writes
                    state = _local_state(path)
                    _check_state(url, mode, state)
                store = _ConfinedLocalStore(path, read_only=mode == "r", url=url)
                return _open_root(
                    url, mode, store, zarr_format, state, lambda: _local_state(path), lock=lock
                )
            except BaseException:
                if lock is not None:
                    lock.release()
                raise

        def state_of() -> str:
            return _remote_state(url, storage_options)

        state = "unknown" if mode == "r" else state_of()
        _check_state(url, mode, state)
        try:
            store = zarr.storage.FsspecStore.from_url(
                url, storage_options=with_defaults(url, storage_options), read_only=mode == "r"
            )
        except (ImportError, ValueError) as exc:
            to_fs(url, storage_options)  # raises MissingDependencyError / EngineError if that is it
            raise EngineError(f"{url}: cannot open ({exc})") from exc
        return _open_root(url, mode, _RetryingStore(store, url), zarr_format, state, state_of)

    def _open_zip(
        self,
        url: str,
        mode: str,
        storage_options: dict[str, Any] | None,
        zarr_format: int | None,
    ) -> ZarrGroup:
        inner = url.removeprefix("zip::") if is_chained(url) else url
        sink = _ZipSink(url, inner, storage_options)
        exists = sink.exists()
        if exists and not sink.is_file():
            if mode in ("r", "r+", "a"):
                raise FormatError(f"{url}: is a directory, not a .zarr.zip file")
            raise EngineError(f"{url}: is a directory, not a .zarr.zip file; not replacing it")
        if mode in ("r", "r+") and not exists:
            raise NotFoundError(f"{url}: no such file or object")
        if mode in ("w-", "x") and exists:
            raise EngineError(f"{url}: already exists (mode {mode!r})")

        if mode == "r":
            if sink.local:
                store: Any = zarr.storage.ZipStore(sink.dest, mode="r")
            else:
                opts = storage_options or {}
                inner_proto = protocol(inner)
                if opts and inner_proto not in opts:
                    opts = {inner_proto: opts}
                store = _RetryingStore(
                    zarr.storage.FsspecStore.from_url(
                        "zip::" + inner, storage_options=opts, read_only=True
                    ),
                    url,
                )
            return _open_root(url, "r", store, zarr_format, "unknown", lambda: "file")

        # one writer at a time for a local zip (the zip itself is replaced whole)
        lock = WriteLock.acquire(url, sink.dest) if sink.local else None
        try:
            exists = sink.exists()
            if mode in ("w-", "x") and exists:
                raise EngineError(f"{url}: already exists (mode {mode!r})")
            build = sink.build_dir()
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        try:
            extend = exists and mode in ("r+", "a")
            if extend:
                sink.extract_to(build.path)
            store = zarr.storage.LocalStore(build.path)
            root = _open_root(
                url,
                "r+" if extend else "w-",
                store,
                zarr_format,
                "zarr" if extend else "empty",
                lambda: "file",
                zip_sink=sink,
                build=build,
                lock=lock,
            )
        except BaseException:
            build.discard()
            if lock is not None:
                lock.release()
            raise
        return root


def _check_state(url: str, mode: str, state: str) -> None:
    """Refuse what ``mode`` must not do to a target in ``state`` (see ZarrEngine.open)."""
    if state == "unknown":
        return
    if mode in ("r", "r+"):
        if state == "missing":
            raise NotFoundError(f"{url}: no such file, directory or object")
        if state != "zarr":
            raise FormatError(f"{url}: not a Zarr store (no zarr.json or .zgroup)")
    elif mode in ("w-", "x"):
        if state not in ("missing", "empty"):
            raise EngineError(f"{url}: already exists (mode {mode!r})")
    elif mode == "w":
        if state in ("file", "zip", "other"):
            raise EngineError(
                f"{url}: exists and is not a Zarr store; refusing to delete it (mode 'w')"
            )
    elif mode == "a" and state in ("file", "zip", "other"):
        raise FormatError(f"{url}: not a Zarr store (no zarr.json or .zgroup)")


_METADATA_KEYS = frozenset({"zarr.json", ".zgroup", ".zattrs", ".zarray", ".zmetadata"})


def _consolidated_is_stale(raw: Any) -> bool:
    """True if ``raw``'s consolidated metadata disagrees with the store's listing.

    Checks the members of the root and of each group directly under it (one
    concurrent LIST each): a store that another tool changed without
    re-consolidating (an added or removed shot or top-level group) is caught. A
    store that cannot be listed (plain HTTP) is trusted.
    """
    cm = raw.metadata.consolidated_metadata
    if cm is None:
        return False
    levels: list[tuple[str, set[str]]] = [("", set(cm.metadata))]
    for name, meta in cm.metadata.items():
        if getattr(meta, "consolidated_metadata", None) is not None:  # a group's
            levels.append((name, set(meta.consolidated_metadata.metadata)))

    async def listing(prefix: str) -> set[str]:
        return {e async for e in raw.store.list_dir(prefix) if e not in _METADATA_KEYS}

    async def all_listings() -> list[set[str]]:
        return list(await asyncio.gather(*(listing(p) for p, _ in levels)))

    if not compat.has_sync():  # pragma: no cover - zarr without its sync helper
        return False
    try:
        found = compat.run(all_listings())
    except Exception:  # cannot list (e.g. HTTP without an index): trust the document
        return False
    return any(f != expected for f, (_, expected) in zip(found, levels, strict=True))


def _open_root(
    url: str,
    mode: str,
    store: Any,
    zarr_format: int | None,
    state: str,
    state_of: Any,
    *,
    zip_sink: _ZipSink | None = None,
    build: Staged | None = None,
    lock: WriteLock | None = None,
) -> ZarrGroup:
    """Open or create the root group in ``store`` and wrap it in a session (which
    releases ``lock``, if any, when closed)."""
    existing = state == "zarr" or mode in ("r", "r+")
    zmode = {"x": "w-", "a": "r+" if state == "zarr" else "w-"}.get(mode, mode)
    try:
        with _quiet():
            raw = None
            if mode == "r":  # format 3 first: one request, where zarr asks for both formats
                with contextlib.suppress(FileNotFoundError):
                    raw = zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=None)
            if raw is None:
                raw = zarr.open_group(
                    store,
                    mode=zmode,
                    zarr_format=None if existing else (zarr_format or 3),
                    use_consolidated=None if mode == "r" else False,
                )
    except SkelstoreError:
        raise
    except (
        FileExistsError,
        zarr.errors.ContainsGroupError,
        zarr.errors.ContainsArrayError,
        zarr.errors.ContainsArrayAndGroupError,
    ) as exc:
        if zmode == "w-":
            raise EngineError(f"{url}: already exists (mode {mode!r})") from exc
        raise FormatError(f"{url}: holds a Zarr array, not a group") from exc
    except PermissionError as exc:
        raise EngineError(f"{url}: access denied ({exc})") from exc
    except (FileNotFoundError, NotADirectoryError, zipfile.BadZipFile, *_META_ERRORS) as exc:
        if state_of() == "missing":
            raise NotFoundError(f"{url}: no such file, directory or object") from None
        raise FormatError(f"{url}: not a Zarr store ({exc})") from exc
    except OSError as exc:  # a damaged zip makes zipfile seek to impossible offsets
        if "zip" not in url.lower():
            raise EngineError(f"{url}: cannot read the store ({exc})") from exc
        raise FormatError(f"{url}: not a readable .zarr.zip ({exc})") from exc
    # A zip is written in one go and not changed in place, and fsspec's zip
    # filesystem lists nested prefixes wrongly: its document is trusted as is.
    is_zip = _is_zip_url(url)
    writable = mode != "r"
    # an existing store is left as it is until the first write (a refused or idle
    # writer changes nothing); a new or emptied one has been written already
    untouched = existing and mode in ("r+", "a")
    session = _Session(
        source=url,
        store=raw.store,
        writable=writable,
        owner=True,
        zarr_format=int(raw.metadata.zarr_format),
        zip_sink=zip_sink,
        build=build,
        lock=lock,
        dirty=not untouched,
    )
    session.nodes[raw.path] = raw
    if mode == "r" and not is_zip and raw.metadata.consolidated_metadata is not None:
        # written by another tool since? checked when first listing or missing a member
        session.stale_check = lambda: _consolidated_is_stale(raw)
    if writable and untouched and zip_sink is None:
        session.set_first_write(lambda: _drop_consolidated(raw, session))
    return ZarrGroup(raw, session, root=True)


def _drop_consolidated(raw: Any, session: _Session) -> None:
    """Remove consolidated metadata left by an earlier session before this one
    first writes, so a crash during it can never leave readers a stale listing (it
    is rewritten on close)."""
    with _quiet():
        raw.update_attributes({})  # rewrites zarr.json without consolidated_metadata
    if session.zarr_format == 2 and compat.has_sync():
        with contextlib.suppress(Exception):
            compat.run(session.store.delete(_join(raw.path, ".zmetadata")))
