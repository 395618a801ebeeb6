"""Dimension names of a dump's arrays, for storage that records them (Zarr's
``dimension_names``, which xarray reads): by array name in a pose group, the
face group and a packed timeline."""

from __future__ import annotations

from skelstore.layout import TIMELINE

__all__ = ["FACE_DIMENSIONS", "PACKED_DIMENSIONS", "POSE_DIMENSIONS", "dimension_names"]


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
