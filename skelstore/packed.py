"""The packed layout: a whole timeline in five arrays, over the storage interface.

This module is the one place that knows the packed layout (documented in
``docs/layout.md``, section *Packed layout*)::

    /                 attrs: ..., layout = "packed", layout_version = 1
    /timeline         (unseg: attrs start_frame, end_frame)
        shots    int64   (shots, 2)    start_frame, end_frame
        tracks   int64   (tracks, 6)   shot, pose_id, start_frame, end_frame, row, entry
        indptr   int64   (rows + 1,)   global row pointers into data/indices
        data     float32 (entries, 3)  x, y, confidence
        indices  uint16  (entries,)    keypoint number

One row of ``tracks`` is a *part* of a track: a run of frames of one pose id in
one shot, stored as consecutive global rows from ``row`` and entries from
``entry``. Rows are sorted by shot and are contiguous in the CSR arrays, so one
shot is one range of every array.

It holds: layout detection and choice (:func:`layout_of`, :func:`writer_layout`),
the chunking and sharding plan, and the crash-safe appending writers
(:class:`PackedWriter`, :class:`PartBuffer`). Reading is in
:mod:`skelstore.packed_read`; whole-dump operations (conversion's view of a dump
as whole tracks, conversion, comparison) in :mod:`skelstore.packed_ops`; repair,
validation and summary in :mod:`skelstore.packed_check`.
Nothing here knows h5py or zarr.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelstore.compression import Encoding, Preset
from skelstore.dimensions import PACKED_DIMENSIONS
from skelstore.errors import FormatError
from skelstore.layout import DATA_DTYPE, INDICES_DTYPE, TIMELINE, Track
from skelstore.storage import Array, Group
from skelstore.trackwriter import ArraySettings, TrackWriter

__all__ = [
    "LAYOUTS",
    "LAYOUT_ATTR",
    "LAYOUT_VERSION",
    "LAYOUT_VERSION_ATTR",
    "PACKED",
    "SKELSHOP",
    "PackedWriter",
    "PartBuffer",
    "check_layout_name",
    "compact_arrays",
    "fitted_chunks",
    "is_packed",
    "layout_of",
    "plan_arrays",
    "writer_layout",
]

SKELSHOP = "skelshop"
PACKED = "packed"
LAYOUTS = (SKELSHOP, PACKED)
LAYOUT_ATTR = "layout"
LAYOUT_VERSION_ATTR = "layout_version"
#: Version of the packed layout this module reads and writes.
LAYOUT_VERSION = 1

SHOTS = "shots"
TRACKS = "tracks"
INDPTR = "indptr"
DATA = "data"
INDICES = "indices"
ARRAY_NAMES = (SHOTS, TRACKS, INDPTR, DATA, INDICES)

SHOT_COLUMNS = ("start_frame", "end_frame")
TRACK_COLUMNS = ("shot", "pose_id", "start_frame", "end_frame", "row", "entry")
C_SHOT, C_POSE, C_START, C_END, C_ROW, C_ENTRY = range(6)

TABLE_DTYPE = np.dtype(np.int64)
POINTER_DTYPE = np.dtype(np.int64)

DIMENSIONS = PACKED_DIMENSIONS
DTYPES = {
    SHOTS: TABLE_DTYPE,
    TRACKS: TABLE_DTYPE,
    INDPTR: POINTER_DTYPE,
    DATA: DATA_DTYPE,
    INDICES: INDICES_DTYPE,
}
TRAILING = {SHOTS: (2,), TRACKS: (6,), INDPTR: (), DATA: (3,), INDICES: ()}

#: Nominal chunk lengths (first axis) and chunks per Zarr 3 shard.
ENTRY_CHUNK = 2**16
ROW_CHUNK = 2**16
TABLE_CHUNK = 2**13
SHARD_CHUNKS = 10
NOMINAL_CHUNK = {
    SHOTS: TABLE_CHUNK,
    TRACKS: TABLE_CHUNK,
    INDPTR: ROW_CHUNK,
    DATA: ENTRY_CHUNK,
    INDICES: ENTRY_CHUNK,
}
#: Chunk lengths of growing arrays (writers that append shot by shot): every
#: append re-encodes the last chunk of each array, so they are small; and on
#: engines without a per-chunk cost (no ``min_chunk_bytes``: HDF5), which store
#: every chunk whole, for conversions too.
GROWING_CHUNK = {
    SHOTS: 2**10,
    TRACKS: 2**10,
    INDPTR: 2**14,
    DATA: 2**14,
    INDICES: 2**14,
}
#: Chunks per shard of growing arrays (Zarr 3): shards of about the converted ones' size.
GROWING_SHARD_CHUNKS = 12
#: Tables are not sharded: they are read whole, at most a few MB.
SHARDED = {SHOTS: False, TRACKS: False, INDPTR: True, DATA: True, INDICES: True}


# ---------------------------------------------------------------- which layout


def check_layout_name(layout: str | None) -> str | None:
    """``layout`` if it is ``None`` or a known layout name.

    Raises:
        FormatError: an unknown name.
    """
    if layout is not None and layout not in LAYOUTS:
        raise FormatError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return layout


def layout_of(root: Group) -> str:
    """The layout of the dump at ``root``: ``"packed"`` if its root attribute says
    so, else ``"skelshop"``.

    Raises:
        FormatError: the attribute names an unknown layout, or a packed layout
            version newer than this skelstore reads.
    """
    value = root.attrs.get(LAYOUT_ATTR)
    if value is None or value == SKELSHOP:
        return SKELSHOP
    if value != PACKED:
        raise FormatError(f"{root.source}: unknown layout {value!r} (root attribute 'layout')")
    version = root.attrs.get(LAYOUT_VERSION_ATTR)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FormatError(f"{root.source}: bad or missing 'layout_version' ({version!r})")
    if version > LAYOUT_VERSION:
        raise FormatError(
            f"{root.source}: packed layout version {version} is newer than this skelstore "
            f"reads ({LAYOUT_VERSION}); upgrade skelstore"
        )
    return PACKED


def is_packed(root: Group) -> bool:
    """True if the dump at ``root`` uses the packed layout (see :func:`layout_of`)."""
    return layout_of(root) == PACKED


def writer_layout(root: Group, requested: str | None = None) -> str:
    """The layout a writer uses in ``root``, by precedence:

    1. a dump that already has a timeline keeps its layout (asking for the other
       one raises);
    2. the writer's ``layout=`` (``requested``);
    3. ``skelstore.open(..., layout=...)`` (:attr:`Group.requested_layout`);
    4. the engine's default (:attr:`Group.default_layout`: ``packed`` for Zarr,
       ``skelshop`` for HDF5 and others).

    Raises:
        FormatError: an unknown layout, or one that differs from the dump's own.
    """
    check_layout_name(requested)
    existing = _existing_layout(root)
    if existing is not None:
        if requested is not None and requested != existing:
            raise FormatError(
                f"{root.source}: the dump is already in the {existing} layout; "
                f"cannot write the {requested} layout into it"
            )
        return existing
    chosen = requested or check_layout_name(root.requested_layout) or root.default_layout
    return check_layout_name(chosen) or SKELSHOP


def _existing_layout(root: Group) -> str | None:
    if LAYOUT_ATTR in root.attrs:
        return layout_of(root)
    timeline = root.get(TIMELINE)
    if isinstance(timeline, Group) and len(timeline.keys()):
        return SKELSHOP
    return None


def mark_packed(root: Group) -> None:
    """Record the packed layout in ``root``'s attributes."""
    root.attrs.update({LAYOUT_ATTR: PACKED, LAYOUT_VERSION_ATTR: LAYOUT_VERSION})


