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
    frames: int,
    limbs: int,
    seed: int = 0,
    people: float = 1.0,
    shot_frames: tuple[int, int] = (100, 2000),
) -> Iterator[Any]:
    """Frames for write_shots: shots of ``shot_frames`` frames (100-2000), ~``people``
    tracks per shot, each over a random part of its shot."""
    rng = np.random.default_rng(seed)
    done = 0
    next_id = 0
    while done < frames:
        length = min(int(rng.integers(*shot_frames)), frames - done)
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
    shot_frames: tuple[int, int] = (100, 2000),
    **open_kwargs: Any,
) -> None:
    """Write a synthetic dump of ``frames`` frames to ``url``."""
    limbs = LIMBS[mode]
    with skelstore.open(url, "w", **open_kwargs) as root:
        add_fmt_metadata(root, "trackshots" if tracked else "unseg")
        add_metadata(root, "synthetic.mp4", frames, mode, limbs)
        if tracked:
            it = tracked_frames(frames, limbs, seed, people=people, shot_frames=shot_frames)
        else:
            it = untracked_frames(frames, limbs, seed=seed)
        write_shots(
            root,
            limbs,
            it,
            writer_cls=ShotSegmentedWriter if tracked else UnsegmentedWriter,
            compression=compression,
        )


#: The deliberately broken kinds of :func:`make_corpus`, and what each one is.
BROKEN_KINDS = {
    "garbage": "random bytes named .h5",
    "truncated": "the first half of a valid HDF5 dump",
    "not_a_dump": "an HDF5 file without the dump's root attributes",
    "incomplete": "a dump still carrying the writer's in-progress mark",
    "bad_indptr": "a readable dump whose first track's indptr is not monotone",
}


def make_corpus(
    directory: str,
    n_files: int = 56,
    *,
    frames: tuple[int, int] = (60, 300),
    zarr_every: int = 8,
    broken_every: int = 9,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """A seeded corpus of small BODY_25 dumps in ``directory``; returns its manifest.

    File ``i`` is broken (one of :data:`BROKEN_KINDS`, in turn) when
    ``i % broken_every == broken_every - 1``, a Zarr v3 store (``.zarr``) when
    ``i % zarr_every == zarr_every - 1``, otherwise an HDF5 dump (``.h5``);
    every sixth file is unsegmented (when good), the others tracked. Each manifest entry
    has ``name``, ``kind`` (``hdf5``, ``zarr`` or a broken kind) and ``frames``.
    """
    import os

    from skelstore.recovery import IN_PROGRESS, SHOTS_DONE
    from skelstore.summary import iter_tracks

    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    kinds = list(BROKEN_KINDS)
    manifest: list[dict[str, Any]] = []
    for i in range(n_files):
        n = int(rng.integers(frames[0], frames[1] + 1))
        broken = (
            kinds[(i // broken_every) % len(kinds)]
            if i % broken_every == broken_every - 1
            else None
        )
        kind = broken or ("zarr" if i % zarr_every == zarr_every - 1 else "hdf5")
        name = f"video{i:04d}" + (".zarr" if kind == "zarr" else ".h5")
        path = os.path.join(directory, name)
        if kind == "garbage":
            with open(path, "wb") as f:
                f.write(rng.bytes(4096))
        elif kind == "not_a_dump":
            with skelstore.open(path, "w") as root:
                root.create_group("annotations", {"note": "no timeline"})
        else:
            make_dump(path, n, mode="BODY_25", tracked=i % 6 != 2, seed=seed * 100_000 + i)
            if kind == "truncated":
                size = os.path.getsize(path)
                with open(path, "r+b") as f:
                    f.truncate(size // 2)
            elif kind == "incomplete":
                with skelstore.open(path, "r+") as root:
                    root.attrs.update({IN_PROGRESS: True, SHOTS_DONE: 0})
            elif kind == "bad_indptr":
                with skelstore.open(path, "r+") as root:
                    _, grp = max(iter_tracks(root), key=lambda t: len(t[1]["indptr"]))
                    ip = grp["indptr"].read()
                    ip[1] = ip[-1] + 5
                    grp["indptr"][:] = ip
        manifest.append({"name": name, "kind": kind, "frames": n})
    return manifest
