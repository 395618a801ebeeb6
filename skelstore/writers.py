"""skelshop's writers (:mod:`skelstore.io` exports them): ``UnsegmentedWriter``,
``ShotSegmentedWriter`` and ``NullWriter``, on either layout (``layout=``)."""

from __future__ import annotations

from typing import Any, ClassVar

from skelstore.compression import Preset
from skelstore.engines import as_group
from skelstore.errors import FormatError, InputError
from skelstore.inputs import check_frame, check_num_kps, pose_name
from skelstore.layout import (
    FMT_VERSION,
    TIMELINE,
    shot_info,
    shot_names,
)
from skelstore.packed import PACKED, PackedWriter, writer_layout
from skelstore.packed import PartBuffer as _PackedParts
from skelstore.recovery import check_resumable, mark_in_progress, shot_done
from skelstore.storage import ArraySpec, Group, GroupSpec
from skelstore.trackwriter import ArraySettings, TrackWriter, track_specs


def _prepare_root(root: Group, fmt_type: str, num_kps: int | None) -> None:
    """Record what readers need if the caller has not (skelshop's add_fmt_metadata
    and add_metadata may still be called, before or after)."""
    defaults: dict[str, Any] = {"fmt_type": fmt_type, "fmt_ver": FMT_VERSION}
    if num_kps is not None:
        defaults["limbs"] = int(num_kps)
    missing = {k: v for k, v in defaults.items() if k not in root.attrs}
    if missing:
        root.attrs.update(missing)


def _max_kps(root: Group, num_kps: int | None) -> int | None:
    """The widest pose a writer accepts: ``num_kps``, else the root's ``limbs``."""
    if num_kps is not None:
        return num_kps
    limbs = root.attrs.get("limbs")
    if isinstance(limbs, int) and not isinstance(limbs, bool) and 0 < limbs <= 65536:
        return limbs
    return None


class NullWriter:
    """A writer that writes nothing (skelshop's ``NullWriter``)."""

    def __init__(self, h5f: Any = None, *args: Any, **kwargs: Any) -> None:
        pass

    def add_pose(self, frame_num: int, pose_id: int, pose: Any) -> None:
        pass

    def start_shot(self, start_frame: int | None = None) -> None:
        pass

    def register_frame(self, frame_num: int) -> None:
        pass

    def end_shot(self) -> None:
        pass


class _DumpWriter:
    """What both skelshop writers set up alike: the root (checked, not unfinished),
    its format attributes, the array settings, the layout and ``/timeline``."""

    fmt_type: ClassVar[str]

    def _set_up(
        self,
        h5f: Any,
        num_kps: int | None,
        compression: str | Preset | None,
        lossless_kwargs: dict[str, Any] | None,
        lossy_kwargs: dict[str, Any] | None,
        layout: str | None,
    ) -> None:
        self.h5f = as_group(h5f)
        check_resumable(self.h5f)
        self._where = f"{self.h5f.source}: "
        num_kps = check_num_kps(num_kps, self._where)
        self.num_kps = num_kps
        self.layout = writer_layout(self.h5f, layout)
        self.settings = ArraySettings.make(num_kps, compression, lossless_kwargs, lossy_kwargs)
        _prepare_root(self.h5f, self.fmt_type, num_kps)
        self.max_kps = _max_kps(self.h5f, num_kps)
        self.timeline_grp = self.h5f.require_group(TIMELINE)
        self.tracks: dict[int, TrackWriter] = {}


