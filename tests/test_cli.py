"""The ``skelstore`` command line: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import skelstore
from skelstore.cli import cli
from skelstore.conversion import compare_dumps
from skelstore.validate import validate

GOLDEN = Path(__file__).parent / "data" / "golden"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_info_text_and_json() -> None:
    code, out, _ = run("info", str(GOLDEN / "trackshots_lossless.h5"))
    assert code == 0
    assert "trackshots" in out and "BODY_25_ALL (138 keypoints)" in out
    assert "compression       lossless" in out
    code, out, _ = run("info", "--json", str(GOLDEN / "unseg_body25.h5"))
    assert code == 0
    info = json.loads(out)
    assert info["fmt_type"] == "unseg" and info["limbs"] == 25 and info["num_frames"] == 300
    assert info["pose_tracks"] == 2 and info["engine"] == "hdf5"
    assert info["compression"] == "none"
    # poses stored = non-empty CSR rows, computed independently with h5py
    with h5py.File(GOLDEN / "unseg_body25.h5") as f:
        rows = sum(
            int(np.count_nonzero(np.diff(f[f"timeline/{p}/indptr"][()].astype(int))))
            for p in f["timeline"]
        )
    assert info["poses_stored"] == rows
    assert info["bytes_stored"] == (GOLDEN / "unseg_body25.h5").stat().st_size


def test_convert_then_info_on_zarr(tmp_path: Path) -> None:
    dst = tmp_path / "x.zarr"
    code, out, _ = run(
        "convert", str(GOLDEN / "trackshots_lossy.h5"), str(dst), "--verify", "--zarr-format", "2"
    )
    assert code == 0, out
    assert "verified" in out and "->" in out and "MB" in out
    code, out, _ = run("info", "--json", str(dst))
    info = json.loads(out)
    assert info["engine"] == "zarr" and info["format_info"]["zarr_format"] == 2
    assert info["compression"] == "lossy"


def test_convert_many_to_dir(tmp_path: Path) -> None:
    srcs = [str(GOLDEN / "unseg_body25.h5"), str(GOLDEN / "trackshots_offset_face.h5")]
    out_dir = tmp_path / "zarrs"
    code, out, _ = run("convert", *srcs, "--to-dir", str(out_dir), "--engine", "zarr", "-q")
    assert code == 0 and out == ""
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "trackshots_offset_face.zarr",
        "unseg_body25.zarr",
    ]
    for src in srcs:
        name = Path(src).stem + ".zarr"
        with skelstore.open(src) as a, skelstore.open(out_dir / name) as b:
            assert compare_dumps(a, b) is None


def test_convert_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    code, _, err = run("convert", str(tmp_path / "missing.h5"), str(tmp_path / "o.zarr"))
    assert code == 2
    assert err.count("\n") == 1 and "missing.h5" in err and "Traceback" not in err
    dst = tmp_path / "o.zarr"
    assert run("convert", str(GOLDEN / "unseg_body25.h5"), str(dst))[0] == 0
    code, _, err = run("convert", str(GOLDEN / "unseg_body25.h5"), str(dst))
    assert code == 2 and "already exists" in err
    code, _, err = run("convert", str(GOLDEN / "unseg_body25.h5"))
    assert code == 2  # usage error


def test_verification_failure_exits_1(tmp_path: Path, monkeypatch) -> None:
    import skelstore.conversion as conv

    monkeypatch.setattr(conv, "compare_dumps", lambda a, b: "/timeline/pose0/data[3]: differs")
    code, _, err = run(
        "convert", str(GOLDEN / "unseg_body25.h5"), str(tmp_path / "o.h5"), "--verify"
    )
    assert code == 1 and "verification failed" in err
    assert not (tmp_path / "o.h5").exists()


def test_ls_shows_tree() -> None:
    code, out, _ = run("ls", str(GOLDEN / "trackshots_lossy.h5"))
    assert code == 0
    assert "shot0/  frames 0:" in out
    assert "data  float32 (6396, 3)  chunks (2070, 3)  blosc-zstd5+scale-offset 2 digits" in out
    assert "indptr  uint32 (76,)  chunks (76,)  uncompressed" in out


def test_cat_prints_frame_range() -> None:
    code, out, _ = run("cat", str(GOLDEN / "trackshots_offset_face.h5"), "--frames", "355:357")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split() == ["frame", "shot", "pose", "kp", "x", "y", "conf"]
    exp = np.load(GOLDEN / "trackshots_offset_face.expected.npz")
    sel = (exp["frame"] >= 355) & (exp["frame"] < 357)
    expected_rows = int(np.count_nonzero(exp["keypoints"][sel][..., 2]))
    assert len(lines) - 1 == expected_rows
    first = lines[1].split()
    assert first[0] == "355" and first[1] == "1"


def test_validate_ok_and_broken(tmp_path: Path) -> None:
    code, out, _ = run("validate", str(GOLDEN / "trackshots_body25all.h5"))
    assert code == 0 and ": ok (8 shots, 18 tracks)" in out
    bad = tmp_path / "bad.h5"
    with h5py.File(GOLDEN / "trackshots_body25all.h5") as g, h5py.File(bad, "w") as f:
        g.copy("timeline", f)
        f.attrs.update(dict(g.attrs))
        ip = f["timeline/shot1/pose2/indptr"]
        ip[3] = 0
        f["timeline/shot2"].attrs["start_frame"] = 0
    code, out, _ = run("validate", str(bad))
    assert code == 1
    assert "/timeline/shot1/pose2/indptr: not monotone" in out
    assert "/timeline/shot2: starts at 0" in out


def test_python_dash_m_and_debug(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "skelstore", "info", str(tmp_path / "nope.zarr")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("skelstore: error:") and "nope.zarr" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "skelstore", "--debug", "info", str(tmp_path / "nope.zarr")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize("bad", ["1:x", "a:b"])
def test_cat_bad_frames_is_usage_error(bad: str) -> None:
    code, _, _ = run("cat", str(GOLDEN / "unseg_body25.h5"), "--frames", bad)
    assert code == 2


def test_info_reports_every_file_and_exits_2_for_a_bad_one(tmp_path: Path) -> None:
    # issue 14: info stopped at the first bad file and printed nothing for the good ones
    good_a, good_b = GOLDEN / "unseg_body25.h5", GOLDEN / "trackshots_lossy.h5"
    missing = tmp_path / "missing.h5"
    not_dump = tmp_path / "plain.h5"
    with h5py.File(not_dump, "w") as f:
        f["x"] = np.arange(3)
    code, out, err = run("info", str(good_a), str(missing), str(not_dump), str(good_b))
    assert code == 2
    assert out.count("file ") == 2 and str(good_a) in out and str(good_b) in out
    errors = err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("skelstore: error: ") for e in errors)
    assert str(missing) in errors[0] and "no such file" in errors[0]
    assert str(not_dump) in errors[1] and "not a skeleton dump" in errors[1]
    code, out, err = run("info", "--json", str(good_a), str(missing), str(good_b))
    assert code == 2 and str(missing) in err
    entries = json.loads(out)
    assert [e["url"] for e in entries] == [str(good_a), str(missing), str(good_b)]
    assert entries[1]["error_type"] == "NotFoundError" and "no such file" in entries[1]["error"]
    assert "error" not in entries[0] and entries[2]["fmt_type"] == "trackshots"
    # a glob that matches nothing is one bad entry; the others are still reported
    code, out, err = run("info", str(tmp_path / "none*.zarr"), str(good_a))
    assert code == 2 and "matches no dump" in err and out.count("file ") == 1
    help_text = run("info", "--help")[1]
    assert "exit code is then 2" in help_text and "carrying its error" in help_text


def test_info_and_validate_agree_on_shots() -> None:
    # issue 14: info said an unsegmented dump has 1 shot, validate 0
    for path in (GOLDEN / "unseg_body25.h5", GOLDEN / "trackshots_body25all.h5"):
        info = json.loads(run("info", "--json", str(path))[1])
        code, out, _ = run("validate", str(path))
        assert code == 0 and f"ok ({info['shots']} shots," in out
        with skelstore.open(path) as root:
            assert validate(root).shots == info["shots"]
    assert json.loads(run("info", "--json", str(GOLDEN / "unseg_body25.h5"))[1])["shots"] == 1


def test_sample_leaves_no_temporary_directory(tmp_path: Path) -> None:
    # issue 14: python -m skelstore.sample (scripts/sample.sh) left /tmp/skelstore-sample-*
    import os

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.run(
        [sys.executable, "-m", "skelstore.sample"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "decode identically: yes" in proc.stdout and "removed at the end" in proc.stdout
    assert list(tmp.iterdir()) == []
    kept = tmp_path / "kept"
    proc = subprocess.run(
        [sys.executable, "-m", "skelstore.sample", str(kept)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in kept.iterdir()) == ["sample.h5", "sample.zarr"]
