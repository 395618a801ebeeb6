"""pose-format: export a dump as a ``.pose`` file.

Written with pose-format's own classes (``pip install 'skelstore[pose]'``):

* **components** are pose-format's own OpenPose components, in pose-format's
  order: ``pose_keypoints_2d``, ``face_keypoints_2d``, ``hand_left_keypoints_2d``,
  ``hand_right_keypoints_2d`` (``pose_format.utils.openpose``), those of the
  dump's mode only; BODY_135 is pose-format's ``BODY_135`` component
  (``pose_format.utils.openpose_135``). Their point names and limbs are
  pose-format's (its OpenPose loader's), so tools built on pose-format recognise
  them; the keypoints are reordered from skelstore's order (body, hands, face).
  A dump of another mode (:data:`~skelstore.pose.CUSTOM_MODE`, or no mode) gets
  one component named after its mode, with its keypoint names and edges;
* **people**: person ``i`` holds the ``i``-th smallest pose id among the tracks
  of the exported frames (the slots of :func:`skelstore.dense.read_poses`, and
  movement's ``individual`` order). In an ``unseg`` dump, where pose ids are
  OpenPose's positions in ``people``, that is the pose id itself, as pose-format's
  own OpenPose loader numbers people. A pose id's poses in different shots are
  one person: pose-format has no tracks or shots (the export's report lists the
  pose id of each person);
* **frames**: frame 0 of the file is the first exported frame; absent keypoints
  (and absent people) are masked, with confidence 0; ``fps`` is required;
* **dimensions**: ``width`` and ``height`` default to the largest x and y stored
  (rounded up), as a dump does not record the video's size.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

from skelstore.dense import read_poses
from skelstore.errors import InputError
from skelstore.export import ExportReport, require
from skelstore.interop.common import (
    check_suffix,
    dump_skeleton,
    local_output,
    open_dump,
    refuse_padding,
)
from skelstore.pose import SKELETONS

__all__ = ["PART_COMPONENTS", "export_pose"]

#: skelstore's part names (:attr:`skelstore.pose.Skeleton.parts`) -> pose-format's
#: component names.
PART_COMPONENTS = {
    "body": "pose_keypoints_2d",
    "face": "face_keypoints_2d",
    "left_hand": "hand_left_keypoints_2d",
    "right_hand": "hand_right_keypoints_2d",
    "body135": "BODY_135",
}


def _components(mode: str | None, names: tuple[str, ...], edges: Any) -> tuple[list[Any], Any]:
    """``(components, order)``: pose-format header components and, for each of their
    points in turn, the index of the keypoint in the dump."""
    from pose_format.pose_header import PoseHeaderComponent

    skel = SKELETONS.get(mode or "")
    if skel is None or skel.keypoints != names:
        comp = PoseHeaderComponent(
            name=mode or "keypoints",
            points=list(names),
            limbs=[tuple(e) for e in edges],
            colors=[(255, 255, 255)],
            point_format="XYC",
        )
        return [comp], np.arange(len(names))
    from pose_format.utils import openpose, openpose_135

    start = {PART_COMPONENTS[n]: (s, c) for n, s, c in skel.parts if n in PART_COMPONENTS}
    library = (
        openpose_135.OpenPose_Components if mode == "BODY_135" else (openpose.OpenPose_Components)
    )
    comps = [c for c in library if c.name in start]
    order = []
    for c in comps:
        s, count = start[c.name]
        if len(c.points) != count:  # pragma: no cover - pose-format changed its parts
            raise InputError(f"pose-format's {c.name} has {len(c.points)} points, not {count}")
        order.extend(range(s, s + count))
    return comps, np.asarray(order)


def export_pose(
    src: Any,
    dst: str,
    *,
    fps: float | None = None,
    frames: slice | None = None,
    shot: int | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    width: int | None = None,
    height: int | None = None,
) -> ExportReport:
    """Write a dump (a frame range, or one shot) as a pose-format ``.pose`` file (see
    the module docs).

    Args:
        src: the dump (path, URL, skelstore group, h5py or zarr object).
        dst: ``*.pose``, a local path or an fsspec URL (written locally, then uploaded).
        fps: frames per second of the video (required: the file records it).
        frames: absolute frame range (default: the whole dump).
        shot: the N of ``shotN`` to export instead of a frame range.
        storage_options: fsspec options for both ends.
        overwrite: replace an existing ``dst``.
        width: the video's width in pixels (default: from the data).
        height: the video's height in pixels (default: from the data).

    Returns:
        A report whose ``notes`` give the pose id of each person.

    Raises:
        MissingDependencyError: pose-format is not installed.
        InputError: no (positive) ``fps``, or the dump stores a padding keypoint
            (:meth:`skelstore.pose.Skeleton.padding`), which OpenPose's components
            cannot hold.
        EngineError: ``dst`` is not ``*.pose``, or exists and ``overwrite`` is false.
    """
    require("pose_format", "pose-format", "pose", "pose-format export")
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    t0 = time.perf_counter()
    dst = os.fspath(dst)
    check_suffix(dst, (".pose",), "pose-format")
    if fps is None or not fps > 0:
        raise InputError(f"{dst}: a .pose file records its frame rate: give it (fps=...)")
    with open_dump(src, storage_options) as (root, name):
        skel = dump_skeleton(root)
        p = read_poses(root, frames=frames, shot=shot)
    refuse_padding(skel, p.keypoints, name, "pose-format's OpenPose components")
    comps, order = _components(skel.mode, skel.names, skel.edges)
    kps = p.keypoints[:, :, order, :]
    conf = np.ascontiguousarray(kps[..., 2], dtype=np.float32)
    xy = np.ascontiguousarray(kps[..., :2], dtype=np.float32)
    mask = np.repeat((conf == 0)[..., None], 2, axis=-1)
    present = conf != 0
    size = [1, 1]
    for axis in (0, 1):
        if present.any():
            size[axis] = max(1, math.ceil(float(xy[..., axis][present].max())))
    header = PoseHeader(
        version=0.2,
        dimensions=PoseHeaderDimensions(width=width or size[0], height=height or size[1]),
        components=comps,
    )
    body = NumPyPoseBody(fps=float(fps), data=np.ma.masked_array(xy, mask=mask), confidence=conf)
    with local_output(dst, storage_options, overwrite) as tmp, open(tmp, "wb") as f:
        Pose(header, body).write(f)
    report = ExportReport(
        name,
        dst,
        "pose",
        len(p.frames),
        len(p.pose_ids),
        int(present.any(axis=2).sum()),
        time.perf_counter() - t0,
    )
    report.notes.append(
        "people: " + ", ".join(f"{i} = pose id {int(pid)}" for i, pid in enumerate(p.pose_ids))
    )
    return report
