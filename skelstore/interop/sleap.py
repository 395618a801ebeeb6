"""SLEAP: export a dump as a ``.slp`` labels file, and import what sleap-io reads.

Both go through `sleap-io <https://io.sleap.ai>`_ (``pip install 'skelstore[sleap]'``).

**Export** (:func:`export_sleap`): one ``Skeleton`` named after the mode, with the
mode's keypoint names as nodes and its edges (:data:`skelstore.pose.SKELETONS`);
one ``Track`` per pose track, named ``shotS_poseP`` (pose id P within shot S of a
``trackshots`` dump) or ``poseP`` (detection slot P of an ``unseg`` dump); one
``PredictedInstance`` per stored pose (a frame of a track with at least one
keypoint), with x, y and the keypoint's confidence as the point score, NaN x, y
(not visible, score 0) for absent keypoints, and the mean confidence of its
keypoints as the instance score; the ``Video`` is the dump's ``video`` attribute
(a file name, not opened). SLEAP has no shots: the track names carry them.

**Import** (:func:`import_sleap`): anything ``sleap_io.load_file`` reads (``.slp``,
NWB, DeepLabCut, COCO, ...) of one video and one skeleton becomes a dump:

* the mode is the one of :data:`~skelstore.pose.SKELETONS` whose keypoint names
  are the skeleton's nodes, in order; otherwise :data:`~skelstore.pose.CUSTOM_MODE`
  with the node names in the root attribute ``keypoint_names`` and the edges in
  ``skeleton_edges`` (and ``skeleton_name``);
* a source with tracks becomes a ``trackshots`` dump. Tracks named ``shotS_poseP``
  (as :func:`export_sleap` names them) go to shot S with pose id P; each shot
  spans its tracks' frames, and shot numbers without a track become shots
  without poses (filling the gap before the next one). Other tracks go to
  one shot, pose id = the track's position in the file's track list, and
  untracked instances get pose ids after those, by their position in the frame;
* a source without tracks becomes an ``unseg`` dump, pose id = the instance's
  position in its frame; so does one whose tracks are all named ``poseP`` (as
  :func:`export_sleap` names an ``unseg`` dump's slots), pose id P;
* where a frame holds a user instance and a predicted one of the same track, the
  user's is taken (as SLEAP does); a keypoint's confidence is its score (1 for
  user instances, which have none); invisible or NaN points, and points scored 0,
  are absent.

A SLEAP export imported back gives the same poses (frames, pose ids, keypoints);
shots become as long as their tracks.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import numpy as np

from skelstore.errors import InputError
from skelstore.export import ExportReport, require
from skelstore.interop.common import (
    absent_to_nan,
    check_suffix,
    dump_skeleton,
    local_input,
    local_output,
    open_dump,
    segments,
    tracks,
)
from skelstore.pose import CUSTOM_MODE, SKELETONS

__all__ = ["ImportReport", "export_sleap", "import_sleap"]

_SHOT_POSE = re.compile(r"^shot(\d+)_pose(\d+)$")
_POSE = re.compile(r"^pose(\d+)$")


def _sleap_io(what: str) -> Any:
    return require("sleap_io", "sleap-io", "sleap", what)


def export_sleap(
    src: Any,
    dst: str,
    *,
    frames: slice | None = None,
    shot: int | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> ExportReport:
    """Write a dump (a frame range, or one shot) as a SLEAP ``.slp`` file (see the
    module docs).

    Args:
        src: the dump (path, URL, skelstore group, h5py or zarr object).
        dst: ``*.slp``, a local path or an fsspec URL (written locally, then uploaded).
        frames: absolute frame range (default: the whole dump).
        shot: the N of ``shotN`` to export instead of a frame range.
        storage_options: fsspec options for both ends.
        overwrite: replace an existing ``dst``.

    Raises:
        MissingDependencyError: sleap-io is not installed.
        EngineError: ``dst`` is not ``*.slp``, or exists and ``overwrite`` is false.
    """
    sio = _sleap_io("SLEAP export")
    t0 = time.perf_counter()
    dst = os.fspath(dst)
    check_suffix(dst, (".slp",), "SLEAP")
    with open_dump(src, storage_options) as (root, name):
        skel = dump_skeleton(root)
        skeleton = sio.Skeleton(
            nodes=list(skel.names),
            edges=[(skel.names[a], skel.names[b]) for a, b in skel.edges],
            name=skel.mode or "skeleton",
        )
        video = sio.Video(filename=skel.video or "video", open_backend=False)
        by_name: dict[str, Any] = {}
        by_frame: dict[int, list[Any]] = {}
        n_frames = poses = 0
        for seg in segments(root, frames, shot):
            n_frames += len(seg.poses.frames)
            for track in tracks(seg):
                sleap_track = by_name.setdefault(track.name, sio.Track(name=track.name))
                xy, conf = absent_to_nan(track.keypoints)
                stored = ~np.isnan(conf).all(axis=1)
                scores = np.nan_to_num(conf)
                for r in np.nonzero(stored)[0]:
                    inst = sio.PredictedInstance.from_numpy(
                        points_data=xy[r],
                        point_scores=scores[r],
                        skeleton=skeleton,
                        score=float(np.nanmean(conf[r])),
                        track=sleap_track,
                    )
                    by_frame.setdefault(int(track.frames[r]), []).append(inst)
                    poses += 1
    labels = sio.Labels(
        labeled_frames=[
            sio.LabeledFrame(video=video, frame_idx=f, instances=by_frame[f])
            for f in sorted(by_frame)
        ],
        videos=[video],
        skeletons=[skeleton],
        tracks=list(by_name.values()),
    )
    labels.provenance["source"] = f"skelstore export of {name}"
    with local_output(dst, storage_options, overwrite) as tmp:
        sio.save_slp(labels, tmp)
    return ExportReport(name, dst, "sleap", n_frames, len(by_name), poses, time.perf_counter() - t0)


# ------------------------------------------------------------------ import


class ImportReport(ExportReport):
    """What :func:`import_sleap` wrote (``target`` is the dump's mode)."""

    def summary(self) -> str:
        return (
            f"{self.src} -> {self.dst} [{self.target}]: {self.frames} frames, "
            f"{self.poses} poses, {self.tracks} tracks in {self.seconds:.1f} s"
        )


def _mode_of(names: list[str]) -> str | None:
    for mode, skel in SKELETONS.items():
        if list(skel.keypoints) == names:
            return mode
    return None


def _instance_keypoints(inst: Any, user_cls: Any) -> np.ndarray:
    """``(nodes, 3)`` float32 x, y, confidence of a sleap-io instance; absent = 0."""
    points = inst.points
    xy = np.asarray(points["xy"], dtype=np.float32)
    visible = np.asarray(points["visible"], dtype=bool) & ~np.isnan(xy).any(axis=1)
    if "score" in (points.dtype.names or ()) and type(inst) is not user_cls:
        conf = np.asarray(points["score"], dtype=np.float32)
    else:
        conf = np.ones(len(xy), dtype=np.float32)
    conf = np.where(visible & np.isfinite(conf), conf, np.float32(0))
    out = np.zeros((len(xy), 3), dtype=np.float32)
    keep = conf != 0
    out[keep, :2] = xy[keep]
    out[keep, 2] = conf[keep]
    return out


def import_sleap(
    src: str,
    dst: str,
    *,
    compression: str | None = None,
    engine: str | None = None,
    zarr_format: int | None = None,
    video: str | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    layout: str | None = None,
) -> ImportReport:
    """Import what sleap-io reads (``sleap_io.load_file``) into a new dump at ``dst``
    (see the module docs for the mapping).

    Args:
        src: the source file (a path or fsspec URL; a remote one is downloaded).
        dst: the dump to write (any engine, any URL), published only when complete.
        compression: a compression preset for the pose arrays.
        engine: the destination engine (guessed from ``dst``'s name otherwise).
        zarr_format: 2 or 3 for a Zarr destination.
        video: the root's ``video`` attribute (default: the source's video file name).
        storage_options: fsspec options for both ends.
        overwrite: replace an existing ``dst``.
        layout: ``"skelshop"`` or ``"packed"`` (default: the destination engine's,
            see :func:`skelstore.packed.writer_layout`).

    Raises:
        MissingDependencyError: sleap-io is not installed.
        InputError: sleap-io cannot read ``src``, or it holds several videos or
            skeletons, or none, or two instances of one track in a frame.
        EngineError: ``dst`` exists and ``overwrite`` is false.
    """
    sio = _sleap_io("importing through sleap-io")
    from skelstore.dump import add_fmt_metadata, add_metadata
    from skelstore.engines import get_engine, guess_engine
    from skelstore.engines import open as open_store
    from skelstore.io import ShotSegmentedWriter, UnsegmentedWriter
    from skelstore.staging import Destination

    t0 = time.perf_counter()
    src, dst = os.fspath(src), os.fspath(dst)
    dst_engine = get_engine(engine) if engine else guess_engine(dst, "w", hint="engine=...")
    stage = Destination(dst, storage_options, overwrite=overwrite)
    with local_input(src, storage_options) as path:
        try:
            labels = sio.load_file(path)
        except Exception as exc:  # sleap-io raises many kinds for what it cannot read
            raise InputError(
                f"{src}: sleap-io cannot read it ({type(exc).__name__}: {exc})",
            ) from exc
    if not isinstance(labels, sio.Labels):
        raise InputError(f"{src}: not pose labels (sleap-io read a {type(labels).__name__})")
    if len(labels.skeletons) != 1:
        raise InputError(f"{src}: holds {len(labels.skeletons)} skeletons; a dump has one")
    if len(labels.videos) > 1:
        raise InputError(f"{src}: holds {len(labels.videos)} videos; a dump holds one video")
    skeleton = labels.skeletons[0]
    names = [str(n) for n in skeleton.node_names]
    mode = _mode_of(names)
    limbs = len(names)

    # pose id and shot of each track
    track_list = list(labels.tracks)
    track_names = [t.name or "" for t in track_list]
    parsed = [_SHOT_POSE.match(n) for n in track_names]
    slots = [_POSE.match(n) for n in track_names]
    track_key: dict[int, tuple[int, int]] = {}
    unseg = bool(track_list) and all(slots) and len(set(track_names)) == len(track_names)
    ours = bool(track_list) and all(parsed) and len(set(track_names)) == len(track_names)
    for i, t in enumerate(track_list):
        if ours:
            track_key[id(t)] = (int(parsed[i][1]), int(parsed[i][2]))  # type: ignore[index]
        elif unseg:  # an unseg dump's slots, as export_sleap names them
            track_key[id(t)] = (0, int(slots[i][1]))  # type: ignore[index]
        else:
            track_key[id(t)] = (0, i)
    tracked = bool(track_list) and not unseg

    # (shot, frame, pose id) -> keypoints, user instances winning over predictions
    user_cls = sio.Instance
    rows: dict[tuple[int, int, int], tuple[bool, np.ndarray]] = {}
    for lf in labels.labeled_frames:
        frame = int(lf.frame_idx)
        untracked = 0
        for inst in lf.instances:
            if inst.track is not None and id(inst.track) in track_key:
                shot_no, pose_id = track_key[id(inst.track)]
            else:
                shot_no, pose_id = 0, len(track_list) * (not unseg) + untracked
                untracked += 1
            is_user = type(inst) is user_cls
            key = (shot_no, frame, pose_id)
            kps = _instance_keypoints(inst, user_cls)
            if key in rows:
                if rows[key][0] == is_user:
                    raise InputError(
                        f"{src}: frame {frame} holds two instances of track "
                        f"{inst.track.name if inst.track else pose_id!r}"
                    )
                if not is_user:
                    continue
            rows[key] = (is_user, kps)
    rows = {k: v for k, v in rows.items() if v[1][:, 2].any()}
    if not rows:
        raise InputError(f"{src}: no instance with a visible point")
    frames_all = sorted({k[1] for k in rows})
    video_name = video
    if video_name is None:
        filename = labels.videos[0].filename if labels.videos else None
        if isinstance(filename, list):
            filename = filename[0] if filename else None
        video_name = os.path.basename(str(filename)) if filename else "video.mp4"
    num_frames = frames_all[-1] + 1
    with_shape = labels.videos[0].shape if labels.videos else None
    if with_shape:
        num_frames = max(num_frames, int(with_shape[0]))

    n_tracks = 0
    with stage:
        with open_store(stage.path, "w", engine=dst_engine.name, zarr_format=zarr_format) as root:
            if tracked:
                add_fmt_metadata(root, "trackshots")
                writer: Any = ShotSegmentedWriter(
                    root, num_kps=limbs, compression=compression, layout=layout
                )
                shots = sorted({k[0] for k in rows})
                end = 0
                for shot_no in range(shots[-1] + 1):
                    keys = sorted((f, p) for s, f, p in rows if s == shot_no)
                    if not keys:  # a shot without tracks (skelstore's names skip it)
                        later = [f for s, f, _ in rows if s > shot_no]
                        writer.start_shot(end)
                        writer.register_frame(max(end, min(later)) - 1)
                        writer.end_shot()
                        end = max(end, min(later))
                        continue
                    first, last = keys[0][0], keys[-1][0]
                    if first < end:
                        raise InputError(
                            f"{src}: the frames of tracks shot{shot_no}_pose* overlap the "
                            "shot before; cannot make shots of them"
                        )
                    # shots tile the timeline from the first one's first frame on
                    writer.start_shot(first if shot_no == shots[0] and not end else end)
                    for f, p in keys:
                        writer.register_frame(f)
                        writer.add_pose(f, p, rows[(shot_no, f, p)][1])
                    n_tracks += len({p for _, p in keys})
                    writer.register_frame(last)
                    writer.end_shot()
                    end = last + 1
            else:
                add_fmt_metadata(root, "unseg")
                writer = UnsegmentedWriter(
                    root, num_kps=limbs, compression=compression, layout=layout
                )
                writer.start_shot(frames_all[0])
                for _, f, p in sorted(rows, key=lambda k: (k[1], k[2])):
                    writer.add_pose(f, p, rows[(0, f, p)][1])
                writer.end_shot()
                n_tracks = len({k[2] for k in rows})
            add_metadata(root, video_name, num_frames, mode or CUSTOM_MODE, limbs)
            extra: dict[str, Any] = {"imported_from": f"sleap-io:{os.path.basename(src)}"}
            if mode is None:
                index = {n: i for i, n in enumerate(names)}
                extra["keypoint_names"] = names
                extra["skeleton_edges"] = [
                    [index[str(e.source.name)], index[str(e.destination.name)]]
                    for e in skeleton.edges
                ]
                extra["skeleton_name"] = str(skeleton.name or "")
            root.attrs.update(extra)
        stage.publish()
    return ImportReport(
        src,
        dst,
        mode or CUSTOM_MODE,
        frames_all[-1] - frames_all[0] + 1,
        n_tracks,
        len(rows),
        time.perf_counter() - t0,
    )
