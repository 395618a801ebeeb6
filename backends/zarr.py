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
for writing holds an exclusive ``flock`` on a lock file beside it
(``.NAME.skelstore-write.lock`` in the same directory, holding the writer's pid
and host) until the root is closed; a second writer, in another process or in
this one, gets :class:`~skelstore.errors.LockedError` naming the path and the
holder. The OS drops the lock if the writer dies. The file sits beside the store,
not inside it, because zarr's mode ``w`` empties the store directory and ``w-``
refuses a non-empty one. Object stores have no such lock (see docs/remote.md).

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
import shutil
import socket
import tempfile
import threading
import time
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
import zarr.errors
import zarr.storage
from zarr.codecs import BloscCodec
from zarr.codecs.numcodecs import FixedScaleOffset

from skelstore import rangefile as _rangefile
from skelstore.compression import Encoding
from skelstore.errors import (
    EngineError,
    FormatError,
    LockedError,
    NotFoundError,
    ReadOnlyError,
    RemoteAccessError,
    SkelstoreError,
)
from skelstore.rangefile import RetryPolicy, retry_async
from skelstore.storage import (
    MODES,
    Array,
    ArraySpec,
    Attrs,
    Engine,
    Group,
    GroupSpec,
    Probe,
    natural_key,
    normalize_attr,
)
from skelstore.urls import is_local, local_path, protocol, to_fs, with_defaults

try:  # semi-private; present in zarr 3.1.3 .. 3.3. read_many falls back without it.
    from zarr.core.sync import sync as _zarr_sync
except ImportError:  # pragma: no cover - depends on the zarr version
    _zarr_sync = None

try:  # for write_many's batch path (zarr >= 3.0 keeps these names); else one by one
    from zarr.core.array import AsyncArray, init_array
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.group import GroupMetadata
    from zarr.core.metadata.v3 import ArrayV3Metadata
    from zarr.storage import MemoryStore, StorePath
except ImportError:  # pragma: no cover - depends on the zarr version
    init_array = None

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: exclusive creation instead
    fcntl = None  # type: ignore[assignment]

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


def _consolidated_member(group: zarr.Group, name: str) -> zarr.Array | zarr.Group | None:
    """The member ``name`` of a group opened with consolidated metadata, built from
    that metadata, or ``None`` when the group has none (ask the store).

    zarr-python's ``Group[name]`` does the same lookup (``_getitem_consolidated``,
    no I/O) but inside a round trip through its event loop: ~0.3 ms per member here,
    a third of reading a 30k-frame Zarr dump. Raises KeyError if the consolidated
    metadata has no such member (zarr-python trusts it the same way). If zarr's
    internals differ, returns ``None`` and the public path is used.
    """
    agroup = getattr(group, "_async_group", None)
    try:
        if agroup is None or agroup.metadata.consolidated_metadata is None:
            return None
        node = agroup._getitem_consolidated(agroup.store_path / name, name, prefix=agroup.name)
    except (AttributeError, TypeError):
        return None
    if isinstance(node, zarr.AsyncGroup):
        return zarr.Group(node)
    return zarr.Array(node)


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


