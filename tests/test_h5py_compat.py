"""Files written by skelstore have exactly skelshop's HDF5 layout, seen through plain
h5py: dtypes, chunking, filters per compression preset and root attributes; and
the Zarr tree mirrors the HDF5 one.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest
from dumputil import GOLDEN_DIR, make_target

import skelstore
from skelstore.compression import PRESETS, Encoding
from skelstore.dump import SHOT_CHANGE, add_fmt_metadata, add_metadata, write_shots
from skelstore.io import EmptyShot, ShotSegmentedReader, UnsegmentedReader, UnsegmentedWriter
from skelstore.pose import LIMBS, DumpReaderPoseBundle

BLOSC = 32001
SCALEOFFSET = 6
ZSTD = 5
BITSHUFFLE = 2

MIN_CHUNK = 2**14 // 14
MAX_CHUNK = 2**19 // 14

SKELSHOP_LOSSLESS = {
    "compression": hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE)
}
SKELSHOP_LOSSY = {"scaleoffset": 2}


def clamp_chunk(limbs: int) -> int:
    return min(max(limbs * 15, MIN_CHUNK), MAX_CHUNK)


def full_pose(limbs: int, seed: int, visible: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pose = np.empty((limbs, 3), np.float32)
    pose[:, :2] = rng.uniform(0, 1000, (limbs, 2))
    pose[:, 2] = rng.uniform(0.1, 1, limbs)
    if visible is not None:
        pose[visible:, 2] = 0
    return pose


def standard_tracked(root, mode: str = "BODY_25", **create_kwargs) -> None:
    """shot0: pose0 on 70 frames (big), pose1 on one frame with 10 keypoints (small);
    shot1: pose2 on 5 frames."""
    limbs = LIMBS[mode]
    frames = []
    for i in range(70):
        bundle = [(0, full_pose(limbs, i))]
        if i == 30:
            bundle.append((1, full_pose(limbs, 1000, visible=10)))
        frames.append(bundle)
    frames.append(SHOT_CHANGE)
    frames.extend([(2, full_pose(limbs, 2000 + i))] for i in range(5))
    add_fmt_metadata(root, "trackshots")
    add_metadata(root, "/data/videos/video.mp4", 75, mode, limbs)
    write_shots(root, limbs, frames, **create_kwargs)


def standard_unseg(root, mode: str = "BODY_25", **create_kwargs) -> None:
    """slot 0 on 30 frames, slot 1 once with 3 keypoints."""
    limbs = LIMBS[mode]
    frames = []
    for i in range(30):
        bundle = [(0, full_pose(limbs, i))]
        if i == 10:
            bundle.append((1, full_pose(limbs, 99, visible=3)))
        frames.append(bundle)
    add_fmt_metadata(root, "unseg")
    add_metadata(root, "video.mp4", 30, mode, limbs)
    write_shots(root, limbs, frames, writer_cls=UnsegmentedWriter, block_frames=7, **create_kwargs)


def filters(ds: h5py.Dataset) -> list[tuple]:
    plist = ds.id.get_create_plist()
    return [plist.get_filter(i) for i in range(plist.get_nfilters())]


def filter_ids(ds: h5py.Dataset) -> list[int]:
    return [f[0] for f in filters(ds)]


def blosc_values(ds: h5py.Dataset) -> tuple[int, int, int]:
    """(clevel, shuffle, compressor) of the dataset's Blosc filter."""
    (values,) = [f[2] for f in filters(ds) if f[0] == BLOSC]
    return values[4], values[5], values[6]


def write_h5(tmp_path: Path, writer, name: str = "x.h5", **kwargs) -> Path:
    path = tmp_path / name
    with skelstore.open(path, "w") as root:
        writer(root, **kwargs)
    return path


# ------------------------------------------------------------ dtypes and chunks


