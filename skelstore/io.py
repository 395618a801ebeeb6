"""skelshop's readers and writers, on any storage.

Same names, arguments and behaviour as ``skelshop.io``. Every reader and writer
takes a skelstore group (from :func:`skelstore.open`), an ``h5py.File``/``Group``
or a ``zarr.Group``.

Differences from skelshop, all deliberate:

* Readers load a shot's arrays in bulk (one call for every ``indptr``, one per
  block of frames for ``data``/``indices``) instead of slicing per pose per frame;
  writers buffer a track and write it in large appends.
* Members are visited in natural numeric order (``pose2`` before ``pose10``).
* ``ShotSegmentedReader.iter_from_frame`` on a frame that falls in a gap between
  two shots starts at the next shot (skelshop yields nothing).
* Bad files raise :class:`~skelstore.errors.FormatError` (a ``SkelstoreError``)
  instead of ``AssertionError``/``KeyError``.
"""

from __future__ import annotations

from skelstore.readers import (
    AsIfSingleShot,
    AsIfTracked,
    EmptyShot,
    EnumerateIterable,
    ShotReader,
    ShotSegmentedReader,
    UnsegmentedReader,
)
from skelstore.writers import NullWriter, ShotSegmentedWriter, UnsegmentedWriter

__all__ = [
    "AsIfSingleShot",
    "AsIfTracked",
    "EmptyShot",
    "EnumerateIterable",
    "NullWriter",
    "ShotReader",
    "ShotSegmentedReader",
    "ShotSegmentedWriter",
    "UnsegmentedReader",
    "UnsegmentedWriter",
]
