"""Property tests: random timelines written through the writers read back as written.

Tracked timelines go through :func:`write_shots` with :data:`SHOT_CHANGE` markers
into a :class:`ShotSegmentedWriter` (random shot lengths, empty shots, gaps inside
tracks, a random first frame); untracked ones into an :class:`UnsegmentedWriter`.
Every mode's limb count, every compression preset and every storage kind is used.
The expected decoding is computed here from the timeline, following skelshop's
semantics: a track yields a row for every frame from its first to its last pose
(all zeros where it has no pose), and keypoints of confidence 0 read back as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from dumputil import (
    STORAGE_KINDS,
    Rows,
    assert_rows_equal,
    decode_shots,
    decode_unseg,
    make_target,
    rows_from_list,
    stored_shot_ranges,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import skelstore
from skelstore.compression import PRESETS
from skelstore.dump import SHOT_CHANGE, add_fmt_metadata, add_metadata, write_shots
from skelstore.io import EmptyShot, ShotSegmentedReader, UnsegmentedWriter
from skelstore.pose import LIMBS, MODES, POSE_CLASSES

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MAX_FRAMES = 40


def random_pose(rng: np.random.Generator, limbs: int, zero_prob: float) -> np.ndarray:
    """A float32 ``(limbs, 3)`` pose; some keypoints (or all) have confidence 0."""
    pose = np.empty((limbs, 3), np.float32)
    pose[:, :2] = rng.uniform(0, 1920, (limbs, 2))
    pose[:, 2] = rng.uniform(0.01, 1, limbs)
    if zero_prob >= 1:
        pose[:, 2] = 0
    else:
        pose[rng.random(limbs) < zero_prob, 2] = 0
    return pose


def visible(pose: np.ndarray) -> np.ndarray:
    """What a reader gives back for ``pose``: float64, rows of confidence 0 zeroed."""
    out = pose.astype(np.float64)
    out[pose[:, 2] == 0] = 0
    return out


def tolerance(preset: str) -> float:
    return 0.01 if PRESETS[preset].data.is_lossy else 0.0


# ---------------------------------------------------------------- tracked


@dataclass
class Shot:
    length: int
    #: pose_id -> {frame offset in the shot: keypoints}
    tracks: dict[int, dict[int, np.ndarray]] = field(default_factory=dict)


@st.composite
def tracked_timelines(draw, limbs: int):
    start_frame = draw(st.sampled_from([0, 0, 1, 7, 100]))
    n_shots = draw(st.integers(1, 4))
    lengths = draw(st.lists(st.integers(0, 12), min_size=n_shots, max_size=n_shots))
    seed = draw(st.integers(0, 2**32 - 1))
    zero_prob = draw(st.sampled_from([0.0, 0.3, 0.9, 1.0]))
    rng = np.random.default_rng(seed)
    shots = []
    for length in lengths:
        shot = Shot(length)
        if length:
            pose_ids = draw(st.lists(st.integers(0, 9), max_size=3, unique=True))
            for pid in pose_ids:
                present = draw(
                    st.lists(st.booleans(), min_size=length, max_size=length).filter(any)
                )
                shot.tracks[pid] = {
                    i: random_pose(rng, limbs, zero_prob) for i, p in enumerate(present) if p
                }
        shots.append(shot)
    return start_frame, shots


def tracked_frames(shots: list[Shot]):
    """The ``frame_iter`` of :func:`write_shots` for ``shots``."""
    for k, shot in enumerate(shots):
        if k:
            yield SHOT_CHANGE
        for i in range(shot.length):
            yield [(pid, poses[i]) for pid, poses in shot.tracks.items() if i in poses]


def tracked_expectation(start_frame: int, shots: list[Shot], limbs: int):
    """``(rows, {N: (start, end)})`` that readers must give back."""
    entries = []
    ranges = {}
    at = start_frame
    for n, shot in enumerate(shots):
        ranges[n] = (at, at + shot.length)
        for pid, poses in shot.tracks.items():
            first, last = min(poses), max(poses)
            for i in range(first, last + 1):
                kps = visible(poses[i]) if i in poses else np.zeros((limbs, 3))
                entries.append((at + i, n, pid, kps))
        at += shot.length
    return rows_from_list(entries, limbs), ranges


def write_tracked(url, kwargs, mode, start_frame, shots, preset):
    limbs = LIMBS[mode]
    total = sum(s.length for s in shots)
    with skelstore.open(url, "w", **kwargs) as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "video.mp4", start_frame + total, mode, limbs)
        write_shots(root, limbs, tracked_frames(shots), start_frame=start_frame, compression=preset)


def check_tracked(url, mode, start_frame, shots, preset):
    limbs = LIMBS[mode]
    expected, ranges = tracked_expectation(start_frame, shots, limbs)
    with skelstore.open(url, "r") as root:
        assert stored_shot_ranges(root) == ranges
        reader = ShotSegmentedReader(root)
        assert len(reader) == len(shots)
        got, yielded = decode_shots(reader, ranges, limbs)
        assert_rows_equal(got, expected, atol=tolerance(preset))
        # a late first shot is preceded by an empty shot from frame 0
        if start_frame > 0:
            assert isinstance(yielded[0], EmptyShot)
            assert (yielded[0].start_frame, yielded[0].end_frame) == (0, start_frame)
        else:
            assert not any(isinstance(s, EmptyShot) for s in yielded)
        # every bundle holds poses of the mode's class
        cls = POSE_CLASSES[mode]
        for n in ranges:
            for bundle in reader[n]:
                assert all(type(p) is cls for _, p in bundle)


@pytest.mark.parametrize("kind", STORAGE_KINDS)
@SETTINGS
@given(data=st.data(), mode=st.sampled_from(MODES), preset=st.sampled_from(list(PRESETS)))
def test_tracked_roundtrip(kind, tmp_path: Path, data, mode, preset):
    start_frame, shots = data.draw(tracked_timelines(LIMBS[mode]))
    url, kwargs = make_target(kind, tmp_path)
    write_tracked(url, kwargs, mode, start_frame, shots, preset)
    check_tracked(url, mode, start_frame, shots, preset)


# ---------------------------------------------------------------- untracked


@st.composite
def untracked_timelines(draw, limbs: int):
    start_frame = draw(st.sampled_from([0, 0, 3, 50]))
    length = draw(st.integers(1, MAX_FRAMES))
    seed = draw(st.integers(0, 2**32 - 1))
    zero_prob = draw(st.sampled_from([0.0, 0.3, 1.0]))
    rng = np.random.default_rng(seed)
    slots = draw(
        st.lists(
            st.lists(st.integers(0, 2), max_size=3, unique=True),
            min_size=length,
            max_size=length,
        ).filter(lambda frames: any(frames))
    )
    frames = [{slot: random_pose(rng, limbs, zero_prob) for slot in f} for f in slots]
    block_frames = draw(st.sampled_from([1, 2, 5, 4096]))
    return start_frame, frames, block_frames


def untracked_expectation(start_frame: int, frames: list[dict[int, np.ndarray]], limbs: int):
    """``(rows, end_frame)``: each slot yields rows from its first to its last pose."""
    seen: dict[int, list[int]] = {}
    for i, f in enumerate(frames):
        for slot in f:
            seen.setdefault(slot, []).append(i)
    entries = []
    for slot, idx in seen.items():
        for i in range(min(idx), max(idx) + 1):
            kps = visible(frames[i][slot]) if slot in frames[i] else np.zeros((limbs, 3))
            entries.append((start_frame + i, 0, slot, kps))
    end = start_frame + max(max(i) for i in seen.values()) + 1
    return rows_from_list(entries, limbs), end


@pytest.mark.parametrize("kind", STORAGE_KINDS)
@SETTINGS
@given(data=st.data(), mode=st.sampled_from(MODES), preset=st.sampled_from(list(PRESETS)))
def test_untracked_roundtrip(kind, tmp_path: Path, data, mode, preset):
    limbs = LIMBS[mode]
    start_frame, frames, block_frames = data.draw(untracked_timelines(limbs))
    url, kwargs = make_target(kind, tmp_path)
    with skelstore.open(url, "w", **kwargs) as root:
        add_fmt_metadata(root, "unseg")
        add_metadata(root, "video.mp4", start_frame + len(frames), mode, limbs)
        write_shots(
            root,
            limbs,
            (list(f.items()) for f in frames),
            writer_cls=UnsegmentedWriter,
            start_frame=start_frame,
            compression=preset,
            block_frames=block_frames,
        )
    expected, end = untracked_expectation(start_frame, frames, limbs)
    with skelstore.open(url, "r") as root:
        got, start, n = decode_unseg(root, limbs)
        assert (start, start + n) == (start_frame, end)
        assert_rows_equal(got, expected, atol=tolerance(preset))


# ---------------------------------------------------------------- every mode x preset


def fixed_tracked(limbs: int, seed: int) -> tuple[int, list[Shot]]:
    """A small deterministic timeline: a big track (Blosc applies), a small one
    (< 24 keypoints: Blosc dropped), a gap, an empty shot and a pose-less shot."""
    rng = np.random.default_rng(seed)
    big = {i: random_pose(rng, limbs, 0.2) for i in (0, 1, 2, 5, 6)}
    small_pose = random_pose(rng, limbs, 0.0)
    small_pose[10:, 2] = 0  # 10 stored keypoints
    shots = [
        Shot(8, {3: big, 1: {4: small_pose}}),
        Shot(0),
        Shot(4),
        Shot(5, {0: {0: random_pose(rng, limbs, 1.0), 4: random_pose(rng, limbs, 0.5)}}),
    ]
    return 5, shots


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_and_preset(target, mode, preset):
    limbs = LIMBS[mode]
    start_frame, shots = fixed_tracked(limbs, seed=len(mode) * 31 + len(preset))
    url, kwargs = target()
    write_tracked(url, kwargs, mode, start_frame, shots, preset)
    check_tracked(url, mode, start_frame, shots, preset)
    expected: Rows = tracked_expectation(start_frame, shots, limbs)[0]
    assert len(expected) == 7 + 1 + 5


# ---------------------------------------------------------------- edge cases


def test_empty_first_shot(target):
    """A timeline that starts with a shot change: the first shot is empty and the
    next one still starts at the first frame."""
    rng = np.random.default_rng(1)
    shots = [Shot(0), Shot(3, {2: {0: random_pose(rng, 25, 0), 2: random_pose(rng, 25, 0)}})]
    for start_frame in (0, 10):
        url, kwargs = target()
        write_tracked(url, kwargs, "BODY_25", start_frame, shots, "none")
        check_tracked(url, "BODY_25", start_frame, shots, "none")


def test_unseg_without_poses_is_readable(target):
    """An unsegmented dump in which no pose was ever added reads as empty, also when
    its timeline starts after frame 0."""
    for start_frame in (0, 10):
        url, kwargs = target()
        with skelstore.open(url, "w", **kwargs) as root:
            add_fmt_metadata(root, "unseg")
            add_metadata(root, "video.mp4", 20, "BODY_25", 25)
            write_shots(
                root, 25, [[], [], []], writer_cls=UnsegmentedWriter, start_frame=start_frame
            )
        with skelstore.open(url, "r") as root:
            got, start, n = decode_unseg(root, 25)
        assert len(got) == 0
        assert start == start_frame
        assert n <= 3


def test_writer_without_metadata_is_readable_as_generic_pose(tmp_path):
    """``limbs`` is recorded by the writer itself; a dump without ``mode`` reads as
    :class:`GenericPose`."""
    from skelstore.pose import GenericPose

    url = str(tmp_path / "bare.h5")
    pose = random_pose(np.random.default_rng(0), 25, 0.0)
    with skelstore.open(url, "w") as root:
        write_shots(root, 25, [[(0, pose)], [(0, pose)]])
    with skelstore.open(url) as root:
        assert root.attrs["limbs"] == 25
        assert root.attrs["fmt_type"] == "trackshots"
        bundles = list(ShotSegmentedReader(root)[0])
    assert len(bundles) == 2
    ((pid, p),) = list(bundles[0])
    assert pid == 0 and type(p) is GenericPose
    np.testing.assert_array_equal(p.keypoints, visible(pose))


def test_shots_with_a_gap_and_iter_from_frame_in_the_gap(target):
    """A shot started at a later frame leaves a gap; ``iter_from_frame`` on a frame in
    the gap starts at the next shot (skelstore's documented deviation from skelshop)."""
    from skelstore.io import ShotSegmentedWriter

    rng = np.random.default_rng(3)
    poses = {f: random_pose(rng, 25, 0.0) for f in (*range(0, 5), *range(10, 14))}
    url, kwargs = target()
    with skelstore.open(url, "w", **kwargs) as root:
        add_metadata(root, "v.mp4", 14, "BODY_25", 25)
        writer = ShotSegmentedWriter(root, 25, compression="lossless")
        writer.start_shot(0)
        for f in range(5):
            writer.add_pose(f, 4, poses[f])
        writer.end_shot()
        writer.start_shot(10)
        for f in range(10, 14):
            writer.register_frame(f)
            writer.add_pose(f, 6, poses[f])
        writer.end_shot()
    with skelstore.open(url) as root:
        reader = ShotSegmentedReader(root)
        assert [(s.start_frame, s.end_frame) for s in reader] == [(0, 5), (10, 14)]
        (shot,) = list(reader.iter_from_frame(7))
        assert (shot.start_frame, shot.end_frame) == (10, 14)
        got = [dict(b) for b in shot]
        assert [list(b) for b in got] == [[6]] * 4
        for i, b in enumerate(got):
            np.testing.assert_array_equal(b[6].keypoints, visible(poses[10 + i]))


def test_shot_writer_appends_to_an_existing_dump(target):
    """A ShotSegmentedWriter on a dump that already has shots continues after them."""
    from skelstore.io import ShotSegmentedWriter

    rng = np.random.default_rng(4)
    first = [random_pose(rng, 70, 0.2) for _ in range(6)]
    url, kwargs = target()
    with skelstore.open(url, "w", **kwargs) as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "v.mp4", 9, "FACE", 70)
        write_shots(root, 70, [[(0, p)] for p in first[:4]])
    with skelstore.open(url, "a", **kwargs) as root:
        writer = ShotSegmentedWriter(root, 70)
        writer.start_shot()
        for i, p in enumerate(first[4:]):
            writer.register_frame(4 + i)
            writer.add_pose(4 + i, 1, p)
        writer.end_shot()
    with skelstore.open(url) as root:
        assert root.attrs["fmt_type"] == "trackshots" and root.attrs["mode"] == "FACE"
        reader = ShotSegmentedReader(root)
        assert [(s.start_frame, s.end_frame) for s in reader] == [(0, 4), (4, 6)]
        rows, _ = decode_shots(reader, {0: (0, 4), 1: (4, 6)}, 70)
    expected = rows_from_list(
        [(f, 0 if f < 4 else 1, 0 if f < 4 else 1, visible(p)) for f, p in enumerate(first)], 70
    )
    assert_rows_equal(rows, expected)
