"""Dense arrays for analysis: a frame range of a dump as one numpy array.

:func:`read_poses` decodes whole CSR arrays with vectorised numpy (no per-frame
Python loop) into ``(frames, slots, keypoints, 3)``; :func:`to_xarray` wraps that
as an ``xarray.Dataset`` laid out like the ``movement`` package's poses dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skelstore.engines import as_group
from skelstore.engines import open as open_store
from skelstore.errors import (
    FormatError,
    MissingDependencyError,
    NotFoundError,
    UnknownModeError,
)
from skelstore.framerange import check_frames
from skelstore.layout import (
    KEYPOINT_ELEMENT,
    TIMELINE,
    TrackSource,
    frame_attrs,
    list_tracks,
    shot_info,
    shot_names,
)
from skelstore.pose import LIMBS, SKELETONS, keypoint_names
from skelstore.storage import Group

__all__ = ["BODY_25_KEYPOINTS", "Poses", "keypoint_names", "read_poses", "to_xarray"]

#: The most memory :func:`read_poses` allocates for one call (keypoints, presence,
#: frame and shot numbers); a larger frame range raises FormatError naming it.
MAX_DENSE_BYTES = 4 * 2**30

#: OpenPose BODY_25 keypoint names, in order (:data:`skelstore.pose.SKELETONS`' names).
BODY_25_KEYPOINTS = SKELETONS["BODY_25"].keypoints


@dataclass
class Poses:
    """A frame range of a dump as dense arrays.

    Attributes:
        keypoints: ``(frames, slots, limbs, 3)`` float32: x, y, confidence; 0 where a
            keypoint or a whole pose is absent (as skelshop's readers give it).
        present: ``(frames, slots)`` bool: the slot's pose track covers the frame
            (its CSR row exists, even if empty).
        pose_ids: ``(slots,)`` the pose id (N of ``poseN``) of each slot.
        frames: ``(frames,)`` absolute frame numbers.
        shots: ``(frames,)`` the stored shot index of each frame (``-1`` outside any
            shot; ``0`` for unsegmented dumps).
        mode: the dump's pose mode, if recorded.
        keypoint_names: the name of each keypoint
            (:func:`skelstore.pose.keypoint_names`).
    """

    keypoints: np.ndarray
    present: np.ndarray
    pose_ids: np.ndarray
    frames: np.ndarray
    shots: np.ndarray
    mode: str | None
    keypoint_names: list[str] = field(default_factory=list)

    @property
    def limbs(self) -> int:
        return int(self.keypoints.shape[2])


def _frame_span(
    root: Group, frames: slice | None, check: bool = True
) -> tuple[int, int, list[Any]]:
    """``(f0, f1, parents)``: the frame range and the groups holding its tracks.

    ``frames`` is checked by :func:`skelstore.framerange.check_frames` (unless
    ``check`` is false: then ``f0, f1`` is the whole dump)."""
    fmt_type = root.attrs.get("fmt_type")
    timeline = root.get(TIMELINE)
    if not isinstance(timeline, Group):
        raise FormatError(f"{root.source}: no /timeline group")
    if fmt_type == "unseg":
        start, end = frame_attrs(timeline)
        parents = [(0, start, end, timeline)]
    elif fmt_type == "trackshots":
        parents = []
        for idx, name in shot_names(timeline):
            info = shot_info(timeline, idx, name)
            parents.append((info.index, info.start_frame, info.end_frame, info.group))
        start = 0
        end = max((p[2] for p in parents), default=0)
    else:
        raise FormatError(f"{root.source}: not a skeleton dump (fmt_type={fmt_type!r})")
    num_frames = root.attrs.get("num_frames")
    if isinstance(num_frames, int) and not isinstance(num_frames, bool):
        end = max(end, num_frames)
    end = max(start, end)
    if not check:
        return start, end, parents
    f0, f1 = check_frames(root, frames, span=(start, end))
    return f0, f1, parents


def read_poses(
    source: Any,
    *,
    frames: slice | None = None,
    shot: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Poses:
    """Read a frame range (or one shot) of a dump into dense arrays.

    Args:
        source: a path or URL, a skelstore group, or an open h5py/zarr object.
        frames: absolute frame range ``slice(a, b)`` (default: the whole dump,
            from frame 0 to ``num_frames`` or the end of the last shot); it must
            overlap the dump (:mod:`skelstore.framerange`), frames past its end
            read as frames without poses.
        shot: the N of ``shotN`` to read instead of a frame range (trackshots).
        storage_options: fsspec options when ``source`` is a URL.

    Returns:
        A :class:`Poses`; each of its slots is one pose id.

    Raises:
        FrameRangeError: ``frames`` is reversed or empty, or misses the dump.
        NotFoundError: no ``shotN`` for ``shot``.
    """
    if isinstance(source, str) or hasattr(source, "__fspath__"):
        with open_store(source, "r", storage_options=storage_options) as root:
            return _read(root, frames, shot)
    return _read(as_group(source), frames, shot)


def _read(root: Group, frames: slice | None, shot: int | None) -> Poses:
    attrs = root.attrs
    mode = attrs.get("mode")
    if mode is not None and not isinstance(mode, str):
        raise UnknownModeError(f"{root.source}: pose mode {mode!r} is not a name")
    limbs = attrs.get("limbs") or (LIMBS.get(mode) if isinstance(mode, str) else None)
    if not isinstance(limbs, int) or isinstance(limbs, bool) or not 0 < limbs <= 65536:
        raise FormatError(f"{root.source}: bad or missing 'limbs' attribute ({limbs!r})")
    f0, f1, parents = _frame_span(root, frames, check=shot is None)
    if shot is not None:
        match = [p for p in parents if p[0] == shot and attrs.get("fmt_type") == "trackshots"]
        if not match:
            raise NotFoundError(f"{root.source}: no shot{shot} in /timeline")
        f0, f1 = match[0][1], match[0][2]
        parents = match
    n = f1 - f0
    # frames come from attributes (num_frames, shot ranges): bound what they make us allocate
    if n * (16 + limbs * 12) > MAX_DENSE_BYTES:
        raise FormatError(
            f"{root.source}: frames {f0}:{f1} would need over {MAX_DENSE_BYTES} bytes as dense "
            "arrays; read a part (frames=slice(a, b) or shot=N)"
        )
    shots = np.full(n, -1, dtype=np.int64)
    chosen: list[tuple[int, TrackSource]] = []
    for idx, start, end, group in parents:
        a, b = max(start, f0), min(end, f1)
        if a >= b:
            continue
        shots[a - f0 : b - f0] = idx
        chosen += [(idx, t) for t in list_tracks(group) if t.start_frame < f1 and t.end_frame > f0]
    pose_ids = np.array(sorted({t.pose_id for _, t in chosen}), dtype=np.int64)
    if n * (16 + len(pose_ids) * (limbs * 12 + 1)) > MAX_DENSE_BYTES:
        raise FormatError(
            f"{root.source}: frames {f0}:{f1} of {len(pose_ids)} pose ids would need over "
            f"{MAX_DENSE_BYTES} bytes as dense arrays; read a part (frames= or shot=)"
        )
    slot_of = {int(p): i for i, p in enumerate(pose_ids)}
    out = np.zeros((n, len(pose_ids), limbs, 3), dtype=np.float32)
    out_kp = out.view(KEYPOINT_ELEMENT).reshape(-1)  # one element per keypoint
    row_len = len(pose_ids) * limbs
    present = np.zeros((n, len(pose_ids)), dtype=bool)
    tracks = [t for _, t in chosen]
    reqs = [a for t in tracks for a in (t.indptr_array, t.data, t.indices)]
    arrays = root.read_many(reqs) if reqs else []
    for i, t in enumerate(tracks):
        indptr, data, indices = arrays[3 * i : 3 * i + 3]
        t.set_indptr(indptr)
        assert t.indptr is not None
        slot = slot_of[t.pose_id]
        a, b = max(t.start_frame, f0), min(t.end_frame, f1)
        present[a - f0 : b - f0, slot] = True
        r0, r1 = a - t.start_frame, b - t.start_frame
        lo, hi = int(t.indptr[r0]), int(t.indptr[r1])
        if hi <= lo:
            continue
        counts = np.diff(t.indptr[r0 : r1 + 1])
        idx = np.asarray(indices[lo:hi])
        if len(idx) != hi - lo or len(data) < hi:
            raise FormatError(f"{t.where}: indptr does not match data/indices lengths")
        if idx.size and int(idx.max()) >= limbs:
            raise FormatError(f"{t.where}: keypoint index {int(idx.max())} >= limbs {limbs}")
        # flat index of (frame, slot, keypoint) in out; whole 12-byte keypoints are
        # scattered at once (3x faster than a three-array fancy-index assignment)
        flat = np.repeat(np.arange(a - f0, b - f0, dtype=np.int64) * row_len + slot * limbs,
                         counts)
        flat += idx
        np.put(out_kp, flat, np.ascontiguousarray(data[lo:hi], dtype=np.float32)
               .view(KEYPOINT_ELEMENT).reshape(-1))
    return Poses(
        keypoints=out,
        present=present,
        pose_ids=pose_ids,
        frames=np.arange(f0, f1, dtype=np.int64),
        shots=shots,
        mode=mode,
        keypoint_names=keypoint_names(mode, limbs, attrs.get("keypoint_names")),
    )


def to_xarray(
    source: Any,
    *,
    frames: slice | None = None,
    shot: int | None = None,
    fps: float | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Any:
    """A frame range of a dump as an ``xarray.Dataset`` shaped like ``movement``'s
    poses datasets.

    Variables ``position`` (time, individuals, keypoints, space) and
    ``confidence`` (time, individuals, keypoints), both NaN where a keypoint is
    absent; coordinates ``time`` (seconds if ``fps`` is given, else frame
    numbers), ``individuals`` (``"id_<pose id>"``), ``keypoints`` (names from the
    mode) and ``space`` (``x``, ``y``); also ``shot`` per time step. Attributes
    ``ds_type="poses"``, ``source_software``, ``fps``, ``time_unit``.

    Raises:
        MissingDependencyError: xarray is not installed (``pip install
            'skelstore[xarray]'``).
    """
    try:
        import xarray as xr
    except ImportError as exc:
        raise MissingDependencyError(
            "to_xarray needs xarray: pip install 'skelstore[xarray]'"
        ) from exc
    p = source if isinstance(source, Poses) else read_poses(
        source, frames=frames, shot=shot, storage_options=storage_options
    )
    conf = p.keypoints[..., 2].astype(np.float32)
    absent = conf == 0
    position = p.keypoints[..., :2].astype(np.float32)
    position[absent] = np.nan
    conf = np.where(absent, np.nan, conf)
    time = p.frames / fps if fps else p.frames
    ds = xr.Dataset(
        {
            "position": (("time", "individuals", "keypoints", "space"), position),
            "confidence": (("time", "individuals", "keypoints"), conf),
        },
        coords={
            "time": time,
            "individuals": [f"id_{i}" for i in p.pose_ids],
            "keypoints": p.keypoint_names or keypoint_names(p.mode, p.limbs),
            "space": ["x", "y"],
            "shot": ("time", p.shots),
        },
        attrs={
            "ds_type": "poses",
            "source_software": "OpenPose (via skelstore)",
            "time_unit": "seconds" if fps else "frames",
            **({"fps": fps} if fps else {}),
        },
    )
    return ds
