"""Pose modes, pose classes and the pose bundles readers yield (skelshop's names).

A *mode* names which OpenPose parts a pose holds and so its number of keypoints
(``limbs``): BODY_25 (25), BODY_25_HANDS (67), BODY_25_FACE (96), BODY_25_ALL
(138), BODY_135 (138), FACE (70). Each mode has a pose class whose instances
carry ``.keypoints``, a ``(limbs, 3)`` array of x, y, confidence.

:data:`SKELETONS` names every keypoint of every mode and gives its edges (see
:class:`Skeleton`): the one table exports and readers take names from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelstore.errors import UnknownModeError

__all__ = [
    "CUSTOM_MODE",
    "LIMBS",
    "MODES",
    "POSE_CLASSES",
    "SKELETONS",
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
    "Skeleton",
    "UntrackedDumpReaderPoseBundle",
    "json_to_np",
    "keypoint_names",
    "pose_class",
    "skeleton",
]


def json_to_np(joint_list: list[float]) -> np.ndarray:
    """OpenPose's flat ``[x0, y0, c0, x1, ...]`` list as a ``(n, 3)`` float32 array."""
    if len(joint_list) % 3:
        raise ValueError(f"keypoint list of length {len(joint_list)} is not a multiple of 3")
    return np.asarray(joint_list, dtype=np.float32).reshape(len(joint_list) // 3, 3)


class PoseBase:
    """A pose: ``keypoints`` is a ``(limbs, 3)`` array of x, y, confidence."""

    keypoints: np.ndarray
    #: OpenPose's JSON lists this mode's pose stacks, in order (:meth:`from_json`).
    json_parts: tuple[str, ...] = ("pose_keypoints_2d",)

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray) -> PoseBase:
        self = cls()
        self.keypoints = keypoints
        return self

    @classmethod
    def from_json(cls, person: Mapping[str, Any]) -> PoseBase:
        """A pose from one person of an OpenPose JSON frame (its :attr:`json_parts`)."""
        return cls.from_keypoints(np.vstack([json_to_np(person[k]) for k in cls.json_parts]))

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

    json_parts = ("pose_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d")

    @classmethod
    def from_parts(cls, pose: np.ndarray, lhand: np.ndarray, rhand: np.ndarray) -> PoseBase:
        return cls.from_keypoints(np.vstack([pose, lhand, rhand]))


class PoseBody25All(PoseBody25):
    """BODY_25 plus both hands and the face, formatted like BODY_135."""

    json_parts = (
        "pose_keypoints_2d",
        "hand_left_keypoints_2d",
        "hand_right_keypoints_2d",
        "face_keypoints_2d",
    )

    @classmethod
    def from_parts(
        cls, pose: np.ndarray, lhand: np.ndarray, rhand: np.ndarray, face: np.ndarray
    ) -> PoseBase:
        return cls.from_keypoints(np.vstack([pose, lhand, rhand, face]))


class PoseFace(PoseBody25):
    """OpenPose's face (70 keypoints)."""

    json_parts = ("face_keypoints_2d",)

    @classmethod
    def from_parts(cls, face: np.ndarray) -> PoseBase:
        return cls.from_keypoints(face)


class PoseBody25Face(PoseBody25):
    """BODY_25 plus the face."""

    json_parts = ("pose_keypoints_2d", "face_keypoints_2d")

    @classmethod
    def from_parts(cls, pose: np.ndarray, face: np.ndarray) -> PoseBase:
        return cls.from_keypoints(np.vstack([pose, face]))


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

#: The ``mode`` of a dump whose skeleton is none of :data:`MODES` (imported from
#: another tool): its keypoint names are the root attribute ``keypoint_names``
#: (and its edges ``skeleton_edges``); readers give :class:`GenericPose`.
CUSTOM_MODE = "CUSTOM"


def pose_class(mode: str | None, where: str = "") -> type[PoseBase]:
    """The pose class of ``mode`` (:class:`GenericPose` for ``None`` and
    :data:`CUSTOM_MODE`).

    Raises:
        UnknownModeError: ``mode`` is neither one of :data:`MODES` nor
            :data:`CUSTOM_MODE`.
    """
    if mode is None or mode == CUSTOM_MODE:
        return GenericPose
    try:
        return POSE_CLASSES[mode]
    except (KeyError, TypeError):
        prefix = f"{where}: " if where else ""
        raise UnknownModeError(
            f"{prefix}unknown pose mode {mode!r}; known modes: {', '.join(MODES)} "
            f"(or {CUSTOM_MODE} with a keypoint_names attribute)"
        ) from None


