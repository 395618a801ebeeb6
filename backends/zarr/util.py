"""Small helpers every module of the Zarr engine uses."""

from __future__ import annotations

import contextlib
import warnings
import zipfile
import zlib
from collections.abc import Iterator

import zarr.errors

#: What zarr raises for metadata documents it cannot make sense of (bad JSON,
#: wrong types, unknown codecs or dtypes): turned into FormatError.
_META_ERRORS = (
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    ZeroDivisionError,
    OverflowError,
    NotImplementedError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
)

#: What zarr raises when a node is created where one already is.
_EXISTS_ERRORS = (
    zarr.errors.ContainsGroupError,
    zarr.errors.ContainsArrayError,
    zarr.errors.ContainsArrayAndGroupError,
)


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
