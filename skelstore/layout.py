"""The CSR timeline layout of a skeleton dump, over the storage interface.

This module describes skelshop's layout of a dump (the packed one: :mod:`skelstore.packed`)::

    /                       attrs: fmt_type, fmt_ver, mode, limbs, num_frames, video, ...
    /timeline               (unseg: attrs start_frame, end_frame; poseN groups directly)
    /timeline/shotN         attrs start_frame, end_frame (half-open frame range)
    /timeline/shotN/poseM   attrs start_frame, end_frame; arrays:
        data     float32 (nnz, 3)   x, y, confidence of each stored keypoint
        indices  uint16  (nnz,)     keypoint index of each entry
        indptr   uint32  (rows + 1) row r (frame start_frame + r) is
                                    data[indptr[r]:indptr[r + 1]]

Keypoints whose confidence is 0 are not stored. Chunking follows skelshop:
``clamp(num_kps * 15, 2**14 // 14, 2**19 // 14)`` rows for ``data``/``indices``
(capped at the array's length when written in one go), 1024 for ``indptr``.

Everything is vectorised numpy on whole arrays or blocks of rows; nothing here
loops over frames in Python. Writing tracks in this layout is
:mod:`skelstore.trackwriter`; the checks of writers' input, :mod:`skelstore.inputs`;
arrays' dimension names, :mod:`skelstore.dimensions`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelstore.errors import FormatError, NotFoundError
from skelstore.storage import Array, Group

__all__ = [
    "DATA_DTYPE",
    "FMT_TYPES",
    "FMT_VERSION",
    "INDICES_DTYPE",
    "INDPTR_DTYPE",
    "KEYPOINT_ELEMENT",
    "TIMELINE",
    "ShotInfo",
    "Track",
    "TrackSource",
    "data_chunk_rows",
    "encode_rows",
    "first_stored_at_or_beyond",
    "list_shots",
    "list_tracks",
    "parse_index",
    "pose_chunks",
    "shot_info",
    "shot_names",
    "track_groups",
]

TIMELINE = "timeline"
FMT_TYPES = ("trackshots", "unseg")
FMT_VERSION = 1

DATA_DTYPE = np.dtype(np.float32)
INDICES_DTYPE = np.dtype(np.uint16)
INDPTR_DTYPE = np.dtype(np.uint32)

MIN_CHUNK_DIM = 2**14 // 14  # 16 KiB of (4 bytes * 3 coords + 2 bytes)
MAX_CHUNK_DIM = 2**19 // 14  # 512 KiB
INDPTR_CHUNK_SIZE = 1024


#: Cap on the engine's minimum chunk size for ``indptr`` (16384 frames a chunk).
INDPTR_MAX_MIN_CHUNK_BYTES = 64 * 2**10


def data_chunk_rows(num_kps: int | None) -> int:
    """skelshop's chunk length for ``data``/``indices``: about 15 frames of one pose."""
    if num_kps is None:
        return MIN_CHUNK_DIM
    return int(min(max(num_kps * 15, MIN_CHUNK_DIM), MAX_CHUNK_DIM))


