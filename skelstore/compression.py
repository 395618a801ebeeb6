"""Compression presets as data.

skelshop names five presets (``none``, ``lossless``, ``lossless9``, ``lossy``,
``lossy9``). Each is recorded here as an engine-neutral :class:`Encoding` per array
role; every engine maps an :class:`Encoding` to its own filters or codecs and, when
reading, reports the :class:`Encoding` it finds on an array (so conversion can keep
the source's preset and ``skelstore info`` can name it).

skelshop's meaning, kept exactly:

* lossless: Blosc, zstd, level 5 (``lossless9``: 9), bit-shuffle, on ``data`` and
  ``indices``; ``indptr`` is never compressed.
* lossy: lossless plus a scale-offset filter keeping 2 decimal digits on ``data``
  (HDF5 scale-offset ``scaleoffset=2``; Zarr ``FixedScaleOffset(scale=100)``).
* A pose group with fewer than 24 stored keypoints drops Blosc (it does not pay
  off and some compressors misbehave on tiny inputs) but keeps the scale-offset
  filter, as skelshop does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelstore.errors import EngineError, FormatError, InputError

__all__ = [
    "LOSSY_MAX_ABS",
    "PRESETS",
    "SMALL_TRACK_ENTRIES",
    "Encoding",
    "Preset",
    "check_lossy",
    "effective_scale_digits",
    "get_preset",
    "lossy_limit",
    "lossy_problem",
    "preset_name",
    "translate_h5py",
]

#: Tracks with fewer stored keypoints than this are written without Blosc.
SMALL_TRACK_ENTRIES = 24

#: The largest magnitude (exclusive) a scale-offset filter keeping 2 decimals stores
#: within its rounding: both engines scale float32 values in float32 arithmetic, so
#: larger values lose more than the 0.01 step (and beyond about 2.1e7 the integers
#: overflow: Zarr gives back -21474836.0). NaN and infinities cannot be stored at all
#: (HDF5's filter then fails to decode the whole chunk). See :func:`check_lossy`.
LOSSY_MAX_ABS = 2.0**15


def lossy_limit(scale_digits: int) -> float:
    """The exclusive magnitude limit of values stored with ``scale_digits`` decimals
    (:data:`LOSSY_MAX_ABS` at the presets' 2 digits; scaled for other digits)."""
    return LOSSY_MAX_ABS * 10.0 ** (2 - max(0, int(scale_digits)))


def lossy_problem(values: Any, scale_digits: int | None) -> tuple[tuple[int, ...], float] | None:
    """``(index, value)`` of the first value a scale-offset filter with
    ``scale_digits`` decimals cannot store within its rounding (NaN, an infinity, a
    magnitude of at least :func:`lossy_limit`), or ``None`` if there is none (or the
    values are not floats, or there is no such filter)."""
    if scale_digits is None:
        return None
    arr = np.asarray(values)
    if arr.dtype.kind != "f" or arr.size == 0:
        return None
    with np.errstate(invalid="ignore"):
        ok = np.abs(arr) < lossy_limit(scale_digits)  # False for NaN
    if ok.all():
        return None
    index = tuple(int(i) for i in np.argwhere(~ok)[0])
    return index, float(arr[index])


def effective_scale_digits(
    encoding: Encoding | None, engine_options: dict[str, Any] | None = None
) -> int | None:
    """Decimals kept by the scale-offset filter of an array created with ``encoding``
    and h5py-style ``engine_options`` (whose ``scaleoffset`` wins), or ``None``."""
    raw = (engine_options or {}).get("scaleoffset")
    if isinstance(raw, (int, np.integer)) and not isinstance(raw, bool) and raw >= 0:
        return int(raw)
    return encoding.scale_digits if encoding is not None else None


def check_lossy(values: Any, scale_digits: int | None, where: str) -> None:
    """Refuse values a scale-offset filter would change beyond its rounding.

    Raises:
        InputError: a NaN, infinity or too large a magnitude; the message names
            ``where``, the entry and the value.
    """
    found = lossy_problem(values, scale_digits)
    if found is None:
        return
    index, value = found
    assert scale_digits is not None
    at = f"[{', '.join(map(str, index))}]" if index else ""
    raise InputError(
        f"{where}{at}: cannot store {value!r} with a lossy encoding (scale-offset, "
        f"{scale_digits} decimals), which keeps finite values of magnitude below "
        f"{lossy_limit(scale_digits):g} only; use a lossless preset for such data"
    )


#: HDF5's registered filter id of Blosc (what hdf5plugin and skelshop's presets use).
BLOSC_FILTER_ID = 32001
#: Blosc's compressor code for zstd (the last parameter of HDF5's Blosc filter).
BLOSC_ZSTD = 5
#: Blosc's shuffle code for bit-shuffle.
BLOSC_BITSHUFFLE = 2


@dataclass(frozen=True)
class Encoding:
    """How one array is encoded on storage, independent of the engine.

    Attributes:
        blosc_level: zstd level of a Blosc compressor with bit-shuffle, or ``None``
            for no compressor.
        scale_digits: decimal digits kept by a scale-offset filter (floats only),
            or ``None`` for no such filter.
    """

    blosc_level: int | None = None
    scale_digits: int | None = None

    @property
    def is_lossy(self) -> bool:
        """True when decoding does not give back the exact values written."""
        return self.scale_digits is not None

    def without_blosc(self) -> Encoding:
        """This encoding with the compressor removed (filters kept)."""
        return Encoding(None, self.scale_digits)


PLAIN = Encoding()


@dataclass(frozen=True)
class Preset:
    """A named compression preset: the encoding of each array of a pose group."""

    name: str
    data: Encoding
    indices: Encoding
    indptr: Encoding = PLAIN

    def for_array(self, role: str, entries: int | None) -> Encoding:
        """The encoding for array ``role`` (``data``/``indices``/``indptr``).

        ``entries`` is the number of stored keypoints of a track written in one
        go, or ``None`` for a growable track (whose final size is unknown).
        """
        enc: Encoding = getattr(self, role)
        if entries is not None and entries < SMALL_TRACK_ENTRIES:
            enc = enc.without_blosc()
        return enc


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("none", PLAIN, PLAIN),
        Preset("lossless", Encoding(5), Encoding(5)),
        Preset("lossless9", Encoding(9), Encoding(9)),
        Preset("lossy", Encoding(5, 2), Encoding(5)),
        Preset("lossy9", Encoding(9, 2), Encoding(9)),
    )
}


