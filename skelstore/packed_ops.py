"""Operations on whole packed dumps: the layout-independent view of a dump as whole
tracks (what conversion and comparison use), and conversion between the layouts.
Repair, validation and summary of packed dumps: :mod:`skelstore.packed_check`.

See :mod:`skelstore.packed` for the layout itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

import numpy as np

from skelstore.compression import preset_name
from skelstore.errors import FormatError
from skelstore.layout import (
    TIMELINE,
    Track,
    frame_attrs,
    parse_index,
    shot_info,
    shot_names,
)
from skelstore.packed import (
    C_END,
    C_ENTRY,
    C_POSE,
    C_ROW,
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
    _packed_arrays,
    is_packed,
)
from skelstore.packed_read import PackedTimeline, ReadCache
from skelstore.storage import Group, GroupSpec, NodeInfo

__all__ = [
    "DumpShot",
    "PackedStream",
    "SkelshopWalk",
    "TrackRecord",
    "check_packable",
    "compare_logical",
    "dump_shots",
    "dump_tracks",
    "pack_timeline",
    "packed_preset",
    "packed_sizes",
    "unpack_timeline",
]


# ---------------------------------------------------------------- whole tracks, either layout


@dataclass
class DumpShot:
    """A shot's place in the timeline, whatever the layout."""

    index: int
    start_frame: int
    end_frame: int


def dump_shots(root: Group) -> list[DumpShot]:
    """Every shot of a ``trackshots`` dump (or the one range of an ``unseg`` one,
    as shot 0), whatever its layout."""
    timeline = _timeline_of(root)
    unseg = root.attrs.get("fmt_type") == "unseg"
    if is_packed(root):
        pt = PackedTimeline(root, timeline)
        if unseg:
            start, end = frame_attrs(timeline)
            return [DumpShot(0, start, end)]
        return [DumpShot(i, *pt.shot_range(i)) for i in range(len(pt))]
    if unseg:
        return [DumpShot(0, *frame_attrs(timeline))]
    return [
        DumpShot(info.index, info.start_frame, info.end_frame)
        for info in (shot_info(timeline, i, n) for i, n in shot_names(timeline))
    ]


def _timeline_of(root: Group) -> Group:
    timeline = root.get(TIMELINE)
    if not isinstance(timeline, Group):
        raise FormatError(f"{root.source}: no /timeline group")
    return timeline


def dump_tracks(root: Group, walk: SkelshopWalk | None = None) -> Iterator[tuple[int, int, Track]]:
    """``(shot index, pose id, track)`` of every whole track, in (shot, pose id)
    order, whatever the layout; each track's ``indptr`` counts from 0 (as in
    skelshop's layout; int64). For ``unseg`` dumps the shot index is 0. Reads one
    shot's tracks at a time (``walk``: a skelshop dump's tree, already listed)."""
    if is_packed(root):
        yield from _packed_tracks(PackedTimeline(root, _timeline_of(root)))
        return
    yield from (walk or SkelshopWalk.of(root)).tracks()


#: The arrays of a pose group, with the kinds of dtype each may have.
ROLE_KINDS = {"data": "fiu", "indices": "iu", "indptr": "iu"}


@dataclass
class TrackRecord:
    """What a :class:`SkelshopWalk` keeps of a track: no open arrays (an engine's
    open array can cost ~100 KB: HDF5's caches), only what conversion needs."""

    pose_id: int
    name: str
    start_frame: int
    end_frame: int
    #: Keypoints stored: the last offset of its ``indptr`` (0 if that is damaged).
    entries: int = 0
    #: Its ``indptr`` as int64, read while listing.
    indptr: np.ndarray | None = field(default=None, repr=False)
    #: Its pose group, as listed.
    pose: NodeInfo | None = field(default=None, repr=False)
    #: What is wrong with its ``indptr``, raised when the track is read (a copy in
    #: skelshop's layout keeps such arrays as they are).
    problem: FormatError | None = field(default=None, repr=False)


