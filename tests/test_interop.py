"""SLEAP, NWB, pose-format and movement: each export read back with the other
project's own reader and compared with the dump; import through sleap-io."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import skelstore
from skelstore.cli import cli
from skelstore.dense import read_poses
from skelstore.dump import add_fmt_metadata, add_metadata, write_shots
from skelstore.export import TARGETS, export, export_movement
from skelstore.interop.nwb import export_nwb
from skelstore.interop.posefile import export_pose
from skelstore.interop.sleap import export_sleap, import_sleap
from skelstore.io import ShotSegmentedReader, UnsegmentedReader
from skelstore.pose import CUSTOM_MODE, SKELETONS, DumpReaderPoseBundle, GenericPose
from skelstore.validate import validate

GOLDEN = Path(__file__).parent / "data" / "golden"
FACE = GOLDEN / "trackshots_offset_face.h5"  # FACE, 5 tracks in 3 shots, first at frame 100
UNSEG = GOLDEN / "unseg_body25.h5"  # BODY_25, detection slots


def stored_poses(src: Path) -> dict[tuple[str, int], np.ndarray]:
    """``(track name, frame) -> (limbs, 3)`` of every stored pose (a row with a keypoint)."""
    out = {}
    with skelstore.open(src) as root:
        unseg = root.attrs["fmt_type"] == "unseg"
        shots = (
            [(None, UnsegmentedReader(root, bundle_cls=DumpReaderPoseBundle).shot_reader)]
            if unseg
            else [(s.index, s) for s in ShotSegmentedReader(root)]
        )
        for shot, reader in shots:
            for i, bundle in enumerate(reader):
                for pid, pose in bundle:
                    if pose.keypoints[:, 2].any():
                        name = f"pose{pid}" if shot is None else f"shot{shot}_pose{pid}"
                        out[(name, reader.start_frame + i)] = pose.keypoints.astype(np.float32)
    return out


def write_dump(path: Path, mode: str, frames: list) -> None:
    limbs = SKELETONS[mode].limbs
    with skelstore.open(path, "w") as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "clip.mp4", num_frames=len(frames), mode=mode, limbs=limbs)
        write_shots(root, limbs, frames)


def random_pose(rng: np.random.Generator, limbs: int, pad: range = range(0)) -> np.ndarray:
    kps = np.c_[rng.uniform(1, 500, (limbs, 2)), rng.uniform(0.1, 1, limbs)].astype(np.float32)
    kps[rng.random(limbs) < 0.3] = 0
    kps[list(pad)] = 0
    return kps


# ------------------------------------------------------------------ SLEAP


@pytest.mark.parametrize("src", [FACE, UNSEG], ids=["trackshots", "unseg"])
def test_sleap_export_reads_back_with_sleap_io(tmp_path: Path, src: Path) -> None:
    import sleap_io as sio

    dst = tmp_path / "out.slp"
    report = export_sleap(src, dst)
    labels = sio.load_slp(dst, open_videos=False)
    with skelstore.open(src) as root:
        mode, video = root.attrs["mode"], root.attrs["video"]
    skel = SKELETONS[mode]
    (skeleton,) = labels.skeletons
    assert skeleton.name == mode and skeleton.node_names == list(skel.keypoints)
    assert sorted(skeleton.edge_names) == sorted(skel.edge_names())
    assert [v.filename for v in labels.videos] == [video]
    expected = stored_poses(src)
    assert {t.name for t in labels.tracks} == {name for name, _ in expected}
    got = {}
    for lf in labels.labeled_frames:
        for inst in lf.instances:
            assert isinstance(inst, sio.PredictedInstance)
            got[(inst.track.name, lf.frame_idx)] = inst.numpy(scores=True)
    assert got.keys() == expected.keys() and report.poses == len(expected)
    for key, kps in expected.items():
        absent = kps[:, 2] == 0
        xy_score = got[key]
        assert np.isnan(xy_score[absent, :2]).all() and (xy_score[absent, 2] == 0).all()
        np.testing.assert_array_equal(xy_score[~absent].astype(np.float32), kps[~absent])


@pytest.mark.parametrize(
    "src", [FACE, GOLDEN / "trackshots_body25all.h5", UNSEG], ids=["face", "body25all", "unseg"]
)
def test_sleap_export_imported_back_gives_the_same_poses(tmp_path: Path, src: Path) -> None:
    export_sleap(src, tmp_path / "out.slp")
    report = import_sleap(tmp_path / "out.slp", tmp_path / "back.zarr")
    a, b = stored_poses(src), stored_poses(tmp_path / "back.zarr")
    assert a.keys() == b.keys() and report.poses == len(a)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    with skelstore.open(src) as s, skelstore.open(tmp_path / "back.zarr") as d:
        for attr in ("mode", "limbs", "fmt_type", "video"):
            assert d.attrs[attr] == s.attrs[attr]
        # SLEAP does not carry num_frames: the last frame with a pose + 1
        assert d.attrs["num_frames"] == max(f for _, f in a) + 1
        assert validate(d).ok


@pytest.mark.parametrize(
    "src", [GOLDEN / "trackshots_body25all.h5", UNSEG], ids=["tracked", "unseg"]
)
@pytest.mark.parametrize(
    ("name", "layout"), [("back.h5", "packed"), ("back.zarr", "skelshop")], ids=["h5", "zarr"]
)
def test_import_writes_the_layout_asked_for(
    tmp_path: Path, src: Path, name: str, layout: str
) -> None:
    """``skelstore import --layout`` (``import_sleap(layout=)``) overrides the engine's
    default layout; the poses are the same."""
    export_sleap(src, tmp_path / "out.slp")
    args = ["import", str(tmp_path / "out.slp"), str(tmp_path / name), "--layout", layout]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    with skelstore.open(tmp_path / name) as root:
        assert root.attrs.get("layout", "skelshop") == layout
        assert validate(root).ok
    a, b = stored_poses(src), stored_poses(tmp_path / name)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_import_of_another_tools_labels(tmp_path: Path) -> None:
    """A custom skeleton becomes a CUSTOM dump; tracks become pose ids; a user
    instance wins over a prediction of the same track; untracked instances follow."""
    import sleap_io as sio

    skeleton = sio.Skeleton(
        ["head", "thorax", "tail"], edges=[("head", "thorax"), ("thorax", "tail")], name="fly"
    )
    video = sio.Video(filename="flies.mp4", open_backend=False)
    t0, t1 = sio.Track("female"), sio.Track("male")
    pts = np.array([[1.0, 2.0], [3.0, 4.0], [np.nan, np.nan]])
    frames = [
        sio.LabeledFrame(
            video=video,
            frame_idx=5,
            instances=[
                sio.PredictedInstance.from_numpy(
                    pts, skeleton, point_scores=[0.5, 0.25, 0.0], track=t0
                ),
                sio.PredictedInstance.from_numpy(
                    pts + 10, skeleton, point_scores=[0.5, 0.5, 0.5], track=t1
                ),
                sio.Instance.from_numpy(pts + 100, skeleton, track=t1),  # the user's wins
                sio.PredictedInstance.from_numpy(pts + 20, skeleton, point_scores=[0.5, 0.5, 0.5]),
            ],
        ),
        sio.LabeledFrame(
            video=video,
            frame_idx=7,
            instances=[
                sio.PredictedInstance.from_numpy(
                    pts + 1, skeleton, point_scores=[1, 1, 1], track=t0
                )
            ],
        ),
    ]
    sio.save_slp(
        sio.Labels(frames, videos=[video], skeletons=[skeleton], tracks=[t0, t1]),
        str(tmp_path / "flies.slp"),
    )
    runner = CliRunner()
    res = runner.invoke(cli, ["import", str(tmp_path / "flies.slp"), str(tmp_path / "f.h5")])
    assert res.exit_code == 0, res.output
    assert "[CUSTOM]" in res.stdout and "4 poses" in res.stdout
    with skelstore.open(tmp_path / "f.h5") as root:
        attrs = dict(root.attrs)
        assert attrs["mode"] == CUSTOM_MODE and attrs["limbs"] == 3
        assert attrs["keypoint_names"] == ["head", "thorax", "tail"]
        assert attrs["skeleton_edges"] == [[0, 1], [1, 2]] and attrs["skeleton_name"] == "fly"
        assert attrs["fmt_type"] == "trackshots" and attrs["video"] == "flies.mp4"
        assert validate(root).ok
        *gap, shot = list(ShotSegmentedReader(root))  # the frames before 5 read as a gap
        assert [g.end_frame for g in gap] == [5]
        poses = {(shot.start_frame + i, pid): p for i, b in enumerate(shot) for pid, p in b}
    assert isinstance(poses[(5, 0)], GenericPose)
    np.testing.assert_array_equal(poses[(5, 0)].keypoints, [[1, 2, 0.5], [3, 4, 0.25], [0, 0, 0]])
    np.testing.assert_array_equal(
        poses[(5, 1)].keypoints, [[101, 102, 1], [103, 104, 1], [0, 0, 0]]
    )
    np.testing.assert_array_equal(poses[(5, 2)].keypoints[:2, :2], [[21, 22], [23, 24]])
    assert not poses[(6, 0)].keypoints.any()  # a frame between: an empty row
    assert read_poses(tmp_path / "f.h5").keypoint_names == ["head", "thorax", "tail"]
    # and out again: the custom names and edges survive
    export_sleap(tmp_path / "f.h5", tmp_path / "again.slp")
    again = sio.load_slp(tmp_path / "again.slp", open_videos=False).skeletons[0]
    assert again.node_names == ["head", "thorax", "tail"]
    assert again.edge_names == [("head", "thorax"), ("thorax", "tail")]


def test_import_of_untracked_labels_is_unseg(tmp_path: Path) -> None:
    import sleap_io as sio

    names = list(SKELETONS["BODY_25"].keypoints)
    skeleton = sio.Skeleton(names)
    video = sio.Video(filename="v.mp4", open_backend=False)
    rng = np.random.default_rng(1)
    kps = [random_pose(rng, 25) for _ in range(3)]
    lfs = [
        sio.LabeledFrame(
            video=video,
            frame_idx=3,
            instances=[
                sio.PredictedInstance.from_numpy(
                    np.where(k[:, 2:] > 0, k[:, :2], np.nan), skeleton, point_scores=k[:, 2]
                )
                for k in kps
            ],
        )
    ]
    sio.save_slp(sio.Labels(lfs), str(tmp_path / "u.slp"))
    import_sleap(tmp_path / "u.slp", tmp_path / "u.h5")
    with skelstore.open(tmp_path / "u.h5") as root:
        assert root.attrs["fmt_type"] == "unseg" and root.attrs["mode"] == "BODY_25"
    got = stored_poses(tmp_path / "u.h5")
    for i, k in enumerate(kps):
        np.testing.assert_array_equal(got[(f"pose{i}", 3)], k)
    with pytest.raises(skelstore.EngineError, match="already exists"):
        import_sleap(tmp_path / "u.slp", tmp_path / "u.h5")
    (tmp_path / "bad.slp").write_bytes(b"not hdf5")
    with pytest.raises(skelstore.InputError, match=r"bad\.slp: sleap-io cannot read it"):
        import_sleap(tmp_path / "bad.slp", tmp_path / "bad.h5")


# ------------------------------------------------------------------ NWB


def test_nwb_export_reads_back_with_pynwb(tmp_path: Path) -> None:
    from pynwb import NWBHDF5IO

    dst = tmp_path / "out.nwb"
    report = export_nwb(FACE, dst, fps=25.0)
    expected = stored_poses(FACE)
    names = SKELETONS["FACE"].keypoints
    with NWBHDF5IO(str(dst), "r") as io:
        nwb = io.read()
        behavior = nwb.processing["behavior"]
        skeleton = behavior["Skeletons"].skeletons["FACE"]
        assert list(skeleton.nodes[:]) == list(names)
        assert [tuple(e) for e in skeleton.edges[:]] == list(SKELETONS["FACE"].edges)
        individuals = [k for k in behavior.data_interfaces if k != "Skeletons"]
        assert sorted(individuals) == sorted({n for n, _ in expected})
        assert report.tracks == len(individuals)
        for ind in individuals:
            pe = behavior[ind]
            assert pe.skeleton.name == "FACE" and pe.source_software == "OpenPose"
            assert list(pe.source_video.external_file[:]) == ["video.mp4"]
            assert sorted(pe.pose_estimation_series) == sorted(names)
            for k, name in enumerate(names):
                series = pe.pose_estimation_series[name]
                data, conf = series.data[:], series.confidence[:]
                frames = np.rint(series.timestamps[:] * 25.0).astype(int)
                np.testing.assert_allclose(series.timestamps[:], frames / 25.0)
                for r, frame in enumerate(frames):
                    kps = expected.get((ind, int(frame)))
                    if kps is None or kps[k, 2] == 0:
                        assert np.isnan(data[r]).all() and np.isnan(conf[r])
                    else:
                        np.testing.assert_array_equal(data[r], kps[k, :2])
                        assert conf[r] == kps[k, 2]
            assert {int(f) for f in frames} >= {f for n, f in expected if n == ind}


def test_nwb_export_is_read_by_movement(tmp_path: Path) -> None:
    from movement.io import load_poses

    export_nwb(FACE, tmp_path / "out.nwb", fps=25.0, shot=1)
    ds = load_poses.from_nwb_file(tmp_path / "out.nwb", pose_estimation_key="shot1_pose0")
    expected = stored_poses(FACE)
    frames = sorted(f for n, f in expected if n == "shot1_pose0")
    with skelstore.open(FACE) as root:
        first = root["timeline/shot1/pose0"].attrs["start_frame"]  # the track's first row
    for f in frames:
        kps = expected[("shot1_pose0", f)]
        at = ds["position"].isel(time=f - first).sel(keypoints=list(SKELETONS["FACE"].keypoints))
        got = at.values[:, :, 0].T  # (keypoints, space); movement sorts keypoints by name
        np.testing.assert_array_equal(got[kps[:, 2] > 0], kps[kps[:, 2] > 0, :2])


def test_nwb_needs_fps(tmp_path: Path) -> None:
    with pytest.raises(skelstore.InputError, match=r"\(fps=\.\.\.\)"):
        export_nwb(FACE, tmp_path / "out.nwb")
    res = CliRunner().invoke(cli, ["export", str(FACE), str(tmp_path / "o.nwb"), "--to", "nwb"])
    assert res.exit_code == 2 and "--fps" in res.stderr and res.stderr.count("\n") == 1
    with pytest.raises(skelstore.EngineError, match=r"\*\.nwb"):
        export_nwb(FACE, tmp_path / "out.h5", fps=25)


# ------------------------------------------------------------------ pose-format


def test_pose_export_reads_back_with_pose_format(tmp_path: Path) -> None:
    """Components in pose-format's order (pose, face, hands), people by pose id."""
    from pose_format import Pose

    rng = np.random.default_rng(5)
    skel = SKELETONS["BODY_25_ALL"]
    frames = [
        [(3, random_pose(rng, 138, skel.padding())), (7, random_pose(rng, 138, skel.padding()))]
        for _ in range(6)
    ]
    frames[2] = [(7, random_pose(rng, 138, skel.padding()))]
    write_dump(tmp_path / "d.h5", "BODY_25_ALL", frames)
    report = export_pose(tmp_path / "d.h5", tmp_path / "out.pose", fps=30.0)
    assert report.notes == ["people: 0 = pose id 3, 1 = pose id 7"]
    pose = Pose.read((tmp_path / "out.pose").read_bytes())
    assert [c.name for c in pose.header.components] == [
        "pose_keypoints_2d",
        "face_keypoints_2d",
        "hand_left_keypoints_2d",
        "hand_right_keypoints_2d",
    ]
    assert pose.body.fps == 30.0 and pose.body.data.shape == (6, 2, 137, 2)
    parts = {name: (start, count) for name, start, count in skel.parts}
    order = [
        *range(*(lambda s, c: (s, s + c))(*parts["body"])),
        *range(*(lambda s, c: (s, s + c))(*parts["face"])),
        *range(*(lambda s, c: (s, s + c))(*parts["left_hand"])),
        *range(*(lambda s, c: (s, s + c))(*parts["right_hand"])),
    ]
    for f, bundle in enumerate(frames):
        got_ids = {3: 0, 7: 1}
        for pid, kps in bundle:
            person = got_ids[pid]
            want = kps[order]
            present = want[:, 2] > 0
            np.testing.assert_array_equal(pose.body.confidence[f, person], want[:, 2])
            np.testing.assert_array_equal(
                pose.body.data[f, person].data[present], want[present, :2]
            )
            assert pose.body.data[f, person].mask[~present].all()
    assert pose.body.data[2, 0].mask.all()  # pose id 3 is not in frame 2


