"""What callers give the writers, checked: poses, keypoint counts, frame numbers,
pose ids, and values a lossy preset cannot keep. Each check raises
:class:`~skelstore.errors.InputError` naming where (``where``) and what is wrong."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from skelstore.compression import lossy_limit, lossy_problem
from skelstore.errors import InputError
from skelstore.layout import DATA_DTYPE, MAX_FRAME

__all__ = ["as_keypoints", "check_frame", "check_num_kps", "check_track_values", "pose_name"]


def as_keypoints(pose: Any, max_kps: int | None = None, where: str = "") -> np.ndarray:
    """A pose given as an array, or as an object with ``.keypoints``/``.all()``, as a
    ``(keypoints, 3)`` float32 array.

    Raises:
        InputError: not numbers, not ``(keypoints, 3)``, or wider than ``max_kps``
            (65536, the uint16 keypoint numbers, when not given).
    """
    if hasattr(pose, "all") and not isinstance(pose, np.ndarray):
        pose = pose.all()
    elif hasattr(pose, "keypoints"):
        pose = pose.keypoints
    try:
        arr = np.asarray(pose, dtype=DATA_DTYPE)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(
            f"{where}a pose must be a (keypoints, 3) array of numbers, got "
            f"{type(pose).__name__} ({exc})"
        ) from None
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] > (max_kps or 65536):
        if arr.ndim == 2 and arr.shape[1] == 3:
            raise InputError(
                f"{where}a pose of {arr.shape[0]} keypoints does not fit "
                f"{max_kps or 65536} keypoints a pose (num_kps)"
            )
        raise InputError(f"{where}a pose must be a (keypoints, 3) array, got shape {arr.shape}")
    return arr


def check_num_kps(num_kps: Any, where: str = "", what: str = "num_kps") -> int | None:
    """``num_kps`` of a writer as an int (or ``None``: not given).

    Raises:
        InputError: not an integer from 1 to 65536 (keypoint numbers are uint16).
    """
    if num_kps is None:
        return None
    if isinstance(num_kps, bool) or not isinstance(num_kps, (int, np.integer)):
        raise InputError(f"{where}{what} must be an integer, not {num_kps!r}")
    if not 0 < num_kps <= 65536:
        raise InputError(f"{where}{what} must be between 1 and 65536, not {num_kps}")
    return int(num_kps)


def check_frame(frame: Any, where: str = "", what: str = "frame") -> int:
    """A frame number given to a writer, as an int.

    Raises:
        InputError: not an integer, negative, or beyond :data:`MAX_FRAME`.
    """
    return _integer_below(frame, MAX_FRAME, where, what, f"{MAX_FRAME - 1}")


def pose_name(pose_id: Any, where: str = "") -> str:
    """The group name ``poseN`` of a pose id given to a writer.

    Raises:
        InputError: not an integer, negative, or too large for readers (18 digits).
    """
    return f"pose{_integer_below(pose_id, 10**18, where, 'pose id', '10**18 - 1')}"


def _integer_below(value: Any, limit: int, where: str, what: str, largest: str) -> int:
    """``value`` as an int from 0 to ``limit - 1`` (``largest``, as messages say it);
    bools and non-integers are refused."""
    if isinstance(value, bool):
        raise InputError(f"{where}{what} must be an integer, not {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise InputError(f"{where}{what} must be an integer, not {value!r}") from None
    if not 0 <= number < limit:
        raise InputError(f"{where}{what} {number} is not between 0 and {largest}")
    return number


def check_track_values(
    data: np.ndarray, indptr: np.ndarray, start_frame: int, scale_digits: int | None, where: str
) -> None:
    """Refuse a track whose stored values its lossy encoding cannot keep (see
    :func:`skelstore.compression.check_lossy`), naming the frame.

    ``indptr`` holds row ends relative to ``data`` (``indptr[0]`` is 0).
    """
    found = lossy_problem(data, scale_digits)
    if found is None:
        return
    assert scale_digits is not None
    (entry, *_), value = found
    row = int(np.searchsorted(np.asarray(indptr), entry, side="right")) - 1
    raise InputError(
        f"{where} at frame {start_frame + row}: cannot store {value!r} with a lossy "
        f"preset (scale-offset, {scale_digits} decimals), which keeps finite values of "
        f"magnitude below {lossy_limit(scale_digits):g} only; use a lossless preset"
    )
