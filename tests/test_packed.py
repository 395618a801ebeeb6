"""The packed layout: its arrays and invariants, choosing it, exact conversion both
ways, validation and repair of damaged or interrupted dumps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from dumputil import GOLDEN_DIR, GOLDEN_FILES, load_expected
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_convert import _assert_same_trees, _tree
from test_roundtrip import (
    Shot,
    random_pose,
    tracked_expectation,
    tracked_frames,
    untracked_expectation,
)

import skelstore
from skelstore.cli import cli
from skelstore.conversion import compare_dumps, convert
from skelstore.dense import read_poses
from skelstore.dump import add_fmt_metadata, add_metadata, write_shots
from skelstore.io import ShotSegmentedReader, ShotSegmentedWriter, UnsegmentedWriter
from skelstore.packed import (
    C_ENTRY,
    C_ROW,
    LAYOUT_VERSION,
    fitted_chunks,
    layout_of,
)
from skelstore.packed_ops import dump_shots
from skelstore.packed_read import PackedTimeline
from skelstore.summary import describe
from skelstore.validate import validate

ARRAYS = ["data", "indices", "indptr", "shots", "tracks"]


def write_sample(url, *, layout=None, compression="lossless", **open_kwargs) -> None:
    rng = np.random.default_rng(7)
    shots = [
        Shot(6, {3: {i: random_pose(rng, 25, 0.2) for i in (0, 1, 4)},
                 1: {2: random_pose(rng, 25, 0.5)}}),
        Shot(0),
        Shot(3),
        Shot(5, {0: {0: random_pose(rng, 25, 0.1), 4: random_pose(rng, 25, 0.0)}}),
    ]  # fmt: skip
    with skelstore.open(url, "w", **open_kwargs) as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "v.mp4", 16, "BODY_25", 25)
        kwargs = {"layout": layout} if layout else {}
        write_shots(root, 25, tracked_frames(shots), compression=compression, start_frame=2,
                    **kwargs)  # fmt: skip
    return shots


# ---------------------------------------------------------------- the arrays


@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
def test_packed_tree_tables_and_invariants(tmp_path: Path, suffix: str) -> None:
    url = str(tmp_path / f"d{suffix}")
    write_sample(url, layout="packed")
    with skelstore.open(url) as root:
        assert root.attrs["layout"] == "packed" and root.attrs["layout_version"] == LAYOUT_VERSION
        tl = root["timeline"]
        assert tl.keys() == ARRAYS
        dtypes = {n: str(tl[n].dtype) for n in ARRAYS}
        assert dtypes == {"data": "float32", "indices": "uint16", "indptr": "int64",
                          "shots": "int64", "tracks": "int64"}  # fmt: skip
        shots = tl["shots"].read()
        assert shots.tolist() == [[2, 8], [8, 8], [8, 11], [11, 16]]  # empty shots included
        tracks = tl["tracks"].read()
        assert tl["tracks"].attrs["columns"] == [
            "shot", "pose_id", "start_frame", "end_frame", "row", "entry"]  # fmt: skip
        # ordered by (shot, pose id); frames of each track within its shot
        assert tracks[:, :4].tolist() == [[0, 1, 4, 5], [0, 3, 2, 7], [3, 0, 11, 16]]
        # rows and entries contiguous: one shot is one range of every array
        indptr = tl["indptr"].read()
        assert tracks[:, C_ROW].tolist() == [0, 1, 6]
        assert len(indptr) == 6 + 5 + 1 and indptr[0] == 0
        assert indptr[-1] == len(tl["data"]) == len(tl["indices"])
        assert (indptr[tracks[:, C_ROW]] == tracks[:, C_ENTRY]).all()
        assert validate(root, deep=True).ok


def test_zarr_dimension_names_and_xarray(tmp_path: Path) -> None:
    xr = pytest.importorskip("xarray")
    import zarr

    url3, url2 = str(tmp_path / "v3.zarr"), str(tmp_path / "v2.zarr")
    write_sample(url3)
    write_sample(url2, zarr_format=2)
    g = zarr.open_group(url3, mode="r")
    assert g["timeline/data"].metadata.dimension_names == ("entry", "xyc")
    assert g["timeline/tracks"].metadata.dimension_names == ("track", "track_field")
    assert zarr.open_group(url2, mode="r")["timeline/indptr"].attrs["_ARRAY_DIMENSIONS"] == [
        "row_edge"]  # fmt: skip
    for url in (url3, url2):
        ds = xr.open_zarr(url, group="timeline")
        assert ds["data"].dims == ("entry", "xyc") and ds["indices"].dims == ("entry",)
        assert ds["shots"].dims == ("shot", "shot_field")
        assert ds.sizes["entry"] == ds["indptr"].values[-1]


def test_zarr_object_count_grows_with_bytes_not_tracks(tmp_path: Path) -> None:
    """Hundreds of shots and tracks: still one object per array (plus metadata)."""
    rng = np.random.default_rng(0)
    shots = [Shot(4, {i: {f: random_pose(rng, 25, 0.3) for f in range(4)} for i in range(3)})
             for _ in range(300)]  # fmt: skip
    url = tmp_path / "many.zarr"
    with skelstore.open(url, "w") as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "v.mp4", 1200, "BODY_25", 25)
        write_shots(root, 25, tracked_frames(shots), compression="lossless")
    objects = [p for p in url.rglob("*") if p.is_file()]
    assert len(objects) == 12, sorted(str(p.relative_to(url)) for p in objects)
    with skelstore.open(url) as root:
        info = describe(root)
        assert (info.shots, info.pose_tracks, info.layout) == (300, 900, "packed")


def test_fitted_chunks_fill_whole_shards() -> None:
    for n in (1, 100, 65_536, 65_537, 1_000_000, 6_812_345, 2**21 + 3):
        chunk, shard = fitted_chunks(n, 2**16, 16)
        assert chunk <= 2**16
        nch = -(-n // chunk)
        if shard is None:
            assert nch == 1 or n <= 2**16
        else:
            assert shard % chunk == 0 and nch % (shard // chunk) == 0, (n, chunk, shard)


# ---------------------------------------------------------------- choosing the layout


def test_layout_precedence(tmp_path: Path) -> None:
    cases = [
        ("a.zarr", {}, {}, "packed"),  # the engine's default
        ("b.h5", {}, {}, "skelshop"),
        ("c.h5", {"layout": "packed"}, {}, "packed"),  # open(..., layout=)
        ("d.zarr", {"layout": "skelshop"}, {}, "skelshop"),
        ("e.zarr", {"layout": "skelshop"}, {"layout": "packed"}, "packed"),  # the writer's wins
        ("f.h5", {"layout": "packed"}, {"layout": "skelshop"}, "skelshop"),
    ]
    for name, open_kw, writer_kw, expected in cases:
        url = tmp_path / name
        with skelstore.open(url, "w", **open_kw) as root:
            w = ShotSegmentedWriter(root, 25, **writer_kw)
            w.add_pose(0, 0, np.ones((25, 3), np.float32))
            w.end_shot()
        with skelstore.open(url) as root:
            assert layout_of(root) == expected, name
            assert len(ShotSegmentedReader(root)) == 1
        # appending keeps the dump's layout; asking for the other one is refused
        other = "skelshop" if expected == "packed" else "packed"
        with skelstore.open(url, "a") as root:
            with pytest.raises(skelstore.FormatError, match=f"already in the {expected}"):
                ShotSegmentedWriter(root, 25, layout=other)
            w = ShotSegmentedWriter(root, 25)
            w.add_pose(1, 5, np.ones((25, 3), np.float32))
            w.end_shot()
        with skelstore.open(url) as root:
            assert [(s.start_frame, s.end_frame) for s in ShotSegmentedReader(root)] == [
                (0, 1), (1, 2)]  # fmt: skip
    with pytest.raises(skelstore.FormatError, match="unknown layout"):
        skelstore.open(tmp_path / "g.zarr", "w", layout="flat")


def test_newer_layout_version_is_refused(tmp_path: Path) -> None:
    url = tmp_path / "d.h5"
    write_sample(url, layout="packed")
    with skelstore.open(url, "r+") as root:
        root.attrs["layout_version"] = LAYOUT_VERSION + 1
    with skelstore.open(url) as root, pytest.raises(skelstore.FormatError, match="newer"):
        ShotSegmentedReader(root)
    with skelstore.open(url, "r+") as root:
        root.attrs["layout"] = "columnar"
    with skelstore.open(url) as root, pytest.raises(skelstore.FormatError, match="unknown layout"):
        ShotSegmentedReader(root)


# ---------------------------------------------------------------- conversion


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_golden_skelshop_packed_skelshop_is_the_same_tree(name: str, tmp_path: Path) -> None:
    """Arrays bitwise (within 0.01 for lossy: each engine re-quantises), dtypes,
    attributes, chunks and per-track encodings, through packed HDF5 and Zarr."""
    golden = GOLDEN_DIR / name
    for mid in (tmp_path / "p.h5", tmp_path / "p.zarr", tmp_path / "p2.zarr"):
        back = tmp_path / f"back-{mid.name}.h5"
        kwargs = {"zarr_format": 2} if mid.name == "p2.zarr" else {}
        convert(golden, mid, layout="packed", verify=True, **kwargs)
        convert(mid, back, verify=True)  # HDF5's default: skelshop's layout
        with skelstore.open(mid) as m:
            assert layout_of(m) == "packed" and validate(m, deep=True).ok
        with skelstore.open(golden) as a, skelstore.open(back) as b:
            assert layout_of(b) == "skelshop"
            _assert_same_trees(_tree(a), _tree(b), lossy="lossy" in name)


def test_cli_convert_layout_and_refusals(tmp_path: Path) -> None:
    golden = GOLDEN_DIR / "trackshots_offset_face.h5"
    runner = CliRunner()
    res = runner.invoke(cli, ["convert", str(golden), str(tmp_path / "p.h5"), "--layout",
                              "packed", "--verify"])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["info", str(tmp_path / "p.h5")])
    assert res.exit_code == 0 and "layout            packed" in res.output
    res = runner.invoke(cli, ["info", "--json", str(tmp_path / "p.h5")])
    assert json.loads(res.output)["layout"] == "packed"
    # a skelshop dump the packed layout cannot hold: a gap in the shot numbers
    odd = tmp_path / "odd.h5"
    convert(golden, odd)
    import h5py

    with h5py.File(odd, "r+") as f:
        f["timeline"].move("shot2", "shot7")
    with pytest.raises(skelstore.FormatError, match=r"without gaps.*layout='skelshop'"):
        convert(odd, tmp_path / "odd.zarr", layout="packed")
    assert not (tmp_path / "odd.zarr").exists()
    # without a layout asked for, such a dump keeps skelshop's layout in Zarr too
    assert convert(odd, tmp_path / "odd2.zarr", verify=True).layout == "skelshop"
    assert convert(golden, tmp_path / "ok.zarr").layout == "packed"


TIMELINES = st.lists(
    st.tuples(st.integers(0, 6), st.lists(st.integers(0, 5), max_size=3, unique=True)),
    min_size=1, max_size=5,
)  # fmt: skip


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(timeline=TIMELINES, seed=st.integers(0, 2**16), preset=st.sampled_from(
    ["none", "lossless", "lossless9"]))  # fmt: skip
def test_random_dumps_round_trip_through_packed(tmp_path: Path, timeline, seed, preset) -> None:
    """skelshop -> packed (Zarr) -> skelshop gives back the same tree, and the packed
    copy reads back the same poses (hypothesis)."""
    rng = np.random.default_rng(seed)
    shots = []
    for length, pids in timeline:
        shot = Shot(length)
        for pid in pids if length else []:
            frames = sorted({int(f) for f in rng.integers(0, length, 3)})
            zero = float(rng.choice([0, 0.5, 1]))
            shot.tracks[pid] = {f: random_pose(rng, 25, zero) for f in frames}
        shots.append(shot)
    d = tmp_path / f"h{seed}-{preset}"
    d.mkdir(exist_ok=True)
    src, mid, back = d / "a.h5", d / "b.zarr", d / "c.h5"
    for p in (src, mid, back):
        if p.exists():
            import shutil

            shutil.rmtree(p) if p.is_dir() else p.unlink()
    with skelstore.open(src, "w") as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "v.mp4", 40, "BODY_25", 25)
        write_shots(root, 25, tracked_frames(shots), compression=preset)
    convert(src, mid, verify=True)
    convert(mid, back, verify=True)
    with skelstore.open(src) as a, skelstore.open(back) as b, skelstore.open(mid) as m:
        _assert_same_trees(_tree(a), _tree(b), lossy=False)
        assert compare_dumps(a, m) is None
        pa, pm = read_poses(a), read_poses(m)
        np.testing.assert_array_equal(pa.keypoints, pm.keypoints)
        np.testing.assert_array_equal(pa.present, pm.present)
        np.testing.assert_array_equal(pa.shots, pm.shots)


def test_unsegmented_parts_read_and_convert_like_whole_tracks(tmp_path: Path) -> None:
    """An UnsegmentedWriter on the packed layout writes a part per slot per block;
    readers, read_poses and conversion see whole tracks, gaps as empty rows."""
    rng = np.random.default_rng(5)
    frames = [{s: random_pose(rng, 25, 0.3) for s in range(3) if rng.random() < 0.4}
              for _ in range(50)]  # fmt: skip
    frames[0] = {0: random_pose(rng, 25, 0.0)}
    out = {}
    for name, layout in (("s.h5", "skelshop"), ("p.h5", "packed"), ("p.zarr", None)):
        url = tmp_path / name
        with skelstore.open(url, "w") as root:
            add_fmt_metadata(root, "unseg")
            add_metadata(root, "v.mp4", 50, "BODY_25", 25)
            kwargs = {"layout": layout} if layout else {}
            write_shots(root, 25, (list(f.items()) for f in frames), writer_cls=UnsegmentedWriter,
                        compression="lossless", block_frames=7, **kwargs)  # fmt: skip
        with skelstore.open(url) as root:
            out[name] = read_poses(root)
            if layout != "skelshop":
                parts = PackedTimeline(root, root["timeline"]).tracks
                assert len(parts) > 3  # slots in several parts
                assert validate(root, deep=True).ok
    for name in ("p.h5", "p.zarr"):
        for field in ("keypoints", "present", "pose_ids", "frames", "shots"):
            np.testing.assert_array_equal(getattr(out[name], field), getattr(out["s.h5"], field))
    expected, end = untracked_expectation(0, frames, 25)
    assert out["s.h5"].frames[-1] + 1 == 50 and end <= 50
    assert int(out["p.zarr"].present.sum()) == len(expected)
    convert(tmp_path / "p.zarr", tmp_path / "back.h5", verify=True)
    with skelstore.open(tmp_path / "back.h5") as b, skelstore.open(tmp_path / "s.h5") as a:
        assert compare_dumps(a, b) is None


def test_golden_decodes_the_same_packed(tmp_path: Path) -> None:
    from dumputil import decode_trackshots, decode_unseg, golden_shot_ranges
    from test_golden import golden_limbs

    for name in GOLDEN_FILES:
        url = tmp_path / f"{name}.zarr"
        convert(GOLDEN_DIR / name, url)
        with skelstore.open(url) as root:
            limbs = golden_limbs(name)
            if name.startswith("unseg"):
                got, _, _ = decode_unseg(root, limbs)
            else:
                got = decode_trackshots(root, golden_shot_ranges(name), limbs)
        from dumputil import assert_rows_equal

        assert_rows_equal(got, load_expected(name), atol=0.01 if "lossy" in name else 0)


# ---------------------------------------------------------------- damage


def _damage(url: Path, name: str, fn) -> None:
    with skelstore.open(url, "r+") as root:
        arr = root[f"timeline/{name}"]
        values = arr.read()
        fn(values)
        arr[...] = values


@pytest.mark.parametrize(
    ("name", "fn", "problem"),
    [
        ("indptr", lambda v: v.__setitem__(3, v[2] - 1), "indptr: not monotone"),
        ("indptr", lambda v: v.__setitem__(-1, v[-1] + 4), "ends at"),
        ("tracks", lambda v: v.__setitem__((1, 4), 3), "row offset"),
        ("tracks", lambda v: v.__setitem__((1, 3), 40), "outside shot"),
        ("tracks", lambda v: v.__setitem__((2, 5), v[2, 5] + 1), "entry"),
        ("shots", lambda v: v.__setitem__((2, 0), 3), "starts before"),
        ("tracks", lambda v: v.__setitem__((0, 0), 3), "not sorted by shot"),
        ("indices", lambda v: v.__setitem__(0, 99), "keypoint 99 >= limbs 25"),
    ],
)
def test_validate_finds_packed_damage(tmp_path: Path, name, fn, problem) -> None:
    url = tmp_path / "d.h5"
    write_sample(url, layout="packed", compression="none")
    _damage(url, name, fn)
    with skelstore.open(url) as root:
        rep = validate(root, deep=True)
    assert not rep.ok and any(problem in p for p in rep.problems), rep.problems
    res = CliRunner().invoke(cli, ["validate", str(url)])
    assert res.exit_code == 1 and problem in res.output


@pytest.mark.parametrize("name", ["tracks", "shots"])
def test_readers_refuse_broken_tables(tmp_path: Path, name: str) -> None:
    url = tmp_path / "d.zarr"
    write_sample(url)
    _damage(url, name, lambda v: v.__setitem__((-1, 1 if name == "shots" else 3), -5))
    with skelstore.open(url) as root, pytest.raises(skelstore.FormatError, match=name):
        list(ShotSegmentedReader(root))


def test_deep_validation_finds_nan(tmp_path: Path) -> None:
    url = tmp_path / "d.zarr"
    write_sample(url, compression="none")
    _damage(url, "data", lambda v: v.__setitem__((0, 0), np.nan))
    with skelstore.open(url) as root:
        assert validate(root).ok
        assert any("NaN" in p for p in validate(root, deep=True).problems)


# ---------------------------------------------------------------- interrupted writes


@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
def test_repair_cuts_an_unfinished_shot(tmp_path: Path, suffix: str) -> None:
    """A writer that raised mid-way: the finished shots read with allow_incomplete,
    and repair drops the rest, also bytes appended past the tables."""
    from skelstore.recovery import repair

    url = tmp_path / f"d{suffix}"
    rng = np.random.default_rng(1)
    with pytest.raises(RuntimeError), skelstore.open(url, "w", layout="packed") as root:
        w = ShotSegmentedWriter(root, 25, compression="lossless")
        for shot in range(3):
            w.start_shot(shot * 4)
            for f in range(shot * 4, shot * 4 + 4):
                w.add_pose(f, shot, random_pose(rng, 25, 0.1))
            w.end_shot()
        # a fourth shot's bytes are appended, then the writer dies before its tables
        w.start_shot(12)
        w.add_pose(12, 9, random_pose(rng, 25, 0.1))
        track = w.tracks[9].take_track()
        w._packed.arrays["data"].append(np.asarray(track.data, np.float32))
        w._packed.arrays["indices"].append(np.asarray(track.indices, np.uint16))
        root.attrs["skelstore_shots_done"] = 2  # as if the third shot's mark were lost
        raise RuntimeError("writer died")
    with pytest.raises(skelstore.IncompleteDumpError, match="2 complete shot"):
        skelstore.open(url)
    with skelstore.open(url, allow_incomplete=True) as root:
        assert [s.index for s in ShotSegmentedReader(root)] == [0, 1]
    with pytest.raises(skelstore.IncompleteDumpError):  # writing to it: repair first
        skelstore.open(url, "r+")
    engine = skelstore.guess_engine(str(url), "r+")  # as `skelstore repair` opens it
    with engine.open(str(url), "r+") as root:
        intact, removed = repair(root)
    assert intact == 2 and removed == ["/timeline/shot2"]
    with skelstore.open(url) as root:
        rep = validate(root, deep=True)
        assert rep.ok, rep.problems
        assert [(s.start_frame, s.end_frame) for s in dump_shots(root)] == [(0, 4), (4, 8)]
        # appending goes on after the repaired shots
    with skelstore.open(url, "a") as root:
        w = ShotSegmentedWriter(root, 25)
        w.add_pose(8, 1, random_pose(rng, 25, 0.1))
        w.end_shot()
    with skelstore.open(url) as root:
        assert validate(root).ok and len(ShotSegmentedReader(root)) == 3


def test_small_uncompressed_dumps_stay_small(tmp_path: Path) -> None:
    """Engines store whole chunks; a finished writer refits chunks of small
    uncompressed Zarr arrays, so a tiny `none` dump takes about its bytes."""
    sizes = {}
    for name, layout in (("s.h5", None), ("p.h5", "packed"), ("p.zarr", None)):
        url = tmp_path / name
        write_sample(url, layout=layout, compression="none")
        sizes[name] = sum(p.stat().st_size for p in [url, *url.rglob("*")] if p.is_file())
    assert sizes["p.zarr"] <= 1.2 * sizes["s.h5"], sizes
    # HDF5 cannot give a deleted array's space back: its smaller chunks bound the padding
    assert sizes["p.h5"] <= sizes["s.h5"] + 512 * 1024, sizes


def test_tracked_expectation_through_packed_writers(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    shots = [Shot(5, {2: {0: random_pose(rng, 25, 0), 3: random_pose(rng, 25, 0.5)}}),
             Shot(3, {1: {1: random_pose(rng, 25, 0.2)}})]  # fmt: skip
    url = tmp_path / "x.h5"
    with skelstore.open(url, "w", layout="packed") as root:
        add_metadata(root, "v.mp4", 8, "BODY_25", 25)
        write_shots(root, 25, tracked_frames(shots))
    expected, _ = tracked_expectation(0, shots, 25)
    with skelstore.open(url) as root:
        p = read_poses(root)
        assert p.present.sum() == len(expected)
        reader = ShotSegmentedReader(root)
        assert [sorted(dict(b)) for b in reader[1]] == [[], [1], []]
        got = [(f, pid) for shot in reader for f, b in enumerate(shot, shot.start_frame)
               for pid, _ in b]  # fmt: skip
    assert sorted(got) == sorted(zip(expected.frame.tolist(), expected.pose_id.tolist(),
                                     strict=True))  # fmt: skip


def test_damaged_arrays_keep_skelshops_layout_unless_packed_is_asked(tmp_path: Path) -> None:
    """A readable skelshop dump whose indptr is not monotone cannot be packed: the
    default conversion to Zarr copies it as it is, in skelshop's layout."""
    src = tmp_path / "bad.h5"
    convert(GOLDEN_DIR / "trackshots_offset_face.h5", src)
    import h5py

    with h5py.File(src, "r+") as f:
        ip = f["timeline/shot2/pose1/indptr"]
        values = ip[()]
        values[1] = values[-1] + 5
        ip[...] = values
    with pytest.raises(skelstore.FormatError, match="monotone"):
        convert(src, tmp_path / "p.zarr", layout="packed")
    assert not (tmp_path / "p.zarr").exists()
    report = convert(src, tmp_path / "s.zarr", verify=True)
    assert report.layout == "skelshop"


