"""Zarr dumps name every array's dimensions, so ``xarray.open_datatree`` opens them."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr

import skelstore
from skelstore.backends.zarr import compat as zarr_compat
from skelstore.conversion import convert
from skelstore.dimensions import FACE_DIMENSIONS, POSE_DIMENSIONS, dimension_names
from skelstore.dump import add_fmt_metadata, add_metadata, write_shots
from skelstore.face import FaceWriter
from skelstore.io import UnsegmentedWriter
from skelstore.sample import sample_frames

GOLDEN = Path(__file__).parent / "data" / "golden"


def open_tree(path: Path) -> xr.DataTree:
    # mask_and_scale=False: xarray would otherwise take Zarr's fill value 0 for
    # "missing" and turn stored zeros into NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's numcodecs-in-v3 notices
        return xr.open_datatree(path, engine="zarr", mask_and_scale=False)


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    """Every array of a dump, by path, as skelstore reads it."""
    out: dict[str, np.ndarray] = {}

    def walk(group: skelstore.Group) -> None:
        for _, node in group.items():
            if isinstance(node, skelstore.Group):
                walk(node)
            else:
                out[node.path] = node[...]

    with skelstore.open(path) as root:
        walk(root)
    return out


def check_tree(path: Path) -> xr.DataTree:
    """The tree opens and holds every array with skelstore's values and dimension names."""
    expected = arrays_of(path)
    tree = open_tree(path)
    seen = 0
    for node in tree.subtree:
        for name, var in node.ds.data_vars.items():
            full = f"{node.path.rstrip('/')}/{name}"
            np.testing.assert_array_equal(var.values, expected[full])
            assert var.dims == dimension_names(full, var.ndim)
            seen += 1
    assert seen == len(expected) > 0
    return tree


def write_sample(path: Path, zarr_format: int, faces: bool = True) -> None:
    with skelstore.open(path, "w", layout="skelshop", zarr_format=zarr_format) as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "v.mp4", num_frames=300, mode="BODY_25", limbs=25)
        write_shots(root, 25, sample_frames(), compression="lossy")
        if faces:
            w = FaceWriter(
                root, sparse=True, write_fod_bbox=True, write_chip_bbox=True, write_chip=True
            )
            w.write_frame_faces(
                np.ones((2, 128)),
                targets=[(0, 0), (0, 1)],
                fod_bboxes=np.ones((2, 4)),
                chip_bboxes=np.ones((2, 5)),
                face_chips=np.ones((2, 150, 150, 3), np.uint8),
            )


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_written_dump_opens_as_a_tree(tmp_path: Path, zarr_format: int) -> None:
    path = tmp_path / "d.zarr"
    write_sample(path, zarr_format)
    tree = check_tree(path)
    pose = tree["timeline/shot0/pose0"]
    assert dict(pose.ds.sizes) == {
        "keypoint_entry": pose.ds["indices"].size,
        "xyc": 3,
        "frame_boundary": pose.attrs["end_frame"] - pose.attrs["start_frame"] + 1,
    }
    assert tree.attrs["mode"] == "BODY_25"
    assert tree["faces"].ds["chip"].dims == FACE_DIMENSIONS["chip"]
    assert tree["faces"].ds["embed"].dims == ("face", "embedding")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_growable_and_dense_face_arrays_too(tmp_path: Path, zarr_format: int) -> None:
    """unseg tracks (growable, appended) and the dense face layout."""
    path = tmp_path / "u.zarr"
    with skelstore.open(path, "w", layout="skelshop", zarr_format=zarr_format) as root:
        add_fmt_metadata(root, "unseg")
        add_metadata(root, "v.mp4", num_frames=300, mode="BODY_25", limbs=25)
        writer = UnsegmentedWriter(root, num_kps=25, block_frames=64)
        writer.start_shot(0)
        for frame, bundle in enumerate(f for f in sample_frames() if isinstance(f, list)):
            writer.register_frame(frame)
            for pose_id, kps in bundle:
                writer.add_pose(frame, pose_id, kps)
        writer.end_shot()
        FaceWriter(root).write_frame_faces(np.zeros((1, 128)))
    tree = check_tree(path)
    assert tree["faces"].ds["indices"].dims == ("frame",)
    assert tree["timeline/pose0"].ds["data"].dims == POSE_DIMENSIONS["data"]


