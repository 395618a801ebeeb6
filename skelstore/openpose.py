"""OpenPose's per-frame JSON output: import into a dump, and export a dump back to it.

OpenPose (``--write_json DIR``) writes one ``<name>_<frame:012d>_keypoints.json``
per frame, holding ``{"version": 1.3, "people": [...]}``; each person has flat
``[x0, y0, c0, x1, ...]`` lists ``pose_keypoints_2d``, ``hand_left_keypoints_2d``,
``hand_right_keypoints_2d`` and ``face_keypoints_2d`` (empty when that detector
was off) and ``person_id`` (``[-1]`` unless OpenPose ran with ``--tracking``).

**Mapping.** A pose of mode ``M`` stacks the parts :data:`PARTS` lists for ``M``,
in that order (pose, left hand, right hand, face), then pads with absent
keypoints (0, 0, 0) to ``LIMBS[M]``:

| mode | parts (keypoints) | stacked | limbs |
| --- | --- | --- | --- |
| BODY_25 | pose (25) | 25 | 25 |
| BODY_25_HANDS | pose (25), left hand (21), right hand (21) | 67 | 67 |
| BODY_25_FACE | pose (25), face (70) | 95 | 96 |
| BODY_25_ALL | pose (25), left hand (21), right hand (21), face (70) | 137 | 138 |
| BODY_135 | pose (135) | 135 | 138 |
| FACE | face (70) | 70 | 70 |

An empty part list reads as absent keypoints. Keypoints with confidence 0 are not
stored (the dump's rule), so they come back as ``0, 0, 0``.

**Import** (:func:`import_openpose`) reads a directory or a ``.zip`` (local or any
fsspec URL) and writes, streaming frame by frame in bounded memory:

* by default an ``unseg`` dump whose pose id is the person's position in
  ``people`` (a detection slot, as skelshop's own import);
* with ``tracked=True`` a ``trackshots`` dump of one shot whose pose id is
  OpenPose's ``person_id`` (written by ``--tracking``); a person without one
  (``-1``) or two people with the same id in a frame are errors.

The timeline runs from the first file's frame number to the last; ``num_frames``
is the last frame + 1. A frame number missing in between (OpenPose writes a file
for every frame, even an empty one, so a gap is a lost file) raises
:class:`~skelstore.errors.MissingFramesError`, or with ``missing="empty"`` is
imported as a frame without people (their number is kept in the root attribute
``openpose_missing_frames``). Files not named ``*_keypoints.json`` are ignored.

**Export** (:func:`export_openpose`) writes one file per frame of the timeline (a
directory, or a ``.zip``), named after the dump's ``video`` attribute: people of
an ``unseg`` dump in pose id order with ``person_id`` ``[-1]``; people of a
``trackshots`` dump in pose id order with ``person_id`` ``[pose id]``. Parts of
the mode get full lists, the others ``[]``; numbers are the shortest decimal that
reads back as the same float32. A dump storing a keypoint beyond the mode's parts
(the padding rows of the table above, e.g. BODY_25_ALL's keypoint 137) is refused
before anything is written: OpenPose's lists cannot hold it. Importing an export
gives the same dump, and exporting an import gives the same files as far as a dump
can hold them: trailing
people with no keypoint at all (unseg) or people with no keypoint (tracked) are
not kept, nor x/y of keypoints with confidence 0, nor an empty part list of a
mode's part (it comes back as zeros).
"""

from __future__ import annotations

import json
import os
import re
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skelstore.engines import get_engine, guess_engine
from skelstore.engines import open as open_store
from skelstore.errors import (
    EngineError,
    FormatError,
    MissingFramesError,
    OpenPoseError,
    UnknownModeError,
)
from skelstore.layout import TIMELINE
from skelstore.pose import LIMBS, MODES
from skelstore.storage import Group
from skelstore.trackwriter import ArraySettings, TrackWriter
from skelstore.urls import is_local, local_path, to_fs

