"""Readers and writers: skelstore against bulk h5py (the floor) and skelshop (the baseline).

    python benchmarks/readers.py [--frames-tracked 30000] [--frames-untracked 90000]
                                 [--repeat 3] [--baseline-repeat 1] [--random-calls 100]
                                 [--people 3] [--seed 0] [--markdown FILE] [--profile]
                                 [--keep]

Smoke run: ``--frames-tracked 3000 --frames-untracked 9000 --repeat 1``.

Data are seeded synthetic dumps (``benchmarks/data.py``): a tracked BODY_25_ALL dump
(shots of 100-2000 frames; ``--people 3`` gives ~1 pose per frame) and an untracked
BODY_25 dump (0-4 detections per frame), both lossless. Each dump's frame list is
generated once, untimed; the HDF5 files the reads use are the ones the skelstore
write benchmark wrote, and the Zarr v3 copies are made from them with
``skelstore.convert``.

1. Read: every pose of every frame (``pose.keypoints``) with skelstore's readers
   on HDF5 and on Zarr v3, against ``ds[()]`` of every dataset with h5py (bulk,
   the floor) and skelshop's per-frame reader. Also shown: the same arrays read
   with zarr-python, and the *interface floor*, the reader loop's own Python cost
   (bundles and pose objects built from one in-memory row).
2. Write: ``skelstore.dump.write_shots`` against skelshop's writers (frames/s),
   with skelstore writing uncompressed as a reference (what compression costs).
3. Random access: ``ShotSegmentedReader.iter_from_frame(n)`` at seeded random ``n``,
   reading every frame of the first shot it yields.
4. Memory: peak RSS growth (VmHWM of a fresh child process, after imports, before
   vs after one full iteration; ``ru_maxrss`` would carry the parent's peak) and the
   ``tracemalloc`` peak of a second iteration in that child (numpy buffers
   included, HDF5's C heap not).

Times are best of ``--repeat`` runs (skelshop's writers: ``--baseline-repeat``, 1 by
default, as its UnsegmentedWriter takes a minute on 90k frames), after an untimed
warm-up; the writes and the reads of each dump, the random access and each memory
figure run in a fresh child process, so that no section inherits another's heap.

``--profile`` also prints, from fresh child processes after a warm-up run, cProfile's
top 25 functions by cumulative time (and top 12 by own time) of one skelstore read of
the tracked dump on HDF5 and on Zarr v3, of the untracked dump on HDF5, and of one
skelstore write of the tracked dump on HDF5 and on Zarr v3. Zarr work done in
zarr-python's event-loop and codec threads is profiled too and shown separately
(wall time per thread, so it includes waits for the GIL and idle waits).

skelshop's algorithms are re-implemented below against raw h5py, following
skelshop's ``skelshop/io.py`` and ``skelshop/sparsepose.py`` (SkelShop Authors,
MIT licence, https://github.com/frankier/skelshop, commit 08336c7).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import repeat, starmap
from operator import setitem
from typing import Any

import h5py
import hdf5plugin
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from data import tracked_frames, untracked_frames  # noqa: E402

import skelstore  # noqa: E402
from skelstore.dump import SHOT_CHANGE, add_fmt_metadata, add_metadata, write_shots  # noqa: E402
from skelstore.io import (  # noqa: E402
    ShotSegmentedReader,
    ShotSegmentedWriter,
    UnsegmentedReader,
    UnsegmentedWriter,
)
from skelstore.pose import (  # noqa: E402  (same bundle/pose classes as skelshop's)
    LIMBS,
    POSE_CLASSES,
    DumpReaderPoseBundle,
    UntrackedDumpReaderPoseBundle,
)

TRACKED_MODE, UNTRACKED_MODE = "BODY_25_ALL", "BODY_25"
#: Frames skelshop's unsegmented writer ported to Zarr writes (see bench_writes).
UNSEG_PORT_FRAMES = 1000

# ================================================================ skelshop baselines
# Re-implemented from skelshop (skelshop/io.py, skelshop/sparsepose.py; SkelShop
# Authors, MIT licence), against raw h5py, keeping its per-frame h5py access pattern:
# readers slice indptr, indices and data of every pose on every frame; the
# unsegmented writer resizes every dataset on every pose; the shot writer buffers a
# shot in dicts and writes Python lists at the end of the shot.

SKELSHOP_LOSSLESS = {
    "lossless_kwargs": {
        "compression": hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE)
    },
    "lossy_kwargs": {},
}
_MIN_CHUNK, _MAX_CHUNK, _INDPTR_CHUNK = 2**14 // 14, 2**19 // 14, 1024


def _ss_create_csr(
    h5f,
    path,
    num_kps,
    *,
    data=None,
    indices=None,
    indptr=None,
    lossless_kwargs=None,
    lossy_kwargs=None,
):
    lossless_kwargs, lossy_kwargs = lossless_kwargs or {}, lossy_kwargs or {}
    if data is not None and len(data) < 24:
        lossless_kwargs = {}
    group = h5f.create_group(path)
    chunk = _MIN_CHUNK if num_kps is None else max(_MIN_CHUNK, min(num_kps * 15, _MAX_CHUNK))
    grow = data is None
    group.create_dataset(
        "data",
        (0, 3) if grow else None,
        data=data,
        dtype=np.float32,
        maxshape=(None, 3) if grow else None,
        chunks=(chunk if grow else min(chunk, len(data)), 3),
        **lossless_kwargs,
        **lossy_kwargs,
    )
    group.create_dataset(
        "indices",
        (0,) if grow else None,
        data=indices,
        dtype=np.uint16,
        maxshape=(None,) if grow else None,
        chunks=(chunk if grow else min(chunk, len(indices)),),
        **lossless_kwargs,
    )
    group.create_dataset(
        "indptr",
        (0,) if grow else None,
        data=indptr,
        dtype=np.uint32,
        maxshape=(None,) if grow else None,
        chunks=(_INDPTR_CHUNK if grow else min(_INDPTR_CHUNK, len(indptr)),),
    )
    return group


def _ss_pose_nz(pose):
    for limb_idx, limb in enumerate(pose):
        if not limb[2]:
            continue
        yield limb_idx, limb


def _ss_grow_ds(ds, extra):
    ds.resize(len(ds) + extra, axis=0)


def _ss_add_empty_rows_grp(indptr, data, new_rows):
    _ss_grow_ds(indptr, new_rows)
    indptr[-new_rows:] = len(data)


class SkelshopUnsegmentedWriter:
    """skelshop.io.UnsegmentedWriter: every add_pose resizes and writes every dataset."""

    def __init__(self, h5f, num_kps=None, **create_kwargs):
        self.h5f, self.num_kps, self.create_kwargs = h5f, num_kps, create_kwargs
        self.timeline_grp = h5f.create_group("/timeline", track_order=True)
        self.pose_grps: dict[int, list[Any]] = {}
        self.start_frame = 0

    def _pose_grp(self, pose_id, frame_num):
        if pose_id not in self.pose_grps:
            grp = _ss_create_csr(
                self.h5f, f"/timeline/pose{pose_id}", self.num_kps, **self.create_kwargs
            )
            grp.attrs["start_frame"] = frame_num
            self.pose_grps[pose_id] = [
                grp,
                grp["data"],
                grp["indices"],
                grp["indptr"],
                frame_num - 1,
            ]
        return self.pose_grps[pose_id]

    def add_pose(self, frame_num, pose_id, pose):
        _, data, indices, indptr, last_frame_num = self._pose_grp(pose_id, frame_num)
        _ss_add_empty_rows_grp(indptr, data, frame_num - last_frame_num)
        new_data, new_indices = [], []
        for limb_idx, limb in _ss_pose_nz(pose):
            new_data.append(limb)
            new_indices.append(limb_idx)
        if new_data:
            _ss_grow_ds(data, len(new_data))
            _ss_grow_ds(indices, len(new_indices))
            data[-len(new_data) :] = new_data
            indices[-len(new_indices) :] = new_indices
        self.pose_grps[pose_id][-1] = frame_num

    def start_shot(self, start_frame=0):
        self.start_frame = start_frame

    def register_frame(self, frame_num):
        pass

    def end_shot(self):
        self.timeline_grp.attrs["start_frame"] = self.start_frame
        last = 0
        for grp, data, _, indptr, last_frame_num in self.pose_grps.values():
            _ss_add_empty_rows_grp(indptr, data, 1)
            grp.attrs["end_frame"] = last_frame_num + 1
            last = max(last, last_frame_num)
        self.timeline_grp.attrs["end_frame"] = last + 1


class SkelshopShotSegmentedWriter:
    """skelshop.io.ShotSegmentedWriter: dicts per shot, lists written by create_csr."""

    def __init__(self, h5f, num_kps=None, **create_kwargs):
        self.h5f, self.num_kps, self.create_kwargs = h5f, num_kps, create_kwargs
        h5f.create_group("/timeline", track_order=True)
        self.pose_data: dict[int, dict[int, np.ndarray]] = {}
        self.pose_starts: dict[int, int] = {}
        self.pose_ends: dict[int, int] = {}
        self.shot_idx = self.shot_start = self.last_frame = 0

    def start_shot(self, start_frame=None):
        if start_frame is not None:
            self.shot_start = start_frame

    def add_pose(self, frame_num, pose_id, pose):
        if pose_id not in self.pose_data:
            self.pose_starts[pose_id] = frame_num
            self.pose_data[pose_id] = {}
        self.pose_data[pose_id][frame_num] = pose
        self.pose_ends[pose_id] = frame_num
        self.last_frame = frame_num

    def register_frame(self, frame_num):
        self.last_frame = frame_num

    def end_shot(self):
        shot = self.h5f.create_group(f"/timeline/shot{self.shot_idx}", track_order=True)
        shot.attrs["start_frame"] = self.shot_start
        shot.attrs["end_frame"] = self.last_frame + 1
        for pose_id, poses in self.pose_data.items():
            data: list[np.ndarray] = []
            indices: list[int] = []
            indptr: list[int] = []
            last_frame_num = self.pose_starts[pose_id] - 1
            for frame_num, pose in poses.items():
                for _ in range(frame_num - last_frame_num):
                    indptr.append(len(data))
                for limb_idx, limb in _ss_pose_nz(pose):
                    data.append(limb)
                    indices.append(limb_idx)
                last_frame_num = frame_num
            indptr.append(len(data))
            grp = _ss_create_csr(
                self.h5f,
                f"/timeline/shot{self.shot_idx}/pose{pose_id}",
                self.num_kps,
                data=data,
                indices=indices,
                indptr=indptr,
                **self.create_kwargs,
            )
            grp.attrs["start_frame"] = self.pose_starts[pose_id]
            grp.attrs["end_frame"] = self.pose_ends[pose_id] + 1
        self.pose_data = {}
        self.shot_idx += 1
        self.shot_start = self.last_frame + 1


def skelshop_write_shots(h5f, num_kps, frame_iter, writer_cls, **create_kwargs):
    """skelshop.dump.write_shots."""
    writer = writer_cls(h5f, num_kps=num_kps, **create_kwargs)
    writer.start_shot(0)
    frame_num = 0
    for frame in frame_iter:
        if frame is SHOT_CHANGE:
            writer.end_shot()
            writer.start_shot()
        else:
            writer.register_frame(frame_num)
            for pose_id, pose in frame:
                writer.add_pose(frame_num, pose_id, pose)
            frame_num += 1
    writer.end_shot()


class SkelshopSparsePose:
    """skelshop.sparsepose.SparsePose: three h5py slices per row."""

    def __init__(self, grp, num_limbs):
        self.num_limbs = num_limbs
        self.data, self.indices, self.indptr = grp["data"], grp["indices"], grp["indptr"]

    def get_row(self, row_num):
        row_start, row_end = self.indptr[row_num : row_num + 2]
        res = np.zeros((self.num_limbs, 3))
        res[self.indices[row_start:row_end]] = self.data[row_start:row_end]
        return res


class SkelshopShotReader:
    """skelshop.io.ShotReader (iteration only)."""

    def __init__(self, start_frame, end_frame, bundles, num_limbs, mk_bundle):
        self.mk_bundle, self.start_frame, self.end_frame = mk_bundle, start_frame, end_frame
        self.poses = [
            (
                num,
                grp.attrs["start_frame"],
                grp.attrs["end_frame"],
                SkelshopSparsePose(grp, num_limbs),
            )
            for num, grp in bundles
        ]

    def __iter__(self):
        for frame in range(self.start_frame, self.end_frame):
            bundle = {}
            for pose_num, start_frame, end_frame, sparse_pose in self.poses:
                if start_frame <= frame < end_frame:
                    bundle[pose_num] = sparse_pose.get_row(frame - start_frame)
            yield self.mk_bundle(bundle)


def _ss_read_grp(grp):
    poses = ((int(k[4:]), v) for k, v in grp.items())
    return grp.attrs["start_frame"], grp.attrs["end_frame"], poses


class SkelshopShotSegmentedReader:
    """skelshop.io.ShotSegmentedReader (iteration over every shot only)."""

    def __init__(self, h5f, bundle_cls=DumpReaderPoseBundle):
        self.h5f, self.limbs = h5f, h5f.attrs["limbs"]
        assert h5f.attrs["fmt_type"] == "trackshots"
        self.mk_bundle = partial(bundle_cls, cls=POSE_CLASSES[h5f.attrs["mode"]])

    def __iter__(self):
        for _, shot_grp in self.h5f["/timeline"].items():
            start, end, bundles = _ss_read_grp(shot_grp)
            yield SkelshopShotReader(start, end, bundles, self.limbs, self.mk_bundle)


class SkelshopUnsegmentedReader:
    """skelshop.io.UnsegmentedReader."""

    def __init__(self, h5f, bundle_cls=UntrackedDumpReaderPoseBundle):
        assert h5f.attrs["fmt_type"] == "unseg"
        mk_bundle = partial(bundle_cls, cls=POSE_CLASSES[h5f.attrs["mode"]])
        self.shot_reader = SkelshopShotReader(
            *_ss_read_grp(h5f["/timeline"]), h5f.attrs["limbs"], mk_bundle
        )

    def __iter__(self):
        return iter(self.shot_reader)


# ================================================================ measured operations


def iterate_tracked(reader: Iterable[Any]) -> int:
    """Touch every pose of every frame of every shot; the number of poses."""
    n = 0
    for shot in reader:
        for bundle in shot:
            for _pose_id, pose in bundle:
                pose.keypoints  # noqa: B018
                n += 1
    return n


def iterate_untracked(reader: Iterable[Any]) -> int:
    n = 0
    for bundle in reader:
        for pose in bundle:
            pose.keypoints  # noqa: B018
            n += 1
    return n


def read_skelstore(url: str, tracked: bool) -> int:
    with skelstore.open(url) as root:
        if tracked:
            return iterate_tracked(ShotSegmentedReader(root))
        return iterate_untracked(UnsegmentedReader(root))


def _h5_attr(obj: Any, name: bytes) -> int:
    aid = h5py.h5a.open(obj, name)
    out = np.empty((), aid.dtype)
    aid.read(out)
    return int(out)


def _h5_read(ds: Any) -> np.ndarray:
    out = np.empty(ds.shape, ds.dtype)
    if out.size:
        ds.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out


def _idealised_bundles(path: str, tracked: bool) -> Iterator[list[Any]]:
    """Per shot (the timeline if untracked), the list of its frames' bundles."""
    from skelstore.layout import decode_rows

    with h5py.File(path, "r") as h5f:
        limbs, mode = int(h5f.attrs["limbs"]), str(h5f.attrs["mode"])
        cls = DumpReaderPoseBundle if tracked else UntrackedDumpReaderPoseBundle
        mk_bundle = partial(cls, cls=POSE_CLASSES[mode])
        timeline = h5py.h5o.open(h5f.id, b"timeline")
        if tracked:
            names: list[bytes] = []
            timeline.links.iterate(names.append)
            shots = [h5py.h5o.open(timeline, n) for n in sorted(names, key=lambda n: int(n[4:]))]
        else:
            shots = [timeline]
        for shot in shots:
            s0, s1 = _h5_attr(shot, b"start_frame"), _h5_attr(shot, b"end_frame")
            frames = list(starmap(dict, repeat((), s1 - s0)))
            tracks: list[bytes] = []
            shot.links.iterate(tracks.append)
            for name in sorted(tracks, key=lambda n: int(n[4:])):
                pose = h5py.h5o.open(shot, name)
                first = _h5_attr(pose, b"start_frame")
                _h5_attr(pose, b"end_frame")
                data, indices, indptr = (
                    _h5_read(h5py.h5o.open(pose, k)) for k in (b"data", b"indices", b"indptr")
                )
                rows = decode_rows(data, indices, indptr, limbs)
                off = first - s0
                deque(
                    map(setitem, frames[off : off + len(rows)], repeat(int(name[4:])), list(rows)),
                    0,
                )
            yield list(map(mk_bundle, frames))