# ---------------------------------------------------------------- arrays: chunks, encodings


def fitted_chunks(n: int, nominal: int, per_shard: int | None) -> tuple[int, int | None]:
    """``(chunk, shard)`` lengths for an array of ``n`` rows written knowing ``n``.

    The chunk length is at most ``nominal`` and chosen so that the chunks fill
    whole shards of at most ``per_shard`` chunks (the last chunk is nearly full,
    and every shard's chunks lie inside the array: reading a whole shard is one
    request). ``shard`` is ``None`` for one chunk or when ``per_shard`` is None.
    """
    if n <= nominal:
        return max(1, n), None
    nch = -(-n // nominal)
    if not per_shard:
        return -(-n // nch), None
    shards = -(-nch // per_shard)
    k = -(-nch // shards)
    chunk = -(-n // (shards * k))
    if -(-n // chunk) != shards * k:  # only for tiny chunks; nominal ones always fit
        chunk = -(-n // nch)
        return chunk, chunk * min(per_shard, nch)
    return chunk, chunk * k if k > 1 else None


def _encoding(name: str, preset: Preset) -> Encoding:
    """The encoding of packed array ``name``: ``data`` gets the preset's data
    encoding, everything else its lossless (``indices``) one; no small-track rule."""
    return preset.data if name == DATA else preset.indices


@dataclass(frozen=True)
class ArrayPlan:
    name: str
    chunk: int
    shard: int | None

    def create(self, timeline: Group, settings: ArraySettings, length: int = 0) -> Array:
        trailing = TRAILING[self.name]
        opts = settings.engine_options(self.name, None) if self.name in (DATA, INDICES) else None
        arr = timeline.create_array(
            self.name,
            shape=(length, *trailing),
            dtype=DTYPES[self.name],
            chunks=(self.chunk, *trailing),
            encoding=_encoding(self.name, settings.preset),
            growable=True,
            engine_options=opts or None,
            shards=(self.shard or self.chunk, *trailing),  # no shards: one chunk each
            dimension_names=DIMENSIONS[self.name],
        )
        if self.name == SHOTS:
            arr.attrs["columns"] = list(SHOT_COLUMNS)
        elif self.name == TRACKS:
            arr.attrs["columns"] = list(TRACK_COLUMNS)
        return arr


def plan_arrays(sizes: dict[str, int] | None = None, small: bool = False) -> dict[str, ArrayPlan]:
    """Chunk and shard lengths of every packed array: for growing arrays, the
    :data:`GROWING_CHUNK` chunks in shards of :data:`GROWING_SHARD_CHUNKS`; fitted
    ones (:func:`fitted_chunks`) where the final ``sizes`` are known, from
    :data:`NOMINAL_CHUNK` (``small``: from :data:`GROWING_CHUNK`, for engines
    without a per-chunk cost)."""
    out = {}
    for name in ARRAY_NAMES:
        if sizes is None:
            chunk = GROWING_CHUNK[name]
            out[name] = ArrayPlan(name, chunk, chunk * GROWING_SHARD_CHUNKS)
            continue
        nominal = (GROWING_CHUNK if small else NOMINAL_CHUNK)[name]
        per_shard = SHARD_CHUNKS if SHARDED[name] else None
        out[name] = ArrayPlan(name, *fitted_chunks(sizes[name], nominal, per_shard))
    return out


def _packed_arrays(timeline: Group) -> dict[str, Array]:
    """The five arrays of a packed timeline, checked for kind, rank, shape and dtype.

    Raises:
        FormatError: one is missing or malformed.
    """
    out = {}
    for name in ARRAY_NAMES:
        node = timeline.get(name)
        where = f"{timeline.where().rstrip('/')}/{name}"
        if not isinstance(node, Array):
            what = "missing" if node is None else "a group, not an array"
            raise FormatError(f"{where}: {what} (packed layout)")
        shape = node.shape
        if len(shape) != 1 + len(TRAILING[name]) or tuple(shape[1:]) != TRAILING[name]:
            raise FormatError(f"{where}: shape {shape}, expected (n, {TRAILING[name]})")
        kinds = "f" if name == DATA else "iu"
        if node.dtype.kind not in kinds:
            raise FormatError(f"{where}: dtype {node.dtype}, expected {DTYPES[name]}")
        out[name] = node
    return out


# ---------------------------------------------------------------- writing


class PackedWriter:
    """Appends shots (or blocks of frames) to a packed timeline, crash-safely.

    Creates the arrays in ``timeline`` if they are not there (and marks ``root``
    packed); otherwise appends after what the tables hold (anything past that, left
    by an interrupted writer, is cut first). Each :meth:`append` writes ``data`` and
    ``indices``, then ``indptr``, then the ``tracks`` rows, then the ``shots`` rows:
    a reader never sees a table row whose bytes are not all there.
    """

    def __init__(
        self,
        root: Group,
        timeline: Group,
        settings: ArraySettings,
        *,
        sizes: dict[str, int] | None = None,
    ) -> None:
        self.root = root
        self.timeline = timeline
        self.settings = settings
        # Zarr writes an array's metadata document on every resize: arrays of roots
        # that close (and so finish, see finish()) grow ahead of what is appended,
        # and are cut to their length when the writer finishes; readers go by the
        # tables, never by the arrays' lengths, until then (an interrupted writer's
        # dump is cut by repair).
        self.reserve = root.owns_file and timeline.min_chunk_bytes is not None
        if DATA in timeline:
            self.arrays = _packed_arrays(timeline)
            self._resume()
        else:
            plans = plan_arrays(sizes, small=timeline.min_chunk_bytes is None)
            self.arrays = {name: plans[name].create(timeline, settings) for name in ARRAY_NAMES}
            self.arrays[INDPTR].append(np.zeros(1, POINTER_DTYPE))
            mark_packed(root)
            self.shots = self.tracks = self.rows = self.entries = 0
            self.planned = sizes is None
        #: How much of each array is written (its length, past the reserve).
        self.length = {
            SHOTS: self.shots, TRACKS: self.tracks, INDPTR: self.rows + 1,
            DATA: self.entries, INDICES: self.entries,
        }  # fmt: skip

    def _resume(self) -> None:
        """Position after the committed table rows of an existing timeline."""
        a = self.arrays
        shots, tracks = self.timeline.read_many([a[SHOTS], a[TRACKS]])
        from skelstore.recovery import IN_PROGRESS, intact_shots

        n_shots = len(shots)
        if self.root.attrs.get(IN_PROGRESS) and self.root.attrs.get("fmt_type") == "trackshots":
            n_shots = min(n_shots, intact_shots(self.root))
        if self.root.attrs.get(IN_PROGRESS):
            tracks = tracks[: written_parts(tracks)]
        keep = int(np.searchsorted(tracks[:, C_SHOT], n_shots)) if len(tracks) else 0
        if self.root.attrs.get("fmt_type") == "unseg":
            keep = len(tracks)
        tracks = tracks[:keep]
        rows = int(tracks[-1, C_ROW] + tracks[-1, C_END] - tracks[-1, C_START]) if keep else 0
        entries = int(a[INDPTR][rows]) if len(a[INDPTR]) > rows else 0
        for name, length in (
            (SHOTS, n_shots),
            (TRACKS, keep),
            (INDPTR, rows + 1),
            (DATA, entries),
            (INDICES, entries),
        ):
            if len(a[name]) > length:
                a[name].truncate(length)
        if len(a[INDPTR]) == 0:
            a[INDPTR].append(np.zeros(1, POINTER_DTYPE))
        self.shots, self.tracks, self.rows, self.entries = n_shots, keep, rows, entries
        self.planned = True

    def append(
        self,
        parts: Sequence[tuple[int, int, Track]],
        shots: Sequence[tuple[int, int]] = (),
    ) -> None:
        """Append track parts ``(shot, pose_id, track)`` (in the layout's order) and
        then ``shots`` rows ``(start_frame, end_frame)``; not flushed here."""
        then: list[tuple[str, np.ndarray]] = []
        if parts:
            datas = [np.asarray(t.data, DATA_DTYPE).reshape(-1, 3) for _, _, t in parts]
            counts = [np.diff(np.asarray(t.indptr, np.int64)) for _, _, t in parts]
            data = np.concatenate(datas) if len(datas) > 1 else datas[0]
            indices = np.concatenate([np.asarray(t.indices, INDICES_DTYPE) for _, _, t in parts])
            ends = np.cumsum(np.concatenate(counts)) + self.entries
            table = np.empty((len(parts), 6), TABLE_DTYPE)
            row, entry = self.rows, self.entries
            for i, ((shot, pid, t), c) in enumerate(zip(parts, counts, strict=True)):
                table[i] = (shot, pid, t.start_frame, t.end_frame, row, entry)
                row += len(c)
                entry += int(t.indptr[-1]) - int(t.indptr[0])
            # bytes first, then the rows pointing at them: a reader never sees a
            # table row whose bytes are not all there
            first = [(DATA, data), (INDICES, indices)] if len(data) else []
            if len(ends):
                first.append((INDPTR, ends.astype(POINTER_DTYPE)))
            self._write(first)
            then.append((TRACKS, table))
            self.tracks += len(parts)
            self.rows, self.entries = row, entry
        if shots:
            # a shots row commits nothing by itself: trackshots writers commit with
            # skelstore_shots_done, after this call; unsegmented ones append it last
            then.append((SHOTS, np.asarray(shots, TABLE_DTYPE).reshape(-1, 2)))
            self.shots += len(shots)
        self._write(then)

    def _write(self, items: list[tuple[str, np.ndarray]]) -> None:
        """Append ``items`` to the arrays, in one call to the engine."""
        a = self.arrays
        if not self.reserve:
            self.timeline.append_many([(a[name], values) for name, values in items])
            for name, values in items:
                self.length[name] += len(values)
            return
        grow = []
        for name, values in items:
            need = self.length[name] + len(values) - len(a[name])
            if need > 0:  # half as much again, at least a shard
                extra = max(need, len(a[name]) // 2, (a[name].shards or a[name].chunks or (1,))[0])
                grow.append((a[name], np.zeros((extra, *TRAILING[name]), DTYPES[name])))
        if grow:
            self.timeline.append_many(grow)  # zero chunks are not stored
        self.timeline.set_many([(a[name], self.length[name], v) for name, v in items])
        for name, values in items:
            self.length[name] += len(values)

    def set_shot(self, index: int, start: int, end: int) -> None:
        """Write shot row ``index`` (appending it if it is the next one)."""
        if index >= self.shots:
            self.append([], [(start, end)])
        else:
            self.arrays[SHOTS][index : index + 1] = np.array([[start, end]], TABLE_DTYPE)

    def finish(self) -> None:
        """Cut the arrays to their length; rewrite small uncompressed arrays whose
        last chunk is mostly padding (engines store whole chunks) with chunks
        fitted to their length (not on engines with small chunks: HDF5, which
        could not give the space back)."""
        for name, arr in self.arrays.items():
            if len(arr) > self.length[name]:
                arr.truncate(self.length[name])
        if not self.planned or self.timeline.min_chunk_bytes is None:
            return
        compact_arrays(self.timeline, self.settings)


def compact_arrays(timeline: Group, settings: ArraySettings) -> None:
    """See :meth:`PackedWriter.finish`."""
    arrays = _packed_arrays(timeline)
    for name, arr in arrays.items():
        enc = arr.encoding
        if enc is not None and enc.blosc_level is not None:
            continue  # compressed padding costs next to nothing
        n = len(arr)
        chunk = (arr.chunks or (n,))[0]
        allocated = -(-n // chunk) * chunk if n else chunk
        if allocated - n <= 0.1 * max(n, 1) or n > 10 * chunk:
            continue
        values = arr.read()
        attrs = dict(arr.attrs)
        timeline.delete(name)
        plan = plan_arrays({k: (n if k == name else 0) for k in ARRAY_NAMES})[name]
        new = plan.create(timeline, settings, 0)
        if len(values):
            new.append(values)
        extra = {k: v for k, v in attrs.items() if k not in new.attrs}
        if extra:
            new.attrs.update(extra)


# ---------------------------------------------------------------- reading


def written_parts(tracks: np.ndarray) -> int:
    """How many leading rows of a ``tracks`` table were written: a writer's
    reserve (see :class:`PackedWriter`) is all zeros, and a written part ends
    after frame 0."""
    if not len(tracks):
        return 0
    unwritten = np.nonzero(tracks[:, C_END] <= 0)[0]
    return int(unwritten[0]) if len(unwritten) else len(tracks)


def _check_tables(where: str, shots: np.ndarray, tracks: np.ndarray) -> None:
    """The ordering invariants of the tables (readers check them on open).

    Raises:
        FormatError: naming the first broken invariant.
    """
    if len(shots):
        s, e = shots[:, 0], shots[:, 1]
        if (s < 0).any() or (e < s).any():
            bad = int(np.nonzero((s < 0) | (e < s))[0][0])
            raise FormatError(f"{where}/shots: row {bad}: bad frame range {shots[bad].tolist()}")
        if (s[1:] < e[:-1]).any():
            bad = int(np.nonzero(s[1:] < e[:-1])[0][0]) + 1
            raise FormatError(f"{where}/shots: shot {bad} starts before shot {bad - 1} ends")
        if int(e.max()) > 2**31:
            raise FormatError(f"{where}/shots: frame numbers beyond 2**31")
    if not len(tracks):
        return
    sh, st, en, row = tracks[:, C_SHOT], tracks[:, C_START], tracks[:, C_END], tracks[:, C_ROW]
    if (sh < 0).any() or (sh >= len(shots)).any():
        bad = int(np.nonzero((sh < 0) | (sh >= len(shots)))[0][0])
        raise FormatError(f"{where}/tracks: row {bad}: shot {int(sh[bad])} is not in shots")
    if (np.diff(sh) < 0).any():
        bad = int(np.nonzero(np.diff(sh) < 0)[0][0]) + 1
        raise FormatError(f"{where}/tracks: row {bad}: not sorted by shot")
    if (en <= st).any() or (st < 0).any():
        bad = int(np.nonzero((en <= st) | (st < 0))[0][0])
        raise FormatError(
            f"{where}/tracks: row {bad}: bad frame range {int(st[bad])}:{int(en[bad])}"
        )
    lo, hi = shots[sh, 0], shots[sh, 1]
    if (st < lo).any() or (en > hi).any():
        bad = int(np.nonzero((st < lo) | (en > hi))[0][0])
        raise FormatError(
            f"{where}/tracks: row {bad}: frames {int(st[bad])}:{int(en[bad])} outside "
            f"shot {int(sh[bad])} ({int(lo[bad])}:{int(hi[bad])})"
        )
    expect = np.concatenate([[0], np.cumsum(en - st)[:-1]])
    if (row != expect).any():
        bad = int(np.nonzero(row != expect)[0][0])
        raise FormatError(
            f"{where}/tracks: row {bad}: row offset {int(row[bad])}, "
            f"expected {int(expect[bad])} (rows must be contiguous)"
        )
    if (np.diff(tracks[:, C_ENTRY]) < 0).any() or tracks[0, C_ENTRY] != 0:
        raise FormatError(f"{where}/tracks: entry offsets are not monotone from 0")


class PartBuffer:
    """Poses of growing tracks, appended as track parts (for writers that cannot
    hold whole tracks: unsegmented dumps, streamed imports). A track's buffer is
    appended as one part once it holds ``block_frames`` poses (as skelshop's
    unsegmented writer appends each track), and the root flushed, so an
    interrupted writer keeps every appended part."""

    def __init__(
        self, root: Group, timeline: Group, settings: ArraySettings, shot: int = 0
    ) -> None:
        self.root = root
        self.settings = settings
        self.writer = PackedWriter(root, timeline, settings)
        self.shot = shot
        self.tracks: dict[int, TrackWriter] = {}
        self.flushed: dict[int, int] = {}
        #: The largest frame added so far (-1 before any).
        self.last_frame = -1

    def add(self, frame: int, pose_id: int, pose: Any, block_frames: int) -> None:
        """Buffer ``pose`` of track ``pose_id`` at ``frame``; frames of one track must
        increase (a repeated frame replaces the pose, before it is appended)."""
        tw = self.tracks.get(pose_id)
        if tw is None:
            prev = self.flushed.get(pose_id)
            if prev is not None and frame <= prev:
                raise FormatError(
                    f"pose track pose{pose_id}: frame {frame} added after frame {prev}; "
                    "frames must increase"
                )
            tw = self.tracks[pose_id] = TrackWriter(None, f"pose{pose_id}", self.settings)
        tw.add(frame, pose)
        self.last_frame = max(self.last_frame, frame)
        if tw.buffered >= block_frames:
            self._append([pose_id])

    def flush(self) -> None:
        """Append a part per buffered track, then flush the root."""
        self._append(sorted(self.tracks))

    def flush_idle(self, frame: int) -> None:
        """Append the buffer of every track not seen at ``frame`` (bounds memory)."""
        self._append([p for p, tw in sorted(self.tracks.items()) if (tw.last_frame or 0) < frame])

    def _append(self, pose_ids: list[int]) -> None:
        parts = []
        for pid in pose_ids:
            tw = self.tracks.pop(pid)
            if tw.start_frame is not None and tw.last_frame is not None:
                self.flushed[pid] = tw.last_frame
                parts.append((self.shot, pid, tw.take_track()))
        if parts:
            self.writer.append(parts)
            self.root.flush()
