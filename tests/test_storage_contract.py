"""The Group/Array contract of skelstore.storage on every built-in engine (the shipped
conformance suite, :class:`skelstore.testing.EngineTests`); engine guessing and adapting
already open h5py/zarr objects."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np
import pytest
import zarr

import skelstore
from skelstore.compression import Encoding
from skelstore.engines import guess_engine, list_engines
from skelstore.storage import ArraySpec, GroupSpec
from skelstore.testing import EngineTests
from skelstore.urls import split_suffix


class TestHDF5(EngineTests):
    engine = "hdf5"
    suffix = ".h5"


class TestZarr3(EngineTests):
    engine = "zarr"
    suffix = ".zarr"
    open_kwargs: ClassVar[dict[str, Any]] = {"zarr_format": 3}


class TestZarr2(EngineTests):
    engine = "zarr"
    suffix = ".zarr"
    open_kwargs: ClassVar[dict[str, Any]] = {"zarr_format": 2}


class TestZarrZip(EngineTests):
    engine = "zarr"
    suffix = ".zarr.zip"


class TestMemoryHDF5(EngineTests):
    """An fsspec URL: the HDF5 engine stages locally and uploads on close."""

    engine = "hdf5"
    suffix = ".h5"

    def new_target(self, tmp_path: Path, name: str = "x") -> str:
        return f"memory://{uuid.uuid4().hex}/{name}{self.suffix}"


class TestMemoryZarr(TestMemoryHDF5):
    engine = "zarr"
    suffix = ".zarr"


@pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in the Zarr")
@pytest.mark.parametrize("fmt", [2, 3])
def test_write_many_batch_is_read_by_zarr_python(tmp_path, fmt):
    """zarr-python itself reads what the Zarr engine's batch writer made, consolidated or not."""
    url = str(tmp_path / "batch.zarr")
    data = np.arange(300, dtype=np.float32).reshape(100, 3)
    with skelstore.open(url, "w", zarr_format=fmt) as root:
        root.write_many(
            [
                GroupSpec("shot0", {"start_frame": 3, "end_frame": 9}),
                GroupSpec("shot0/pose1"),
                ArraySpec("shot0/pose1/data", data, chunks=(10, 3), encoding=Encoding(5)),
            ]
        )
    for consolidated in (True, False):
        z = zarr.open_group(url, mode="r", use_consolidated=consolidated)
        np.testing.assert_array_equal(z["shot0/pose1/data"][...], data)
        assert z["shot0"].attrs["end_frame"] == 9


def test_invalid_mode_and_engine(tmp_path):
    with pytest.raises(skelstore.EngineError):
        skelstore.open(tmp_path / "x.h5", "rw")
    with pytest.raises(skelstore.EngineError) as info:
        skelstore.open(tmp_path / "x.h5", "w", engine="netcdf9")
    assert "hdf5" in str(info.value) and "zarr" in str(info.value)
    with pytest.raises(skelstore.EngineError):
        skelstore.get_engine("nope")
    with pytest.raises(skelstore.EngineError):
        skelstore.open(tmp_path / "y.h5", "w", zarr_format=3)
    with pytest.raises(skelstore.EngineError):
        skelstore.open(tmp_path / "y.zarr", "w", zarr_format=4)
    assert {"hdf5", "zarr"} <= set(list_engines())


def test_explicit_engine_and_aliases(tmp_path):
    with skelstore.open(tmp_path / "plain", "w", engine="h5") as root:
        assert root.engine_name == "hdf5"
    assert h5py.is_hdf5(tmp_path / "plain")
    with skelstore.open(tmp_path / "zdir", "w", engine="zarr2") as root:
        assert root.engine_name == "zarr"
        root.attrs["a"] = 1
    with skelstore.open(tmp_path / "zdir", engine="zarr") as root:
        assert root.attrs["a"] == 1


# ------------------------------------------------------------ engine guessing


@pytest.mark.parametrize(
    ("name", "engine"),
    [
        ("a.h5", "hdf5"),
        ("a.HDF5", "hdf5"),
        ("a.hdf", "hdf5"),
        ("a.zarr", "zarr"),
        ("a.zarr.zip", "zarr"),
        ("a.zarr/", "zarr"),
    ],
)
def test_guess_engine_by_suffix(tmp_path, name, engine):
    assert guess_engine(str(tmp_path / name), "w").name == engine


@pytest.mark.parametrize(
    ("url", "suffix"),
    [
        ("s3://bucket/dir/video.h5", ".h5"),
        ("x.zarr.zip", ".zarr.zip"),
        ("zip::file:///tmp/x.zarr.zip", ".zarr.zip"),
        ("/tmp/x.zarr/", ".zarr"),
        ("memory://abc/video.h5", ".h5"),
        ("memory://video.h5", ".h5"),
        ("memory://store.zarr", ".zarr"),
    ],
)
def test_split_suffix(url, suffix):
    assert split_suffix(url) == suffix