def _track_record(
    tree: dict[str, NodeInfo], src: str, parent: NodeInfo, name: str
) -> TrackRecord | None:
    """The record of the pose group ``name`` of ``parent`` from a listed tree
    (down to the pose groups), with the checks :class:`skelstore.layout.TrackSource`
    makes on an open track's group; its arrays are checked as they are read."""
    gwhere = f"{src}:{parent.path}"
    pid = parse_index(name, "pose", gwhere)
    pose = tree.get(f"{parent.path.rstrip('/')}/{name}")
    if pose is None:  # a dangling link: left out, as Group.items leaves it out
        return None
    where = f"{src}:{pose.path}"
    if not pose.is_group:
        raise FormatError(f"{gwhere.rstrip('/')}/{name}: expected a pose group")
    start, end = frame_attrs(pose, where)  # type: ignore[arg-type]
    for role in ROLE_KINDS:
        if role not in (pose.members or ()):
            path = f"{pose.path}/{role}"
            raise FormatError(
                f"{where}: incomplete pose group ({src}: no group or array at {path!r})"
            )
    return TrackRecord(pid, name, start, end, pose=pose)


def _check_array(src: str, role: str, node: NodeInfo) -> None:
    """The shape and kind of dtype a pose group's array ``role`` must have."""
    shape, dtype = node.shape, node.dtype
    assert shape is not None and dtype is not None
    if role == "data" and (len(shape) != 2 or shape[1:] != (3,)):
        raise FormatError(f"{src}:{node.path}: shape {shape}, expected (n, 3)")
    if role != "data" and len(shape) != 1:
        raise FormatError(f"{src}:{node.path}: shape {shape}, expected (n,)")
    kinds = ROLE_KINDS[role]
    if dtype.kind not in kinds:
        what = "numbers" if kinds == "fiu" else "integers"
        raise FormatError(f"{src}:{node.path}: dtype {dtype}, expected {what}")


def _pointers(src: str, record: TrackRecord, node: NodeInfo, values: np.ndarray) -> np.ndarray:
    """A track's ``indptr`` as int64, checked: one offset per row and one more,
    from 0, never decreasing (its shape and dtype: :func:`_check_array`)."""
    ip = values.astype(np.int64)
    rows = record.end_frame - record.start_frame
    if len(ip) != rows + 1 or ip[0] != 0 or (np.diff(ip) < 0).any():
        where = f"{src}:{node.path}"
        raise FormatError(f"{where}: not {rows + 1} monotone offsets from 0")
    return ip