class _ZarrAttrMap(MutableMapping[str, Any]):
    """A zarr node's attributes, written with one metadata write per update."""

    def __init__(self, node: Any) -> None:
        self._node = node

    def _attrs(self) -> dict[str, Any]:
        return self._node.metadata.attributes

    def __getitem__(self, key: str) -> Any:
        return self._attrs()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._node.update_attributes({key: value})

    def __delitem__(self, key: str) -> None:
        attrs = dict(self._attrs())
        del attrs[key]
        self._node.attrs.put(attrs)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._attrs()))

    def __len__(self) -> int:
        return len(self._attrs())

    def update(self, other: Any = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        values = {**dict(other), **kwargs}
        if values:
            self._node.update_attributes(values)


# ---------------------------------------------------------------- sessions


class _ZipSink:
    """Where a zip being built locally goes on close: a local path or a remote object."""

    def __init__(self, url: str, dest: str, fs: Any = None) -> None:
        self.url = url
        self.dest = dest  # local path, or the path inside ``fs``
        self.fs = fs  # None for local destinations

    @property
    def local(self) -> bool:
        return self.fs is None

    def exists(self) -> bool:
        return os.path.lexists(self.dest) if self.local else bool(self.fs.exists(self.dest))

    def is_file(self) -> bool:
        return os.path.isfile(self.dest) if self.local else bool(self.fs.isfile(self.dest))

    def build_dir(self) -> str:
        """A fresh local directory to build the store in (beside a local destination)."""
        if self.local:
            parent = os.path.dirname(os.path.abspath(self.dest))
            os.makedirs(parent, exist_ok=True)
            base = os.path.basename(self.dest)
            return tempfile.mkdtemp(prefix=f".{base}.", suffix=".build", dir=parent)
        return tempfile.mkdtemp(prefix="skelstore-zarrzip-")

    def extract_to(self, directory: str) -> None:
        """Unpack the existing zip into ``directory`` (later duplicates win, as in reading)."""
        try:
            if self.local:
                with zipfile.ZipFile(self.dest) as zf:
                    zf.extractall(directory)
            else:
                with self.fs.open(self.dest, "rb") as f, zipfile.ZipFile(f) as zf:
                    zf.extractall(directory)
        except zipfile.BadZipFile as exc:
            raise FormatError(f"{self.url}: not a zip file ({exc})") from exc

    def publish(self, directory: str) -> None:
        """Write ``directory`` as the zip in one go, then move or upload it into place."""
        if self.local:
            parent = os.path.dirname(os.path.abspath(self.dest))
            tmp = os.path.join(parent, f".{os.path.basename(self.dest)}.{secrets.token_hex(6)}.tmp")
        else:
            tmp = os.path.join(os.path.dirname(directory), f"{secrets.token_hex(6)}.zip")
        try:
            with open(tmp, "xb") as f:
                _write_zip(directory, f)
                f.flush()
                os.fsync(f.fileno())
            if self.local:
                os.replace(tmp, self.dest)
            else:
                self.fs.put_file(tmp, self.dest)
                if hasattr(self.fs, "invalidate_cache"):
                    self.fs.invalidate_cache(self.dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)


def _write_zip(directory: str, fileobj: Any) -> None:
    """Store every file under ``directory`` in a zip (uncompressed: chunks already are)."""
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for fname in sorted(files):
                full = os.path.join(root, fname)
                arcname = os.path.relpath(full, directory).replace(os.sep, "/")
                zf.write(full, arcname)


# ---------------------------------------------------------------- one writer at a time

#: Suffix of the lock file a writer holds beside a local store: ``.NAME`` + this.
LOCK_SUFFIX = ".skelstore-write.lock"


def lock_path_for(path: str) -> str:
    """The lock file of the local store or zip at ``path`` (symlinks resolved)."""
    real = os.path.realpath(path)
    return os.path.join(os.path.dirname(real), f".{os.path.basename(real)}{LOCK_SUFFIX}")


def _holder_text() -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n"


def _describe_holder(text: str) -> str:
    """The holder recorded in a lock file, marked when it is this very process."""
    text = text.strip()
    if not text:
        return "another writer"
    me = f"pid {os.getpid()} on {socket.gethostname()} "
    return f"{text} (this process)" if text.startswith(me) else text


class _WriteLock:
    """An exclusive, non-blocking ``flock`` on :func:`lock_path_for` ``(path)``.

    ``flock`` locks belong to an open file description, so a second open in the
    same process conflicts like another process does; the OS releases the lock
    when the holder exits or dies. The file records the holder (pid, host, time)
    for the error message, and is removed on :meth:`release` (while still held;
    a contender that locked the removed file notices and tries again).
    """

    def __init__(self, fd: int, lock_path: str) -> None:
        self._fd: int | None = fd
        self.lock_path = lock_path

    @classmethod
    def acquire(cls, url: str, path: str) -> _WriteLock | None:
        """Take the lock of the store at ``path``, or raise LockedError naming the
        holder. ``None`` if no lock file can be made there (a read-only directory):
        then writing goes ahead unlocked, as before."""
        lock_path = lock_path_for(path)
        with contextlib.suppress(OSError):  # the store's parents are made by zarr anyway
            os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        for _ in range(20):
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
                             | (0 if fcntl is not None else os.O_EXCL), 0o644)
            except FileExistsError:  # pragma: no cover - non-POSIX fallback
                cls._refuse(url, path, lock_path, None)
            except OSError:  # e.g. read-only parent directory
                return None
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    cls._refuse(url, path, lock_path, fd)
                except OSError:  # no flock on this filesystem: go ahead unlocked
                    os.close(fd)
                    return None
                # the holder may have released (and removed) the file between our
                # open and flock: then the lock we got is on a dead file
                try:
                    current = os.stat(lock_path)
                except FileNotFoundError:
                    os.close(fd)
                    continue
                mine = os.fstat(fd)
                if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
                    os.close(fd)
                    continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_text().encode(), 0)
            return cls(fd, lock_path)
        raise LockedError(f"{url}: could not take the write lock {lock_path} (contended)",
                          path=path)

    @staticmethod
    def _refuse(url: str, path: str, lock_path: str, fd: int | None) -> None:
        text = ""
        try:
            if fd is None:
                with open(lock_path, encoding="utf-8", errors="replace") as f:
                    text = f.read(400)
            else:
                text = os.pread(fd, 400, 0).decode("utf-8", "replace")
        except OSError:
            pass
        finally:
            if fd is not None:
                os.close(fd)
        holder = _describe_holder(text)
        raise LockedError(
            f"{url}: already open for writing by {holder} (lock file {lock_path}); "
            "close that root first",
            path=path,
            holder=holder,
        )

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                if os.path.samestat(os.stat(self.lock_path), os.fstat(fd)):
                    os.unlink(self.lock_path)
        finally:
            os.close(fd)


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

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        async def collect() -> list[str]:
            return [k async for k in self._store.list_dir(prefix)]

        async def entries() -> AsyncIterator[str]:
            for key in await retry_async(collect, self._where(prefix), self.policy):
                yield key

        return entries()


