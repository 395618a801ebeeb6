"""Pose modes, pose classes and the pose bundles readers yield (skelshop's names).

A *mode* names which OpenPose parts a pose holds and so its number of keypoints
(``limbs``): BODY_25 (25), BODY_25_HANDS (67), BODY_25_FACE (96), BODY_25_ALL
(138), BODY_135 (138), FACE (70). Each mode has a pose class whose instances
carry ``.keypoints``, a ``(limbs, 3)`` array of x, y, confidence.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from skelstore.errors import UnknownModeError

__all__ = [
    "LIMBS",
    "MODES",
    "POSE_CLASSES",
    "DumpReaderPoseBundle",
    "EmptyPoseBundle",
    "GenericPose",
    "PoseBase",
    "PoseBody25",
    "PoseBody25All",
    "PoseBody25Face",
    "PoseBody25Hands",
    "PoseBody135",
    "PoseFace",
    "UntrackedDumpReaderPoseBundle",
    "json_to_np",
    "pose_class",
]


def json_to_np(joint_list: list[float]) -> np.ndarray:
    """OpenPose's flat ``[x0, y0, c0, x1, ...]`` list as a ``(n, 3)`` float32 array."""
    if len(joint_list) % 3:
        raise ValueError(f"keypoint list of length {len(joint_list)} is not a multiple of 3")
    return np.asarray(joint_list, dtype=np.float32).reshape(len(joint_list) // 3, 3)


class PoseBase:
    """A pose: ``keypoints`` is a ``(limbs, 3)`` array of x, y, confidence."""

    keypoints: np.ndarray

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray) -> PoseBase:
        self = cls()
        self.keypoints = keypoints
        return self

    @classmethod
    def from_json(cls, person: Mapping[str, Any]) -> PoseBase:
        return cls.from_keypoints(json_to_np(person["pose_keypoints_2d"]))

    def all(self) -> np.ndarray:
        """All keypoints, ``(limbs, 3)``."""
        return self.keypoints

    def flat(self) -> np.ndarray:
        """All keypoints as one flat vector."""
        return self.all().reshape(-1)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.keypoints.shape[0]} keypoints>"


class GenericPose(PoseBase):
    """A pose of unknown mode (the dump has ``limbs`` but no ``mode``)."""


class PoseBody25(PoseBase):
    """OpenPose's BODY_25."""


class PoseBody25Hands(PoseBody25):
    """BODY_25 plus both hands, formatted like BODY_135."""

    @classmethod
    def from_parts(cls, pose: np.ndarray, lhand: np.ndarray, rhand: np.ndarray) -> PoseBase:
        return cls.from_keypoints(np.vstack([pose, lhand, rhand]))

    @classmethod
    def from_json(cls, person: Mapping[str, Any]) -> PoseBase:
        return cls.from_parts(
            json_to_np(person["pose_keypoints_2d"]),
            json_to_np(person["hand_left_keypoints_2d"]),
            json_to_np(person["hand_right_keypoints_2d"]),
        )


class PoseBody25All(PoseBody25):
    """BODY_25 plus both hands and the face, formatted like BODY_135."""

    @classmethod
    def from_parts(
        cls, pose: np.ndarray, lhand: np.ndarray, rhand: np.ndarray, face: np.ndarray
    ) -> PoseBase:
        return cls.from_keypoints(np.vstack([pose, lhand, rhand, face]))

    @classmethod
    def from_json(cls, person: Mapping[str, Any]) -> PoseBase:
        return cls.from_parts(
            json_to_np(person["pose_keypoints_2d"]),
            json_to_np(person["hand_left_keypoints_2d"]),
            json_to_np(person["hand_right_keypoints_2d"]),
            json_to_np(person["face_keypoints_2d"]),
        )


class PoseFace(PoseBody25):
    """OpenPose's face (70 keypoints)."""

    @classmethod
    def from_parts(cls, face: np.ndarray) -> PoseBase:
        return cls.from_keypoints(face)

    @classmethod
    def from_json(cls, person: Mapping[str, Any]) -> PoseBase:
        return cls.from_parts(json_to_np(person["face_keypoints_2d"]))


class PoseBody25Face(PoseBody25):
    """BODY_25 plus the face."""

    @classmethod
    def from_parts(cls, pose: np.ndarray, face: np.ndarray) -> PoseBase:
        return cls.from_keypoints(np.vstack([pose, face]))

    @classmethod
    def from_json(cls, person: Mapping[str, Any]) -> PoseBase:
        return cls.from_parts(
            json_to_np(person["pose_keypoints_2d"]), json_to_np(person["face_keypoints_2d"])
        )


class PoseBody135(PoseBody25):
    """OpenPose's BODY_135."""


#: Mode name -> pose class (skelshop.openpose.POSE_CLASSES).
POSE_CLASSES: dict[str, type[PoseBase]] = {
    "BODY_25_ALL": PoseBody25All,
    "BODY_25_HANDS": PoseBody25Hands,
    "BODY_25": PoseBody25,
    "BODY_135": PoseBody135,
    "FACE": PoseFace,
    "BODY_25_FACE": PoseBody25Face,
}

#: Mode name -> keypoints per pose (skelshop.openpose.LIMBS).
LIMBS: dict[str, int] = {
    "BODY_25_ALL": 138,
    "BODY_25_HANDS": 67,
    "BODY_25": 25,
    "BODY_135": 138,
    "FACE": 70,
    "BODY_25_FACE": 96,
}

MODES: list[str] = list(POSE_CLASSES)


def pose_class(mode: str | None, where: str = "") -> type[PoseBase]:
    """The pose class of ``mode`` (:class:`GenericPose` for ``None``).

    Raises:
        UnknownModeError: ``mode`` is not one of :data:`MODES`.
    """
    if mode is None:
        return GenericPose
    try:
        return POSE_CLASSES[mode]
    except (KeyError, TypeError):
        prefix = f"{where}: " if where else ""
        raise UnknownModeError(
            f"{prefix}unknown pose mode {mode!r}; known modes: {', '.join(MODES)}"
        ) from None


class EmptyPoseBundle:
    """A bundle with no poses."""

    def __iter__(self) -> Iterator[Any]:
        yield from ()


class DumpReaderPoseBundle:
    """The poses of one frame from a tracked dump: iterating yields ``(pose_id, pose)``.

    ``bundle`` maps pose id to a ``(limbs, 3)`` keypoint array.
    """

    def __init__(self, bundle: Mapping[int, np.ndarray], cls: type[PoseBase]) -> None:
        self.bundle = bundle
        self.cls = cls

    def __iter__(self) -> Iterator[Any]:
        # zip/map run in C: no generator frame per pose (readers yield millions)
        make = self.cls.from_keypoints
        return zip(self.bundle.keys(), map(make, self.bundle.values()), strict=True)

    def __len__(self) -> int:
        return len(self.bundle)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pose ids {list(self.bundle)}>"


class UntrackedDumpReaderPoseBundle(DumpReaderPoseBundle):
    """As :class:`DumpReaderPoseBundle`, but iterating yields the poses only."""

    def __iter__(self) -> Iterator[Any]:
        return map(self.cls.from_keypoints, self.bundle.values())