@dataclass
class SkelshopWalk:
    """A skelshop-layout dump's tree, listed once: every shot (or the unsegmented
    timeline) with its tracks' frame ranges and sizes, for the passes a conversion
    makes over it; :func:`check_packable` fills it and checks it in one go.

    The tree is listed down to the pose groups, and every track's ``indptr`` is
    read with it (its last offset is the track's size); ``data`` and ``indices``
    are opened only once, when :meth:`tracks` reads them, and checked then."""

    root: Group
    unseg: bool
    shots: list[DumpShot]
    #: ``(shot index, parent path, tracks)``; the unsegmented timeline is shot 0.
    parents: list[tuple[int, str, list[TrackRecord]]]
    #: Made by :func:`check_packable`, which found nothing the packed layout lacks
    #: (``data`` and ``indices`` are checked by :meth:`tracks`, as they are read).
    checked: bool = False
    #: The check :meth:`of` was given, applied to ``data`` and ``indices`` too.
    check: Any = field(default=None, repr=False)
    #: The shot groups (or the timeline), as listed, by path.
    groups: dict[str, NodeInfo] = field(default_factory=dict, repr=False)
    #: The listed timeline group: arrays are read through it (an engine may keep
    #: what its listing opened, HDF5 the groups).
    timeline: Group | None = field(default=None, repr=False)

    def _below(self, path: str, name: str, role: str) -> str:
        """The path of array ``role`` of pose group ``name`` of the shot group (or
        timeline) at ``path``, relative to :attr:`timeline`."""
        assert self.timeline is not None
        rel = path[len(self.timeline.path.rstrip("/")) :].strip("/")
        return f"{rel}/{name}/{role}" if rel else f"{name}/{role}"

    @classmethod
    def of(cls, root: Group, check: Any = None) -> SkelshopWalk:
        """List ``root``'s tree in one :meth:`~skelstore.storage.Group.list_tree`
        call and read every ``indptr`` in one
        :meth:`~skelstore.storage.Group.read_nodes` call, with the checks readers
        make on a track's group and arrays; ``check(parent, pose, arrays)`` is
        called on every shot (``pose`` ``None``), every track (``arrays`` empty),
        and with the :class:`~skelstore.storage.NodeInfo` of each track's arrays
        by name as they are read (``indptr`` here, ``data`` and ``indices`` by
        :meth:`tracks`)."""
        timeline = _timeline_of(root)
        unseg = root.attrs.get("fmt_type") == "unseg"
        tree = timeline.list_tree(1 if unseg else 2)  # down to the pose groups
        src = root.source
        top = tree[timeline.path]
        if unseg:
            shots = [DumpShot(0, *frame_attrs(timeline))]
            groups = [(0, top)]
        else:
            shots, groups = [], []
            numbered = sorted(
                (parse_index(n, "shot", timeline.where()), n) for n in top.members or ()
            )
            for i, n in numbered:
                node = tree.get(f"{top.path.rstrip('/')}/{n}")
                if node is None:  # a dangling link: as the interface says, no such node
                    timeline[n]
                    continue
                where = f"{src}:{node.path}"
                if not node.is_group:
                    raise FormatError(f"{where}: expected a shot group")
                shots.append(DumpShot(i, *frame_attrs(node, where)))  # type: ignore[arg-type]
                groups.append((i, node))
                if check is not None:
                    check(node, None, {})  # every shot, also one without tracks
        parents = []
        for idx, group in groups:
            records = [_track_record(tree, src, group, name) for name in group.members or ()]
            records = [r for r in records if r is not None]
            records.sort(key=lambda r: r.pose_id)
            if check is not None:
                for r in records:
                    check(group, r.pose, {})
            parents.append((idx, group.path, records))
        walk = cls(root, unseg, shots, parents, check=check, timeline=timeline)
        walk.groups = {group.path: group for _, group in groups}
        walk._read_pointers()
        return walk

    def _read_pointers(self) -> None:
        """Read every track's ``indptr`` (one call; one by one only if that fails,
        to tell the damaged ones, whose problem :meth:`tracks` raises)."""
        src = self.root.source
        todo = [(path, r) for _, path, records in self.parents for r in records]
        assert self.timeline is not None
        timeline = self.timeline
        paths = [self._below(path, r.name, "indptr") for path, r in todo]
        try:
            got: list[Any] = timeline.read_nodes(paths)
        except FormatError:
            got = []
            for p in paths:
                try:
                    got.extend(timeline.read_nodes([p]))
                except FormatError as exc:
                    got.append(exc)
        for (path, r), item in zip(todo, got, strict=True):
            if isinstance(item, FormatError):  # unreadable: raised when the track is read
                r.problem = item
                continue
            node, values = item
            _check_array(src, "indptr", node)  # not a pose array at all: refused now
            if self.check is not None:
                self.check(self.groups[path], r.pose, {"indptr": node})
            try:
                ip = _pointers(src, r, node, values)
            except FormatError as exc:  # damaged offsets: raised when the track is read
                r.problem = exc
                continue
            r.indptr, r.entries = ip, int(ip[-1])

    def sizes(self) -> tuple[int, int, int]:
        """``(tracks, rows, entries)``."""
        tracks = [t for _, _, ts in self.parents for t in ts]
        rows = sum(t.end_frame - t.start_frame for t in tracks)
        return len(tracks), rows, sum(t.entries for t in tracks)

    @property
    def damaged(self) -> bool:
        """Whether some track's ``indptr`` could not be read or makes no sense."""
        return any(t.problem is not None for _, _, ts in self.parents for t in ts)

    def pose_groups(self) -> list[tuple[str, Group | None]]:
        """``(path, None)`` of every pose group (what :func:`iter_tracks` lists)."""
        return [(f"{p.rstrip('/')}/{t.name}", None) for _, p, ts in self.parents for t in ts]

    def tracks(self) -> Iterator[tuple[int, int, Track]]:
        """Every track, read one shot at a time (its arrays in one bulk call),
        with the checks readers make on a track's arrays."""
        src = self.root.source
        assert self.timeline is not None
        for idx, path, records in self.parents:
            roles = ("data", "indices")
            got = self.timeline.read_nodes(
                [self._below(path, r.name, role) for r in records for role in roles]
            )
            for k, r in enumerate(records):
                (dnode, data), (inode, indices) = got[2 * k : 2 * k + 2]
                if r.problem is not None:
                    raise r.problem
                _check_array(src, "data", dnode)
                _check_array(src, "indices", inode)
                if self.check is not None:
                    self.check(self.groups[path], r.pose, {"data": dnode, "indices": inode})
                if r.entries != len(data) or len(indices) != len(data):
                    where = f"{src}:{path.rstrip('/')}/{r.name}"
                    raise FormatError(f"{where}: indptr does not match data/indices lengths")
                assert r.indptr is not None
                yield idx, r.pose_id, Track(r.start_frame, r.end_frame, data, indices, r.indptr)
            del got


