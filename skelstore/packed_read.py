"""Reading the packed layout: the tables in memory, the CSR arrays in windows.

:class:`PackedTimeline` loads a packed timeline's ``shots`` and ``tracks`` tables
(one bulk read) and checks their invariants; :class:`ReadCache` keeps windows of
``indptr`` and of ``data``/``indices`` and reads what is missing in one bulk
call, ahead in whole shards for readers that iterate; :class:`PartsSource` gives
:class:`skelstore.io.ShotReader` the dense blocks of a shot's track parts. See
:mod:`skelstore.packed` for the layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from skelstore.errors import FormatError
from skelstore.layout import decode_rows
from skelstore.packed import (
    C_END,
    C_ENTRY,
    C_POSE,
    C_ROW,
    C_SHOT,
    C_START,
    DATA,
    ENTRY_CHUNK,
    INDICES,
    INDPTR,
    ROW_CHUNK,
    SHOTS,
    TRACKS,
    TRAILING,
    _check_tables,
    _packed_arrays,
    written_parts,
)
from skelstore.storage import Array, Group

__all__ = ["PackedTimeline", "PartsSource", "ReadCache", "parts_with_bytes", "unseg_range"]


class PackedTimeline:
    """A packed timeline opened for reading: its tables in memory, its CSR arrays
    read in windows on demand.

    While ``root`` is marked in progress, only the first ``skelstore_shots_done``
    shots (``trackshots``) and their track parts are shown.
    """

    def __init__(self, root: Group, timeline: Group) -> None:
        from skelstore.recovery import IN_PROGRESS, intact_shots

        self.root = root
        self.timeline = timeline
        self.where = timeline.where()
        self.arrays = _packed_arrays(timeline)
        a = self.arrays
        for name in (SHOTS, TRACKS):
            if len(a[name]) * a[name].dtype.itemsize * TRAILING[name][0] > 2**31:
                raise FormatError(f"{self.where}/{name}: {len(a[name])} rows, implausibly many")
        shots, tracks = timeline.read_many([a[SHOTS], a[TRACKS]])
        shots = np.asarray(shots).astype(np.int64, copy=False)
        tracks = np.asarray(tracks).astype(np.int64, copy=False)
        self.fmt_type = root.attrs.get("fmt_type")
        self.incomplete = bool(root.attrs.get(IN_PROGRESS))
        if self.incomplete and self.fmt_type == "trackshots":
            shots = shots[: intact_shots(root)]
        if self.incomplete:
            tracks = tracks[: written_parts(tracks)]
            if self.fmt_type == "unseg":
                # its writer appends the shots row when it ends: the range is the
                # parts whose bytes are all there, as repair cuts it
                tracks = tracks[: parts_with_bytes(a, tracks)]
                shots = unseg_range(timeline, tracks)
            keep = int(np.searchsorted(tracks[:, C_SHOT], len(shots))) if len(tracks) else 0
            tracks = tracks[:keep]
        _check_tables(self.where, shots, tracks)
        self.shots = shots
        self.tracks = tracks
        self.n_rows = int(
            (tracks[-1, C_ROW] + tracks[-1, C_END] - tracks[-1, C_START]) if len(tracks) else 0
        )
        if len(a[INDPTR]) < self.n_rows + 1:
            raise FormatError(
                f"{self.where}/indptr: {len(a[INDPTR])} entries for "
                f"{self.n_rows} rows (need {self.n_rows + 1})"
            )
        # parts of shot s are tracks[first[s]:first[s + 1]]
        self.first = np.searchsorted(tracks[:, C_SHOT], np.arange(len(shots) + 1))
        limbs = root.attrs.get("limbs")
        self.limbs = limbs if isinstance(limbs, int) else None

    def __len__(self) -> int:
        return len(self.shots)

    def shot_range(self, index: int) -> tuple[int, int]:
        return int(self.shots[index, 0]), int(self.shots[index, 1])

    def entry_end(self, t: int) -> int | None:
        """Where part ``t``'s entries end, if the tables tell (else ``None``)."""
        if t + 1 < len(self.tracks):
            return int(self.tracks[t + 1, C_ENTRY])
        if not self.incomplete:
            return len(self.arrays[DATA])
        return None

    def cache(self, sequential: bool) -> ReadCache:
        """A window cache over the CSR arrays (``sequential``: read ahead)."""
        return ReadCache(self, sequential)

    def source(self, t0: int, t1: int, cache: ReadCache, limbs: int) -> PartsSource:
        """The dense-block source of parts ``t0:t1``."""
        return PartsSource(self, t0, t1, cache, limbs)