def pose_chunks(
    role: str,
    num_kps: int | None,
    entries: int | None,
    trailing: tuple[int, ...] = (),
    min_chunk_bytes: int | None = None,
) -> tuple[int, ...]:
    """Chunk shape of a pose group's array ``role`` (``data``/``indices``/``indptr``).

    skelshop's rule: :func:`data_chunk_rows` rows for ``data``/``indices``, 1024 for
    ``indptr``, capped at ``entries`` (the length) for arrays written in one go
    (``entries`` is ``None`` for growable ones). Where the engine asks for
    ``min_chunk_bytes`` (Zarr), the rows are multiplied up to reach it, still
    capped at the length.
    """
    rows = INDPTR_CHUNK_SIZE if role == "indptr" else data_chunk_rows(num_kps)
    if min_chunk_bytes and role == "indptr":
        # indptr is never compressed (skelshop's rule) and Zarr stores a growable
        # array's last chunk whole: 1 MiB would be 262k frames, mostly padding
        min_chunk_bytes = min(min_chunk_bytes, INDPTR_MAX_MIN_CHUNK_BYTES)
    if min_chunk_bytes:
        itemsize = {"data": 12, "indices": 2, "indptr": 4}.get(role, 8)
        rows *= max(1, -(-min_chunk_bytes // (rows * itemsize)))
    if entries is not None:
        rows = max(1, min(rows, entries))
    return (rows, *trailing)


def parse_index(name: str, prefix: str, where: str) -> int:
    """The N of a child called ``{prefix}N``.

    Raises:
        FormatError: ``name`` is not ``prefix`` followed by digits.
    """
    digits = name[len(prefix) :]
    if not name.startswith(prefix) or not (digits.isascii() and digits.isdigit()):
        raise FormatError(f"{where}: unexpected member {name!r} (expected {prefix}N)")
    if len(digits) > 18:  # N must fit an int64 (shot numbers end up in numpy arrays)
        raise FormatError(f"{where}: member {name!r}: number too large")
    return int(digits)


#: Frame numbers must stay below this (2**31 frames: over two years at 30 fps); a
#: larger ``end_frame`` is damage, and would make readers walk billions of frames.
MAX_FRAME = 2**31


def frame_attrs(node: Group, where: str | None = None) -> tuple[int, int]:
    """``(start_frame, end_frame)`` of a shot, pose or unseg timeline group.

    Raises:
        FormatError: an attribute is missing, not an integer, or the range is reversed.
    """
    attrs = node.attrs
    where = where or node.where()
    try:
        start, end = attrs["start_frame"], attrs["end_frame"]
    except KeyError:
        name = "start_frame" if "start_frame" not in attrs else "end_frame"
        raise FormatError(f"{where}: missing attribute {name!r}") from None
    if isinstance(start, bool) or isinstance(end, bool):
        raise FormatError(f"{where}: start_frame/end_frame must be integers")
    try:
        start_i, end_i = int(start), int(end)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        raise FormatError(f"{where}: start_frame/end_frame must be integers") from None
    if start_i != start or end_i != end or start_i < 0 or end_i < start_i:
        raise FormatError(f"{where}: bad frame range start_frame={start!r} end_frame={end!r}")
    if end_i > MAX_FRAME:
        raise FormatError(f"{where}: end_frame {end_i} beyond the largest frame number {MAX_FRAME}")
    return start_i, end_i


# ----------------------------------------------------------------- tracks in memory


@dataclass
class Track:
    """One pose track in CSR form, in memory.

    Row ``r`` is frame ``start_frame + r``; ``indptr`` has ``rows + 1`` entries.
    """

    start_frame: int
    end_frame: int
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray

    @property
    def rows(self) -> int:
        return self.end_frame - self.start_frame

    def dense(self, limbs: int, r0: int = 0, r1: int | None = None) -> np.ndarray:
        """Rows ``r0:r1`` as a dense ``(rows, limbs, 3)`` float64 array (absent = 0)."""
        r1 = self.rows if r1 is None else r1
        return decode_rows(self.data, self.indices, self.indptr[r0 : r1 + 1], limbs)


_NATIVE_F4 = np.dtype(np.float32)
#: One keypoint (x, y, c as float32) as a single 12-byte element, for scattering
#: whole keypoints with ``np.put`` (readers and :mod:`skelstore.dense`).
KEYPOINT_ELEMENT = np.dtype("V12")


def decode_rows(
    data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, limbs: int, where: str = ""
) -> np.ndarray:
    """Dense ``(len(indptr) - 1, limbs, 3)`` float64 rows from a CSR slice.

    ``indptr`` holds absolute offsets into the full arrays; ``data``/``indices`` are
    the entries from ``indptr[0]`` to ``indptr[-1]``.
    """
    n = len(indptr) - 1
    if n <= 0 or len(data) == 0:
        return np.zeros((max(n, 0), limbs, 3), dtype=np.float64)
    counts = np.diff(indptr.astype(np.int64))
    rows = np.repeat(np.arange(n) * limbs, counts)
    if len(rows) != len(data) or len(indices) != len(data):
        raise FormatError(f"{where}: indptr does not match data/indices lengths")
    if indices.size and int(indices.max()) >= limbs:
        raise FormatError(
            f"{where}: keypoint index {int(indices.max())} out of range for {limbs} limbs"
        )
    flat = rows + indices  # flat (row, keypoint) index: one fancy index, not two
    if data.dtype == _NATIVE_F4 and data.ndim == 2 and data.shape[1] == 3:
        # Scatter whole 12-byte keypoints into float32 and widen once, rather than a
        # casting fancy-index assignment (docs/performance.md: measurements behind the code).
        out32 = np.zeros((n * limbs, 3), dtype=np.float32)
        np.put(
            out32.view(KEYPOINT_ELEMENT).reshape(-1),
            flat,
            np.ascontiguousarray(data).view(KEYPOINT_ELEMENT).reshape(-1),
        )
        return out32.astype(np.float64).reshape(n, limbs, 3)
    out = np.zeros((n * limbs, 3), dtype=np.float64)
    out[flat] = data
    return out.reshape(n, limbs, 3)


def encode_rows(
    poses: np.ndarray, row_of_pose: np.ndarray, rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays for poses placed at given rows of a track.

    Args:
        poses: ``(k, kps, 3)`` keypoints, one pose per entry of ``row_of_pose``.
        row_of_pose: increasing row numbers (``k`` of them) in ``0..rows-1``.
        rows: number of rows of the track (frames with no pose stay empty).

    Returns:
        ``(data, indices, indptr)`` with skelshop's dtypes; keypoints whose
        confidence is 0 are dropped.
    """
    poses = np.asarray(poses, dtype=DATA_DTYPE)
    mask = poses[..., 2] != 0
    pose_idx, kp_idx = np.nonzero(mask)
    data = poses[pose_idx, kp_idx]
    indices = kp_idx.astype(INDICES_DTYPE)
    counts = np.zeros(rows + 1, dtype=np.int64)
    np.add.at(counts, np.asarray(row_of_pose, dtype=np.int64) + 1, mask.sum(axis=1))
    indptr = np.cumsum(counts).astype(INDPTR_DTYPE)
    return data.reshape(-1, 3), indices, indptr


# ----------------------------------------------------------------- reading


@dataclass
class ShotInfo:
    """A shot's place in the timeline, read from its attributes only."""

    index: int
    name: str
    start_frame: int
    end_frame: int
    group: Group


def shot_names(timeline: Group) -> list[tuple[int, str]]:
    """``(N, "shotN")`` of every shot of a ``trackshots`` timeline, ordered by N.

    Only the names are read (no shot's attributes), so this is cheap on remote
    files; see :func:`shot_info` for one shot's frame range.

    Raises:
        FormatError: a member is not called ``shotN``.
    """
    out = [(parse_index(name, "shot", timeline.where()), name) for name in timeline]
    out.sort()
    return out


def shot_info(timeline: Group, index: int, name: str) -> ShotInfo:
    """The shot ``name`` of ``timeline`` with its frame range.

    Raises:
        FormatError: it is not a group or has bad frame attributes.
    """
    node = timeline[name]
    if not isinstance(node, Group):
        raise FormatError(f"{node.where()}: expected a shot group")
    start, end = frame_attrs(node)
    return ShotInfo(index, name, start, end, node)


def list_shots(timeline: Group) -> list[ShotInfo]:
    """Every shot of a ``trackshots`` timeline with its frame range, ordered by N.

    Raises:
        FormatError: a member is not ``shotN``, not a group, or has bad frame attrs.
    """
    return [shot_info(timeline, i, n) for i, n in shot_names(timeline)]


class TrackSource:
    """A stored pose track: its frame range and arrays, read in blocks of rows.

    Reading happens in bulk through :func:`load_tracks` (every ``indptr`` of a shot
    in one :meth:`~skelstore.storage.Group.read_many`) and :meth:`read_block`
    (``data``/``indices`` of many tracks for a block of frames in one call).
    """

    def __init__(self, pose_id: int, group: Group) -> None:
        self.pose_id = pose_id
        self.group = group
        self.where = group.where()
        self.start_frame, self.end_frame = frame_attrs(group)
        try:
            self.data = group["data"]
            self.indices = group["indices"]
            self.indptr_array = group["indptr"]
        except NotFoundError as exc:
            raise FormatError(f"{self.where}: incomplete pose group ({exc})") from None
        for arr in (self.data, self.indices, self.indptr_array):
            if not isinstance(arr, Array):
                raise FormatError(f"{arr.where()}: expected an array, found a group")
        if self.data.shape[1:] != (3,) or len(self.data.shape) != 2:
            raise FormatError(f"{self.where}/data: shape {self.data.shape}, expected (n, 3)")
        for arr, kinds in ((self.data, "fiu"), (self.indices, "iu"), (self.indptr_array, "iu")):
            if arr is not self.data and len(arr.shape) != 1:
                raise FormatError(f"{arr.where()}: shape {arr.shape}, expected (n,)")
            if arr.dtype.kind not in kinds:
                what = "numbers" if kinds == "fiu" else "integers"
                raise FormatError(f"{arr.where()}: dtype {arr.dtype}, expected {what}")
        self.indptr: np.ndarray | None = None
        #: Whole ``data``/``indices`` once loaded (small tracks are read whole).
        self.loaded: tuple[np.ndarray, np.ndarray] | None = None
        #: ``(lo, hi, data, indices)``: the entries of a long track read last.
        self.window: tuple[int, int, Any, Any] | None = None

    @property
    def rows(self) -> int:
        return self.end_frame - self.start_frame

    def set_indptr(self, indptr: np.ndarray) -> None:
        """Check and keep this track's ``indptr`` (cheap checks readers always do)."""
        indptr = np.asarray(indptr)
        if indptr.ndim != 1 or len(indptr) < self.rows + 1:
            raise FormatError(
                f"{self.where}/indptr: {len(indptr)} entries for {self.rows} frames "
                f"(need {self.rows + 1})"
            )
        indptr = indptr[: self.rows + 1].astype(np.int64)
        if len(indptr) and (np.any(np.diff(indptr) < 0) or indptr[0] < 0):
            raise FormatError(f"{self.where}/indptr: not monotone")
        if len(indptr) and indptr[-1] > len(self.data):
            raise FormatError(
                f"{self.where}/indptr: ends at {int(indptr[-1])} but data has "
                f"{len(self.data)} entries"
            )
        self.indptr = indptr

    def block_request(self, r0: int, r1: int) -> list[tuple[Array, slice]]:
        """``read_many`` requests for rows ``r0:r1`` (``data`` then ``indices``), or
        none if the entries are in :attr:`window` already.

        The span read is widened to whole chunks of ``data`` (the engine decodes
        them whole anyway) and kept as the track's window, so reading a long track
        block by block decodes each chunk once.
        """
        assert self.indptr is not None
        lo, hi = int(self.indptr[r0]), int(self.indptr[r1])
        if self.window is not None and self.window[0] <= lo and hi <= self.window[1]:
            return []
        rows = (self.data.chunks or (max(1, hi - lo),))[0]
        lo_al = (lo // rows) * rows
        hi_al = min(len(self.data), -(-hi // rows) * rows)
        self.window = (lo_al, hi_al, None, None)
        return [(self.data, slice(lo_al, hi_al)), (self.indices, slice(lo_al, hi_al))]

    def take(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """``data``/``indices`` entries of rows ``r0:r1`` from the loaded track or window."""
        assert self.indptr is not None
        lo, hi = int(self.indptr[r0]), int(self.indptr[r1])
        if self.loaded is not None:
            return self.loaded[0][lo:hi], self.loaded[1][lo:hi]
        assert self.window is not None and self.window[2] is not None
        w0, _, data, indices = self.window
        return data[lo - w0 : hi - w0], indices[lo - w0 : hi - w0]

    def decode(self, r0: int, r1: int, data: np.ndarray, indices: np.ndarray, limbs: int):
        assert self.indptr is not None
        return decode_rows(data, indices, self.indptr[r0 : r1 + 1], limbs, self.where)


def list_tracks(group: Group) -> list[TrackSource]:
    """The ``poseN`` tracks of a shot group (or unseg timeline), ordered by N.

    Raises:
        FormatError: a member is not ``poseN`` or lacks its arrays/attributes.
    """
    out = []
    for name, node in group.items():
        pid = parse_index(name, "pose", group.where())
        if not isinstance(node, Group):
            raise FormatError(f"{group.where()}/{name}: expected a pose group")
        out.append(TrackSource(pid, node))
    out.sort(key=lambda t: t.pose_id)
    return out


#: Tracks whose ``data`` + ``indices`` take at most this many bytes are read whole,
#: together with every ``indptr``, in the shot's first bulk read; longer ones (long
#: unsegmented tracks) are read block by block.
WHOLE_TRACK_BYTES = 8 * 2**20


def load_tracks(group: Group, tracks: Iterable[TrackSource]) -> None:
    """Read every track's ``indptr``, and the whole arrays of small tracks, in one
    bulk call (one round trip on remote stores)."""
    tracks = list(tracks)
    requests: list[Array] = [t.indptr_array for t in tracks]
    small = [t for t in tracks if len(t.data) * (12 + 2) <= WHOLE_TRACK_BYTES]
    for t in small:
        requests += [t.data, t.indices]
    results = group.read_many(requests) if requests else []
    for t, arr in zip(tracks, results, strict=False):
        t.set_indptr(arr)
    rest = results[len(tracks) :]
    for i, t in enumerate(small):
        data, indices = rest[2 * i], rest[2 * i + 1]
        if len(indices) != len(data):
            raise FormatError(f"{t.where}: data and indices lengths differ")
        t.loaded = (data, indices)


def read_dense_block(
    group: Group, tracks: list[TrackSource], f0: int, f1: int, limbs: int
) -> dict[int, tuple[int, np.ndarray]]:
    """Dense rows of every track overlapping frames ``f0:f1``.

    Tracks loaded whole are decoded from memory; the others' slices are read in
    one bulk call. Returns ``{pose_id: (first_frame, (n, limbs, 3) array)}`` for
    the overlapping part of each track.
    """
    spans = []
    requests: list[tuple[Array, slice]] = []
    fetching: list[TrackSource] = []
    for t in tracks:
        a, b = max(f0, t.start_frame), min(f1, t.end_frame)
        if a >= b:
            continue
        r0, r1 = a - t.start_frame, b - t.start_frame
        spans.append((t, a, r0, r1))
        if t.loaded is None:
            req = t.block_request(r0, r1)
            if req:
                requests.extend(req)
                fetching.append(t)
    results = iter(group.read_many(requests) if requests else [])
    for t in fetching:
        assert t.window is not None
        t.window = (t.window[0], t.window[1], next(results), next(results))
    out: dict[int, tuple[int, np.ndarray]] = {}
    for t, a, r0, r1 in spans:
        data, indices = t.take(r0, r1)
        out[t.pose_id] = (a, t.decode(r0, r1, data, indices, limbs))
    return out


def track_groups(root: Group) -> list[tuple[int | None, Group]]:
    """``(shot N or None for unseg, group)`` of every group holding pose tracks.

    Raises:
        FormatError: ``root`` is not a skeleton dump.
    """
    fmt_type = root.attrs.get("fmt_type")
    timeline = root.get(TIMELINE)
    if not isinstance(timeline, Group) or fmt_type not in FMT_TYPES:
        raise FormatError(f"{root.source}: not a skeleton dump (fmt_type={fmt_type!r})")
    if fmt_type == "unseg":
        return [(None, timeline)]
    return [(s.index, s.group) for s in list_shots(timeline)]


def first_stored_at_or_beyond(root: Group, limit: int) -> tuple[str, int] | None:
    """``(track, keypoint index)`` of the first stored keypoint whose index is at
    least ``limit``, or ``None``: reads every track's ``indices`` (one bulk read per
    shot; in the packed layout, its ``indices`` in blocks), not its ``data``."""
    from skelstore.packed import is_packed  # the packed layout builds on this module

    if is_packed(root):
        arr = root[TIMELINE]["indices"]
        block = 1 << 22
        for start in range(0, len(arr), block):
            idx = np.asarray(arr[start : start + block])
            hits = np.flatnonzero(idx >= limit)
            if hits.size:
                return f"{arr.where()}[{start + int(hits[0])}]", int(idx[hits[0]])
        return None
    for _, group in track_groups(root):
        tracks = list_tracks(group)
        arrays = group.read_many([t.indices for t in tracks]) if tracks else []
        for t, idx in zip(tracks, arrays, strict=True):
            idx = np.asarray(idx)
            if idx.size and int(idx.max()) >= limit:
                return t.where, int(idx[idx >= limit][0])
    return None
