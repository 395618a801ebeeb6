"""Bad input raises typed errors under skelstore.SkelstoreError, naming the file.

The bad files are built with plain h5py, starting from a minimal valid dump.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import skelstore
from skelstore.io import ShotSegmentedReader, UnsegmentedReader


def build(
    path: Path,
    *,
    fmt_type: str | None = "trackshots",
    mode: str | None = "BODY_25",
    limbs=25,
    shots: dict | None = None,
) -> Path:
    """A dump with plain h5py. ``shots`` maps shot names to
    ``{"attrs": {...}, "poses": {name: {"attrs", "data", "indices", "indptr"}}}``;
    for an unseg dump give one shot named ``""`` (its poses go under /timeline)."""
    if shots is None:
        shots = {"shot0": good_shot()}
    with h5py.File(path, "w") as f:
        if fmt_type is not None:
            f.attrs["fmt_type"] = fmt_type
        f.attrs["fmt_ver"] = 1
        if mode is not None:
            f.attrs["mode"] = mode
        if limbs is not None:
            f.attrs["limbs"] = limbs
        tl = f.create_group("timeline")
        for name, shot in shots.items():
            grp = tl.create_group(name) if name else tl
            for k, v in shot.get("attrs", {}).items():
                grp.attrs[k] = v
            for pname, pose in shot.get("poses", {}).items():
                pg = grp.create_group(pname)
                for k, v in pose.get("attrs", {}).items():
                    pg.attrs[k] = v
                for arr, dtype in (
                    ("data", np.float32),
                    ("indices", np.uint16),
                    ("indptr", np.uint32),
                ):
                    if pose.get(arr) is not None:
                        pg.create_dataset(arr, data=np.asarray(pose[arr], dtype=dtype))
    return path


def good_pose(start: int = 0, end: int = 3, **override) -> dict:
    pose = {
        "attrs": {"start_frame": start, "end_frame": end},
        "data": np.ones((end - start, 3)),
        "indices": np.arange(end - start),
        "indptr": np.arange(end - start + 1),
    }
    pose.update(override)
    return pose


def good_shot(start: int = 0, end: int = 3, **poses) -> dict:
    return {
        "attrs": {"start_frame": start, "end_frame": end},
        "poses": poses or {"pose0": good_pose(start, end)},
    }


def read_trackshots(target) -> int:
    """Decode everything; return the number of poses seen."""
    with skelstore.open(target) as root:
        return sum(len(list(b)) for shot in ShotSegmentedReader(root) for b in shot)


def read_unseg(target) -> int:
    with skelstore.open(target) as root:
        return sum(len(list(b)) for b in UnsegmentedReader(root))


def raises(exc_type, path: Path, fn, *args):
    """``fn(*args)`` raises ``exc_type`` (a SkelstoreError) naming ``path``."""
    with pytest.raises(exc_type) as info:
        fn(*args)
    assert isinstance(info.value, skelstore.SkelstoreError)
    assert path.name in str(info.value), str(info.value)
    return info.value


def test_minimal_dumps_are_valid(tmp_path):
    """The starting points of every bad file below decode fine."""
    assert read_trackshots(build(tmp_path / "ok.h5")) == 3
    unseg = build(
        tmp_path / "ok_unseg.h5",
        fmt_type="unseg",
        shots={
            "": {
                "attrs": {"start_frame": 0, "end_frame": 3},
                "poses": {"pose0": good_pose(), "pose1": good_pose(1, 3)},
            }
        },
    )
    assert read_unseg(unseg) == 5


# ------------------------------------------------------------ root attributes


def test_missing_fmt_type(tmp_path):
    path = build(tmp_path / "nofmt.h5", fmt_type=None)
    raises(skelstore.FormatError, path, read_trackshots, path)
    raises(skelstore.FormatError, path, read_unseg, path)
    with h5py.File(path, "r") as f:
        raises(skelstore.FormatError, path, ShotSegmentedReader, f)


def test_wrong_fmt_type(tmp_path):
    path = build(tmp_path / "seg.h5", fmt_type="trackshots")
    err = raises(skelstore.FormatError, path, read_unseg, path)
    assert "trackshots" in str(err)
    unseg = build(
        tmp_path / "unseg.h5",
        fmt_type="unseg",
        shots={"": {"attrs": {"start_frame": 0, "end_frame": 3}, "poses": {"pose0": good_pose()}}},
    )
    raises(skelstore.FormatError, unseg, read_trackshots, unseg)
    other = build(tmp_path / "other.h5", fmt_type="segments")
    raises(skelstore.FormatError, other, read_trackshots, other)


def test_unknown_mode(tmp_path):
    path = build(tmp_path / "mode.h5", mode="BODY_99")
    err = raises(skelstore.UnknownModeError, path, read_trackshots, path)
    assert isinstance(err, skelstore.FormatError)
    assert "BODY_99" in str(err)
    unseg = build(
        tmp_path / "mode_unseg.h5",
        fmt_type="unseg",
        mode="NOSE",
        shots={"": {"attrs": {"start_frame": 0, "end_frame": 3}, "poses": {"pose0": good_pose()}}},
    )
    raises(skelstore.UnknownModeError, unseg, read_unseg, unseg)


@pytest.mark.parametrize("limbs", [0, -4, "many", 70_000])
def test_bad_limbs(tmp_path, limbs):
    path = build(tmp_path / "limbs.h5", mode=None, limbs=limbs)
    raises(skelstore.FormatError, path, read_trackshots, path)


def test_missing_timeline(tmp_path):
    path = tmp_path / "notl.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"fmt_type": "trackshots", "mode": "BODY_25", "limbs": 25})
    raises(skelstore.FormatError, path, read_trackshots, path)


# ------------------------------------------------------------ structure


def test_shot_not_named_shot_n(tmp_path):
    path = build(tmp_path / "shotx.h5", shots={"shot0": good_shot(), "shotX": good_shot(3, 6)})
    err = raises(skelstore.FormatError, path, read_trackshots, path)
    assert "shotX" in str(err)


def test_pose_not_named_pose_n(tmp_path):
    path = build(tmp_path / "posex.h5", shots={"shot0": good_shot(poseA=good_pose())})
    err = raises(skelstore.FormatError, path, read_trackshots, path)
    assert "poseA" in str(err)


def test_pose_group_missing_indptr(tmp_path):
    path = build(tmp_path / "noindptr.h5", shots={"shot0": good_shot(pose0=good_pose(indptr=None))})
    err = raises(skelstore.FormatError, path, read_trackshots, path)
    assert "indptr" in str(err)


def test_pose_group_missing_data(tmp_path):
    path = build(tmp_path / "nodata.h5", shots={"shot0": good_shot(pose0=good_pose(data=None))})
    raises(skelstore.FormatError, path, read_trackshots, path)


def test_data_of_wrong_shape(tmp_path):
    path = build(
        tmp_path / "shape.h5", shots={"shot0": good_shot(pose0=good_pose(data=np.ones((3, 2))))}
    )
    raises(skelstore.FormatError, path, read_trackshots, path)


def test_indptr_shorter_than_frame_range(tmp_path):
    path = build(
        tmp_path / "short.h5", shots={"shot0": good_shot(pose0=good_pose(indptr=[0, 1, 2]))}
    )
    err = raises(skelstore.FormatError, path, read_trackshots, path)
    assert "indptr" in str(err)


def test_indptr_not_monotone(tmp_path):
    path = build(
        tmp_path / "mono.h5", shots={"shot0": good_shot(pose0=good_pose(indptr=[0, 2, 1, 3]))}
    )
    err = raises(skelstore.FormatError, path, read_trackshots, path)
    assert "indptr" in str(err)


def test_indptr_past_the_data(tmp_path):
    path = build(
        tmp_path / "past.h5", shots={"shot0": good_shot(pose0=good_pose(indptr=[0, 1, 2, 9]))}
    )
    raises(skelstore.FormatError, path, read_trackshots, path)


def test_indices_not_below_limbs(tmp_path):
    path = build(
        tmp_path / "idx.h5", shots={"shot0": good_shot(pose0=good_pose(indices=[0, 1, 25]))}
    )
    err = raises(skelstore.FormatError, path, read_trackshots, path)
    assert "25" in str(err)


def test_missing_frame_attrs(tmp_path):
    path = build(
        tmp_path / "noattrs.h5",
        shots={"shot0": {"attrs": {"start_frame": 0}, "poses": {"pose0": good_pose()}}},
    )
    err = raises(skelstore.FormatError, path, read_trackshots, path)
    assert "end_frame" in str(err)
    pose = build(
        tmp_path / "posenoattrs.h5",
        shots={"shot0": good_shot(pose0=good_pose(attrs={"end_frame": 3}))},
    )
    raises(skelstore.FormatError, pose, read_trackshots, pose)
    unseg = build(
        tmp_path / "unsegnoattrs.h5",
        fmt_type="unseg",
        shots={"": {"attrs": {}, "poses": {"pose0": good_pose()}}},
    )
    raises(skelstore.FormatError, unseg, read_unseg, unseg)


def test_reversed_frame_range(tmp_path):
    path = build(
        tmp_path / "rev.h5", shots={"shot0": {"attrs": {"start_frame": 5, "end_frame": 2}}}
    )
    raises(skelstore.FormatError, path, read_trackshots, path)


def test_overlapping_shots(tmp_path):
    path = build(
        tmp_path / "overlap.h5", shots={"shot0": good_shot(0, 3), "shot1": good_shot(2, 5)}
    )
    raises(skelstore.FormatError, path, read_trackshots, path)


# ------------------------------------------------------------ files


def test_non_hdf5_file_named_h5(tmp_path):
    path = tmp_path / "fake.h5"
    path.write_bytes(b"this is not HDF5\n" * 100)
    err = raises(skelstore.FormatError, path, skelstore.open, path)
    assert isinstance(err, ValueError)
    raises(skelstore.FormatError, path, read_trackshots, path)


def test_empty_file_named_h5(tmp_path):
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    raises(skelstore.FormatError, path, skelstore.open, path)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.h5"
    err = raises(skelstore.NotFoundError, path, skelstore.open, path)
    assert isinstance(err, FileNotFoundError)
    raises(skelstore.NotFoundError, path, skelstore.open, path, "r+")
    zpath = tmp_path / "absent.zarr"
    raises(skelstore.NotFoundError, zpath, skelstore.open, zpath)
    assert not zpath.exists() and not path.exists()


def test_error_hierarchy():
    assert issubclass(skelstore.FormatError, ValueError)
    assert issubclass(skelstore.UnknownModeError, skelstore.FormatError)
    assert issubclass(skelstore.IncompleteDumpError, skelstore.FormatError)
    assert issubclass(skelstore.NotFoundError, FileNotFoundError)
    assert issubclass(skelstore.ReadOnlyError, PermissionError)
    assert issubclass(skelstore.MissingDependencyError, skelstore.EngineError)
    assert issubclass(skelstore.MissingDependencyError, ImportError)
    for cls in (
        skelstore.FormatError,
        skelstore.NotFoundError,
        skelstore.ReadOnlyError,
        skelstore.EngineError,
        skelstore.UnknownModeError,
    ):
        assert issubclass(cls, skelstore.SkelstoreError)


def test_a_storage_not_found_is_not_reported_as_a_missing_timeline(golden_dir, monkeypatch):
    """Only a /timeline that is not listed is "no /timeline group"; a listed one the
    storage fails to fetch keeps the storage's NotFoundError."""
    from skelstore.io import ShotSegmentedReader

    with skelstore.open(golden_dir / "trackshots_lossless.h5") as root:

        def vanished(name, *args):
            raise skelstore.NotFoundError(f"{root.source}: object {name} vanished (HTTP 404)")

        monkeypatch.setattr(type(root), "child", lambda self, name, *a: vanished(name))
        with pytest.raises(skelstore.NotFoundError, match="vanished") as info:
            ShotSegmentedReader(root)
        assert not isinstance(info.value, skelstore.FormatError)
    with skelstore.open(golden_dir / "trackshots_lossless.h5") as root:
        monkeypatch.setattr(type(root), "child", lambda self, name, *a: None)
        monkeypatch.setattr(type(root), "keys", lambda self: [])
        with pytest.raises(skelstore.FormatError, match="no /timeline group"):
            ShotSegmentedReader(root)