def _packed_tracks(pt: PackedTimeline) -> Iterator[tuple[int, int, Track]]:
    cache = pt.cache(sequential=True)
    for s in range(len(pt)):
        t0, t1 = int(pt.first[s]), int(pt.first[s + 1])
        by_pose: dict[int, list[int]] = {}
        for t in range(t0, t1):
            by_pose.setdefault(int(pt.tracks[t, C_POSE]), []).append(t)
        for pid in sorted(by_pose):
            yield s, pid, _merged_track(pt, cache, by_pose[pid])


def _merged_track(pt: PackedTimeline, cache: ReadCache, parts: list[int]) -> Track:
    """One track from its parts, frames between parts as empty rows."""
    tab = pt.tracks
    spans = []
    for t in parts:
        r0 = int(tab[t, C_ROW])
        spans.append((r0, r0 + int(tab[t, C_END] - tab[t, C_START]) + 1))
    cache.fetch(spans, [])
    ptrs = [cache.pointers(lo, hi) for lo, hi in spans]
    cache.fetch([], [(int(p[0]), int(p[-1])) for p in ptrs])
    start, end = int(tab[parts[0], C_START]), int(tab[parts[-1], C_END])
    datas, idxs = [], []
    counts = np.zeros(end - start, np.int64)
    for t, ip in zip(parts, ptrs, strict=True):
        if ip[0] != tab[t, C_ENTRY]:
            raise FormatError(
                f"{pt.where}/tracks: row {t}: entry {int(tab[t, C_ENTRY])} "
                f"but indptr says {int(ip[0])}"
            )
        d, i = cache.entry_slices(int(ip[0]), int(ip[-1]))
        datas.append(d)
        idxs.append(i)
        s = int(tab[t, C_START]) - start
        counts[s : s + len(ip) - 1] = np.diff(ip)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    if indptr[-1] >= 2**32:
        raise FormatError(f"{pt.where}: a track of over 2**32 keypoints")
    return Track(
        start,
        end,
        np.concatenate(datas) if len(datas) > 1 else datas[0],
        np.concatenate(idxs) if len(idxs) > 1 else idxs[0],
        indptr.astype(np.uint32),
    )


def packed_preset(root: Group) -> str | None:
    """The compression preset of a packed dump's ``data``/``indices``."""
    arrays = _packed_arrays(_timeline_of(root))
    return preset_name(arrays[DATA].encoding, arrays[INDICES].encoding)


# ---------------------------------------------------------------- conversion between layouts

#: Pose groups (and skelshop shot groups) may carry only these attributes to be packed.
FRAME_ATTRS = frozenset({"start_frame", "end_frame"})
SKELSHOP_DTYPES = {
    "data": np.dtype(np.float32),
    "indices": np.dtype(np.uint16),
    "indptr": np.dtype(np.uint32),
}


