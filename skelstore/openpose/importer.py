"""OpenPose JSON into a dump, streamed frame by frame (:func:`import_openpose`)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skelstore.engines import get_engine, guess_engine
from skelstore.engines import open as open_store
from skelstore.errors import (
    MissingFramesError,
)
from skelstore.layout import TIMELINE
from skelstore.openpose.frames import OpenPoseFrames, check_mode, parse_people
from skelstore.pose import LIMBS
from skelstore.storage import Group
from skelstore.trackwriter import ArraySettings, TrackWriter

#: Frames a track buffers before it is appended (bounds the importer's memory).
IMPORT_BLOCK_FRAMES = 1024


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

    check_mode(mode)
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
