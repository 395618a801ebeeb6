"""OpenPose's JSON files: the parts each mode stacks (:data:`PARTS`), one
frame's people as poses (:func:`parse_people`), and a directory or ``.zip`` of
frames read in order (:class:`OpenPoseFrames`)."""

from __future__ import annotations

import json
import os
import re
import zipfile
from typing import Any

import numpy as np

from skelstore.errors import (
    OpenPoseError,
    UnknownModeError,
)
from skelstore.pose import LIMBS, MODES
from skelstore.urls import to_fs

POSE, LHAND, RHAND, FACE = (
    "pose_keypoints_2d",
    "hand_left_keypoints_2d",
    "hand_right_keypoints_2d",
    "face_keypoints_2d",
)
#: OpenPose's person keys, in the order it writes them.
PERSON_KEYS = (
    POSE, FACE, LHAND, RHAND,
    "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d",
)  # fmt: skip

#: Mode -> the JSON parts a pose stacks, in order, with their keypoint counts.
PARTS: dict[str, tuple[tuple[str, int], ...]] = {
    "BODY_25": ((POSE, 25),),
    "BODY_25_HANDS": ((POSE, 25), (LHAND, 21), (RHAND, 21)),
    "BODY_25_FACE": ((POSE, 25), (FACE, 70)),
    "BODY_25_ALL": ((POSE, 25), (LHAND, 21), (RHAND, 21), (FACE, 70)),
    "BODY_135": ((POSE, 135),),
    "FACE": ((FACE, 70),),
}

#: OpenPose's ``version`` when a dump does not record the imported one.
DEFAULT_VERSION = 1.3

_NAME = re.compile(r"^(?P<base>.*?)(?P<num>\d+)_keypoints\.json$")


def check_mode(mode: str) -> None:
    """Raise :class:`~skelstore.errors.UnknownModeError` unless :data:`PARTS` has ``mode``."""
    if mode not in PARTS:
        raise UnknownModeError(f"unknown pose mode {mode!r}; known modes: {', '.join(MODES)}")


def parse_people(
    raw: bytes | str, mode: str, where: str, *, tracked: bool = False
) -> tuple[list[tuple[int, np.ndarray]], Any]:
    """The people of one OpenPose JSON file as ``(pose_id, (limbs, 3) float32)``.

    ``pose_id`` is the position in ``people``, or OpenPose's ``person_id`` when
    ``tracked``. Returns the poses and the file's ``version`` (``None`` if absent).

    Raises:
        OpenPoseError: the text is not JSON, has no ``people`` list, a person lacks
            a part of the mode or has a list of the wrong length or of non-numbers,
            or (``tracked``) a person has no ``person_id`` or shares one.
    """
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OpenPoseError(f"{where}: not valid JSON ({exc})", path=where) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("people"), list):
        raise OpenPoseError(f"{where}: no 'people' list (not OpenPose JSON output)", path=where)
    limbs = LIMBS[mode]
    out: list[tuple[int, np.ndarray]] = []
    seen: set[int] = set()
    for i, person in enumerate(doc["people"]):
        if not isinstance(person, dict):
            raise OpenPoseError(f"{where}: people[{i}] is not an object", path=where)
        kps = np.zeros((limbs, 3), dtype=np.float32)
        row = 0
        for key, count in PARTS[mode]:
            values = person.get(key)
            if not isinstance(values, list):
                what = "no" if values is None else "a non-list"
                raise OpenPoseError(
                    f"{where}: people[{i}] has {what} {key!r} (needed by mode {mode})", path=where
                )
            if values:
                if len(values) != 3 * count:
                    raise OpenPoseError(
                        f"{where}: people[{i}].{key} has {len(values)} values; mode {mode} "
                        f"expects {3 * count} ({count} keypoints x 3) or none",
                        path=where,
                    )
                try:
                    part = np.asarray(values, dtype=np.float32).reshape(count, 3)
                except (TypeError, ValueError):
                    raise OpenPoseError(
                        f"{where}: people[{i}].{key} holds something other than numbers",
                        path=where,
                    ) from None
                kps[row : row + count] = part
            row += count
        pose_id = i
        if tracked:
            pose_id = _person_id(person.get("person_id"), i, where)
            if pose_id in seen:
                raise OpenPoseError(
                    f"{where}: person_id {pose_id} appears twice in one frame", path=where
                )
            seen.add(pose_id)
        out.append((pose_id, kps))
    if tracked:
        out.sort(key=lambda p: p[0])
    return out, doc.get("version")