def read_idealised(path: str, tracked: bool) -> int:
    """The least a reader with skelshop's API over h5py must do, and nothing else:
    h5py's low-level calls, two attributes per track, whole arrays, skelstore's
    float64 decode, one dict and bundle per frame, one pose per pose. No checks, no
    storage interface, whole tracks at once (no blocks): a lower bound for shots
    (measured for tracked dumps only: whole 90k-frame tracks are not a bound)."""
    if tracked:
        return iterate_tracked(_idealised_bundles(path, tracked))
    return iterate_untracked(b for shot in _idealised_bundles(path, tracked) for b in shot)


def read_dense(url: str, tracked: bool) -> int:
    """``skelstore.dense.read_poses`` of the whole dump (tracked: shot by shot, as
    every pose id of a tracked dump is a slot); the number of keypoint slots."""
    from skelstore.dense import read_poses

    with skelstore.open(url) as root:
        if not tracked:
            return read_poses(root).keypoints.size
        return sum(
            read_poses(root, shot=s.index).keypoints.size for s in ShotSegmentedReader(root).shots
        )


def read_skelshop(path: str, tracked: bool) -> int:
    with h5py.File(path, "r") as h5f:
        if tracked:
            return iterate_tracked(SkelshopShotSegmentedReader(h5f))
        return iterate_untracked(SkelshopUnsegmentedReader(h5f))


