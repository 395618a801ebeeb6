"""What the exporters share: a dump's skeleton, its pose tracks as dense blocks, and
local files for libraries that only write (or read) local paths."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelstore.dense import Poses, read_poses
from skelstore.engines import as_group
from skelstore.engines import open as open_store
from skelstore.errors import EngineError, FormatError, InputError, NotFoundError
from skelstore.framerange import check_frames
from skelstore.layout import TIMELINE, frame_attrs, list_shots
from skelstore.packed import is_packed
from skelstore.pose import CUSTOM_MODE, SKELETONS, keypoint_names
from skelstore.staging import Destination
from skelstore.storage import Group
from skelstore.urls import is_local, local_path, split_suffix, to_fs

__all__ = [
    "DumpSkeleton",
    "PoseTrack",
    "Segment",
    "check_suffix",
    "dump_skeleton",
    "local_input",
    "local_output",
    "open_dump",
    "segments",
    "track_name",
    "tracks",
]


@dataclass(frozen=True)
class DumpSkeleton:
    """A dump's keypoints: ``names`` (unique), ``edges`` (index pairs), ``mode``,
    the padding keypoints (``padding``, which OpenPose never fills) and the
    ``video`` attribute."""

    mode: str | None
    names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    padding: range
    video: str | None

    @property
    def limbs(self) -> int:
        return len(self.names)


def dump_skeleton(root: Group) -> DumpSkeleton:
    """The skeleton of a dump: its mode's (:data:`skelstore.pose.SKELETONS`), the
    ``keypoint_names``/``skeleton_edges`` attributes of a :data:`CUSTOM_MODE` dump,
    or ``kp0..`` without edges otherwise.

    Raises:
        FormatError: no usable ``limbs`` attribute.
    """
    attrs = root.attrs
    mode = attrs.get("mode")
    mode = mode if isinstance(mode, str) else None
    limbs = attrs.get("limbs")
    if not isinstance(limbs, int) or isinstance(limbs, bool):
        skel = SKELETONS.get(mode or "")
        limbs = skel.limbs if skel else None
    if not isinstance(limbs, int) or not 0 < limbs <= 65536:
        raise FormatError(f"{root.source}: bad or missing 'limbs' attribute ({limbs!r})")
    video = attrs.get("video")
    video = str(video) if video is not None else None
    skel = SKELETONS.get(mode or "")
    if skel is not None and skel.limbs == limbs:
        return DumpSkeleton(mode, skel.keypoints, skel.edges, skel.padding(), video)
    names = tuple(keypoint_names(mode, limbs, attrs.get("keypoint_names")))
    edges: tuple[tuple[int, int], ...] = ()
    raw = attrs.get("skeleton_edges") if mode == CUSTOM_MODE else None
    if isinstance(raw, list):
        try:
            edges = tuple((int(a), int(b)) for a, b in raw)
        except (TypeError, ValueError):
            edges = ()
        if not all(0 <= a < limbs and 0 <= b < limbs for a, b in edges):
            edges = ()
    return DumpSkeleton(mode, names, edges, range(0), video)


@contextlib.contextmanager
def open_dump(src: Any, storage_options: dict[str, Any] | None) -> Iterator[tuple[Group, str]]:
    """``(root, name)`` of a dump given as a path, URL or open object."""
    if isinstance(src, (str, os.PathLike)):
        with open_store(os.fspath(src), "r", storage_options=storage_options) as root:
            yield root, os.fspath(src)
    else:
        root = as_group(src)
        yield root, root.source


def track_name(shot: int | None, pose_id: int) -> str:
    """The name of a pose track in exports: ``shotS_poseP`` (a pose id within a
    shot of a ``trackshots`` dump) or ``poseP`` (an ``unseg`` dump's slot)."""
    return f"pose{pose_id}" if shot is None else f"shot{shot}_pose{pose_id}"


@dataclass
class Segment:
    """A shot (``shot`` N) or an unsegmented timeline (``shot`` None) as dense arrays."""

    shot: int | None
    poses: Poses


def segments(
    root: Group, frames: slice | None = None, shot: int | None = None
) -> Iterator[Segment]:
    """The dump's shots (or its unsegmented timeline) within ``frames`` (or the one
    ``shot``), one dense :class:`~skelstore.dense.Poses` each.

    Raises:
        NotFoundError: no ``shotN`` for ``shot``; FormatError: not a skeleton dump.
        FrameRangeError: ``frames`` is reversed or empty, or misses the dump
            (:func:`skelstore.framerange.check_frames`).
    """
    fmt_type = root.attrs.get("fmt_type")
    timeline = root.get(TIMELINE)
    if not isinstance(timeline, Group) or fmt_type not in ("unseg", "trackshots"):
        raise FormatError(f"{root.source}: not a skeleton dump (fmt_type={fmt_type!r})")
    if frames is not None:
        check_frames(root, frames)
    sel = frames or slice(None)
    if fmt_type == "unseg":
        if shot is not None:
            raise NotFoundError(f"{root.source}: no shot{shot} in /timeline (an unseg dump)")
        start, end = frame_attrs(timeline)
        a = start if sel.start is None else max(start, int(sel.start))
        b = end if sel.stop is None else min(end, int(sel.stop))
        if a < b:
            yield Segment(None, read_poses(root, frames=slice(a, b)))
        return
    shots = _shot_ranges(root, timeline)
    if shot is not None:
        shots = [s for s in shots if s[0] == shot]
        if not shots:
            raise NotFoundError(f"{root.source}: no shot{shot} in /timeline")
    for index, start, end in shots:
        a = start if sel.start is None else max(start, int(sel.start))
        b = end if sel.stop is None else min(end, int(sel.stop))
        if a < b:
            yield Segment(index, read_poses(root, frames=slice(a, b)))


def _shot_ranges(root: Group, timeline: Group) -> list[tuple[int, int, int]]:
    """``(index, start_frame, end_frame)`` of every shot, in either layout."""
    if is_packed(root):
        from skelstore.packed_read import PackedTimeline

        table = PackedTimeline(root, timeline).shots
        return [(i, int(s), int(e)) for i, (s, e) in enumerate(table)]
    return [(s.index, s.start_frame, s.end_frame) for s in list_shots(timeline)]


@dataclass
class PoseTrack:
    """One pose track (a pose id within a shot) over the frames exported.

    ``frames`` are the absolute frame numbers of its rows; ``keypoints`` is
    ``(rows, limbs, 3)`` float32 x, y, confidence, 0 where absent.
    """

    name: str
    shot: int | None
    pose_id: int
    frames: np.ndarray
    keypoints: np.ndarray


def tracks(segment: Segment) -> Iterator[PoseTrack]:
    """The pose tracks of a segment, in pose id order."""
    p = segment.poses
    for slot, pose_id in enumerate(p.pose_ids):
        rows = np.nonzero(p.present[:, slot])[0]
        if rows.size == 0:
            continue
        yield PoseTrack(
            track_name(segment.shot, int(pose_id)),
            segment.shot,
            int(pose_id),
            p.frames[rows],
            p.keypoints[rows, slot],
        )


def check_suffix(dst: str, suffixes: tuple[str, ...], what: str) -> None:
    """Raise :class:`EngineError` unless ``dst`` ends in one of ``suffixes``."""
    suffix = split_suffix(dst) or os.path.splitext(dst)[1].lower()
    if suffix not in suffixes:
        raise EngineError(f"{dst}: name the {what} file *{' or *'.join(suffixes)}")


@contextlib.contextmanager
def local_output(
    dst: str, storage_options: dict[str, Any] | None, overwrite: bool
) -> Iterator[str]:
    """A local path to write one file to, published at ``dst`` (a path or fsspec URL)
    only if the block succeeds (:class:`skelstore.staging.Destination`: beside a
    local ``dst`` and renamed, or uploaded to a remote one).

    Raises:
        EngineError: ``dst`` exists and ``overwrite`` is false.
        OverwriteRefusedError: ``dst`` is a directory.
    """
    with Destination(dst, storage_options, overwrite=overwrite, accept="file") as out:
        yield out.path
        out.publish()


@contextlib.contextmanager
def local_input(src: str, storage_options: dict[str, Any] | None) -> Iterator[str]:
    """A local path holding ``src``: ``src`` itself, or a download of a remote one
    (keeping its file name, which tells readers the format).

    Raises:
        NotFoundError: ``src`` does not exist.
    """
    if is_local(src):
        path = local_path(src)
        if not os.path.exists(path):
            raise NotFoundError(f"{src}: no such file")
        yield path
        return
    fs, path = to_fs(src, storage_options)
    if not fs.exists(path):
        raise NotFoundError(f"{src}: no such file")
    tmpdir = tempfile.mkdtemp(prefix="skelstore-import-")
    try:
        local = os.path.join(tmpdir, os.path.basename(path.rstrip("/")))
        if fs.isdir(path):
            fs.get(path, local, recursive=True)
        else:
            fs.get_file(path, local)
        yield local
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def absent_to_nan(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(xy, confidence)`` of ``(..., limbs, 3)`` keypoints, NaN where absent
    (confidence 0), as float32."""
    conf = keypoints[..., 2].astype(np.float32)
    absent = conf == 0
    xy = keypoints[..., :2].astype(np.float32)
    xy[absent] = np.nan
    return xy, np.where(absent, np.float32(np.nan), conf)


def refuse_padding(skel: DumpSkeleton, keypoints: np.ndarray, where: str, what: str) -> None:
    """Raise :class:`InputError` if a padding keypoint of ``skel`` holds anything in
    ``(..., limbs, 3)`` ``keypoints`` (formats whose parts are OpenPose's cannot
    carry it)."""
    if not skel.padding:
        return
    pad = keypoints[..., skel.padding.start : skel.padding.stop, :]
    if np.any(pad != 0):
        kp = skel.padding.start + int(np.nonzero(np.any(pad != 0, axis=-1))[-1][0])
        raise InputError(
            f"{where}: stores keypoint {kp} ({skel.names[kp]}), which {what} cannot hold "
            f"(its parts are OpenPose's, keypoints 0..{skel.padding.start - 1}); refusing "
            "to drop it"
        )
