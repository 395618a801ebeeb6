"""Data safety against bad input (issue 13): what a writer, an encoding or an
argument cannot store faithfully is refused with a typed error before anything is
written, and nothing reachable from input raises an untyped exception.

* lossy presets: NaN, infinities and magnitudes beyond the scale-offset range
  (:data:`skelstore.compression.LOSSY_MAX_ABS`) are refused at write time, on both
  engines, by the writers, ``convert`` and the storage interface; ``validate --deep``
  flags such values in dumps written before;
* writers refuse what they cannot store (too wide a pose, bad pose ids and frames,
  frames going backwards, poses outside a shot, ``num_kps=0``);
* untyped errors: HDF5 attributes HDF5 has no type for (stored as JSON), odd
  ``mode`` attributes, ``engine=123``, ``endpoint_url=5``, local paths with ``::``;
* Ctrl-C in the command line exits 130.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr
from click.testing import CliRunner

import skelstore
from skelstore.cli import cli
from skelstore.compression import LOSSY_MAX_ABS
from skelstore.conversion import convert
from skelstore.dump import write_shots
from skelstore.errors import EngineError, InputError, SkelstoreError, UnknownModeError
from skelstore.io import ShotSegmentedReader, ShotSegmentedWriter, UnsegmentedWriter
from skelstore.sample import sample_frames
from skelstore.validate import validate

ENGINES = {"hdf5": ".h5", "zarr": ".zarr"}


def pose(x: float = 10.0, kps: int = 25) -> np.ndarray:
    kp = np.zeros((kps, 3), dtype=np.float32)
    kp[0] = [x, 5.25, 0.9]
    kp[1] = [1.0, 2.0, 0.5]
    return kp


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def shots(path: Path | str) -> list[tuple[int, int, int]]:
    with skelstore.open(path) as root:
        return [(s.index, s.start_frame, s.end_frame) for s in ShotSegmentedReader(root)]


# ---------------------------------------------------------------- lossy presets


BAD_LOSSY = [np.nan, np.inf, -np.inf, 3e7, -2.1e7, 1e6, LOSSY_MAX_ABS]


@pytest.mark.parametrize("suffix", ENGINES.values(), ids=list(ENGINES))
@pytest.mark.parametrize("value", BAD_LOSSY, ids=str)
def test_lossy_writer_refuses_what_it_cannot_store(
    tmp_path: Path, suffix: str, value: float
) -> None:
    """Before: Zarr gave back -21474836.0 for NaN/inf/overflow, HDF5 wrote a track
    whose chunk no longer decodes (or other values of it changed by whole units)."""
    path = tmp_path / f"x{suffix}"
    with pytest.raises(InputError) as info, skelstore.open(path, "w", layout="skelshop") as root:
        writer = ShotSegmentedWriter(root, num_kps=25, compression="lossy")
        writer.start_shot(0)
        for frame in range(3):
            writer.register_frame(frame)
            writer.add_pose(frame, 7, pose(value if frame == 2 else 10.0))
        writer.end_shot()
    msg = str(info.value)
    assert str(path) in msg and "pose7" in msg and "frame 2" in msg and "lossless" in msg
    with skelstore.open(path, allow_incomplete=True) as root:  # nothing of the shot written
        assert "timeline" not in root or len(ShotSegmentedReader(root)) == 0


@pytest.mark.parametrize("suffix", ENGINES.values(), ids=list(ENGINES))
def test_lossy_keeps_values_within_its_range(tmp_path: Path, suffix: str) -> None:
    """Values just inside the range come back within the preset's rounding."""
    path = tmp_path / f"x{suffix}"
    values = np.array([0.0, 1919.99, -35.5, LOSSY_MAX_ABS - 1, -(LOSSY_MAX_ABS - 1), 0.37])
    with skelstore.open(path, "w", layout="skelshop") as root:
        writer = ShotSegmentedWriter(root, num_kps=25, compression="lossy")
        for frame, v in enumerate(values):
            writer.register_frame(frame)
            writer.add_pose(frame, 0, pose(float(v)))
        writer.end_shot()
    with skelstore.open(path) as root:
        got = [p.keypoints[0, 0] for shot in ShotSegmentedReader(root) for b in shot for _, p in b]
    np.testing.assert_allclose(got, values, atol=0.01)


