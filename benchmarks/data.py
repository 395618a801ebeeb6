"""Seeded synthetic dumps for the benchmarks (OpenPose-like, skelshop layout)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

import skelstore
from skelstore.dump import SHOT_CHANGE, add_fmt_metadata, add_metadata, write_shots
from skelstore.io import ShotSegmentedWriter, UnsegmentedWriter
from skelstore.pose import LIMBS


def _pose(rng: np.random.Generator, limbs: int, centre: np.ndarray) -> np.ndarray:
    kps = np.empty((limbs, 3), np.float32)
    kps[:, :2] = centre + rng.normal(0, 40, (limbs, 2))
    kps[:, 2] = rng.uniform(0.05, 1.0, limbs)
    kps[rng.random(limbs) < 0.2] = 0  # undetected keypoints are not stored
    return kps


def tracked_frames(
    frames: int, limbs: int, seed: int = 0, people: float = 1.0
) -> Iterator[Any]:
    """Frames for write_shots: shots of 100-2000 frames, ~``people`` tracks per frame."""
    rng = np.random.default_rng(seed)
    done = 0
    next_id = 0
    while done < frames:
        length = min(int(rng.integers(100, 2000)), frames - done)
        if done:
            yield SHOT_CHANGE
        n = max(1, int(rng.poisson(people)))
        ids = list(range(next_id, next_id + n))
        next_id += n
        spans = {i: sorted(rng.integers(0, length, 2)) for i in ids}
        centres = {i: rng.uniform(200, 1500, 2) for i in ids}
        for f in range(length):
            live = [i for i in ids if spans[i][0] <= f <= spans[i][1]]
            yield [(i, _pose(rng, limbs, centres[i])) for i in live]
        done += length


def untracked_frames(frames: int, limbs: int, slots: int = 4, seed: int = 0) -> Iterator[Any]:
    """Frames for an unsegmented dump: up to ``slots`` detections per frame."""
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        n = int(rng.integers(0, slots + 1))
        yield [(i, _pose(rng, limbs, rng.uniform(200, 1500, 2))) for i in range(n)]


def make_dump(
    url: str,
    frames: int,
    *,
    mode: str = "BODY_25_ALL",
    tracked: bool = True,
    compression: str = "lossless",
    seed: int = 0,
    people: float = 1.0,
    **open_kwargs: Any,
) -> None:
    """Write a synthetic dump of ``frames`` frames to ``url``."""
    limbs = LIMBS[mode]
    with skelstore.open(url, "w", **open_kwargs) as root:
        add_fmt_metadata(root, "trackshots" if tracked else "unseg")
        add_metadata(root, "synthetic.mp4", frames, mode, limbs)
        if tracked:
            it = tracked_frames(frames, limbs, seed, people=people)
        else:
            it = untracked_frames(frames, limbs, seed=seed)
        write_shots(
            root, limbs, it,
            writer_cls=ShotSegmentedWriter if tracked else UnsegmentedWriter,
            compression=compression,
        )
