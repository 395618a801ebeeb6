"""Conformance with skelshop: golden dumps written by skelshop decode exactly as
skelshop's own readers decoded them (``NAME.expected.npz``).

Every expectation here is derived from the ``.expected.npz`` files and from the
shots' frame ranges read with plain h5py, never from skelstore itself.
"""

from __future__ import annotations

import itertools

import h5py
import hdf5plugin  # noqa: F401 - registers the Blosc filter for plain h5py
import numpy as np
import pytest
from dumputil import (
    GOLDEN_DIR,
    GOLDEN_FILES,
    TRACKSHOTS_GOLDEN,
    UNSEG_GOLDEN,
    Rows,
    assert_rows_equal,
    decode_shot,
    decode_shots,
    decode_trackshots,
    decode_unseg,
    golden_shot_ranges,
    load_expected,
    rows_from_list,
    stored_shot_ranges,
)

import skelstore
from skelstore.dump import SHOT_CHANGE, add_fmt_metadata, add_metadata, write_shots
from skelstore.io import (
    AsIfSingleShot,
    AsIfTracked,
    EmptyShot,
    EnumerateIterable,
    ShotReader,
    ShotSegmentedReader,
    UnsegmentedReader,
    UnsegmentedWriter,
)
from skelstore.pose import (
    LIMBS,
    POSE_CLASSES,
    DumpReaderPoseBundle,
    PoseBody25,
    PoseBody25All,
    PoseFace,
)

OFFSET = "trackshots_offset_face.h5"
BODY = "trackshots_body25all.h5"
UNSEG = "unseg_body25.h5"

#: The compression preset each golden file was written with.
GOLDEN_PRESET = {
    "trackshots_body25all.h5": "none",
    "trackshots_lossless.h5": "lossless",
    "trackshots_lossy.h5": "lossy",
    "trackshots_offset_face.h5": "none",
    "unseg_body25.h5": "none",
}


def golden_attrs(name: str) -> dict:
    with h5py.File(GOLDEN_DIR / name, "r") as f:
        return {k: f.attrs[k] for k in f.attrs}


def golden_limbs(name: str) -> int:
    return int(golden_attrs(name)["limbs"])


def shot_rows(expected: Rows, shots: set[int]) -> Rows:
    return expected.select(np.isin(expected.shot, sorted(shots)))


def test_golden_files_present(golden_dir):
    assert golden_dir == GOLDEN_DIR
    assert set(GOLDEN_FILES) == set(GOLDEN_PRESET)
    for name in GOLDEN_FILES:
        assert (golden_dir / name.replace(".h5", ".expected.npz")).is_file()
        assert len(load_expected(name)) > 0


# ------------------------------------------------------------ whole-file decoding


@pytest.mark.parametrize("name", TRACKSHOTS_GOLDEN)
def test_trackshots_decode_via_skelstore_open(name):
    limbs = golden_limbs(name)
    with skelstore.open(GOLDEN_DIR / name) as root:
        got = decode_trackshots(root, golden_shot_ranges(name), limbs)
    assert_rows_equal(got, load_expected(name))


@pytest.mark.parametrize("name", TRACKSHOTS_GOLDEN)
def test_trackshots_decode_via_raw_h5py(name):
    limbs = golden_limbs(name)
    with h5py.File(GOLDEN_DIR / name, "r") as f:
        got = decode_trackshots(f, golden_shot_ranges(name), limbs)
    assert_rows_equal(got, load_expected(name))


@pytest.mark.parametrize("name", UNSEG_GOLDEN)
def test_unseg_decode_via_skelstore_open(name):
    limbs = golden_limbs(name)
    with skelstore.open(str(GOLDEN_DIR / name), "r") as root:
        got, start, n = decode_unseg(root, limbs)
    assert (start, n) == (0, 300)
    assert_rows_equal(got, load_expected(name))


@pytest.mark.parametrize("name", UNSEG_GOLDEN)
def test_unseg_decode_via_raw_h5py(name):
    limbs = golden_limbs(name)
    with h5py.File(GOLDEN_DIR / name, "r") as f:
        got, _, _ = decode_unseg(f, limbs)
    assert_rows_equal(got, load_expected(name))


