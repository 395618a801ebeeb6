"""The CSR timeline layout of a skeleton dump, over the storage interface.

This module is the one place that knows how a dump is laid out::

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
loops over frames in Python.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelstore.compression import Encoding, Preset, get_preset, lossy_limit, lossy_problem
from skelstore.errors import FormatError, InputError, NotFoundError
from skelstore.storage import Array, ArraySpec, Group, GroupSpec

__all__ = [
    "DATA_DTYPE",
    "FACE_DIMENSIONS",
    "FMT_TYPES",
    "FMT_VERSION",
    "INDICES_DTYPE",
    "INDPTR_DTYPE",
    "KEYPOINT_ELEMENT",
    "POSE_DIMENSIONS",
    "TIMELINE",
    "ShotInfo",
    "Track",
    "TrackSource",
    "TrackWriter",
    "check_frame",
    "check_num_kps",
    "data_chunk_rows",
    "dimension_names",
    "encode_rows",
    "first_stored_at_or_beyond",
    "list_shots",
    "list_tracks",
    "parse_index",
    "pose_chunks",
    "pose_name",
    "shot_info",
    "shot_names",
    "track_groups",
    "track_specs",
    "write_track",
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
        # Scatter whole 12-byte keypoints into float32 and widen once: 2.7x faster
        # than a casting fancy-index assignment (measured, 30k BODY_25_ALL rows).
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


def as_keypoints(pose: Any, max_kps: int | None = None, where: str = "") -> np.ndarray:
    """A pose given as an array, or as an object with ``.keypoints``/``.all()``, as a
    ``(keypoints, 3)`` float32 array.

    Raises:
        InputError: not numbers, not ``(keypoints, 3)``, or wider than ``max_kps``
            (65536, the uint16 keypoint numbers, when not given).
    """
    if hasattr(pose, "all") and not isinstance(pose, np.ndarray):
        pose = pose.all()
    elif hasattr(pose, "keypoints"):
        pose = pose.keypoints
    try:
        arr = np.asarray(pose, dtype=DATA_DTYPE)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(
            f"{where}a pose must be a (keypoints, 3) array of numbers, got "
            f"{type(pose).__name__} ({exc})"
        ) from None
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] > (max_kps or 65536):
        if arr.ndim == 2 and arr.shape[1] == 3:
            raise InputError(
                f"{where}a pose of {arr.shape[0]} keypoints does not fit "
                f"{max_kps or 65536} keypoints a pose (num_kps)"
            )
        raise InputError(f"{where}a pose must be a (keypoints, 3) array, got shape {arr.shape}")
    return arr


def check_num_kps(num_kps: Any, where: str = "", what: str = "num_kps") -> int | None:
    """``num_kps`` of a writer as an int (or ``None``: not given).

    Raises:
        InputError: not an integer from 1 to 65536 (keypoint numbers are uint16).
    """
    if num_kps is None:
        return None
    if isinstance(num_kps, bool) or not isinstance(num_kps, (int, np.integer)):
        raise InputError(f"{where}{what} must be an integer, not {num_kps!r}")
    if not 0 < num_kps <= 65536:
        raise InputError(f"{where}{what} must be between 1 and 65536, not {num_kps}")
    return int(num_kps)


def check_frame(frame: Any, where: str = "", what: str = "frame") -> int:
    """A frame number given to a writer, as an int.

    Raises:
        InputError: not an integer, negative, or beyond :data:`MAX_FRAME`.
    """
    if isinstance(frame, bool):
        raise InputError(f"{where}{what} must be an integer, not {frame!r}")
    try:
        value = operator.index(frame)
    except TypeError:
        raise InputError(f"{where}{what} must be an integer, not {frame!r}") from None
    if not 0 <= value < MAX_FRAME:
        raise InputError(f"{where}{what} {value} is not between 0 and {MAX_FRAME - 1}")
    return value


def pose_name(pose_id: Any, where: str = "") -> str:
    """The group name ``poseN`` of a pose id given to a writer.

    Raises:
        InputError: not an integer, negative, or too large for readers (18 digits).
    """
    if isinstance(pose_id, bool):
        raise InputError(f"{where}pose id must be an integer, not {pose_id!r}")
    try:
        value = operator.index(pose_id)
    except TypeError:
        raise InputError(f"{where}pose id must be an integer, not {pose_id!r}") from None
    if not 0 <= value < 10**18:
        raise InputError(f"{where}pose id {value} is not between 0 and 10**18 - 1")
    return f"pose{value}"


def check_track_values(
    data: np.ndarray, indptr: np.ndarray, start_frame: int, scale_digits: int | None, where: str
) -> None:
    """Refuse a track whose stored values its lossy encoding cannot keep (see
    :func:`skelstore.compression.check_lossy`), naming the frame.

    ``indptr`` holds row ends relative to ``data`` (``indptr[0]`` is 0).
    """
    found = lossy_problem(data, scale_digits)
    if found is None:
        return
    assert scale_digits is not None
    (entry, *_), value = found
    row = int(np.searchsorted(np.asarray(indptr), entry, side="right")) - 1
    raise InputError(
        f"{where} at frame {start_frame + row}: cannot store {value!r} with a lossy "
        f"preset (scale-offset, {scale_digits} decimals), which keeps finite values of "
        f"magnitude below {lossy_limit(scale_digits):g} only; use a lossless preset"
    )


# ----------------------------------------------------------------- writing


@dataclass(frozen=True)
class ArraySettings:
    """How the arrays of pose groups are created: preset, h5py options, chunking."""

    num_kps: int | None
    preset: Preset
    lossless_kwargs: dict[str, Any] | None = None
    lossy_kwargs: dict[str, Any] | None = None

    @classmethod
    def make(
        cls,
        num_kps: int | None,
        compression: str | Preset | None = None,
        lossless_kwargs: dict[str, Any] | None = None,
        lossy_kwargs: dict[str, Any] | None = None,
    ) -> ArraySettings:
        return cls(num_kps, get_preset(compression), lossless_kwargs or None, lossy_kwargs or None)

    def encoding(self, role: str, entries: int | None) -> Encoding:
        return self.preset.for_array(role, entries)

    @property
    def data_scale_digits(self) -> int | None:
        """Decimals a scale-offset filter keeps on ``data`` (``None``: lossless),
        from the preset or skelshop's raw ``lossy_kwargs``."""
        raw = (self.lossy_kwargs or {}).get("scaleoffset")
        if isinstance(raw, (int, np.integer)) and not isinstance(raw, bool) and raw >= 0:
            return int(raw)
        return self.preset.data.scale_digits

    def engine_options(self, role: str, entries: int | None) -> dict[str, Any] | None:
        """skelshop's raw h5py settings: lossless on data and indices (dropped for
        small tracks), lossy on data only; never on indptr."""
        if self.lossless_kwargs is None and self.lossy_kwargs is None:
            return None
        opts: dict[str, Any] = {}
        small = entries is not None and entries < 24
        if role in ("data", "indices") and self.lossless_kwargs and not small:
            opts.update(self.lossless_kwargs)
        if role == "data" and self.lossy_kwargs:
            opts.update(self.lossy_kwargs)
        return opts

    def _array_kwargs(
        self, role: str, entries: int | None, trailing: tuple, min_chunk_bytes: int | None
    ) -> dict[str, Any]:
        """Chunks, encoding and h5py options of array ``role``; ``entries`` is its
        length (``None`` if growable). The small-track rule uses the array's own
        length, which for ``data``/``indices`` is the track's stored keypoints, as
        in skelshop."""
        return {
            "chunks": pose_chunks(role, self.num_kps, entries, trailing, min_chunk_bytes),
            "encoding": self.encoding(role, entries),
            "engine_options": self.engine_options(role, entries),
        }

    def create_growable(self, group: Group, role: str, dtype: np.dtype, trailing: tuple) -> Array:
        """Create the empty growable array ``role`` of a pose group."""
        return group.create_array(
            role,
            shape=(0, *trailing),
            dtype=dtype,
            growable=True,
            **self._array_kwargs(role, None, trailing, group.min_chunk_bytes),
        )

    def spec(self, path: str, data: np.ndarray, min_chunk_bytes: int | None) -> ArraySpec:
        """The :class:`ArraySpec` of a filled pose array; ``path`` ends in its role."""
        role = path.rsplit("/", 1)[-1]
        return ArraySpec(
            path, data, **self._array_kwargs(role, len(data), data.shape[1:], min_chunk_bytes)
        )