@pytest.mark.parametrize("mode", ["BODY_25", "BODY_25_ALL", "FACE"])
def test_shot_written_dtypes_and_chunks(tmp_path, mode):
    limbs = LIMBS[mode]
    chunk = clamp_chunk(limbs)
    path = write_h5(tmp_path, standard_tracked, mode=mode)
    with h5py.File(path, "r") as f:
        assert list(f["timeline"]) == ["shot0", "shot1"]
        assert sorted(f["timeline/shot0"]) == ["pose0", "pose1"]
        for track, nnz, rows in (
            ("shot0/pose0", 70 * limbs, 70),
            ("shot0/pose1", 10, 1),
            ("shot1/pose2", 5 * limbs, 5),
        ):
            grp = f[f"timeline/{track}"]
            assert sorted(grp) == ["data", "indices", "indptr"]
            data, indices, indptr = grp["data"], grp["indices"], grp["indptr"]
            assert (data.dtype, data.shape) == (np.dtype("<f4"), (nnz, 3))
            assert (indices.dtype, indices.shape) == (np.dtype("<u2"), (nnz,))
            assert (indptr.dtype, indptr.shape) == (np.dtype("<u4"), (rows + 1,))
            assert data.chunks == (min(chunk, nnz), 3)
            assert indices.chunks == (min(chunk, nnz),)
            assert indptr.chunks == (min(1024, rows + 1),)
            # written in one go: fixed size, like skelshop's create_csr
            assert data.maxshape == data.shape
            assert indices.maxshape == indices.shape
            assert indptr.maxshape == indptr.shape
            assert indptr[0] == 0 and indptr[-1] == nnz
        assert dict(f["timeline/shot0/pose1"].attrs) == {"start_frame": 30, "end_frame": 31}
        assert dict(f["timeline/shot1"].attrs) == {"start_frame": 70, "end_frame": 75}


def test_long_track_chunks_indptr_at_1024(tmp_path):
    pose = full_pose(25, 0, visible=1)
    path = tmp_path / "long.h5"
    with skelstore.open(path, "w") as root:
        write_shots(root, 25, [[(0, pose)]] * 1100)
    with h5py.File(path, "r") as f:
        grp = f["timeline/shot0/pose0"]
        assert grp["indptr"].shape == (1101,)
        assert grp["indptr"].chunks == (1024,)
        assert grp["data"].chunks == (1100, 3)
        np.testing.assert_array_equal(grp["indptr"][:], np.arange(1101))
        np.testing.assert_array_equal(grp["indices"][:], np.zeros(1100))


@pytest.mark.parametrize("mode", ["BODY_25", "BODY_25_ALL"])
def test_unseg_tracks_are_growable_with_full_chunks(tmp_path, mode):
    limbs = LIMBS[mode]
    chunk = clamp_chunk(limbs)
    path = write_h5(tmp_path, standard_unseg, mode=mode)
    with h5py.File(path, "r") as f:
        tl = f["timeline"]
        assert dict(tl.attrs) == {"start_frame": 0, "end_frame": 30}
        assert sorted(tl) == ["pose0", "pose1"]
        for name, nnz, rows in (("pose0", 30 * limbs, 30), ("pose1", 3, 1)):
            data, indices, indptr = (tl[name][k] for k in ("data", "indices", "indptr"))
            assert (data.dtype, data.shape) == (np.float32, (nnz, 3))
            assert (indices.dtype, indices.shape) == (np.uint16, (nnz,))
            assert (indptr.dtype, indptr.shape) == (np.uint32, (rows + 1,))
            assert data.maxshape == (None, 3)
            assert indices.maxshape == indptr.maxshape == (None,)
            assert data.chunks == (chunk, 3)
            assert indices.chunks == (chunk,)
            assert indptr.chunks == (1024,)
        assert dict(tl["pose1"].attrs) == {"start_frame": 10, "end_frame": 11}


# ------------------------------------------------------------ filters


