"""NWB: export a dump as an NWB file with the ndx-pose extension.

Written with pynwb and ndx-pose (``pip install 'skelstore[nwb]'``). The file holds,
in the processing module ``behavior``:

* ``Skeletons`` with one ``Skeleton`` named after the mode: the mode's keypoint
  names as nodes and its edges (:data:`skelstore.pose.SKELETONS`);
* one ``PoseEstimation`` per individual, i.e. per pose track, named like the
  SLEAP export's tracks (``shotS_poseP``, or ``poseP`` in an ``unseg`` dump),
  linked to the skeleton and to the video (an external-file ``ImageSeries`` in
  ``acquisition`` named ``video``, for the dump's ``video`` attribute), with
  ``source_software`` ``OpenPose``;
* in each, one ``PoseEstimationSeries`` per keypoint (named after it): ``data``
  ``(rows, 2)`` float32 x, y in pixels and ``confidence`` ``(rows,)``, NaN
  where the keypoint is absent, over every frame of the track (frames where the
  track has no keypoint are NaN rows); ``timestamps`` are frame / fps seconds,
  stored once per track and linked by its other series.

``session_start_time`` is required by NWB and unknown to a dump: it defaults to
the time of the export. movement reads one individual with
``movement.io.load_poses.from_nwb_file(path, pose_estimation_key="shot0_pose1")``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

import numpy as np

from skelstore.errors import InputError
from skelstore.export import ExportReport, require
from skelstore.interop.common import (
    absent_to_nan,
    check_suffix,
    dump_skeleton,
    local_output,
    open_dump,
    segments,
    tracks,
)

__all__ = ["REFERENCE_FRAME", "export_nwb"]

#: The ``reference_frame`` of every series: OpenPose's image coordinates.
REFERENCE_FRAME = (
    "(0, 0) is the top-left corner of the video frame; x grows to the right and y "
    "downwards, in pixels (OpenPose's image coordinates)"
)


def export_nwb(
    src: Any,
    dst: str,
    *,
    fps: float | None = None,
    frames: slice | None = None,
    shot: int | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    session_start_time: dt.datetime | None = None,
    identifier: str | None = None,
) -> ExportReport:
    """Write a dump (a frame range, or one shot) as an NWB file (see the module docs).

    Args:
        src: the dump (path, URL, skelstore group, h5py or zarr object).
        dst: ``*.nwb``, a local path or an fsspec URL (written locally, then uploaded).
        fps: frames per second of the video (required: NWB times are seconds).
        frames: absolute frame range (default: the whole dump).
        shot: the N of ``shotN`` to export instead of a frame range.
        storage_options: fsspec options for both ends.
        overwrite: replace an existing ``dst``.
        session_start_time: the NWB file's session start (default: now, UTC).
        identifier: the NWB file's identifier (default: the dump's name).

    Raises:
        MissingDependencyError: pynwb or ndx-pose is not installed.
        InputError: no (positive) ``fps``, or a mode with over 256 keypoints (an
            ndx-pose skeleton's edges are uint8).
        EngineError: ``dst`` is not ``*.nwb``, or exists and ``overwrite`` is false.
    """
    pynwb = require("pynwb", "pynwb", "nwb", "NWB export")
    ndx_pose = require("ndx_pose", "ndx-pose", "nwb", "NWB export")
    t0 = time.perf_counter()
    dst = os.fspath(dst)
    check_suffix(dst, (".nwb",), "NWB")
    if fps is None or not fps > 0:
        raise InputError(f"{dst}: NWB times are seconds: give the video's frame rate (fps=...)")
    with open_dump(src, storage_options) as (root, name):
        skel = dump_skeleton(root)
        if skel.limbs > 256:
            raise InputError(f"{name}: {skel.limbs} keypoints; ndx-pose skeletons hold 256")
        nwbfile = pynwb.NWBFile(
            session_description=f"OpenPose poses of {skel.video or 'a video'} (skelstore export)",
            identifier=identifier or os.path.basename(name.rstrip("/")) or "skelstore",
            session_start_time=session_start_time or dt.datetime.now(dt.UTC),
        )
        num_frames = root.attrs.get("num_frames")
        extent: dict[str, Any] = {}
        if isinstance(num_frames, int) and not isinstance(num_frames, bool) and num_frames > 0:
            extent["num_samples"] = num_frames
        video = pynwb.image.ImageSeries(
            name="video",
            description="the video the poses were estimated from",
            external_file=[skel.video or "video"],
            format="external",
            starting_frame=[0],
            rate=float(fps),
            unit="n.a.",
            **extent,
        )
        nwbfile.add_acquisition(video)
        skeleton = ndx_pose.Skeleton(
            name=skel.mode or "skeleton",
            nodes=list(skel.names),
            edges=np.asarray(skel.edges, dtype=np.uint8).reshape(-1, 2),
        )
        behavior = nwbfile.create_processing_module(
            name="behavior", description="poses estimated by OpenPose, exported by skelstore"
        )
        behavior.add(ndx_pose.Skeletons(skeletons=[skeleton]))
        n_frames = n_tracks = poses = 0
        for seg in segments(root, frames, shot):
            n_frames += len(seg.poses.frames)
            for track in tracks(seg):
                xy, conf = absent_to_nan(track.keypoints)
                poses += int((~np.isnan(conf)).any(axis=1).sum())
                stamps: Any = track.frames / float(fps)
                series = []
                for k, kp_name in enumerate(skel.names):
                    s = ndx_pose.PoseEstimationSeries(
                        name=kp_name,
                        description=f"{kp_name} of {track.name}",
                        data=xy[:, k],
                        unit="pixels",
                        reference_frame=REFERENCE_FRAME,
                        timestamps=stamps,
                        confidence=conf[:, k],
                        confidence_definition="OpenPose's confidence of the keypoint",
                    )
                    stamps = stamps if k else s  # the others link the first's timestamps
                    series.append(s)
                where = f"shot {track.shot}, " if track.shot is not None else ""
                behavior.add(
                    ndx_pose.PoseEstimation(
                        name=track.name,
                        pose_estimation_series=series,
                        description=f"pose id {track.pose_id} ({where}frames {int(track.frames[0])}"
                        f"..{int(track.frames[-1])}) of {name}",
                        source_video=video,
                        source_software="OpenPose",
                        skeleton=skeleton,
                    )
                )
                n_tracks += 1
    with local_output(dst, storage_options, overwrite) as tmp, pynwb.NWBHDF5IO(tmp, "w") as io:
        io.write(nwbfile)
    return ExportReport(name, dst, "nwb", n_frames, n_tracks, poses, time.perf_counter() - t0)