def test_batch_writer_and_its_fallback_name_dimensions_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write_many's own batch path and zarr's public API give the same documents."""
    write_sample(tmp_path / "batch.zarr", 3, faces=False)
    monkeypatch.setattr(zarr_compat, "has_batch_writes", lambda: False)
    write_sample(tmp_path / "public.zarr", 3, faces=False)
    for name in ("data", "indices", "indptr"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr's numcodecs-in-v3 notice (lossy data)
            a = zarr.open_array(tmp_path / "batch.zarr" / "timeline/shot0/pose0" / name, mode="r")
            b = zarr.open_array(tmp_path / "public.zarr" / "timeline/shot0/pose0" / name, mode="r")
        assert a.metadata.dimension_names == b.metadata.dimension_names == POSE_DIMENSIONS[name]


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("name", ["trackshots_body25all", "unseg_body25", "trackshots_lossy"])
def test_converted_golden_dumps_open_as_trees(tmp_path: Path, zarr_format: int, name: str) -> None:
    dst = tmp_path / f"{name}.zarr"
    convert(GOLDEN / f"{name}.h5", dst, zarr_format=zarr_format, verify=True)
    tree = check_tree(dst)
    assert tree.attrs["limbs"] == skelstore.open(GOLDEN / f"{name}.h5").attrs["limbs"]


def test_dimension_names_stay_out_of_attributes_and_hdf5(tmp_path: Path) -> None:
    """Zarr 2 keeps them in an attribute: skelstore hides it, and HDF5 never gets it."""
    path = tmp_path / "d.zarr"
    write_sample(path, 2)
    raw = zarr.open_array(path / "timeline/shot0/pose0/data", mode="r")
    assert raw.attrs["_ARRAY_DIMENSIONS"] == ["keypoint_entry", "xyc"]
    with skelstore.open(path, "r+") as root:
        arr = root["timeline/shot0/pose0/data"]
        assert dict(arr.attrs) == {}
        arr.attrs["note"] = "kept"
        assert dict(arr.attrs) == {"note": "kept"}
        del arr.attrs["note"]
        assert dict(arr.attrs) == {}
    assert zarr.open_array(path / "timeline/shot0/pose0/data").attrs["_ARRAY_DIMENSIONS"] == [
        "keypoint_entry",
        "xyc",
    ]
    convert(path, tmp_path / "d.h5", verify=True)
    with h5py.File(tmp_path / "d.h5", "r") as f:
        datasets: list[h5py.Dataset] = []
        f.visititems(lambda _, o: datasets.append(o) if isinstance(o, h5py.Dataset) else None)
        assert len(datasets) > 10
        assert all(len(d.attrs) == 0 for d in datasets)


def test_golden_hdf5_reconverted_is_bit_exact(tmp_path: Path) -> None:
    """HDF5 -> Zarr -> HDF5 gives skelshop's arrays back unchanged, without new attributes."""
    src = GOLDEN / "trackshots_lossless.h5"
    convert(src, tmp_path / "g.zarr", zarr_format=3)
    convert(tmp_path / "g.zarr", tmp_path / "g.h5", verify=True)
    with h5py.File(src, "r") as a, h5py.File(tmp_path / "g.h5", "r") as b:
        names: list[str] = []
        a.visit(names.append)
        for name in names:
            if isinstance(a[name], h5py.Dataset):
                assert a[name][...].tobytes() == b[name][...].tobytes()
                assert dict(b[name].attrs) == dict(a[name].attrs) == {}


def test_other_arrays_get_unique_names() -> None:
    assert dimension_names("/timeline/shot0/pose3/data", 2) == ("keypoint_entry", "xyc")
    assert dimension_names("timeline/pose12/indptr", 1) == ("frame_boundary",)
    assert dimension_names("/faces/indices", 1) == ("frame",)
    assert dimension_names("/timeline/shot0/pose3/data", 1) == ("data_dim0",)  # not (n, 3)
    assert dimension_names("/extra/table", 2) == ("table_dim0", "table_dim1")
    assert dimension_names("/timeline/poseX/data", 2) == ("data_dim0", "data_dim1")