def parts_with_bytes(arrays: dict[str, Array], tracks: np.ndarray) -> int:
    """How many leading (written) rows of an interrupted writer's ``tracks`` table
    have all their rows in ``indptr`` and their entries in ``data``/``indices``
    (a writer appends a part's bytes before its row, so only trailing rows can
    lack them)."""
    n_ptr = len(arrays[INDPTR])
    n_entries = min(len(arrays[DATA]), len(arrays[INDICES]))
    keep = len(tracks)
    while keep:
        t = tracks[keep - 1]
        end_row = int(t[C_ROW] + t[C_END] - t[C_START])
        if end_row < n_ptr and int(arrays[INDPTR][end_row]) <= n_entries:
            break
        keep -= 1
    return keep


def unseg_range(timeline: Group, tracks: np.ndarray) -> np.ndarray:
    """The ``shots`` table of an unsegmented packed timeline whose writer did not
    end (and so wrote neither its shots row nor the timeline's ``end_frame``):
    one row, from the timeline's ``start_frame`` (0 if not set) to the end of its
    last part."""
    start = timeline.attrs.get("start_frame", 0)
    start = start if isinstance(start, int) and not isinstance(start, bool) else 0
    end = max([start, *(int(e) for e in tracks[:, C_END])]) if len(tracks) else start
    return np.array([[start, end]], np.int64)


