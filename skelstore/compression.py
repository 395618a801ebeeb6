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

from dataclasses import dataclass

from skelstore.errors import FormatError

__all__ = [
    "PRESETS",
    "SMALL_TRACK_ENTRIES",
    "Encoding",
    "Preset",
    "get_preset",
    "preset_name",
]

#: Tracks with fewer stored keypoints than this are written without Blosc.
SMALL_TRACK_ENTRIES = 24


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