# ------------------------------------------------------ keypoint names and edges
# OpenPose's own names and limb pairs (the pairs it draws), from its sources:
# poseParameters.cpp (POSE_BODY_25_BODY_PARTS, POSE_BODY_135_BODY_PARTS),
# poseParametersRender.hpp (POSE_BODY_25_PAIRS_RENDER_GPU, POSE_BODY_135_PAIRS_RENDER_GPU),
# handParameters.hpp (HAND_PAIRS_RENDER_GPU) and faceParameters.hpp
# (FACE_PAIRS_RENDER_GPU). Written out here, not imported: no package on PyPI
# carries OpenPose's tables (pose-format has its own names and limbs).

_BODY_25 = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye",
    "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)  # fmt: skip
_BODY_25_PAIRS = (
    (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11),
    (8, 12), (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19),
    (19, 20), (14, 21), (11, 22), (22, 23), (11, 24),
)  # fmt: skip

# The 20 finger joints of a hand, as BODY_135 names them (after its side letter).
_FINGERS = tuple(
    f"{finger}{n}{joint}"
    for finger, first in (("Thumb", "CMC"), ("Index", "Knuckles"), ("Middle", "Knuckles"),
                          ("Ring", "Knuckles"), ("Pinky", "Knuckles"))
    for n, joint in enumerate((first, "PIP" if finger != "Thumb" else "Knuckles",
                               "DIP" if finger != "Thumb" else "IP", "FingerTip"), start=1)
)  # fmt: skip
# OpenPose's hand: keypoint 0 is the wrist (the hand detector's own, besides the body's).
_HAND_PAIRS = tuple(
    pair
    for f in range(5)
    for pair in ((0, 4 * f + 1), *((4 * f + k, 4 * f + k + 1) for k in range(1, 4)))
)


def _hand(side: str) -> tuple[str, ...]:
    return (f"{side}HandWrist", *(side + j for j in _FINGERS))


_FACE = (
    *(f"FaceContour{i}" for i in range(17)), *(f"REyeBrow{i}" for i in range(5)),
    *(f"LEyeBrow{i}" for i in range(4, -1, -1)), *(f"NoseUpper{i}" for i in range(4)),
    *(f"NoseLower{i}" for i in range(5)), *(f"REye{i}" for i in range(6)),
    *(f"LEye{i}" for i in range(6)), *(f"OMouth{i}" for i in range(12)),
    *(f"IMouth{i}" for i in range(8)), "RPupil", "LPupil",
)  # fmt: skip


def _chain(a: int, b: int, closed: bool = False) -> tuple[tuple[int, int], ...]:
    pairs = tuple((i, i + 1) for i in range(a, b))
    return (*pairs, (b, a)) if closed else pairs


# contour, eyebrows, nose bridge, nose base, eyes, outer and inner lips (pupils: none)
_FACE_PAIRS = (
    *_chain(0, 16), *_chain(17, 21), *_chain(22, 26), *_chain(27, 30), *_chain(31, 35),
    *_chain(36, 41, True), *_chain(42, 47, True), *_chain(48, 59, True), *_chain(60, 67, True),
)  # fmt: skip

_BODY_135_BODY = (
    "Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow",
    "LWrist", "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle", "UpperNeck",
    "HeadTop", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)  # fmt: skip
_BODY_135 = (*_BODY_135_BODY, *("L" + j for j in _FINGERS), *("R" + j for j in _FINGERS), *_FACE)
_BODY_135_BODY_PAIRS = (
    (0, 1), (0, 2), (1, 3), (2, 4), (5, 7), (6, 8), (7, 9), (8, 10), (5, 11), (6, 12),
    (11, 13), (12, 14), (13, 15), (14, 16), (15, 19), (19, 20), (15, 21), (16, 22), (22, 23),
    (16, 24), (5, 6), (17, 18), (11, 12),
)  # fmt: skip
_BODY_135_PAIRS = (
    *_BODY_135_BODY_PAIRS,
    # hands (keypoints 25 and 45 on): the body's wrist (9 left, 10 right) to each
    # finger's first joint, then along the finger
    *(pair for wrist, base in ((9, 25), (10, 45)) for f in range(5)
      for pair in ((wrist, base + 4 * f), *((base + 4 * f + k, base + 4 * f + k + 1)
                                            for k in range(3)))),
    *((a + 65, b + 65) for a, b in _FACE_PAIRS),  # the face, keypoints 65 on
)  # fmt: skip