def _person_id(value: Any, i: int, where: str) -> int:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OpenPoseError(
            f"{where}: people[{i}] has no tracking id (person_id {value!r}); OpenPose writes "
            "one with --tracking, otherwise import with tracked=False",
            path=where,
        )
    return value


class OpenPoseFrames:
    """The ``*_keypoints.json`` files of a directory or ``.zip`` (local or an fsspec
    URL), in frame order. Use as a context manager (a zip stays open inside).

    Attributes:
        basename: the file names' common prefix before the frame number
            (``video_`` → ``video``).
        frames: sorted frame numbers.

    Raises:
        OpenPoseError: no such files, a name without a frame number, names with
            different prefixes, or a frame number twice.
    """

    def __init__(self, src: str, storage_options: dict[str, Any] | None = None) -> None:
        self.src = os.fspath(src)
        fs, path = to_fs(self.src, storage_options)
        self._fs = fs
        self._zip: zipfile.ZipFile | None = None
        self._zip_file: Any = None
        names: list[str]
        if fs.isdir(path):
            self._dir = path.rstrip("/")
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
        elif fs.isfile(path) and path.lower().endswith(".zip"):
            self._dir = ""
            self._zip_file = fs.open(path, "rb")
            try:
                self._zip = zipfile.ZipFile(self._zip_file)
            except zipfile.BadZipFile as exc:
                self._zip_file.close()
                raise OpenPoseError(f"{self.src}: not a zip file ({exc})", path=self.src) from None
            names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
        else:
            raise OpenPoseError(
                f"{self.src}: no such directory or .zip of OpenPose JSON files", path=self.src
            )
        found: list[tuple[int, str]] = []
        bases: set[str] = set()
        for name in names:
            leaf = name.rsplit("/", 1)[-1]
            if not leaf.endswith("_keypoints.json"):
                continue
            m = _NAME.match(leaf)
            if m is None:
                self.close()
                raise OpenPoseError(
                    f"{self.src}: {name}: no frame number before _keypoints.json", path=self.src
                )
            found.append((int(m["num"]), name))
            bases.add(name[: len(name) - len(leaf)] + m["base"])
        if not found:
            self.close()
            raise OpenPoseError(f"{self.src}: no *_keypoints.json files", path=self.src)
        if len(bases) > 1:
            self.close()
            raise OpenPoseError(
                f"{self.src}: files of several videos ({', '.join(sorted(bases)[:3])}); "
                "import each separately",
                path=self.src,
            )
        by_frame: dict[int, str] = {}
        for frame, name in found:
            if frame in by_frame:
                self.close()
                raise OpenPoseError(
                    f"{self.src}: frame {frame} twice ({by_frame[frame]}, {name})", path=self.src
                )
            by_frame[frame] = name
        base = bases.pop().rsplit("/", 1)[-1]
        self.basename = base[:-1] if base.endswith("_") else base
        self.frames = sorted(by_frame)
        self._names = by_frame

    def missing(self) -> list[int]:
        """Frame numbers missing between the first and the last file."""
        present = np.asarray(self.frames, dtype=np.int64)
        gaps = np.nonzero(np.diff(present) > 1)[0]
        out: list[int] = []
        for g in gaps:
            out.extend(range(int(present[g]) + 1, int(present[g + 1])))
            if len(out) >= 1000:
                break
        return out[:1000]

    def name(self, frame: int) -> str:
        """The file holding ``frame``."""
        return self._names[frame]

    def read(self, frame: int) -> bytes:
        """The bytes of ``frame``'s file."""
        name = self._names[frame]
        if self._zip is not None:
            return self._zip.read(name)
        with self._fs.open(f"{self._dir}/{name}", "rb") as f:
            return f.read()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if self._zip_file is not None:
            self._zip_file.close()
            self._zip_file = None

    def __enter__(self) -> OpenPoseFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
