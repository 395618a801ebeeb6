"""Data safety: refusals change nothing, overwrites replace only dumps, unfinished
dumps are not adopted, a full disk stops a write cleanly, temporary files of killed
processes are swept, closed dumps take no writes (issue 13, "Losing data")."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import h5py
import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from conftest import invalidate_fsspec_caches

import skelstore
from skelstore.cli import cli
from skelstore.conversion import convert
from skelstore.dump import add_fmt_metadata, add_metadata, write_shots
from skelstore.io import ShotSegmentedReader, ShotSegmentedWriter, UnsegmentedReader
from skelstore.locks import LOCK_SUFFIX
from skelstore.pose import DumpReaderPoseBundle
from skelstore.recovery import IN_PROGRESS
from skelstore.sample import sample_frames
from skelstore.staging import TAG, Staged, check_replaceable
from skelstore.validate import validate

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}


def write_dump(target: str, storage_options: dict[str, Any] | None = None, **kw: Any) -> str:
    with skelstore.open(target, "w", storage_options=storage_options, **kw) as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "v.mp4", 300, "BODY_25", 25)
        write_shots(root, 25, sample_frames(), compression="lossless")
    return target


def snapshot(path: Path) -> dict[str, str]:
    """Every file under ``path`` (or ``path`` itself) with a hash of its bytes."""
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def remote_snapshot(fs: Any, path: str) -> dict[str, str]:
    invalidate_fsspec_caches()
    if fs.isfile(path):
        return {".": hashlib.sha256(fs.cat_file(path)).hexdigest()}
    return {p: hashlib.sha256(fs.cat_file(p)).hexdigest() for p in sorted(fs.find(path))}


class Holder:
    """Another process that holds ``path`` open (an h5py reader, or a skelstore
    writer) until stopped."""

    def __init__(self, code: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code) + "\nprint('ready', flush=True)\n"
             "import sys; sys.stdin.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture
def hold() -> Iterator[Any]:
    holders: list[Holder] = []

    def make(code: str) -> Holder:
        holders.append(Holder(code))
        return holders[-1]

    yield make
    for h in holders:
        h.stop()


# ------------------------------------------------------------------ 1. refusals change nothing


@pytest.mark.parametrize("mode", ["w", "w-", "a", "r+"])
def test_hdf5_open_by_a_reader_elsewhere_is_refused_untouched(tmp_path: Path, hold: Any, mode: str):
    """Another process reads x.h5: every write mode is refused, x.h5 keeps its bytes
    (``w`` used to truncate it to 0 bytes before HDF5 refused the lock)."""
    path = tmp_path / "x.h5"
    write_dump(str(path))
    before = snapshot(path)
    hold(f"import h5py; f = h5py.File({str(path)!r}, 'r')")
    expected = skelstore.EngineError if mode == "w-" else skelstore.LockedError
    with pytest.raises(expected) as info:
        skelstore.open(path, mode)
    assert str(path) in str(info.value)
    assert snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]


@pytest.mark.parametrize("name", ["x.h5", "x.zarr", "x.zarr.zip"])
@pytest.mark.parametrize("mode", ["w", "w-", "a", "r+"])
def test_held_writer_lock_refuses_every_mode_untouched(
    tmp_path: Path, hold: Any, name: str, mode: str
):
    """A skelstore writer in another process holds the dump: a second writer is
    refused in every mode and the dump keeps its bytes."""
    path = tmp_path / name
    write_dump(str(path))
    holder = hold(f"import skelstore; root = skelstore.open({str(path)!r}, 'a')")
    before = snapshot(path)  # (as the holder left it on opening)
    expected = skelstore.EngineError if mode == "w-" else skelstore.LockedError
    with pytest.raises(expected) as info:
        skelstore.open(path, mode)
    assert str(path) in str(info.value)
    if mode != "w-":
        assert f"pid {holder.proc.pid}" in str(info.value)
    assert snapshot(path) == before


@pytest.mark.parametrize("name", ["x.h5", "x.zarr", "x.zarr.zip"])
def test_opening_for_writing_and_closing_changes_no_byte(tmp_path: Path, name: str):
    """A writer that writes nothing leaves the dump as it was (the Zarr engine drops
    consolidated metadata only before its first write)."""
    path = tmp_path / name
    write_dump(str(path))
    before = snapshot(path)
    for mode in ("a", "r+"):
        skelstore.open(path, mode).close()
        assert snapshot(path) == before, mode


@pytest.mark.parametrize("name", ["x.h5", "x.zarr", "x.zarr.zip"])
@pytest.mark.parametrize("mode", ["a", "r+"])
def test_refused_non_dump_is_untouched(tmp_path: Path, name: str, mode: str):
    """``a``/``r+`` on something that is not a store of the engine: refused, untouched."""
    path = tmp_path / name
    if name == "x.zarr":
        path.mkdir()
        (path / "notes.txt").write_text("mine")
    else:
        path.write_bytes(b"not a dump, but mine\n" * 100)
    before = snapshot(path)
    with pytest.raises(skelstore.SkelstoreError):
        skelstore.open(path, mode)
    assert snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name", ["x.h5", "x.zarr", "x.zarr.zip"])
def test_remote_refusals_are_untouched(s3_server: Any, s3_bucket: str, tmp_path: Path, name: str):
    """On S3: ``w-`` on a dump, ``a``/``r+`` on a non-dump and ``w`` on a prefix of
    someone's files are refused, and not one object changes."""
    so = s3_server.storage_options()
    fs = fsspec.filesystem("s3", **so)
    url = f"s3://{s3_bucket}/{name}"
    write_dump(url, so)
    before = remote_snapshot(fs, url)
    with pytest.raises(skelstore.EngineError):
        skelstore.open(url, "w-", storage_options=so)
    assert remote_snapshot(fs, url) == before
    # someone's files where a dump was expected
    other = f"s3://{s3_bucket}/other-{name}"
    if name == "x.zarr":
        fs.pipe({f"{other}/notes.txt": b"mine", f"{other}/sub/data.csv": b"1,2"})
    else:
        fs.pipe({other: b"not a dump, but mine\n" * 100})
    invalidate_fsspec_caches()
    theirs = remote_snapshot(fs, other)
    for mode in ("a", "r+") + (("w",) if name == "x.zarr" else ()):
        with pytest.raises(skelstore.SkelstoreError):
            skelstore.open(other, mode, storage_options=so)
        assert remote_snapshot(fs, other) == theirs, mode
    assert not list(Path(tempfile.gettempdir()).glob(f"{TAG}-{os.getpid()}-*"))