def test_pose_export_refuses_stored_padding(tmp_path: Path) -> None:
    """skelshop's golden BODY_25_ALL dump stores keypoint 137, which no OpenPose part holds."""
    with pytest.raises(skelstore.InputError, match=r"keypoint 137 \(Pad137\).*refusing"):
        export_pose(GOLDEN / "trackshots_body25all.h5", tmp_path / "o.pose", fps=25)
    assert not (tmp_path / "o.pose").exists()
    with pytest.raises(skelstore.InputError, match=r"\(fps=\.\.\.\)"):
        export_pose(FACE, tmp_path / "o.pose")


# ------------------------------------------------------------------ movement


def test_movement_reads_the_legacy_export(tmp_path: Path) -> None:
    """movement (0.15 here) validates, computes with and re-saves the export."""
    from movement.io import load_dataset, save_poses
    from movement.kinematics import compute_velocity
    from movement.validators.datasets import ValidPosesInputs

    export_movement(UNSEG, tmp_path / "p.nc", fps=25.0, movement_dims="legacy")
    with xr.open_dataset(tmp_path / "p.nc", engine="h5netcdf") as ds:
        ds = ds.load()
    ValidPosesInputs.validate(ds)
    assert compute_velocity(ds["position"]).dims == ds["position"].dims
    save_poses.to_dlc_file(ds.drop_vars("shot"), tmp_path / "p.h5", split_individuals=False)
    back = load_dataset(tmp_path / "p.h5", source_software="DeepLabCut", fps=25.0)
    np.testing.assert_allclose(back["position"].values, ds["position"].values, equal_nan=True)
    assert list(back["keypoints"].values) == list(SKELETONS["BODY_25"].keypoints)