def track_specs(
    path: str, track: Track, settings: ArraySettings, min_chunk_bytes: int | None
) -> list[GroupSpec | ArraySpec]:
    """The pose group ``path`` holding ``track``, as nodes for
    :meth:`~skelstore.storage.Group.write_many` (the group, then its three arrays)."""
    return [
        GroupSpec(path, {"start_frame": track.start_frame, "end_frame": track.end_frame}),
        settings.spec(
            f"{path}/data", np.asarray(track.data, DATA_DTYPE).reshape(-1, 3), min_chunk_bytes
        ),
        settings.spec(f"{path}/indices", np.asarray(track.indices, INDICES_DTYPE), min_chunk_bytes),
        settings.spec(f"{path}/indptr", np.asarray(track.indptr, INDPTR_DTYPE), min_chunk_bytes),
    ]


def write_track(parent: Group, name: str, track: Track, settings: ArraySettings) -> None:
    """Write ``track`` as the pose group ``parent/name`` in one go (fixed-size arrays)."""
    parent.write_many(track_specs(name, track, settings, parent.min_chunk_bytes))


class TrackWriter:
    """Builds one pose track frame by frame and writes it in large appends.

    ``add(frame, pose)`` takes frames in increasing order (a repeated frame replaces
    the earlier pose). With ``growable=True`` the arrays are created in ``parent``
    at the first pose and extended every ``block`` frames (for unsegmented dumps and
    crash safety); otherwise everything is written by :meth:`finish`, into the
    parent given there (a shot group that exists only once the shot ends).
    """

    def __init__(
        self,
        parent: Group | None,
        name: str,
        settings: ArraySettings,
        *,
        growable: bool = False,
        block: int = 4096,
        where: str = "",
        max_kps: int | None = None,
    ) -> None:
        """``where`` names the track in error messages (file and place);
        ``max_kps`` is the widest pose accepted (``settings.num_kps`` if not given)."""
        self.parent = parent
        self.name = name
        self.settings = settings
        self.growable = growable
        self.block = block
        self.where = where or f"pose track {name}"
        self._prefix = f"{self.where}: "
        self.max_kps = max_kps or settings.num_kps
        self.start_frame: int | None = None
        self.last_frame: int | None = None
        self._frames: list[int] = []
        self._poses: list[np.ndarray] = []
        self._group: Group | None = None
        self._arrays: tuple[Array, Array, Array] | None = None
        self._flushed_rows = 0  # rows already written (growable mode)
        self._flushed_nnz = 0

    def add(self, frame: int, pose: Any) -> None:
        """Add the pose at ``frame`` (an int; frames must not decrease).

        Raises:
            InputError: a frame before the last one, or a pose that is not a
                ``(keypoints, 3)`` array of at most ``max_kps`` keypoints.
        """
        kps = as_keypoints(pose, self.max_kps, self._prefix)
        if self.start_frame is None:
            self.start_frame = frame
            if self.growable:
                self._create_growable()
        elif frame <= (self.last_frame or 0):
            if frame == self.last_frame and self._frames and self._frames[-1] == frame:
                self._poses[-1] = kps
                return
            raise InputError(
                f"{self.where}: frame {frame} added after frame "
                f"{self.last_frame}; frames must increase"
            )
        self._frames.append(frame)
        self._poses.append(kps)
        self.last_frame = frame
        if self.growable and len(self._frames) >= self.block:
            self._append(upto=frame)

    @property
    def buffered(self) -> int:
        """Poses added and not yet written."""
        return len(self._frames)

    def _create_growable(self) -> None:
        assert self.parent is not None, "growable tracks need their parent group"
        grp = self.parent.create_group(self.name, {"start_frame": self.start_frame})
        s = self.settings
        self._group = grp
        self._arrays = (
            s.create_growable(grp, "data", DATA_DTYPE, (3,)),
            s.create_growable(grp, "indices", INDICES_DTYPE, ()),
            s.create_growable(grp, "indptr", INDPTR_DTYPE, ()),
        )
        # indptr holds row ends after its leading 0, appended after data and
        # indices: a crash leaves complete rows only (see skelstore.recovery).
        self._arrays[2].append(np.zeros(1, dtype=INDPTR_DTYPE))

    def _encode_pending(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR of the buffered poses over ``rows`` rows from the first unwritten row."""
        assert self.start_frame is not None
        base = self.start_frame + self._flushed_rows
        if self._poses:
            width = max(p.shape[0] for p in self._poses)
            stack = np.zeros((len(self._poses), width, 3), dtype=DATA_DTYPE)
            for i, p in enumerate(self._poses):
                stack[i, : p.shape[0]] = p
        else:
            stack = np.zeros((0, 1, 3), dtype=DATA_DTYPE)
        rel = np.asarray(self._frames, dtype=np.int64) - base
        return encode_rows(stack, rel, rows)

    def _append(self, upto: int) -> None:
        """Write every buffered frame up to and including ``upto`` (growable mode)."""
        assert self._arrays is not None and self.start_frame is not None
        rows = upto - self.start_frame + 1 - self._flushed_rows
        data, indices, indptr = self._encode_pending(rows)
        check_track_values(
            data,
            indptr,
            self.start_frame + self._flushed_rows,
            self.settings.data_scale_digits,
            self.where,
        )
        data_a, indices_a, indptr_a = self._arrays
        data_a.append(data)
        indices_a.append(indices)
        indptr_a.append((indptr[1:].astype(np.int64) + self._flushed_nnz).astype(INDPTR_DTYPE))
        self._flushed_rows += rows
        self._flushed_nnz += len(data)
        self._frames.clear()
        self._poses.clear()
        if self._group is not None:
            self._group.flush()  # each appended block is durable

    def flush(self) -> None:
        """Append every buffered frame now (growable tracks; a no-op otherwise or when
        nothing is buffered). Lets a caller bound memory for tracks that went idle."""
        if self.growable and self._frames and self.last_frame is not None:
            self._append(upto=self.last_frame)

    def finish(self, parent: Group | None = None) -> Group | None:
        """Write what is left; the group's ``end_frame`` is the last frame + 1.

        Returns the pose group, or ``None`` if no pose was ever added.
        """
        parent = parent if parent is not None else self.parent
        if self.start_frame is None or self.last_frame is None:
            return None
        end = self.last_frame + 1
        if self.growable:
            assert self._arrays is not None and self._group is not None
            if self._frames:
                self._append(upto=self.last_frame)
            self._group.attrs["end_frame"] = end
            return self._group
        track = self.take_track()
        if parent is None:
            raise ValueError("finish() needs the parent group of the track")
        write_track(parent, self.name, track, self.settings)
        node = parent[self.name]
        return node if isinstance(node, Group) else None

    def take_track(self) -> Track:
        """The buffered poses as one :class:`Track` (not growable mode), emptying
        the buffer; its rows run from the first pose's frame to the last's."""
        if self.start_frame is None or self.last_frame is None or self.growable:
            raise ValueError(f"pose track {self.name}: nothing buffered to take")
        end = self.last_frame + 1
        data, indices, indptr = self._encode_pending(end - self.start_frame)
        check_track_values(
            data, indptr, self.start_frame, self.settings.data_scale_digits, self.where
        )
        track = Track(self.start_frame, end, data, indices, indptr)
        self._frames.clear()
        self._poses.clear()
        return track


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


# ------------------------------------------------------------ dimension names

#: Dimension names of the arrays of a pose group (``poseN``), by array name.
POSE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "data": ("keypoint_entry", "xyc"),
    "indices": ("keypoint_entry",),
    "indptr": ("frame_boundary",),
}
#: Dimension names of the arrays of the face group (``faces``), by array name.
FACE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "indices": ("frame",),
    "frame_pers": ("face", "frame_person"),
    "embed": ("face", "embedding"),
    "fod_bbox": ("face", "fod_box"),
    "chip_bbox": ("face", "chip_box"),
    "chip": ("face", "chip_y", "chip_x", "chip_channel"),
}


#: Dimension names of the packed layout's arrays, directly in ``/timeline``
#: (:mod:`skelstore.packed`; its tables and concatenated CSR arrays).
PACKED_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "shots": ("shot", "shot_field"),
    "tracks": ("track", "track_field"),
    "indptr": ("row_edge",),
    "data": ("entry", "xyc"),
    "indices": ("entry",),
}


def dimension_names(path: str, ndim: int) -> tuple[str, ...]:
    """The names of the dimensions of the array at ``path`` (for storage that keeps
    them: Zarr's ``dimension_names``, which xarray needs).

    Arrays of a pose group (``.../poseN/data``), of the face group
    (``.../faces/embed``) and of a packed timeline (``timeline/data``) get
    :data:`POSE_DIMENSIONS`, :data:`FACE_DIMENSIONS` and :data:`PACKED_DIMENSIONS`;
    any other array, or one with another number of dimensions, ``<name>_dim<i>``,
    which no other array of its group shares (xarray requires a dimension shared
    within a group to have one length).
    """
    parts = [p for p in path.split("/") if p]
    leaf = parts[-1] if parts else "array"
    parent = parts[-2] if len(parts) > 1 else ""
    table: dict[str, tuple[str, ...]] = {}
    if parent.startswith("pose") and parent[4:].isdigit() and parent[4:].isascii():
        table = POSE_DIMENSIONS
    elif parent == "faces":  # skelstore.face.FACES (this module does not import face)
        table = FACE_DIMENSIONS
    elif parent == TIMELINE and len(parts) == 2:
        table = PACKED_DIMENSIONS
    names = table.get(leaf)
    if names is not None and len(names) == ndim:
        return names
    return tuple(f"{leaf}_dim{i}" for i in range(ndim))
