"""Interrupted writes: the in-progress mark, reading what survived, repairing.

A writer working on a root that skelstore opened (and so can close) records two
root attributes: ``skelstore_in_progress = True`` and ``skelstore_shots_done``, the
number of shots written completely (updated, and flushed, after every shot). A
clean close removes both. A dump that still carries the mark was not closed by its
writer (the process died, or the ``with`` block raised): :func:`check_complete`
refuses it with :class:`~skelstore.errors.IncompleteDumpError`, which says how
many shots are intact; ``skelstore.open(..., allow_incomplete=True)`` reads those
shots (and hides the partial one; of an ``unseg`` dump, each track's complete
rows); :func:`repair` (``skelstore repair``) deletes the partial shot and removes
the mark for good.

Writing to a marked dump would adopt its partial shot (a writer resumes after
the last shot it finds), so opening one with ``r+`` or ``a`` is refused too;
with ``allow_incomplete=True`` it is repaired first, with a
:class:`~skelstore.errors.RepairWarning` saying what was dropped. Writers refuse
a root still marked by a writer of an earlier session (also a raw h5py/zarr one).

Files without the mark (every file skelshop wrote, and every file skelstore
closed cleanly) are complete. Writers given a raw ``h5py``/``zarr`` object do not
mark it: skelstore cannot see when such a file is closed.
"""

from __future__ import annotations

import warnings
from collections import ChainMap
from typing import Any

import numpy as np

from skelstore.compression import Encoding
from skelstore.errors import (
    FormatError,
    IncompleteDumpError,
    ReadOnlyError,
    RepairWarning,
)
from skelstore.layout import TIMELINE, parse_index
from skelstore.storage import Array, Attrs, Group

__all__ = [
    "IN_PROGRESS",
    "SHOTS_DONE",
    "IncompleteView",
    "check_complete",
    "check_resumable",
    "intact_shots",
    "mark_in_progress",
    "repair",
    "shot_done",
]

IN_PROGRESS = "skelstore_in_progress"
SHOTS_DONE = "skelstore_shots_done"
#: Set (on the Python object) on a root marked in this session.
_MARKED_HERE = "_skelstore_marked_here"


def mark_in_progress(root: Group, shots_done: int = 0) -> bool:
    """Mark ``root`` as being written; the mark goes when the root closes cleanly.

    Returns False (and marks nothing) for roots skelstore does not close itself.
    """

    def on_close(ok: bool) -> None:
        if ok and IN_PROGRESS in root.attrs:
            del root.attrs[IN_PROGRESS]
            if SHOTS_DONE in root.attrs:
                del root.attrs[SHOTS_DONE]

    if not root.writable or not root.add_close_hook(on_close):
        return False
    root.attrs.update({IN_PROGRESS: True, SHOTS_DONE: int(shots_done)})
    root.__dict__[_MARKED_HERE] = True
    root.flush()
    return True


def check_resumable(root: Group) -> None:
    """Refuse to write into ``root`` if an earlier writer left it marked (a writer
    would adopt its unfinished shot).

    Raises:
        IncompleteDumpError: the mark is there and was not set in this session.
    """
    if root.writable and root.attrs.get(IN_PROGRESS) and not root.__dict__.get(_MARKED_HERE):
        raise IncompleteDumpError(
            f"{root.source}: was not closed by its writer (still marked in progress); "
            f"repair it before writing more: `skelstore repair {root.source}`, or open it "
            "with skelstore.open(..., allow_incomplete=True), which repairs it first"
        )


def shot_done(root: Group, shots_done: int) -> None:
    """Record that ``shots_done`` shots are complete (if the root is marked)."""
    if root.attrs.get(IN_PROGRESS):
        root.attrs[SHOTS_DONE] = int(shots_done)
    root.flush()


def _intact(root: Group) -> int:
    done = root.attrs.get(SHOTS_DONE, 0)
    return int(done) if isinstance(done, int) and not isinstance(done, bool) else 0


def intact_shots(root: Group) -> int:
    """The number of shots a marked dump records as complete (0 if it records none)."""
    return _intact(root)


