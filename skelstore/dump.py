"""Root metadata and whole-timeline writing (skelshop's ``skelshop.dump``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from skelstore.config import get_options
from skelstore.engines import as_group
from skelstore.errors import InputError
from skelstore.inputs import check_frame, check_num_kps
from skelstore.io import ShotSegmentedWriter
from skelstore.layout import FMT_TYPES, FMT_VERSION, MAX_FRAME

__all__ = [
    "FMT_VERSION",
    "SHOT_CHANGE",
    "add_basic_metadata",
    "add_fmt_metadata",
    "add_metadata",
    "write_shots",
]


class _ShotChange:
    """The marker type of :data:`SHOT_CHANGE`."""

    def __repr__(self) -> str:
        return "SHOT_CHANGE"


#: Put this in a ``frame_iter`` given to :func:`write_shots` to end a shot.
SHOT_CHANGE = _ShotChange()


def _version() -> str:
    from skelstore import __version__

    return f"skelstore-{__version__}"


def _integral(value: Any) -> Any:
    """A float with an integral value as an int; anything else unchanged."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return value


def add_basic_metadata(h5f: Any, video: str, num_frames: int) -> None:
    """Set ``video`` (the file's base name) and ``num_frames`` on the root.

    Raises:
        InputError: ``num_frames`` is not a frame count (an integer from 0 to 2**31).
    """
    frames = _integral(num_frames)  # e.g. OpenCV's frame count, a float
    frames = check_frame(frames, "", "num_frames") if frames != MAX_FRAME else MAX_FRAME
    as_group(h5f).attrs.update({"video": os.path.basename(video), "num_frames": frames})


def add_metadata(h5f: Any, video: str, num_frames: int, mode: str, limbs: int) -> None:
    """Set ``video``, ``num_frames``, ``mode`` and ``limbs`` on the root.

    Raises:
        InputError: ``num_frames`` is not a frame count, ``mode`` not a string, or
            ``limbs`` not an integer from 1 to 65536; nothing is set then.
    """
    if not isinstance(mode, str):
        raise InputError(f"mode must be a pose mode name, not {mode!r}")
    keypoints = check_num_kps(_integral(limbs), "", "limbs")
    if keypoints is None:
        raise InputError("limbs must be an integer from 1 to 65536, not None")
    add_basic_metadata(h5f, video, num_frames)
    as_group(h5f).attrs.update({"mode": mode, "limbs": keypoints})


def add_fmt_metadata(h5f: Any, fmt_type: str, running_op: bool = False) -> None:
    """Set ``fmt_type``, ``fmt_ver``, ``legacy_skels`` and prepend to ``skeldump_ver``.

    ``running_op`` is accepted for compatibility; skelstore never runs OpenPose.
    """
    from skelstore.errors import FormatError

    if fmt_type not in FMT_TYPES:
        raise FormatError(f"unknown fmt_type {fmt_type!r}; use one of {', '.join(FMT_TYPES)}")
    root = as_group(h5f)
    ver = f"{fmt_type}={_version()}"
    if "skeldump_ver" in root.attrs:
        ver = ver + ";" + str(root.attrs["skeldump_ver"])
    root.attrs.update(
        {
            "fmt_type": fmt_type,
            "fmt_ver": FMT_VERSION,
            "legacy_skels": get_options().legacy_skels,
            "skeldump_ver": ver,
        }
    )


def write_shots(
    h5f: Any,
    num_kps: int | None,
    frame_iter: Iterable[Any],
    writer_cls: type = ShotSegmentedWriter,
    start_frame: int = 0,
    **create_kwargs: Any,
) -> None:
    """Write a whole timeline.

    ``frame_iter`` yields, per frame, an iterable of ``(pose_id, pose)`` (``pose``
    an array or an object with ``.all()``), or :data:`SHOT_CHANGE` to end a shot.
    """
    writer = writer_cls(h5f, num_kps=num_kps, **create_kwargs)
    writer.start_shot(start_frame)
    frame_num = start_frame
    for frame in frame_iter:
        if frame is SHOT_CHANGE:
            writer.end_shot()
            writer.start_shot()
        else:
            writer.register_frame(frame_num)
            for pose_id, pose in frame:
                writer.add_pose(frame_num, pose_id, pose)
            frame_num += 1
    writer.end_shot()
