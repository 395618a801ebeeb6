"""The HDF5 engine's bulk listing and opening (backends/hdf5/tree.py) keep every
rule of the interface: links, attributes, errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import skelstore
from skelstore.storage import Group


def _file(path: Path) -> None:
    with h5py.File(path, "w") as f:
        pose = f.create_group("t/shot0/pose0")
        pose.attrs.update({"start_frame": 0, "end_frame": 2})
        pose["data"] = np.ones((3, 3), np.float32)
        pose["indptr"] = np.array([0, 1, 3], np.uint32)
        f["t/shot0"].attrs["label"] = "a string"
        f["t/shot0/pose0"].attrs["big"] = np.arange(3)


def test_soft_links_are_listed_where_they_are_reached(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    _file(path)
    with h5py.File(path, "a") as f:
        f["t/shot1"] = h5py.SoftLink("/t/shot0")
        f["t/shot0/gone"] = h5py.SoftLink("/nowhere")
    with skelstore.open(path) as root:
        tree = root["t"].list_tree(3)
        assert tree == Group.list_tree(root["t"], 3)
        assert "/t/shot1/pose0/data" in tree and "/t/shot0/gone" not in tree
        assert tree["/t/shot1"].attrs == {"label": "a string"}
        assert tree["/t/shot0/pose0"].attrs == {"start_frame": 0, "end_frame": 2, "big": [0, 1, 2]}
        arrays = root["t"].arrays_at(["shot1/pose0/indptr", "shot0/pose0/data"])
        np.testing.assert_array_equal(arrays[0][...], [0, 1, 3])
        assert arrays[1].shape == (3, 3)


def test_external_links_are_refused_as_the_interface_refuses_them(tmp_path: Path) -> None:
    path = tmp_path / "e.h5"
    _file(path)
    _file(tmp_path / "other.h5")
    with h5py.File(path, "a") as f:
        f["t/shot0/pose1"] = h5py.ExternalLink("other.h5", "/t/shot0/pose0")
    with skelstore.open(path) as root:
        with pytest.raises(skelstore.FormatError, match="external") as info:
            root["t"].list_tree(3)
        assert "e.h5" in str(info.value)
        with pytest.raises(skelstore.FormatError, match="external"):
            root["t"].arrays_at(["shot0/pose1/data"])


def test_read_at_reads_as_the_arrays_read(tmp_path: Path) -> None:
    """read_at's low-level path gives what arrays_at + reading gives, and hands
    links, external raw data, damage and large arrays to the arrays' own rules."""
    path = tmp_path / "r.h5"
    _file(path)
    other = tmp_path / "other.bin"
    other.write_bytes(np.arange(4, dtype="<i8").tobytes())
    with h5py.File(path, "a") as f:
        f["t/shot1"] = h5py.SoftLink("/t/shot0")
        f["t/shot0/pose0/indices"] = np.array([1, 2, 0], np.uint16)
        f.create_dataset("t/raw", shape=(4,), dtype="<i8", external=[(str(other), 0, 32)])
        f["t/scalar"] = 7.5
        f["t/names"] = np.array([b"a", b"bc"])
    paths = ["shot0/pose0/data", "shot1/pose0/indptr", "shot0/pose0/indices", "scalar", "names"]
    with skelstore.open(path) as root:
        timeline = root["t"]
        got = timeline.read_at(paths)
        want = Group.read_at(timeline, paths)  # the interface's default
        timeline.list_tree(3)  # keeps the groups it opened (read only): same reads
        assert "shot0/pose0" in timeline._listed and "shot1" not in timeline._listed
        again = timeline.read_at(paths)
        assert all(np.array_equal(a, b) for a, b in zip(again, want, strict=True))
        assert len(got) == len(want) == 5
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
        with pytest.raises(skelstore.FormatError, match="allow_external=True") as info:
            timeline.read_at(["shot0/pose0/data", "raw"])
        assert "r.h5" in str(info.value)
        with pytest.raises(skelstore.NotFoundError, match=r"r\.h5"):
            timeline.read_at(["shot0/pose0/nothing"])
        with pytest.raises(skelstore.FormatError, match="expected an array"):
            timeline.read_at(["shot0/pose0"])
    with skelstore.open(path, allow_external=True) as root:
        np.testing.assert_array_equal(root["t"].read_at(["raw"])[0], np.arange(4))


def test_read_at_names_a_damaged_dataset(tmp_path: Path) -> None:
    """A chunk that does not decompress: the error names the dataset, as reading it
    through its array does."""
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        values = np.arange(1000, dtype=np.int64)
        f.create_dataset("a", data=values, chunks=(1000,), compression="gzip")
        info = f["a"].id.get_chunk_info(0)
        start, size = info.byte_offset, info.size
    with open(path, "r+b") as fh:  # overwrite the middle of the compressed chunk
        fh.seek(start + size // 2)
        fh.write(b"\xff" * 16)
    with (
        skelstore.open(path) as root,
        pytest.raises(skelstore.FormatError, match=r"d\.h5:/a: cannot read"),
    ):
        root.read_at(["a"])


def test_read_only_files_get_a_fixed_metadata_cache(tmp_path: Path) -> None:
    """libhdf5's metadata cache of a file opened read-only does not grow (it held
    ~50 MB for nothing over a pass through a large dump); writers keep the default."""
    from skelstore.backends.hdf5.encoding import READ_METADATA_CACHE_BYTES

    path = tmp_path / "m.h5"
    _file(path)
    with skelstore.open(path) as root:
        config = root.raw.file.id.get_mdc_config()
        assert config.max_size == config.initial_size == READ_METADATA_CACHE_BYTES
        assert config.incr_mode == 0
    with skelstore.open(path, "a") as root:
        assert root.raw.file.id.get_mdc_config().max_size > READ_METADATA_CACHE_BYTES
