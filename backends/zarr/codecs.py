"""Zarr codecs: skelstore's encodings (compression presets) as zarr codecs and back,
unsafe codecs refused (h5py ``create_dataset`` keywords are translated by
:func:`skelstore.compression.translate_h5py`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numcodecs
import numpy as np
from zarr.codecs import BloscCodec
from zarr.codecs.numcodecs import FixedScaleOffset

from skelstore.backends.zarr.util import _quiet
from skelstore.compression import BLOSC_BITSHUFFLE, Encoding, translate_h5py
from skelstore.errors import (
    EngineError,
)

#: Codecs that decode into arbitrary Python objects (pickle can run code): refused.
_UNSAFE_CODECS = frozenset({"pickle", "json", "json2", "msgpack", "msgpack2", "vlen-array"})


#: Codecs that only (de)serialise and do not change what an Encoding describes.
_NEUTRAL_CODECS = frozenset({"bytes", "vlen-utf8", "vlen-bytes"})


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
        if config.get("cname") != "zstd" or shuffle not in ("bitshuffle", BLOSC_BITSHUFFLE):
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
    extra = translate_h5py(engine_options, where, "zarr") if engine_options else {}
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