def read_bulk_h5py(path: str, tracked: bool = True) -> int:
    """``ds[()]`` of every dataset, all kept in memory; the number of bytes read."""
    with h5py.File(path, "r") as h5f:
        datasets: list[h5py.Dataset] = []
        h5f.visititems(lambda _, o: datasets.append(o) if isinstance(o, h5py.Dataset) else None)
        arrays = [ds[()] for ds in datasets]
    return sum(a.nbytes for a in arrays)


def read_bulk_zarr(path: str, tracked: bool = True) -> int:
    """``arr[...]`` of every array of a Zarr store with zarr-python (a reference)."""
    import zarr

    def load(group: Any) -> list[np.ndarray]:
        out = [a[...] for _, a in group.arrays()]
        for _, g in group.groups():
            out += load(g)
        return out

    return sum(a.nbytes for a in load(zarr.open_group(path, mode="r")))


def frame_structure(url: str, tracked: bool) -> list[Any]:
    """The pose ids of every frame (per shot if tracked), read once with skelstore."""
    with skelstore.open(url) as root:
        if tracked:
            return [[tuple(b.bundle) for b in shot] for shot in ShotSegmentedReader(root)]
        return [tuple(b.bundle) for b in UnsegmentedReader(root)]


def interface_floor(structure: list[Any], tracked: bool) -> int:
    """The reader interface's own cost with nothing to read or decode: per frame a
    dict and a bundle, per pose a pose object (the same row every time)."""
    mode = TRACKED_MODE if tracked else UNTRACKED_MODE
    row = np.zeros((LIMBS[mode], 3))
    cls = DumpReaderPoseBundle if tracked else UntrackedDumpReaderPoseBundle
    mk_bundle = partial(cls, cls=POSE_CLASSES[mode])
    if tracked:
        return iterate_tracked(
            (mk_bundle(dict.fromkeys(ids, row)) for ids in shot) for shot in structure
        )
    return iterate_untracked(mk_bundle(dict.fromkeys(ids, row)) for ids in structure)


