"""Interrupted writes: the in-progress mark, SIGKILLed writers, allow_incomplete, repair."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import skelstore
from skelstore.cli import cli
from skelstore.dense import read_poses
from skelstore.io import ShotSegmentedReader, ShotSegmentedWriter
from skelstore.recovery import IN_PROGRESS, SHOTS_DONE
from skelstore.validate import validate

CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import skelstore
    from skelstore.dump import add_fmt_metadata, add_metadata
    from skelstore.io import ShotSegmentedWriter, UnsegmentedWriter

    path, kind, layout = sys.argv[1], sys.argv[2], sys.argv[3]

    def pose(frame, pid):
        rng = np.random.default_rng(frame * 100 + pid)
        kps = rng.uniform(1, 500, (25, 3)).astype("f4")
        kps[rng.random(25) < 0.2] = 0
        return kps

    root = skelstore.open(path, "w", layout=None if layout == "default" else layout)
    add_fmt_metadata(root, "trackshots" if kind == "shots" else "unseg")
    add_metadata(root, "v.mp4", 100000, "BODY_25", 25)
    if kind == "shots":
        w = ShotSegmentedWriter(root, num_kps=25, compression="lossless")
        frame = 0
        for shot in range(1000):
            w.start_shot(frame)
            for _ in range(40):
                w.register_frame(frame)
                for pid in (2 * shot, 2 * shot + 1):
                    w.add_pose(frame, pid, pose(frame, pid))
                frame += 1
            w.end_shot()
            print("done", shot + 1, flush=True)
            time.sleep(0.05)
    else:
        w = UnsegmentedWriter(root, num_kps=25, compression="lossless", block_frames=16)
        w.start_shot(0)
        for frame in range(100000):
            for pid in range(2):
                w.add_pose(frame, pid, pose(frame, pid))
            if frame % 16 == 15:
                print("done", frame + 1, flush=True)
                time.sleep(0.02)
    """
)


def expected_pose(frame: int, pid: int) -> np.ndarray:
    rng = np.random.default_rng(frame * 100 + pid)
    kps = rng.uniform(1, 500, (25, 3)).astype("f4")
    kps[rng.random(25) < 0.2] = 0
    return kps


def kill_writer(tmp_path: Path, target: str, kind: str, after: int, layout: str) -> int:
    """Run the writer, SIGKILL it once it reported ``after`` units done."""
    script = tmp_path / "writer.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), target, kind, layout], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    done = 0
    for line in proc.stdout:
        done = int(line.split()[1])
        if done >= after:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return done


#: (suffix, layout): each engine in its default layout (HDF5: skelshop's, Zarr: packed)
#: and in the other one.
CRASH_CASES = [(".h5", "default"), (".h5", "packed"), (".zarr", "default"), (".zarr", "skelshop")]


@pytest.mark.parametrize(("suffix", "layout"), CRASH_CASES)
def test_killed_shot_writer_keeps_every_finished_shot(
    tmp_path: Path, suffix: str, layout: str
) -> None:
    target = str(tmp_path / f"dump{suffix}")
    done = kill_writer(tmp_path, target, "shots", after=3, layout=layout)
    with pytest.raises(skelstore.IncompleteDumpError, match=r"complete shot\(s\) are intact"):
        skelstore.open(target)
    with skelstore.open(target, allow_incomplete=True) as root:
        expect = "packed" if (suffix, layout) in ((".h5", "packed"), (".zarr", "default")) else None
        assert root.attrs.get("layout") == expect
        intact = int(root.attrs[SHOTS_DONE])
        assert intact >= done >= 3
        reader = ShotSegmentedReader(root)
        assert len(reader) == intact
        for shot in reader:
            for offset, bundle in enumerate(shot):
                frame = shot.start_frame + offset
                got = dict(bundle)
                assert sorted(got) == [2 * shot.index, 2 * shot.index + 1]
                for pid, pose in got.items():
                    np.testing.assert_array_equal(pose.keypoints, expected_pose(frame, pid))
    # repair in place, then it opens normally and validates
    result = __import__("click.testing").testing.CliRunner().invoke(cli, ["repair", target])
    assert result.exit_code == 0 and f"{intact} complete shot(s) kept" in result.stdout
    with skelstore.open(target) as root:
        assert IN_PROGRESS not in root.attrs and SHOTS_DONE not in root.attrs
        assert len(ShotSegmentedReader(root)) == intact
        assert validate(root, deep=True).ok


@pytest.mark.parametrize(("suffix", "layout"), CRASH_CASES)
def test_killed_unsegmented_writer_keeps_complete_rows(
    tmp_path: Path, suffix: str, layout: str
) -> None:
    target = str(tmp_path / f"dump{suffix}")
    done = kill_writer(tmp_path, target, "unseg", after=64, layout=layout)
    with pytest.raises(skelstore.IncompleteDumpError):
        skelstore.open(target)
    with pytest.raises(skelstore.IncompleteDumpError):  # writing would adopt the partial rows
        skelstore.open(target, "r+")
    with (
        pytest.warns(skelstore.RepairWarning),
        skelstore.open(target, "r+", allow_incomplete=True) as root,
    ):  # repaired on opening
        assert IN_PROGRESS not in root.attrs
    with skelstore.open(target) as root:
        rep = validate(root, deep=True)
        assert rep.ok, rep.problems
        p = read_poses(root)
    assert len(p.frames) >= done >= 64
    # every track keeps a prefix of complete rows, at least what was reported done
    assert (p.present.sum(axis=0) >= done).all()
    for i, slot in zip(*np.nonzero(p.present), strict=True):
        frame, pid = int(p.frames[i]), int(p.pose_ids[slot])
        np.testing.assert_array_equal(p.keypoints[i, slot], expected_pose(frame, pid))


def test_clean_close_leaves_no_mark_and_errors_keep_it(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    with skelstore.open(path, "w") as root:
        w = ShotSegmentedWriter(root, num_kps=25)
        assert root.attrs[IN_PROGRESS] is True
        w.add_pose(0, 0, expected_pose(0, 0))
        w.end_shot()
        assert root.attrs[SHOTS_DONE] == 1
    with skelstore.open(path) as root:
        assert IN_PROGRESS not in root.attrs
    with pytest.raises(RuntimeError), skelstore.open(tmp_path / "y.zarr", "w") as root:
        w = ShotSegmentedWriter(root, num_kps=25)
        w.add_pose(0, 0, expected_pose(0, 0))
        w.end_shot()
        raise RuntimeError("the caller failed mid-way")
    with pytest.raises(skelstore.IncompleteDumpError, match="1 complete shot"):
        skelstore.open(tmp_path / "y.zarr")


def test_raw_h5py_files_are_not_marked(tmp_path: Path) -> None:
    import h5py

    with h5py.File(tmp_path / "raw.h5", "w") as f:
        w = ShotSegmentedWriter(f, num_kps=25)
        w.add_pose(0, 0, expected_pose(0, 0))
        w.end_shot()
        assert IN_PROGRESS not in f.attrs
    with skelstore.open(tmp_path / "raw.h5") as root:
        assert len(ShotSegmentedReader(root)) == 1
    assert os.path.exists(tmp_path / "raw.h5")
