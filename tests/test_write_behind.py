"""Writes started in the background (``Group.start_set_many``; conversion to the
packed layout writes one unit of shards while it reads the next): results,
failures, and nothing written after a failure or a close."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr.storage

import skelstore
import skelstore.packed
from skelstore.conversion import compare_dumps, convert
from skelstore.io import ShotSegmentedWriter


def _slow_local_store(
    monkeypatch: pytest.MonkeyPatch, seconds: float, arrays: tuple[str, ...]
) -> list[str]:
    """Every chunk write to the Zarr ``arrays`` (paths) waits ``seconds`` first (so
    it is surely still in flight when the caller goes on); returns the keys
    written, in order."""
    written: list[str] = []
    original = zarr.storage.LocalStore.set
    slow = tuple(f"{a}/c" for a in arrays)

    async def slow_set(self: Any, key: str, value: Any, *args: Any, **kwargs: Any) -> None:
        if key.startswith(slow):
            await asyncio.sleep(seconds)
        await original(self, key, value, *args, **kwargs)
        written.append(key)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", slow_set)
    return written


def test_close_waits_for_a_write_nobody_waited_for(tmp_path: Path, monkeypatch):
    path = tmp_path / "a.zarr"
    written = _slow_local_store(monkeypatch, 0.3, ("a",))
    root = skelstore.open(path, "w")
    arr = root.create_array("a", shape=(1000,), dtype=np.int32, chunks=(100,))
    root.start_set_many([(arr, 0, np.arange(1000, dtype=np.int32))])  # finish never called
    assert not any(k.startswith("a/c") for k in written)  # still in flight
    root.close()
    assert any(k.startswith("a/c") for k in written)
    with skelstore.open(path) as root:
        np.testing.assert_array_equal(root["a"].read(), np.arange(1000))


def test_a_failed_background_write_is_raised_by_finish_and_again(tmp_path: Path, monkeypatch):
    path = tmp_path / "f.zarr"
    root = skelstore.open(path, "w")
    arr = root.create_array("a", shape=(10,), dtype=np.float32)

    async def full(self: Any, key: str, value: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zarr.storage.LocalStore, "set", full)
    finish = root.start_set_many([(arr, 0, np.ones(10, np.float32))])  # returns at once
    with pytest.raises(skelstore.StorageFullError, match=r"f\.zarr") as info:
        finish()
    assert isinstance(info.value, OSError) and info.value.errno == 28
    with pytest.raises(skelstore.StorageFullError):  # every later write raises it again
        root.set_many([(arr, 0, np.ones(10, np.float32))])
    with pytest.raises(skelstore.StorageFullError):
        root.close()


def _dump(path: Path, shots: int = 40) -> None:
    """A skelshop-layout HDF5 dump: shots of 50 frames, one or two tracks of
    varying length each, some keypoints missing."""
    rng = np.random.default_rng(1)
    with skelstore.open(path, "w") as root:
        w = ShotSegmentedWriter(root, 25)
        for s in range(shots):
            w.start_shot(s * 50)
            for f in range(s * 50, s * 50 + 50):
                for pose in range(1 + (f % 7 < s % 3)):
                    kps = rng.uniform(1, 500, (25, 3)).astype("f4")
                    kps[rng.random(25) < 0.3] = 0
                    w.add_pose(f, pose, kps)
            w.end_shot()


def _small_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 512 rows: a test dump's packed arrays make many units of shards,
    and tracks straddle their boundaries."""
    for table in ("NOMINAL_CHUNK", "GROWING_CHUNK"):  # (Zarr, HDF5)
        small = dict(getattr(skelstore.packed, table), data=512, indices=512, indptr=512)
        monkeypatch.setattr(skelstore.packed, table, small)


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_conversions_written_in_many_units_are_exact(tmp_path: Path, monkeypatch, suffix: str):
    """Each unit of shards is written while the next is filled (two buffers per
    array): the copy equals its source, whichever unit a track's rows fall in."""
    src = tmp_path / "src.h5"
    _dump(src)
    _small_units(monkeypatch)
    dst = tmp_path / f"out{suffix}"
    report = convert(src, dst, layout="packed")
    assert report.layout == "packed"
    with skelstore.open(src) as a, skelstore.open(dst) as b:
        assert compare_dumps(a, b) is None
        data = b["timeline/data"]
        assert data.chunks is not None and data.shape[0] > 40 * data.chunks[0]  # > 3 units


