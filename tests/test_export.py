"""``skelstore export --to movement``: movement-shaped poses datasets in netCDF and Zarr."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import skelstore
from skelstore.cli import cli
from skelstore.dense import read_poses
from skelstore.export import export_movement

GOLDEN = Path(__file__).parent / "data" / "golden"


def check_movement(
    ds: xr.Dataset, src: Path, frames: slice | None = None, fps: float | None = None
) -> None:
    """``ds`` holds ``src``'s poses in movement's layout (either dimension names)."""
    kp, ind = ("keypoints", "individuals") if "keypoints" in ds.dims else ("keypoint", "individual")
    assert ds["position"].dims == ("time", "space", kp, ind)
    assert ds["confidence"].dims == ("time", kp, ind)
    assert list(ds["space"].values) == ["x", "y"]
    assert ds.attrs["ds_type"] == "poses" and "OpenPose" in ds.attrs["source_software"]
    p = read_poses(src, frames=frames)
    assert list(ds[ind].values) == [f"id_{i}" for i in p.pose_ids]
    assert list(ds[kp].values) == p.keypoint_names and ds.sizes[kp] == p.limbs
    conf = p.keypoints[..., 2]  # (time, individuals, keypoints)
    got_conf = ds["confidence"].values.transpose(0, 2, 1)
    np.testing.assert_array_equal(np.isnan(got_conf), conf == 0)
    np.testing.assert_array_equal(got_conf[conf > 0], conf[conf > 0])
    got_pos = ds["position"].values.transpose(0, 3, 2, 1)  # -> (time, individuals, kps, space)
    np.testing.assert_array_equal(got_pos[conf > 0], p.keypoints[..., :2][conf > 0])
    assert np.isnan(got_pos[conf == 0]).all()
    if fps:
        assert ds.attrs["fps"] == fps and ds.attrs["time_unit"] == "seconds"
        np.testing.assert_allclose(ds["time"].values, p.frames / fps)
    else:
        np.testing.assert_array_equal(ds["time"].values, p.frames)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
@pytest.mark.parametrize("name", ["unseg_body25.h5", "trackshots_body25all.h5"])
def test_export_movement_files_read_back(tmp_path: Path, suffix: str, name: str) -> None:
    src = GOLDEN / name
    dst = tmp_path / f"poses{suffix}"
    export_movement(src, dst, fps=25.0)
    opened = xr.open_dataset(dst, engine="h5netcdf") if suffix == ".nc" else xr.open_zarr(dst)
    with opened as ds:
        ds.load()
        check_movement(ds, src, fps=25.0)
        assert ds.attrs["source_file"] == str(src)
        assert ds["shot"].dims == ("time",)
    with pytest.raises(skelstore.EngineError, match="already exists"):
        export_movement(src, dst)
    export_movement(src, dst, frames=slice(10, 60), overwrite=True)
    opened = xr.open_dataset(dst, engine="h5netcdf") if suffix == ".nc" else xr.open_zarr(dst)
    with opened as ds:
        assert ds.sizes["time"] == 50
        check_movement(ds.load(), src, frames=slice(10, 60))


def test_export_movement_cli_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = GOLDEN / "trackshots_offset_face.h5"
    runner = CliRunner()
    dst = tmp_path / "shot1.nc"
    res = runner.invoke(cli, ["export", str(src), str(dst), "--to", "movement", "--shot", "1"])
    assert res.exit_code == 0, res.output
    assert "[movement]" in res.stdout and "individual" in res.stdout
    with skelstore.open(src) as root:
        attrs = root["timeline/shot1"].attrs
        a, b = attrs["start_frame"], attrs["end_frame"]
    with xr.open_dataset(dst, engine="h5netcdf") as ds:
        assert ds.sizes["time"] == b - a and set(ds["shot"].values.tolist()) == {1}
        check_movement(ds.load(), src, frames=slice(a, b))
    res = runner.invoke(cli, ["export", str(src), str(tmp_path / "x.csv"), "--to", "movement"])
    assert res.exit_code == 2 and "*.nc" in res.stderr
    res = runner.invoke(
        cli, ["export", str(src), str(tmp_path / "j"), "--to", "openpose-json", "--fps", "25"]
    )
    assert res.exit_code == 2 and "--fps does not apply to --to openpose-json" in res.stderr
    monkeypatch.setitem(sys.modules, "h5netcdf", None)  # as if not installed
    with pytest.raises(skelstore.MissingDependencyError, match=r"skelstore\[export\]"):
        export_movement(src, tmp_path / "y.nc")
