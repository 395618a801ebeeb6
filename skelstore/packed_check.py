"""Checking and mending packed dumps: repair after a crash (:func:`repair_packed`),
the packed-specific checks of ``validate`` (:func:`validate_packed`: offsets monotone
and in range, tracks within their shot, shots ordered) and what ``info`` reports
(:func:`describe_packed`).

See :mod:`skelstore.packed` for the layout itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skelstore.compression import preset_name
from skelstore.errors import FormatError
from skelstore.layout import (
    TIMELINE,
    frame_attrs,
)
from skelstore.packed import (
    ARRAY_NAMES,
    C_END,
    C_ENTRY,
    C_POSE,
    C_ROW,
    C_SHOT,
    C_START,
    DATA,
    DTYPES,
    INDICES,
    INDPTR,
    POINTER_DTYPE,
    SHOTS,
    TABLE_DTYPE,
    TRACKS,
    TRAILING,
    _check_tables,
    _packed_arrays,
    written_parts,
)
from skelstore.packed_read import PackedTimeline, parts_with_bytes, unseg_range
from skelstore.storage import Array, Group

__all__ = ["PackedSummary", "describe_packed", "repair_packed", "validate_packed"]


def repair_packed(root: Group, timeline: Group, intact: int) -> tuple[int, list[str]]:
    """Cut a marked packed timeline back to what is complete (see
    :func:`skelstore.recovery.repair`); returns ``(intact shots, removed)``, the
    removed shots named as skelshop's layout names them."""
    arrays = _packed_arrays(timeline)
    shots, tracks = timeline.read_many([arrays[SHOTS], arrays[TRACKS]])
    shots = np.asarray(shots, np.int64)
    tracks = np.asarray(tracks, np.int64)
    tracks = tracks[: written_parts(tracks)]  # not a writer's reserve
    unseg = root.attrs.get("fmt_type") == "unseg"
    n_ptr = len(arrays[INDPTR])
    if unseg:
        # every tracks row was appended after its bytes: keep those whose bytes are there
        keep = parts_with_bytes(arrays, tracks)
        n_shots, removed = 1, []
    else:
        n_shots = min(intact, len(shots))
        keep = int(np.searchsorted(tracks[:, C_SHOT], n_shots)) if len(tracks) else 0
        # shots written past the intact ones (not a writer's zero reserve)
        m = max(n_shots, int(tracks[:, C_SHOT].max()) + 1 if len(tracks) else 0)
        while m < len(shots) and shots[m, 1] > 0 and (m == 0 or shots[m, 0] >= shots[m - 1, 1]):
            m += 1
        removed = [f"/{TIMELINE}/shot{i}" for i in range(n_shots, m)]
    tracks = tracks[:keep]
    rows = int(tracks[-1, C_ROW] + tracks[-1, C_END] - tracks[-1, C_START]) if keep else 0
    entries = int(arrays[INDPTR][rows]) if n_ptr > rows else 0
    for name, length in ((TRACKS, keep), (INDPTR, rows + 1), (DATA, entries), (INDICES, entries)):
        if len(arrays[name]) > length:
            arrays[name].truncate(length)
    if len(arrays[INDPTR]) == 0:
        arrays[INDPTR].append(np.zeros(1, POINTER_DTYPE))
    if unseg:
        start, end = (int(x) for x in unseg_range(timeline, tracks)[0])
        if len(arrays[SHOTS]):
            arrays[SHOTS].truncate(0)
        arrays[SHOTS].append(np.array([[start, end]], TABLE_DTYPE))
        timeline.attrs.update({"start_frame": start, "end_frame": end})
    elif len(arrays[SHOTS]) > n_shots:
        arrays[SHOTS].truncate(n_shots)
    return n_shots, removed