def check_packable(root: Group, walk: SkelshopWalk | None = None) -> SkelshopWalk:
    """Refuse a skelshop-layout dump that the packed layout cannot hold exactly;
    returns its :class:`SkelshopWalk`, listed while checking (``walk``, if given,
    was made by this function already and is returned as is).

    Raises:
        FormatError: shots not numbered ``shot0 .. shotN`` without gaps, shot or
            pose groups with attributes or members the layout does not have, or
            pose arrays of other dtypes than skelshop's; the message suggests
            keeping skelshop's layout.
    """
    if walk is not None and walk.checked:
        return walk
    hint = " (the packed layout cannot hold it: convert with layout='skelshop')"
    src = root.source

    def check(parent: NodeInfo, pose: NodeInfo | None, arrays: dict[str, NodeInfo]) -> None:
        if pose is None:  # a shot group
            extra = set(parent.attrs) - FRAME_ATTRS
            if extra:
                raise FormatError(f"{src}:{parent.path}: attributes {sorted(extra)}{hint}")
            return
        extra = set(pose.attrs) - FRAME_ATTRS
        members = set(pose.members or ()) - set(SKELSHOP_DTYPES)
        if extra or members:
            what = f"attributes {sorted(extra)}" if extra else f"members {sorted(members)}"
            raise FormatError(f"{src}:{pose.path}: {what}{hint}")
        for arr in arrays.values():
            if arr.dtype != SKELSHOP_DTYPES[arr.name] or arr.attrs:
                raise FormatError(f"{src}:{arr.path}: dtype {arr.dtype} or attributes{hint}")

    walk = SkelshopWalk.of(root, check)
    walk.checked = True
    if not walk.unseg:
        for pos, shot in enumerate(walk.shots):
            if shot.index != pos:
                raise FormatError(
                    f"{root.source}:/{TIMELINE}: shots are not numbered shot0..shot"
                    f"{len(walk.shots) - 1} without gaps (shot{shot.index}){hint}"
                )
    return walk


def packed_sizes(root: Group, walk: SkelshopWalk | None = None) -> tuple[int, int, int]:
    """``(tracks, rows, entries)`` the packed copy of ``root`` will hold (one part
    per whole track), from metadata and tables only."""
    if not is_packed(root):
        return (walk or SkelshopWalk.of(root)).sizes()
    pt = PackedTimeline(root, _timeline_of(root))
    spans: dict[tuple[int, int], list[int]] = {}
    for shot, pid, s, e in pt.tracks[:, :4].tolist():
        span = spans.setdefault((shot, pid), [s, e])
        span[0], span[1] = min(span[0], s), max(span[1], e)
    rows = sum(e - s for s, e in spans.values())
    entries = int(pt.cache(False).pointers(pt.n_rows, pt.n_rows + 1)[0]) if pt.n_rows else 0
    return len(spans), rows, entries