def get_preset(name: str | Preset | None) -> Preset:
    """The preset called ``name`` (``None`` means ``"none"``).

    Raises:
        FormatError: ``name`` is not one of :data:`PRESETS`.
    """
    if isinstance(name, Preset):
        return name
    if name is None:
        return PRESETS["none"]
    try:
        return PRESETS[name]
    except KeyError:
        raise FormatError(
            f"unknown compression preset {name!r}; choose one of {', '.join(PRESETS)}"
        ) from None


def preset_name(data: Encoding | None, indices: Encoding | None) -> str | None:
    """Name the preset whose ``data``/``indices`` encodings these are, else ``None``.

    The small-track exception is taken into account: a ``data`` array carrying
    only the scale-offset filter matches the lossy presets, one with nothing
    matches any preset whose Blosc was dropped only when ``indices`` tells which.
    """
    if data is None or indices is None:
        return None
    for preset in PRESETS.values():
        if (data, indices) == (preset.data, preset.indices):
            return preset.name
    return None


#: h5py ``create_dataset`` keywords that have no effect on an array's contents.
_IGNORED_H5PY = frozenset({"maxshape", "track_times", "track_order"})


def _h5py_unsupported(key: str, value: Any, where: str, engine: str) -> EngineError:
    shown = f"{type(value).__name__} filter" if hasattr(value, "filter_id") else repr(value)
    return EngineError(
        f"{where}: the {engine} engine cannot honour h5py option {key!r}; "
        f"use compression='lossless' or a preset (got {key}={shown})"
    )


def translate_h5py(options: Mapping[str, Any], where: str, engine: str) -> dict[str, Any]:
    """Translate h5py ``create_dataset`` keywords (skelshop's ``lossless_kwargs`` /
    ``lossy_kwargs``, as an array's ``engine_options``) for an engine other than
    HDF5, named ``engine`` in messages.

    Returns a dict with any of ``blosc_level`` and ``scale_digits`` (the fields of
    an :class:`Encoding` they override), ``chunks`` and ``fill_value``. A Blosc
    filter is honoured only as zstd with bit-shuffle (what skelshop's presets
    use); ``scaleoffset`` becomes a scale-offset filter; ``maxshape``,
    ``track_times`` and ``track_order`` do not change an array's contents and are
    ignored.

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
                raise _h5py_unsupported(key, value, where, engine)
            if (
                fid != BLOSC_FILTER_ID
                or len(fopts) < 7
                or fopts[5] != BLOSC_BITSHUFFLE
                or fopts[6] != BLOSC_ZSTD
            ):
                raise _h5py_unsupported(key, value, where, engine)
            out["blosc_level"] = int(fopts[4])
        elif key == "scaleoffset":
            if value is None or value is False:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise _h5py_unsupported(key, value, where, engine)
            out["scale_digits"] = int(value)
        elif key in ("shuffle", "fletcher32"):
            if value:
                raise _h5py_unsupported(key, value, where, engine)
        elif key == "chunks":
            if isinstance(value, (tuple, list)):
                out["chunks"] = tuple(value)
            elif value not in (None, True, False):
                raise _h5py_unsupported(key, value, where, engine)
        elif key == "fillvalue":
            if value is not None:
                out["fill_value"] = value
        else:
            raise _h5py_unsupported(key, value, where, engine)
    opts = options.get("compression_opts")
    compression = options.get("compression")
    if opts is not None and not (
        (isinstance(compression, int) and not isinstance(compression, bool))
        or (
            hasattr(compression, "filter_options")
            and tuple(opts) == tuple(compression.filter_options)
        )
    ):
        raise _h5py_unsupported("compression_opts", opts, where, engine)
    return out