# ---------------------------------------------------------- 2. overwrite replaces dumps only


def _user_dir(path: Path) -> dict[str, str]:
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")
    (path / "figures").mkdir()
    (path / "figures" / "plot.png").write_bytes(b"\x89PNG...")
    return snapshot(path)


@pytest.mark.parametrize("name", ["out.zarr", "out", "out.h5", "out.zarr.zip"])
def test_convert_overwrite_refuses_a_directory_of_user_files(tmp_path: Path, name: str):
    src = write_dump(str(tmp_path / "src.h5"))
    dst = tmp_path / name
    before = _user_dir(dst)
    engine = "zarr" if name == "out" else None
    with pytest.raises(skelstore.OverwriteRefusedError) as info:
        convert(src, str(dst), overwrite=True, engine=engine)
    assert info.value.path == str(dst) and str(dst) in str(info.value)
    assert snapshot(dst) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["src.h5", name])
    args = ["convert", src, str(dst), "--overwrite"] + (["--engine", "zarr"] if engine else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "nothing was deleted" in result.output
    assert snapshot(dst) == before


@pytest.mark.parametrize("name", ["out.h5", "out.zarr.zip"])
def test_convert_overwrite_refuses_a_file_that_is_not_a_dump(tmp_path: Path, name: str):
    src = write_dump(str(tmp_path / "src.h5"))
    dst = tmp_path / name
    dst.write_text("my notes, named oddly")
    with pytest.raises(skelstore.OverwriteRefusedError, match="not a readable dump"):
        convert(src, str(dst), overwrite=True)
    assert dst.read_text() == "my notes, named oddly"


def test_convert_overwrite_refuses_a_dump_with_foreign_files(tmp_path: Path):
    """A Zarr dump that also holds someone else's file is not provably a dump."""
    src = write_dump(str(tmp_path / "src.h5"))
    dst = tmp_path / "out.zarr"
    write_dump(str(dst))
    (dst / "timeline" / "notes.txt").write_text("mine")
    before = snapshot(dst)
    with pytest.raises(skelstore.OverwriteRefusedError, match=r"notes\.txt"):
        convert(src, str(dst), overwrite=True)
    assert snapshot(dst) == before


@pytest.mark.parametrize("name", ["out.zarr", "out.h5", "out.zarr.zip"])
def test_convert_overwrite_replaces_a_dump_and_an_empty_directory(tmp_path: Path, name: str):
    src = write_dump(str(tmp_path / "src.h5"))
    dst = tmp_path / name
    with skelstore.open(dst, "w") as root:  # an older dump: one shot
        add_fmt_metadata(root, "unseg")
    convert(src, str(dst), overwrite=True, verify=True)
    with skelstore.open(dst) as root:
        assert len(ShotSegmentedReader(root)) == 3
    empty = tmp_path / f"empty-{name}"
    empty.mkdir()
    convert(src, str(empty), overwrite=True, engine="zarr" if "zarr" in name else "hdf5")
    with skelstore.open(empty) as root:
        assert len(ShotSegmentedReader(root)) == 3
    assert not [p for p in tmp_path.iterdir() if TAG in p.name]


def test_convert_overwrite_on_s3_refuses_a_prefix_of_user_objects(
    s3_server: Any, s3_bucket: str, tmp_path: Path
):
    so = s3_server.storage_options()
    fs = fsspec.filesystem("s3", **so)
    src = write_dump(str(tmp_path / "src.h5"))
    dst = f"s3://{s3_bucket}/out.zarr"
    fs.pipe({f"{dst}/notes.txt": b"mine", f"{dst}/deep/er/data.bin": b"\x00" * 100})
    invalidate_fsspec_caches()
    before = remote_snapshot(fs, dst)
    with pytest.raises(skelstore.OverwriteRefusedError):
        convert(src, dst, overwrite=True, storage_options=so)
    assert remote_snapshot(fs, dst) == before
    # a dump there (and nothing else) is replaced
    fs.rm(dst, recursive=True)
    invalidate_fsspec_caches()
    write_dump(dst, so)
    convert(src, dst, overwrite=True, storage_options=so, compression="lossy")
    with skelstore.open(dst, storage_options=so) as root:
        assert root["timeline/data"].encoding.scale_digits == 2  # packed, as new Zarr is
    # a dump with one foreign object is not
    fs.pipe({f"{dst}/timeline/extra.txt": b"mine"})
    invalidate_fsspec_caches()
    with pytest.raises(skelstore.OverwriteRefusedError, match=r"extra\.txt"):
        convert(src, dst, overwrite=True, storage_options=so)
    assert fs.cat_file(f"{dst}/timeline/extra.txt") == b"mine"


def test_import_openpose_overwrite_refuses_user_files(tmp_path: Path):
    from skelstore.openpose import import_openpose

    json_dir = tmp_path / "json"
    json_dir.mkdir()
    (json_dir / "v_000000000000_keypoints.json").write_text('{"version":1.3,"people":[]}')
    dst = tmp_path / "walk.zarr"
    before = _user_dir(dst)
    with pytest.raises(skelstore.OverwriteRefusedError):
        import_openpose(str(json_dir), str(dst), overwrite=True)
    assert snapshot(dst) == before
    result = CliRunner().invoke(
        cli, ["import-openpose", str(json_dir), str(dst), "--mode", "BODY_25", "--overwrite"]
    )
    assert result.exit_code == 2 and str(dst) in result.output
    assert snapshot(dst) == before


def test_export_overwrite_replaces_only_what_export_writes(tmp_path: Path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    from skelstore.export import export_movement
    from skelstore.openpose import export_openpose

    src = write_dump(str(tmp_path / "src.h5"))
    # movement: a directory of user files, a netCDF file that is not movement's
    user = tmp_path / "poses.zarr"
    before = _user_dir(user)
    with pytest.raises(skelstore.OverwriteRefusedError):
        export_movement(src, str(user), overwrite=True)
    assert snapshot(user) == before
    nc = tmp_path / "poses.nc"
    with h5py.File(nc, "w") as f:
        f.attrs["title"] = "someone else's netCDF"
    with pytest.raises(skelstore.OverwriteRefusedError):
        export_movement(src, str(nc), overwrite=True)
    # what export wrote is replaced
    for dst in (tmp_path / "a.nc", tmp_path / "a.zarr"):
        export_movement(src, str(dst))
        ds = export_movement(src, str(dst), overwrite=True, shot=1)
        opener = xr.open_zarr if dst.suffix == ".zarr" else xr.open_dataset
        with opener(dst) as back:
            assert back.sizes["time"] == ds.sizes["time"] < 300
    # openpose zip: only a zip of *_keypoints.json
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("holiday.jpg", b"...")
    before = snapshot(other)
    with pytest.raises(skelstore.OverwriteRefusedError):
        export_openpose(src, str(other), overwrite=True)
    assert snapshot(other) == before
    ours = tmp_path / "ours.zip"
    export_openpose(src, str(ours))
    export_openpose(src, str(ours), overwrite=True)
    with zipfile.ZipFile(ours) as zf:
        assert len(zf.namelist()) == 300
    assert not [p for p in tmp_path.iterdir() if TAG in p.name]


def test_corpus_overwrite_refuses_user_files(tmp_path: Path):
    from skelstore.corpus import convert_corpus

    (tmp_path / "in").mkdir()
    src = write_dump(str(tmp_path / "in" / "a.h5"))
    out = tmp_path / "out"
    out.mkdir()
    before = _user_dir(out / "a.zarr")
    report = convert_corpus([src], str(out), engine="zarr", overwrite=True, runner=None)
    (result,) = report.results
    assert result.status == "failed" and "OverwriteRefusedError" in str(result.error_type)
    assert snapshot(out / "a.zarr") == before


def test_check_replaceable_accepts_what_it_should(tmp_path: Path):
    check_replaceable(str(tmp_path / "missing.h5"))
    (tmp_path / "empty").mkdir()
    check_replaceable(str(tmp_path / "empty"))
    unfinished = tmp_path / "unfinished.zarr"  # a crashed writer's dump is a dump
    with skelstore.open(unfinished, "w") as root:
        ShotSegmentedWriter(root, num_kps=25)
        root.__exit__(RuntimeError, None, None)
    check_replaceable(str(unfinished))
    with skelstore.open(tmp_path / "faces.h5", "w") as root:
        root.create_group("faces")
    check_replaceable(str(tmp_path / "faces.h5"))
    plain = tmp_path / "plain.zarr"
    zarr.open_group(str(plain), mode="w").attrs["x"] = 1  # a Zarr store, not a dump
    with pytest.raises(skelstore.OverwriteRefusedError, match="not a skeleton or face dump"):
        check_replaceable(str(plain))


# ---------------------------------------------------------- 3. unfinished dumps are not adopted

CRASH = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import skelstore
    from skelstore.dump import add_fmt_metadata, add_metadata
    from skelstore.io import ShotSegmentedWriter
    from skelstore.layout import TIMELINE

    root = skelstore.open(sys.argv[1], "w", layout="skelshop")  # its groups, by hand
    add_fmt_metadata(root, "trackshots")
    add_metadata(root, "v.mp4", 1000, "BODY_25", 25)
    w = ShotSegmentedWriter(root, num_kps=25)
    for shot in range(2):
        w.start_shot(shot * 10)
        for f in range(shot * 10, shot * 10 + 10):
            w.register_frame(f)
            w.add_pose(f, 0, np.full((25, 3), f + 1, dtype="f4"))
        w.end_shot()
    # the writer dies half-way through shot2: its group and a track are there,
    # 12000 entries reserved and never filled
    shot = root[TIMELINE].create_group("shot2", {"start_frame": 20, "end_frame": 30})
    pose = shot.create_group("pose0", {"start_frame": 20, "end_frame": 30})
    pose.create_array("data", shape=(12000, 3), dtype="f4")
    pose.create_array("indices", shape=(12000,), dtype="u2")
    pose.create_array("indptr", data=np.arange(11, dtype="u4") * 1200)
    root.flush()
    os._exit(0)
    """
)


def crashed_dump(tmp_path: Path, name: str) -> Path:
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    path = tmp_path / name
    subprocess.run([sys.executable, str(script), str(path)], check=True, env=ENV, timeout=120)
    return path


@pytest.mark.parametrize("name", ["d.h5", "d.zarr"])
def test_appending_to_an_unfinished_dump_is_refused_or_repaired(tmp_path: Path, name: str):
    path = crashed_dump(tmp_path, name)
    before = snapshot(path)
    for mode in ("a", "r+"):
        with pytest.raises(skelstore.IncompleteDumpError, match="skelstore repair"):
            skelstore.open(path, mode)
        assert snapshot(path) == before  # refused: not a byte changed
    with (
        pytest.warns(skelstore.RepairWarning, match="/timeline/shot2"),
        skelstore.open(path, "a", allow_incomplete=True) as root,
    ):
        w = ShotSegmentedWriter(root, num_kps=25)
        w.start_shot(20)
        for f in range(20, 25):
            w.register_frame(f)
            w.add_pose(f, 7, np.full((25, 3), 100 + f, dtype="f4"))
        w.end_shot()
    with skelstore.open(path) as root:
        assert validate(root, deep=True).ok
        shots = list(ShotSegmentedReader(root))
        assert [s.index for s in shots] == [0, 1, 2]
        bundles = [dict(b) for b in shots[2]]
        assert len(bundles) == 5 and all(list(b) == [7] for b in bundles)
        assert bundles[0][7].keypoints[0, 0] == 120  # the new poses, not the 12000 zeros


def test_writers_refuse_a_raw_root_left_unfinished(tmp_path: Path):
    """A crashed dump opened with h5py or zarr directly: the writer refuses it."""
    h5 = crashed_dump(tmp_path, "d.h5")
    with h5py.File(h5, "a") as f, pytest.raises(skelstore.IncompleteDumpError):
        ShotSegmentedWriter(f, num_kps=25)
    zpath = crashed_dump(tmp_path, "d.zarr")
    group = zarr.open_group(str(zpath), mode="r+")
    with pytest.raises(skelstore.IncompleteDumpError):
        ShotSegmentedWriter(group, num_kps=25)
    with skelstore.open(tmp_path / "fresh.h5", "w") as root:  # a second writer in a session
        ShotSegmentedWriter(root, num_kps=25)
        ShotSegmentedWriter(root, num_kps=25)


# ------------------------------------------------------------------ 13. unfinished unseg dumps read


@pytest.mark.parametrize("layout", ["skelshop", "packed"])
@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
def test_unfinished_unsegmented_dump_reads_with_allow_incomplete(
    tmp_path: Path, suffix: str, layout: str
):
    from test_incomplete import expected_pose, kill_writer

    target = str(tmp_path / f"u{suffix}")
    done = kill_writer(tmp_path, target, "unseg", after=64, layout=layout)
    with pytest.raises(skelstore.IncompleteDumpError, match="complete rows"):
        skelstore.open(target)
    with skelstore.open(target, allow_incomplete=True) as root:
        frames = list(UnsegmentedReader(root, bundle_cls=DumpReaderPoseBundle))
    assert len(frames) >= done
    for frame, bundle in enumerate(frames):
        got = dict(bundle)
        assert sorted(got) == [0, 1], frame
        for pid, pose in got.items():
            np.testing.assert_array_equal(pose.keypoints, expected_pose(frame, pid))
    # the view agrees with what repair keeps
    with pytest.warns(skelstore.RepairWarning, match="complete rows"):
        skelstore.open(target, "r+", allow_incomplete=True).close()
    with skelstore.open(target) as root:
        assert len(list(UnsegmentedReader(root))) == len(frames)
        assert validate(root, deep=True).ok


def test_missing_frame_attribute_is_named_once(tmp_path: Path):
    path = tmp_path / "u.h5"
    with skelstore.open(path, "w") as root:
        add_fmt_metadata(root, "unseg")
        add_metadata(root, "v.mp4", 10, "BODY_25", 25)
        root.create_group("timeline", {"end_frame": 3})
    with skelstore.open(path) as root, pytest.raises(skelstore.FormatError) as info:
        UnsegmentedReader(root)
    message = str(info.value)
    assert message.count(str(path)) == 1 and "missing attribute 'start_frame'" in message


# ------------------------------------------------------------------ 8. closed dumps take no writes


@pytest.mark.parametrize("name", ["c.h5", "c.zarr", "c.zarr.zip"])
def test_writes_after_close_raise_closed_error(tmp_path: Path, name: str):
    path = tmp_path / name
    root = skelstore.open(path, "w")
    group = root.create_group("g", {"a": 1})
    array = root.create_array("arr", data=np.zeros(4), growable=True)
    attrs = root.attrs
    root.close()
    writes = {
        "root attrs": lambda: root.attrs.__setitem__("x", 1),
        "held attrs": lambda: attrs.update({"y": 2}),
        "attr delete": lambda: group.attrs.__delitem__("a"),
        "child attrs": lambda: group.attrs.__setitem__("z", 1),
        "array attrs": lambda: array.attrs.__setitem__("z", 1),
        "array write": lambda: array.__setitem__(slice(0, 1), 5),
        "append": lambda: array.append(np.ones(2)),
        "group": lambda: root.create_group("h"),
        "array": lambda: group.create_array("q", data=np.zeros(2)),
    }
    for what, write in writes.items():
        with pytest.raises(skelstore.ClosedError) as info:
            write()
        assert isinstance(info.value, skelstore.ReadOnlyError), what
        assert str(path) in str(info.value), what
    with skelstore.open(path) as again:
        assert set(again.attrs) == set() and again.keys() == ["arr", "g"]
        assert dict(again["g"].attrs) == {"a": 1}


# ------------------------------------------------------------------ 4. a full disk


BIG = textwrap.dedent(
    """
    import sys
    import numpy as np
    import skelstore
    from skelstore.dump import add_fmt_metadata, add_metadata
    from skelstore.io import ShotSegmentedWriter

    rng = np.random.default_rng(0)
    with skelstore.open(sys.argv[1], "w") as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "v.mp4", 4000, "BODY_25", 25)
        w = ShotSegmentedWriter(root, num_kps=25)
        f = 0
        for s in range(20):
            w.start_shot(f)
            for _ in range(200):
                w.register_frame(f)
                for pid in range(4):
                    w.add_pose(f, s * 4 + pid, rng.uniform(1, 500, (25, 3)).astype("f4"))
                f += 1
            w.end_shot()
    """
)


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 7 MB uncompressed dump (80 tracks of 200 frames)."""
    base = tmp_path_factory.mktemp("big")
    script = base / "big.py"
    script.write_text(BIG)
    path = base / "big.h5"
    subprocess.run([sys.executable, str(script), str(path)], check=True, env=ENV, timeout=300)
    return path


LIMITED = textwrap.dedent(
    """
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit fails (EFBIG)
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from skelstore.cli import main
    main(sys.argv[2:])
    """
)


def run_convert(src: Path, dst: Path, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """``skelstore convert SRC DST`` in a child (it could crash), with files limited to
    ``limit`` bytes (``RLIMIT_FSIZE``) if given."""
    if limit is None:
        cmd = [sys.executable, "-m", "skelstore", "convert", str(src), str(dst), "-q"]
    else:
        cmd = [sys.executable, "-c", LIMITED, str(limit), "convert", str(src), str(dst), "-q"]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)


def check_stopped_cleanly(result: subprocess.CompletedProcess[str], dst: Path) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]  # one error, no tracebacks
    assert lines[0].startswith(f"skelstore: error: {dst}: write failed: ")
    assert TAG not in lines[0]
    assert not dst.exists()
    assert [p.name for p in dst.parent.iterdir()] == [], list(dst.parent.iterdir())