def write_skelstore(
    url: str, frames: list[Any], tracked: bool, compression: str = "lossless", **open_kwargs: Any
) -> None:
    """What ``data.make_dump`` does, from pre-generated frames."""
    mode = TRACKED_MODE if tracked else UNTRACKED_MODE
    num_frames = sum(f is not SHOT_CHANGE for f in frames)
    with skelstore.open(url, "w", **open_kwargs) as root:
        add_fmt_metadata(root, "trackshots" if tracked else "unseg")
        add_metadata(root, "synthetic.mp4", num_frames, mode, LIMBS[mode])
        write_shots(
            root,
            LIMBS[mode],
            frames,
            writer_cls=ShotSegmentedWriter if tracked else UnsegmentedWriter,
            compression=compression,
        )


def write_skelshop(path: str, frames: list[Any], tracked: bool) -> None:
    mode = TRACKED_MODE if tracked else UNTRACKED_MODE
    with h5py.File(path, "w") as h5f:
        h5f.attrs.update(
            {
                "fmt_type": "trackshots" if tracked else "unseg",
                "fmt_ver": 1,
                "mode": mode,
                "limbs": LIMBS[mode],
            }
        )
        skelshop_write_shots(
            h5f,
            LIMBS[mode],
            frames,
            SkelshopShotSegmentedWriter if tracked else SkelshopUnsegmentedWriter,
            **SKELSHOP_LOSSLESS,
        )


class _ZarrAsH5:
    """Just enough of h5py's API over zarr-python for skelshop's writers, as a
    direct port of skelshop to Zarr would write: a zarr group or array per h5py one,
    the same chunks, Blosc zstd + bit-shuffle where skelshop asks for compression."""

    def __init__(self, group: Any) -> None:
        self.group = group
        self.attrs = group.attrs

    def create_group(self, path: str, track_order: bool = False) -> _ZarrAsH5:
        return _ZarrAsH5(self.group.create_group(path.strip("/")))

    def create_dataset(
        self,
        name,
        shape=None,
        *,
        data=None,
        dtype=None,
        maxshape=None,
        chunks=None,
        compression=None,
        **_ignored,
    ):
        from zarr.codecs import BloscCodec

        data = np.asarray(data, dtype=dtype) if data is not None else None
        shape = data.shape if data is not None else shape
        compressors = (
            BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")
            if compression is not None
            else None
        )
        arr = self.group.create_array(
            name,
            shape=shape,
            dtype=dtype,
            chunks=tuple(max(1, c) for c in chunks),
            compressors=compressors,
            fill_value=0,
        )
        if data is not None and data.size:
            arr[...] = data
        return _ZarrDatasetAsH5(arr)

    def __getitem__(self, name: str) -> Any:
        node = self.group[name]
        return _ZarrDatasetAsH5(node) if hasattr(node, "resize") else _ZarrAsH5(node)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.group, name)


class _ZarrDatasetAsH5:
    """h5py's ``Dataset.resize(n, axis=0)``, ``len`` and negative-index writes over a
    zarr array (skelshop's unsegmented writer grows every array per pose)."""

    def __init__(self, arr: Any) -> None:
        self.arr = arr
        self.attrs = arr.attrs

    def __len__(self) -> int:
        return self.arr.shape[0]

    def resize(self, size: int, axis: int = 0) -> None:
        self.arr.resize((size, *self.arr.shape[1:]))

    def __setitem__(self, sel: Any, value: Any) -> None:
        if isinstance(sel, slice) and sel.start is not None and sel.start < 0:
            sel = slice(len(self) + sel.start, sel.stop, sel.step)
        self.arr[sel] = value

    def __getitem__(self, sel: Any) -> Any:
        return self.arr[sel]


def write_skelshop_zarr(path: str, frames: list[Any], tracked: bool) -> None:
    """skelshop's writers, their h5py calls mapped onto zarr-python."""
    import zarr

    mode = TRACKED_MODE if tracked else UNTRACKED_MODE
    root = _ZarrAsH5(zarr.open_group(path, mode="w", zarr_format=3))
    root.attrs.update(
        {
            "fmt_type": "trackshots" if tracked else "unseg",
            "fmt_ver": 1,
            "mode": mode,
            "limbs": LIMBS[mode],
        }
    )
    skelshop_write_shots(
        root,
        LIMBS[mode],
        frames,
        SkelshopShotSegmentedWriter if tracked else SkelshopUnsegmentedWriter,
        **SKELSHOP_LOSSLESS,
    )


def remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def best_of(repeat: int, fn: Callable[[], Any], before: Callable[[], Any] | None = None):
    """Best wall time of ``repeat`` calls of ``fn`` (``before`` runs untimed first)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ================================================================ sections


def bench_writes(
    tmp: str,
    tracked: bool,
    frames: int,
    seed: int,
    people: float,
    repeat: int,
    baseline_repeat: int,
) -> dict[str, Any]:
    """Frames/s of each writer on a pre-generated frame list; leaves ``{kind}.h5``
    (skelstore's, the source of the reads) in ``tmp``."""
    kind = "tracked" if tracked else "untracked"
    log(f"generating {kind} frames ...")
    if tracked:
        fr = list(tracked_frames(frames, LIMBS[TRACKED_MODE], seed, people=people))
    else:
        fr = list(untracked_frames(frames, LIMBS[UNTRACKED_MODE], seed=seed))
    h5, zr, ss, ssz, raw = (
        os.path.join(tmp, f"{kind}{s}")
        for s in (".h5", ".zarr", "-skelshop.h5", "-skelshop.zarr", "-none.h5")
    )
    fps = {}
    # skelshop's unsegmented writer on Zarr resizes three zarr arrays per pose (tens
    # of frames/s): it writes the first UNSEG_PORT_FRAMES frames only; frames/s is
    # what is compared
    port_fr = fr if tracked else fr[:UNSEG_PORT_FRAMES]
    for name, path, fn, n_runs in (
        ("skelstore HDF5", h5, partial(write_skelstore, h5, fr, tracked), repeat),
        ("skelstore Zarr v3", zr, partial(write_skelstore, zr, fr, tracked, zarr_format=3), repeat),
        ("skelshop HDF5", ss, partial(write_skelshop, ss, fr, tracked), baseline_repeat),
        (
            "skelstore HDF5 uncompressed",
            raw,
            partial(write_skelstore, raw, fr, tracked, "none"),
            repeat,
        ),
        (
            "skelshop Zarr v3",
            ssz,
            partial(write_skelshop_zarr, ssz, port_fr, tracked),
            baseline_repeat,
        ),
    ):
        warm = os.path.join(tmp, "warm-up" + os.path.splitext(path)[1])
        fn.func(warm, fr[:100], *fn.args[2:], **fn.keywords)  # lazy imports, engine set-up
        remove(warm)
        log(f"write {kind} {name} ...")
        sec, _ = best_of(n_runs, fn, before=partial(remove, path))
        n = len(fn.args[1])
        fps[name] = n / sec
        log(f"  {sec:.2f} s, {n / sec:,.0f} frames/s ({n} frames)")
    # The re-implemented skelshop writers must store what skelstore stores.
    from skelstore.conversion import compare_dumps

    with skelstore.open(h5) as a, skelstore.open(ss) as b:
        diff = compare_dumps(a["timeline"], b["timeline"])
    if diff:
        raise SystemExit(f"skelshop writer re-implementation differs: {diff}")
    same = h5
    if not tracked:  # the port wrote a prefix: compare with skelstore's of it
        same = os.path.join(tmp, f"{kind}-prefix.h5")
        write_skelstore(same, port_fr, tracked)
    with skelstore.open(same) as a, skelstore.open(ssz) as c:
        diff = compare_dumps(a["timeline"], c["timeline"])
    if diff:
        raise SystemExit(f"skelshop writer's Zarr port differs: {diff}")
    for path in {zr, ss, ssz, raw, same} - {h5}:
        remove(path)
    return {
        "fps": fps,
        "detections": sum(len(f) for f in fr if f is not SHOT_CHANGE),
        "port_frames": len(port_fr),
    }


def bench_reads(
    tmp: str, tracked: bool, repeat: int, detections: int, read_repeat: int
) -> dict[str, float]:
    """Seconds of each reader over ``{kind}.h5`` and its Zarr v3 copy (made here)."""
    from skelstore.conversion import convert

    kind = "tracked" if tracked else "untracked"
    h5, zr = os.path.join(tmp, f"{kind}.h5"), os.path.join(tmp, f"{kind}.zarr")
    remove(zr)
    convert(h5, zr, zarr_format=3)
    poses: dict[str, int] = {}
    structure = frame_structure(h5, tracked)
    variants = {
        "interface floor": partial(interface_floor, structure, tracked),
        "bulk h5py": partial(read_bulk_h5py, h5),
        "bulk zarr": partial(read_bulk_zarr, zr),
        "skelstore HDF5": partial(read_skelstore, h5, tracked),
        "skelstore Zarr v3": partial(read_skelstore, zr, tracked),
        "read_poses HDF5": partial(read_dense, h5, tracked),
    }
    if tracked:  # untracked: the interface floor alone rules the target out
        variants["idealised h5py"] = partial(read_idealised, h5, tracked)
    # Interleaved rounds (each variant once per round, best of the rounds): a burst
    # of load on this shared machine then slows one round of every variant, not
    # every run of one variant.
    log(f"read {kind}: {read_repeat} interleaved rounds of {', '.join(variants)} ...")
    for fn in variants.values():
        fn()  # warm-up: imports, page cache
    res = dict.fromkeys(variants, float("inf"))
    cpu = dict.fromkeys(variants, float("inf"))  # CPU time of this process, all threads
    for _ in range(read_repeat):
        for name, fn in variants.items():
            t, c = time.perf_counter(), time.process_time()
            poses[name] = fn()
            res[name] = min(res[name], time.perf_counter() - t)
            cpu[name] = min(cpu[name], time.process_time() - c)
    # h5py reads in the calling thread only, so for these two CPU time is the time
    # the work took, without what other tenants of the machine took from it
    for name in ("skelstore HDF5", "bulk h5py", "idealised h5py"):
        res[f"cpu {name}"] = cpu.get(name, float("nan"))
    for name in variants:
        log(f"  {name}: {res[name]:.3f} s")
    log(f"read {kind} skelshop HDF5 ...")
    res["skelshop HDF5"], poses["skelshop HDF5"] = best_of(
        repeat, partial(read_skelshop, h5, tracked)
    )
    log(f"  {res['skelshop HDF5']:.2f} s")
    # Readers yield a pose for every frame of a track's range, so an untracked
    # dump yields (mostly empty) poses in frames without that detection.
    readers = {
        k: v for k, v in poses.items() if not k.startswith(("bulk", "read_poses", "idealised"))
    }
    if len(set(readers.values())) != 1 or (tracked and poses["skelshop HDF5"] != detections):
        raise SystemExit(
            f"{kind}: readers saw different pose counts {readers}, written {detections}"
        )
    if tracked:
        check_skelshop_reader(h5)
    res["poses"] = poses["skelstore HDF5"]
    res["detections"] = detections
    res["bytes"] = poses["bulk h5py"]
    return res


SECTION_CHILD = r"""
import json, sys
sys.path.insert(0, {here!r})
import readers
print("@@" + json.dumps(getattr(readers, {fn!r})(*json.loads({args!r}))))
"""


def in_child(fn: str, *args: Any) -> Any:
    """``fn(*args)`` of this module in a fresh process (its progress goes to stderr)."""
    code = SECTION_CHILD.format(here=HERE, fn=fn, args=json.dumps(args))
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, stdout=subprocess.PIPE, text=True
    )
    return json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("@@")][-1][2:])