def check_complete(root: Group, *, allow_incomplete: bool = False, mode: str = "r") -> Group:
    """``root`` if it is complete. If it is marked: for reading (``mode`` ``r``), an
    :class:`IncompleteView` of what is intact, if ``allow_incomplete``; for writing
    (``r+``, ``a``), ``root`` repaired in place (:func:`repair`, with a
    :class:`~skelstore.errors.RepairWarning`), if ``allow_incomplete``.

    Raises:
        IncompleteDumpError: the dump is marked in progress and ``allow_incomplete``
            is false.
    """
    if not root.attrs.get(IN_PROGRESS):
        return root
    unseg = root.attrs.get("fmt_type") == "unseg"
    intact = _intact(root)
    what = "the complete rows of its tracks are" if unseg else f"{intact} complete shot(s) are"
    if mode != "r":
        if not allow_incomplete:
            raise IncompleteDumpError(
                f"{root.source}: was not closed by its writer (still marked in progress); "
                f"{what} intact. Writing to it would adopt what was left unfinished: run "
                f"`skelstore repair {root.source}` first, or open it with "
                "allow_incomplete=True, which repairs it first"
            )
        kept, deleted = repair(root)
        dropped = f"removed {', '.join(deleted)}" if deleted else "cut tracks to complete rows"
        warnings.warn(
            RepairWarning(
                f"{root.source}: was not closed by its writer; repaired before writing: "
                f"{dropped}" + ("" if unseg else f"; {kept} complete shot(s) kept")
            ),
            stacklevel=3,
        )
        return root
    if not allow_incomplete:
        raise IncompleteDumpError(
            f"{root.source}: was not closed by its writer (still marked in progress); "
            f"{what} intact: skelstore.open(..., allow_incomplete=True) reads them, "
            f"`skelstore repair {root.source}` keeps only them"
        )
    return IncompleteView(root, intact)


class IncompleteView(Group):
    """A read view of a marked dump that shows only what its writer finished.

    ``trackshots``: the first ``shots`` shots (the partial one is hidden).
    ``unseg``: each track cut to its complete rows (:func:`_complete_rows`), with
    the ``end_frame`` attributes its writer had not set yet (as :func:`repair`
    would set them), and the timeline's frame range made from the tracks.
    Everything else is delegated to the real root; closing the view closes it.
    """

    def __init__(self, root: Group, shots: int, path: str = "/") -> None:
        self._root = root
        self._shots = shots
        self._node = root if path == "/" else root[path]
        self._path = path
        self._unseg = root.attrs.get("fmt_type") == "unseg"
        self._overlay: dict[str, Any] | None = None
        self._rows: tuple[int, int] | None = None  # (rows, entries) of an unseg track

    # -- Node
    @property
    def path(self) -> str:
        return self._node.path

    @property
    def attrs(self) -> Attrs:
        overlay = self._attr_overlay()
        if not overlay:
            return self._node.attrs
        return Attrs(ChainMap(overlay, self._node.attrs), writable=False, where=self.where())

    @property
    def source(self) -> str:
        return self._node.source

    @property
    def raw(self) -> Any:
        return self._node.raw

    @property
    def writable(self) -> bool:
        return False

    @property
    def engine_name(self) -> str:  # type: ignore[override]
        return self._root.engine_name

    @property
    def format_info(self) -> dict[str, Any]:
        return self._root.format_info

    # -- what the view changes
    def _is_timeline(self) -> bool:
        return self._node.path.rstrip("/") == "/" + TIMELINE

    def _is_unseg_track(self) -> bool:
        parent = self._node.path.rstrip("/").rpartition("/")[0]
        return self._unseg and parent == "/" + TIMELINE

    def _track_rows(self) -> tuple[int, int]:
        """``(rows, entries)`` this unseg track's writer finished."""
        if self._rows is None:
            assert isinstance(self._node, Group)
            self._rows = _complete_rows(self._node) or (0, 0)
        return self._rows

    def _attr_overlay(self) -> dict[str, Any]:
        """Frame-range attributes an unfinished ``unseg`` writer had not set yet."""
        if self._overlay is None:
            self._overlay = {}
            attrs = self._node.attrs
            if self._is_unseg_track() and "end_frame" not in attrs and "start_frame" in attrs:
                start = attrs["start_frame"]
                if isinstance(start, int):
                    self._overlay["end_frame"] = start + self._track_rows()[0]
            elif self._unseg and self._is_timeline() and "end_frame" not in attrs:
                start = attrs.get("start_frame", 0)
                from skelstore.packed import is_packed

                if is_packed(self._root):  # the range its parts cover (see PackedTimeline)
                    from skelstore.packed_read import PackedTimeline

                    assert isinstance(self._node, Group)
                    start, end = PackedTimeline(self._root, self._node).shot_range(0)
                    self._overlay.update({"start_frame": start, "end_frame": end})
                    return self._overlay
                ends = [
                    child.attrs.get("end_frame")
                    for _, child in self.groups()
                    if "start_frame" in child.attrs
                ]
                ints = [e for e in ends if isinstance(e, int)]
                self._overlay.update({"start_frame": start, "end_frame": max([start, *ints])})
        return self._overlay

    def _hidden(self, name: str) -> bool:
        if not self._is_timeline() or self._root.attrs.get("fmt_type") != "trackshots":
            return False
        try:
            return parse_index(name, "shot", self.where()) >= self._shots
        except FormatError:
            return False

    def keys(self) -> list[str]:
        assert isinstance(self._node, Group)
        return [k for k in list(self._node) if not self._hidden(k)]

    def child(self, name: str) -> Group | Array | None:
        if self._hidden(name):
            return None
        assert isinstance(self._node, Group)
        child = self._node.get(name)
        if isinstance(child, Group):
            return IncompleteView(self._root, self._shots, child.path)
        if (
            isinstance(child, Array)
            and name in ("data", "indices", "indptr")
            and self._is_unseg_track()
            and "end_frame" not in self._node.attrs
        ):
            rows, entries = self._track_rows()
            return _Prefix(child, rows + 1 if name == "indptr" else entries)
        return child

    def create_group(self, name: str, attrs: dict[str, Any] | None = None) -> Group:
        raise FormatError(f"{self.where()}: an incomplete dump is read only; repair it first")

    def create_array(self, name: str, **kwargs: Any) -> Array:  # type: ignore[override]
        raise FormatError(f"{self.where()}: an incomplete dump is read only; repair it first")

    def read_many(self, requests: Any) -> list[np.ndarray]:
        pairs = [req if isinstance(req, tuple) else (req, ...) for req in requests]
        inner = [p[0].inner_request(p[1]) if isinstance(p[0], _Prefix) else p for p in pairs]
        return self._root.read_many(inner)

    def close(self) -> None:
        if self._path == "/":
            self._root.close()


