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


#: Size of libhdf5's metadata cache for files opened read-only (fixed, not
#: grown). libhdf5's default cache starts at 2 MiB and grows towards 32 MiB when
#: few lookups hit it, which is every pass over a skelshop dump (each object is
#: looked at once or twice): that held ~50 MB more RSS after listing and reading
#: a 90k-frame dump, and no lookup was faster for it (docs/performance.md).
READ_METADATA_CACHE_BYTES = 1 << 20


def limit_metadata_cache(f: Any, nbytes: int = READ_METADATA_CACHE_BYTES) -> None:
    """Give the open file ``f`` (an ``h5py.File``) a fixed metadata cache of
    ``nbytes``."""
    config = f.id.get_mdc_config()
    config.set_initial_size = True
    config.initial_size = config.max_size = nbytes
    config.min_size = min(config.min_size, nbytes)
    config.incr_mode = config.flash_incr_mode = 0  # H5C_incr__off, H5C_flash_incr__off
    f.id.set_mdc_config(config)


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