def _align_down(x: int, unit: int) -> int:
    return (x // unit) * unit


def _align_up(x: int, unit: int) -> int:
    return -(-x // unit) * unit


#: Sequential readers read ahead this far (entries of data) where the engine has no shards.
READ_AHEAD_ENTRIES = 2**18  # 3 MiB of data
#: Reads of a shot whose entries fit this are done in one piece.
WHOLE_SHOT_ENTRIES = 2**21  # 24 MiB of data
#: The most the caches hold, in entries (data + indices: 14 bytes each).
CACHE_ENTRIES = 2**22


class ReadCache:
    """Windows of ``indptr`` and of ``data``/``indices`` (read together), reused by
    every read they cover.

    A miss reads the span asked for, widened to whole chunks; a *sequential* cache
    (a reader iterating shot after shot) also reads ahead: to the end of the shard
    where the engine shards (a whole shard is one request), otherwise
    :data:`READ_AHEAD_ENTRIES` further. Every miss of one call is read in one
    :meth:`~skelstore.storage.Group.read_many`.
    """

    def __init__(self, pt: PackedTimeline, sequential: bool) -> None:
        self.pt = pt
        self.sequential = sequential
        self.rows: list[tuple[int, int, np.ndarray]] = []
        self.entries: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        a = pt.arrays
        self.n_ptr = len(a[INDPTR])
        self.n_entries = len(a[DATA])
        if len(a[INDICES]) != self.n_entries and not pt.incomplete:
            raise FormatError(f"{pt.where}: data and indices lengths differ")
        self.n_entries = min(self.n_entries, len(a[INDICES]))

    @staticmethod
    def _find(windows: list, lo: int, hi: int) -> Any:
        for w in reversed(windows):
            if w[0] <= lo and hi <= w[1]:
                return w
        return None

    def _window(self, arr: Array, lo: int, hi: int, n: int, ahead: int) -> tuple[int, int]:
        chunk = (arr.chunks or (max(1, n),))[0]
        shard = (arr.shards or (0,))[0]
        a = _align_down(lo, chunk)
        b = hi
        if self.sequential:
            if shard:
                b = max(b, _align_up(lo + 1, shard))
                if b - a < shard // 2:  # near a shard's end: read the next one too
                    b = _align_up(b + 1, shard)
            else:
                b = max(b, lo + ahead)
        b = min(n, _align_up(b, chunk))
        return a, max(b, hi)

    def _plan(self, windows: list, arr: Array, lo: int, hi: int, n: int, ahead: int) -> Any:
        """``(keep, read)`` for a missing span: the cached window that already holds
        its start (only the rest is read, from that window's end: a sequential
        reader never reads a chunk twice) or ``None``, and the span to read."""
        keep = None
        for w in reversed(windows):
            if w[0] <= lo < w[1]:
                keep = w
                break
        start = keep[1] if keep is not None else lo
        a, b = self._window(arr, start, max(hi, start + 1), n, ahead)
        if keep is not None:
            a = keep[1]
        return keep, (a, b), lo if keep is not None else a

    def fetch(
        self, row_spans: Iterable[tuple[int, int]], entry_spans: Iterable[tuple[int, int]]
    ) -> None:
        """Make sure the given ``[lo, hi)`` spans of ``indptr`` and of entries are
        cached, reading every missing one in one bulk call."""
        a = self.pt.arrays
        requests: list[tuple[Array, slice]] = []
        new_rows, new_entries = [], []
        for lo, hi in _merge(row_spans, ROW_CHUNK):
            if hi > self.n_ptr:
                raise FormatError(
                    f"{self.pt.where}/indptr: rows up to {hi} asked, {self.n_ptr} stored"
                )
            if self._find(self.rows, lo, hi) is None:
                plan = self._plan(self.rows, a[INDPTR], lo, hi, self.n_ptr, 8 * READ_AHEAD_ENTRIES)
                requests.append((a[INDPTR], slice(*plan[1])))
                new_rows.append(plan)
        for lo, hi in _merge(entry_spans, ENTRY_CHUNK):
            if hi > self.n_entries:
                raise FormatError(
                    f"{self.pt.where}/data: entries up to {hi} asked, {self.n_entries} stored"
                )
            if self._find(self.entries, lo, hi) is None:
                plan = self._plan(self.entries, a[DATA], lo, hi, self.n_entries, READ_AHEAD_ENTRIES)
                requests += [(a[DATA], slice(*plan[1])), (a[INDICES], slice(*plan[1]))]
                new_entries.append(plan)
        if not requests:
            return
        results = iter(self.pt.timeline.read_many(requests))
        for keep, (_, r1), start in new_rows:
            got = np.asarray(next(results)).astype(np.int64, copy=False)
            if keep is not None:
                got = np.concatenate([keep[2][start - keep[0] :], got])
            self.rows.append((start, r1, got))
        for keep, (e0, e1), start in new_entries:
            data, indices = next(results), next(results)
            if len(data) != e1 - e0 or len(indices) != e1 - e0:
                raise FormatError(f"{self.pt.where}: short read of entries {e0}:{e1}")
            if keep is not None:
                data = np.concatenate([keep[2][start - keep[0] :], data])
                indices = np.concatenate([keep[3][start - keep[0] :], indices])
            self.entries.append((start, e1, data, indices))
        self._evict()

    def _evict(self) -> None:
        while len(self.rows) > 4 and sum(w[1] - w[0] for w in self.rows) > 8 * CACHE_ENTRIES:
            self.rows.pop(0)
        while len(self.entries) > 1 and sum(w[1] - w[0] for w in self.entries) > CACHE_ENTRIES:
            self.entries.pop(0)

    def pointers(self, lo: int, hi: int) -> np.ndarray:
        """``indptr[lo:hi]`` (int64), read if not cached."""
        w = self._find(self.rows, lo, hi)
        if w is None:
            self.fetch([(lo, hi)], [])
            w = self._find(self.rows, lo, hi)
        return w[2][lo - w[0] : hi - w[0]]

    def entry_slices(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """``data[lo:hi]`` and ``indices[lo:hi]``, read if not cached."""
        if hi <= lo:
            a = self.pt.arrays
            return np.zeros((0, 3), a[DATA].dtype), np.zeros(0, a[INDICES].dtype)
        w = self._find(self.entries, lo, hi)
        if w is None:
            self.fetch([], [(lo, hi)])
            w = self._find(self.entries, lo, hi)
        return w[2][lo - w[0] : hi - w[0]], w[3][lo - w[0] : hi - w[0]]


def _merge(spans: Iterable[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Non-empty spans sorted, with spans closer than ``gap`` merged."""
    out: list[list[int]] = []
    for lo, hi in sorted((int(a), int(b)) for a, b in spans if b > a):
        if out and lo <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


class PartsSource:
    """Dense blocks of frames of a set of track parts (one shot's, usually).

    ``poses`` lists ``(pose_id, start_frame, end_frame, None)`` per track (the
    union of its parts), as :attr:`skelstore.io.ShotReader.poses` does.
    """

    def __init__(self, pt: PackedTimeline, t0: int, t1: int, cache: ReadCache, limbs: int) -> None:
        self.pt = pt
        self.cache = cache
        self.limbs = limbs
        self.t0, self.t1 = t0, t1
        parts = pt.tracks[t0:t1]
        self.parts = parts
        spans: dict[int, list[int]] = {}
        for p in parts:
            pid = int(p[C_POSE])
            s = spans.setdefault(pid, [int(p[C_START]), int(p[C_END])])
            s[0], s[1] = min(s[0], int(p[C_START])), max(s[1], int(p[C_END]))
        self.spans = {pid: (s[0], s[1]) for pid, s in sorted(spans.items())}
        self.poses = [(pid, s, e, None) for pid, (s, e) in self.spans.items()]
        multi = len(spans) != len(parts)
        self.multi = multi
        self._loaded = False
        if t1 > t0:
            row_lo = int(parts[0, C_ROW])
            row_hi = int(parts[-1, C_ROW] + parts[-1, C_END] - parts[-1, C_START]) + 1
            e_lo, e_hi = int(parts[0, C_ENTRY]), pt.entry_end(t1 - 1)
            self.row_span = (row_lo, row_hi)
            if e_hi is not None and e_hi - e_lo <= WHOLE_SHOT_ENTRIES:
                self.entry_span: tuple[int, int] | None = (e_lo, e_hi)
            else:
                self.entry_span = None

    def _load_whole(self) -> None:
        """Read the parts' rows and entries in one call (they are contiguous)."""
        if self._loaded:
            return
        self._loaded = True
        if self.t1 > self.t0 and self.entry_span is not None:
            self.cache.fetch([self.row_span], [self.entry_span])

    def dense(self, f0: int, f1: int) -> dict[int, tuple[int, np.ndarray]]:
        """``{pose_id: (first_frame, rows)}`` for frames ``f0:f1``, as
        :func:`skelstore.layout.read_dense_block` gives them."""
        if self.t1 <= self.t0 or f0 >= f1:
            return {}
        self._load_whole()
        parts = self.parts
        a = np.maximum(parts[:, C_START], f0)
        b = np.minimum(parts[:, C_END], f1)
        hit = np.nonzero(a < b)[0]
        if not len(hit):
            return self._fill({}, f0, f1)
        r0 = parts[hit, C_ROW] + a[hit] - parts[hit, C_START]
        r1 = parts[hit, C_ROW] + b[hit] - parts[hit, C_START]
        cache = self.cache
        if self.entry_span is None:
            cache.fetch(zip(r0, r1 + 1, strict=True), [])
        ptrs = [cache.pointers(int(x), int(y) + 1) for x, y in zip(r0, r1, strict=True)]
        if self.entry_span is None:
            cache.fetch([], [(int(p[0]), int(p[-1])) for p in ptrs])
        out: dict[int, tuple[int, np.ndarray]] = {}
        for i, ip in zip(hit, ptrs, strict=True):
            p = parts[i]
            lo, hi = int(ip[0]), int(ip[-1])
            data, indices = cache.entry_slices(lo, hi)
            where = f"{self.pt.where} (part {self.t0 + int(i)})"
            rows = decode_rows(data, indices, ip, self.limbs, where)
            pid = int(p[C_POSE])
            first = int(a[i])
            if not self.multi:
                out[pid] = (first, rows)
            else:
                out.setdefault(pid, []).append((first, rows))  # type: ignore[arg-type]
        if self.multi:
            out = {pid: self._join(pid, pieces, f0, f1) for pid, pieces in out.items()}
        return self._fill(out, f0, f1)

    def _join(self, pid: int, pieces: Any, f0: int, f1: int) -> tuple[int, np.ndarray]:
        s, e = self.spans[pid]
        a, b = max(s, f0), min(e, f1)
        rows = np.zeros((b - a, self.limbs, 3), np.float64)
        for first, block in pieces:
            rows[first - a : first - a + len(block)] = block
        return a, rows

    def _fill(
        self, out: dict[int, tuple[int, np.ndarray]], f0: int, f1: int
    ) -> dict[int, tuple[int, np.ndarray]]:
        """Tracks with several parts cover the frames between them as empty rows."""
        if not self.multi:
            return out
        for pid, (s, e) in self.spans.items():
            a, b = max(s, f0), min(e, f1)
            if a < b and pid not in out:
                out[pid] = (a, np.zeros((b - a, self.limbs, 3), np.float64))
        return dict(sorted(out.items()))