class _Prefix(Array):
    """The first ``n`` entries of an array (an unfinished track's complete part),
    read only."""

    def __init__(self, inner: Array, n: int) -> None:
        self._inner = inner
        self._n = max(0, min(int(n), len(inner)))

    @property
    def path(self) -> str:
        return self._inner.path

    @property
    def source(self) -> str:
        return self._inner.source

    @property
    def raw(self) -> Any:
        return self._inner.raw

    @property
    def attrs(self) -> Attrs:
        return self._inner.attrs

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._n, *self._inner.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self._inner.dtype

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return self._inner.chunks

    @property
    def encoding(self) -> Encoding | None:
        return self._inner.encoding

    @property
    def growable(self) -> bool:
        return False

    @property
    def nbytes_stored(self) -> int | None:
        return self._inner.nbytes_stored

    def inner_request(self, selection: Any) -> tuple[Array, Any]:
        """``(array, selection)`` reading ``selection`` of this prefix from the real
        array (a slice along the first axis is cut to the prefix)."""
        if selection is Ellipsis or selection == ():
            return self._inner, slice(0, self._n)
        first, rest = (
            (selection[0], selection[1:]) if isinstance(selection, tuple) else (selection, ())
        )
        if isinstance(first, slice):
            cut = slice(*first.indices(self._n))
            return self._inner, (cut, *rest) if rest else cut
        if isinstance(first, (int, np.integer)) and not isinstance(first, bool):
            if not -self._n <= int(first) < self._n:
                raise IndexError(f"{self.where()}: index {int(first)} out of range")
            return self._inner, selection if int(first) >= 0 else (int(first) + self._n, *rest)
        return self, selection  # anything else: read the prefix, then select

    def __getitem__(self, selection: Any) -> np.ndarray:
        arr, sel = self.inner_request(selection)
        if arr is self:
            return self._inner[0 : self._n][selection]
        return arr[sel]

    def __setitem__(self, selection: Any, values: Any) -> None:
        raise ReadOnlyError(f"{self.where()}: an incomplete dump is read only; repair it first")

    def append(self, values: np.ndarray) -> None:
        raise ReadOnlyError(f"{self.where()}: an incomplete dump is read only; repair it first")