@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
def test_untrusted_open_reads_packed_dumps(tmp_path: Path, suffix: str) -> None:
    """``untrusted=True`` walks a packed dump's metadata in the watchdog child first."""
    url = tmp_path / f"d{suffix}"
    write_sample(url, layout="packed")
    with skelstore.open(url, untrusted=True) as root:
        assert describe(root).layout == "packed"
        assert [s.index for s in ShotSegmentedReader(root)] == [-1, 0, 1, 2, 3]  # from frame 2


@pytest.mark.parametrize("declared", [(1, 3, 5), (1, 3, 9)])
def test_pack_stream_refuses_tracks_that_do_not_add_up(tmp_path, declared):
    """Conversion writes the packed arrays at the sizes the source declared; tracks
    that disagree (a source changed while being converted) are an error, not a
    short or overflowing array."""
    from skelstore.compression import get_preset
    from skelstore.layout import Track
    from skelstore.packed_ops import PackedStream
    from skelstore.trackwriter import ArraySettings

    track = Track(0, 3, np.ones((7, 3), np.float32), np.zeros(7, np.uint16), np.array([0, 2, 4, 7]))
    with skelstore.open(tmp_path / "p.zarr", "w") as root:
        stream = PackedStream(
            root, root.create_group("timeline"), ArraySettings.make(25, get_preset("none")),
            declared, 1,
        )  # fmt: skip
        with pytest.raises(skelstore.FormatError, match="change while being converted"):
            stream.add(0, 0, track)
            stream.close([(0, 3)])
        root.abort()


def test_an_empty_shot_with_attributes_is_not_packed(tmp_path: Path) -> None:
    """A shot without tracks is checked like any other: its extra attributes have
    no place in the packed layout (they used to be dropped silently)."""
    import h5py

    src = tmp_path / "s.h5"
    with skelstore.open(src, "w") as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "v.mp4", 20, "BODY_25", 25)
        write_shots(root, 25, [[(0, np.ones((25, 3), np.float32))]] * 5, compression="none")
    with h5py.File(src, "r+") as f:
        empty = f["timeline"].create_group("shot1")
        empty.attrs.update({"start_frame": 5, "end_frame": 9, "scene": "credits"})
    with pytest.raises(skelstore.FormatError, match=r"shot1: attributes \['scene'\]"):
        convert(src, tmp_path / "p.zarr", layout="packed")
    report = convert(src, tmp_path / "s.zarr", verify=True)  # keeps skelshop's layout
    assert report.layout == "skelshop"
    with skelstore.open(tmp_path / "s.zarr") as root:
        assert root["timeline/shot1"].attrs["scene"] == "credits"