def check_skelshop_reader(h5: str) -> None:
    """The re-implemented skelshop reader gives skelstore's keypoints (first shot)."""
    with h5py.File(h5, "r") as h5f, skelstore.open(h5) as root:
        a = next(iter(SkelshopShotSegmentedReader(h5f)))
        b = ShotSegmentedReader(root)[0]
        for x, y in zip(a, b, strict=True):
            xs, ys = list(x), list(y)
            assert [i for i, _ in xs] == [i for i, _ in ys]
            for (_, p), (_, q) in zip(xs, ys, strict=True):
                np.testing.assert_array_equal(p.keypoints, q.keypoints)


def bench_random(url: str, frames: int, calls: int, seed: int) -> dict[str, float]:
    """Seek with a fresh reader on the open store, then read that shot's frames."""
    rng = np.random.default_rng(seed)
    ns = rng.integers(0, frames, calls)
    times, locate, lengths, poses = [], [], [], []
    with skelstore.open(url) as root:
        for n in ns:
            t = time.perf_counter()
            shot = next(iter(ShotSegmentedReader(root).iter_from_frame(int(n))))
            t1 = time.perf_counter()
            k = 0
            for bundle in shot:
                for _pose_id, pose in bundle:
                    pose.keypoints  # noqa: B018
                    k += 1
            times.append(time.perf_counter() - t)
            poses.append(k)
            locate.append(t1 - t)
            lengths.append(shot.end_frame - shot.start_frame)
    tm, ln, nsf = np.array(times), np.array(lengths, float), ns.astype(float)
    q1, q4 = ns < frames / 4, ns >= 3 * frames / 4
    # time ~ a + b * frames + c * poses + d * n: d * frames is what position adds.
    x = np.column_stack([np.ones_like(nsf), ln, np.array(poses, float), nsf])
    coef = np.linalg.lstsq(x, tm, rcond=None)[0]
    return {
        "mean_ms": 1e3 * tm.mean(),
        "locate_ms": 1e3 * np.mean(locate),
        "us_per_frame": 1e6 * tm.sum() / ln.sum(),
        "corr_time": float(np.corrcoef(tm, nsf)[0, 1]),
        "corr_locate": float(np.corrcoef(locate, nsf)[0, 1]),
        "position_ms": 1e3 * coef[3] * frames,
        "q1_us_per_frame": 1e6 * tm[q1].sum() / ln[q1].sum() if q1.any() else float("nan"),
        "q4_us_per_frame": 1e6 * tm[q4].sum() / ln[q4].sum() if q4.any() else float("nan"),
    }


# Peak RSS is VmHWM of /proc/self/status (this process's own address space):
# ru_maxrss would not do, since Linux carries the parent's peak into a child
# across fork + exec and this parent holds the generated frames.
CHILD = r"""
import json, resource, sys, tracemalloc
sys.path.insert(0, {here!r})
import readers
def hwm_kb():
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
fn = getattr(readers, {fn!r})
rss0 = hwm_kb()
fn({url!r}, {tracked!r})
rss1 = hwm_kb()
tracemalloc.start()
fn({url!r}, {tracked!r})
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({{"rss_growth_kb": rss1 - rss0, "rss_kb": rss1, "tracemalloc_peak": peak}}))
"""


def memory_child(fn: str, url: str, tracked: bool) -> dict:
    code = CHILD.format(here=HERE, fn=fn, url=url, tracked=tracked)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


PROFILE_CHILD = r"""
import sys, threading, cProfile
profs = []
def hook(*_):  # first event in a new thread (zarr's event loop, its codec pool)
    sys.setprofile(None)
    p = cProfile.Profile()
    p.enable()
    profs.append(p)
threading.setprofile(hook)
sys.path.insert(0, {here!r})
import readers
fn = readers.profile_target({what!r}, {url!r}, {tracked!r}, {frames!r}, {people!r}, {seed!r})
fn()  # warm-up: lazy imports, engine set-up, page cache
for p in profs:
    p.clear()
main = cProfile.Profile()
main.enable()
fn()
main.disable()
print(readers.format_profile(main, profs, {title!r}))
"""


def profile_target(what: str, url: str, tracked: bool, frames: int, people: float, seed: int):
    """What the profiling child runs (``what``: ``read`` or ``write``)."""
    if what == "read":
        return partial(read_skelstore, url, tracked)
    fr = list(tracked_frames(frames, LIMBS[TRACKED_MODE], seed, people=people))
    open_kwargs = {"zarr_format": 3} if url.endswith(".zarr") else {}
    return partial(write_skelstore, url, fr, True, **open_kwargs)


def _stats_text(stats: pstats.Stats, key: str, top: int) -> str:
    buf = io.StringIO()
    stats.stream = buf  # type: ignore[attr-defined]
    stats.sort_stats(key).print_stats(top)
    return "\n".join(
        line
        for line in buf.getvalue().splitlines()
        if line.strip() and not line.lstrip().startswith(("Ordered by", "List reduced"))
    )


def format_profile(
    main: cProfile.Profile, others: list[cProfile.Profile], title: str, top: int = 25
) -> str:
    stats = pstats.Stats(main).strip_dirs()
    parts = [
        f"main thread, top {top} by cumulative time:",
        _stats_text(stats, "cumulative", top),
        "main thread, top 12 by own time:",
        _stats_text(stats, "tottime", 12),
    ]
    if others:
        other = pstats.Stats(others[0])
        for p in others[1:]:
            other.add(p)
        idle = (
            "'get' of '_queue.SimpleQueue'",
            "'poll' of 'select.epoll'",
            "'acquire' of '_thread.lock'",
        )
        for key in [k for k in other.stats if any(i in k[2] for i in idle)]:
            del other.stats[key]  # type: ignore[attr-defined]
        other.total_tt = sum(v[2] for v in other.stats.values())  # type: ignore[attr-defined]
        parts += [
            f"other threads ({len(others)}: zarr's event loop and codec pool), top 15 "
            "by own time, idle waits (queue get, epoll, lock acquire) left out:",
            _stats_text(other.strip_dirs(), "tottime", 15),
        ]
    body = "\n".join(parts)
    return f"### Profile: {title}\n\n```\n{body}\n```"


