"""Interrupted writes: the in-progress mark, reading what survived, repairing.

A writer working on a root that skelstore opened (and so can close) records two
root attributes: ``skelstore_in_progress = True`` and ``skelstore_shots_done``, the
number of shots written completely (updated, and flushed, after every shot). A
clean close removes both. A dump that still carries the mark was not closed by its
writer (the process died, or the ``with`` block raised): :func:`check_complete`
refuses it with :class:`~skelstore.errors.IncompleteDumpError`, which says how
many shots are intact; ``skelstore.open(..., allow_incomplete=True)`` reads those
shots (and hides the partial one); :func:`repair` (``skelstore repair``) deletes
the partial shot and removes the mark for good.

Files without the mark (every file skelshop wrote, and every file skelstore
closed cleanly) are complete. Writers given a raw ``h5py``/``zarr`` object do not
mark it: skelstore cannot see when such a file is closed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skelstore.errors import FormatError, IncompleteDumpError
from skelstore.layout import TIMELINE, parse_index
from skelstore.storage import Array, Attrs, Group

__all__ = [
    "IN_PROGRESS",
    "SHOTS_DONE",
    "IncompleteView",
    "check_complete",
    "intact_shots",
    "mark_in_progress",
    "repair",
    "shot_done",
]

IN_PROGRESS = "skelstore_in_progress"
SHOTS_DONE = "skelstore_shots_done"


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
    root.flush()
    return True


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


def check_complete(root: Group, *, allow_incomplete: bool = False) -> Group:
    """``root`` if it is complete; an :class:`IncompleteView` of its intact shots if
    it is marked and ``allow_incomplete``.

    Raises:
        IncompleteDumpError: the dump is marked in progress and ``allow_incomplete``
            is false.
    """
    if not root.attrs.get(IN_PROGRESS):
        return root
    intact = _intact(root)
    if not allow_incomplete:
        raise IncompleteDumpError(
            f"{root.source}: was not closed by its writer (still marked in progress); "
            f"{intact} complete shot(s) are intact. Open it with allow_incomplete=True "
            f"to read them, or run `skelstore repair {root.source}`"
        )
    return IncompleteView(root, intact)


class IncompleteView(Group):
    """A read view of a marked dump that shows only its first ``shots`` shots.

    Everything else is delegated to the real root; closing the view closes it.
    """

    def __init__(self, root: Group, shots: int, path: str = "/") -> None:
        self._root = root
        self._shots = shots
        self._node = root if path == "/" else root[path]
        self._path = path

    # -- Node
    @property
    def path(self) -> str:
        return self._node.path

    @property
    def attrs(self) -> Attrs:
        return self._node.attrs

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
    def supports_concurrent_reads(self) -> bool:
        return self._root.supports_concurrent_reads

    @property
    def format_info(self) -> dict[str, Any]:
        return self._root.format_info

    def _hidden(self, name: str) -> bool:
        if self._node.path.rstrip("/") != "/" + TIMELINE or self._root.attrs.get(
            "fmt_type"
        ) != "trackshots":
            return False
        try:
            return parse_index(name, "shot", self.where()) >= self._shots
        except FormatError:
            return False

    def keys(self) -> list[str]:
        assert isinstance(self._node, Group)
        return [k for k in list(self._node) if not self._hidden(k)]

    def _child(self, name: str) -> Group | Array | None:
        if self._hidden(name):
            return None
        assert isinstance(self._node, Group)
        child = self._node.get(name)
        if isinstance(child, Group):
            return IncompleteView(self._root, self._shots, child.path)
        return child

    def create_group(self, name: str, attrs: dict[str, Any] | None = None) -> Group:
        raise FormatError(f"{self.where()}: an incomplete dump is read only; repair it first")

    def create_array(self, name: str, **kwargs: Any) -> Array:  # type: ignore[override]
        raise FormatError(f"{self.where()}: an incomplete dump is read only; repair it first")

    def read_many(self, requests: Any) -> list[np.ndarray]:
        return self._root.read_many(requests)

    def close(self) -> None:
        if self._path == "/":
            self._root.close()


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
    from skelstore.packed_ops import repair_packed

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


def _repair_track(group: Group) -> int | None:
    """Close a growable track cut short, in place: its ``indptr`` always holds
    complete rows (writers append it after ``data`` and ``indices``), so keep those
    rows, drop entries written after them and set ``end_frame``."""
    if "end_frame" in group.attrs or "start_frame" not in group.attrs:
        end = group.attrs.get("end_frame")
        return end if isinstance(end, int) else None
    data, indices, indptr = (group.get(n) for n in ("data", "indices", "indptr"))
    if not (isinstance(data, Array) and isinstance(indices, Array) and isinstance(indptr, Array)):
        return None
    ends = indptr.read().astype(np.int64)
    rows = max(0, len(ends) - 1)
    nnz = int(ends[-1]) if len(ends) else 0
    if not len(ends):
        indptr.append(np.zeros(1, dtype=indptr.dtype))
    for arr in (data, indices):
        if len(arr) > nnz:
            arr.truncate(nnz)
    end = int(group.attrs["start_frame"]) + rows
    group.attrs["end_frame"] = end
    return end
