"""Shared helpers of the test suite: storage targets, decoding dumps into rows, comparing.

A decoded dump is a :class:`Rows`: one row per yielded pose, in the format of the
golden ``NAME.expected.npz`` files (``frame``, ``shot``, ``pose_id``, ``keypoints``),
always sorted by ``(frame, pose_id)`` so that two decodings compare as sets keyed by
``(frame, pose_id)``.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skelstore.io import EmptyShot, ShotReader, ShotSegmentedReader, UnsegmentedReader
from skelstore.pose import DumpReaderPoseBundle

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"
GOLDEN_FILES = sorted(p.name for p in GOLDEN_DIR.glob("*.h5"))
TRACKSHOTS_GOLDEN = [n for n in GOLDEN_FILES if n.startswith("trackshots")]
UNSEG_GOLDEN = [n for n in GOLDEN_FILES if n.startswith("unseg")]

#: Every storage kind a dump can be written to: Zarr kinds get the packed layout (Zarr's
#: default) and HDF5 kinds skelshop's (HDF5's default), except ``hdf5-packed`` and
#: ``zarr3-skelshop``, which ask for the other layout (``layout=`` in the open kwargs).
STORAGE_KINDS = (
    "hdf5", "zarr3", "zarr2", "zarrzip", "memory-zarr", "memory-hdf5", "hdf5-packed",
    "zarr3-skelshop",
)  # fmt: skip
#: The kinds served by the HDF5 engine.
HDF5_KINDS = ("hdf5", "memory-hdf5", "hdf5-packed")

_counter = itertools.count()


def make_target(kind: str, tmp_path: Path, name: str | None = None) -> tuple[str, dict[str, Any]]:
    """A fresh ``(url, open_kwargs)`` of storage ``kind``; every call gives a new name."""
    n = next(_counter)
    stem = f"{name or 'x'}{n}"
    if kind == "hdf5":
        return str(tmp_path / f"{stem}.h5"), {}
    if kind == "hdf5-packed":
        return str(tmp_path / f"{stem}.h5"), {"layout": "packed"}
    if kind == "zarr3-skelshop":
        return str(tmp_path / f"{stem}.zarr"), {"zarr_format": 3, "layout": "skelshop"}
    if kind == "zarr3":
        return str(tmp_path / f"{stem}.zarr"), {"zarr_format": 3}
    if kind == "zarr2":
        return str(tmp_path / f"{stem}.zarr"), {"zarr_format": 2}
    if kind == "zarrzip":
        return str(tmp_path / f"{stem}.zarr.zip"), {}
    if kind == "memory-zarr":
        return f"memory://{stem}-{uuid.uuid4().hex}.zarr", {}
    if kind == "memory-hdf5":
        return f"memory://{stem}-{uuid.uuid4().hex}.h5", {}
    raise ValueError(kind)


def clear_memory_fs() -> None:
    """Forget everything stored in fsspec's in-memory filesystem."""
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")


# ---------------------------------------------------------------- rows


@dataclass
class Rows:
    frame: np.ndarray
    shot: np.ndarray
    pose_id: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)

    def sorted(self) -> Rows:
        order = np.lexsort((self.pose_id, self.frame))
        return Rows(self.frame[order], self.shot[order], self.pose_id[order], self.keypoints[order])

    def select(self, mask: np.ndarray) -> Rows:
        return Rows(self.frame[mask], self.shot[mask], self.pose_id[mask], self.keypoints[mask])

    def at(self, frame: int) -> dict[int, np.ndarray]:
        """``{pose_id: keypoints}`` of one frame."""
        idx = np.nonzero(self.frame == frame)[0]
        return {int(self.pose_id[i]): self.keypoints[i] for i in idx}


def rows_from_list(entries: list[tuple[int, int, int, np.ndarray]], limbs: int) -> Rows:
    """Rows from ``(frame, shot, pose_id, keypoints)`` tuples, sorted."""
    if not entries:
        return Rows(
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros((0, limbs, 3), np.float64),
        )
    frame, shot, pid, kps = zip(*entries, strict=True)
    return Rows(
        np.asarray(frame, np.int64),
        np.asarray(shot, np.int64),
        np.asarray(pid, np.int64),
        np.stack([np.asarray(k, np.float64) for k in kps]),
    ).sorted()


def load_expected(name: str) -> Rows:
    """The golden decoding of ``name`` (``NAME.h5``), sorted."""
    npz = np.load(GOLDEN_DIR / name.replace(".h5", ".expected.npz"))
    return Rows(
        npz["frame"].astype(np.int64),
        npz["shot"].astype(np.int64),
        npz["pose_id"].astype(np.int64),
        npz["keypoints"].astype(np.float64),
    ).sorted()


