"""skelshop's readers (:mod:`skelstore.io` exports them): ``ShotSegmentedReader``,
``UnsegmentedReader``, ``ShotReader`` and the adapters, on either layout."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import chain, repeat, starmap
from operator import setitem
from typing import Any

import numpy as np

from skelstore.engines import as_group
from skelstore.errors import FormatError, NotFoundError
from skelstore.layout import (
    TIMELINE,
    ShotInfo,
    TrackSource,
    frame_attrs,
    list_tracks,
    load_tracks,
    read_dense_block,
    shot_info,
    shot_names,
)
from skelstore.packed import is_packed
from skelstore.packed_read import PackedTimeline
from skelstore.pose import DumpReaderPoseBundle, UntrackedDumpReaderPoseBundle, pose_class
from skelstore.storage import Group

#: Frames decoded at a time by readers: bounds memory for long shots.
READ_BLOCK_FRAMES = 1024


def _reader_setup(
    h5f: Any, fmt_type: str, bundle_cls: type
) -> tuple[Group, int, Callable[..., Any]]:
    root = as_group(h5f)
    attrs = root.attrs
    where = root.source
    found = attrs.get("fmt_type")
    if found != fmt_type:
        what = "no fmt_type attribute" if found is None else f"fmt_type {found!r}"
        raise FormatError(f"{where}: expected a {fmt_type!r} dump, found {what}")
    mode = attrs.get("mode")
    cls = pose_class(mode, where)
    limbs = attrs.get("limbs")
    if limbs is None:
        from skelstore.pose import LIMBS

        limbs = LIMBS.get(mode) if mode else None
    if isinstance(limbs, bool) or not isinstance(limbs, (int, np.integer)) or limbs <= 0:
        raise FormatError(f"{where}: bad or missing 'limbs' attribute ({limbs!r})")
    if int(limbs) > 65536:
        raise FormatError(f"{where}: 'limbs' attribute {limbs} exceeds the uint16 index range")
    return root, int(limbs), partial(bundle_cls, cls=cls)


def _num_frames(root: Group) -> int | None:
    """The root's ``num_frames`` if it is a sane integer, else ``None``."""
    n = root.attrs.get("num_frames")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None


def _check_span(root: Group, where: str, start: int, end: int, first: bool = False) -> None:
    """Refuse frame ranges far beyond the video: a damaged ``end_frame`` would make a
    reader yield ~2**31 empty bundles. A shot may end past ``num_frames`` (skelshop
    files do) but may not be longer than the video, nor the first one start after it."""
    n = _num_frames(root)
    if n is None:
        return
    if end - start > n or (first and start > n):
        raise FormatError(f"{where}: frames {start}:{end} do not fit a video of num_frames={n}")


def _timeline(root: Group) -> Group:
    try:
        tl = root[TIMELINE]
    except NotFoundError:
        listed = set(root.keys())  # not `in root`: that looks the member up again
        if TIMELINE in listed:  # it is listed: the storage failed to read it
            raise
        raise FormatError(f"{root.source}: no /timeline group") from None
    if not isinstance(tl, Group):
        raise FormatError(f"{tl.where()}: expected a group")
    return tl


class EmptyShot:
    """A shot with no poses: yields empty bundles (forever if ``end_frame`` is None)."""

    def __init__(self, start_frame: int, end_frame: int | None, empty_bundle: Any) -> None:
        self.start_frame = start_frame
        self.end_frame = end_frame
        self.empty_bundle = empty_bundle
        #: Not a stored shot.
        self.index = -1

    def __iter__(self) -> Iterator[Any]:
        return self.iter_from(self.start_frame)

    def iter_from(self, start_frame: int) -> Iterator[Any]:
        if self.end_frame:
            return repeat(self.empty_bundle, max(0, self.end_frame - start_frame))
        return repeat(self.empty_bundle)