def test_movement_current_dims_are_the_legacy_ones_renamed(tmp_path: Path) -> None:
    cur = export_movement(UNSEG, tmp_path / "c.nc", movement_dims="current")
    old = export_movement(UNSEG, tmp_path / "l.nc", movement_dims="legacy")
    assert cur["position"].dims == ("time", "space", "keypoint", "individual")
    assert cur["confidence"].dims == ("time", "keypoint", "individual")
    renamed = old.rename({"keypoints": "keypoint", "individuals": "individual"})
    xr.testing.assert_identical(cur, renamed)
    with xr.open_dataset(tmp_path / "c.nc", engine="h5netcdf") as ds:
        assert ds.attrs["ds_type"] == "poses" and ds.attrs["time_unit"] == "frames"
        assert set(ds["position"].dims) == {"time", "space", "keypoint", "individual"}
    # auto follows the movement installed here (0.15: legacy names)
    from importlib.metadata import version

    legacy = tuple(int(p) for p in version("movement").split(".")[:2]) < (0, 17)
    auto = export_movement(UNSEG, tmp_path / "a.nc")
    assert ("keypoints" in auto.dims) == legacy


# ------------------------------------------------------------------ dispatch and extras


@pytest.mark.parametrize(
    ("to", "module", "extra", "dst"),
    [
        ("sleap", "sleap_io", "sleap", "o.slp"),
        ("nwb", "pynwb", "nwb", "o.nwb"),
        ("nwb", "ndx_pose", "nwb", "o.nwb"),
        ("pose", "pose_format", "pose", "o.pose"),
        ("movement", "xarray", "export", "o.nc"),
    ],
)
def test_missing_package_names_its_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, to: str, module: str, extra: str, dst: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    fps = 25.0 if "fps" in TARGETS[to].options else None
    with pytest.raises(skelstore.MissingDependencyError, match=rf"skelstore\[{extra}\]"):
        export(FACE, str(tmp_path / dst), to=to, fps=fps)
    args = ["export", str(FACE), str(tmp_path / dst), "--to", to]
    res = CliRunner().invoke(cli, args + (["--fps", "25"] if fps else []))
    assert res.exit_code == 2 and f"pip install 'skelstore[{extra}]'" in res.stderr
    assert not (tmp_path / dst).exists()