@pytest.mark.parametrize("preset", list(PRESETS))
def test_filters_per_preset_shot_written(tmp_path, preset):
    path = write_h5(tmp_path, standard_tracked, compression=preset)
    p = PRESETS[preset]
    level = p.data.blosc_level
    lossy = p.data.scale_digits is not None
    with h5py.File(path, "r") as f:
        big = f["timeline/shot0/pose0"]
        small = f["timeline/shot0/pose1"]  # 10 stored keypoints: < 24
        # indptr is never compressed
        for grp in (big, small, f["timeline/shot1/pose2"]):
            assert filters(grp["indptr"]) == []
        if level is None:
            assert filter_ids(big["data"]) == []
            assert filter_ids(big["indices"]) == []
        else:
            assert filter_ids(big["data"]) == ([SCALEOFFSET, BLOSC] if lossy else [BLOSC])
            assert filter_ids(big["indices"]) == [BLOSC]
            assert blosc_values(big["data"]) == (level, BITSHUFFLE, ZSTD)
            assert blosc_values(big["indices"]) == (level, BITSHUFFLE, ZSTD)
            # the small track drops Blosc but keeps scale-offset
            assert filter_ids(small["data"]) == ([SCALEOFFSET] if lossy else [])
            assert filter_ids(small["indices"]) == []
        assert big["data"].scaleoffset == (2 if lossy else None)
        assert small["data"].scaleoffset == (2 if lossy else None)
        assert big["indices"].scaleoffset is None


@pytest.mark.parametrize("preset", ["lossless", "lossless9", "lossy9"])
def test_filters_per_preset_growable(tmp_path, preset):
    """Growable (unseg) tracks keep Blosc whatever their final size, as in skelshop."""
    path = write_h5(tmp_path, standard_unseg, compression=preset)
    p = PRESETS[preset]
    lossy = p.data.scale_digits is not None
    with h5py.File(path, "r") as f:
        for name in ("pose0", "pose1"):
            grp = f[f"timeline/{name}"]
            assert filter_ids(grp["data"]) == ([SCALEOFFSET, BLOSC] if lossy else [BLOSC])
            assert blosc_values(grp["data"]) == (p.data.blosc_level, BITSHUFFLE, ZSTD)
            assert filter_ids(grp["indices"]) == [BLOSC]
            assert filters(grp["indptr"]) == []


def test_skelstore_reports_encodings(tmp_path):
    path = write_h5(tmp_path, standard_tracked, compression="lossy9")
    with skelstore.open(path) as root:
        assert root["timeline/shot0/pose0/data"].encoding == Encoding(9, 2)
        assert root["timeline/shot0/pose0/indices"].encoding == Encoding(9)
        assert root["timeline/shot0/pose0/indptr"].encoding == Encoding()
        assert root["timeline/shot0/pose1/data"].encoding == Encoding(None, 2)
        assert root["timeline/shot0/pose1/indices"].encoding == Encoding()


def rewrite_golden(src_path: Path, dst_path: Path, compression: str) -> None:
    """Read a golden dump with the readers and write it again with the writers."""
    with skelstore.open(src_path) as src, skelstore.open(dst_path, "w") as dst:
        attrs = dict(src.attrs)
        limbs = attrs["limbs"]
        add_fmt_metadata(dst, attrs["fmt_type"])
        add_metadata(dst, attrs["video"], attrs["num_frames"], attrs["mode"], limbs)
        if attrs["fmt_type"] == "unseg":
            reader = UnsegmentedReader(src, bundle_cls=DumpReaderPoseBundle)
            write_shots(
                dst,
                limbs,
                (list(b) for b in reader),
                writer_cls=UnsegmentedWriter,
                start_frame=reader.shot_reader.start_frame,
                compression=compression,
            )
            return
        shots = [s for s in ShotSegmentedReader(src) if not isinstance(s, EmptyShot)]

        def frames():
            for i, shot in enumerate(shots):
                if i:
                    yield SHOT_CHANGE
                yield from (list(b) for b in shot)

        write_shots(dst, limbs, frames(), start_frame=shots[0].start_frame, compression=compression)