class PackedStream:
    """Writes a whole packed timeline from whole tracks in (shot, pose id) order,
    knowing its final size: chunks are fitted (:func:`skelstore.packed.plan_arrays`),
    the CSR arrays are created at their final length, and each is written in whole
    shards (or groups of chunks), so no stored object is written twice (and no
    array's metadata is rewritten to grow it). ``data`` and ``indices`` have the
    same units, filled together and written in one
    :meth:`~skelstore.storage.Group.set_many` (encoded concurrently on Zarr). For
    conversion, which stages its output: no crash-safe ordering is kept here.

    Raises (:meth:`add`, :meth:`close`) FormatError if the tracks added do not
    add up to the sizes given (a source that changed while being converted)."""

    def __init__(
        self, root: Group, timeline: Group, settings: Any, sizes: tuple[int, int, int], n_shots: int
    ) -> None:
        from skelstore.packed import ARRAY_NAMES as names
        from skelstore.packed import mark_packed, plan_arrays

        n_tracks, rows, entries = sizes
        plans = plan_arrays(
            {SHOTS: n_shots, TRACKS: n_tracks, INDPTR: rows + 1, DATA: entries, INDICES: entries},
            small=timeline.min_chunk_bytes is None,
        )
        #: Final lengths of the CSR arrays.
        self.sizes = {INDPTR: rows + 1, DATA: entries, INDICES: entries}
        self.timeline = timeline
        self.arrays = {
            name: plans[name].create(timeline, settings, self.sizes.get(name, 0)) for name in names
        }
        mark_packed(root)
        #: Written in units of whole shards (or 16 chunks), through one reused buffer
        #: per array: each stored object is written once, from one copy of its values.
        self.units = {
            name: min(plans[name].shard or plans[name].chunk * 16, max(1, self.sizes[name]))
            for name in (INDPTR, DATA, INDICES)
        }
        #: Two buffers per array: one filled while the other's unit is written
        #: (:meth:`~skelstore.storage.Group.start_set_many`; one write in flight).
        self.spare = {
            name: np.empty((self.units[name], *TRAILING[name]), DTYPES[name])
            for name in (INDPTR, DATA, INDICES)
        }
        self.buffers = {
            name: np.empty((self.units[name], *TRAILING[name]), DTYPES[name])
            for name in (INDPTR, DATA, INDICES)
        }
        self.in_flight: Any = None
        self.buffered = dict.fromkeys((INDPTR, DATA, INDICES), 0)
        self.written = dict.fromkeys((INDPTR, DATA, INDICES), 0)
        self.table: list[tuple[int, int, int, int, int, int]] = []
        self.rows = self.entries = 0
        self._put(INDPTR, np.zeros(1, POINTER_DTYPE))

    def _put(self, name: str, values: np.ndarray) -> None:
        unit = self.units[name]
        while len(values):
            at = self.buffered[name]
            take = min(len(values), unit - at)
            # (the buffer is looked up each time: a flush swaps it for the spare one)
            self.buffers[name][at : at + take] = values[:take]
            self.buffered[name] = at + take
            values = values[take:]
            if self.buffered[name] == unit:
                self._flush(name)

    def _put_entries(self, data: np.ndarray, indices: np.ndarray) -> None:
        """Buffer entries of ``data`` and ``indices`` together (their units are
        the same), writing both arrays' full units in one call."""
        if self.units[DATA] != self.units[INDICES]:  # not planned so: one by one
            self._put(DATA, data)
            self._put(INDICES, indices)
            return
        unit = self.units[DATA]
        while len(data):
            at = self.buffered[DATA]
            take = min(len(data), unit - at)
            # (the buffers are looked up each time: a flush swaps them for the spares)
            self.buffers[DATA][at : at + take] = data[:take]
            self.buffers[INDICES][at : at + take] = indices[:take]
            self.buffered[DATA] = self.buffered[INDICES] = at + take
            data, indices = data[take:], indices[take:]
            if at + take == unit:
                self._flush(DATA, INDICES)

    def _flush(self, *names: str) -> None:
        items = []
        for name in names:
            n = self.buffered[name]
            if not n:
                continue
            at = self.written[name]
            if at + n > self.sizes[name]:
                raise FormatError(
                    f"{self.timeline.where()}/{name}: more rows than the source declared "
                    f"({self.sizes[name]}); did it change while being converted?"
                )
            items.append((self.arrays[name], at, self.buffers[name][:n]))
            self.written[name] = at + n
            self.buffered[name] = 0
        if items:
            self._finish()  # the spare buffers are free again
            self.in_flight = self.timeline.start_set_many(items)
            for name in names:
                self.buffers[name], self.spare[name] = self.spare[name], self.buffers[name]

    def _finish(self) -> None:
        """Wait for the write in flight, if any (raising its error)."""
        if self.in_flight is not None:
            finish, self.in_flight = self.in_flight, None
            finish()

    def abandon(self) -> None:
        """After a failure: wait for the write in flight, if any, without raising
        (the failure on its way out is the one to tell)."""
        with contextlib.suppress(Exception):
            self._finish()

    def add(self, shot: int, pose_id: int, track: Track) -> None:
        indptr = np.asarray(track.indptr, np.int64)
        nnz = int(indptr[-1] - indptr[0])
        self.table.append(
            (shot, pose_id, track.start_frame, track.end_frame, self.rows, self.entries)
        )
        if nnz:
            self._put_entries(
                np.asarray(track.data).reshape(-1, 3)[indptr[0] : indptr[-1]],
                np.asarray(track.indices)[indptr[0] : indptr[-1]],
            )
        self._put(INDPTR, (indptr[1:] - indptr[0] + self.entries).astype(POINTER_DTYPE))
        self.rows += len(indptr) - 1
        self.entries += nnz

    def close(self, shots: list[tuple[int, int]]) -> None:
        self._flush(DATA, INDICES)
        self._flush(INDPTR)
        self._finish()
        self.buffers.clear()
        self.spare.clear()
        for name, size in self.sizes.items():
            if self.written[name] != size:
                raise FormatError(
                    f"{self.timeline.where()}/{name}: {self.written[name]} rows written, "
                    f"{size} declared by the source; did it change while being converted?"
                )
        if self.table:
            self.arrays[TRACKS].append(np.asarray(self.table, TABLE_DTYPE))
        if shots:
            self.arrays[SHOTS].append(np.asarray(shots, TABLE_DTYPE).reshape(-1, 2))