def _dump_with_a_damaged_last_track(path: Path) -> None:
    """:func:`_dump` whose last track's ``indptr`` does not match its ``data``
    (found only when that track is read)."""
    _dump(path)
    with h5py.File(path, "a") as f:
        indptr = f["timeline/shot39/pose0/indptr"]
        indptr[-1] = indptr[-1] + 7


def test_a_conversion_failing_with_a_write_in_flight_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The source turns out damaged while the last unit of shards is still being
    written: the error names the source, and that write ends before the staged
    copy is removed (nothing is written after it, nothing is left behind)."""
    src = tmp_path / "src.h5"
    _dump_with_a_damaged_last_track(src)
    _small_units(monkeypatch)  # each unit written in the background while the next is read
    written = _slow_local_store(monkeypatch, 0.2, ("timeline/data", "timeline/indices"))
    dst = tmp_path / "out.zarr"
    with pytest.raises(skelstore.FormatError, match=r"src\.h5:/timeline/shot39/pose0"):
        convert(src, dst, layout="packed")
    assert any("/data/c/" in k for k in written)  # units were written before the failure
    time.sleep(0.5)  # a write still in flight would now recreate the staged copy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.h5"]

    # without layout=: the copy falls back to skelshop's layout, which keeps the
    # damaged arrays as they are; nothing of the packed attempt gets into it
    written.clear()
    report = convert(src, dst)
    assert report.layout == "skelshop"
    time.sleep(0.5)
    with skelstore.open(dst) as root:
        assert sorted(root["timeline"].keys())[:2] == ["shot0", "shot1"]
        assert "data" not in root["timeline"] and "indptr" not in root["timeline"]
    assert not (dst / "timeline" / "data").exists()


@pytest.mark.parametrize("damage", ["float64 data", "attribute on indices", "indptr as floats"])
def test_arrays_the_packed_layout_cannot_hold_are_found_as_they_are_read(
    tmp_path: Path, damage: str
):
    """``data`` and ``indices`` are checked when conversion reads them (they are
    opened once): a late track the packed layout cannot hold exactly makes a
    conversion that asked for it fail naming the array and the way out, and one
    that did not ask keep skelshop's layout, exactly."""
    src = tmp_path / "src.h5"
    _dump(src, shots=12)
    track = "timeline/shot11/pose0"
    with h5py.File(src, "a") as f:
        if damage == "float64 data":
            values = f[f"{track}/data"][()].astype("f8")
            del f[f"{track}/data"]
            f[f"{track}/data"] = values
        elif damage == "attribute on indices":
            f[f"{track}/indices"].attrs["note"] = 1
        else:
            values = f[f"{track}/indptr"][()].astype("f4")
            del f[f"{track}/indptr"]
            f[f"{track}/indptr"] = values
    dst = tmp_path / "out.zarr"
    if damage == "indptr as floats":  # not a pose dump at all: refused either way
        for layout in ("packed", None):
            with pytest.raises(skelstore.FormatError, match=r"pose0/indptr: dtype float32"):
                convert(src, dst, layout=layout)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["src.h5"]
        return
    with pytest.raises(skelstore.FormatError, match=rf"{track}/\w+: .*layout='skelshop'"):
        convert(src, dst, layout="packed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.h5"]
    report = convert(src, dst, verify=True)
    assert report.layout == "skelshop"
    with skelstore.open(src) as a, skelstore.open(dst) as b:
        assert compare_dumps(a, b) is None