def datasets(f: h5py.File) -> dict[str, h5py.Dataset]:
    out = {}

    def visit(name: str, obj) -> None:  # returning non-None would stop visititems
        if isinstance(obj, h5py.Dataset):
            out[name] = obj

    f.visititems(visit)
    return out


@pytest.mark.parametrize(
    ("name", "preset"),
    [
        ("trackshots_lossless.h5", "lossless"),
        ("trackshots_lossy.h5", "lossy"),
        ("trackshots_body25all.h5", "none"),
        ("trackshots_offset_face.h5", "none"),
        ("unseg_body25.h5", "none"),
    ],
)
def test_rewrite_has_golden_dataset_properties(tmp_path, name, preset):
    """Every dataset of a skelstore re-write of a golden dump has the golden dataset's
    dtype, shape, maxshape, chunks and filter pipeline (ids, flags, parameters)."""
    out = tmp_path / name
    rewrite_golden(GOLDEN_DIR / name, out, preset)
    with h5py.File(GOLDEN_DIR / name, "r") as gold, h5py.File(out, "r") as mine:
        gold_ds, mine_ds = datasets(gold), datasets(mine)
        assert sorted(gold_ds) == sorted(mine_ds)
        assert len(gold_ds) >= 6
        for path, g in gold_ds.items():
            m = mine_ds[path]
            assert m.dtype == g.dtype, path
            assert m.shape == g.shape, path
            assert m.maxshape == g.maxshape, path
            assert m.chunks == g.chunks, path
            assert filters(m) == filters(g), path
            assert m.compression_opts == g.compression_opts, path
            assert m.scaleoffset == g.scaleoffset, path
            np.testing.assert_array_equal(m[()].shape, g[()].shape)
            if g.dtype != np.float32 or preset == "none":
                np.testing.assert_array_equal(m[()], g[()], err_msg=path)
        for grp in ("timeline", *[f"timeline/{k}" for k in gold["timeline"]]):
            assert dict(mine[grp].attrs) == dict(gold[grp].attrs), grp


def test_track_compared_with_golden_lossless(tmp_path):
    """The brief's spot check, on one named track: shot4/pose9 of the lossless file."""
    out = tmp_path / "lossless.h5"
    rewrite_golden(GOLDEN_DIR / "trackshots_lossless.h5", out, "lossless")
    with h5py.File(GOLDEN_DIR / "trackshots_lossless.h5", "r") as g, h5py.File(out, "r") as m:
        for arr in ("data", "indices", "indptr"):
            gd, md = g[f"timeline/shot4/pose9/{arr}"], m[f"timeline/shot4/pose9/{arr}"]
            assert (md.chunks, md.dtype, md.compression_opts) == (
                gd.chunks,
                gd.dtype,
                gd.compression_opts,
            )
            assert filters(md) == filters(gd)
        assert filter_ids(m["timeline/shot4/pose9/data"]) == [BLOSC]


# ------------------------------------------------------------ root attributes


def test_root_attrs_after_metadata(tmp_path):
    path = write_h5(tmp_path, standard_tracked)
    gold_path = GOLDEN_DIR / "trackshots_body25all.h5"
    with h5py.File(path, "r") as f, h5py.File(gold_path, "r") as gold:
        attrs = dict(f.attrs)
        assert attrs["fmt_type"] == "trackshots"
        assert attrs["fmt_ver"] == 1
        assert attrs["mode"] == "BODY_25"
        assert attrs["limbs"] == 25
        assert attrs["num_frames"] == 75
        assert attrs["video"] == "video.mp4"
        assert attrs["legacy_skels"] in (True, False)
        assert attrs["skeldump_ver"].startswith("trackshots=")
        # the same keys with the same HDF5 types as skelshop's own files
        assert set(gold.attrs) <= set(f.attrs)
        for key in gold.attrs:
            assert f.attrs.get_id(key).dtype == gold.attrs.get_id(key).dtype, key
            assert f.attrs.get_id(key).shape == gold.attrs.get_id(key).shape, key
            assert type(f.attrs[key]) is type(gold.attrs[key]), key
        for key in ("start_frame", "end_frame"):
            assert (
                f["timeline/shot0"].attrs.get_id(key).dtype
                == gold["timeline/shot0"].attrs.get_id(key).dtype
            )
            assert (
                f["timeline/shot0/pose0"].attrs.get_id(key).dtype
                == gold["timeline/shot0/pose0"].attrs.get_id(key).dtype
            )


