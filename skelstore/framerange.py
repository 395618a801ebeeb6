"""Frame ranges: the one parser of ``A:B`` text and the one check against a dump.

``skelstore cat --frames``, every ``skelstore export`` target's ``--frames`` and
the dense readers (:func:`skelstore.dense.read_poses`, so also
:func:`~skelstore.dense.to_xarray` and the export functions built on them) use
these, so a range means the same everywhere:

* ``A:B`` is half-open (frames ``A`` to ``B - 1``), ``A`` alone is one frame,
  ``A:`` runs to the end of the dump, ``:B`` from its first frame;
* frame numbers are the video's (absolute, not counted from a shot);
* a reversed or empty range (``10:5``, ``5:5``) is refused, and so is one that
  does not overlap the dump's frames (:func:`dump_frames`): both raise
  :class:`~skelstore.errors.FrameRangeError`;
* a range that overlaps the dump but runs past its end (or starts before its
  first frame) is accepted: its frames outside the dump read as frames without
  poses, as the frames of a gap between shots do.
"""

from __future__ import annotations

from skelstore.errors import FormatError, FrameRangeError
from skelstore.layout import TIMELINE, frame_attrs, shot_info, shot_names
from skelstore.packed import is_packed
from skelstore.storage import Group

__all__ = ["check_frames", "dump_frames", "format_frames", "parse_frames"]


def format_frames(frames: slice) -> str:
    """``slice(a, b)`` as ``"a:b"`` (an open end left empty)."""
    a = "" if frames.start is None else str(frames.start)
    b = "" if frames.stop is None else str(frames.stop)
    return f"{a}:{b}"


def parse_frames(text: str) -> slice:
    """Parse ``"A:B"``, ``"A:"``, ``":B"``, ``":"`` or ``"A"`` (frame ``A`` alone)
    into a ``slice`` (``None`` for an open end).

    Raises:
        FrameRangeError: not frame numbers, a negative number, or a reversed or
            empty range.
    """
    a, sep, b = text.strip().partition(":")
    try:
        start = int(a) if a.strip() else None
        stop = int(b) if b.strip() else None
    except ValueError:
        raise FrameRangeError(
            f"frames {text!r}: expected A:B (frame numbers, B excluded), A:, :B or A"
        ) from None
    if not sep:
        if start is None:
            raise FrameRangeError(f"frames {text!r}: expected A:B, A:, :B or A")
        stop = start + 1
    frames = slice(start, stop)
    if any(v is not None and v < 0 for v in (start, stop)):
        raise FrameRangeError(f"frames {format_frames(frames)}: frame numbers start at 0")
    _check_order(frames)
    return frames


def _check_order(frames: slice, where: str = "") -> None:
    if frames.step not in (None, 1):
        raise FrameRangeError(f"{where}frames {frames!r}: must be a contiguous slice (step 1)")
    a, b = frames.start, frames.stop
    if a is not None and b is not None and b <= a:
        what = "empty" if a == b else "reversed"
        raise FrameRangeError(
            f"{where}frames {format_frames(frames)}: the range is {what} "
            "(A:B reads frames A to B-1)"
        )


def _int_attr(root: Group, name: str) -> int | None:
    value = root.attrs.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def dump_frames(root: Group) -> tuple[int, int]:
    """The frames ``[first, end)`` the dump at ``root`` covers.

    ``trackshots``: from frame 0 (a gap before the first shot reads as empty
    frames) to the end of the last shot. ``unseg``: the timeline's
    ``start_frame`` to its ``end_frame``. Either way ``end`` is at least the
    root's ``num_frames``, the frames of the video.

    Raises:
        FormatError: ``root`` is not a skeleton dump.
    """
    fmt_type = root.attrs.get("fmt_type")
    timeline = root.get(TIMELINE)
    if not isinstance(timeline, Group) or fmt_type not in ("trackshots", "unseg"):
        raise FormatError(f"{root.source}: not a skeleton dump (fmt_type={fmt_type!r})")
    if fmt_type == "unseg":
        first, end = frame_attrs(timeline)
    elif is_packed(root):
        from skelstore.packed_read import PackedTimeline

        shots = PackedTimeline(root, timeline).shots
        first, end = 0, int(shots[-1, 1]) if len(shots) else 0
    else:
        names = shot_names(timeline)
        first, end = 0, shot_info(timeline, *names[-1]).end_frame if names else 0
    num_frames = _int_attr(root, "num_frames")
    if num_frames is not None:
        end = max(end, num_frames)
    return first, max(first, end)


def check_frames(
    root: Group, frames: slice | None, span: tuple[int, int] | None = None
) -> tuple[int, int]:
    """Resolve ``frames`` (``None``: the whole dump) against the dump at ``root``.

    Args:
        root: the dump.
        frames: a contiguous slice of absolute frame numbers; an open end means
            the dump's first frame or its end.
        span: the dump's ``(first, end)`` when the caller has it already
            (default: :func:`dump_frames`).

    Returns:
        ``(start, stop)``, half-open; it overlaps the dump.

    Raises:
        FrameRangeError: ``frames`` is reversed or empty, or does not overlap
            the dump's frames (the message names both).
        FormatError: ``root`` is not a skeleton dump.
    """
    first, end = span if span is not None else dump_frames(root)
    sel = frames if frames is not None else slice(None)
    _check_order(sel, f"{root.source}: ")
    start = first if sel.start is None else int(sel.start)
    stop = end if sel.stop is None else int(sel.stop)
    if start < 0 or stop <= start or start >= end or stop <= first:
        have = f"frames {first}:{end}" if end > first else "no frames"
        raise FrameRangeError(
            f"{root.source}: frames {format_frames(slice(sel.start, sel.stop))} are outside "
            f"the dump, which has {have}"
        )
    return start, stop