# ---------------------------------------------------------------- batch writes

#: Whether write_many may use the batch path (turned off for good if zarr's
#: internals it relies on have changed).
_BATCH_WRITES = init_array is not None

#: Array templates for write_many: (dtype, trailing shape, codecs, fill) -> v3 document.
_TEMPLATES: dict[tuple[Any, ...], dict[str, Any]] = {}
_TEMPLATES_LOCK = threading.Lock()


def _array_template(
    dtype: np.dtype, trailing: tuple[int, ...], filters: Any, compressors: Any, fill: Any
) -> dict[str, Any]:
    """The v3 metadata document zarr itself writes for an unsharded array of this
    kind (made once, in memory, by ``init_array``); shape and chunks are filled in
    per array."""
    key = (dtype.str, trailing, repr(filters), repr(compressors), repr(fill))
    with _TEMPLATES_LOCK:
        doc = _TEMPLATES.get(key)
    if doc is None:

        async def make() -> dict[str, Any]:
            arr = await init_array(
                store_path=StorePath(MemoryStore(), "t"),
                shape=(1, *trailing),
                dtype=dtype,
                chunks=(1, *(max(1, d) for d in trailing)),
                shards=None,
                filters=filters,
                compressors=compressors,
                fill_value=fill,
                zarr_format=3,
            )
            return arr.metadata.to_dict()

        with _quiet():
            doc = _zarr_sync(make())
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
        if group._s.zarr_format != 3 or init_array is None or _zarr_sync is None or not nodes:
            return None
        proto = default_buffer_prototype()
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
                doc = GroupMetadata(attributes=attrs, zarr_format=3).to_buffer_dict(proto)
                plan.documents.append((f"{path}/zarr.json", doc["zarr.json"].to_bytes()))
                groups.add(path)
                continue
            data = np.asarray(node.data)
            if data.dtype.kind == "O":
                raise FormatError(f"{where}: object arrays cannot be stored")
            if data.nbytes > SHARD_BYTES or data.ndim == 0:
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
            doc["chunk_grid"] = {
                "name": "regular",
                "configuration": {"chunk_shape": [max(1, d) for d in data.shape]},
            }
            # the document as zarr writes it (json.dumps of to_dict()), without a
            # second round trip through the metadata class
            plan.documents.append((f"{path}/zarr.json", json.dumps(doc, indent=2).encode()))
            if data.size:
                with _quiet():  # its errors fall back to zarr's public API (write_many)
                    meta = ArrayV3Metadata.from_dict(doc)
                plan.chunks.append((path, meta, data))
        return plan