@pytest.mark.parametrize("name", TRACKSHOTS_GOLDEN)
def test_trackshots_decode_by_shot_index(name):
    """``reader[N]`` gives exactly the rows recorded for ``shotN``."""
    ranges = golden_shot_ranges(name)
    expected = load_expected(name)
    limbs = golden_limbs(name)
    with skelstore.open(GOLDEN_DIR / name) as root:
        reader = ShotSegmentedReader(root)
        assert len(reader) == len(ranges)
        for n, (start, end) in ranges.items():
            shot = reader[n]
            assert isinstance(shot, ShotReader)
            assert (shot.start_frame, shot.end_frame) == (start, end)
            out: list = []
            assert decode_shot(shot, n, out, limbs) == end - start
            assert_rows_equal(rows_from_list(out, limbs), shot_rows(expected, {n}))


def test_missing_shot_index_raises_not_found():
    with skelstore.open(GOLDEN_DIR / BODY) as root:
        reader = ShotSegmentedReader(root)
        with pytest.raises(skelstore.NotFoundError, match="shot99"):
            reader[99]


@pytest.mark.parametrize(
    ("name", "cls"),
    [(BODY, PoseBody25All), (OFFSET, PoseFace), ("trackshots_lossy.h5", PoseBody25All)],
)
def test_trackshots_pose_class_follows_mode(name, cls):
    assert POSE_CLASSES[golden_attrs(name)["mode"]] is cls
    with skelstore.open(GOLDEN_DIR / name) as root:
        poses = [
            pose for shot in ShotSegmentedReader(root) for bundle in shot for _, pose in bundle
        ]
    assert poses
    assert all(type(p) is cls for p in poses)
    assert all(p.keypoints.shape == (LIMBS[golden_attrs(name)["mode"]], 3) for p in poses)


def test_unseg_default_bundle_yields_poses_only():
    """The default ``UntrackedDumpReaderPoseBundle`` yields poses, not (id, pose) pairs."""
    expected = load_expected(UNSEG)
    with skelstore.open(GOLDEN_DIR / UNSEG) as root:
        bundles = list(UnsegmentedReader(root))
        assert len(bundles) == 300
        for frame in (3, 40, 41, 150, 299):
            poses = list(bundles[frame])
            assert all(type(p) is PoseBody25 for p in poses)
            want = sorted(k.tobytes() for k in expected.at(frame).values())
            assert sorted(p.keypoints.tobytes() for p in poses) == want


# ------------------------------------------------------------ shot iteration


def test_offset_file_iteration_starts_with_empty_shot():
    ranges = golden_shot_ranges(OFFSET)
    assert ranges[0][0] == 100
    with skelstore.open(GOLDEN_DIR / OFFSET) as root:
        shots = list(ShotSegmentedReader(root))
        assert isinstance(shots[0], EmptyShot)
        assert (shots[0].start_frame, shots[0].end_frame) == (0, 100)
        assert [type(s) for s in shots[1:]] == [ShotReader] * len(ranges)
        assert [(s.start_frame, s.end_frame) for s in shots[1:]] == [
            ranges[n] for n in sorted(ranges)
        ]
        empty = list(shots[0])
        assert len(empty) == 100
        assert all(list(b) == [] for b in empty)


def expected_from_frame(ranges: dict[int, tuple[int, int]], frame: int):
    """What skelshop's ``iter_from_frame(frame)`` yields: ``[(kind, start, end, N)]``."""
    ordered = [(n, *ranges[n]) for n in sorted(ranges)]
    out = []
    first_start = ordered[0][1]
    if first_start > 0 and frame < first_start:
        out.append(("empty", frame, first_start, None))
    for n, start, end in ordered:
        if end > frame:
            out.append(("shot", start, end, n))
    return out