def test_guess_engine_by_sniffing(tmp_path):
    dat = tmp_path / "x.dat"
    with h5py.File(dat, "w") as f:
        f.attrs["k"] = 1
    with skelstore.open(dat) as root:
        assert root.engine_name == "hdf5"
        assert root.attrs["k"] == 1
    for fmt in (2, 3):
        store = tmp_path / f"x{fmt}.store"
        zarr.open_group(str(store), mode="w", zarr_format=fmt).attrs["k"] = fmt
        with skelstore.open(store) as root:
            assert root.engine_name == "zarr"
            assert root.attrs["k"] == fmt
        assert guess_engine(str(store), "r").name == "zarr"
    assert guess_engine(str(dat), "r+").name == "hdf5"


def test_unguessable_target_lists_engines(tmp_path):
    for target, mode in ((tmp_path / "x.bin", "w"), (tmp_path / "x", "w")):
        with pytest.raises(skelstore.EngineError) as info:
            skelstore.open(target, mode)
        assert "hdf5" in str(info.value) and "zarr" in str(info.value)
        assert "x" in str(info.value)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a dump at all" * 10)
    with pytest.raises(skelstore.EngineError) as info:
        skelstore.open(junk)
    assert "junk.bin" in str(info.value)
    assert "hdf5" in str(info.value) and "zarr" in str(info.value)
    with pytest.raises(skelstore.NotFoundError):
        skelstore.open(tmp_path / "missing.bin")


# ------------------------------------------------------------ already open objects


def test_open_wraps_h5py_file_without_closing_it(tmp_path):
    path = tmp_path / "open.h5"
    with h5py.File(path, "w") as f:
        f.create_group("timeline/shot1")
        f.create_group("timeline/shot0")
        root = skelstore.open(f)
        assert root.engine_name == "hdf5"
        assert root.raw is f
        assert root.writable
        assert root["timeline"].keys() == ["shot0", "shot1"]
        root.attrs["via"] = "skelstore"
        root.close()
        assert f.id.valid  # still ours
        assert skelstore.as_group(f["timeline"]).path == "/timeline"
        assert skelstore.as_group(root) is root
    with h5py.File(path, "r") as f:
        assert f.attrs["via"] == "skelstore"
        ro = skelstore.open(f)
        assert not ro.writable
        with pytest.raises(skelstore.ReadOnlyError):
            ro.attrs["x"] = 1


@pytest.mark.parametrize("fmt", [2, 3])
def test_open_wraps_zarr_group(tmp_path, fmt):
    z = zarr.open_group(str(tmp_path / "open.zarr"), mode="w", zarr_format=fmt)
    z.create_group("shot10")
    z.create_group("shot2")
    root = skelstore.open(z)
    assert root.engine_name == "zarr"
    assert root.keys() == ["shot2", "shot10"]
    root.attrs["via"] = np.int64(3)
    root.close()
    assert z.attrs["via"] == 3
    assert skelstore.as_group(z["shot2"]).name == "shot2"


def test_as_group_rejects_other_objects():
    with pytest.raises(skelstore.EngineError):
        skelstore.as_group({"timeline": {}})
    with pytest.raises(skelstore.EngineError):
        skelstore.open(12345)


# ------------------------------------------------------------ remote targets


@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
def test_memory_target_in_a_directory(suffix):
    """fsspec URLs (here ``memory://dir/name``): the HDF5 engine uploads a temporary
    file on close; the Zarr engine writes through fsspec."""
    url = f"memory://{uuid.uuid4().hex}/dump{suffix}"
    with skelstore.open(url, "w") as root:
        root.create_group("g").create_array("a", data=np.arange(5, dtype=np.uint16))
        root.attrs["k"] = "v"
    with skelstore.open(url) as root:
        assert root.attrs["k"] == "v"
        np.testing.assert_array_equal(root["g/a"].read(), np.arange(5))
        with pytest.raises(skelstore.ReadOnlyError):
            root.attrs["k"] = "w"
    with pytest.raises(skelstore.NotFoundError):
        skelstore.open(url.replace("dump", "other"))


def test_memory_hdf5_is_uploaded_whole_on_close():
    """Readers never see a partial remote HDF5 file: nothing exists at the URL until
    the root is closed, then the whole file does; ``a`` downloads and re-uploads."""
    import fsspec

    fs = fsspec.filesystem("memory")
    url = f"memory://{uuid.uuid4().hex}/up.h5"
    root = skelstore.open(url, "w")
    root.create_array("a", data=np.arange(3))
    root.flush()
    assert not fs.exists(url)
    root.close()
    assert fs.exists(url)
    with fs.open(url, "rb") as f:
        assert f.read(8) == b"\x89HDF\r\n\x1a\n"
    root.close()  # twice is fine
    with skelstore.open(url, "a") as root:
        root.attrs["more"] = 1
    with skelstore.open(url) as root:
        assert root.attrs["more"] == 1
        np.testing.assert_array_equal(root["a"].read(), np.arange(3))