class _Session:
    """State shared by every node of one opened (or wrapped) hierarchy.

    ``nodes`` maps zarr paths to the one zarr object used for each node during the
    session, so that attributes and shapes changed through one handle are seen
    through every other (zarr objects hold their metadata in memory).
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
        build_dir: str | None = None,
        lock: _WriteLock | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.writable = writable
        self.owner = owner
        self.zarr_format = zarr_format
        self.zip_sink = zip_sink
        self.build_dir = build_dir
        self.nodes: dict[str, Any] = {}
        #: Checks consolidated metadata against the store's listings, once: when a
        #: group is first listed or a member is missed (see :meth:`check_stale`).
        self.stale_check: Any = None
        self.stale = False
        self._fresh: dict[str, Any] = {}
        self.closed = False
        self._close_lock = threading.Lock()
        self._cleanup = (
            weakref.finalize(self, shutil.rmtree, build_dir, True) if build_dir else None
        )
        # a root dropped without close() still lets the next writer in
        self.lock = lock
        self._unlock = weakref.finalize(self, lock.release) if lock is not None else None

    def check_open(self) -> None:
        if self.closed:
            raise EngineError(f"{self.source}: the store has been closed")

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

    def close(self) -> None:
        """Consolidate metadata (writable roots), release the store, publish a zip."""
        with self._close_lock:  # two threads closing: one does the work
            if self.closed or not self.owner:
                return
            self.closed = True
        try:
            if self.writable:
                with _quiet():
                    zarr.consolidate_metadata(self.store, zarr_format=self.zarr_format)
            with contextlib.suppress(Exception):
                self.store.close()
            if self.zip_sink is not None and self.build_dir is not None:
                self.zip_sink.publish(self.build_dir)
        except Exception as exc:
            if self._cleanup is None:
                raise
            self._cleanup.detach()  # keep what was written
            raise SkelstoreError(
                f"{self.source}: writing the zip failed ({exc}); "
                f"the store written so far is kept at {self.build_dir}"
            ) from exc
        finally:
            if self._unlock is not None:
                self._unlock()  # the lock goes last: nothing is written after it
        if self._cleanup is not None:
            self._cleanup()


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
        return Attrs(
            _ZarrAttrMap(self._raw),
            writable=self._s.writable,
            where=where,
            encode=lambda v: _json_safe(v, where),
        )



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

    def __setitem__(self, selection: Any, values: Any) -> None:
        self._check_writable()
        self._raw[selection] = values

    def append(self, values: np.ndarray) -> None:
        """Append along the first axis (values are cast to the array's dtype)."""
        self._check_writable()
        values = np.asarray(values)
        shape = self.shape
        if not shape or values.ndim != len(shape) or values.shape[1:] != shape[1:]:
            raise FormatError(f"{self.where()}: cannot append shape {values.shape} to {shape}")
        if len(values) == 0:
            return
        self._raw.append(values.astype(self.dtype, copy=False), axis=0)

    def truncate(self, length: int) -> None:
        """Shrink the first axis to ``length``."""
        self._check_writable()
        if not self.shape or not 0 <= length <= self.shape[0]:
            raise FormatError(f"{self.where()}: cannot truncate to {length}")
        with _quiet():
            self._raw.resize((length, *self.shape[1:]))

    def _check_writable(self) -> None:
        self._s.check_open()
        if not self._s.writable:
            raise ReadOnlyError(f"{self.where()}: opened read-only")


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
                        obj = _consolidated_member(self._raw, name)
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
    def _check_writable(self) -> None:
        self._s.check_open()
        if not self._s.writable:
            raise ReadOnlyError(f"{self.where()}: opened read-only")

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
            with _quiet():
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

        names: dict[str, Any] = {}
        if dimension_names is not None and self._s.zarr_format == 3:
            names["dimension_names"] = tuple(dimension_names)
        if self._s.zarr_format != 3:
            shards = None
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
            with _quiet():
                raw = self._raw.create_array(
                    leaf,
                    shape=shape,
                    dtype=np_dtype,
                    chunks=chunk_shape,
                    shards=shards,
                    filters=filters,
                    compressors=compressors,
                    fill_value=extra.get("fill_value", 0),
                    **names,
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
        if dimension_names is not None and self._s.zarr_format != 3:
            raw.attrs["_ARRAY_DIMENSIONS"] = list(dimension_names)
        if data is not None and data.size:
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
        as is every batch if zarr's internals used here change (detected while
        planning, before anything is written).
        """
        self._check_writable()
        global _BATCH_WRITES
        plan = None
        if _BATCH_WRITES:
            try:
                plan = _BatchPlan.make(self, nodes)
            except SkelstoreError:
                raise
            except Exception as exc:
                # nothing is written while planning: the general path below writes
                # the batch, or raises the error a user's mistake deserves; a
                # TypeError/AttributeError means zarr's internals used here changed,
                # so zarr's public API is used from now on
                if isinstance(exc, (TypeError, AttributeError)):
                    _BATCH_WRITES = False
        if plan is None:
            super().write_many(nodes)
            return
        for name in plan.top_level:
            if self._child(name) is not None:
                raise self._exists_error(name)
        store = self._raw.store_path.store
        base = self._raw.path
        proto = default_buffer_prototype()
        documents = [(_join(base, k), proto.buffer.from_bytes(d)) for k, d in plan.documents]
        # arrays are made before anything is written, for the same reason
        arrays = [
            (AsyncArray(metadata=meta, store_path=StorePath(store, _join(base, path))), data)
            for path, meta, data in plan.chunks
        ]

        async def write_all() -> None:
            jobs = [store.set(key, doc) for key, doc in documents]
            jobs += [arr.setitem(..., data) for arr, data in arrays]
            await asyncio.gather(*jobs)

        try:
            with _quiet():
                _zarr_sync(write_all())
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
            if isinstance(arr, ZarrArray) and _zarr_sync is not None:
                async_arr = getattr(arr.raw, "async_array", None) or getattr(
                    arr.raw, "_async_array", None
                )
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
            with _quiet():
                _zarr_sync(append_all())
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
            if isinstance(arr, ZarrArray) and _zarr_sync is not None:
                async_arr = getattr(arr.raw, "async_array", None) or getattr(
                    arr.raw, "_async_array", None
                )
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
            with _quiet():
                _zarr_sync(set_all())
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
            if isinstance(arr, ZarrArray) and _is_basic(sel):
                async_arr = getattr(arr.raw, "async_array", None) or getattr(
                    arr.raw, "_async_array", None
                )
            if async_arr is None or _zarr_sync is None:
                out[i] = arr[sel]
            else:
                arr.check_read(sel)
                batch.append((i, async_arr, sel))
        if batch:

            async def gather() -> list[Any]:
                return await asyncio.gather(*(a.getitem(sel) for _, a, sel in batch))

            try:
                results = _zarr_sync(gather())
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
        Safe to call twice."""
        if self._root:
            if not self._s.closed:
                self._run_close_hooks()
            self._s.close()

    @property
    def owns_file(self) -> bool:
        return bool(self._root and self._s.owner and not self._s.closed)

    def delete(self, name: str) -> None:
        """Delete child ``name`` and everything under it."""
        self._check_writable()
        if self._child(name) is None:
            raise NotFoundError(f"{self.where()}: no member {name!r} to delete")
        with _quiet():
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
    try:
        if fs.isfile(path):
            return "file"
        names = {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)}
    except FileNotFoundError:
        return "missing"
    except PermissionError as exc:
        raise EngineError(f"{url}: access denied ({exc})") from exc
    return _dir_state(names)


