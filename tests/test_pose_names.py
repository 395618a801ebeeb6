"""Keypoint names and skeleton edges of every pose mode (skelstore.pose.SKELETONS)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import skelstore
from skelstore.dense import read_poses, to_xarray
from skelstore.dump import add_fmt_metadata, add_metadata, write_shots
from skelstore.openpose import PARTS, export_openpose, import_openpose
from skelstore.pose import CUSTOM_MODE, LIMBS, MODES, SKELETONS, keypoint_names, skeleton

GENERIC = re.compile(r"^kp\d+$")

#: OpenPose part of skelstore's Skeleton parts -> the JSON list the importer stacks.
JSON_PART = {
    "body": "pose_keypoints_2d",
    "body135": "pose_keypoints_2d",
    "left_hand": "hand_left_keypoints_2d",
    "right_hand": "hand_right_keypoints_2d",
    "face": "face_keypoints_2d",
}


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_names_each_keypoint_once(mode: str) -> None:
    skel = skeleton(mode)
    assert skel.mode == mode
    assert skel.limbs == len(skel.keypoints) == LIMBS[mode]  # skelshop's limb counts
    assert len(set(skel.keypoints)) == skel.limbs
    assert not any(GENERIC.match(n) for n in skel.keypoints)
    assert keypoint_names(mode, LIMBS[mode]) == list(skel.keypoints)
    # edges join two different existing keypoints, each pair once
    assert skel.edges
    assert all(0 <= a < skel.limbs and 0 <= b < skel.limbs and a != b for a, b in skel.edges)
    assert len({frozenset(e) for e in skel.edges}) == len(skel.edges)
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in skel.edge_names())
    # no edge touches the padding; every other keypoint but the pupils has one
    pad = set(skel.padding())
    touched = {k for e in skel.edges for k in e}
    assert not touched & pad
    lonely = {skel.keypoints[k] for k in set(range(skel.limbs)) - touched - pad}
    assert lonely <= {"RPupil", "LPupil"}


@pytest.mark.parametrize("mode", MODES)
def test_parts_match_the_openpose_import(mode: str) -> None:
    """The parts tile the pose in the order the OpenPose importer stacks them."""
    skel = skeleton(mode)
    parts = [p for p in skel.parts if p[0] != "padding"]
    assert [(JSON_PART[name], count) for name, _, count in parts] == list(PARTS[mode])
    pos = 0
    for _, start, count in skel.parts:
        assert start == pos
        pos += count
    assert pos == skel.limbs
    assert [skel.keypoints[i] for i in skel.padding()] == [f"Pad{i}" for i in skel.padding()]


def test_padding_is_where_skelshop_counts_more_than_openpose() -> None:
    assert {m: len(SKELETONS[m].padding()) for m in MODES} == {
        "BODY_25_ALL": 1,
        "BODY_25_HANDS": 0,
        "BODY_25": 0,
        "BODY_135": 3,
        "FACE": 0,
        "BODY_25_FACE": 1,
    }
    assert SKELETONS["BODY_25_ALL"].keypoints[137] == "Pad137"


def test_names_and_edges_are_openposes() -> None:
    body = SKELETONS["BODY_25"]
    assert body.keypoints[:9] == (
        "Nose",
        "Neck",
        "RShoulder",
        "RElbow",
        "RWrist",
        "LShoulder",
        "LElbow",
        "LWrist",
        "MidHip",
    )
    assert ("Neck", "MidHip") in body.edge_names() and ("RAnkle", "RHeel") in body.edge_names()
    hands = SKELETONS["BODY_25_HANDS"]
    assert hands.keypoints[25] == "LHandWrist" and hands.keypoints[46] == "RHandWrist"
    assert ("LHandWrist", "LThumb1CMC") in hands.edge_names()
    assert ("RPinky3DIP", "RPinky4FingerTip") in hands.edge_names()
    face = SKELETONS["FACE"]
    assert ("OMouth11", "OMouth0") in face.edge_names()  # the closed outer lips
    assert len(face.edges) == 63
    b135 = SKELETONS["BODY_135"]
    assert ("LWrist", "LThumb1CMC") in b135.edge_names()  # hands start at the body's wrists
    assert len(b135.edges) == 23 + 2 * 20 + 63


def test_names_agree_with_pose_format() -> None:
    """pose-format copies OpenPose's names for BODY_25 and BODY_135."""
    from pose_format.utils import openpose, openpose_135

    assert list(SKELETONS["BODY_25"].keypoints) == openpose.BODY_POINTS
    assert list(SKELETONS["BODY_135"].keypoints[:135]) == openpose_135.BODY_135_POINTS