class ShotReader:
    """A reader for one shot; typically returned by :class:`ShotSegmentedReader`.

    Iterating yields one pose bundle per frame of ``[start_frame, end_frame)``;
    ``reader[frame]`` / ``reader[frame, pose_ids]`` give the bundle of a frame
    counted from the shot's start.
    """

    def __init__(
        self,
        start_frame: int,
        end_frame: int,
        bundles: Iterable[tuple[int, Group]] | Iterable[TrackSource],
        num_limbs: int,
        mk_bundle: Callable[..., Any],
        *,
        io_group: Group | None = None,
        index: int | None = None,
        source: Any = None,
    ) -> None:
        """``source``, given instead of ``bundles``, supplies the dense blocks (an
        object with ``poses`` and ``dense(f0, f1)``, as
        :class:`skelstore.packed_read.PartsSource`)."""
        self.num_limbs = num_limbs
        #: The N of the stored ``shotN`` (``None`` when not read from a shot group).
        self.index = index
        self.mk_bundle = mk_bundle
        self.start_frame = start_frame
        self.end_frame = end_frame
        tracks = [
            b if isinstance(b, TrackSource) else TrackSource(b[0], as_group(b[1])) for b in bundles
        ]
        self._tracks = tracks
        self._source = source
        self._block: tuple[int, int, dict[int, tuple[int, np.ndarray]]] | None = None
        if source is not None:
            self.poses = list(source.poses)
            self._io = None
            return
        self.poses = [(t.pose_id, t.start_frame, t.end_frame, t) for t in tracks]
        self._io = io_group or (tracks[0].group if tracks else None)
        if self._io is not None:
            load_tracks(self._io, tracks)

    def _dense(self, f0: int, f1: int) -> dict[int, tuple[int, np.ndarray]]:
        if self._source is not None:
            return self._source.dense(f0, f1) if f0 < f1 else {}
        if self._io is None or f0 >= f1:
            return {}
        return read_dense_block(self._io, self._tracks, f0, f1, self.num_limbs)

    def _frame_bundle(
        self, frame: int, dense: dict[int, tuple[int, np.ndarray]], pose_nums: Any = None
    ) -> Any:
        bundle = {}
        for pid, (first, rows) in dense.items():
            r = frame - first
            if 0 <= r < len(rows) and (pose_nums is None or pid in pose_nums):
                bundle[pid] = rows[r]
        return self.mk_bundle(bundle)

    def __getitem__(self, tpl: int | tuple[int, Any]) -> Any:
        if isinstance(tpl, tuple):
            frame_num, pose_nums = tpl
        else:
            frame_num, pose_nums = tpl, None
        frame = int(frame_num) + self.start_frame
        block = self._block
        if block is None or not (block[0] <= frame < block[1]):
            f0 = frame - (frame - self.start_frame) % READ_BLOCK_FRAMES
            f1 = f0 + READ_BLOCK_FRAMES
            block = self._block = (f0, f1, self._dense(f0, f1))
        return self._frame_bundle(frame, block[2], pose_nums)

    def __iter__(self) -> Iterator[Any]:
        return self.iter_from(self.start_frame)

    def iter_from(self, start_frame: int) -> Iterator[Any]:
        """Bundles of every frame from ``start_frame`` (absolute) to the shot's end."""
        # Blocks are read and decoded one at a time, as iteration reaches them; the
        # frames of a block are handed out by C-level iterators (a chain of lists),
        # with no generator frame resumed per frame.
        blocks = range(start_frame, self.end_frame, READ_BLOCK_FRAMES)
        return chain.from_iterable(map(self._block_bundles, blocks))

    def _block_bundles(self, f0: int) -> list[Any]:
        """The bundles of frames ``f0`` to ``f0 + READ_BLOCK_FRAMES`` (or the end)."""
        f1 = min(f0 + READ_BLOCK_FRAMES, self.end_frame)
        # one dict per frame, filled track by track (pose ids in order); the loops
        # over frames run in C (map/deque), not as Python bytecode
        frames: list[dict[int, np.ndarray]] = list(starmap(dict, repeat((), f1 - f0)))
        for pid, (first, rows) in self._dense(f0, f1).items():
            off = first - f0
            deque(map(setitem, frames[off : off + len(rows)], repeat(pid), list(rows)), 0)
        return list(map(self.mk_bundle, frames))


