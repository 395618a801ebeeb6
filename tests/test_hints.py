"""Every hint an error gives names something real where it is printed (issue 14).

Library messages name Python arguments (``engine=...``, ``overwrite=True``); the
command line prints the same errors with its own options (``--engine ENGINE``,
``--overwrite``), and each option named exists on the command that printed it and
does what the hint says. Errors name the user's paths, never a staging name.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import skelstore
from skelstore.cli import cli
from skelstore.dense import read_poses
from skelstore.export import export_movement
from skelstore.openpose import export_openpose, import_openpose
from skelstore.recovery import IN_PROGRESS, SHOTS_DONE

GOLDEN = Path(__file__).parent / "data" / "golden"
UNSEG = GOLDEN / "unseg_body25.h5"

#: A Python argument spelled in a message (``engine=...``, ``overwrite=True``, ...),
#: other than inside an explicit ``skelstore.open(...)`` call.
PYTHON_ARG = re.compile(r"(?<![\w.])[a-z_]+=(\.\.\.|True|False|'|\"|slice|0\b| )")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def cli_error(*args: str) -> str:
    """The one-line error of a command that must fail with exit code 2."""
    code, out, err = run(*args)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skelstore: error: "), err
    message = lines[0]
    assert not PYTHON_ARG.search(re.sub(r"skelstore\.open\([^)]*\)", "", message)), message
    return message


def has_option(command: str, option: str) -> bool:
    code, out, _ = run(command, "--help")
    assert code == 0
    return re.search(rf"(^|[\s,]){re.escape(option)}\b", out, re.MULTILINE) is not None


def zarr_named_h5(tmp_path: Path) -> Path:
    """A Zarr store whose name says HDF5: only the engine option opens it."""
    store = tmp_path / "store.h5"
    skelstore.convert(UNSEG, tmp_path / "real.zarr")
    shutil.move(tmp_path / "real.zarr", store)
    return store


# ---------------------------------------------------------------- --engine


def test_reading_commands_have_engine_and_storage_options() -> None:
    for command in ("info", "ls", "validate", "cat", "repair", "export"):
        assert has_option(command, "--engine"), command
        assert has_option(command, "--storage-option"), command
    assert has_option("convert", "--src-engine") and has_option("convert", "--storage-option")
    assert has_option("import-openpose", "--storage-option")
    assert has_option("import", "--storage-option")


@pytest.mark.parametrize(
    "args",
    [("info",), ("ls",), ("validate",), ("cat",), ("repair",), ("export", "--to", "movement")],
)
def test_engine_hint_of_reading_commands(tmp_path: Path, args: tuple[str, ...]) -> None:
    not_dump = tmp_path / "notadump"
    not_dump.mkdir()
    extra = [str(tmp_path / "out.nc")] if args[0] == "export" else []
    message = cli_error(args[0], str(not_dump), *extra, *args[1:])
    assert "cannot tell the storage engine" in message and "--engine ENGINE" in message
    # the option is real: it is taken (the directory is then refused as a Zarr store)
    message = cli_error(args[0], str(not_dump), *extra, *args[1:], "--engine", "zarr")
    assert "not a Zarr store" in message
    # in Python, the hint names skelstore.open's argument
    with pytest.raises(skelstore.EngineError, match=re.escape("skelstore.open(..., engine=...)")):
        skelstore.open(not_dump)


def test_engine_option_opens_what_the_name_misleads(tmp_path: Path) -> None:
    store = zarr_named_h5(tmp_path)
    assert run("info", str(store))[0] == 2  # the suffix says hdf5
    code, out, _ = run("info", str(store), "--engine", "zarr")
    assert code == 0 and "engine            zarr" in out
    for command in ("ls", "validate", "cat"):
        assert run(command, str(store), "--engine", "zarr")[0] == 0, command
    other = tmp_path / "other.h5"
    shutil.copytree(store, other)
    code, out, _ = run("validate", str(store), str(other), "--engine", "zarr", "--workers", "0")
    assert code == 0 and out.count(": ok (1 shots") == 2
    code, out, _ = run("info", "--summary", str(store), "--engine", "zarr", "--workers", "0")
    assert code == 0 and "zarr" in out


def test_src_engine_of_convert(tmp_path: Path) -> None:
    not_dump = tmp_path / "notadump"
    not_dump.mkdir()
    message = cli_error("convert", str(not_dump), str(tmp_path / "o.zarr"))
    assert "--src-engine ENGINE" in message
    with pytest.raises(skelstore.EngineError, match=re.escape("src_engine=...")):
        skelstore.convert(not_dump, tmp_path / "o.zarr")
    store = zarr_named_h5(tmp_path)
    code, _, err = run("convert", str(store), str(tmp_path / "o.h5"), "--src-engine", "zarr")
    assert code == 0, err
    code, _, err = run(
        "convert",
        str(store),
        "--to-dir",
        str(tmp_path / "d"),
        "--src-engine",
        "zarr",
        "--workers",
        "0",
        "-q",
    )
    assert code == 0, err
    with skelstore.open(UNSEG) as a, skelstore.open(tmp_path / "d" / "store.h5") as b:
        assert skelstore.compare_dumps(a, b) is None


def test_destination_engine_hint(tmp_path: Path) -> None:
    message = cli_error("convert", str(UNSEG), str(tmp_path / "out.bin"))
    assert "cannot tell the storage engine from its name" in message
    assert "--engine ENGINE" in message
    with pytest.raises(skelstore.EngineError, match=r"choose it with engine=\.\.\. "):
        skelstore.convert(UNSEG, tmp_path / "out.bin")
    assert run("convert", str(UNSEG), str(tmp_path / "out.bin"), "--engine", "zarr")[0] == 0
    src = tmp_path / "json"
    _json_dir(src, 3)
    message = cli_error("import-openpose", str(src), str(tmp_path / "x.bin"), "--mode", "BODY_25")
    assert "--engine ENGINE" in message
    with pytest.raises(skelstore.EngineError, match=r"choose it with engine=\.\.\. "):
        import_openpose(src, tmp_path / "x.bin")


def test_storage_option_after_the_command(s3_server, s3_bucket: str) -> None:
    code, _, err = run("info", str(UNSEG), "-o", "novalue")
    assert code == 2 and "--storage-option" in err  # a usage error naming the option
    url = f"s3://{s3_bucket}/v.zarr"
    opts = s3_server.storage_options()
    skelstore.convert(UNSEG, url, storage_options=opts)
    assert run("info", url)[0] == 2  # without the options: no credentials, no endpoint
    args = [f"-o{k}={v}" for k, v in opts.items()]
    # values are JSON where they parse: a dict reaches botocore's Config as a dict
    args += ["--storage-option", 'config_kwargs={"connect_timeout": 7}']
    for command in ("info", "ls", "validate", "cat"):
        code, out, err = run(command, url, *args)
        assert code == 0, (command, err)
    code, out, _ = run("info", url, "--json", *args)
    assert json.loads(out)["engine"] == "zarr"
    # before the command too, and mixed: the later one wins
    code, out, _ = run("-o", "endpoint_url=http://127.0.0.1:9", "info", url, *args)
    assert code == 0


# ---------------------------------------------------------------- other hints


def _json_dir(path: Path, frames: int, skip: tuple[int, ...] = ()) -> None:
    path.mkdir()
    rng = np.random.default_rng(0)
    for f in range(frames):
        if f in skip:
            continue
        kps = np.round(rng.uniform(1, 100, (25, 3)), 3).ravel().tolist()
        doc = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": kps}]}
        (path / f"clip_{f:012d}_keypoints.json").write_text(json.dumps(doc))


def test_overwrite_hint(tmp_path: Path) -> None:
    dst = tmp_path / "o.zarr"
    skelstore.convert(UNSEG, dst)
    with pytest.raises(skelstore.EngineError, match=r"pass overwrite=True\)"):
        skelstore.convert(UNSEG, dst)
    assert "(pass --overwrite)" in cli_error("convert", str(UNSEG), str(dst))
    assert run("convert", str(UNSEG), str(dst), "--overwrite")[0] == 0

    nc = tmp_path / "o.nc"
    export_movement(UNSEG, nc)
    with pytest.raises(skelstore.EngineError, match="pass overwrite=True"):
        export_movement(UNSEG, nc)
    assert "pass --overwrite" in cli_error("export", str(UNSEG), str(nc), "--to", "movement")

    out = tmp_path / "json"
    export_openpose(UNSEG, out)
    with pytest.raises(skelstore.EngineError, match="pass overwrite=True"):
        export_openpose(UNSEG, out)
    assert "pass --overwrite" in cli_error("export", str(UNSEG), str(out), "--to", "openpose-json")

    h5 = tmp_path / "i.h5"
    import_openpose(out, h5)
    with pytest.raises(skelstore.EngineError, match="pass overwrite=True"):
        import_openpose(out, h5)
    assert "pass --overwrite" in cli_error(
        "import-openpose", str(out), str(h5), "--mode", "BODY_25"
    )


def test_overwrite_hint_of_corpus_runs(tmp_path: Path) -> None:
    from skelstore.corpus import Runner, convert_corpus

    out = tmp_path / "out"
    out.mkdir()
    skelstore.convert(GOLDEN / "trackshots_lossy.h5", out / "unseg_body25.zarr")  # differs
    report = convert_corpus(str(UNSEG), str(out), runner=Runner(workers=0))
    assert "pass overwrite=True to replace it" in report.failed[0].error
    code, _, err = run("convert", str(UNSEG), "--to-dir", str(out), "--workers", "0")
    assert code == 1 and "pass --overwrite to replace it" in err
    assert not PYTHON_ARG.search(err)


def test_missing_frames_hint(tmp_path: Path) -> None:
    src = tmp_path / "json"
    _json_dir(src, 6, skip=(3,))
    with pytest.raises(skelstore.MissingFramesError, match="pass missing='empty'"):
        import_openpose(src, tmp_path / "x.h5")
    message = cli_error("import-openpose", str(src), str(tmp_path / "x.h5"), "--mode", "BODY_25")
    assert "(pass --missing empty to import them" in message
    assert (
        run(
            "import-openpose",
            str(src),
            str(tmp_path / "x.h5"),
            "--mode",
            "BODY_25",
            "--missing",
            "empty",
        )[0]
        == 0
    )


def test_tracking_hint(tmp_path: Path) -> None:
    src = tmp_path / "json"
    _json_dir(src, 2)  # person_id [-1]: OpenPose ran without --tracking
    with pytest.raises(skelstore.OpenPoseError, match="otherwise import with tracked=False"):
        import_openpose(src, tmp_path / "x.h5", tracked=True)
    message = cli_error(
        "import-openpose", str(src), str(tmp_path / "x.h5"), "--mode", "BODY_25", "--tracked"
    )
    assert "otherwise import without --tracked" in message


def test_zarr_format_hint_names_the_users_file(tmp_path: Path) -> None:
    # issue 14: the error named the staging file .x2.h5.skelstore-tmp-....h5
    dst = tmp_path / "x2.h5"
    with pytest.raises(skelstore.EngineError) as info:
        skelstore.convert(UNSEG, dst, zarr_format=2)
    assert str(info.value) == f"{dst}: zarr_format= does not apply to the hdf5 engine"
    message = cli_error("convert", str(UNSEG), str(dst), "--zarr-format", "2")
    assert message == f"skelstore: error: {dst}: --zarr-format does not apply to the hdf5 engine"
    src = tmp_path / "json"
    _json_dir(src, 2)
    message = cli_error(
        "import-openpose", str(src), str(dst), "--mode", "BODY_25", "--zarr-format", "2"
    )
    assert message == f"skelstore: error: {dst}: --zarr-format does not apply to the hdf5 engine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["json"]  # no staging leftovers


def test_errors_while_writing_name_the_destination(tmp_path: Path, monkeypatch) -> None:
    import skelstore.conversion as conv

    real = conv._Copier.copy_array

    def fail(self, name, src, dst, role):
        if name == "data":
            raise skelstore.FormatError(f"{dst.source}{dst.path}/data: cannot write")
        return real(self, name, src, dst, role)

    monkeypatch.setattr(conv._Copier, "copy_array", fail)
    for dst in (tmp_path / "a.zarr", tmp_path / "b.h5"):
        with pytest.raises(skelstore.FormatError) as info:
            skelstore.convert(UNSEG, dst, layout="skelshop")  # copied array by array
        assert str(info.value).startswith(f"{dst}/timeline/pose")
        assert "skelstore-tmp" not in str(info.value)


def test_dense_size_hint(tmp_path: Path) -> None:
    with pytest.raises(skelstore.FormatError, match=re.escape("frames=slice(a, b) or shot=N")):
        read_poses(UNSEG, frames=slice(0, 10**9))
    message = cli_error(
        "export", str(UNSEG), str(tmp_path / "o.nc"), "--to", "movement", "--frames", f"0:{10**9}"
    )
    assert "read a part (--frames A:B or --shot N)" in message


def test_workers_hint(tmp_path: Path) -> None:
    url = "memory://hints/a.zarr"
    skelstore.convert(UNSEG, url)
    skelstore.convert(UNSEG, "memory://hints/b.zarr")
    message = cli_error("validate", url, "memory://hints/b.zarr", "--workers", "2")
    assert "run with --workers 0" in message
    assert run("validate", url, "memory://hints/b.zarr", "--workers", "0")[0] == 0


def test_incomplete_hint_names_python_and_the_repair_command(tmp_path: Path) -> None:
    dst = tmp_path / "x.h5"
    shutil.copy(UNSEG, dst)
    with h5py.File(dst, "r+") as f:  # what a writer that died leaves
        f.attrs.update({IN_PROGRESS: True, SHOTS_DONE: 0})
    message = cli_error("info", str(dst))
    assert "skelstore.open(..., allow_incomplete=True) reads them" in message
    assert f"`skelstore repair {dst}`" in message
    assert run("repair", str(dst))[0] == 0 and run("info", str(dst))[0] == 0


def test_errors_are_one_line(tmp_path: Path) -> None:
    # libhdf5's own messages span lines; the command line prints them on one
    not_dump = tmp_path / "notadump"
    not_dump.mkdir()
    message = cli_error("info", str(not_dump), "--engine", "hdf5")
    assert "cannot open as HDF5" in message


def test_plain_hdf5_is_not_a_dump(tmp_path: Path) -> None:
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    assert "plain.h5: not a skeleton dump" in cli_error("cat", str(plain))


def test_missing_engine_library_names_the_package() -> None:
    # the hint was "pip install skelstore", which is not on the package index
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['h5py'] = None\n"
        "import skelstore\n"
        "try:\n"
        "    skelstore.get_engine('hdf5')\n"
        "except skelstore.MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "engine 'hdf5' needs a library that is not installed" in out.stdout
    assert out.stdout.strip().endswith(": pip install h5py")