@pytest.mark.parametrize(
    ("name", "frame"),
    [
        (BODY, 0),
        (BODY, 5),
        (BODY, 256),
        (BODY, 257),  # first frame of shot1
        (BODY, 309),  # last frame of shot1
        (BODY, 809),  # the shot without poses
        (BODY, 830),
        (BODY, 1199),
        (BODY, 1200),  # past the end: nothing
        (OFFSET, 0),
        (OFFSET, 50),
        (OFFSET, 99),
        (OFFSET, 100),
        (OFFSET, 349),
        (OFFSET, 350),
        (OFFSET, 499),
        (OFFSET, 10_000),
        ("trackshots_lossy.h5", 646),
    ],
)
def test_iter_from_frame(name, frame):
    ranges = golden_shot_ranges(name)
    expected = load_expected(name)
    want = expected_from_frame(ranges, frame)
    limbs = golden_limbs(name)
    with skelstore.open(GOLDEN_DIR / name) as root:
        got_rows, shots = decode_shots(
            ShotSegmentedReader(root).iter_from_frame(frame), ranges, limbs
        )
    kinds = [
        ("empty", s.start_frame, s.end_frame, None)
        if isinstance(s, EmptyShot)
        else ("shot", s.start_frame, s.end_frame, None)
        for s in shots
    ]
    assert kinds == [(k, a, b, None) for k, a, b, _ in want]
    wanted_shots = {n for kind, _, _, n in want if kind == "shot"}
    assert_rows_equal(got_rows, shot_rows(expected, wanted_shots))


def test_iter_from_frame_before_first_shot_yields_empty_shot_from_that_frame():
    with skelstore.open(GOLDEN_DIR / OFFSET) as root:
        first = next(iter(ShotSegmentedReader(root).iter_from_frame(42)))
        assert isinstance(first, EmptyShot)
        assert first.start_frame == 42
        assert first.end_frame == 100
        bundles = list(first)
        assert len(bundles) == 58
        assert all(len(list(b)) == 0 for b in bundles)


@pytest.mark.parametrize(
    ("name", "start_shot"),
    [(BODY, 0), (BODY, 3), (BODY, 7), (BODY, 8), (OFFSET, 0), (OFFSET, 1), (OFFSET, 2)],
)
def test_iter_from_shot(name, start_shot):
    ranges = golden_shot_ranges(name)
    expected = load_expected(name)
    limbs = golden_limbs(name)
    with skelstore.open(GOLDEN_DIR / name) as root:
        got_rows, shots = decode_shots(
            ShotSegmentedReader(root).iter_from_shot(start_shot), ranges, limbs
        )
    # The empty shot before a late first shot has number -1: never yielded here.
    assert all(isinstance(s, ShotReader) for s in shots)
    wanted = [n for n in sorted(ranges) if n >= start_shot]
    assert [(s.start_frame, s.end_frame) for s in shots] == [ranges[n] for n in wanted]
    assert_rows_equal(got_rows, shot_rows(expected, set(wanted)))


