"""Structural checks of a dump: the problems, listed, not raised one at a time.

:func:`validate` walks the whole layout and returns every problem it finds as a
readable line naming the node. Readers do the cheap subset of these checks on
the fly (and raise :class:`~skelstore.errors.FormatError`); ``skelstore
validate`` runs them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from skelstore.compression import lossy_limit, lossy_problem
from skelstore.errors import SkelstoreError
from skelstore.face import describe_faces, face_problems, has_faces
from skelstore.layout import (
    DATA_DTYPE,
    FMT_TYPES,
    INDICES_DTYPE,
    INDPTR_DTYPE,
    TIMELINE,
    frame_attrs,
    parse_index,
)
from skelstore.packed import is_packed
from skelstore.packed_check import validate_packed
from skelstore.pose import CUSTOM_MODE, LIMBS, MODES
from skelstore.storage import Array, Group

__all__ = ["ValidationReport", "validate"]


@dataclass
class ValidationReport:
    """The outcome of :func:`validate`."""

    url: str
    problems: list[str] = field(default_factory=list)
    #: Shots: the ``shotN`` groups of a ``trackshots`` dump; 1 for an ``unseg`` dump,
    #: whose timeline is one shot (as ``skelstore info`` counts them).
    shots: int = 0
    tracks: int = 0
    #: Faces in ``/faces`` (``None`` without face data).
    faces: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_root(root: Group, rep: ValidationReport) -> tuple[str | None, int | None]:
    attrs = root.attrs
    fmt_type = attrs.get("fmt_type")
    if fmt_type not in FMT_TYPES:
        rep.problems.append(f"/: fmt_type {fmt_type!r} is not one of {', '.join(FMT_TYPES)}")
    mode = attrs.get("mode")
    if mode is not None and mode not in MODES and mode != CUSTOM_MODE:
        rep.problems.append(f"/: unknown mode {mode!r}")
    limbs = attrs.get("limbs")
    if not isinstance(limbs, int) or isinstance(limbs, bool) or limbs <= 0:
        rep.problems.append(f"/: limbs {limbs!r} is not a positive integer")
        limbs = LIMBS.get(mode) if isinstance(mode, str) else None
    elif isinstance(mode, str) and mode in LIMBS and LIMBS[mode] != limbs:
        rep.problems.append(f"/: limbs {limbs} does not match mode {mode} ({LIMBS[mode]})")
    if mode == CUSTOM_MODE:
        names = attrs.get("keypoint_names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            rep.problems.append(f"/: mode {CUSTOM_MODE} needs a keypoint_names list of strings")
        elif isinstance(limbs, int) and len(names) != limbs:
            rep.problems.append(f"/: {len(names)} keypoint_names for limbs {limbs}")
    for key, kind in (("num_frames", int), ("fmt_ver", int)):
        if key in attrs and not isinstance(attrs[key], kind):
            rep.problems.append(f"/: {key} {attrs[key]!r} is not an integer")
    return (fmt_type if isinstance(fmt_type, str) else None), limbs


def _check_track(grp: Group, limbs: int | None, rep: ValidationReport, deep: bool) -> None:
    where = grp.path
    try:
        start, end = frame_attrs(grp, where)
    except SkelstoreError as exc:
        rep.problems.append(str(exc))
        return
    arrays = {}
    for name, dtype, ndim in (
        ("data", DATA_DTYPE, 2),
        ("indices", INDICES_DTYPE, 1),
        ("indptr", INDPTR_DTYPE, 1),
    ):
        node = grp.get(name)
        if not isinstance(node, Array):
            rep.problems.append(f"{where}: missing array {name!r}")
            continue
        if node.dtype != dtype:
            rep.problems.append(f"{where}/{name}: dtype {node.dtype}, expected {dtype}")
            if node.dtype.kind not in ("fiu" if name == "data" else "iu"):
                continue  # not numbers: no further check can use it
        if len(node.shape) != ndim or (name == "data" and node.shape[1:] != (3,)):
            rep.problems.append(f"{where}/{name}: shape {node.shape}")
            continue
        arrays[name] = node
    if "indptr" not in arrays:
        return
    try:
        indptr = arrays["indptr"].read().astype(np.int64)
    except SkelstoreError as exc:  # damaged, or declaring more than it stores
        rep.problems.append(f"{where}/indptr: cannot be read ({exc})")
        return
    rows = end - start
    if len(indptr) != rows + 1:
        rep.problems.append(f"{where}/indptr: {len(indptr)} entries, expected {rows + 1}")
    if len(indptr):
        if indptr[0] != 0:
            rep.problems.append(f"{where}/indptr: starts at {indptr[0]}, expected 0")
        if np.any(np.diff(indptr) < 0):
            rep.problems.append(f"{where}/indptr: not monotone")
        if "data" in arrays and indptr[-1] != len(arrays["data"]):
            rep.problems.append(
                f"{where}/indptr: ends at {indptr[-1]}, data has {len(arrays['data'])} entries"
            )
    if "data" in arrays and "indices" in arrays and len(arrays["data"]) != len(arrays["indices"]):
        rep.problems.append(f"{where}: data and indices lengths differ")
    if "indices" in arrays and limbs is not None and len(arrays["indices"]):
        try:
            top = int(arrays["indices"].read().max())
        except SkelstoreError as exc:
            rep.problems.append(f"{where}/indices: cannot be read ({exc})")
            top = -1
        if top >= limbs:
            rep.problems.append(f"{where}/indices: keypoint {top} >= limbs {limbs}")
    if deep and "data" in arrays and len(arrays["data"]):
        _check_values(arrays["data"], where, rep)


def _check_values(data_arr: Array, where: str, rep: ValidationReport) -> None:
    """``validate --deep`` on ``data``: every value finite, and within the range of a
    lossy encoding (a value at its edge is what a NaN, an infinity or an overflow
    written before skelstore refused them decodes as: -21474836.0 in Zarr)."""
    try:
        data = data_arr.read()
    except SkelstoreError as exc:  # e.g. HDF5's scale-offset filter on a NaN
        rep.problems.append(f"{where}/data: cannot be read ({exc})")
        return
    if not np.all(np.isfinite(data)):
        rep.problems.append(f"{where}/data: holds NaN or infinite values")
        return
    enc = data_arr.encoding
    digits = enc.scale_digits if enc is not None else None
    found = lossy_problem(data, digits)
    if found is not None:
        assert digits is not None
        index, value = found
        rep.problems.append(
            f"{where}/data[{index[0]}]: {value!r} is beyond what its lossy encoding "
            f"keeps (magnitude below {lossy_limit(digits):g}): a NaN, infinity or "
            "too large a value was damaged when it was written"
        )


def _check_tracks(parent: Group, limbs: int | None, rep: ValidationReport, deep: bool) -> None:
    for name, node in parent.items():
        try:
            parse_index(name, "pose", parent.path)
        except SkelstoreError as exc:
            rep.problems.append(str(exc))
            continue
        if not isinstance(node, Group):
            rep.problems.append(f"{node.path}: expected a pose group")
            continue
        rep.tracks += 1
        _check_track(node, limbs, rep, deep)


def validate(root: Group, *, deep: bool = False) -> ValidationReport:
    """Check the whole layout of the dump at ``root`` (and its ``/faces``, if any;
    a face dump without skeletons is checked as such); ``deep`` also reads ``data``
    and ``embed`` to check that every value is finite."""
    rep = ValidationReport(root.source)
    if has_faces(root):
        rep.problems.extend(face_problems(root, deep=deep))
        if not rep.problems:
            info = describe_faces(root)
            rep.faces = info.faces if info else None
        if root.attrs.get("fmt_type") is None and TIMELINE not in root:
            return rep  # a face dump without skeletons
    fmt_type, limbs = _check_root(root, rep)
    timeline = root.get(TIMELINE)
    if not isinstance(timeline, Group):
        rep.problems.append("/: no /timeline group")
        return rep
    try:
        packed = is_packed(root)
    except SkelstoreError as exc:
        rep.problems.append(str(exc))
        return rep
    if packed:
        problems, rep.shots, rep.tracks = validate_packed(root, timeline, limbs, deep)
        rep.problems.extend(problems)
        return rep
    if fmt_type == "unseg":
        rep.shots = 1  # the whole timeline, as readers and describe() take it
        try:
            frame_attrs(timeline, timeline.path)
        except SkelstoreError as exc:
            rep.problems.append(str(exc))
        _check_tracks(timeline, limbs, rep, deep)
        return rep
    prev: tuple[int, int, str] | None = None
    shots = []
    for name, node in timeline.items():
        try:
            idx = parse_index(name, "shot", timeline.path)
        except SkelstoreError as exc:
            rep.problems.append(str(exc))
            continue
        if not isinstance(node, Group):
            rep.problems.append(f"{node.path}: expected a shot group")
            continue
        try:
            start, end = frame_attrs(node, node.path)
        except SkelstoreError as exc:
            rep.problems.append(str(exc))
            continue
        shots.append((idx, start, end, node))
    shots.sort(key=lambda s: s[0])
    for _, start, end, node in shots:
        rep.shots += 1
        if prev is not None and start < prev[1]:
            rep.problems.append(
                f"{node.path}: starts at {start}, before {prev[2]} ends ({prev[1]})"
            )
        prev = (start, end, node.path)
        _check_tracks(node, limbs, rep, deep)
        for _, track in node.groups():
            try:
                t0, t1 = frame_attrs(track, track.path)
            except SkelstoreError:
                continue
            if t0 < start or t1 > end:
                rep.problems.append(
                    f"{track.path}: frames {t0}:{t1} outside its shot {start}:{end}"
                )
    return rep