__all__ = [
    "PARTS",
    "ExportReport",
    "ImportReport",
    "OpenPoseFrames",
    "export_openpose",
    "import_openpose",
    "parse_people",
]

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
#: Frames a track buffers before it is appended (bounds the importer's memory).
IMPORT_BLOCK_FRAMES = 1024
#: Frames read per block when exporting.
EXPORT_BLOCK_FRAMES = 1024
#: The most frames (one file each) an export writes unless told otherwise: about
#: four days of video at 30 fps. A dump declaring more (its ``num_frames``, or its
#: shots' frame ranges, which are only attributes) is refused; raise it with
#: ``max_frames=`` / ``--max-frames``.
MAX_EXPORT_FRAMES = 10_000_000

_NAME = re.compile(r"^(?P<base>.*?)(?P<num>\d+)_keypoints\.json$")


def _check_mode(mode: str) -> None:
    if mode not in PARTS:
        raise UnknownModeError(f"unknown pose mode {mode!r}; known modes: {', '.join(MODES)}")


# ---------------------------------------------------------------- reading JSON


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


# ---------------------------------------------------------------- import


@dataclass
class ImportReport:
    """What :func:`import_openpose` did."""

    src: str
    dst: str
    mode: str
    fmt_type: str
    frames: int
    poses: int
    tracks: int
    missing_frames: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line: what, how much, how fast."""
        rate = self.frames / self.seconds if self.seconds else 0.0
        gaps = (
            f", {len(self.missing_frames)} missing frame(s) left empty"
            if (self.missing_frames)
            else ""
        )
        return (
            f"{self.src} -> {self.dst} [{self.fmt_type}, {self.mode}]: {self.frames} frames, "
            f"{self.poses} poses, {self.tracks} tracks{gaps} in {self.seconds:.1f} s "
            f"({rate:.0f} frames/s)"
        )


class _OneShotWriter:
    """A ``trackshots`` dump of one shot, written track by track in appended blocks
    (tracks idle for a block of frames are flushed, so memory stays bounded)."""

    def __init__(
        self,
        root: Group,
        limbs: int,
        compression: str | None,
        start: int,
        layout: str | None = None,
    ) -> None:
        from skelstore.packed import PACKED, PartBuffer, writer_layout
        from skelstore.recovery import mark_in_progress

        self.root = root
        self.settings = ArraySettings.make(limbs, compression)
        self.start = start
        self.tracks: dict[int, TrackWriter] = {}
        self.packed: PartBuffer | None = None
        chosen = writer_layout(root, layout)
        timeline = root.require_group(TIMELINE)
        if chosen == PACKED:  # the one shot's tracks in parts of a block of frames each
            self.packed = PartBuffer(root, timeline, self.settings, shot=0)
        else:
            self.shot = timeline.create_group("shot0", {"start_frame": start})
        mark_in_progress(root)

    def add_pose(self, frame: int, pose_id: int, pose: np.ndarray) -> None:
        if self.packed is not None:
            self.packed.add(frame, pose_id, pose, IMPORT_BLOCK_FRAMES)
            return
        track = self.tracks.get(pose_id)
        if track is None:
            track = self.tracks[pose_id] = TrackWriter(
                self.shot,
                f"pose{pose_id}",
                self.settings,
                growable=True,
                block=IMPORT_BLOCK_FRAMES,
            )
        track.add(frame, pose)

    def flush_idle(self, frame: int) -> None:
        """Append the buffer of every track not seen at ``frame``."""
        if self.packed is not None:
            self.packed.flush_idle(frame)
        for track in self.tracks.values():
            if track.last_frame is not None and track.last_frame < frame:
                track.flush()

    def finish(self, end: int) -> None:
        from skelstore.recovery import shot_done

        if self.packed is not None:
            self.packed.flush()
            self.packed.writer.set_shot(0, self.start, max(end, self.start))
            shot_done(self.root, 1)
            self.packed.writer.finish()
            return
        for track in self.tracks.values():
            track.finish()
        self.shot.attrs["end_frame"] = end
        shot_done(self.root, 1)


def import_openpose(
    src: str,
    dst: str,
    *,
    mode: str = "BODY_25",
    tracked: bool = False,
    missing: str = "error",
    compression: str | None = None,
    engine: str | None = None,
    zarr_format: int | None = None,
    video: str | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    layout: str | None = None,
) -> ImportReport:
    """Import OpenPose's JSON files (a directory or ``.zip``) into a new dump at ``dst``.

    Args:
        src: directory or ``.zip`` of ``*_keypoints.json`` (path or fsspec URL).
        dst: the dump to write (any engine, any URL); written under a temporary
            name and published only when complete.
        mode: the pose mode, which chooses the parts stacked (see :data:`PARTS`).
        tracked: pose id = OpenPose's ``person_id`` in a ``trackshots`` dump of one
            shot, instead of the position in ``people`` in an ``unseg`` dump.
        missing: ``"error"`` (default): a missing frame raises
            :class:`~skelstore.errors.MissingFramesError`; ``"empty"``: it is
            imported as a frame without people.
        compression: a compression preset for the pose arrays.
        engine: the destination engine (guessed from ``dst``'s name otherwise).
        zarr_format: 2 or 3 for a Zarr destination.
        video: the root's ``video`` attribute (default: the files' base name + ``.mp4``).
        storage_options: fsspec options for both ends.
        overwrite: replace an existing ``dst``, if it is a dump (see
            :func:`skelstore.staging.check_replaceable`).
        progress: show a progress bar (tqdm) over frames.
        layout: ``"skelshop"`` or ``"packed"`` (default: the destination engine's,
            see :func:`skelstore.packed.writer_layout`).

    Returns:
        An :class:`ImportReport`.

    Raises:
        OpenPoseError: a file cannot be imported (the message names it and the
            problem); MissingFramesError (one) for gaps.
        UnknownModeError: ``mode`` is not a known pose mode.
        EngineError: ``dst`` exists and ``overwrite`` is false.
        OverwriteRefusedError: ``overwrite`` met something that is not a dump.
        WriteError: writing the dump failed (nothing is left of it).
    """
    from tqdm.auto import tqdm

    from skelstore.dump import add_fmt_metadata, add_metadata
    from skelstore.io import UnsegmentedWriter
    from skelstore.staging import Destination

    _check_mode(mode)
    if missing not in ("error", "empty"):
        raise ValueError(f"missing must be 'error' or 'empty', not {missing!r}")
    t0 = time.perf_counter()
    src, dst = os.fspath(src), os.fspath(dst)
    dst_engine = get_engine(engine) if engine else guess_engine(dst, "w", hint="engine=...")
    stage = Destination(dst, storage_options, overwrite=overwrite)
    limbs = LIMBS[mode]
    poses = 0
    with OpenPoseFrames(src, storage_options) as files:
        gaps = files.missing()
        if gaps and missing == "error":
            raise MissingFramesError(
                f"{src}: frame(s) {', '.join(map(str, gaps[:10]))}"
                f"{' ...' if len(gaps) > 10 else ''} missing between "
                f"{files.frames[0]} and {files.frames[-1]} (pass missing='empty' to "
                "import them as frames without people)",
                path=src,
                missing=gaps,
            )
        first, last = files.frames[0], files.frames[-1]
        present = set(files.frames)
        pose_ids: set[int] = set()
        version: Any = None
        with stage:
            with open_store(
                stage.path, "w", engine=dst_engine.name, zarr_format=zarr_format
            ) as root:
                fmt_type = "trackshots" if tracked else "unseg"
                add_fmt_metadata(root, fmt_type)
                writer: Any
                if tracked:
                    writer = _OneShotWriter(root, limbs, compression, first, layout)
                else:
                    writer = UnsegmentedWriter(
                        root,
                        num_kps=limbs,
                        compression=compression,
                        block_frames=IMPORT_BLOCK_FRAMES,
                        layout=layout,
                    )
                    writer.start_shot(first)
                with tqdm(
                    total=last - first + 1,
                    disable=not progress,
                    unit="frame",
                    desc=os.path.basename(src.rstrip("/")),
                ) as bar:
                    for frame in range(first, last + 1):
                        if frame in present:
                            where = f"{src}: {files.name(frame)}"
                            people, ver = parse_people(
                                files.read(frame), mode, where, tracked=tracked
                            )
                            if version is None:
                                version = ver
                            for pose_id, kps in people:
                                writer.add_pose(frame, pose_id, kps)
                                pose_ids.add(pose_id)
                            poses += len(people)
                        if tracked and (frame - first) % IMPORT_BLOCK_FRAMES == 0:
                            writer.flush_idle(frame)
                        bar.update(1)
                if tracked:
                    writer.finish(last + 1)
                else:
                    writer.end_shot()
                add_metadata(root, video or f"{files.basename}.mp4", last + 1, mode, limbs)
                extra: dict[str, Any] = {"imported_from": "openpose-json"}
                if version is not None:
                    extra["op_ver"] = version
                if gaps:
                    extra["openpose_missing_frames"] = len(gaps)
                root.attrs.update(extra)
                tracks = len(pose_ids)
            stage.publish()
    return ImportReport(
        src=src,
        dst=dst,
        mode=mode,
        fmt_type="trackshots" if tracked else "unseg",
        frames=last - first + 1,
        poses=poses,
        tracks=tracks,
        missing_frames=gaps,
        seconds=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------- export


@dataclass
class ExportReport:
    """What :func:`export_openpose` did."""

    src: str
    dst: str
    frames: int
    people: int
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.src} -> {self.dst} [openpose-json]: {self.frames} files, "
            f"{self.people} people in {self.seconds:.1f} s"
        )


def _numbers(values: np.ndarray) -> str:
    """Comma-separated shortest float32 decimals (``NaN``/``Infinity`` as Python's json)."""
    text = ",".join(values.astype(np.float32).astype(str).tolist())
    if "n" in text:  # nan, inf (never in exponents: those are 'e')
        text = re.sub(
            r"-?inf|nan",
            lambda m: {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[m[0]],
            text,
        )
    return text


def _person_json(kps: np.ndarray, mode: str, person_id: int) -> str:
    parts: dict[str, str] = {}
    row = 0
    for key, count in PARTS[mode]:
        parts[key] = _numbers(kps[row : row + count].reshape(-1))
        row += count
    body = ",".join(f'"{k}":[{parts.get(k, "")}]' for k in PERSON_KEYS)
    return f'{{"person_id":[{person_id}],{body}}}'


def _frame_people(
    keypoints: np.ndarray, pose_ids: np.ndarray, tracked: bool
) -> list[tuple[int, np.ndarray]]:
    """``(person_id, keypoints)`` of one frame's people (see the module docs)."""
    stored = (keypoints[..., 2] != 0).any(axis=-1)
    if tracked:
        return [(int(pose_ids[s]), keypoints[s]) for s in np.nonzero(stored)[0]]
    if not stored.any():
        return []
    by_id = {int(p): s for s, p in enumerate(pose_ids)}
    top = int(pose_ids[stored].max())
    zeros = np.zeros(keypoints.shape[1:], dtype=keypoints.dtype)
    return [(-1, keypoints[by_id[i]] if i in by_id else zeros) for i in range(top + 1)]


class _Out:
    """Where exported files go: a directory (local or URL), or a ``.zip`` (staged
    and published whole by :meth:`close`, see :class:`skelstore.staging.Destination`)."""

    def __init__(self, dst: str, storage_options: dict[str, Any] | None, overwrite: bool):
        from skelstore.staging import Destination

        self.dst = dst
        self.fs, self.path = to_fs(dst, storage_options)
        self.is_zip = dst.lower().endswith(".zip")
        self.stage: Destination | None = None
        if self.is_zip:
            self.stage = Destination(
                dst, storage_options, overwrite=overwrite, accept="openpose-zip", suffix=".zip"
            )
            self._buf: Any = open(self.stage.path, "xb")  # noqa: SIM115 - closed by close()
            self.zip = zipfile.ZipFile(self._buf, "w", compression=zipfile.ZIP_DEFLATED)
        else:
            if self.fs.exists(self.path):
                clash = [
                    p for p in self.fs.ls(self.path, detail=False) if p.endswith("_keypoints.json")
                ]
                if clash and not overwrite:
                    raise EngineError(
                        f"{dst}: already holds *_keypoints.json files (pass overwrite=True)"
                    )
            if is_local(dst):
                os.makedirs(local_path(dst), exist_ok=True)
            else:
                self.fs.makedirs(self.path, exist_ok=True)

    def write(self, name: str, text: str) -> None:
        if self.is_zip:
            self.zip.writestr(name, text)
        else:
            with self.fs.open(f"{self.path.rstrip('/')}/{name}", "wb") as f:
                f.write(text.encode())

    def close(self, exc: BaseException | None = None) -> None:
        """Finish: publish a staged zip, or (``exc``, the export failed) discard it."""
        if self.stage is None:
            return
        with self.stage:
            try:
                self.zip.close()
            finally:
                self._buf.close()
            if exc is None:
                self.stage.publish()
            else:
                self.stage.discard()


def _timeline_range(root: Group) -> tuple[int, int, bool]:
    """``(first frame, end frame, tracked)`` of a dump, for export."""
    from skelstore.layout import MAX_FRAME, frame_attrs, shot_info, shot_names

    fmt_type = root.attrs.get("fmt_type")
    timeline = root.get(TIMELINE)
    if not isinstance(timeline, Group) or fmt_type not in ("unseg", "trackshots"):
        raise FormatError(f"{root.source}: not a skeleton dump (fmt_type={fmt_type!r})")
    if root.attrs.get("layout") is not None:
        from skelstore.packed_ops import dump_shots

        shots = dump_shots(root)
        start = shots[0].start_frame if shots else 0
        end = shots[-1].end_frame if shots else 0
    elif fmt_type == "unseg":
        start, end = frame_attrs(timeline)
    else:
        names = shot_names(timeline)
        if names:
            start = shot_info(timeline, *names[0]).start_frame
            end = shot_info(timeline, *names[-1]).end_frame
        else:
            start = end = 0
    n = root.attrs.get("num_frames")
    if isinstance(n, int) and not isinstance(n, bool):
        if not 0 <= n <= MAX_FRAME:
            raise FormatError(
                f"{root.source}: num_frames {n} is not a frame count (0 to {MAX_FRAME})"
            )
        end = max(end, n)
    return start, end, fmt_type == "trackshots"


def _refuse_padding(root: Group, mode: str) -> None:
    """Raise if the dump stores a keypoint beyond the mode's OpenPose parts (the
    padding of skelshop's limb counts), which OpenPose's lists cannot hold."""
    from skelstore.layout import first_stored_at_or_beyond
    from skelstore.pose import SKELETONS

    skel = SKELETONS[mode]
    pad = skel.padding()
    if not pad:
        return
    hit = first_stored_at_or_beyond(root, pad.start)
    if hit is not None:
        where, kp = hit
        name = f" ({skel.keypoints[kp]})" if kp < skel.limbs else ""
        raise FormatError(
            f"{where}: stores keypoint {kp}{name}, but OpenPose JSON of mode {mode} holds "
            f"keypoints 0..{pad.start - 1} only (skelshop's {skel.limbs} keypoints of "
            f"{mode} leave {len(pad)} beyond OpenPose's parts); refusing to drop it"
        )


def export_openpose(
    src: Any,
    dst: str,
    *,
    basename: str | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    max_frames: int | None = MAX_EXPORT_FRAMES,
) -> ExportReport:
    """Write a dump as OpenPose JSON files, one per frame (the inverse of
    :func:`import_openpose`; see the module docs for what a dump cannot carry).

    Args:
        src: the dump (path, URL, skelstore group, h5py or zarr object).
        dst: a directory (created if missing; local or fsspec URL) or a ``.zip``.
        basename: the files' prefix (default: the dump's ``video`` attribute
            without its extension).
        storage_options: fsspec options for both ends.
        overwrite: write into a directory that already holds ``*_keypoints.json``
            files, or replace an existing zip.
        progress: show a progress bar (tqdm) over frames.
        max_frames: refuse a dump spanning more frames than this (one file is
            written per frame, also for frames without people, up to the dump's
            ``num_frames``); ``None``: no limit.

    Raises:
        FormatError: ``src`` is not a skeleton dump, or its mode is unknown, or it
            stores a keypoint OpenPose's lists cannot hold (the padding keypoints of
            BODY_25_ALL, BODY_25_FACE and BODY_135, see
            :attr:`skelstore.pose.Skeleton.parts`), or spans more than
            ``max_frames`` frames: refused before anything is written.
        EngineError: ``dst`` holds an earlier export and ``overwrite`` is false.
    """
    from skelstore.engines import as_group

    if isinstance(src, (str, os.PathLike)):
        with open_store(os.fspath(src), "r", storage_options=storage_options) as root:
            return _export(
                root,
                os.fspath(src),
                os.fspath(dst),
                basename,
                storage_options,
                overwrite,
                progress,
                max_frames,
            )
    root = as_group(src)
    return _export(
        root,
        root.source,
        os.fspath(dst),
        basename,
        storage_options,
        overwrite,
        progress,
        max_frames,
    )


def _export(
    root: Group,
    src: str,
    dst: str,
    basename: str | None,
    storage_options: dict[str, Any] | None,
    overwrite: bool,
    progress: bool,
    max_frames: int | None = MAX_EXPORT_FRAMES,
) -> ExportReport:
    from tqdm.auto import tqdm

    from skelstore.dense import read_poses

    t0 = time.perf_counter()
    mode = root.attrs.get("mode")
    if not isinstance(mode, str) or mode not in PARTS:
        raise UnknownModeError(
            f"{root.source}: cannot export pose mode {mode!r} to OpenPose JSON; "
            f"known modes: {', '.join(MODES)}"
        )
    limbs = root.attrs.get("limbs")
    if limbs is not None and limbs != LIMBS[mode]:
        raise FormatError(
            f"{root.source}: limbs {limbs!r} is not {LIMBS[mode]}, the keypoints of mode "
            f"{mode} (a legacy skelshop layout?); cannot split it into OpenPose's lists"
        )
    _refuse_padding(root, mode)
    first, end, tracked = _timeline_range(root)
    if max_frames is not None and end - first > max_frames:
        raise FormatError(
            f"{root.source}: spans frames {first}:{end} ({end - first} frames, one file "
            f"each), more than the limit of {max_frames}; pass max_frames= (--max-frames) "
            "to export it anyway"
        )
    if basename is None:
        video = root.attrs.get("video")
        basename = os.path.splitext(str(video))[0] if video else "video"
    version = root.attrs.get("op_ver", DEFAULT_VERSION)
    version_json = json.dumps(version)
    people_total = 0
    out = _Out(dst, storage_options, overwrite)
    try:
        with tqdm(
            total=end - first,
            disable=not progress,
            unit="frame",
            desc=os.path.basename(dst.rstrip("/")),
        ) as bar:
            for f0 in range(first, end, EXPORT_BLOCK_FRAMES):
                f1 = min(end, f0 + EXPORT_BLOCK_FRAMES)
                block = read_poses(root, frames=slice(f0, f1))
                for i, frame in enumerate(range(f0, f1)):
                    people = _frame_people(block.keypoints[i], block.pose_ids, tracked)
                    people_total += len(people)
                    body = ",".join(_person_json(k, mode, pid) for pid, k in people)
                    out.write(
                        f"{basename}_{frame:012d}_keypoints.json",
                        f'{{"version":{version_json},"people":[{body}]}}',
                    )
                bar.update(f1 - f0)
    except BaseException as exc:
        out.close(exc)
        raise
    out.close()
    return ExportReport(
        src=src,
        dst=dst,
        frames=end - first,
        people=people_total,
        seconds=time.perf_counter() - t0,
    )