#: The file size at which each destination fails: HDF5 and zip are one file; a
#: Zarr store's chunk files are small.
LIMITS = {"out.h5": 2 * 2**20, "out.zarr": 16 * 2**10, "out.zarr.zip": 2 * 2**20}


@pytest.mark.parametrize("name", list(LIMITS))
def test_convert_stops_at_the_first_failed_write(tmp_path: Path, big_dump: Path, name: str):
    """Files may not grow beyond a limit (``RLIMIT_FSIZE``, failing writes with
    EFBIG): ``convert`` stops at the first failure with one line naming the
    destination, exit 2, no crash, and nothing left behind."""
    out = tmp_path / "out"
    out.mkdir()
    result = run_convert(big_dump, out / name, LIMITS[name])
    check_stopped_cleanly(result, out / name)
    assert "File too large" in result.stderr


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (mounting needs root; skipped where it cannot be mounted: the
    RLIMIT_FSIZE test above covers the same code everywhere)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("name", list(LIMITS))
def test_convert_into_a_full_disk(tiny_fs: Path, big_dump: Path, name: str):
    """No space left on device (a real full filesystem): as above, and the space is
    free again afterwards."""
    result = run_convert(big_dump, tiny_fs / name)
    check_stopped_cleanly(result, tiny_fs / name)
    assert "No space left on device" in result.stderr
    st = os.statvfs(tiny_fs)
    assert st.f_bfree * st.f_frsize > 1.9 * 2**20