def test_fmt_metadata_prepends_version(tmp_path):
    path = tmp_path / "v.h5"
    with skelstore.open(path, "w") as root:
        add_fmt_metadata(root, "trackshots")
        add_fmt_metadata(root, "unseg")
        with pytest.raises(skelstore.FormatError):
            add_fmt_metadata(root, "segmented")
    with h5py.File(path, "r") as f:
        assert f.attrs["fmt_type"] == "unseg"
        first, second = f.attrs["skeldump_ver"].split(";")
        assert first.startswith("unseg=") and second.startswith("trackshots=")


def test_metadata_on_raw_h5py_file(tmp_path):
    """The dump helpers also take a plain h5py.File, as in skelshop."""
    path = tmp_path / "raw.h5"
    with h5py.File(path, "w") as f:
        add_fmt_metadata(f, "unseg")
        add_metadata(f, "dir/clip.mkv", 12, "FACE", 70)
    with h5py.File(path, "r") as f:
        assert (f.attrs["fmt_type"], f.attrs["video"], f.attrs["num_frames"]) == (
            "unseg",
            "clip.mkv",
            12,
        )
        assert (f.attrs["mode"], f.attrs["limbs"]) == ("FACE", 70)


# ------------------------------------------------------------ skelshop's raw kwargs


def test_skelshop_kwargs_equal_lossy_preset_on_hdf5(tmp_path):
    a = write_h5(tmp_path, standard_tracked, "preset.h5", compression="lossy")
    b = write_h5(
        tmp_path,
        standard_tracked,
        "kwargs.h5",
        lossless_kwargs=SKELSHOP_LOSSLESS,
        lossy_kwargs=SKELSHOP_LOSSY,
    )
    c = write_h5(tmp_path, standard_unseg, "preset_u.h5", compression="lossy")
    d = write_h5(
        tmp_path,
        standard_unseg,
        "kwargs_u.h5",
        lossless_kwargs=SKELSHOP_LOSSLESS,
        lossy_kwargs=SKELSHOP_LOSSY,
    )
    for x, y in ((a, b), (c, d)):
        with h5py.File(x, "r") as fx, h5py.File(y, "r") as fy:
            dx, dy = datasets(fx), datasets(fy)
            assert sorted(dx) == sorted(dy)
            for path in dx:
                assert filters(dx[path]) == filters(dy[path]), path
                assert dx[path].chunks == dy[path].chunks, path
                np.testing.assert_array_equal(dx[path][()], dy[path][()])
            assert any(SCALEOFFSET in filter_ids(ds) for ds in dx.values())


