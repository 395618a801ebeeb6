"""skelstore: skelshop's skeleton dump layout on any storage (HDF5, Zarr; local or fsspec URLs).

    >>> import skelstore
    >>> from skelstore.io import ShotSegmentedReader
    >>> with skelstore.open("video.h5") as root:          # doctest: +SKIP
    ...     for shot in ShotSegmentedReader(root):
    ...         for bundle in shot:
    ...             for pose_id, pose in bundle:
    ...                 pose.keypoints                    # (limbs, 3): x, y, confidence
    >>> skelstore.convert("video.h5", "video.zarr", verify=True)  # doctest: +SKIP

``skelstore.convert`` is the function :func:`skelstore.conversion.convert`.
"""

from __future__ import annotations

from skelstore import engines as _engines
from skelstore import errors
from skelstore import recovery as _recovery
from skelstore.config import get_options, set_options
from skelstore.conversion import ConvertReport, compare_dumps, convert
from skelstore.engines import as_group, get_engine, guess_engine, list_engines, open
from skelstore.errors import *  # noqa: F403  (the exception hierarchy: errors.__all__)
from skelstore.storage import Array, Group

__version__ = "0.1.0"

# skelstore.open refuses (or shows the intact part of) dumps whose writer was
# interrupted: the dump layer's check, registered with the engine registry here
_engines.register_open_check(_recovery.check_complete)

__all__ = [
    "Array",
    "ConvertReport",
    "Group",
    "__version__",
    "as_group",
    "compare_dumps",
    "convert",
    "get_engine",
    "get_options",
    "guess_engine",
    "list_engines",
    "open",
    "set_options",
    *errors.__all__,
]