WRITE_UNTIL_FULL = textwrap.dedent(
    """
    import sys
    import numpy as np
    import skelstore
    from skelstore.io import ShotSegmentedWriter

    rng = np.random.default_rng(0)
    try:
        with skelstore.open(sys.argv[1], "w") as root:
            w = ShotSegmentedWriter(root, num_kps=25)
            for s in range(int(sys.argv[2])):
                w.start_shot(s * 100)
                for f in range(s * 100, s * 100 + 100):
                    w.add_pose(f, 0, rng.uniform(1, 500, (25, 3)).astype("f4"))
                w.end_shot()
    except skelstore.StorageFullError as exc:
        assert isinstance(exc, OSError) and exc.errno is not None
        print("FULL", s, exc)
    """
)


@pytest.mark.parametrize("name", ["w.h5", "w.zarr", "w.zarr.zip"])
def test_writer_stops_with_storage_full_and_exits_cleanly(tmp_path: Path, name: str):
    """A writer filling the disk gets StorageFullError (also an OSError), the root
    closes without tracebacks, and the process exits normally (HDF5 used to
    segfault at exit)."""
    script = tmp_path / "w.py"
    script.write_text(WRITE_UNTIL_FULL)
    out = tmp_path / "out"
    out.mkdir()
    limit = 16 * 2**10 if name == "w.zarr" else 2**20
    shots = 60 if name == "w.zarr.zip" else 1000  # a zip is written on close: 1.8 MB
    # the script runs with sys.argv == [script, target]
    run = LIMITED.replace("from skelstore.cli import main", "sys.argv = sys.argv[2:]")
    run = run.replace("main(sys.argv[2:])", "exec(open(sys.argv[0]).read())")
    result = subprocess.run(
        [sys.executable, "-c", run, str(limit), str(script), str(out / name), str(shots)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("FULL"), result.stdout + result.stderr[-3000:]
    assert str(out / name) in result.stdout and "Traceback" not in result.stderr
    assert not [p for p in out.iterdir() if TAG in p.name or p.name.endswith(LOCK_SUFFIX)]


def test_failed_write_is_raised_again_and_by_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """After a failed write every later write raises it again, and closing raises it
    when no other error is on its way out."""
    import zarr.storage

    path = tmp_path / "d.zarr"
    root = skelstore.open(path, "w")
    arr = root.create_array("a", shape=(10,), dtype="f4")

    async def full(self: Any, key: str, value: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zarr.storage.LocalStore, "set", full)
    with pytest.raises(skelstore.StorageFullError):
        arr[0:5] = 1
    monkeypatch.undo()
    with pytest.raises(skelstore.StorageFullError, match="an earlier write failed"):
        root.attrs["x"] = 1
    with pytest.raises(skelstore.StorageFullError):
        root.close()
    assert not (path.parent / f".{path.name}{LOCK_SUFFIX}").exists()


def test_failed_write_waits_for_the_writes_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A chunk write that fails leaves its concurrent siblings running in zarr's
    event loop; the error is raised only once they are done and their errors taken
    (else a full disk prints "exception was never retrieved" tracebacks at exit)."""
    import asyncio

    import zarr.storage

    from skelstore.backends.zarr import compat

    path = tmp_path / "d.zarr"
    root = skelstore.open(path, "w", zarr_format=2)  # a chunk an object
    arr = root.create_array("a", shape=(8,), chunks=(1,), dtype="f4")
    finished: list[str] = []

    async def full(self: Any, key: str, value: Any) -> None:
        await asyncio.sleep(0.01 if key == "a/0" else 0.3)  # the first chunk fails first
        finished.append(key)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zarr.storage.LocalStore, "set", full)
    with pytest.raises(skelstore.StorageFullError):
        arr[:] = 1
    monkeypatch.undo()

    async def unfinished() -> int:
        me = asyncio.current_task()
        return sum(1 for t in asyncio.all_tasks() if t is not me and not t.done())

    assert sorted(finished) == [f"a/{i}" for i in range(8)]
    assert compat.run(unfinished()) == 0
    with pytest.raises(skelstore.StorageFullError):
        root.close()


# ------------------------------------------------------------------ 5. stale temporary files


SLOW_CONVERT = textwrap.dedent(
    """
    import sys, time
    from skelstore import conversion as mod

    copy = mod._Copier.copy_array
    started = False

    def slow(self, *args, **kwargs):
        global started
        copy(self, *args, **kwargs)
        if not started:
            started = True
            print("started", flush=True)
            time.sleep(600)

    mod._Copier.copy_array = slow
    mod.convert(sys.argv[1], sys.argv[2], layout="skelshop")  # copied array by array
    """
)


def _kill_during(script: str, *args: str, sig: int = signal.SIGKILL) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, env=ENV
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode == -sig


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.parametrize("name", ["out.h5", "out.zarr", "out.zarr.zip"])
def test_a_killed_conversion_is_swept_by_the_next(tmp_path: Path, name: str, sig: int):
    src = write_dump(str(tmp_path / "src.h5"))
    out = tmp_path / "out"
    out.mkdir()
    _kill_during(SLOW_CONVERT, src, str(out / name), sig=sig)
    left = [p.name for p in out.iterdir()]
    assert left and all(TAG in n or n.endswith(LOCK_SUFFIX) for n in left), left
    convert(src, str(out / name), verify=True)
    assert [p.name for p in out.iterdir()] == [name]


def test_a_killed_writer_leaves_a_lock_file_the_next_one_takes_over(tmp_path: Path):
    path = tmp_path / "x.h5"
    write_dump(str(path))
    code = f"import os, skelstore; root = skelstore.open({str(path)!r}, 'a'); os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, timeout=60)
    lock = tmp_path / f".x.h5{LOCK_SUFFIX}"
    assert lock.exists()  # a dead holder
    with skelstore.open(path, "a") as root:
        root.attrs["ok"] = True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]


def test_remote_staging_sweeps_dead_owners_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from skelstore.staging import _host

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"{TAG}-{dead_pid}-{_host()}-0123abcd"
    alive = tmp_path / f"{TAG}-{os.getpid()}-{_host()}-4567abcd"
    elsewhere = tmp_path / f"{TAG}-{dead_pid}-another-host-89abcdef"
    unrelated = tmp_path / "my-files"
    for d in (stale, alive, elsewhere, unrelated):
        d.mkdir()
        (d / "f").write_bytes(b"x")
    staged = Staged("memory://x.h5")
    try:
        names = {p.name for p in tmp_path.iterdir()}
        assert stale.name not in names
        assert {alive.name, elsewhere.name, unrelated.name} <= names
    finally:
        staged.discard()
    assert not Path(staged.path).parent.exists()


def test_zip_build_of_a_killed_writer_is_swept(tmp_path: Path):
    path = tmp_path / "x.zarr.zip"
    code = textwrap.dedent(
        f"""
        import os, skelstore
        root = skelstore.open({str(path)!r}, "w")
        root.create_group("g")
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, timeout=60)
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".build")]
    write_dump(str(path))  # sweeps the dead writer's build directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.zarr.zip"]
    with skelstore.open(path) as root:
        assert IN_PROGRESS not in root.attrs