@pytest.mark.parametrize("suffix", ENGINES.values(), ids=list(ENGINES))
def test_unsegmented_lossy_refuses_nan(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"x{suffix}"
    with (
        pytest.raises(InputError, match="frame 4"),
        skelstore.open(path, "w", layout="skelshop") as root,
    ):
        writer = UnsegmentedWriter(root, num_kps=25, compression="lossy9", block_frames=2)
        for frame in range(6):
            writer.add_pose(frame, 0, pose(np.nan if frame == 4 else 1.0))
        writer.end_shot()


@pytest.mark.parametrize("suffix", ENGINES.values(), ids=list(ENGINES))
def test_lossy_storage_interface_refuses(tmp_path: Path, suffix: str) -> None:
    """Any array with a lossy encoding, written through the storage interface."""
    from skelstore.compression import get_preset

    enc = get_preset("lossy").data
    with skelstore.open(tmp_path / f"x{suffix}", "w", layout="skelshop") as root:
        with pytest.raises(InputError, match=r"bad\[1, 0\]: cannot store nan"):
            root.create_array("bad", data=np.array([[1, 2, 3], [np.nan, 0, 0]], "f4"), encoding=enc)
        arr = root.create_array("grow", shape=(0, 3), dtype="f4", encoding=enc, growable=True)
        with pytest.raises(InputError):
            arr.append(np.array([[1e9, 0, 0]], "f4"))
        assert arr.shape == (0, 3)
        fixed = root.create_array("fixed", data=np.zeros((2, 3), "f4"), encoding=enc)
        with pytest.raises(InputError):
            fixed[0] = [np.inf, 0, 0]
        np.testing.assert_array_equal(fixed[...], 0)
        # skelshop's raw h5py settings count as lossy too
        with pytest.raises(InputError):
            root.create_array(
                "raw", data=np.array([[np.nan, 0, 0]], "f4"), engine_options={"scaleoffset": 2}
            )


@pytest.mark.parametrize("dst_suffix", ENGINES.values(), ids=list(ENGINES))
def test_convert_to_lossy_refuses_and_leaves_nothing(tmp_path: Path, dst_suffix: str) -> None:
    src = tmp_path / "src.zarr"
    with skelstore.open(src, "w", layout="skelshop") as root:
        writer = ShotSegmentedWriter(root, num_kps=25)
        for frame in range(3):
            writer.add_pose(frame, 0, pose(np.nan if frame == 1 else 3.0))
        writer.end_shot()
    dst = tmp_path / f"dst{dst_suffix}"
    with pytest.raises(InputError) as info:
        convert(src, dst, compression="lossy")
    message = str(info.value)  # names the source, or the destination it was refused for
    assert (str(src) in message or str(dst) in message) and "lossless" in message
    assert "skelstore-tmp" not in str(info.value)
    assert not dst.exists() and os.listdir(tmp_path) == ["src.zarr"]
    code, _, err = run("convert", str(src), str(dst), "--compression", "lossy")
    assert code == 2 and "cannot store nan" in err
    convert(src, dst, compression="lossless")  # stored faithfully instead
    with skelstore.open(dst) as root:
        got = [p.keypoints[0, 0] for s in ShotSegmentedReader(root) for b in s for _, p in b]
    assert np.isnan(got[1]) and got[0] == 3.0


def _damaged_lossy(path: Path, value: float) -> None:
    """A lossy dump with ``value`` stored below skelstore (as older versions let in):
    a small track, as in the issue's reproduction."""
    with skelstore.open(path, "w", layout="skelshop") as root:
        root.attrs["mode"] = "BODY_25"
        writer = ShotSegmentedWriter(root, num_kps=25, compression="lossy")
        for frame in range(3):
            writer.add_pose(frame, 0, pose())
        writer.end_shot()
    if path.suffix == ".zarr":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr's numcodecs and numpy's cast warnings
            arr = zarr.open_array(str(path / "timeline/shot0/pose0/data"), mode="r+")
            data = arr[:]
            data[3, 0] = value
            arr[:] = data
    else:  # HDF5's scale-offset filter writes it, then fails to decode the chunk
        with h5py.File(path, "r+") as f:
            grp = f["timeline/shot0/pose0"]
            values = grp["data"][()]
            values[0, 0] = value
            del grp["data"]
            grp.create_dataset("data", data=values, scaleoffset=2, chunks=values.shape)


@pytest.mark.parametrize("suffix", ENGINES.values(), ids=list(ENGINES))
def test_validate_deep_flags_damaged_lossy_values(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"old{suffix}"
    _damaged_lossy(path, np.nan)
    with skelstore.open(path) as root:
        assert validate(root).ok  # structure is fine
        rep = validate(root, deep=True)
    assert not rep.ok
    assert any("/timeline/shot0/pose0/data" in p for p in rep.problems), rep.problems
    code, out, _ = run("validate", "--deep", str(path))
    assert code == 1 and "pose0/data" in out


# ---------------------------------------------------------------- writers


@pytest.fixture(params=list(ENGINES.values()), ids=list(ENGINES))
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    with skelstore.open(tmp_path / f"w{request.param}", "w", layout="skelshop") as r:
        yield r


BAD_POSE_IDS = [-1, 1.5, "3", None, True, 10**18]
BAD_FRAMES = [-1, 1.5, "2", None, True]


@pytest.mark.parametrize("writer_cls", [ShotSegmentedWriter, UnsegmentedWriter])
def test_writers_refuse_bad_calls(root: Any, writer_cls: type) -> None:
    writer = writer_cls(root, num_kps=25)
    for pid in BAD_POSE_IDS:
        with pytest.raises(InputError, match="pose id"):
            writer.add_pose(0, pid, pose())
    for frame in BAD_FRAMES:
        with pytest.raises(InputError, match="frame"):
            writer.add_pose(frame, 0, pose())
    for bad in ("a pose", np.zeros((26, 3)), np.zeros((25, 2)), [[1, 2, "x"]], object()):
        with pytest.raises(InputError, match="pose"):
            writer.add_pose(0, 0, bad)
    assert "timeline" not in root or not root["timeline"].keys()  # nothing written
    writer.add_pose(np.int64(0), np.int64(2), pose()[:20])  # numpy ints, narrower poses: fine
    with pytest.raises(InputError, match=r"frame 3 (given|added) after frame 5"):
        writer.add_pose(5, 2, pose())
        writer.add_pose(3, 2, pose())


@pytest.mark.parametrize("num_kps", [0, -3, 2.5, True, 70000, "25"])
def test_writers_refuse_bad_num_kps(root: Any, num_kps: Any) -> None:
    for cls in (ShotSegmentedWriter, UnsegmentedWriter):
        with pytest.raises(InputError, match="num_kps"):
            cls(root, num_kps=num_kps)
    assert "limbs" not in root.attrs and "timeline" not in root


def test_writer_width_defaults_to_the_roots_limbs(root: Any) -> None:
    root.attrs["limbs"] = 25
    writer = ShotSegmentedWriter(root)
    with pytest.raises(InputError, match="26 keypoints"):
        writer.add_pose(0, 0, pose(kps=26))


def test_shot_writer_refuses_frames_outside_or_backwards(root: Any) -> None:
    """Before: a frame going back, or before the shot, cut poses out of the shot
    (readers never showed them); a pose after end_shot vanished at close."""
    writer = ShotSegmentedWriter(root, num_kps=25)
    writer.start_shot(10)
    with pytest.raises(InputError, match="before shot0's start_frame 10"):
        writer.add_pose(5, 0, pose())
    writer.register_frame(10)
    writer.add_pose(12, 0, pose())
    with pytest.raises(InputError, match="backwards"):
        writer.add_pose(11, 1, pose())
    with pytest.raises(InputError, match="backwards"):
        writer.register_frame(11)
    with pytest.raises(InputError, match="end_shot"):
        writer.start_shot(20)  # the shot has frames and was not ended
    writer.end_shot()
    for call in (lambda: writer.add_pose(13, 0, pose()), lambda: writer.register_frame(13)):
        with pytest.raises(InputError, match="outside a shot"):
            call()
    with pytest.raises(InputError, match="previous shot"):
        writer.start_shot(11)  # would overlap shot0 (10..13)
    with pytest.raises(InputError, match="start_frame"):
        writer.start_shot(-4)
    writer.start_shot()
    writer.add_pose(13, 3, pose())
    writer.end_shot()
    assert [(i, s, e) for i, s, e in _shots(root)] == [(0, 10, 13), (1, 13, 14)]


def _shots(root: Any) -> list[tuple[int, int, int]]:
    return [(s.index, s.start_frame, s.end_frame) for s in ShotSegmentedReader(root).shots]


def test_unsegmented_writer_refuses_after_end_and_before_start(root: Any) -> None:
    writer = UnsegmentedWriter(root, num_kps=25)
    writer.start_shot(5)
    with pytest.raises(InputError, match="before the timeline's start_frame 5"):
        writer.add_pose(4, 0, pose())
    writer.add_pose(6, 0, pose())
    writer.add_pose(5, 1, pose())  # another slot may start earlier: tracks are separate
    with pytest.raises(InputError, match="start_shot"):
        writer.start_shot(0)
    writer.end_shot()
    with pytest.raises(InputError, match="after end_shot"):
        writer.add_pose(7, 0, pose())
    from skelstore.dense import read_poses

    p = read_poses(root)
    assert p.frames.tolist() == [5, 6] and p.pose_ids.tolist() == [0, 1]
    assert p.present.tolist() == [[False, True], [True, False]]  # nothing lost


@pytest.mark.parametrize(
    ("num_frames", "mode", "limbs"),
    [(-1, "BODY_25", 25), ("x", "BODY_25", 25), (1.5, "BODY_25", 25),
     (10, ["BODY_25"], 25), (10, "BODY_25", 0), (10, "BODY_25", "25")],
)  # fmt: skip
def test_add_metadata_refuses_what_readers_cannot_use(
    root: Any, num_frames: Any, mode: Any, limbs: Any
) -> None:
    from skelstore.dump import add_metadata

    with pytest.raises(InputError):
        add_metadata(root, "v.mp4", num_frames, mode, limbs)
    assert not {"num_frames", "mode", "limbs"} & set(root.attrs)
    add_metadata(root, "v.mp4", 300.0, "BODY_25", np.int64(25))  # integral values: fine
    assert (root.attrs["num_frames"], root.attrs["limbs"]) == (300, 25)


def test_valid_skelshop_usage_still_writes(tmp_path: Path) -> None:
    """write_shots and skelshop's frame-by-frame pattern (start_shot optional for the
    first shot; empty shots between SHOT_CHANGEs) are unchanged."""
    path = tmp_path / "x.h5"
    with skelstore.open(path, "w", layout="skelshop") as root:
        writer = ShotSegmentedWriter(root, num_kps=25)
        writer.add_pose(0, 0, pose())  # no start_shot for the first shot
        writer.register_frame(1)
        writer.end_shot()
        writer.start_shot()
        writer.end_shot()  # an empty shot
        writer.start_shot(5)  # a gap
        writer.register_frame(5)
        writer.add_pose(5, 0, pose())
        writer.add_pose(5, 0, pose(2.0))  # the same pose again replaces it
        writer.end_shot()
    assert shots(path) == [(0, 0, 2), (1, 2, 2), (2, 5, 6)]


# ---------------------------------------------------------------- links out of a store


def _chunk(store: Path, array: str) -> Path:
    """A chunk file of ``array`` in a local Zarr store (format 2 or 3)."""
    base = store / array
    for dirpath, _, files in os.walk(base):
        for name in files:
            if name not in ("zarr.json", ".zarray", ".zattrs"):
                return Path(dirpath) / name
    raise AssertionError(f"no chunk under {base}")


def _read_all(path: Path, **kwargs: Any) -> int:
    with skelstore.open(path, **kwargs) as root:
        validate(root, deep=True)
        return sum(1 for shot in ShotSegmentedReader(root) for _ in shot)


@pytest.fixture(params=[3, 2], ids=["zarr3", "zarr2"])
def local_zarr(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / "store" / "x.zarr"
    with skelstore.open(path, "w", layout="skelshop", zarr_format=request.param) as root:
        write_shots(root, 25, sample_frames())
    return path


@pytest.mark.parametrize("untrusted", [False, True], ids=["trusted", "untrusted"])
def test_chunk_linked_out_of_the_store_is_refused(local_zarr: Path, untrusted: bool) -> None:
    """Before: the other file's bytes came back as keypoints (validate --deep: ok)."""
    secret = local_zarr.parent.parent / "secret.bin"
    secret.write_bytes(np.arange(4096, dtype=np.float32).tobytes())
    chunk = _chunk(local_zarr, "timeline/shot0/pose0/data")
    chunk.unlink()
    chunk.symlink_to(secret)
    with pytest.raises(skelstore.FormatError) as info:
        _read_all(local_zarr, untrusted=untrusted)
    msg = str(info.value)
    assert str(local_zarr) in msg and "outside the store" in msg and "pose0/data" in msg


def test_links_to_devices_fifos_and_directories_outside(local_zarr: Path, tmp_path: Path) -> None:
    chunk = _chunk(local_zarr, "timeline/shot0/pose0/data")
    chunk.unlink()
    chunk.symlink_to("/dev/zero")  # before: read until memory ran out
    with pytest.raises(skelstore.FormatError, match="outside the store"):
        _read_all(local_zarr)
    chunk.unlink()
    os.mkfifo(chunk)  # before: blocked for ever
    with pytest.raises(skelstore.FormatError, match="not a regular file"):
        _read_all(local_zarr)
    chunk.unlink()
    # a whole shot linked from elsewhere (a copy of another store's shot)
    other = tmp_path / "other.zarr"
    with skelstore.open(
        other, "w", layout="skelshop", zarr_format=3 if (local_zarr / "zarr.json").exists() else 2
    ) as root:
        write_shots(root, 25, sample_frames())
    shot = local_zarr / "timeline" / "shot1"
    import shutil

    shutil.rmtree(shot)
    shot.symlink_to(other / "timeline" / "shot1")
    with pytest.raises(skelstore.FormatError, match="linked directory outside the store"):
        _read_all(local_zarr)
    outside = sorted((other / "timeline" / "shot1").rglob("*"))
    before = {p: p.read_bytes() for p in outside if p.is_file()}
    with pytest.raises(skelstore.FormatError), skelstore.open(local_zarr, "a") as root:
        root["timeline/shot1"].attrs["x"] = 1  # writing through the link: refused too
    assert {p: p.read_bytes() for p in before} == before


def test_links_inside_the_store_and_a_linked_store_still_work(
    local_zarr: Path, tmp_path: Path
) -> None:
    data = _chunk(local_zarr, "timeline/shot0/pose0/data")
    moved = local_zarr / "moved-chunk"
    data.rename(moved)
    data.symlink_to(moved)  # a link that stays inside
    alias = tmp_path / "alias.zarr"
    alias.symlink_to(local_zarr)  # the store itself reached through a link
    assert _read_all(local_zarr) == _read_all(alias) == 300


# ---------------------------------------------------------------- declared sizes


def test_convert_refuses_a_declared_size_with_nothing_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: convert (also --untrusted) ran for ever over 10**12 declared rows."""
    monkeypatch.setenv("SKELSTORE_UNTRUSTED", "0")  # --untrusted sets it: restored after
    path = tmp_path / "big.h5"
    with skelstore.open(path, "w", layout="skelshop") as root:
        write_shots(root, 25, sample_frames())
    with h5py.File(path, "r+") as f:
        grp = f["timeline/shot0/pose0"]
        del grp["data"]
        grp.create_dataset("data", shape=(10**12, 3), dtype="f4", chunks=(1170, 3))
    for untrusted in ([], ["--untrusted"]):
        code, _, err = run(*untrusted, "convert", str(path), str(tmp_path / "big.zarr"))
        assert code == 2 and "declares" in err and "pose0/data" in err, err
    assert sorted(os.listdir(tmp_path)) == ["big.h5"]
    with skelstore.open(path) as root:
        rep = validate(root, deep=True)  # reported, not raised
    assert any("pose0" in p for p in rep.problems)


def test_export_refuses_absurd_frame_counts(tmp_path: Path) -> None:
    """Before: num_frames = 2**62 made export write files without end."""
    path = tmp_path / "n.h5"
    with skelstore.open(path, "w", layout="skelshop") as root:
        write_shots(root, 25, sample_frames())
        root.attrs.update({"mode": "BODY_25", "num_frames": 2**62})
    out = tmp_path / "json"
    code, _, err = run("export", str(path), str(out), "--to", "openpose-json")
    assert code == 2 and "num_frames" in err and not out.exists()
    with skelstore.open(path, "r+") as root:
        root.attrs["num_frames"] = 2**31 - 1  # a valid frame number, but 2**31 files
    code, _, err = run("export", str(path), str(out), "--to", "openpose-json")
    assert code == 2 and "--max-frames" in err and not out.exists()
    code, _, err = run(
        "export", str(path), str(out), "--to", "openpose-json", "--max-frames", "100"
    )
    assert code == 2
    with skelstore.open(path, "r+") as root:
        root.attrs["num_frames"] = 400
    code, _, err = run(
        "export", str(path), str(out), "--to", "openpose-json", "--max-frames", "400"
    )
    assert code == 0, err
    assert len(os.listdir(out)) == 400


def test_cat_walks_only_frames_tracks_cover(tmp_path: Path) -> None:
    """A shot claiming frames up to 2**31 (its end is an attribute) is not walked
    frame by frame past its tracks."""
    path = tmp_path / "c.zarr"
    with skelstore.open(path, "w", layout="skelshop") as root:
        writer = ShotSegmentedWriter(root, num_kps=25)
        writer.start_shot(2**31 - 40)
        writer.add_pose(2**31 - 30, 0, pose())
        writer.register_frame(2**31 - 2)
        writer.end_shot()
        root.attrs.update({"num_frames": 2**31, "mode": "BODY_25"})
    code, out, err = run("cat", str(path), "--frames", "0:")
    assert code == 0, err
    assert [ln.split()[0] for ln in out.splitlines()[1:]] == [str(2**31 - 30)] * 2


# ---------------------------------------------------------------- untyped errors


def test_zarr_attributes_hdf5_cannot_type_survive_conversion(tmp_path: Path) -> None:
    """Before: converting to HDF5 raised TypeError for a dict or an int >= 2**64."""
    src = tmp_path / "a.zarr"
    odd = {
        "meta": {"camera": {"fps": 25}, "tags": ["a", 1]},
        "big": 2**70,
        "nothing": None,
        "mixed": [1, "a", None],
        "ragged": [[1, 2], [3]],
    }
    with skelstore.open(src, "w", layout="skelshop") as root:
        write_shots(root, 25, sample_frames())
        root.attrs.update(odd)
    h5 = tmp_path / "a.h5"
    convert(src, h5, verify=True)
    with skelstore.open(h5) as root:
        for key, value in odd.items():
            assert root.attrs[key] == value
        assert "skelstore_json_attrs" not in root.attrs
        assert "skelstore_json_attrs" not in dict(root.attrs)
    with h5py.File(h5) as f:  # plain h5py sees JSON text
        assert json.loads(f.attrs["meta"]) == odd["meta"]
    back = tmp_path / "b.zarr"
    convert(h5, back, verify=True)
    with skelstore.open(back) as root:
        assert {k: root.attrs[k] for k in odd} == odd
    with skelstore.open(h5, "r+") as root:  # overwritten with a native value: unmarked
        root.attrs["meta"] = "plain"
        del root.attrs["big"]
    with h5py.File(h5) as f:
        assert set(f.attrs["skelstore_json_attrs"]) == {"nothing", "mixed", "ragged"}


@pytest.mark.parametrize("mode", ["", [], {}, {"x": [1]}, [[1, 2]], 3])
def test_odd_mode_attributes_give_typed_errors(tmp_path: Path, mode: Any) -> None:
    path = tmp_path / "m.zarr"
    with skelstore.open(path, "w", layout="skelshop") as root:
        write_shots(root, 25, sample_frames())
        root.attrs["mode"] = mode
    code, out, err = run("info", "--json", str(path))
    assert code == 0 and json.loads(out)["mode"] == mode
    for args in (
        ["export", str(path), str(tmp_path / "j"), "--to", "openpose-json"],
        ["export", str(path), str(tmp_path / "m.nc"), "--to", "movement"],
        ["cat", str(path)],
    ):
        code, _, err = run(*args)
        if code:
            assert code == 2 and "mode" in err, (args, err)
    if not isinstance(mode, str):
        from skelstore.dense import read_poses

        with pytest.raises(UnknownModeError):
            read_poses(path)


def test_empty_hdf5_mode_attribute(tmp_path: Path) -> None:
    path = tmp_path / "e.h5"
    with skelstore.open(path, "w", layout="skelshop") as root:
        write_shots(root, 25, sample_frames())
    with h5py.File(path, "r+") as f:
        f.attrs["mode"] = h5py.Empty("f")
    code, out, _ = run("info", "--json", str(path))  # before: TypeError (not JSON)
    assert code == 0 and json.loads(out)["mode"] is None


def test_bad_engine_and_storage_option_types(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="123"):
        skelstore.open(tmp_path / "x.h5", "w", engine=123)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="endpoint_url"):
        skelstore.open("s3://bucket/x.h5", storage_options={"endpoint_url": 5})
    with pytest.raises(InputError, match="endpoint_url"):
        skelstore.open("s3://bucket/x.zarr", "w", storage_options={"endpoint_url": 5})
    code, _, err = run("-o", "endpoint_url=5", "info", "s3://bucket/x.h5")
    assert code == 2 and "endpoint_url" in err


def test_local_paths_with_double_colons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: ``runs::v1.h5`` was parsed as an fsspec chain and written elsewhere."""
    monkeypatch.chdir(tmp_path)
    os.mkdir("zip::x.zarr")  # exists: a local path, though "zip" is a protocol
    for name in ("runs::v1.h5", "runs::v1.zarr", "zip::x.zarr"):
        with skelstore.open(name, "w", layout="skelshop") as root:
            write_shots(root, 25, sample_frames())
        assert os.path.exists(tmp_path / name)
        with skelstore.open(str(tmp_path / name)) as root:
            assert len(ShotSegmentedReader(root)) == 3
    assert sorted(os.listdir(tmp_path)) == ["runs::v1.h5", "runs::v1.zarr", "zip::x.zarr"]
    convert("runs::v1.h5", "out::v1.zarr", verify=True)
    assert os.path.isdir(tmp_path / "out::v1.zarr")
    # a real chain still works
    with skelstore.open("memory://c.zarr.zip", "w", layout="skelshop") as root:
        write_shots(root, 25, sample_frames())
    with skelstore.open("zip::memory://c.zarr.zip") as root:
        assert len(ShotSegmentedReader(root)) == 3


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_exits_130(tmp_path: Path) -> None:
    """A command waiting on a server that never answers, interrupted: exit 130 (not 1,
    which means "a check failed"), one line on stderr."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "skelstore", "info", f"http://127.0.0.1:{port}/x.h5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        listener.settimeout(60)
        conn, _ = listener.accept()  # the command is inside its request now
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "skelstore: interrupted"
    assert "Traceback" not in err


def test_keyboard_interrupt_in_any_command_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    import skelstore.conversion as convert_mod

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(convert_mod, "convert", interrupted)
    code, _, err = run("convert", "a.h5", "b.zarr")
    assert code == 130 and "interrupted" in err


def test_every_refusal_is_a_skelstore_error() -> None:
    assert issubclass(InputError, SkelstoreError) and issubclass(InputError, ValueError)
    assert skelstore.InputError is InputError