class ShotSegmentedReader:
    """Reads a shot-segmented (``trackshots``) skeleton dump.

    Iterating yields a :class:`ShotReader` per shot (and an :class:`EmptyShot`
    before a first shot that starts after frame 0).
    """

    def __init__(
        self,
        h5f: Any,
        bundle_cls: type = DumpReaderPoseBundle,
        infinite: bool = False,
    ) -> None:
        """If ``infinite`` is True, shot iterators end with an empty shot that yields
        empty bundles forever."""
        self.h5f, self.limbs, self.mk_bundle = _reader_setup(h5f, "trackshots", bundle_cls)
        self.empty_bundle = self.mk_bundle({})
        self.infinite = infinite
        self._timeline = _timeline(self.h5f)
        self._packed: PackedTimeline | None = None
        if is_packed(self.h5f):
            self._packed = PackedTimeline(self.h5f, self._timeline)
            self._names = [(i, f"shot{i}") for i in range(len(self._packed))]
        else:
            self._names = shot_names(self._timeline)
        self._infos: dict[int, ShotInfo] = {}

    def _shot(self, pos: int) -> ShotInfo:
        """The ``pos``-th stored shot, its attributes read on first use only."""
        info = self._infos.get(pos)
        if info is None:
            if self._packed is not None:
                start, end = self._packed.shot_range(pos)
                info = ShotInfo(pos, self._names[pos][1], start, end, self._timeline)
            else:
                info = shot_info(self._timeline, *self._names[pos])
            _check_span(self.h5f, info.group.where(), info.start_frame, info.end_frame, pos == 0)
            self._infos[pos] = info
        return info

    @property
    def shots(self) -> list[ShotInfo]:
        """Every shot's index, name and frame range (reads every shot's attributes)."""
        return [self._shot(pos) for pos in range(len(self._names))]

    def _mk_reader(self, shot: ShotInfo, cache: Any = None) -> ShotReader:
        if self._packed is not None:
            pt = self._packed
            t0, t1 = int(pt.first[shot.index]), int(pt.first[shot.index + 1])
            return ShotReader(
                shot.start_frame,
                shot.end_frame,
                (),
                self.limbs,
                self.mk_bundle,
                index=shot.index,
                source=pt.source(t0, t1, cache or pt.cache(sequential=False), self.limbs),
            )
        return ShotReader(
            shot.start_frame,
            shot.end_frame,
            list_tracks(shot.group),
            self.limbs,
            self.mk_bundle,
            io_group=shot.group,
            index=shot.index,
        )

    def __getitem__(self, idx: int) -> ShotReader:
        """The shot stored as ``/timeline/shot{idx}`` (only that shot is read)."""
        for pos, (index, _) in enumerate(self._names):
            if index == idx:
                return self._mk_reader(self._shot(pos))
        raise NotFoundError(f"{self.h5f.source}: no shot{idx} in /timeline")

    def __len__(self) -> int:
        return len(self._names)

    def _iter(
        self, req_start: int = 0, first: int = 0
    ) -> Iterator[tuple[int, int, int | None, Any]]:
        """``(shot_idx, start, end, make_shot)`` from the ``first``-th stored shot on."""
        # What skelshop's loop variables hold after skipping shots before ``first``.
        cache = self._packed.cache(sequential=True) if self._packed is not None else None
        prev = self._shot(first - 1) if first else None
        end_frame: int = prev.end_frame if prev else req_start
        shot_idx = prev.index if prev else -1
        for pos in range(first, len(self._names)):
            shot = self._shot(pos)
            if shot.start_frame < (prev.end_frame if prev else 0):
                raise FormatError(f"{shot.group.where()}: overlaps the previous shot")
            prev = shot
            shot_idx, start_frame, end_frame = shot.index, shot.start_frame, shot.end_frame
            if end_frame <= req_start:
                continue
            if pos == 0 and start_frame > 0 and req_start < start_frame:
                yield (
                    -1,
                    req_start,
                    start_frame,
                    partial(EmptyShot, req_start, start_frame, self.empty_bundle),
                )
            yield shot_idx, start_frame, end_frame, partial(self._mk_reader, shot, cache)
        if self.infinite:
            yield (
                shot_idx + 1,
                end_frame,
                None,
                partial(EmptyShot, end_frame, None, self.empty_bundle),
            )

    def __iter__(self) -> Iterator[Any]:
        """Every shot, in order."""
        for _, _, _, mk_shot in self._iter():
            yield mk_shot()

    def iter_from_shot(self, start_shot: int) -> Iterator[Any]:
        """Shots from the one stored as ``shot{start_shot}`` on."""
        for shot_idx, _, _, mk_shot in self._iter():
            if shot_idx >= start_shot:
                yield mk_shot()

    def _first_ending_after(self, frame: int) -> int:
        """Position of the first stored shot whose ``end_frame`` is past ``frame``,
        by binary search (O(log shots) shots' attributes read)."""
        lo, hi = 0, len(self._names)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._shot(mid).end_frame <= frame:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def iter_from_frame(self, start_frame: int) -> Iterator[Any]:
        """Shots from the one containing frame ``start_frame`` on.

        Finds that shot by binary search over the shots' frame ranges, reading
        O(log shots) shots' attributes, so the cost does not grow with the position
        in the file.
        """
        for _, _, _, mk_shot in self._iter(start_frame, self._first_ending_after(start_frame)):
            yield mk_shot()

    def iter_frame_range(self, start_frame: int, end_frame: int) -> Iterator[ShotReader]:
        """The stored shots that overlap frames ``[start_frame, end_frame)``, in order
        (a skelstore addition). Only those shots' tracks are read: the first is
        found by binary search, and iteration stops before the first shot that
        starts at or after ``end_frame``. Frames outside every shot have no poses
        and yield no reader."""
        first = self._first_ending_after(start_frame)
        for shot_idx, start, end, mk_shot in self._iter(start_frame, first):
            if start >= end_frame:
                break
            if shot_idx < 0 or end is None:  # a gap before the first shot, or infinite's tail
                continue
            yield mk_shot()