def assert_rows_equal(got: Rows, expected: Rows, atol: float = 0.0) -> None:
    got, expected = got.sorted(), expected.sorted()
    assert len(got) == len(expected), f"{len(got)} rows decoded, {len(expected)} expected"
    np.testing.assert_array_equal(got.frame, expected.frame)
    np.testing.assert_array_equal(got.pose_id, expected.pose_id)
    np.testing.assert_array_equal(got.shot, expected.shot)
    assert got.keypoints.shape == expected.keypoints.shape
    if atol == 0:
        np.testing.assert_array_equal(got.keypoints, expected.keypoints)
    else:
        np.testing.assert_allclose(got.keypoints, expected.keypoints, rtol=0, atol=atol)


def golden_shot_ranges(name: str) -> dict[int, tuple[int, int]]:
    """``{N: (start_frame, end_frame)}`` of every ``/timeline/shotN``, read with plain h5py."""
    import h5py
    import hdf5plugin  # noqa: F401 - registers Blosc

    with h5py.File(GOLDEN_DIR / name, "r") as f:
        return {
            int(k[4:]): (int(g.attrs["start_frame"]), int(g.attrs["end_frame"]))
            for k, g in f["timeline"].items()
        }


def stored_shot_ranges(root: Any) -> dict[int, tuple[int, int]]:
    """``{N: (start_frame, end_frame)}`` of every stored shot, whatever the layout."""
    from skelstore.packed_ops import dump_shots

    return {s.index: (s.start_frame, s.end_frame) for s in dump_shots(root)}


# ---------------------------------------------------------------- decoding


def decode_shot(shot: Any, shot_no: int, out: list, limbs: int | None = None) -> int:
    """Append the rows of one shot reader to ``out``; return how many bundles it yielded."""
    n = 0
    for n, bundle in enumerate(shot, start=1):
        frame = shot.start_frame + n - 1
        for pid, pose in bundle:
            kps = np.asarray(pose.keypoints)
            if limbs is not None:
                assert kps.shape == (limbs, 3)
            out.append((frame, shot_no, int(pid), kps))
    return n


def decode_shots(
    shots: Any,
    ranges: dict[int, tuple[int, int]],
    limbs: int | None = None,
) -> tuple[Rows, list[Any]]:
    """Decode every shot of an iterator of shots from a ``trackshots`` dump.

    ``ranges`` are the stored shots' frame ranges: a yielded :class:`ShotReader` is
    matched to its stored shot number by its frame range. Empty shots must yield
    only empty bundles. Returns the rows and the yielded shot objects.
    """
    by_range = {r: n for n, r in ranges.items() if r[1] > r[0]}
    out: list = []
    yielded = []
    for shot in shots:
        yielded.append(shot)
        if isinstance(shot, EmptyShot):
            bundles = list(shot)
            assert len(bundles) == shot.end_frame - shot.start_frame
            assert all(len(list(b)) == 0 for b in bundles)
            continue
        assert isinstance(shot, ShotReader)
        rng = (shot.start_frame, shot.end_frame)
        if rng[1] == rng[0]:
            assert list(shot) == []
            continue
        assert rng in by_range, f"shot reader over {rng} matches no stored shot {ranges}"
        n = decode_shot(shot, by_range[rng], out, limbs)
        assert n == rng[1] - rng[0]
    return rows_from_list(out, limbs or 1), yielded


def decode_trackshots(root: Any, ranges: dict[int, tuple[int, int]], limbs: int) -> Rows:
    """All rows of a ``trackshots`` dump read by iterating :class:`ShotSegmentedReader`."""
    rows, _ = decode_shots(ShotSegmentedReader(root), ranges, limbs)
    return rows


def decode_unseg(root: Any, limbs: int) -> tuple[Rows, int, int]:
    """All rows of an ``unseg`` dump, and its timeline's first frame and frame count."""
    reader = UnsegmentedReader(root, bundle_cls=DumpReaderPoseBundle)
    start = reader.shot_reader.start_frame
    out: list = []
    n = 0
    for n, bundle in enumerate(reader, start=1):
        for pid, pose in bundle:
            kps = np.asarray(pose.keypoints)
            assert kps.shape == (limbs, 3)
            out.append((start + n - 1, 0, int(pid), kps))
    return rows_from_list(out, limbs), start, n
