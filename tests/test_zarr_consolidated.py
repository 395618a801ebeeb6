"""Consolidated metadata: written on close, used when fresh, bypassed when stale."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import zarr

import skelstore
from skelstore.conversion import convert
from skelstore.io import ShotSegmentedReader

GOLDEN = Path(__file__).parent / "data" / "golden"


def _consolidated_members(path: Path, fmt: int) -> set[str]:
    if fmt == 3:
        doc = json.loads((path / "zarr.json").read_text())
        return set(doc["consolidated_metadata"]["metadata"])
    doc = json.loads((path / ".zmetadata").read_text())
    return {k.rsplit("/", 1)[0] for k in doc["metadata"] if k.count("/") >= 1}


@pytest.mark.parametrize("fmt", [3, 2])
def test_stale_consolidated_metadata_falls_back_to_listing(tmp_path: Path, fmt: int) -> None:
    path = tmp_path / "x.zarr"
    convert(GOLDEN / "trackshots_offset_face.h5", path, zarr_format=fmt, layout="skelshop")
    assert "timeline/shot2" in _consolidated_members(path, fmt)
    # another tool adds a shot and does not re-consolidate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = zarr.open_group(path, mode="r+", use_consolidated=False)
        shot = g["timeline"].create_group("shot3")
        shot.attrs.update({"start_frame": 500, "end_frame": 510})
    assert "timeline/shot3" not in _consolidated_members(path, fmt)  # the document is stale
    with skelstore.open(path) as root:
        assert root["timeline"].keys() == ["shot0", "shot1", "shot2", "shot3"]
        assert len(ShotSegmentedReader(root)) == 4


@pytest.mark.parametrize("fmt", [3, 2])
def test_fresh_consolidated_metadata_is_used(tmp_path: Path, fmt: int) -> None:
    path = tmp_path / "x.zarr"
    convert(GOLDEN / "trackshots_offset_face.h5", path, zarr_format=fmt)
    with skelstore.open(path) as root:
        assert root.raw.metadata.consolidated_metadata is not None
        assert len(ShotSegmentedReader(root)) == 3


def _read_all(path: Path) -> list:
    with skelstore.open(path) as root:
        return [
            [{pid: pose.keypoints.tolist() for pid, pose in bundle} for bundle in shot]
            for shot in ShotSegmentedReader(root)
        ]


def test_members_come_from_consolidated_metadata(tmp_path: Path, monkeypatch) -> None:
    """With fresh consolidated metadata, members are built from it: zarr-python's
    ``Group.__getitem__`` (a round trip through its event loop each) is not used."""
    path = tmp_path / "x.zarr"
    convert(GOLDEN / "trackshots_offset_face.h5", path, zarr_format=3)
    expected = _read_all(GOLDEN / "trackshots_offset_face.h5")

    def refuse(self, key):
        raise AssertionError(f"Group.__getitem__({key!r}) called")

    monkeypatch.setattr(zarr.Group, "__getitem__", refuse)
    assert _read_all(path) == expected
    with skelstore.open(path) as root, pytest.raises(skelstore.NotFoundError, match="shot9"):
        root["timeline/shot9"]


def test_members_without_zarr_internals(tmp_path: Path, monkeypatch) -> None:
    """Where zarr-python lacks the consolidated lookup (its probe says no), members
    come from zarr's public API, with the same result."""
    from skelstore.backends.zarr import compat as zarr_compat

    path = tmp_path / "x.zarr"
    convert(GOLDEN / "trackshots_offset_face.h5", path, zarr_format=3)
    expected = _read_all(GOLDEN / "trackshots_offset_face.h5")
    assert zarr_compat.has_consolidated_lookup()  # the zarr this suite runs on has it
    monkeypatch.setattr(zarr_compat, "has_consolidated_lookup", lambda: False)

    def refuse(group, name):
        raise AssertionError("consolidated_member used although its probe says no")

    monkeypatch.setattr(zarr_compat, "consolidated_member", refuse)
    assert _read_all(path) == expected


def test_consolidated_member_without_consolidated_metadata(tmp_path: Path) -> None:
    from skelstore.backends.zarr import compat as zarr_compat

    group = zarr.open_group(str(tmp_path / "plain.zarr"), mode="w", zarr_format=3)
    group.create_group("shot0")
    reopened = zarr.open_group(str(tmp_path / "plain.zarr"), mode="r", use_consolidated=False)
    assert zarr_compat.consolidated_member(reopened, "shot0") is None