def pack_timeline(
    src: Group,
    dst: Group,
    dst_timeline: Group,
    settings: Any,
    tick: Any = None,
    walk: SkelshopWalk | None = None,
) -> None:
    """Write ``src``'s timeline (either layout) into ``dst_timeline`` in the packed
    layout, one shot's tracks at a time; ``walk``: a skelshop source's tree, listed
    and checked by :func:`check_packable` already."""
    if not is_packed(src):
        walk = check_packable(src, walk)
    shots = walk.shots if walk is not None else dump_shots(src)
    stream = PackedStream(dst, dst_timeline, settings, packed_sizes(src, walk), len(shots))
    try:
        for shot, pid, track in dump_tracks(src, walk):
            stream.add(shot, pid, track)
            if tick is not None:
                tick()
        stream.close([(s.start_frame, s.end_frame) for s in shots])
    except BaseException:
        stream.abandon()
        raise


def unpack_timeline(src: Group, dst_timeline: Group, settings: Any, tick: Any = None) -> None:
    """Write a packed ``src``'s timeline into ``dst_timeline`` in skelshop's layout:
    skelshop's chunking and per-track encodings (the small-track rule) from
    ``settings``; unsegmented tracks growable, as skelshop's writer makes them."""
    from skelstore.trackwriter import track_specs

    unseg = src.attrs.get("fmt_type") == "unseg"
    min_chunk = dst_timeline.min_chunk_bytes
    shots = {s.index: s for s in dump_shots(src)}
    pending: list[Any] = []
    current: int | None = None

    def write_shot() -> None:
        if current is not None:
            dst_timeline.write_many(pending)

    done_shots = set()
    for shot, pid, track in dump_tracks(src):
        if unseg:
            grp = dst_timeline.create_group(
                f"pose{pid}", {"start_frame": track.start_frame, "end_frame": track.end_frame}
            )
            for role, values in (
                ("data", track.data),
                ("indices", track.indices),
                ("indptr", track.indptr),
            ):
                values = np.asarray(values, SKELSHOP_DTYPES[role])
                arr = settings.create_growable(grp, role, SKELSHOP_DTYPES[role], values.shape[1:])
                if len(values):
                    arr.append(values)
        else:
            if shot != current:
                write_shot()
                for missing in range((current + 1) if current is not None else 0, shot):
                    s = shots[missing]  # shots without tracks
                    dst_timeline.create_group(
                        f"shot{missing}", {"start_frame": s.start_frame, "end_frame": s.end_frame}
                    )
                    done_shots.add(missing)
                s = shots[shot]
                pending = [
                    GroupSpec(
                        f"shot{shot}", {"start_frame": s.start_frame, "end_frame": s.end_frame}
                    )
                ]
                current = shot
                done_shots.add(shot)
            pending += track_specs(f"shot{shot}/pose{pid}", track, settings, min_chunk)
        if tick is not None:
            tick()
    if not unseg:
        write_shot()
        for idx in sorted(shots):
            if idx not in done_shots:
                s = shots[idx]
                dst_timeline.create_group(
                    f"shot{idx}", {"start_frame": s.start_frame, "end_frame": s.end_frame}
                )