def _is_zip_url(url: str) -> bool:
    """True for ``zip::...`` and names ending in ``.zip`` (also ``memory://x.zarr.zip``,
    whose name is a URL host)."""
    last = url.split("::")[-1].split("?", 1)[0].rstrip("/").lower()
    return url.startswith("zip::") or last.endswith(".zip")


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
            lock = _WriteLock.acquire(url, path) if mode != "r" else None
            try:
                if lock is not None:  # as it is now that nobody else writes
                    state = _local_state(path)
                    _check_state(url, mode, state)
                store = zarr.storage.LocalStore(path, read_only=mode == "r")
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
        inner = url.removeprefix("zip::")
        if is_local(inner):
            sink = _ZipSink(url, local_path(inner))
        else:
            fs, path = to_fs(inner, storage_options)
            sink = _ZipSink(url, path, fs)
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
        lock = _WriteLock.acquire(url, sink.dest) if sink.local else None
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
                sink.extract_to(build)
            store = zarr.storage.LocalStore(build)
            root = _open_root(
                url,
                "r+" if extend else "w-",
                store,
                zarr_format,
                "zarr" if extend else "empty",
                lambda: "file",
                zip_sink=sink,
                build_dir=build,
                lock=lock,
            )
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
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
    from zarr.core.group import GroupMetadata

    cm = raw.metadata.consolidated_metadata
    if cm is None:
        return False
    levels: list[tuple[str, set[str]]] = [("", set(cm.metadata))]
    for name, meta in cm.metadata.items():
        if isinstance(meta, GroupMetadata) and meta.consolidated_metadata is not None:
            levels.append((name, set(meta.consolidated_metadata.metadata)))

    async def listing(prefix: str) -> set[str]:
        return {e async for e in raw.store.list_dir(prefix) if e not in _METADATA_KEYS}

    async def all_listings() -> list[set[str]]:
        return list(await asyncio.gather(*(listing(p) for p, _ in levels)))

    if _zarr_sync is None:  # pragma: no cover - zarr without its sync helper
        return False
    try:
        found = _zarr_sync(all_listings())
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
    build_dir: str | None = None,
    lock: _WriteLock | None = None,
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
    is_zip = "zip::" in url or url.lower().rstrip("/").endswith(".zip")
    writable = mode != "r"
    session = _Session(
        source=url,
        store=raw.store,
        writable=writable,
        owner=True,
        zarr_format=int(raw.metadata.zarr_format),
        zip_sink=zip_sink,
        build_dir=build_dir,
        lock=lock,
    )
    session.nodes[raw.path] = raw
    if mode == "r" and not is_zip and raw.metadata.consolidated_metadata is not None:
        # written by another tool since? checked when first listing or missing a member
        session.stale_check = lambda: _consolidated_is_stale(raw)
    if writable and existing and zip_sink is None:
        _drop_consolidated(raw, session)
    return ZarrGroup(raw, session, root=True)


def _drop_consolidated(raw: Any, session: _Session) -> None:
    """Remove consolidated metadata left by an earlier session, so a crash during
    this one can never leave readers a stale listing (it is rewritten on close)."""
    with _quiet():
        raw.update_attributes({})  # rewrites zarr.json without consolidated_metadata
    if session.zarr_format == 2 and _zarr_sync is not None:
        with contextlib.suppress(Exception):
            _zarr_sync(session.store.delete(_join(raw.path, ".zmetadata")))