def test_unknown_and_legacy_layouts_get_generic_names() -> None:
    assert keypoint_names(None, 3) == ["kp0", "kp1", "kp2"]
    assert keypoint_names("BODY_25_ALL", 135)[0] == "kp0"  # legacy skelshop layout
    assert keypoint_names(CUSTOM_MODE, 2, ["head", "tail"]) == ["head", "tail"]
    assert keypoint_names(CUSTOM_MODE, 2, ["head", "head"]) == ["kp0", "kp1"]
    with pytest.raises(skelstore.UnknownModeError, match="BODY_25"):
        skeleton("BODY_99")


@pytest.mark.parametrize("mode", MODES)
def test_exports_use_the_names(tmp_path: Path, mode: str) -> None:
    """read_poses and the movement-style dataset name every keypoint of every mode."""
    limbs = LIMBS[mode]
    rng = np.random.default_rng(3)
    frames = [[(0, np.c_[rng.uniform(1, 99, (limbs, 2)), np.full(limbs, 0.5)])] for _ in range(3)]
    with skelstore.open(tmp_path / "d.h5", "w") as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "v.mp4", num_frames=3, mode=mode, limbs=limbs)
        write_shots(root, limbs, frames)
    assert read_poses(tmp_path / "d.h5").keypoint_names == list(SKELETONS[mode].keypoints)
    ds = to_xarray(tmp_path / "d.h5")
    assert list(ds["keypoints"].values) == list(SKELETONS[mode].keypoints)


def write_json(directory: Path, mode: str) -> None:
    directory.mkdir()
    person = {
        k: []
        for k in (
            "pose_keypoints_2d",
            "face_keypoints_2d",
            "hand_left_keypoints_2d",
            "hand_right_keypoints_2d",
        )
    }
    for key, count in PARTS[mode]:
        person[key] = [1.0, 2.0, 0.5] * count
    person["person_id"] = [-1]
    (directory / "v_000000000000_keypoints.json").write_text(
        '{"version": 1.3, "people": [' + str(person).replace("'", '"') + "]}"
    )


@pytest.mark.parametrize("mode", ["BODY_25_ALL", "BODY_25_FACE", "BODY_135"])
def test_openpose_export_refuses_a_stored_padding_keypoint(tmp_path: Path, mode: str) -> None:
    """It used to drop BODY_25_ALL's keypoint 137 silently; now it refuses, writing nothing."""
    import h5py

    write_json(tmp_path / "json", mode)
    dump = tmp_path / "d.h5"
    import_openpose(tmp_path / "json", dump, mode=mode)
    export_openpose(dump, tmp_path / "ok")  # nothing stored in the padding: fine
    last = LIMBS[mode] - 1
    with h5py.File(dump, "a") as f:  # store the last (padding) keypoint of pose 0
        grp = f["timeline/pose0"]
        data, indices = grp["data"][:], grp["indices"][:]
        for name, values in (
            ("data", np.vstack([data, [[7.0, 8.0, 0.9]]])),
            ("indices", np.append(indices, last).astype(indices.dtype)),
        ):
            del grp[name]
            grp.create_dataset(name, data=values)
        grp["indptr"][-1] = len(indices) + 1
    assert read_poses(dump).keypoints[0, 0, last, 2] == np.float32(0.9)
    with pytest.raises(skelstore.FormatError, match=rf"keypoint {last} \(Pad{last}\).*refusing"):
        export_openpose(dump, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(skelstore.FormatError, match="refusing"):
        export_openpose(dump, tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_golden_body25all_refused_with_the_track_named(tmp_path: Path) -> None:
    """skelshop's golden BODY_25_ALL dump stores keypoint 137 (synthetic data)."""
    golden = Path(__file__).parent / "data" / "golden" / "trackshots_body25all.h5"
    with pytest.raises(skelstore.FormatError, match=r"shot0/pose0: stores keypoint 137 \(Pad137\)"):
        export_openpose(golden, tmp_path / "out")


@pytest.mark.parametrize("mode", sorted(PARTS))
def test_pose_from_json_stacks_the_parts_the_importer_stacks(mode: str) -> None:
    from skelstore.pose import POSE_CLASSES

    rng = np.random.default_rng(7)
    person = {key: rng.random(3 * n).astype(np.float32).tolist() for key, n in PARTS[mode]}
    pose = POSE_CLASSES[mode].from_json(person)
    expected = np.concatenate([np.reshape(person[key], (-1, 3)) for key, _ in PARTS[mode]])
    assert pose.keypoints.dtype == np.float32
    assert np.array_equal(pose.keypoints, expected.astype(np.float32))