def validate_packed(
    root: Group, timeline: Group, limbs: int | None, deep: bool
) -> tuple[list[str], int, int]:
    """Every problem of a packed timeline, as lines; and its shot and track counts.

    Checks the arrays' presence, dtypes and shapes, the tables' ordering
    invariants, that offsets are monotone, in range and agree with ``indptr``,
    ``indptr`` against ``data``/``indices``, keypoint numbers below ``limbs``, the
    unsegmented timeline's range, and with ``deep`` that ``data`` is finite.
    """
    problems: list[str] = []
    where = timeline.path.rstrip("/")
    arrays: dict[str, Array] = {}
    for name in ARRAY_NAMES:
        node = timeline.get(name)
        if not isinstance(node, Array):
            problems.append(f"{where}: missing array {name!r} (packed layout)")
            continue
        if node.dtype != DTYPES[name]:
            problems.append(f"{where}/{name}: dtype {node.dtype}, expected {DTYPES[name]}")
        shape = node.shape
        if len(shape) != 1 + len(TRAILING[name]) or tuple(shape[1:]) != TRAILING[name]:
            problems.append(f"{where}/{name}: shape {shape}")
            continue
        arrays[name] = node
    extra = [k for k in timeline if k not in ARRAY_NAMES]
    if extra:
        problems.append(f"{where}: unexpected members {extra} (packed layout)")
    if len(arrays) != len(ARRAY_NAMES):
        return problems, 0, 0
    shots = arrays[SHOTS].read().astype(np.int64)
    tracks = arrays[TRACKS].read().astype(np.int64)
    unseg = root.attrs.get("fmt_type") == "unseg"
    n_tracks = len({(int(s), int(p)) for s, p in tracks[:, :2]}) if len(tracks) else 0
    try:
        _check_tables(where, shots, tracks)
    except FormatError as exc:
        problems.append(str(exc))
        return problems, len(shots), n_tracks
    if unseg:
        try:
            rng = frame_attrs(timeline, where)
            if shots.tolist() != [list(rng)]:
                problems.append(
                    f"{where}/shots: {shots.tolist()} is not the timeline's range {list(rng)}"
                )
        except FormatError as exc:
            problems.append(str(exc))
    pose_ids = tracks[:, C_POSE] if len(tracks) else np.zeros(0, np.int64)
    if (pose_ids < 0).any():
        problems.append(f"{where}/tracks: negative pose ids")
    problems += _check_parts_order(where, tracks)
    rows = int(tracks[-1, C_ROW] + tracks[-1, C_END] - tracks[-1, C_START]) if len(tracks) else 0
    ptr = arrays[INDPTR].read().astype(np.int64)
    n = len(arrays[DATA])
    if len(ptr) != rows + 1:
        problems.append(f"{where}/indptr: {len(ptr)} entries, expected {rows + 1}")
    if len(ptr):
        if ptr[0] != 0:
            problems.append(f"{where}/indptr: starts at {int(ptr[0])}, expected 0")
        if (np.diff(ptr) < 0).any():
            problems.append(f"{where}/indptr: not monotone")
        elif int(ptr[-1]) != n:
            problems.append(f"{where}/indptr: ends at {int(ptr[-1])}, data has {n} entries")
    if len(arrays[INDICES]) != n:
        problems.append(f"{where}: data and indices lengths differ")
    if len(tracks) and len(ptr) > rows:
        bad = np.nonzero(ptr[tracks[:, C_ROW]] != tracks[:, C_ENTRY])[0]
        if len(bad):
            t = int(bad[0])
            problems.append(
                f"{where}/tracks: row {t}: entry {int(tracks[t, C_ENTRY])} but "
                f"indptr[{int(tracks[t, C_ROW])}] = {int(ptr[tracks[t, C_ROW]])}"
            )
    if limbs is not None and n:
        top = 0
        step = 2**22
        for a in range(0, n, step):
            top = max(top, int(arrays[INDICES][a : a + step].max()))
        if top >= limbs:
            problems.append(f"{where}/indices: keypoint {top} >= limbs {limbs}")
    if deep and n:
        for a in range(0, n, 2**20):
            if not np.all(np.isfinite(arrays[DATA][a : a + 2**20])):
                problems.append(f"{where}/data: holds NaN or infinite values")
                break
    return problems, (1 if unseg else len(shots)), n_tracks


def _check_parts_order(where: str, tracks: np.ndarray) -> list[str]:
    """Parts of one (shot, pose id) in frame order, not overlapping."""
    if not len(tracks):
        return []
    order = np.lexsort((np.arange(len(tracks)), tracks[:, C_POSE], tracks[:, C_SHOT]))
    t = tracks[order]
    same = (t[1:, C_SHOT] == t[:-1, C_SHOT]) & (t[1:, C_POSE] == t[:-1, C_POSE])
    bad = np.nonzero(same & (t[1:, C_START] < t[:-1, C_END]))[0]
    if len(bad):
        i = int(order[bad[0] + 1])
        return [
            f"{where}/tracks: row {i}: overlaps or precedes an earlier part of pose "
            f"{int(tracks[i, C_POSE])} in shot {int(tracks[i, C_SHOT])}"
        ]
    return []


@dataclass
class PackedSummary:
    shots: int
    pose_tracks: int
    poses_stored: int
    keypoints_stored: int
    compression: str | None


def describe_packed(root: Group, timeline: Group) -> PackedSummary:
    """Counts behind ``skelstore info`` for a packed dump (reads the tables and
    ``indptr``, no keypoint data)."""
    pt = PackedTimeline(root, timeline)
    ptr = pt.arrays[INDPTR][: pt.n_rows + 1].astype(np.int64) if pt.n_rows else np.zeros(1)
    tracks = pt.tracks
    n_tracks = len({(int(s), int(p)) for s, p in tracks[:, :2]}) if len(tracks) else 0
    unseg = root.attrs.get("fmt_type") == "unseg"
    return PackedSummary(
        shots=1 if unseg else len(pt),
        pose_tracks=n_tracks,
        poses_stored=int(np.count_nonzero(np.diff(ptr))),
        keypoints_stored=int(ptr[-1]),
        compression=preset_name(pt.arrays[DATA].encoding, pt.arrays[INDICES].encoding),
    )