@pytest.mark.parametrize("name", [BODY, OFFSET])
def test_shot_reader_random_access(name):
    """``ShotReader[frame]`` (frame counted from the shot's start) and
    ``ShotReader[frame, pose_ids]``."""
    ranges = golden_shot_ranges(name)
    expected = load_expected(name)
    with skelstore.open(GOLDEN_DIR / name) as root:
        reader = ShotSegmentedReader(root)
        for n, (start, end) in ranges.items():
            shot = reader[n]
            length = end - start
            # out of order, to cross block boundaries both ways
            for rel in sorted({length - 1, 0, length // 2, 1, length - 2} - {-1, -2}, reverse=True):
                want = expected.at(start + rel)
                bundle = shot[rel]
                assert isinstance(bundle, DumpReaderPoseBundle)
                got = dict(bundle)
                assert sorted(got) == sorted(want)
                for pid, pose in got.items():
                    np.testing.assert_array_equal(pose.keypoints, want[pid])
                if want:
                    some = sorted(want)[:1]
                    sub = dict(shot[rel, some])
                    assert sorted(sub) == some
                    np.testing.assert_array_equal(sub[some[0]].keypoints, want[some[0]])
                    assert dict(shot[rel, []]) == {}
                    assert dict(shot[rel, [max(want) + 1000]]) == {}


def test_infinite_reader_ends_with_endless_empty_shot():
    ranges = golden_shot_ranges(BODY)
    last_end = max(e for _, e in ranges.values())
    with skelstore.open(GOLDEN_DIR / BODY) as root:
        shots = list(ShotSegmentedReader(root, infinite=True))
        assert len(shots) == len(ranges) + 1
        tail = shots[-1]
        assert isinstance(tail, EmptyShot)
        assert tail.start_frame == last_end
        assert tail.end_frame is None
        bundles = list(itertools.islice(tail, 25))
        assert len(bundles) == 25
        assert all(len(list(b)) == 0 for b in bundles)
        # also past the end, via iter_from_frame and iter_from_shot
        after = list(ShotSegmentedReader(root, infinite=True).iter_from_frame(5000))
        assert len(after) == 1 and isinstance(after[0], EmptyShot)
        assert after[0].start_frame == last_end
        assert len(list(itertools.islice(after[0], 7))) == 7
        by_shot = list(ShotSegmentedReader(root, infinite=True).iter_from_shot(len(ranges)))
        assert len(by_shot) == 1 and isinstance(by_shot[0], EmptyShot)


def test_infinite_reader_with_leading_empty_shot():
    with skelstore.open(GOLDEN_DIR / OFFSET) as root:
        shots = list(ShotSegmentedReader(root, infinite=True))
    assert isinstance(shots[0], EmptyShot) and isinstance(shots[-1], EmptyShot)
    assert (shots[0].start_frame, shots[0].end_frame) == (0, 100)
    assert (shots[-1].start_frame, shots[-1].end_frame) == (500, None)


# ------------------------------------------------------------ adapters


@pytest.mark.parametrize("name", [BODY, OFFSET])
def test_as_if_single_shot(name):
    """Bundles frame after frame from 0, over every shot (and the leading empty one)."""
    ranges = golden_shot_ranges(name)
    total = max(e for _, e in ranges.values())
    with skelstore.open(GOLDEN_DIR / name) as root:
        bundles = list(AsIfSingleShot(ShotSegmentedReader(root)))
        assert len(bundles) == total
        out = [(f, 0, pid, pose.keypoints) for f, b in enumerate(bundles) for pid, pose in b]
    want = load_expected(name)
    want.shot[:] = 0
    assert_rows_equal(rows_from_list(out, golden_limbs(name)), want)


def test_as_if_single_shot_iter_from_starts_at_containing_shot():
    """As in skelshop, ``iter_from(frame)`` starts at the start of the shot holding
    ``frame`` (here shot1, frames 257..310)."""
    expected = load_expected(BODY)
    with skelstore.open(GOLDEN_DIR / BODY) as root:
        bundles = list(AsIfSingleShot(ShotSegmentedReader(root)).iter_from(300))
    assert len(bundles) == 1200 - 257
    for i in (0, 1, 52, 53, 400, len(bundles) - 1):
        got = dict(bundles[i])
        want = expected.at(257 + i)
        assert sorted(got) == sorted(want)
        for pid in want:
            np.testing.assert_array_equal(got[pid].keypoints, want[pid])


def test_as_if_single_shot_infinite_tail():
    with skelstore.open(GOLDEN_DIR / BODY) as root:
        it = iter(AsIfSingleShot(ShotSegmentedReader(root, infinite=True)))
        bundles = list(itertools.islice(it, 1210))
    assert len(bundles) == 1210
    assert all(len(list(b)) == 0 for b in bundles[1200:])
    assert len(list(bundles[1199])) == len(load_expected(BODY).at(1199))


@pytest.mark.parametrize("frame", [0, 3, 40, 150, 299, 300])
def test_unseg_iter_from(frame):
    expected = load_expected(UNSEG)
    with skelstore.open(GOLDEN_DIR / UNSEG) as root:
        reader = UnsegmentedReader(root, bundle_cls=DumpReaderPoseBundle)
        out = [
            (frame + i, 0, pid, pose.keypoints)
            for i, b in enumerate(reader.iter_from(frame))
            for pid, pose in b
        ]
        n = sum(1 for _ in reader.iter_from(frame))
    assert n == 300 - frame
    assert_rows_equal(rows_from_list(out, 25), expected.select(expected.frame >= frame))


@pytest.mark.parametrize("frame", [None, 0, 41, 299])
def test_as_if_tracked_enumerates_poses(frame):
    expected = load_expected(UNSEG)
    with skelstore.open(GOLDEN_DIR / UNSEG) as root:
        reader = AsIfTracked(UnsegmentedReader(root))
        frames = list(reader) if frame is None else list(reader.iter_from(frame))
        first = frame or 0
        assert len(frames) == 300 - first
        for i, item in enumerate(frames):
            assert isinstance(item, EnumerateIterable)
            pairs = list(item)
            assert [idx for idx, _ in pairs] == list(range(len(pairs)))
            want = expected.at(first + i)
            assert len(pairs) == len(want)
            assert sorted(p.keypoints.tobytes() for _, p in pairs) == sorted(
                k.tobytes() for k in want.values()
            )
            # an iterable, not an iterator: a second pass gives the same again
            assert [idx for idx, _ in item] == [idx for idx, _ in pairs]


# ------------------------------------------------------------ cross-engine copy


def copy_trackshots(src_root, dst_root, name: str, compression: str) -> None:
    reader = ShotSegmentedReader(src_root)
    shots = [s for s in reader if not isinstance(s, EmptyShot)]

    def frames():
        for i, shot in enumerate(shots):
            if i:
                yield SHOT_CHANGE
            for bundle in shot:
                yield [(pid, pose) for pid, pose in bundle]

    attrs = golden_attrs(name)
    add_fmt_metadata(dst_root, "trackshots")
    add_metadata(
        dst_root, "/videos/video.mp4", int(attrs["num_frames"]), attrs["mode"], int(attrs["limbs"])
    )
    write_shots(
        dst_root,
        int(attrs["limbs"]),
        frames(),
        start_frame=shots[0].start_frame,
        compression=compression,
    )


def copy_unseg(src_root, dst_root, name: str, compression: str) -> None:
    reader = UnsegmentedReader(src_root, bundle_cls=DumpReaderPoseBundle)
    attrs = golden_attrs(name)
    add_fmt_metadata(dst_root, "unseg")
    add_metadata(
        dst_root, "video.mp4", int(attrs["num_frames"]), attrs["mode"], int(attrs["limbs"])
    )
    write_shots(
        dst_root,
        int(attrs["limbs"]),
        ([(pid, pose) for pid, pose in b] for b in reader),
        writer_cls=UnsegmentedWriter,
        start_frame=reader.shot_reader.start_frame,
        compression=compression,
        block_frames=64,
    )


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden_copied_to_every_storage_decodes_the_same(name, target):
    url, kwargs = target()
    compression = GOLDEN_PRESET[name]
    with skelstore.open(GOLDEN_DIR / name) as src, skelstore.open(url, "w", **kwargs) as dst:
        if name.startswith("unseg"):
            copy_unseg(src, dst, name, compression)
        else:
            copy_trackshots(src, dst, name, compression)
    attrs = golden_attrs(name)
    limbs = int(attrs["limbs"])
    with skelstore.open(url, "r") as root:
        for key in ("fmt_type", "mode", "limbs", "num_frames", "video", "fmt_ver"):
            assert root.attrs[key] == attrs[key], key
        if name.startswith("unseg"):
            got, start, n = decode_unseg(root, limbs)
            assert (start, n) == (0, 300)
        else:
            assert stored_shot_ranges(root) == golden_shot_ranges(name)
            got = decode_trackshots(root, golden_shot_ranges(name), limbs)
    # Re-quantising skelshop's HDF5 scale-offset output is exact only up to the
    # filter's precision (HDF5 and Zarr scale differently around the chunk minimum).
    assert_rows_equal(got, load_expected(name), atol=0.01 if "lossy" in compression else 0)