def repair(root: Group) -> tuple[int, list[str]]:
    """Make a marked dump complete, in place: delete what was not finished and
    remove the mark. ``root`` must be open for writing.

    For ``trackshots`` dumps, shots from ``skelstore_shots_done`` on are deleted.
    For ``unseg`` dumps, each track is cut to its last complete row and the
    timeline's frame range is set from the tracks.

    Returns:
        ``(intact shots, deleted paths)``; ``(shots, [])`` for an unmarked dump.
    """
    fmt_type = root.attrs.get("fmt_type")
    timeline = root.get(TIMELINE)
    if not root.attrs.get(IN_PROGRESS):
        if isinstance(timeline, Group) and root.attrs.get("layout") == "packed":
            from skelstore.packed_ops import dump_shots

            return len(dump_shots(root)), []
        return (len(timeline) if isinstance(timeline, Group) else 0), []
    intact = _intact(root)
    deleted: list[str] = []
    from skelstore.packed import is_packed
    from skelstore.packed_check import repair_packed

    if isinstance(timeline, Group) and is_packed(root):
        intact, deleted = repair_packed(root, timeline, intact)
    elif isinstance(timeline, Group) and fmt_type == "trackshots":
        for name in list(timeline):
            try:
                idx = parse_index(name, "shot", timeline.where())
            except FormatError:
                continue
            if idx >= intact:
                timeline.delete(name)
                deleted.append(f"/{TIMELINE}/{name}")
    elif isinstance(timeline, Group) and fmt_type == "unseg":
        intact = 1
        ends = [_repair_track(g) for _, g in timeline.groups()]
        start = timeline.attrs.get("start_frame", 0)
        timeline.attrs.update(
            {"start_frame": start, "end_frame": max([start, *[e for e in ends if e]])}
        )
    del root.attrs[IN_PROGRESS]
    if SHOTS_DONE in root.attrs:
        del root.attrs[SHOTS_DONE]
    root.flush()
    return intact, deleted


def _complete_rows(group: Group) -> tuple[int, int] | None:
    """``(rows, entries)`` of an unfinished growable track: the rows its ``indptr``
    holds completely, and the ``data``/``indices`` entries they use. Writers append
    ``indptr`` after ``data`` and ``indices``, so its entries describe complete
    rows; a trailing part that is not a valid prefix (decreasing, or beyond the
    entries written, as a store can show after a crash) is not counted. ``None``
    if the group lacks its arrays."""
    data, indices, indptr = (group.get(n) for n in ("data", "indices", "indptr"))
    if not (isinstance(data, Array) and isinstance(indices, Array) and isinstance(indptr, Array)):
        return None
    ends = indptr.read().astype(np.int64)
    if not len(ends):
        return 0, 0
    limit = min(len(data), len(indices))
    ok = (ends >= 0) & (ends <= limit)
    ok[1:] &= np.diff(ends) >= 0
    bad = np.flatnonzero(~ok)
    valid = int(bad[0]) if len(bad) else len(ends)
    if valid == 0:
        return 0, 0
    return valid - 1, int(ends[valid - 1])


def _repair_track(group: Group) -> int | None:
    """Close a growable track cut short, in place: keep its complete rows
    (:func:`_complete_rows`), drop entries written after them and set
    ``end_frame``."""
    if "end_frame" in group.attrs or "start_frame" not in group.attrs:
        end = group.attrs.get("end_frame")
        return end if isinstance(end, int) else None
    found = _complete_rows(group)
    if found is None:
        return None
    rows, nnz = found
    indptr = group["indptr"]
    assert isinstance(indptr, Array)
    if len(indptr) == 0:
        indptr.append(np.zeros(1, dtype=indptr.dtype))
    elif len(indptr) > rows + 1:
        indptr.truncate(rows + 1)
    for name in ("data", "indices"):
        arr = group[name]
        assert isinstance(arr, Array)
        if len(arr) > nnz:
            arr.truncate(nnz)
    end = int(group.attrs["start_frame"]) + rows
    group.attrs["end_frame"] = end
    return end