def profile(
    what: str,
    url: str,
    tracked: bool,
    title: str,
    frames: int = 0,
    people: float = 0.0,
    seed: int = 0,
) -> str:
    """cProfile one skelstore read or write (after a warm-up run) in a fresh child,
    every thread included."""
    code = PROFILE_CHILD.format(
        here=HERE,
        what=what,
        url=url,
        tracked=tracked,
        frames=frames,
        people=people,
        seed=seed,
        title=title,
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return out.stdout.strip()


# ================================================================ report


def ok(value: float, target: float, at_most: bool = True) -> str:
    good = value <= target if at_most else value >= target
    return f"{value:.2f}{'' if good else ' (MISS)'}"


def tables(args: argparse.Namespace, writes: dict, reads: dict, rnd: dict, mem: list) -> str:
    lines = [
        f"Tracked: {args.frames_tracked} frames {TRACKED_MODE}, "
        f"{reads[True]['detections'] / args.frames_tracked:.2f} poses/frame; untracked: "
        f"{args.frames_untracked} frames {UNTRACKED_MODE}, "
        f"{reads[False]['detections'] / args.frames_untracked:.2f} detections/frame "
        f"(0-4 slots); lossless; best of {args.repeat} (reads other than skelshop's: best "
        f"of {args.read_repeat} interleaved rounds). Untracked readers yield a pose "
        "for every frame of a slot's range (empty where that slot has no detection), "
        "so they yield more poses than detections.",
        "",
        "**Read** every pose of every frame (seconds; ratios with targets). *Interface "
        "floor*: the same loop over bundles built from one in-memory row (a dict and a "
        "bundle per frame, a pose object per pose), nothing read or decoded; "
        "*bulk*: every array read whole with h5py (zarr-python for *bulk zarr*); "
        "*read_poses*: the dense API (`skelstore.dense.read_poses`: the whole "
        "untracked dump as one array; the tracked one shot by shot); *idealised*: the "
        "least a reader with skelshop's API over h5py has to do (`read_idealised`: h5py's "
        "low-level calls, whole tracks, the same float64 decode, bundles and poses; no "
        "checks, no storage interface), a lower bound for the reader. Times are wall "
        "clock; *same, CPU time* is the HDF5 ratio in CPU time (both read in one "
        "thread), which time taken by other tenants of a shared machine does not "
        "inflate.",
        "",
        "| dump | poses yielded | MB decompressed | interface floor | bulk h5py | bulk zarr "
        "| skelstore HDF5 | skelstore Zarr v3 | skelshop HDF5 | read_poses HDF5 "
        "| HDF5 / bulk (≤ 1.5) | same, CPU time | idealised / bulk, CPU time "
        "| (bulk + floor) / bulk | read_poses / bulk "
        "| Zarr / HDF5 (≤ 1.5) | bulk zarr / bulk h5py | skelshop / skelstore |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tracked, label in (
        (True, "tracked, ShotSegmentedReader"),
        (False, "untracked, UnsegmentedReader"),
    ):
        r = reads[tracked]
        h5, zr = r["skelstore HDF5"], r["skelstore Zarr v3"]
        bulk, floor = r["bulk h5py"], r["interface floor"]
        lines.append(
            f"| {label} | {r['poses']:,} | {r['bytes'] / 1e6:.1f} | {floor:.3f} | {bulk:.3f} "
            f"| {r['bulk zarr']:.3f} | {h5:.3f} | {zr:.3f} | {r['skelshop HDF5']:.3f} "
            f"| {r['read_poses HDF5']:.3f} | {ok(h5 / bulk, 1.5)} "
            f"| {r['cpu skelstore HDF5'] / r['cpu bulk h5py']:.2f} "
            f"| {r['cpu idealised h5py'] / r['cpu bulk h5py']:.2f} ".replace("nan", "—")
            + f"| {(bulk + floor) / bulk:.2f} "
            f"| {r['read_poses HDF5'] / bulk:.2f} | {ok(zr / h5, 1.5)} "
            f"| {r['bulk zarr'] / bulk:.2f} | {r['skelshop HDF5'] / h5:.1f}x |"
        )
    lines += [
        "",
        f"**Write** from a pre-generated frame list (frames/s; ratio = skelstore / "
        f"skelshop; skelshop's writers best of {args.baseline_repeat or args.repeat}). "
        "*skelshop Zarr v3*: skelshop's writers with their h5py calls mapped onto "
        "zarr-python (`_ZarrAsH5`: same chunks and codec; the unsegmented one, which "
        "resizes three arrays per pose, on the first "
        f"{min(UNSEG_PORT_FRAMES, args.frames_untracked):,} frames only); *Zarr ratio* "
        "compares skelstore on Zarr with it (same storage: the target's baseline), "
        "*Zarr / skelshop HDF5* with skelshop on HDF5. skelstore writes HDF5 chunks "
        "compressed on up to 4 threads (`SKELSTORE_THREADS`; 2 CPUs here).",
        "",
        "| writer | skelstore HDF5 | skelstore Zarr v3 | skelshop HDF5 | skelshop Zarr v3 "
        "| HDF5 ratio | Zarr ratio | Zarr / skelshop HDF5 | target "
        "| skelstore HDF5 uncompressed (ref.) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tracked, label, target in (
        (True, "ShotSegmentedWriter (tracked)", 3),
        (False, "UnsegmentedWriter (untracked)", 10),
    ):
        w = writes[tracked]
        a, b, c = w["skelstore HDF5"], w["skelstore Zarr v3"], w["skelshop HDF5"]
        d = w.get("skelshop Zarr v3")
        port, zr_ratio = ("—", "—") if d is None else (f"{d:,.0f}", f"{ok(b / d, target, False)}x")
        lines.append(
            f"| {label} | {a:,.0f} | {b:,.0f} | {c:,.0f} | {port} | {ok(a / c, target, False)}x "
            f"| {zr_ratio} | {b / c:.2f}x | ≥ {target}x "
            f"| {w['skelstore HDF5 uncompressed']:,.0f} |"
        )
    lines += [
        "",
        f"**Random access**: `ShotSegmentedReader(root).iter_from_frame(n)` (a fresh "
        f"reader on the open store: *locate*), then every frame of the first shot it "
        f"yields, at {args.random_calls} seeded random n over the tracked dump. Shots are "
        "100-2000 frames, so a call's time follows its shot's size; *position effect* "
        "is what n adds from the first to the last frame of the dump with the shot's "
        "size held fixed (least squares of time on 1, shot frames, shot poses, n). With "
        "few shots (small runs) the correlations mean little.",
        "",
        "| store | mean ms/call | mean locate ms | µs/frame | corr(time, n) "
        "| corr(locate, n) | position effect (ms) | µs/frame, n in 1st quarter "
        "| µs/frame, n in last quarter |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rnd.items():
        lines.append(
            f"| {name} | {r['mean_ms']:.2f} | {r['locate_ms']:.2f} | {r['us_per_frame']:.1f} "
            f"| {r['corr_time']:+.2f} | {r['corr_locate']:+.2f} | {r['position_ms']:+.2f} "
            f"| {r['q1_us_per_frame']:.1f} | {r['q4_us_per_frame']:.1f} |"
        )
    lines += [
        "",
        "**Memory** of one full iteration, each in a fresh child process: growth of "
        "peak RSS (VmHWM, Linux) from after imports to after the iteration, and the "
        "`tracemalloc` peak (Python and numpy allocations; not HDF5's C heap) of a "
        "second iteration. *bulk h5py* holds every array of the dump at once:",
        "",
        "| read | RSS growth (MB) | child peak RSS (MB) | tracemalloc peak (MB) |",
        "|---|---:|---:|---:|",
    ]
    for label, m in mem:
        lines.append(
            f"| {label} | {m['rss_growth_kb'] / 1024:.1f} | {m['rss_kb'] / 1024:.0f} "
            f"| {m['tracemalloc_peak'] / 2**20:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--frames-tracked", type=int, default=30_000)
    ap.add_argument("--frames-untracked", type=int, default=90_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N timed runs")
    ap.add_argument(
        "--read-repeat",
        type=int,
        default=9,
        help="interleaved rounds of the fast reads (all but skelshop's reader)",
    )
    ap.add_argument(
        "--baseline-repeat",
        type=int,
        default=1,
        help="runs of skelshop's writers (its UnsegmentedWriter takes over a "
        "minute on 90k frames); 0 = --repeat",
    )
    ap.add_argument("--random-calls", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--people",
        type=float,
        default=3.0,
        help="tracked_frames' people: tracks per shot (3 gives ~1 pose/frame)",
    )
    ap.add_argument("--markdown", help="also write the tables as markdown to this file")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="print cProfile top functions of skelstore's reads and write",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    t_start = time.perf_counter()

    tmp = tempfile.mkdtemp(prefix="skelstore-readers-")
    try:
        writes, reads = {}, {}
        for tracked, frames in ((True, args.frames_tracked), (False, args.frames_untracked)):
            w = in_child(
                "bench_writes",
                tmp,
                tracked,
                frames,
                args.seed,
                args.people,
                args.repeat,
                args.baseline_repeat or args.repeat,
            )
            writes[tracked] = w["fps"]
            reads[tracked] = in_child(
                "bench_reads", tmp, tracked, args.repeat, w["detections"], args.read_repeat
            )
        tracked_h5, untracked_h5 = (os.path.join(tmp, f"{k}.h5") for k in ("tracked", "untracked"))
        zarrs = {
            t: os.path.join(tmp, f"{k}.zarr") for t, k in ((True, "tracked"), (False, "untracked"))
        }
        log("random access ...")
        rnd = {
            name: in_child(
                "bench_random", url, args.frames_tracked, args.random_calls, args.seed + 1
            )
            for name, url in (("HDF5", tracked_h5), ("Zarr v3", zarrs[True]))
        }
        log("memory ...")
        mem = []
        for label, fn, url, tracked in (
            ("untracked, skelstore HDF5", "read_skelstore", untracked_h5, False),
            ("untracked, skelstore Zarr v3", "read_skelstore", zarrs[False], False),
            ("untracked, bulk h5py", "read_bulk_h5py", untracked_h5, False),
            ("tracked, skelstore HDF5", "read_skelstore", tracked_h5, True),
            ("tracked, skelstore Zarr v3", "read_skelstore", zarrs[True], True),
            ("tracked, bulk h5py", "read_bulk_h5py", tracked_h5, True),
        ):
            mem.append((label, memory_child(fn, url, tracked)))
        profiles = []
        if args.profile:
            log("profiles ...")
            profiles = [
                profile(
                    "read", tracked_h5, True, "skelstore HDF5 tracked read (ShotSegmentedReader)"
                ),
                profile(
                    "read",
                    zarrs[True],
                    True,
                    "skelstore Zarr v3 tracked read (ShotSegmentedReader)",
                ),
                profile(
                    "read", untracked_h5, False, "skelstore HDF5 untracked read (UnsegmentedReader)"
                ),
            ] + [
                profile(
                    "write",
                    os.path.join(tmp, f"profiled{ext}"),
                    True,
                    f"skelstore {name} tracked write (ShotSegmentedWriter)",
                    args.frames_tracked,
                    args.people,
                    args.seed,
                )
                for ext, name in ((".h5", "HDF5"), (".zarr", "Zarr v3"))
            ]
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    text = tables(args, writes, reads, rnd, mem)
    machine = (
        f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, h5py {h5py.__version__}, "
        f"numpy {np.__version__}"
    )
    with contextlib.suppress(Exception):
        import zarr

        machine += f", zarr {zarr.__version__}"
    with contextlib.suppress(Exception):
        git = ["git", "-C", os.path.dirname(HERE)]
        rev = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "skelstore", "backends"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        machine += f"; skelstore at {rev}{' + uncommitted changes' if dirty else ''}"
    command = "python benchmarks/readers.py " + " ".join(sys.argv[1:])
    took = time.perf_counter() - t_start
    print(f"`{command}` ({took:.0f} s); {machine}\n\n{text}")
    for p in profiles:
        print("\n" + p)
    log(f"total {took:.0f} s")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(
                f"# Readers and writers\n\n`{command}` ({took:.0f} s in all)\n\n"
                f"Machine: {machine}\n\n{text}\n"
            )
            for p in profiles:
                f.write("\n" + p + "\n")


if __name__ == "__main__":
    main()