@dataclass(frozen=True)
class Skeleton:
    """The keypoints of a pose mode, in storage order, and the edges between them.

    Attributes:
        mode: the pose mode.
        keypoints: one unique name per keypoint (``len(keypoints) == LIMBS[mode]``).
        edges: ``(a, b)`` keypoint indices joined by a limb: OpenPose's pairs within
            each part (body, each hand, face), shifted to the part's place; parts are
            not joined to each other (OpenPose draws none between them, except
            BODY_135's own hands, which start at the body's wrists).
        parts: ``(name, first keypoint, count)`` of each part in storage order:
            ``body`` (BODY_25's), ``body135``, ``left_hand``, ``right_hand``,
            ``face`` and ``padding``: the keypoints skelshop's limb counts reserve
            beyond OpenPose's parts (named ``PadN``), which OpenPose never fills.
    """

    mode: str
    keypoints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    parts: tuple[tuple[str, int, int], ...]

    @property
    def limbs(self) -> int:
        return len(self.keypoints)

    def edge_names(self) -> list[tuple[str, str]]:
        """The edges as pairs of keypoint names."""
        return [(self.keypoints[a], self.keypoints[b]) for a, b in self.edges]

    def padding(self) -> range:
        """Indices of the padding keypoints (empty for modes without)."""
        for name, start, count in self.parts:
            if name == "padding":
                return range(start, start + count)
        return range(0)


_PARTS: dict[str, tuple[tuple[str, tuple[str, ...], tuple[tuple[int, int], ...]], ...]] = {
    "body": (("body", _BODY_25, _BODY_25_PAIRS),),
    "left_hand": (("left_hand", _hand("L"), _HAND_PAIRS),),
    "right_hand": (("right_hand", _hand("R"), _HAND_PAIRS),),
    "face": (("face", _FACE, _FACE_PAIRS),),
    "body135": (("body135", _BODY_135, _BODY_135_PAIRS),),
}


def _compose(mode: str, parts: Sequence[str]) -> Skeleton:
    names: list[str] = []
    edges: list[tuple[int, int]] = []
    spans: list[tuple[str, int, int]] = []
    for part in parts:
        for name, points, pairs in _PARTS[part]:
            base = len(names)
            spans.append((name, base, len(points)))
            edges += [(a + base, b + base) for a, b in pairs]
            names += points
    pad = LIMBS[mode] - len(names)
    if pad:
        spans.append(("padding", len(names), pad))
        names += [f"Pad{i}" for i in range(len(names), LIMBS[mode])]
    return Skeleton(mode, tuple(names), tuple(edges), tuple(spans))


#: Mode -> its :class:`Skeleton`. Parts are stacked as skelstore's OpenPose import
#: (and skelshop) stack them: body, left hand, right hand, face, then padding up
#: to skelshop's limb count (BODY_25_FACE and BODY_25_ALL one keypoint, BODY_135
#: three).
SKELETONS: dict[str, Skeleton] = {
    mode: _compose(mode, parts)
    for mode, parts in (
        ("BODY_25_ALL", ("body", "left_hand", "right_hand", "face")),
        ("BODY_25_HANDS", ("body", "left_hand", "right_hand")),
        ("BODY_25", ("body",)),
        ("BODY_135", ("body135",)),
        ("FACE", ("face",)),
        ("BODY_25_FACE", ("body", "face")),
    )
}


def skeleton(mode: str) -> Skeleton:
    """The :class:`Skeleton` of one of :data:`MODES`.

    Raises:
        UnknownModeError: ``mode`` is not one of :data:`MODES`.
    """
    try:
        return SKELETONS[mode]
    except (KeyError, TypeError):
        raise UnknownModeError(
            f"unknown pose mode {mode!r}; known modes: {', '.join(MODES)}"
        ) from None


def keypoint_names(mode: str | None, limbs: int, custom: Sequence[str] | None = None) -> list[str]:
    """Names of the ``limbs`` keypoints of a dump of ``mode``, in storage order.

    Known modes get :data:`SKELETONS`' names; :data:`CUSTOM_MODE` the ``custom``
    names (the dump's ``keypoint_names`` attribute) when there are ``limbs`` unique
    ones; anything else (no mode, or a legacy skelshop layout whose ``limbs``
    differs from its mode's) ``kp0``, ``kp1``, ...
    """
    skel = SKELETONS.get(mode) if isinstance(mode, str) else None
    if skel is not None and skel.limbs == limbs:
        return list(skel.keypoints)
    if mode == CUSTOM_MODE and custom is not None:
        names = [str(n) for n in custom]
        if len(names) == limbs and len(set(names)) == limbs:
            return names
    return [f"kp{i}" for i in range(limbs)]


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
