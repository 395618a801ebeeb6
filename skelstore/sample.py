"""A small sample timeline, written to HDF5 and Zarr and read back.

Run ``python -m skelstore.sample [OUTDIR]`` (or ``bash scripts/sample.sh [OUTDIR]``):
it writes ``OUTDIR/sample.h5`` and ``OUTDIR/sample.zarr`` (without ``OUTDIR``, in a
temporary directory removed at the end), reads both back with skelshop's
:class:`~skelstore.io.ShotSegmentedReader` and prints what it found.

:func:`sample_frames` is the generator, for tests and benchmarks.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import skelstore
from skelstore.dump import SHOT_CHANGE, add_fmt_metadata, add_metadata, write_shots
from skelstore.io import ShotSegmentedReader

__all__ = ["LIMBS", "MODE", "NUM_FRAMES", "SHOTS", "main", "sample_frames", "write_sample"]

MODE = "BODY_25"
LIMBS = 25

#: One entry per shot: (frames, [(pose_id, first_frame, end_frame, hidden_frames)]),
#: frames counted from the shot's start; a pose is absent from its hidden frames
#: (an occlusion: empty rows in the middle of its track).
SHOTS: list[tuple[int, list[tuple[int, int, int, range]]]] = [
    (120, [(0, 0, 120, range(0)), (1, 30, 120, range(0))]),
    (80, [(2, 0, 80, range(0)), (3, 0, 80, range(0)), (4, 5, 60, range(20, 26))]),
    (100, [(5, 0, 70, range(0)), (6, 0, 100, range(40, 43))]),
]
NUM_FRAMES = sum(n for n, _ in SHOTS)

# BODY_25 standing pose, facing the camera: x right, y down, in person heights,
# mid-hip at the origin. Order: nose, neck, right arm (shoulder, elbow, wrist),
# left arm, mid-hip, right leg (hip, knee, ankle), left leg, eyes, ears, left foot
# (big toe, small toe, heel), right foot.
# fmt: off
_TEMPLATE = np.array(
    [
        [0.0, -0.40], [0.0, -0.30],
        [-0.11, -0.29], [-0.14, -0.15], [-0.15, -0.02],
        [0.11, -0.29], [0.14, -0.15], [0.15, -0.02],
        [0.0, 0.0],
        [-0.06, 0.0], [-0.07, 0.23], [-0.07, 0.45],
        [0.06, 0.0], [0.07, 0.23], [0.07, 0.45],
        [-0.025, -0.42], [0.025, -0.42], [-0.05, -0.41], [0.05, -0.41],
        [0.10, 0.49], [0.12, 0.48], [0.065, 0.47],
        [-0.10, 0.49], [-0.12, 0.48], [-0.065, 0.47],
    ]
)
# fmt: on
# Sideways swing of each keypoint while walking (arms and legs in opposite phase).
_SWING = np.zeros(LIMBS)
_SWING[[3, 4]] = [0.03, 0.06]
_SWING[[6, 7]] = [-0.03, -0.06]
_SWING[[10, 11, 22, 23, 24]] = [-0.04, -0.08, -0.08, -0.08, -0.08]
_SWING[[13, 14, 19, 20, 21]] = [0.04, 0.08, 0.08, 0.08, 0.08]
_FLAKY = np.zeros(LIMBS)  # chance per frame that a keypoint goes undetected
_FLAKY[[17, 18]] = 0.35  # ears
_FLAKY[19:] = 0.15  # feet
_FLAKY[[4, 7]] = 0.05  # wrists


def _walk(rng: np.random.Generator, frames: int) -> np.ndarray:
    """``(frames, 25, 3)`` float32 keypoints of one person walking across a 1280x720 frame.

    Undetected keypoints are all zeros (x, y and confidence), as OpenPose writes them.
    """
    height = rng.uniform(260, 420)
    x0, ground = rng.uniform(350, 930), rng.uniform(560, 700)
    speed = rng.uniform(0.5, 2.5) * rng.choice([-1, 1])
    t = np.arange(frames)[:, None]
    phase = 2 * np.pi * t / rng.uniform(24, 36) + rng.uniform(0, 2 * np.pi)
    x = x0 + speed * t + height * (_TEMPLATE[:, 0] + _SWING * np.sin(phase))
    y = ground - 0.5 * height + height * (_TEMPLATE[:, 1] - 0.01 * np.abs(np.sin(phase)))
    xy = np.stack([x, y], axis=-1) + rng.normal(0, 1.5, (frames, LIMBS, 2))
    conf = np.clip(rng.uniform(0.55, 0.95, LIMBS) + rng.normal(0, 0.05, (frames, LIMBS)), 0.05, 1)
    kps = np.concatenate([xy, conf[..., None]], axis=-1).round(2).astype(np.float32)
    outside = (kps[..., 0] < 0) | (kps[..., 0] >= 1280) | (kps[..., 1] >= 720)
    kps[outside | (rng.random((frames, LIMBS)) < _FLAKY)] = 0
    return kps


def sample_frames(seed: int = 0) -> list[Any]:
    """The sample timeline: BODY_25, 300 frames in 3 shots, 2-3 tracked people per shot.

    People enter late, leave early and disappear for a few frames; some keypoints
    have zero confidence. The same ``seed`` always gives the same timeline.

    Returns:
        One entry per frame, a list of ``(pose_id, keypoints)`` with ``keypoints`` a
        ``(25, 3)`` float32 array of x, y, confidence, and
        :data:`~skelstore.dump.SHOT_CHANGE` between shots: what
        :func:`~skelstore.dump.write_shots` takes.
    """
    rng = np.random.default_rng(seed)
    out: list[Any] = []
    for shot_idx, (frames, people) in enumerate(SHOTS):
        if shot_idx:
            out.append(SHOT_CHANGE)
        shot: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(frames)]
        for pose_id, first, end, hidden in people:
            for f, kps in zip(range(first, end), _walk(rng, end - first), strict=True):
                if f not in hidden:
                    shot[f].append((pose_id, kps))
        out.extend(shot)
    return out


def write_sample(target: str | Path, frames: list[Any] | None = None, **open_kwargs: Any) -> None:
    """Write ``frames`` (default: :func:`sample_frames`) as a lossless ``trackshots`` dump."""
    frames = sample_frames() if frames is None else frames
    num_frames = sum(frame is not SHOT_CHANGE for frame in frames)
    with skelstore.open(target, "w", **open_kwargs) as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "sample.mp4", num_frames, MODE, LIMBS)
        write_shots(root, LIMBS, frames, compression="lossless")


def _read_and_show(target: Path) -> list[tuple[int, int, np.ndarray]]:
    """Print a summary of ``target``; return its ``(frame, pose_id, keypoints)`` rows."""
    rows = []
    with skelstore.open(target) as root:
        info = ", ".join(f"{k} {v}" for k, v in root.format_info.items())
        print(f"\n{target}\n  engine: {root.engine_name} ({info}), mode: {root.attrs['mode']}")
        for shot in ShotSegmentedReader(root):
            ids: set[int] = set()
            n = 0
            for frame, bundle in enumerate(shot, start=shot.start_frame):
                for pose_id, pose in bundle:
                    rows.append((frame, pose_id, pose.keypoints))
                    ids.add(pose_id)
                    n += 1
            span = f"{shot.start_frame}-{shot.end_frame - 1}"
            print(f"  shot frames {span}: {n} poses of pose ids {sorted(ids)}")
    frame, pose_id, kps = rows[0]
    print(f"  first pose (frame {frame}, pose id {pose_id}), its first 3 keypoints:")
    for name, (x, y, c) in zip(("nose", "neck", "right shoulder"), kps[:3], strict=True):
        print(f"    {name:<15} x {x:7.2f}  y {y:7.2f}  confidence {c:.2f}")
    return rows


def _same(a: list[tuple[int, int, np.ndarray]], b: list[tuple[int, int, np.ndarray]]) -> bool:
    """True if two lists of ``(frame, pose_id, keypoints)`` hold the same poses.

    The order of poses within a frame carries no meaning, and all-zero poses are
    left out: readers yield a pose on every frame of its track, all zeros on the
    frames where it was not seen (as skelshop's do).
    """
    a, b = ([r for r in sorted(x, key=lambda r: r[:2]) if r[2].any()] for x in (a, b))
    return len(a) == len(b) and all(
        ra[:2] == rb[:2] and np.array_equal(ra[2], rb[2]) for ra, rb in zip(a, b, strict=True)
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m skelstore.sample [OUTDIR]``; returns the exit status.

    Without ``OUTDIR`` the files go to a temporary directory that is removed
    before returning; with it, they are kept there.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: python -m skelstore.sample [OUTDIR]", file=sys.stderr)
        return 2
    if args:
        outdir = Path(args[0])
        outdir.mkdir(parents=True, exist_ok=True)
        return _run(outdir, kept=True)
    with tempfile.TemporaryDirectory(prefix="skelstore-sample-") as tmp:
        return _run(Path(tmp), kept=False)


def _run(outdir: Path, kept: bool) -> int:
    frames = sample_frames()
    where = outdir if kept else f"{outdir} (removed at the end; pass OUTDIR to keep the files)"
    print(f"sample: {MODE}, {NUM_FRAMES} frames in {len(SHOTS)} shots; writing to {where}")
    decoded = []
    for name in ("sample.h5", "sample.zarr"):
        write_sample(outdir / name, frames)
        decoded.append(_read_and_show(outdir / name))
    written = [x for x in frames if x is not SHOT_CHANGE]
    expected = [(f, pid, kps.astype(np.float64)) for f, ps in enumerate(written) for pid, kps in ps]
    same, exact = _same(*decoded), _same(decoded[0], expected)
    print(f"\nHDF5 and Zarr decode identically: {'yes' if same else 'NO'}")
    print(f"and give back exactly the poses written: {'yes' if exact else 'NO'}")
    return 0 if same and exact else 1


if __name__ == "__main__":
    sys.exit(main())