class UnsegmentedWriter(_DumpWriter):
    """Write a skeleton dump without shot segmentation (typically untracked poses).

    Each pose id gets a growable track under ``/timeline/poseN``; poses are
    buffered and appended in blocks of frames, not one resize per frame.
    """

    fmt_type = "unseg"

    def __init__(
        self,
        h5f: Any,
        num_kps: int | None = None,
        *,
        compression: str | Preset | None = None,
        lossless_kwargs: dict[str, Any] | None = None,
        lossy_kwargs: dict[str, Any] | None = None,
        block_frames: int = 4096,
        layout: str | None = None,
    ) -> None:
        """
        Args:
            h5f: the root to write into (skelstore group, h5py or zarr object).
            num_kps: keypoints per pose (sets chunking and the ``limbs`` attr).
            compression: a preset name (``none``, ``lossless``, ``lossless9``,
                ``lossy``, ``lossy9``).
            lossless_kwargs: skelshop's raw h5py filter settings for ``data`` and
                ``indices`` (dropped for tracks of fewer than 24 keypoints).
            lossy_kwargs: skelshop's raw h5py filter settings for ``data`` only.
            block_frames: poses buffered per track between appends (in the packed
                layout each append is a part of the track).
            layout: ``"skelshop"`` or ``"packed"``; see
                :func:`skelstore.packed.writer_layout` for what decides when omitted.
        """
        self._set_up(h5f, num_kps, compression, lossless_kwargs, lossy_kwargs, layout)
        self.block_frames = block_frames
        self.start_frame = 0
        self._ended = False
        self._packed: _PackedParts | None = None
        if self.layout == PACKED:
            self._packed = _PackedParts(self.h5f, self.timeline_grp, self.settings)
        mark_in_progress(self.h5f)

    def add_pose(self, frame_num: int, pose_id: int, pose: Any) -> None:
        """Add the pose of detection slot ``pose_id`` at ``frame_num``.

        Raises:
            InputError: after :meth:`end_shot`; a frame that is not an integer, is
                before the timeline's start or before the slot's last frame; a pose
                id that is not a non-negative integer; a pose that is not a
                ``(keypoints, 3)`` array of at most ``num_kps`` keypoints.
        """
        if self._ended or frame_num.__class__ is not int or frame_num < self.start_frame:
            frame_num = self._check_frame(frame_num)
        if self._packed is not None:
            if pose_id.__class__ is not int or pose_id < 0:
                pose_name(pose_id, self._where)  # raises InputError
            self._packed.add(frame_num, pose_id, pose, self.block_frames)
            return
        track = self.tracks.get(pose_id)
        if track is None or pose_id.__class__ is not int:
            track = self._track(pose_id)
        track.add(frame_num, pose)

    def _check_frame(self, frame_num: Any) -> int:
        if self._ended:
            raise InputError(
                f"{self._where}add_pose after end_shot(): an unsegmented dump has one shot"
            )
        frame = check_frame(frame_num, self._where)
        if frame < self.start_frame:
            raise InputError(
                f"{self._where}frame {frame} is before the timeline's start_frame "
                f"{self.start_frame} (start_shot)"
            )
        return frame

    def _track(self, pose_id: Any) -> TrackWriter:
        name = pose_name(pose_id, self._where)
        track = self.tracks.get(int(pose_id))
        if track is None:
            track = TrackWriter(
                self.timeline_grp,
                name,
                self.settings,
                growable=True,
                block=self.block_frames,
                where=f"{self.h5f.source}:/{TIMELINE}/{name}",
                max_kps=self.max_kps,
            )
            self.tracks[int(pose_id)] = track
        return track

    def start_shot(self, start_frame: int = 0) -> None:
        """Start the (only) shot; call once, before writing.

        Raises:
            InputError: ``start_frame`` is not a non-negative integer, or poses were
                added already (or the shot ended).
        """
        start = check_frame(start_frame, self._where, "start_frame")
        if self.tracks or self._ended:
            raise InputError(
                f"{self._where}start_shot() after poses were added: an unsegmented dump "
                "has one shot, started before writing"
            )
        self.start_frame = start

    def register_frame(self, frame_num: int) -> None:
        """Accepted for interface compatibility; unsegmented dumps ignore it."""

    def end_shot(self) -> None:
        """End the (only) shot: flush every track and set the timeline's frame range."""
        if self._packed is not None:
            self._packed.flush()
            last = max(self.start_frame - 1, self._packed.last_frame)
            end = last + 1
            self._packed.writer.set_shot(0, self.start_frame, max(end, self.start_frame))
            self.timeline_grp.attrs.update({"start_frame": self.start_frame, "end_frame": end})
            shot_done(self.h5f, 1)
            self._packed.writer.finish()
            return
        last = self.start_frame - 1
        for track in self.tracks.values():
            track.finish()
            if track.last_frame is not None:
                last = max(last, track.last_frame)
        # skelshop's end is (last pose frame + 1); with no poses at all it wrote 1,
        # which can precede start_frame: the range is then empty instead.
        self.timeline_grp.attrs.update({"start_frame": self.start_frame, "end_frame": last + 1})
        self._ended = True
        shot_done(self.h5f, 1)


