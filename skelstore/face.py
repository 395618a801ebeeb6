"""Face embeddings: skelshop's face dump layout and API (``skelshop.face.io``), on any storage.

A face dump is a ``/faces`` group, in a file of its own (skelshop's ``face
embedall`` writes one, with the root attributes ``video`` and ``num_frames``) or
beside a skeleton dump's ``/timeline``. Two layouts:

* **dense** (one entry per frame): ``indices`` uint32 ``(frames,)`` holds the
  running total of faces up to and including each frame, so frame ``i``'s faces are
  rows ``indices[i - 1]:indices[i]`` (from 0 for frame 0) of the arrays below;
* **sparse** (one entry per face): ``frame_pers`` uint32 ``(n, 2)`` holds the
  ``(frame, person)`` of each row, in increasing order.

and, row-aligned with the faces:

* ``embed`` float32 ``(n, 128)``: the embeddings (always);
* ``fod_bbox`` float32 ``(n, 4)``: the face detector's box, x1, y1, x2, y2 (optional);
* ``chip_bbox`` float32 ``(n, 5)``: the chip's box and its fifth value, flattened
  from the ``(box, value)`` pairs the writer takes (optional);
* ``chip`` uint8 ``(n, 150, 150, 3)``: the face chips (optional).

Every array is growable along its first axis and chunked by whole rows (skelshop
left chunking to h5py, which splits rows: ``embed`` in ``(128, 32)`` pieces).

Same names, arguments and behaviour as skelshop, with these deliberate differences:

* writers buffer rows and append them in blocks of up to :data:`WRITE_BLOCK_BYTES`
  (skelshop resized every array once per frame). The buffer is written when the
  root that :func:`skelstore.open` returned is closed, or by :meth:`FaceWriter.flush`
  (:func:`write_faces` flushes at its end); on a root skelstore cannot see closed
  (an ``h5py.File`` or ``zarr.Group`` of your own) every frame is written at once;
* readers read rows in blocks of up to :data:`READ_BLOCK_BYTES` (one bulk request
  per block, concurrent on Zarr) instead of one read per array per frame;
* :class:`SparseFaceReaderAdapter` finds its starting frame by binary search, and
  after the last stored face yields empty frames forever (skelshop's raised
  ``RuntimeError`` there);
* :class:`SparseFaceReader` yields ``(frame, person)`` as Python ints;
* bad input raises :class:`~skelstore.errors.InputError` (a ``ValueError``),
  including a frame with faces whose configured boxes or chips are missing
  (skelshop silently wrote misaligned rows), and sparse targets out of
  ``(frame, person)`` order (which skelshop's readers cannot search);
  a missing face raises :class:`~skelstore.errors.NoSuchFaceError` (an
  ``IndexError``); damaged files raise :class:`~skelstore.errors.FormatError`.

This module talks to storage only through :mod:`skelstore.storage`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from itertools import count, pairwise
from typing import Any, cast

import numpy as np

from skelstore.engines import as_group
from skelstore.errors import FormatError, InputError, NoSuchFaceError
from skelstore.storage import Array, Group

__all__ = [
    "CHIP_SHAPE",
    "EMBED_SIZE",
    "FACES",
    "FaceInfo",
    "FaceReader",
    "FaceReaderAdapter",
    "FaceWriter",
    "SparseFaceReader",
    "SparseFaceReaderAdapter",
    "create_face_grp",
    "describe_faces",
    "face_chunks",
    "face_problems",
    "get_dense_face_reader",
    "get_sparse_face_reader",
    "has_faces",
    "write_faces",
]

#: Name of the face group under the root.
FACES = "faces"
#: Length of one embedding (dlib's face descriptor), as in skelshop.
EMBED_SIZE = 128
#: Shape of one face chip.
CHIP_SHAPE = (150, 150, 3)

#: Array name -> (trailing shape, dtype); ``embed``'s width is the writer's ``embed_size``.
FACE_ARRAYS: dict[str, tuple[tuple[int, ...], np.dtype]] = {
    "frame_pers": ((2,), np.dtype(np.uint32)),
    "indices": ((), np.dtype(np.uint32)),
    "embed": ((EMBED_SIZE,), np.dtype(np.float32)),
    "fod_bbox": ((4,), np.dtype(np.float32)),
    "chip_bbox": ((5,), np.dtype(np.float32)),
    "chip": (CHIP_SHAPE, np.dtype(np.uint8)),
}
#: The optional arrays, in the order the writer's flags name them.
OPTIONAL_ARRAYS = ("fod_bbox", "chip_bbox", "chip")

#: Uncompressed bytes of one chunk, unless the engine asks for more.
CHUNK_BYTES = 64 * 2**10
#: Writers append when this many bytes are buffered (or :data:`WRITE_BLOCK_FRAMES` frames).
WRITE_BLOCK_BYTES = 8 * 2**20
#: Writers append at least every this many frames.
WRITE_BLOCK_FRAMES = 16384
#: Readers read rows in blocks of about this many bytes.
READ_BLOCK_BYTES = 16 * 2**20
#: Dense readers read ``indices`` this many frames at a time.
READ_BLOCK_FRAMES = 16384


def face_chunks(
    name: str, trailing: tuple[int, ...], dtype: Any, min_chunk_bytes: int | None = None
) -> tuple[int, ...]:
    """Chunk shape of the face array ``name``: whole rows, about :data:`CHUNK_BYTES`
    (or the engine's ``min_chunk_bytes`` if larger) per chunk, at least one row."""
    row = np.dtype(dtype).itemsize * int(np.prod(trailing, dtype=np.int64))
    target = max(CHUNK_BYTES, min_chunk_bytes or 0)
    return (max(1, target // max(1, row)), *trailing)


def _faces_group(root: Group) -> Group:
    node = root.get(FACES)
    if not isinstance(node, Group):
        what = "no /faces group" if node is None else "/faces is not a group"
        raise FormatError(f"{root.source}: not a face dump ({what})")
    return node


def has_faces(h5in: Any) -> bool:
    """True if ``h5in`` (a root, or an h5py/zarr object) has a ``/faces`` group."""
    return isinstance(as_group(h5in).get(FACES), Group)


def create_face_grp(
    h5f: Any,
    path: str = "/" + FACES,
    sparse: bool = False,
    add_fod_bbox: bool = False,
    add_chip_bbox: bool = False,
    add_chip: bool = False,
    *,
    embed_size: int = EMBED_SIZE,
) -> Group:
    """Create the (empty, growable) face group at ``path`` and return it.

    Raises:
        FormatError: something already exists at ``path``.
        ReadOnlyError: the file is open read-only.
    """
    root = as_group(h5f)
    parent: Group = root
    parts = [p for p in path.split("/") if p]
    for part in parts[:-1]:
        parent = parent.require_group(part)
    group = parent.create_group(parts[-1])
    names = ["frame_pers" if sparse else "indices", "embed"]
    names += [
        n
        for n, on in zip(OPTIONAL_ARRAYS, (add_fod_bbox, add_chip_bbox, add_chip), strict=True)
        if on
    ]
    for name in names:
        trailing, dtype = FACE_ARRAYS[name]
        if name == "embed":
            trailing = (int(embed_size),)
        group.create_array(
            name,
            shape=(0, *trailing),
            dtype=dtype,
            chunks=face_chunks(name, trailing, dtype, group.min_chunk_bytes),
            growable=True,
        )
    return group


def _rows(values: Any, name: str, trailing: tuple[int, ...], dtype: np.dtype, n: int) -> np.ndarray:
    """``values`` as an ``(n, *trailing)`` array of ``dtype``, or InputError."""
    try:
        arr = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InputError(f"face writer: {name}: not an array of numbers ({exc})") from None
    if n == 0 and arr.size == 0:
        return np.zeros((0, *trailing), dtype=dtype)
    if arr.shape != (n, *trailing):
        raise InputError(f"face writer: {name}: expected shape {(n, *trailing)}, got {arr.shape}")
    return arr


class FaceWriter:
    """Writes face embeddings, frame by frame, into ``/faces`` (skelshop's ``FaceWriter``).

    Args:
        h5out: the root to write into (skelstore group, h5py or zarr object).
        sparse: write the sparse layout (``frame_pers``) instead of the dense one.
        write_fod_bbox: also store face detector boxes (``fod_bbox``).
        write_chip_bbox: also store chip boxes (``chip_bbox``).
        write_chip: also store the chips (``chip``).
        embed_size: length of an embedding (skelshop's is fixed at 128).

    Raises:
        FormatError: the root already has ``/faces``.
    """

    def __init__(
        self,
        h5out: Any,
        sparse: bool = False,
        write_fod_bbox: bool = False,
        write_chip_bbox: bool = False,
        write_chip: bool = False,
        *,
        embed_size: int = EMBED_SIZE,
    ) -> None:
        self.root = as_group(h5out)
        self.face_grp = create_face_grp(
            self.root,
            "/" + FACES,
            sparse=sparse,
            add_fod_bbox=write_fod_bbox,
            add_chip_bbox=write_chip_bbox,
            add_chip=write_chip,
            embed_size=embed_size,
        )
        self.sparse = sparse
        self.write_fod_bbox = write_fod_bbox
        self.write_chip_bbox = write_chip_bbox
        self.write_chip = write_chip
        self.embed_size = int(embed_size)
        #: Faces written so far (what skelshop's writer counted too).
        self.cur_idx = 0
        self._arrays: dict[str, Array] = {
            name: cast(Array, arr) for name, arr in self.face_grp.arrays()
        }
        self._pending: dict[str, list[np.ndarray]] = {name: [] for name in self._arrays}
        self._pending_bytes = 0
        self._pending_frames = 0
        self._last_target: tuple[int, int] | None = None
        # Buffer only where the close of the file is seen; else write every frame at once.
        self._buffered = self.root.add_close_hook(self._on_close)

    def write_frame_faces(
        self,
        faces: Any,
        targets: Any = None,
        fod_bboxes: Any = None,
        chip_bboxes: Any = None,
        face_chips: Any = None,
    ) -> None:
        """Add the faces of the next frame (dense) or of the frames in ``targets`` (sparse).

        Args:
            faces: ``(n, embed_size)`` embeddings (any sequence of sequences).
            targets: sparse only, required there: ``(n, 2)`` ``(frame, person)`` of
                each face, continuing the increasing ``(frame, person)`` order.
            fod_bboxes: ``(n, 4)`` boxes, stored if the writer was made with
                ``write_fod_bbox``.
            chip_bboxes: ``n`` pairs ``(box of 4, value)`` (or an ``(n, 5)`` array),
                stored if the writer was made with ``write_chip_bbox``.
            face_chips: ``(n, 150, 150, 3)`` uint8 chips, stored if the writer was
                made with ``write_chip``.

        Raises:
            InputError: a shape is wrong, ``targets`` are missing or out of order, or
                a frame with faces lacks the boxes or chips the writer stores.
        """
        n = len(faces)
        rows: dict[str, np.ndarray] = {
            "embed": _rows(faces, "faces", (self.embed_size,), FACE_ARRAYS["embed"][1], n)
        }
        if self.sparse:
            if targets is None:
                raise InputError("face writer: targets must be passed when sparse=True")
            if len(targets) != n:
                raise InputError("face writer: targets must be the same length as faces")
            rows["frame_pers"] = self._check_targets(targets, n)
        extras = {
            "fod_bbox": (self.write_fod_bbox, fod_bboxes, "fod_bboxes"),
            "chip_bbox": (self.write_chip_bbox, chip_bboxes, "chip_bboxes"),
            "chip": (self.write_chip, face_chips, "face_chips"),
        }
        for name, (on, values, arg) in extras.items():
            if not on or n == 0:
                continue
            if values is None:
                raise InputError(
                    f"face writer: {arg} missing for a frame with {n} face(s); the writer "
                    f"stores {name} (rows would no longer line up with embed)"
                )
            if name == "chip_bbox" and not isinstance(values, np.ndarray):
                values = [self._flat_chip_bbox(v) for v in values]
            trailing, dtype = FACE_ARRAYS[name]
            rows[name] = _rows(values, arg, trailing, dtype, n)
        self.cur_idx += n
        if not self.sparse:
            rows["indices"] = np.array([self.cur_idx], dtype=FACE_ARRAYS["indices"][1])
        for name, arr in rows.items():
            if len(arr):
                self._pending[name].append(arr)
                self._pending_bytes += arr.nbytes
        self._pending_frames += 1
        if (
            not self._buffered
            or self._pending_bytes >= WRITE_BLOCK_BYTES
            or self._pending_frames >= WRITE_BLOCK_FRAMES
        ):
            self.flush()

    @staticmethod
    def _flat_chip_bbox(value: Any) -> list[float]:
        if len(value) == 2 and np.size(value[0]) == 4:
            return [*np.asarray(value[0], dtype=np.float64).ravel(), float(value[1])]
        return list(np.asarray(value, dtype=np.float64).ravel())

    def _check_targets(self, targets: Any, n: int) -> np.ndarray:
        arr = np.asarray(targets)
        if n == 0:
            return np.zeros((0, 2), dtype=np.uint32)
        if arr.shape != (n, 2) or arr.dtype.kind not in "iu":
            raise InputError(
                f"face writer: targets must be {n} (frame, person) integer pairs, "
                f"got shape {arr.shape} dtype {arr.dtype}"
            )
        if int(arr.min()) < 0 or int(arr.max()) > np.iinfo(np.uint32).max:
            raise InputError("face writer: frame and person numbers must fit uint32")
        key = arr.astype(np.int64)
        pairs = [(int(f), int(p)) for f, p in key]
        if self._last_target is not None:
            pairs.insert(0, self._last_target)
        for before, after in pairwise(pairs):
            if after < before:
                raise InputError(
                    "face writer: sparse targets must come in increasing (frame, person) "
                    f"order; got {after} after {before}"
                )
        self._last_target = pairs[-1]
        return arr.astype(np.uint32)

    def flush(self) -> None:
        """Append every buffered row to storage (the row-aligned arrays first, then
        ``indices``/``frame_pers``, so a crash leaves only whole frames)."""
        if not self._pending_frames:
            return
        order = [n for n in self._arrays if n not in ("indices", "frame_pers")]
        order += [n for n in ("indices", "frame_pers") if n in self._arrays]
        for name in order:
            pending = self._pending[name]
            if pending:
                self._arrays[name].append(
                    pending[0] if len(pending) == 1 else np.concatenate(pending)
                )
                pending.clear()
        self._pending_bytes = 0
        self._pending_frames = 0

    def close(self) -> None:
        """Same as :meth:`flush`: the writer holds no other resource."""
        self.flush()

    def _on_close(self, ok: bool) -> None:
        """Flush when the root closes; after an error in the ``with`` block, keep the
        whole frames buffered so far but let a second failure not hide the first."""
        if ok:
            self.flush()
            return
        with contextlib.suppress(Exception):  # the with block's exception is the one to report
            self.flush()


def write_faces(face_iter: Iterable[Mapping[str, Any]], face_writer: FaceWriter) -> None:
    """Write every frame of ``face_iter`` with ``face_writer``, then flush it.

    Each frame is a mapping with ``embeddings`` and, when the writer stores them,
    ``fod_bboxes``, ``chip_bboxes`` and ``chips`` (skelshop's face pipelines' output).
    Dense writers only: the frames carry no ``(frame, person)`` targets.
    """
    for frame_data in face_iter:
        fod_bboxes = None
        chip_bboxes = None
        face_chips = None
        if face_writer.write_fod_bbox and "fod_bboxes" in frame_data:
            fod_bboxes = frame_data["fod_bboxes"]
        if face_writer.write_chip_bbox and "chip_bboxes" in frame_data:
            chip_bboxes = frame_data["chip_bboxes"]
        if face_writer.write_chip:
            face_chips = frame_data.get("chips")
        face_writer.write_frame_faces(
            frame_data["embeddings"],
            fod_bboxes=fod_bboxes,
            chip_bboxes=chip_bboxes,
            face_chips=face_chips,
        )
    face_writer.flush()


# ---------------------------------------------------------------- reading


class _RowWindow:
    """Rows of several row-aligned arrays, read in blocks of about ``budget`` bytes
    with one bulk call per block (forward reads mostly hit the loaded block)."""

    def __init__(self, group: Group, arrays: dict[str, Array], budget: int = READ_BLOCK_BYTES):
        self.group = group
        self.arrays = arrays
        self.length = min((len(a) for a in arrays.values()), default=0)
        row_bytes = sum(
            a.dtype.itemsize * int(np.prod(a.shape[1:], dtype=np.int64)) for a in arrays.values()
        )
        self.block_rows = max(1, budget // max(1, row_bytes))
        self.w0 = self.w1 = 0
        self.loaded: dict[str, np.ndarray] = {}

    def get(self, a: int, b: int) -> dict[str, np.ndarray]:
        """Rows ``a:b`` of every array (views into the loaded block)."""
        if b > self.length:
            raise FormatError(
                f"{self.group.where()}: rows {a}:{b} asked for, arrays hold {self.length}"
            )
        if not (self.w0 <= a and b <= self.w1) or not self.loaded:
            w1 = min(self.length, max(b, a + self.block_rows))
            names = list(self.arrays)
            data = self.group.read_many([(self.arrays[k], slice(a, w1)) for k in names])
            self.loaded = dict(zip(names, data, strict=True))
            self.w0, self.w1 = a, w1
        return {k: v[a - self.w0 : b - self.w0] for k, v in self.loaded.items()}


def _data_arrays(face_grp: Group, index_name: str) -> dict[str, Array]:
    """The face group's arrays other than its index, checked row-aligned."""
    arrays = {k: v for k, v in face_grp.arrays() if k != index_name}
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise FormatError(f"{face_grp.where()}: row-aligned arrays differ in length: {lengths}")
    return arrays


class FaceReader:
    """Reads a dense face dump: one dict of arrays per frame (skelshop's ``FaceReader``).

    Iterating yields, for every frame from 0, ``{name: rows}`` for every array of
    ``/faces`` but ``indices`` (``embed``, and ``fod_bbox``, ``chip_bbox``, ``chip``
    where stored), each with one row per face of the frame (zero rows if none).

    Raises:
        FormatError: no ``/faces`` group with an ``indices`` array.
    """

    def __init__(self, h5in: Any) -> None:
        root = as_group(h5in)
        self.face_grp = _faces_group(root)
        node = self.face_grp.get("indices")
        if not isinstance(node, Array) or len(node.shape) != 1:
            raise FormatError(f"{self.face_grp.where()}: dense face dump without 1-d 'indices'")
        self.indices = node
        self._arrays = _data_arrays(self.face_grp, "indices")
        #: Names of the arrays yielded per frame.
        self.keys = list(self._arrays)

    def __len__(self) -> int:
        """Number of frames."""
        return len(self.indices)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self.iter_from(0)

    def iter_from(self, start_frame: int) -> Iterator[dict[str, np.ndarray]]:
        """The frames from ``start_frame`` to the last one."""
        window = _RowWindow(self.face_grp, self._arrays)
        n = len(self.indices)
        where = self.indices.where()
        for f0 in range(max(0, start_frame), n, READ_BLOCK_FRAMES):
            f1 = min(n, f0 + READ_BLOCK_FRAMES)
            ends = self.indices[f0:f1].astype(np.int64)
            first = int(self.indices[f0 - 1]) if f0 else 0
            bounds = np.concatenate([[first], ends])
            if (np.diff(bounds) < 0).any():
                raise FormatError(f"{where}: running totals decrease (frames {f0}:{f1})")
            for i in range(f1 - f0):
                yield window.get(int(bounds[i]), int(bounds[i + 1]))


class SparseFaceReader:
    """Reads a sparse face dump (skelshop's ``SparseFaceReader``).

    Iterating yields ``((frame, person), {name: row})`` per stored face;
    ``reader[frame, person]`` gives ``{name: rows}`` of that pair.

    Raises:
        FormatError: no ``/faces`` group with an ``(n, 2)`` ``frame_pers`` array.
    """

    def __init__(self, h5in: Any) -> None:
        root = as_group(h5in)
        self.face_grp = _faces_group(root)
        node = self.face_grp.get("frame_pers")
        if not isinstance(node, Array) or node.shape[1:] != (2,):
            raise FormatError(
                f"{self.face_grp.where()}: sparse face dump without (n, 2) 'frame_pers'"
            )
        self.frame_pers = node
        self._arrays = _data_arrays(self.face_grp, "frame_pers")
        #: Names of the arrays yielded per face.
        self.keys = list(self._arrays)
        self._keys64: np.ndarray | None = None
        self._sorted = True

    def _index(self) -> np.ndarray:
        """``frame << 32 | person`` of every row (``frame_pers`` read once, whole)."""
        if self._keys64 is None:
            fp = self.frame_pers.read().astype(np.uint64)
            self._keys64 = (fp[:, 0] << np.uint64(32)) | fp[:, 1]
            self._sorted = bool((np.diff(self._keys64.astype(np.int64)) >= 0).all())
        return self._keys64

    def _frames(self) -> np.ndarray:
        return (self._index() >> np.uint64(32)).astype(np.int64)

    def __getitem__(self, tpl: tuple[int, int]) -> dict[str, np.ndarray]:
        """Rows of the ``(frame, person)`` pair.

        Raises:
            InputError: not indexed by a pair.
            NoSuchFaceError: no face stored for the pair.
        """
        if not isinstance(tpl, tuple) or len(tpl) != 2:
            raise InputError("SparseFaceReader can only be indexed by (frame_num, pers_id) pair")
        keys = self._index()
        frame, pers = (int(v) for v in tpl)
        if not (0 <= frame < 2**32 and 0 <= pers < 2**32):
            raise NoSuchFaceError(f"{self.face_grp.where()}: no face for {tpl}")
        key = np.uint64((frame << 32) | pers)
        if self._sorted:
            a = int(np.searchsorted(keys, key, side="left"))
            b = int(np.searchsorted(keys, key, side="right"))
        else:
            hits = np.nonzero(keys == key)[0]
            a, b = (int(hits[0]), int(hits[-1]) + 1) if len(hits) else (0, 0)
            if b - a != len(hits):
                raise FormatError(f"{self.frame_pers.where()}: rows of {tpl} are not together")
        if a == b:
            raise NoSuchFaceError(f"{self.face_grp.where()}: no face for {tpl}")
        names = list(self._arrays)
        data = self.face_grp.read_many([(self._arrays[k], slice(a, b)) for k in names])
        return dict(zip(names, data, strict=True))

    def __len__(self) -> int:
        """Number of stored faces."""
        return len(self.frame_pers)

    def __iter__(self) -> Iterator[tuple[tuple[int, int], dict[str, np.ndarray]]]:
        return self.iter_entries(0)

    def iter_entries(
        self, start_idx: int = 0
    ) -> Iterator[tuple[tuple[int, int], dict[str, np.ndarray]]]:
        """``((frame, person), {name: row})`` of every stored face from row ``start_idx``."""
        window = _RowWindow(self.face_grp, self._arrays)
        n = len(self.frame_pers)
        if self._arrays and window.length < n:
            raise FormatError(
                f"{self.face_grp.where()}: {n} frame_pers rows but {window.length} face rows"
            )
        for r0 in range(start_idx, n, window.block_rows):
            r1 = min(n, r0 + window.block_rows)
            fp = self.frame_pers[r0:r1].astype(np.int64).tolist()
            rows = window.get(r0, r1) if self._arrays else {}
            for i, (frame, pers) in enumerate(fp):
                yield (frame, pers), {k: v[i] for k, v in rows.items()}

    def first_index(self, frame: int) -> int:
        """The first row whose frame is ``>= frame`` (binary search).

        Raises:
            FormatError: ``frame_pers`` is not in frame order.
        """
        frames = self._frames()
        if not self._sorted and (np.diff(frames) < 0).any():
            raise FormatError(f"{self.frame_pers.where()}: rows are not in frame order")
        return int(np.searchsorted(frames, frame, side="left"))

    def entry_at(self, idx: int) -> tuple[tuple[int, int], dict[str, np.ndarray]]:
        """``((frame, person), {name: row})`` of row ``idx``."""
        frame, pers = (int(v) for v in self.frame_pers[idx])
        names = list(self._arrays)
        data = self.face_grp.read_many([(self._arrays[k], idx) for k in names])
        return (frame, pers), dict(zip(names, data, strict=True))

    def embedding_at(self, idx: int) -> np.ndarray:
        """The embedding of row ``idx``."""
        return self._arrays["embed"][idx]


class SparseFaceReaderAdapter:
    """A dense view of a sparse face dump (skelshop's ``SparseFaceReaderAdapter``).

    Iterating yields, for every frame from the first asked for, ``{name: list}``
    where ``list[person]`` is that person's row (``None`` for persons without a
    face below the highest one); frames without faces give ``{}``. The iterator is
    infinite: after the last stored face every frame is empty.
    """

    sparse_reader: SparseFaceReader

    def __init__(self, sparse_reader: SparseFaceReader) -> None:
        self.sparse_reader = sparse_reader

    def __iter__(self) -> Iterator[dict[str, list[Any]]]:
        return self.iter_from(0)

    def iter_from(self, start_frame: int) -> Iterator[dict[str, list[Any]]]:
        """Frames from ``start_frame`` on; the first stored face of that frame or
        later is found by binary search over ``frame_pers``."""
        entries = self.sparse_reader.iter_entries(self.sparse_reader.first_index(start_frame))
        pending = next(entries, None)
        for frame_num in count(start_frame):
            result: dict[str, list[Any]] = {}
            while pending is not None and pending[0][0] == frame_num:
                (_, pers_id), face = pending
                for key, arr in face.items():
                    out = result.setdefault(key, [])
                    while len(out) < pers_id:
                        out.append(None)
                    out.append(arr)
                pending = next(entries, None)
            yield result


class FaceReaderAdapter:
    """A sparse view of a dense face dump (skelshop's ``FaceReaderAdapter``): yields
    ``((frame, n), {name: row})`` for the ``n``-th face of every frame."""

    dense_reader: FaceReader

    def __init__(self, dense_reader: FaceReader) -> None:
        self.dense_reader = dense_reader

    def __iter__(self) -> Iterator[tuple[tuple[int, int], dict[str, Any]]]:
        for frame_num, frame_data in enumerate(self.dense_reader):
            keys = list(frame_data.keys())
            for pers_num, pers_vals in enumerate(zip(*frame_data.values(), strict=True)):
                yield (frame_num, pers_num), dict(zip(keys, pers_vals, strict=True))


def _is_sparse(root: Group) -> bool:
    return isinstance(_faces_group(root).get("frame_pers"), Array)


def get_sparse_face_reader(h5in: Any) -> SparseFaceReader | FaceReaderAdapter:
    """A reader yielding ``((frame, person), {name: row})`` whatever the layout."""
    root = as_group(h5in)
    if _is_sparse(root):
        return SparseFaceReader(root)
    return FaceReaderAdapter(FaceReader(root))


def get_dense_face_reader(h5in: Any) -> FaceReader | SparseFaceReaderAdapter:
    """A reader yielding one dict per frame whatever the layout (infinite for sparse
    files: see :class:`SparseFaceReaderAdapter`)."""
    root = as_group(h5in)
    if _is_sparse(root):
        return SparseFaceReaderAdapter(SparseFaceReader(root))
    return FaceReader(root)


# ---------------------------------------------------------------- summary


@dataclass
class FaceInfo:
    """What a ``/faces`` group holds (``skelstore info``)."""

    layout: str
    faces: int
    frames: int
    embed_size: int | None
    persons: int | None = None
    arrays: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_faces(h5in: Any) -> FaceInfo | None:
    """Summarise ``/faces``, or ``None`` if there is none.

    ``frames`` is the number of frames written for a dense dump and the number of
    frames with a face for a sparse one; ``persons`` (sparse only) the number of
    distinct person numbers. Reads only ``frame_pers`` (sparse); no embeddings.

    Raises:
        FormatError: ``/faces`` exists but is neither layout.
    """
    root = as_group(h5in)
    if not has_faces(root):
        return None
    grp = _faces_group(root)
    embed = grp.get("embed")
    embed_size = int(embed.shape[1]) if isinstance(embed, Array) and len(embed.shape) == 2 else None
    optional = [n for n in OPTIONAL_ARRAYS if isinstance(grp.get(n), Array)]
    if _is_sparse(root):
        sparse = SparseFaceReader(root)
        fp = sparse.frame_pers.read().astype(np.int64)
        return FaceInfo(
            layout="sparse",
            faces=len(fp),
            frames=len(np.unique(fp[:, 0])),
            embed_size=embed_size,
            persons=len(np.unique(fp[:, 1])),
            arrays=optional,
        )
    dense = FaceReader(root)
    n = len(dense.indices)
    return FaceInfo(
        layout="dense",
        faces=int(dense.indices[n - 1]) if n else 0,
        frames=n,
        embed_size=embed_size,
        arrays=optional,
    )


def face_problems(h5in: Any, *, deep: bool = False) -> list[str]:
    """Every structural problem of ``/faces`` (``skelstore validate``), as lines
    naming the array: a missing or doubled index, dtypes and row shapes other than
    skelshop's, arrays of different lengths, running totals that decrease or do not
    end at the number of rows, ``frame_pers`` out of ``(frame, person)`` order;
    ``deep`` also reads ``embed`` for non-finite values. ``[]`` if all is well or
    there is no ``/faces``."""
    root = as_group(h5in)
    node = root.get(FACES)
    if node is None:
        return []
    if not isinstance(node, Group):
        return [f"/{FACES}: expected a group"]
    where = node.path
    arrays = dict(node.arrays())
    problems: list[str] = []
    index = [n for n in ("indices", "frame_pers") if n in arrays]
    if len(index) != 1:
        what = "neither" if not index else "both"
        return [f"{where}: {what} of 'indices' (dense) and 'frame_pers' (sparse)"]
    if "embed" not in arrays:
        problems.append(f"{where}: no 'embed' array")
    for name, arr in arrays.items():
        if name not in FACE_ARRAYS:
            continue
        trailing, dtype = FACE_ARRAYS[name]
        if name == "embed":
            trailing = arr.shape[1:2] if len(arr.shape) == 2 else trailing
        if arr.dtype != dtype or arr.shape[1:] != trailing:
            problems.append(
                f"{arr.path}: {arr.dtype} {arr.shape}, expected {dtype} (n, "
                f"{', '.join(map(str, trailing))})".replace("(n, )", "(n,)")
            )
    rows = {n: len(a) for n, a in arrays.items() if n not in ("indices",)}
    if len(set(rows.values())) > 1:
        problems.append(f"{where}: row-aligned arrays differ in length: {rows}")
    if problems:
        return problems
    n_rows = len(arrays["embed"])
    if index == ["indices"]:
        totals = arrays["indices"].read().astype(np.int64)
        if (np.diff(totals) < 0).any():
            first = int(np.argmax(np.diff(totals) < 0)) + 1
            problems.append(f"{where}/indices: running total decreases at frame {first}")
        if len(totals) and int(totals[-1]) != n_rows:
            problems.append(f"{where}/indices: last total {int(totals[-1])} != {n_rows} rows")
        if len(totals) == 0 and n_rows:
            problems.append(f"{where}/indices: empty, but {n_rows} rows")
    else:
        fp = arrays["frame_pers"].read().astype(np.int64)
        key = fp[:, 0] * 2**32 + fp[:, 1]
        if (np.diff(key) < 0).any():
            first = int(np.argmax(np.diff(key) < 0)) + 1
            problems.append(f"{where}/frame_pers: row {first} out of (frame, person) order")
    if deep and "embed" in arrays:
        embed = arrays["embed"]
        for a in range(0, len(embed), 8192):
            if not np.isfinite(embed[a : a + 8192]).all():
                problems.append(f"{embed.path}: non-finite values from row {a}")
                break
    return problems