def compare_logical(a: Group, b: Group, compare_group: Any) -> str | None:
    """The first difference between two dumps in any layouts, or ``None``: root
    attributes (but the layout's own), every member but ``/timeline`` (through
    ``compare_group``), the timeline's attributes, shots, and every whole track's
    frames, keypoint numbers and values (within 0.01 where a side is lossy)."""
    from skelstore.packed import LAYOUT_ATTR, LAYOUT_VERSION_ATTR

    skip = {LAYOUT_ATTR, LAYOUT_VERSION_ATTR, "skelstore_verified"}
    ra = {k: v for k, v in a.attrs.items() if k not in skip}
    rb = {k: v for k, v in b.attrs.items() if k not in skip}
    if ra != rb:
        k = sorted(x for x in set(ra) | set(rb) if ra.get(x) != rb.get(x))[0]
        return f"/: attribute {k!r}: {ra.get(k)!r} != {rb.get(k)!r}"
    if a.keys() != b.keys():
        return f"/: members {a.keys()} != {b.keys()}"
    for name in a:
        if name == TIMELINE:
            continue
        msg = compare_group(a[name], b[name])
        if msg:
            return msg
    ta, tb = _timeline_of(a), _timeline_of(b)
    if dict(ta.attrs) != dict(tb.attrs):
        return f"/{TIMELINE}: attributes {dict(ta.attrs)} != {dict(tb.attrs)}"
    sa, sb = dump_shots(a), dump_shots(b)
    if sa != sb:
        return (
            f"/{TIMELINE}: shots {[(s.start_frame, s.end_frame) for s in sa]} != "
            f"{[(s.start_frame, s.end_frame) for s in sb]}"
        )
    lossy = any(p is not None and p.startswith("lossy") for p in (_preset(a), _preset(b)))
    tol = 0.01 + 1e-6 if lossy else 0.0
    for x, y in zip_longest(dump_tracks(a), dump_tracks(b)):
        if x is None or y is None:
            return f"/{TIMELINE}: different numbers of tracks"
        (shot, pid, t), (shot2, pid2, u) = x, y
        where = f"/{TIMELINE} shot {shot} pose {pid}"
        if (shot, pid, t.start_frame, t.end_frame) != (shot2, pid2, u.start_frame, u.end_frame):
            return (
                f"{where}: track {(shot, pid, t.start_frame, t.end_frame)} != "
                f"{(shot2, pid2, u.start_frame, u.end_frame)}"
            )
        ia, ib = np.asarray(t.indptr, np.int64), np.asarray(u.indptr, np.int64)
        if not np.array_equal(ia - ia[0], ib - ib[0]):
            return f"{where}: indptr differs"
        da = np.asarray(t.data)[ia[0] : ia[-1]]
        db = np.asarray(u.data)[ib[0] : ib[-1]]
        if not np.array_equal(
            np.asarray(t.indices)[ia[0] : ia[-1]], np.asarray(u.indices)[ib[0] : ib[-1]]
        ):
            return f"{where}: indices differ"
        if tol:
            same = np.isclose(da, db, rtol=0, atol=tol, equal_nan=True)
        else:
            same = (da == db) | (np.isnan(da) & np.isnan(db))
        if not same.all():
            first = int(np.argwhere(~same)[0][0])
            return f"{where}: data[{first}]: {da[first]!r} != {db[first]!r}"
    return None


def _preset(root: Group) -> str | None:
    if is_packed(root):
        return packed_preset(root)
    from skelstore.summary import detect_preset, iter_tracks

    return detect_preset(iter_tracks(root))