@pytest.mark.parametrize(
    ("func", "module", "extra"),
    [
        (lambda p: export_sleap(FACE, p / "o.slp"), "sleap_io", "sleap"),
        (lambda p: import_sleap(p / "x.slp", p / "o.h5"), "sleap_io", "sleap"),
        (lambda p: export_nwb(FACE, p / "o.nwb", fps=25), "ndx_pose", "nwb"),
        (lambda p: export_pose(FACE, p / "o.pose", fps=25), "pose_format", "pose"),
    ],
)
def test_missing_package_in_the_python_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, func, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(skelstore.MissingDependencyError, match=rf"skelstore\[{extra}\]"):
        func(tmp_path)


def test_import_command_without_sleap_io(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sleap_io", None)
    res = CliRunner().invoke(cli, ["import", str(tmp_path / "x.slp"), str(tmp_path / "o.h5")])
    assert res.exit_code == 2 and "pip install 'skelstore[sleap]'" in res.stderr


def test_core_import_stays_cheap() -> None:
    code = (
        "import sys, skelstore, skelstore.cli, skelstore.export, skelstore.interop.common\n"
        "heavy = [m for m in ('sleap_io', 'pynwb', 'ndx_pose', 'pose_format', 'movement',"
        " 'xarray') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_exports_every_new_target(tmp_path: Path) -> None:
    runner = CliRunner()
    for to, dst, extra in (
        ("sleap", "o.slp", []),
        ("nwb", "o.nwb", ["--fps", "25"]),
        ("pose", "o.pose", ["--fps", "25"]),
    ):
        res = runner.invoke(
            cli, ["export", str(FACE), str(tmp_path / dst), "--to", to, "--shot", "2", *extra]
        )
        assert res.exit_code == 0, res.output
        assert f"[{to}]" in res.stdout and "4 tracks" in res.stdout
        res = runner.invoke(cli, ["export", str(FACE), str(tmp_path / dst), "--to", to, *extra])
        assert res.exit_code == 2 and "--overwrite" in res.stderr
    res = runner.invoke(
        cli, ["export", str(FACE), str(tmp_path / "x.slp"), "--to", "sleap", "--fps", "25"]
    )
    assert res.exit_code == 2 and "--fps does not apply to --to sleap" in res.stderr
    res = runner.invoke(
        cli, ["export", str(FACE), str(tmp_path / "x.slp"), "--to", "sleap", "--shot", "9"]
    )
    assert res.exit_code == 2 and "no shot9" in res.stderr


@pytest.mark.parametrize("name", ["trackshots_lossless.h5", "unseg_body25.h5"])
def test_exports_of_a_packed_dump_equal_those_of_its_skelshop_original(
    tmp_path: Path, name: str
) -> None:
    """The exports read the packed layout (new Zarr stores' default) like skelshop's."""
    import sleap_io

    packed = tmp_path / "p.zarr"
    skelstore.convert(GOLDEN / name, packed, layout="packed", verify=True)
    with skelstore.open(packed) as root:
        assert root.attrs["layout"] == "packed"
    got = {}
    for label, src in (("skelshop", GOLDEN / name), ("packed", packed)):
        export_sleap(src, tmp_path / f"{label}.slp")
        labels = sleap_io.load_slp(str(tmp_path / f"{label}.slp"))
        got[label] = (labels.numpy(), [t.name for t in labels.tracks])
        ds = export_movement(src, tmp_path / f"{label}.nc", fps=25)
        got[label] += (ds["position"].values,)
    np.testing.assert_array_equal(got["packed"][0], got["skelshop"][0])
    assert got["packed"][1] == got["skelshop"][1]
    np.testing.assert_array_equal(got["packed"][2], got["skelshop"][2])