class ShotSegmentedWriter(_DumpWriter):
    """Write a skeleton dump segmented into shots (typically tracked poses).

    Poses of the current shot are buffered per pose id and each track is written
    in one go when the shot ends.
    """

    fmt_type = "trackshots"

    def __init__(
        self,
        h5f: Any,
        num_kps: int | None = None,
        *,
        compression: str | Preset | None = None,
        lossless_kwargs: dict[str, Any] | None = None,
        lossy_kwargs: dict[str, Any] | None = None,
        layout: str | None = None,
    ) -> None:
        """Arguments as for :class:`UnsegmentedWriter`.

        The first shot is open from the start (``start_shot`` may still set its
        first frame); after :meth:`end_shot`, :meth:`start_shot` opens the next.
        Frames must not decrease within a shot: register frames and add their
        poses frame by frame, as skelshop's tracking pipeline does.

        Raises:
            InputError: ``num_kps`` is not an integer from 1 to 65536.
        """
        self._set_up(h5f, num_kps, compression, lossless_kwargs, lossy_kwargs, layout)
        self.shot_idx = 0
        self.shot_start = 0
        self.last_frame = 0
        self._packed: PackedWriter | None = None
        if self.layout == PACKED:
            self._packed = PackedWriter(self.h5f, self.timeline_grp, self.settings)
            self.h5f.add_close_hook(lambda ok: ok and self._finish_packed())
            if self._packed.shots:  # appending to a dump that already has shots
                self.shot_idx = self._packed.shots
                end = int(self._packed.arrays["shots"][self.shot_idx - 1][1])
                self.shot_start, self.last_frame = end, end - 1
        else:
            names = shot_names(self.timeline_grp)
            if names:  # appending to a dump that already has shots
                last = shot_info(self.timeline_grp, *names[-1])
                self.shot_idx = last.index + 1
                self.shot_start = last.end_frame
                self.last_frame = last.end_frame - 1
        #: The first frame the next start_shot may name (where the last shot ended).
        self._next_start = self.shot_start
        #: The smallest frame accepted now (no frame may go backwards in a shot).
        self._floor = self.shot_start
        self._open = True  # between start_shot (or the start) and end_shot
        self._seen = False  # a frame was registered or a pose added in this shot
        mark_in_progress(self.h5f, shots_done=self.shot_idx)

    def _finish_packed(self) -> None:
        if self._packed is not None and self.h5f.writable:
            self._packed.finish()

    def start_shot(self, start_frame: int | None = None) -> None:
        """Start a new shot (at ``start_frame``, or right after the previous one).

        Raises:
            InputError: ``start_frame`` is not a non-negative integer, or falls
                inside the previous shot; or the current shot has frames and was
                not ended (:meth:`end_shot`).
        """
        if self._open and self._seen:
            raise InputError(
                f"{self._where}start_shot() while shot{self.shot_idx} has frames; "
                "call end_shot() first"
            )
        if start_frame is not None:
            start = check_frame(start_frame, self._where, "start_frame")
            if start < self._next_start:
                raise InputError(
                    f"{self._where}start_frame {start} falls inside the previous shot "
                    f"(which ends at frame {self._next_start}); shots may not overlap"
                )
            self.shot_start, self.last_frame = start, start - 1
        self._floor = self.shot_start
        self._open = True
        self._seen = False

    def add_pose(self, frame_num: int, pose_id: int, pose: Any) -> None:
        """Add the pose of track ``pose_id`` at ``frame_num``.

        Raises:
            InputError: outside a shot (after :meth:`end_shot`, before
                :meth:`start_shot`); a frame that is not an integer, or is before
                the shot's start or the last frame of the shot; a pose id that is
                not a non-negative integer; a pose that is not a ``(keypoints, 3)``
                array of at most ``num_kps`` keypoints.
        """
        if frame_num.__class__ is not int or frame_num < self._floor or not self._open:
            frame_num = self._check_frame(frame_num, "add_pose")
        track = self.tracks.get(pose_id)
        if track is None or pose_id.__class__ is not int:
            track = self._track(pose_id)
        track.add(frame_num, pose)
        self.last_frame = self._floor = frame_num
        self._seen = True

    def _check_frame(self, frame_num: Any, call: str) -> int:
        if not self._open:
            raise InputError(
                f"{self._where}{call}({frame_num!r}, ...) outside a shot: shot"
                f"{self.shot_idx - 1} has ended; call start_shot() first"
            )
        frame = check_frame(frame_num, self._where)
        if frame < self.shot_start:
            raise InputError(
                f"{self._where}frame {frame} is before shot{self.shot_idx}'s start_frame "
                f"{self.shot_start}"
            )
        if frame < self._floor:
            raise InputError(
                f"{self._where}frame {frame} given after frame {self._floor}; frames may "
                "not go backwards in a shot"
            )
        return frame

    def _track(self, pose_id: Any) -> TrackWriter:
        name = pose_name(pose_id, self._where)
        track = self.tracks.get(int(pose_id))
        if track is None:
            where = f"{self.h5f.source}:/{TIMELINE}/shot{self.shot_idx}/{name}"
            track = TrackWriter(None, name, self.settings, where=where, max_kps=self.max_kps)
            self.tracks[int(pose_id)] = track
        return track

    def register_frame(self, frame_num: int) -> None:
        """Register ``frame_num`` as part of the current shot.

        Raises:
            InputError: as for :meth:`add_pose`.
        """
        if frame_num.__class__ is not int or frame_num < self._floor or not self._open:
            frame_num = self._check_frame(frame_num, "register_frame")
        self.last_frame = self._floor = frame_num
        self._seen = True

    def end_shot(self) -> None:
        """Write the current shot: its group, attributes and every pose track."""
        end = max(self.last_frame + 1, self.shot_start)
        if self._packed is not None:
            parts = []
            for pose_id in sorted(self.tracks):
                writer = self.tracks[pose_id]
                if writer.start_frame is not None:
                    track = writer.take_track()
                    if track.start_frame < self.shot_start or track.end_frame > end:
                        raise FormatError(
                            f"{self.h5f.source}: pose {pose_id} has frames "
                            f"{track.start_frame}:{track.end_frame} outside its shot "
                            f"{self.shot_start}:{end}"
                        )
                    parts.append((self.shot_idx, pose_id, track))
            self._packed.append(parts, [(self.shot_start, end)])
        else:
            self._write_shot(end)
        self.tracks = {}
        self.shot_idx += 1
        self.shot_start = self.last_frame + 1
        self._next_start = self._floor = end
        self._open = self._seen = False
        shot_done(self.h5f, self.shot_idx)  # flushed: a crash now loses no finished shot

    def _write_shot(self, end: int) -> None:
        """Write the current shot in skelshop's layout."""
        name = f"shot{self.shot_idx}"
        # the shot and all its tracks in one batch: one round of writes on Zarr
        nodes: list[GroupSpec | ArraySpec] = [
            GroupSpec(name, {"start_frame": self.shot_start, "end_frame": end})
        ]
        min_chunk_bytes = self.timeline_grp.min_chunk_bytes
        for pose_id in sorted(self.tracks):
            writer = self.tracks[pose_id]
            if writer.start_frame is not None:
                track = writer.take_track()
                nodes += track_specs(f"{name}/pose{pose_id}", track, self.settings, min_chunk_bytes)
        self.timeline_grp.write_many(nodes)
