"""What a dump holds, at a glance: the facts behind ``skelstore info``.

Everything here reads attributes, the tree and the small ``indptr`` arrays (and,
for sparse face data, ``frame_pers``); no keypoint data or embeddings are read.
A face dump without skeletons (what skelshop's ``face embedall`` writes) is
described too: its ``fmt_type`` is ``None`` and it has no shots or tracks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from skelstore.compression import preset_name
from skelstore.errors import FormatError
from skelstore.face import FACES, FaceInfo, describe_faces, has_faces
from skelstore.layout import FMT_TYPES, TIMELINE, list_shots, list_tracks
from skelstore.packed import PACKED, is_packed, layout_of
from skelstore.packed_read import PackedTimeline
from skelstore.storage import Array, Group

__all__ = [
    "DumpInfo",
    "describe",
    "detect_preset",
    "iter_tracks",
    "pose_arrays",
    "size_on_storage",
]


@dataclass
class DumpInfo:
    """Summary of one dump (``skelstore info``; ``--json`` prints :meth:`as_dict`)."""

    url: str
    engine: str
    fmt_type: str | None
    mode: str | None
    limbs: int | None
    num_frames: int | None
    shots: int
    pose_tracks: int
    poses_stored: int
    keypoints_stored: int
    compression: str | None
    bytes_stored: int | None
    format_info: dict[str, Any] = field(default_factory=dict)
    extra_groups: list[str] = field(default_factory=list)
    faces: FaceInfo | None = None
    #: ``"skelshop"`` or ``"packed"`` (see docs/layout.md); ``None`` for a face dump.
    layout: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def iter_tracks(root: Group) -> list[tuple[str, Group]]:
    """``(path, pose group)`` of every pose track, in timeline order (none for a
    face dump without skeletons, nor for a packed dump, which has no pose groups:
    see :func:`skelstore.packed_ops.dump_tracks`).

    Raises:
        FormatError: ``root`` is neither a skeleton dump nor a face dump.
    """
    fmt_type = root.attrs.get("fmt_type")
    if fmt_type is None and TIMELINE not in root and has_faces(root):
        return []
    if fmt_type not in FMT_TYPES:
        raise FormatError(f"{root.source}: not a skeleton dump (fmt_type={fmt_type!r})")
    timeline = root.get(TIMELINE)
    if not isinstance(timeline, Group):
        raise FormatError(f"{root.source}: no /timeline group")
    if is_packed(root):
        PackedTimeline(root, timeline)  # raises FormatError for a damaged one
        return []
    parents = [timeline] if fmt_type == "unseg" else [s.group for s in list_shots(timeline)]
    return [(t.group.path, t.group) for p in parents for t in list_tracks(p)]


def pose_arrays(group: Group) -> dict[str, Array]:
    """The ``data``/``indices``/``indptr`` arrays of a pose group (those present)."""
    out = {}
    for name in ("data", "indices", "indptr"):
        node = group.get(name)
        if isinstance(node, Array):
            out[name] = node
    return out


def detect_preset(tracks: list[tuple[str, Group]]) -> str | None:
    """The compression preset of a dump, judged on its largest track.

    Small tracks (< 24 keypoints) drop Blosc by design, so the largest one is the
    one that tells. ``None`` when there are no tracks or the filters are foreign.
    """
    best: tuple[int, Group] | None = None
    for _, grp in tracks:
        arrays = pose_arrays(grp)
        if "data" in arrays and (best is None or len(arrays["data"]) > best[0]):
            best = (len(arrays["data"]), grp)
    if best is None:
        return None
    arrays = pose_arrays(best[1])
    if "indices" not in arrays:
        return None
    return preset_name(arrays["data"].encoding, arrays["indices"].encoding)


def size_on_storage(url: str, storage_options: dict[str, Any] | None = None) -> int | None:
    """Bytes the file, object or directory tree at ``url`` takes (``None`` if unknown)."""
    from skelstore.urls import to_fs

    try:
        fs, path = to_fs(url, storage_options)
        if fs.isdir(path):
            return int(fs.du(path, total=True))
        return int(fs.size(path))
    except Exception:  # size is informative only: any failure means "unknown"
        return None


def _bytes_stored(root: Group) -> int | None:
    """Sum of the stored sizes of every array (fallback when the file size is unknown)."""
    total = 0

    def walk(g: Group, depth: int = 0) -> bool:
        nonlocal total
        if depth > 32:  # deeper than any dump: a link cycle (HDF5 hard links)
            return False
        for _, child in g.items():
            if isinstance(child, Group):
                if not walk(child, depth + 1):
                    return False
            else:
                n = child.nbytes_stored
                if n is None:
                    return False
                total += n
        return True

    return total if walk(root) else None


def describe(
    root: Group, *, with_size: bool = True, storage_options: dict[str, Any] | None = None
) -> DumpInfo:
    """Summarise the dump at ``root``; ``bytes_stored`` is the size on storage
    (file, object or directory), or the arrays' stored sizes when that is unknown.

    Raises:
        FormatError: ``root`` is neither a skeleton dump nor a face dump.
    """
    attrs = dict(root.attrs)
    tracks = iter_tracks(root)
    faces = describe_faces(root)
    fmt_type = attrs.get("fmt_type")
    layout = None if fmt_type is None and TIMELINE not in root else layout_of(root)
    if layout == PACKED:
        from skelstore.packed_check import describe_packed

        packed = describe_packed(root, root[TIMELINE])  # type: ignore[arg-type]
        shots, n_tracks = packed.shots, packed.pose_tracks
        poses, kps, compression = packed.poses_stored, packed.keypoints_stored, packed.compression
    else:
        indptr_arrays = [a["indptr"] for a in (pose_arrays(g) for _, g in tracks) if "indptr" in a]
        indptrs = root.read_many(indptr_arrays)
        poses = sum(int(np.count_nonzero(np.diff(ip.astype(np.int64)))) for ip in indptrs)
        kps = sum(int(ip[-1]) for ip in indptrs if len(ip))
        shots = len(root[TIMELINE]) if fmt_type == "trackshots" else int(fmt_type == "unseg")
        n_tracks, compression = len(tracks), detect_preset(tracks)
    num_frames = attrs.get("num_frames")
    limbs = attrs.get("limbs")
    return DumpInfo(
        url=root.source,
        engine=root.engine_name,
        fmt_type=fmt_type,
        mode=attrs.get("mode"),
        limbs=int(limbs) if isinstance(limbs, int) else None,
        num_frames=int(num_frames) if isinstance(num_frames, int) else None,
        shots=shots,
        pose_tracks=n_tracks,
        poses_stored=poses,
        keypoints_stored=kps,
        compression=compression,
        bytes_stored=(size_on_storage(root.source, storage_options) or _bytes_stored(root))
        if with_size
        else None,
        format_info=root.format_info,
        extra_groups=[k for k in root if k not in (TIMELINE, FACES)],
        faces=faces,
        layout=layout,
    )