@pytest.mark.parametrize("kind", ["zarr3", "zarr2"])
def test_skelshop_kwargs_on_zarr_translate_or_refuse(tmp_path, kind):
    """h5py filter settings on the Zarr engine: translated to the lossy preset's
    codecs, or refused with EngineError; nothing else."""
    url_preset, kw = make_target(kind, tmp_path)
    with skelstore.open(url_preset, "w", layout="skelshop", **kw) as root:
        standard_tracked(root, compression="lossy")
    url, kw = make_target(kind, tmp_path)
    try:
        with skelstore.open(url, "w", layout="skelshop", **kw) as root:
            standard_tracked(root, lossless_kwargs=SKELSHOP_LOSSLESS, lossy_kwargs=SKELSHOP_LOSSY)
    except skelstore.EngineError as exc:
        assert isinstance(exc, skelstore.SkelstoreError)
        assert "compression" in str(exc) or "scaleoffset" in str(exc) or "h5py" in str(exc)
        return
    with skelstore.open(url) as got, skelstore.open(url_preset) as want:
        expect = {
            "shot0/pose0/data": Encoding(5, 2),
            "shot0/pose0/indices": Encoding(5),
            "shot0/pose0/indptr": Encoding(),
            "shot0/pose1/data": Encoding(None, 2),
            "shot0/pose1/indices": Encoding(),
            "shot1/pose2/data": Encoding(5, 2),
        }
        for path, enc in expect.items():
            assert got[f"timeline/{path}"].encoding == enc, path
            assert want[f"timeline/{path}"].encoding == enc, path
        for path in expect:
            g, w = got[f"timeline/{path}"].read(), want[f"timeline/{path}"].read()
            np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------ Zarr mirrors HDF5


def walk(group, prefix: str = "") -> dict[str, tuple]:
    """``{path: description}`` of every node under a skelstore group."""
    out: dict[str, tuple] = {prefix or "/": ("group", dict(group.attrs))}
    for name, child in group.items():
        path = f"{prefix}/{name}"
        if isinstance(child, skelstore.Group):
            out.update(walk(child, path))
        else:
            out[path] = ("array", child.dtype, child.shape, dict(child.attrs))
    return out


@pytest.mark.parametrize("kind", ["zarr3", "zarr2", "zarrzip"])
@pytest.mark.parametrize("writer", [standard_tracked, standard_unseg])
def test_zarr_tree_mirrors_hdf5(tmp_path, kind, writer):
    """In skelshop's layout (asked for: Zarr's default is packed)."""
    h5 = write_h5(tmp_path, writer, compression="lossless")
    url, kw = make_target(kind, tmp_path)
    with skelstore.open(url, "w", layout="skelshop", **kw) as root:
        writer(root, compression="lossless")
    with skelstore.open(h5) as a, skelstore.open(url) as b:
        assert a.engine_name == "hdf5" and b.engine_name == "zarr"
        ta, tb = walk(a), walk(b)
        assert list(ta) == list(tb)
        for path in ta:
            assert ta[path] == tb[path], path
            if ta[path][0] == "array":
                np.testing.assert_array_equal(a[path].read(), b[path].read())
                assert b[path].read().dtype == a[path].dtype
        assert {p for p, d in ta.items() if d[0] == "array"}
        if kind != "zarrzip":
            import zarr

            z = zarr.open_group(url, mode="r")
            assert z.metadata.zarr_format == kw["zarr_format"]
            assert z.attrs["fmt_type"] == a.attrs["fmt_type"]
            some = next(p for p, d in ta.items() if d[0] == "array" and p.endswith("indices"))
            assert z[some.lstrip("/")].dtype == np.uint16


def test_skelshops_keywords_translate_for_any_engine():
    """The translation of skelshop's h5py keywords lives with the presets, for any
    engine that is not HDF5 (the Zarr engine uses it; errors name the engine)."""
    from skelstore.compression import translate_h5py

    assert translate_h5py(SKELSHOP_LOSSLESS, "x", "other") == {"blosc_level": 5}
    assert translate_h5py({**SKELSHOP_LOSSLESS, **SKELSHOP_LOSSY}, "x", "other") == {
        "blosc_level": 5,
        "scale_digits": 2,
    }
    assert translate_h5py({"maxshape": (None,), "chunks": (4,)}, "x", "other") == {"chunks": (4,)}
    with pytest.raises(skelstore.EngineError) as info:
        translate_h5py({"fletcher32": True}, "f.x:/a", "other")
    assert str(info.value).startswith(
        "f.x:/a: the other engine cannot honour h5py option 'fletcher32'"
    )
