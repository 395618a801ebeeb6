"""Writing pose tracks in skelshop's layout: how their arrays are created
(:class:`ArraySettings`), a whole track as nodes for ``write_many``
(:func:`track_specs`), and :class:`TrackWriter`, which builds a track frame by
frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from skelstore.compression import Encoding, Preset, get_preset
from skelstore.errors import InputError
from skelstore.inputs import as_keypoints, check_track_values
from skelstore.layout import (
    DATA_DTYPE,
    INDICES_DTYPE,
    INDPTR_DTYPE,
    Track,
    encode_rows,
    pose_chunks,
)
from skelstore.storage import Array, ArraySpec, Group, GroupSpec

__all__ = ["ArraySettings", "TrackWriter", "track_specs", "write_track"]


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
