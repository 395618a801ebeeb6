"""OpenPose JSON import and export (skelstore.openpose) and the CLI commands.

The JSON is generated here the way OpenPose writes it (one file per frame, every
person with all four 2D lists, empty for detectors that were off, ``person_id``).
"""

from __future__ import annotations

import json
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import skelstore
import skelstore.openpose.importer as op_importer
from skelstore.cli import cli
from skelstore.conversion import compare_dumps
from skelstore.io import ShotSegmentedReader, UnsegmentedReader
from skelstore.openpose import PARTS, export_openpose, import_openpose
from skelstore.pose import LIMBS, DumpReaderPoseBundle

ALL_KEYS = (
    "pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d",
    "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d",
)  # fmt: skip


def make_people(
    rng: np.random.Generator, mode: str, n: int, ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """``n`` OpenPose people of ``mode``: x, y with 3 decimals, confidences with 6,
    about a third of the keypoints undetected (0, 0, 0)."""
    people = []
    for k in range(n):
        person: dict[str, Any] = {"person_id": [ids[k] if ids else -1]}
        parts = dict(PARTS[mode])
        for key in ALL_KEYS:
            count = parts.get(key)
            if count is None:
                person[key] = []
                continue
            xy = np.round(rng.uniform(0, 1280, (count, 2)), 3)
            c = np.round(rng.uniform(0.05, 1, (count, 1)), 6)
            kps = np.hstack([xy, c])
            kps[rng.random(count) < 0.33] = 0
            person[key] = [0 if v == 0 else float(v) for v in kps.ravel()]
        people.append(person)
    return people


def write_json_dir(
    path: Path,
    mode: str,
    n_frames: int,
    *,
    seed: int = 0,
    tracked: bool = False,
    start: int = 0,
    base: str = "clip",
) -> list[list[dict[str, Any]]]:
    """OpenPose's --write_json output for ``n_frames`` frames; returns the people per frame."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    out = []
    for frame in range(start, start + n_frames):
        n = int(rng.integers(0, 4))
        ids = sorted(rng.choice(6, n, replace=False).tolist()) if tracked else None
        people = make_people(rng, mode, n, ids)
        out.append(people)
        doc = {"version": 1.3, "people": people}
        (path / f"{base}_{frame:012d}_keypoints.json").write_text(json.dumps(doc))
    return out


def stacked(person: dict[str, Any], mode: str) -> np.ndarray:
    """The pose a person must import as: parts in order, padded, confidence-0 zeroed."""
    parts = []
    for key, count in PARTS[mode]:
        vals = person[key]
        parts.append(
            np.asarray(vals, np.float32).reshape(count, 3)
            if vals
            else np.zeros((count, 3), np.float32)
        )
    kps = np.zeros((LIMBS[mode], 3), np.float32)
    body = np.vstack(parts)
    kps[: len(body)] = body
    kps[kps[:, 2] == 0] = 0
    return kps


def as_f32(doc: dict[str, Any]) -> dict[str, Any]:
    """A parsed JSON document with every keypoint list as float32 (what a dump holds)."""
    return {
        "version": doc["version"],
        "people": [
            {k: (np.asarray(v, np.float32) if k != "person_id" else v) for k, v in p.items()}
            for p in doc["people"]
        ],
    }


def assert_same_json(a: dict[str, Any], b: dict[str, Any]) -> None:
    a, b = as_f32(a), as_f32(b)
    assert a["version"] == b["version"]
    assert len(a["people"]) == len(b["people"])
    for pa, pb in zip(a["people"], b["people"], strict=True):
        assert list(pa) == list(pb)  # OpenPose's key order
        for k in pa:
            if k == "person_id":
                assert pa[k] == pb[k]
            else:
                np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


def read_json_files(path: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(path.glob("*_keypoints.json"))}


# ---------------------------------------------------------------- import


def test_import_unseg_on_every_engine(target: Any, tmp_path: Path) -> None:
    src = tmp_path / "json"
    frames = write_json_dir(src, "BODY_25", 60, seed=1)
    url, kwargs = target()
    report = import_openpose(src, url, mode="BODY_25", zarr_format=kwargs.get("zarr_format"))
    assert report.frames == 60 and report.poses == sum(len(p) for p in frames)
    with skelstore.open(url) as root:
        attrs = root.attrs
        assert (attrs["fmt_type"], attrs["mode"], attrs["limbs"]) == ("unseg", "BODY_25", 25)
        assert attrs["num_frames"] == 60 and attrs["video"] == "clip.mp4"
        assert attrs["imported_from"] == "openpose-json" and attrs["op_ver"] == 1.3
        if "zarr_format" in kwargs:
            assert root.format_info["zarr_format"] == kwargs["zarr_format"]
        reader = UnsegmentedReader(root, bundle_cls=DumpReaderPoseBundle)
        start = reader.shot_reader.start_frame
        got = {start + i: dict(bundle) for i, bundle in enumerate(reader)}
    for frame, people in enumerate(frames):
        bundle = got.get(frame, {})
        for slot, person in enumerate(people):
            np.testing.assert_array_equal(bundle[slot].keypoints, stacked(person, "BODY_25"))
        for slot, pose in bundle.items():  # slots beyond the frame's people are empty
            if slot >= len(people):
                assert not pose.keypoints.any()


@pytest.mark.parametrize("mode", list(PARTS))
def test_modes_stack_parts_in_order_and_pad(mode: str, tmp_path: Path) -> None:
    person: dict[str, Any] = {"person_id": [-1]}
    for i, key in enumerate(ALL_KEYS):  # keypoint j of part i: x = 1000 i + j, c = 1
        count = dict(PARTS[mode]).get(key)
        person[key] = (
            []
            if count is None
            else [v for j in range(count) for v in (1000.0 * (i + 1) + j, 1.0, 1.0)]
        )
    src = tmp_path / "json"
    src.mkdir()
    (src / "v_000000000000_keypoints.json").write_text(json.dumps({"people": [person]}))
    import_openpose(src, tmp_path / "x.h5", mode=mode)
    with skelstore.open(tmp_path / "x.h5") as root:
        kps = next(iter(dict(b) for b in UnsegmentedReader(root, DumpReaderPoseBundle)))[0]
        kps = kps.keypoints
    assert kps.shape == (LIMBS[mode], 3)
    row = 0
    for key, count in PARTS[mode]:
        i = ALL_KEYS.index(key)
        np.testing.assert_array_equal(
            kps[row : row + count, 0], 1000.0 * (i + 1) + np.arange(count)
        )
        row += count
    assert row == {"BODY_25_FACE": 95, "BODY_25_ALL": 137, "BODY_135": 135}.get(mode, LIMBS[mode])
    assert not kps[row:].any()  # the padding is absent keypoints


def test_import_tracked_uses_person_id(tmp_path: Path) -> None:
    src = tmp_path / "json"
    frames = write_json_dir(src, "BODY_25_HANDS", 80, seed=2, tracked=True, start=10)
    dst = tmp_path / "t.zarr"
    report = import_openpose(src, dst, mode="BODY_25_HANDS", tracked=True)
    ids = {p["person_id"][0] for people in frames for p in people}
    assert report.fmt_type == "trackshots" and report.tracks == len(ids)
    with skelstore.open(dst) as root:
        assert root.attrs["num_frames"] == 90
        shots = list(ShotSegmentedReader(root))
        assert [(s.start_frame, s.end_frame) for s in shots[1:]] == [(10, 90)]
        got = {10 + i: {pid: p.keypoints for pid, p in b} for i, b in enumerate(shots[1])}
    for frame, people in enumerate(frames, start=10):
        for person in people:
            np.testing.assert_array_equal(
                got[frame][person["person_id"][0]], stacked(person, "BODY_25_HANDS")
            )
        present = {p["person_id"][0] for p in people}
        assert all(not kps.any() for pid, kps in got[frame].items() if pid not in present)


def test_import_from_zip_like_skelshop_single_zip(tmp_path: Path) -> None:
    src = tmp_path / "json"
    write_json_dir(src, "BODY_25_FACE", 30, seed=3, base="talk")
    zpath = tmp_path / "talk.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("talk/", "")
        for p in sorted(src.iterdir()):
            z.write(p, f"talk/{p.name}")
    import_openpose(src, tmp_path / "a.h5", mode="BODY_25_FACE")
    import_openpose(zpath, tmp_path / "b.h5", mode="BODY_25_FACE")
    with skelstore.open(tmp_path / "a.h5") as a, skelstore.open(tmp_path / "b.h5") as b:
        assert b.attrs["video"] == "talk.mp4"
        assert compare_dumps(a, b) is None  # the Zarr dump is packed, the HDF5 one not


@pytest.mark.parametrize("tracked", [False, True], ids=["unseg", "tracked"])
def test_import_streams_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracked: bool
) -> None:
    """Memory stays far below the poses' size. Tracked: people come and go (a new
    person_id every 50 frames), so tracks that ended must not keep their buffers."""
    monkeypatch.setattr(op_importer, "IMPORT_BLOCK_FRAMES", 64)
    src = tmp_path / "json"
    rng = np.random.default_rng(4)
    src.mkdir()
    people = make_people(rng, "BODY_25_ALL", 3)
    n = 3000
    for frame in range(n):
        for k, person in enumerate(people):
            person["person_id"] = [frame // 50 * 3 + k if tracked else -1]
        text = json.dumps({"version": 1.3, "people": people})
        (src / f"v_{frame:012d}_keypoints.json").write_text(text)
    warm = tmp_path / "warm"  # the first import loads modules (h5py, zarr, tqdm): not traced
    write_json_dir(warm, "BODY_25_ALL", 2, tracked=True)
    import_openpose(warm, tmp_path / "warm.h5", mode="BODY_25_ALL", tracked=tracked)
    tracemalloc.start()
    try:
        import_openpose(src, tmp_path / "big.h5", mode="BODY_25_ALL", tracked=tracked)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stored = n * 3 * 138 * 3 * 4  # every pose as float32: ~15 MB
    assert peak < stored / 5, f"peak {peak / 1e6:.1f} MB for {stored / 1e6:.1f} MB of poses"
    with skelstore.open(tmp_path / "big.h5") as root:
        assert root.attrs["num_frames"] == n
        parent = root["timeline/shot0"] if tracked else root["timeline"]
        assert len(parent) == (n // 50 * 3 if tracked else 3)


# ---------------------------------------------------------------- errors


def _one_frame(src: Path, text: str, frame: int = 0) -> None:
    src.mkdir(exist_ok=True)
    (src / f"v_{frame:012d}_keypoints.json").write_text(text)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"people": [', "not valid JSON"),
        ('{"version": 1.3}', "no 'people' list"),
        ('{"people": [3]}', r"people\[0\] is not an object"),
        ('{"people": [{"pose_keypoints_2d": [1, 2, 3]}]}', "has 3 values; mode BODY_25 expects 75"),
        ('{"people": [{"face_keypoints_2d": []}]}', "has no 'pose_keypoints_2d'"),
        ('{"people": [{"pose_keypoints_2d": ' + json.dumps(["a"] * 75) + "}]}", "other than numb"),
    ],
)
def test_malformed_json_is_a_typed_error_naming_the_file(
    tmp_path: Path, text: str, match: str
) -> None:
    src = tmp_path / "json"
    write_json_dir(src, "BODY_25", 3, base="v")
    _one_frame(src, text, frame=1)
    with pytest.raises(skelstore.OpenPoseError, match=match) as info:
        import_openpose(src, tmp_path / "x.h5", mode="BODY_25")
    assert "v_000000000001_keypoints.json" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, skelstore.SkelstoreError)
    assert not (tmp_path / "x.h5").exists()  # nothing half-written is left
    assert not [p for p in tmp_path.iterdir() if "skelstore-tmp" in p.name]


def test_missing_frames_error_or_empty(tmp_path: Path) -> None:
    src = tmp_path / "json"
    frames = write_json_dir(src, "BODY_25", 20, seed=5)
    for f in (4, 5, 11):
        (src / f"clip_{f:012d}_keypoints.json").unlink()
    with pytest.raises(skelstore.MissingFramesError, match="4, 5, 11") as info:
        import_openpose(src, tmp_path / "x.h5", mode="BODY_25")
    assert info.value.missing == [4, 5, 11]
    report = import_openpose(src, tmp_path / "x.h5", mode="BODY_25", missing="empty")
    assert report.missing_frames == [4, 5, 11]
    with skelstore.open(tmp_path / "x.h5") as root:
        assert root.attrs["openpose_missing_frames"] == 3
        reader = UnsegmentedReader(root, bundle_cls=DumpReaderPoseBundle)
        start = reader.shot_reader.start_frame
        got = {start + i: dict(b) for i, b in enumerate(reader)}
    for f in (4, 5, 11):
        assert all(not p.keypoints.any() for p in got.get(f, {}).values())
    busy = next(f for f in range(12, 20) if frames[f])  # frames after a gap still line up
    np.testing.assert_array_equal(got[busy][0].keypoints, stacked(frames[busy][0], "BODY_25"))


def test_bad_file_sets_and_tracking_ids(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(skelstore.OpenPoseError, match=r"no \*_keypoints.json"):
        import_openpose(empty, tmp_path / "x.h5")
    mixed = tmp_path / "mixed"
    write_json_dir(mixed, "BODY_25", 2, base="a")
    write_json_dir(mixed, "BODY_25", 2, base="b")
    with pytest.raises(skelstore.OpenPoseError, match="several videos"):
        import_openpose(mixed, tmp_path / "x.h5")
    dup = tmp_path / "dup"
    write_json_dir(dup, "BODY_25", 2, base="a")
    (dup / "a_1_keypoints.json").write_text('{"people": []}')
    with pytest.raises(skelstore.OpenPoseError, match="frame 1 twice"):
        import_openpose(dup, tmp_path / "x.h5")
    with pytest.raises(skelstore.OpenPoseError, match="no such directory"):
        import_openpose(tmp_path / "nowhere", tmp_path / "x.h5")
    untracked = tmp_path / "untracked"
    write_json_dir(untracked, "BODY_25", 5, seed=1)
    with pytest.raises(skelstore.OpenPoseError, match=r"no tracking id.*--tracking"):
        import_openpose(untracked, tmp_path / "x.h5", tracked=True)
    twice = tmp_path / "twice"
    people = make_people(np.random.default_rng(0), "BODY_25", 2, ids=[3, 3])
    _one_frame(twice, json.dumps({"people": people}))
    with pytest.raises(skelstore.OpenPoseError, match="person_id 3 appears twice"):
        import_openpose(twice, tmp_path / "x.h5", tracked=True)
    with pytest.raises(skelstore.UnknownModeError):
        import_openpose(untracked, tmp_path / "x.h5", mode="BODY_99")


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("mode", "tracked"),
    [
        ("BODY_25", False),
        ("BODY_25_ALL", False),
        ("BODY_135", False),
        ("FACE", True),
        ("BODY_25_HANDS", True),
    ],
)
def test_import_export_round_trip_is_exact(tmp_path: Path, mode: str, tracked: bool) -> None:
    src = tmp_path / "json"
    write_json_dir(src, mode, 50, seed=6, tracked=tracked, start=3)
    # the cases a dump cannot hold are not generated: trailing people without any
    # keypoint (untracked) or people without keypoints (tracked)
    for p in src.iterdir():
        doc = json.loads(p.read_text())
        doc["people"] = [q for q in doc["people"] if any(v for k in ALL_KEYS for v in q[k][2::3])]
        p.write_text(json.dumps(doc))
    dump = tmp_path / "d.zarr"
    import_openpose(src, dump, mode=mode, tracked=tracked)
    out = tmp_path / "out"
    report = export_openpose(dump, out)
    assert report.frames == 50
    original, exported = read_json_files(src), read_json_files(out)
    assert list(original) == list(exported)  # same names: clip_<frame>_keypoints.json
    absent = 0
    for name in original:
        assert_same_json(original[name], exported[name])
        absent += sum(v == 0 for p in exported[name]["people"] for v in p[PARTS[mode][0][0]][2::3])
    assert absent > 0  # confidence-0 keypoints were in there, and came back as 0, 0, 0
    # and back again: the same dump, and byte-identical files
    import_openpose(out, tmp_path / "d2.h5", mode=mode, tracked=tracked)
    with skelstore.open(dump) as a, skelstore.open(tmp_path / "d2.h5") as b:
        assert compare_dumps(a, b) is None  # the Zarr dump is packed, the HDF5 one not
    export_openpose(tmp_path / "d2.h5", tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as z:
        assert sorted(z.namelist()) == sorted(exported)
        for name in z.namelist():
            assert z.read(name) == (out / name).read_bytes()


def test_export_of_what_a_dump_cannot_hold(tmp_path: Path) -> None:
    """x, y of confidence-0 keypoints and trailing empty people are not kept."""
    src = tmp_path / "json"
    person = {k: [] for k in ALL_KEYS}
    person["person_id"] = [-1]
    person["pose_keypoints_2d"] = [5.5, 6.5, 0.0] + [1.0, 2.0, 0.5] * 24
    nobody = dict(person, pose_keypoints_2d=[0] * 75)
    _one_frame(src, json.dumps({"version": 1.3, "people": [nobody, person, nobody]}))
    import_openpose(src, tmp_path / "d.h5")
    export_openpose(tmp_path / "d.h5", tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "v_000000000000_keypoints.json").read_text())
    assert len(doc["people"]) == 2  # the empty person before the last is kept, not after
    assert doc["people"][0]["pose_keypoints_2d"] == [0.0] * 75
    assert doc["people"][1]["pose_keypoints_2d"][:6] == [0.0, 0.0, 0.0, 1.0, 2.0, 0.5]


def test_export_trackshots_dump_with_gaps(tmp_path: Path) -> None:
    """A skelshop tracked dump: frames outside shots are files without people."""
    golden = Path(__file__).parent / "data" / "golden" / "trackshots_offset_face.h5"
    report = export_openpose(golden, tmp_path / "out")
    with skelstore.open(golden) as root:
        reader = ShotSegmentedReader(root)
        first = reader.shots[0].start_frame
        n = max(root.attrs["num_frames"], reader.shots[-1].end_frame)
        expected: dict[int, dict[int, np.ndarray]] = {}
        for shot in reader:
            for i, bundle in enumerate(shot):
                expected[shot.start_frame + i] = {
                    pid: p.keypoints for pid, p in bundle if p.keypoints[:, 2].any()
                }
    files = read_json_files(tmp_path / "out")
    assert report.frames == len(files) == n - first
    for frame in range(first, n):
        doc = files[f"video_{frame:012d}_keypoints.json"]
        people = {
            p["person_id"][0]: np.asarray(p["face_keypoints_2d"], np.float32).reshape(70, 3)
            for p in doc["people"]
        }
        assert all(p["pose_keypoints_2d"] == [] for p in doc["people"])
        exp = expected.get(frame, {})
        assert sorted(people) == sorted(exp)
        for pid, kps in exp.items():
            np.testing.assert_array_equal(people[pid], kps.astype(np.float32))


# ---------------------------------------------------------------- command line


def test_cli_import_and_export(tmp_path: Path) -> None:
    src = tmp_path / "json"
    write_json_dir(src, "BODY_25", 12, seed=8)
    runner = CliRunner()
    dst = tmp_path / "v.zarr"
    res = runner.invoke(
        cli,
        ["import-openpose", str(src), str(dst), "--mode", "BODY_25", "--compression", "lossless"],
    )
    assert res.exit_code == 0, res.output
    assert "12 frames" in res.stdout and "[unseg, BODY_25]" in res.stdout
    res = runner.invoke(cli, ["import-openpose", str(src), str(dst), "--mode", "BODY_25"])
    assert res.exit_code == 2 and "already exists" in res.stderr
    out = tmp_path / "out"
    res = runner.invoke(cli, ["export", str(dst), str(out), "--to", "openpose-json"])
    assert res.exit_code == 0, res.output
    assert len(list(out.glob("clip_*_keypoints.json"))) == 12
    res = runner.invoke(cli, ["export", str(dst), str(out), "--to", "openpose-json"])
    assert res.exit_code == 2 and "--overwrite" in res.stderr
    assert (
        runner.invoke(
            cli, ["export", str(dst), str(out), "--to", "openpose-json", "--overwrite", "-q"]
        ).exit_code
        == 0
    )
    (src / "clip_000000000012_keypoints.json").write_text("{not json")
    res = runner.invoke(
        cli, ["import-openpose", str(src), str(tmp_path / "w.h5"), "--mode", "BODY_25"]
    )
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and "clip_000000000012_keypoints.json" in res.stderr
    assert "not valid JSON" in res.stderr


def test_export_refuses_what_it_cannot_split(tmp_path: Path) -> None:
    import h5py

    src = tmp_path / "json"
    write_json_dir(src, "BODY_25", 3, seed=9)
    import_openpose(src, tmp_path / "d.h5")
    with h5py.File(tmp_path / "d.h5", "a") as f:
        f.attrs["limbs"] = 24  # not BODY_25's 25 (e.g. a legacy skelshop layout)
    with pytest.raises(skelstore.FormatError, match="limbs 24 is not 25"):
        export_openpose(tmp_path / "d.h5", tmp_path / "out")
    with h5py.File(tmp_path / "d.h5", "a") as f:
        f.attrs["limbs"] = 25
        del f.attrs["mode"]
    with pytest.raises(skelstore.UnknownModeError, match="cannot export pose mode None"):
        export_openpose(tmp_path / "d.h5", tmp_path / "out")
