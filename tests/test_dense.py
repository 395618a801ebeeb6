"""The dense API: read_poses and to_xarray, checked against skelshop's decodings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import skelstore
from skelstore.conversion import convert
from skelstore.dense import read_poses, to_xarray

GOLDEN = Path(__file__).parent / "data" / "golden"
FILES = sorted(GOLDEN.glob("*.h5"))


def _expected(path: Path) -> dict[str, np.ndarray]:
    return dict(np.load(str(path).replace(".h5", ".expected.npz")))


def _check(p, exp: dict[str, np.ndarray], f0: int, f1: int, atol: float = 0.0) -> int:
    slot = {int(x): i for i, x in enumerate(p.pose_ids)}
    sel = (exp["frame"] >= f0) & (exp["frame"] < f1)
    for fr, pid, shot, kp in zip(
        exp["frame"][sel], exp["pose_id"][sel], exp["shot"][sel], exp["keypoints"][sel], strict=True
    ):
        i = fr - f0
        assert p.frames[i] == fr and p.shots[i] == shot
        assert p.present[i, slot[pid]]
        np.testing.assert_allclose(
            p.keypoints[i, slot[pid]], kp.astype(np.float32), rtol=0, atol=atol
        )
    # nothing present beyond what skelshop yields
    assert int(p.present.sum()) == int(sel.sum())
    return int(sel.sum())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_read_poses_matches_skelshop(path: Path) -> None:
    exp = _expected(path)
    p = read_poses(path)
    assert p.keypoints.dtype == np.float32 and p.keypoints.shape[1:] == (
        len(p.pose_ids),
        int(skelstore.open(path).attrs["limbs"]),
        3,
    )
    _check(p, exp, int(p.frames[0]), int(p.frames[-1]) + 1)
    # absent poses are all zero
    assert not p.keypoints[~p.present].any()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_frame_ranges_and_zarr(path: Path, tmp_path: Path) -> None:
    exp = _expected(path)
    z = tmp_path / "x.zarr"
    convert(path, z)
    for f0, f1 in [(0, 50), (90, 130), (250, 420)]:
        for src in (path, z):
            p = read_poses(src, frames=slice(f0, f1))
            assert len(p.frames) == f1 - f0
            lossy = "lossy" in path.stem and src == z  # Zarr re-quantises HDF5's lossy values
            _check(p, exp, f0, f1, atol=0.01 if lossy else 0.0)


def test_one_shot_and_raw_h5py() -> None:
    import h5py

    path = GOLDEN / "trackshots_offset_face.h5"
    exp = _expected(path)
    with h5py.File(path) as f:
        attrs = f["timeline/shot1"].attrs
        a, b = int(attrs["start_frame"]), int(attrs["end_frame"])
        p = read_poses(f, shot=1)
    assert (p.frames[0], p.frames[-1] + 1) == (a, b) and set(p.shots) == {1}
    assert _check(p, exp, a, b) > 0
    with pytest.raises(skelstore.NotFoundError):
        read_poses(path, shot=99)


def test_to_xarray_is_movement_shaped() -> None:
    path = GOLDEN / "unseg_body25.h5"
    ds = to_xarray(path, fps=25.0)
    assert ds["position"].dims == ("time", "individuals", "keypoints", "space")
    assert ds["confidence"].dims == ("time", "individuals", "keypoints")
    assert list(ds["space"].values) == ["x", "y"]
    assert list(ds["keypoints"].values[:2]) == ["Nose", "Neck"]
    assert ds.attrs["ds_type"] == "poses" and ds.attrs["fps"] == 25.0
    assert float(ds["time"][25]) == pytest.approx(1.0)
    p = read_poses(path)
    conf = p.keypoints[..., 2]
    np.testing.assert_array_equal(np.isnan(ds["confidence"].values), conf == 0)
    np.testing.assert_array_equal(ds["position"].values[conf > 0], p.keypoints[..., :2][conf > 0])
    assert np.isnan(ds["position"].values[conf == 0]).all()
