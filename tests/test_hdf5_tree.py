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
