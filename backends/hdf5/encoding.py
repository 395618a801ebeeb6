"""skelstore's encodings (compression presets) as h5py dataset keywords, and the
file-level settings every file is opened with."""

from __future__ import annotations

from typing import Any

import hdf5plugin

from skelstore.compression import Encoding

#: skelshop's file settings (skelshop.utils.h5py.h5out).
FILE_KWARGS: dict[str, Any] = {
    "libver": ("earliest", "v110"),
    "rdcc_nbytes": 16 * 1024 * 1024,
    "rdcc_w0": 1,
    "rdcc_nslots": 8297,
}


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