class UnsegmentedReader:
    """Reads an unsegmented (``unseg``) skeleton dump frame by frame."""

    def __init__(self, h5f: Any, bundle_cls: type = UntrackedDumpReaderPoseBundle) -> None:
        self.h5f, self.limbs, mk_bundle = _reader_setup(h5f, "unseg", bundle_cls)
        timeline = _timeline(self.h5f)
        start, end = frame_attrs(timeline)
        _check_span(self.h5f, timeline.where(), start, end)
        if is_packed(self.h5f):
            pt = PackedTimeline(self.h5f, timeline)
            source = pt.source(0, len(pt.tracks), pt.cache(sequential=True), self.limbs)
            self.shot_reader = ShotReader(start, end, (), self.limbs, mk_bundle, source=source)
            return
        self.shot_reader = ShotReader(
            start, end, list_tracks(timeline), self.limbs, mk_bundle, io_group=timeline
        )

    def __iter__(self) -> Iterator[Any]:
        """Bundles of every frame."""
        return iter(self.shot_reader)

    def iter_from(self, start_frame: int) -> Iterator[Any]:
        """Bundles from frame ``start_frame`` on."""
        return self.shot_reader.iter_from(start_frame)


class EnumerateIterable:
    """Like ``enumerate(...)`` but an iterable (can be consumed many times)."""

    def __init__(self, wrapped: Iterable[Any]) -> None:
        self.wrapped = wrapped

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return enumerate(self.wrapped)


class AsIfTracked:
    """Makes a reader of untracked bundles (e.g. :class:`UnsegmentedReader`) yield
    bundles of ``(index, pose)`` like tracked ones."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def __iter__(self) -> Iterator[EnumerateIterable]:
        return (EnumerateIterable(frame) for frame in iter(self.wrapped))

    def iter_from(self, start_frame: int) -> Iterator[EnumerateIterable]:
        return (EnumerateIterable(frame) for frame in self.wrapped.iter_from(start_frame))


class AsIfSingleShot:
    """Makes a :class:`ShotSegmentedReader` act like an :class:`UnsegmentedReader`."""

    def __init__(self, wrapped: ShotSegmentedReader) -> None:
        self.wrapped = wrapped

    def __iter__(self) -> Iterator[Any]:
        return self.iter_from(0)

    def iter_from(self, start_frame: int) -> Iterator[Any]:
        for shot in self.wrapped.iter_from_frame(start_frame):
            yield from shot
