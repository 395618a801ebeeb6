"""Corpus runs: many dumps at once, on a Dask LocalCluster and serially (skelstore.corpus, CLI).

The corpus is seeded (``benchmarks/data.py:make_corpus``): 56 small BODY_25 dumps,
HDF5 files and Zarr stores, six of them broken on purpose (garbage bytes, a
truncated file, a file without dump attributes, an unfinished write, a
non-monotone ``indptr``). One LocalCluster (2 worker processes) serves the module.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import skelstore
from skelstore.cli import cli
from skelstore.conversion import VERIFIED_ATTR, compare_dumps, convert, read_record
from skelstore.corpus import (
    Runner,
    convert_corpus,
    expand_sources,
    info_corpus,
    summarize,
    validate_corpus,
)
from skelstore.errors import EngineError, MissingDependencyError, NotFoundError

ROOT = Path(__file__).resolve().parent.parent
N_FILES = 56
SERIAL = Runner(workers=0)

#: What each kind of corpus file gives, per command.
INFO_STATUS = {
    "hdf5": "ok",
    "zarr": "ok",
    "bad_indptr": "ok",
    "garbage": "failed",
    "truncated": "failed",
    "not_a_dump": "failed",
    "incomplete": "failed",
}
VALIDATE_STATUS = {**INFO_STATUS, "bad_indptr": "invalid", "not_a_dump": "invalid"}
CONVERT_STATUS = {k: "converted" if v == "ok" else v for k, v in INFO_STATUS.items()}
ERROR_TYPE = {
    "garbage": "FormatError",
    "truncated": "FormatError",
    "not_a_dump": "FormatError",
    "incomplete": "IncompleteDumpError",
}


def _bench_data() -> Any:
    spec = importlib.util.spec_from_file_location(
        "skelstore_bench_data", ROOT / "benchmarks" / "data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    directory = tmp_path_factory.mktemp("corpus")
    manifest = _bench_data().make_corpus(str(directory), N_FILES, seed=3)
    return directory, manifest


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address=None,
                     scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        yield client


def _kinds(manifest: list[dict[str, Any]]) -> dict[str, str]:
    return {m["name"]: m["kind"] for m in manifest}


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _relative(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results with file names in place of URLs (to compare runs in different places)."""

    def walk(v: Any, key: str = "") -> Any:
        if isinstance(v, dict):
            return {k: walk(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str) and key in ("src", "dst", "url"):
            return _name(v)
        if isinstance(v, str) and key == "error":
            return v.split(": ", 1)[-1]
        return v

    return [walk(r) for r in rows]


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------- sources


def test_expand_globs_match_stores_not_their_files(corpus, tmp_path: Path) -> None:
    directory, manifest = corpus
    zarrs = sorted(m["name"] for m in manifest if m["kind"] == "zarr")
    got = expand_sources(str(directory / "*.zarr"))
    assert [_name(u) for u in got] == zarrs and all(Path(u).is_dir() for u in got)
    everything = expand_sources(str(directory / "**"))
    assert sorted(_name(u) for u in everything) == sorted(m["name"] for m in manifest)
    (directory / "sub").mkdir(exist_ok=True)  # a plain directory is not a dump
    (directory / ".hidden.h5").write_bytes(b"x")  # hidden names are never matched
    try:
        assert len(expand_sources(str(directory / "*"))) == N_FILES
    finally:
        (directory / "sub").rmdir()
        (directory / ".hidden.h5").unlink()
    first = str(directory / manifest[0]["name"])
    both = expand_sources([first, str(directory / "*.h5"), str(tmp_path / "missing.h5")])
    assert both[0] == first and both.count(first) == 1  # listed once, in its first place
    assert both[-1] == str(tmp_path / "missing.h5")  # literal paths are kept as given
    with pytest.raises(NotFoundError, match="matches no dump"):
        expand_sources(str(tmp_path / "*.h5"))


# ---------------------------------------------------------------- local, Dask vs serial


def test_validate_on_cluster_equals_serial(corpus, dask_client) -> None:
    directory, manifest = corpus
    kinds = _kinds(manifest)
    on_dask = validate_corpus(str(directory / "*"), runner=Runner(client=dask_client))
    serial = validate_corpus(str(directory / "*"), runner=SERIAL)
    assert on_dask.executor.startswith("Dask cluster tcp://127.0.0.1:")
    assert serial.executor == "this process"
    assert len(on_dask.results) == N_FILES
    assert on_dask.comparable() == serial.comparable()
    for r in on_dask.results:
        kind = kinds[_name(r.src)]
        assert r.status == VALIDATE_STATUS[kind], (r.src, r.error)
        if r.status == "failed":
            assert r.error_type == ERROR_TYPE[kind] and _name(r.src) in r.error
    bad = next(r for r in on_dask.results if kinds[_name(r.src)] == "bad_indptr")
    assert any("indptr: not monotone" in p for p in bad.validation.problems)
    assert not on_dask.ok and on_dask.counts()["ok"] == sum(
        k in ("hdf5", "zarr") for k in kinds.values()
    )


def test_info_summary_on_cluster_equals_serial(corpus, dask_client, tmp_path: Path) -> None:
    directory, manifest = corpus
    on_dask = info_corpus(str(directory / "*"), runner=Runner(client=dask_client))
    serial = info_corpus(str(directory / "*"), runner=SERIAL)
    assert on_dask.comparable() == serial.comparable()
    totals = summarize(on_dask)
    assert totals.as_dict() == summarize(serial).as_dict()
    readable = [m for m in manifest if INFO_STATUS[m["kind"]] == "ok"]
    by_engine: dict[str, list[dict[str, Any]]] = {}
    for m in readable:
        by_engine.setdefault("zarr" if m["name"].endswith(".zarr") else "hdf5", []).append(m)
    assert sorted(totals.engines) == sorted(by_engine)
    for engine, files in by_engine.items():
        t = totals.engines[engine]
        assert t.files == len(files)
        assert t.frames == sum(m["frames"] for m in files)  # the generator's own counts
        assert t.bytes == sum(_size(directory / m["name"]) for m in files)
    assert totals.total.frames == sum(m["frames"] for m in readable)
    assert totals.total.poses == sum(r.info.poses_stored for r in serial.results if r.info)
    assert sorted(_name(f["src"]) for f in totals.failed) == sorted(
        m["name"] for m in manifest if INFO_STATUS[m["kind"]] == "failed"
    )
    # written as CSV and JSON
    totals.write(str(tmp_path / "s.csv"))
    totals.write(str(tmp_path / "s.json"))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    assert [r["engine"] for r in rows] == [*sorted(by_engine), "total"]
    assert int(rows[-1]["frames"]) == totals.total.frames
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["total"]["keypoints"] == totals.total.keypoints
    assert len(data["files"]) == len(readable) and len(data["failed"]) == N_FILES - len(readable)
    with pytest.raises(EngineError, match=r"\.csv or \.json"):
        totals.write(str(tmp_path / "s.txt"))


def test_convert_on_cluster_equals_serial_then_skips(corpus, dask_client, tmp_path: Path) -> None:
    directory, manifest = corpus
    kinds = _kinds(manifest)
    on_dask = convert_corpus(
        str(directory / "*"), str(tmp_path / "a"), runner=Runner(client=dask_client)
    )
    serial = convert_corpus(str(directory / "*"), str(tmp_path / "b"), runner=SERIAL)
    assert _relative(on_dask.comparable()) == _relative(serial.comparable())
    for r in on_dask.results:
        assert r.status == CONVERT_STATUS[kinds[_name(r.src)]], (r.src, r.error)
        if r.status == "failed":
            assert r.error_type == ERROR_TYPE[kinds[_name(r.src)]]
            assert not os.path.lexists(r.dst)  # nothing half written
            continue
        assert r.dst == str(tmp_path / "a" / _name(r.dst))
        assert r.dst.endswith(".h5" if r.src.endswith(".zarr") else ".zarr")
        with skelstore.open(r.src) as src, skelstore.open(r.dst) as dst:
            assert compare_dumps(src, dst) is None
            record = read_record(dst)
            assert record is not None and record["src"] == r.src
            assert VERIFIED_ATTR not in src.attrs
    # a second run converts nothing and reports the same failures
    again = convert_corpus(
        str(directory / "*"), str(tmp_path / "a"), runner=Runner(client=dask_client)
    )
    assert again.counts() == {
        "converted": 0,
        "skipped": on_dask.counts()["converted"],
        "failed": on_dask.counts()["failed"],
    }
    assert {r.note for r in again.results if r.status == "skipped"} == {"verified earlier"}
    assert [r.conversion.frames for r in again.results if r.conversion] == [
        r.conversion.frames for r in on_dask.results if r.conversion
    ]
    assert [r.error for r in again.failed] == [r.error for r in on_dask.failed]
    assert not list((tmp_path / "a").glob(".*"))  # no staging leftovers, no side files


def _small_corpus(corpus, tmp_path: Path, n: int = 3) -> tuple[Path, list[str]]:
    directory, manifest = corpus
    names = [m["name"] for m in manifest if m["kind"] == "hdf5"][:n]
    src = tmp_path / "src"
    src.mkdir()
    for name in names:
        shutil.copy(directory / name, src / name)
    return src, names


def test_resume_after_partial_run_and_changed_sources(corpus, tmp_path: Path) -> None:
    src, names = _small_corpus(corpus, tmp_path)
    out = tmp_path / "out"
    first = convert_corpus(str(src / "*.h5"), str(out), runner=SERIAL)
    assert first.counts()["converted"] == 3
    stem = [n[:-3] for n in names]
    # a destination lost (a run that died before publishing it): converted again
    shutil.rmtree(out / f"{stem[0]}.zarr")
    # a destination written by a plain conversion (no record): verified, kept
    shutil.rmtree(out / f"{stem[1]}.zarr")
    convert(str(src / names[1]), str(out / f"{stem[1]}.zarr"))
    with skelstore.open(out / f"{stem[1]}.zarr") as root:
        assert read_record(root) is None
    # a source changed since its conversion: its copy no longer matches
    other = corpus[0] / next(
        m["name"] for m in corpus[1] if m["kind"] == "hdf5" and m["name"] not in names
    )
    shutil.copy(other, src / names[2])
    second = convert_corpus(str(src / "*.h5"), str(out), runner=SERIAL)
    got = {_name(r.src): (r.status, r.note, r.error_type) for r in second.results}
    assert got[names[0]] == ("converted", None, None)
    assert got[names[1]] == ("skipped", "existing copy verified", None)
    assert got[names[2]][0::2] == ("failed", "VerificationError")
    assert "pass overwrite=True" in second.failed[0].error  # the Python spelling
    third = convert_corpus(str(src / "*.h5"), str(out), runner=SERIAL, overwrite=True)
    assert third.counts() == {"converted": 3, "skipped": 0, "failed": 0}
    with skelstore.open(src / names[2]) as a, skelstore.open(out / f"{stem[2]}.zarr") as b:
        assert compare_dumps(a, b) is None and read_record(b)["src"] == str(src / names[2])
    # asking for another compression than the existing copies have is not "done"
    lossy = convert_corpus(str(src / "*.h5"), str(out), compression="lossy", runner=SERIAL)
    assert {r.error_type for r in lossy.results} == {"VerificationError"}
    assert "compression lossless, not lossy" in lossy.results[0].error


def test_record_is_not_content(corpus, tmp_path: Path) -> None:
    src, names = _small_corpus(corpus, tmp_path, 1)
    convert_corpus(str(src / "*.h5"), str(tmp_path / "out"), runner=SERIAL)
    first = tmp_path / "out" / (names[0][:-3] + ".zarr")
    convert(str(first), str(tmp_path / "again.h5"), verify=True)  # a copy of the copy
    with skelstore.open(first) as a, skelstore.open(tmp_path / "again.h5") as b:
        assert VERIFIED_ATTR in a.attrs and VERIFIED_ATTR not in b.attrs
        assert compare_dumps(a, b) is None
    with pytest.raises(ValueError, match="needs verify"):
        convert(str(first), str(tmp_path / "x.h5"), record={"src": "x"})


def test_conflicting_destinations_and_memory_on_dask(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "v.h5").write_bytes(b"")
    with pytest.raises(EngineError, match="would both be converted to"):
        convert_corpus(str(tmp_path / "*" / "v.h5"), str(tmp_path / "out"), runner=SERIAL)
    with pytest.raises(EngineError, match="memory://"):
        validate_corpus(["memory://a.zarr", "memory://b.zarr"], runner=Runner(workers=2))


def test_memory_urls_run_serially(corpus) -> None:
    directory, manifest = corpus
    names = [m["name"] for m in manifest if m["kind"] == "hdf5"][:2]
    for n in names:
        with skelstore.open(directory / n) as a, skelstore.open(f"memory://in/{n}", "w") as b:
            b.attrs.update(dict(a.attrs))
    rep = convert_corpus("memory://in/*.h5", "memory://out", runner=SERIAL, engine="hdf5")
    assert [r.dst for r in rep.results] == [f"memory://out/{n}" for n in names]
    assert {r.error_type for r in rep.results} == {"FormatError"}  # no timeline: refused
    assert all(_name(r.src) in r.error for r in rep.results)


# ---------------------------------------------------------------- S3


def test_s3_corpus_on_cluster_equals_serial(corpus, dask_client, s3_server, s3_bucket) -> None:
    import fsspec

    directory, manifest = corpus
    opts = s3_server.storage_options()
    fs = fsspec.filesystem("s3", **opts)
    fs.put(str(directory) + "/", f"{s3_bucket}/dumps/", recursive=True)
    base = f"s3://{s3_bucket}/dumps"
    zarrs = expand_sources(f"{base}/*.zarr", opts)
    assert [_name(u) for u in zarrs] == sorted(m["name"] for m in manifest if m["kind"] == "zarr")
    assert all(u.startswith(f"{base}/") for u in zarrs)
    assert len(expand_sources(f"{base}/**", opts)) == N_FILES  # stores, not their objects
    on_dask = Runner(client=dask_client)
    local_info = info_corpus(str(directory / "*"), runner=SERIAL)
    for fn, expected in ((validate_corpus, VALIDATE_STATUS), (info_corpus, INFO_STATUS)):
        a = fn(f"{base}/*", storage_options=opts, runner=on_dask)
        b = fn(f"{base}/*", storage_options=opts, runner=SERIAL)
        assert a.comparable() == b.comparable()
        assert [r.status for r in a.results] == [expected[m["kind"]] for m in manifest]
    s3_totals, local_totals = summarize(a), summarize(local_info)
    assert s3_totals.total.frames == local_totals.total.frames
    assert s3_totals.total.poses == local_totals.total.poses
    assert s3_totals.engines["hdf5"].bytes == local_totals.engines["hdf5"].bytes
    # conversions (the slow part: moto serves every request from this process) on 30 files
    some = f"{base}/video00[0-2]*"
    conv = convert_corpus(
        some, f"s3://{s3_bucket}/out", storage_options=opts, runner=on_dask, engine="hdf5"
    )
    conv_serial = convert_corpus(
        some, f"s3://{s3_bucket}/out2", storage_options=opts, runner=SERIAL, engine="hdf5"
    )
    assert len(conv.results) == 30 and len(conv.failed) == 3
    assert _relative(conv.comparable()) == _relative(conv_serial.comparable())
    kinds = _kinds(manifest)
    assert [r.status for r in conv.results] == [
        CONVERT_STATUS[kinds[_name(r.src)]] for r in conv.results
    ]
    fs.invalidate_cache()
    assert len(fs.ls(f"{s3_bucket}/out")) == conv.counts()["converted"]
    done = next(r for r in conv.results if r.status == "converted")
    with (skelstore.open(done.src, storage_options=opts) as a,
          skelstore.open(done.dst, storage_options=opts) as b):  # fmt: skip
        assert compare_dumps(a, b) is None and read_record(b)["src"] == done.src
    subset = f"{base}/video000[0-7].*"  # converted again: all skipped
    again = convert_corpus(
        subset, f"s3://{s3_bucket}/out", storage_options=opts, runner=on_dask, engine="hdf5"
    )
    first = {r.src: r.status for r in conv.results}
    assert len(again.results) == 8
    assert [r.status for r in again.results] == [
        "skipped" if first[r.src] == "converted" else "failed" for r in again.results
    ]


# ---------------------------------------------------------------- CLI


def test_cli_convert_corpus_reports_failures_and_resumes(corpus, dask_client, tmp_path) -> None:
    directory, manifest = corpus
    address = dask_client.scheduler.address
    out = tmp_path / "out"
    pattern = str(directory / "video00[0-1]*")  # 20 files
    manifest = manifest[:20]
    code, stdout, stderr = run_cli("convert", pattern, "--to-dir", str(out), "--scheduler", address)
    n_failed = sum(CONVERT_STATUS[m["kind"]] == "failed" for m in manifest)
    assert code == 1
    failures = [ln for ln in stderr.splitlines() if ln.startswith("skelstore: failed:")]
    assert len(failures) == n_failed
    garbage = next(m["name"] for m in manifest if m["kind"] == "garbage")
    assert any(f"{garbage}: FormatError:" in ln for ln in failures)
    table = {ln.split()[0]: ln.split()[1:] for ln in stdout.splitlines()[-4:]}
    assert table["converted"][0] == str(20 - n_failed) and table["total"] == ["20"]
    assert table["skipped"][0] == "0" and table["failed"] == [str(n_failed)]
    assert f"on Dask scheduler {address}" in stderr
    code, stdout, _ = run_cli("convert", pattern, "--to-dir", str(out), "--scheduler", address)
    assert code == 1 and stdout.count("skipped (verified earlier)") == 20 - n_failed
    table = {ln.split()[0]: ln.split()[1:] for ln in stdout.splitlines()[-4:]}
    assert table["skipped"][0] == str(20 - n_failed) and table["converted"][0] == "0"
    # quiet: nothing on stdout, failures still on stderr
    code, stdout, stderr = run_cli("convert", pattern, "--to-dir", str(out), "-q", "--workers", "0")
    assert code == 1 and stdout == "" and stderr.count("skelstore: failed:") == n_failed


def test_cli_validate_serial_output_equals_cluster(corpus, dask_client) -> None:
    directory, manifest = corpus
    pattern = str(directory / "*")
    code_a, out_a, err_a = run_cli("validate", pattern, "--workers", "0")
    code_b, out_b, _ = run_cli(
        "validate", pattern, env={"DASK_SCHEDULER_ADDRESS": dask_client.scheduler.address}
    )
    assert code_a == code_b == 1
    assert out_a == out_b
    assert "indptr: not monotone" in out_a
    statuses = [VALIDATE_STATUS[m["kind"]] for m in manifest]
    table = {ln.split()[0]: ln.split()[1] for ln in out_a.splitlines()[-4:]}
    assert table == {
        "ok": str(statuses.count("ok")),
        "invalid": str(statuses.count("invalid")),
        "failed": str(statuses.count("failed")),
        "total": str(N_FILES),
    }
    assert "on this process" in err_a


def test_cli_info_summary_writes_csv_and_json(corpus, dask_client, tmp_path: Path) -> None:
    directory, manifest = corpus
    address = dask_client.scheduler.address
    code, stdout, stderr = run_cli(
        "info",
        "--summary",
        str(directory / "*.zarr"),
        "--scheduler",
        address,
        "--output",
        str(tmp_path / "t.csv"),
    )
    assert code == 0, stderr
    zarrs = [m for m in manifest if m["kind"] == "zarr"]
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["engine", "files", "frames"]
    assert lines[1].split()[:3] == ["zarr", str(len(zarrs)), str(sum(m["frames"] for m in zarrs))]
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert rows[-1]["engine"] == "total" and int(rows[-1]["files"]) == len(zarrs)
    code, stdout, stderr = run_cli(
        "info",
        "--summary",
        "--json",
        str(directory / "*"),
        "--scheduler",
        address,
        "--output",
        str(tmp_path / "t.json"),
    )
    assert code == 1  # the broken files
    assert json.loads(stdout) == json.loads((tmp_path / "t.json").read_text())
    n_failed = sum(INFO_STATUS[m["kind"]] == "failed" for m in manifest)
    assert stderr.count("skelstore: failed:") == len(json.loads(stdout)["failed"]) == n_failed


def test_cli_usage_errors(corpus, tmp_path: Path) -> None:
    directory, manifest = corpus
    one = str(directory / manifest[0]["name"])
    cases = [
        ("validate", one, "--workers", "1", "--scheduler", "tcp://127.0.0.1:1"),
        ("convert", one, str(tmp_path / "x.zarr"), "--workers", "2"),
        ("info", one, "--output", str(tmp_path / "x.csv")),
        ("info", "--summary", one, "--output", str(tmp_path / "x.txt")),
    ]
    for args in cases:
        code, _, _ = run_cli(*args)
        assert code == 2, args
    code, _, stderr = run_cli("validate", str(tmp_path / "*.h5"))
    assert code == 2 and stderr.count("\n") == 1 and "matches no dump" in stderr
    # single files behave as before: a plain info with a glob lists each file
    code, stdout, _ = run_cli("info", str(directory / "*.zarr"))
    assert code == 0 and stdout.count("file  ") == sum(m["kind"] == "zarr" for m in manifest)


def test_cli_default_local_cluster_via_python_m(corpus, tmp_path: Path) -> None:
    directory, manifest = corpus
    names = [m["name"] for m in manifest if m["kind"] == "hdf5"][:3]
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{directory / n}\n" for n in names))
    proc = subprocess.run(
        [sys.executable, "-m", "skelstore", "validate", "--files-from", str(lst), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "DASK_SCHEDULER_ADDRESS": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert "local Dask cluster (2 worker processes)" in proc.stderr
    assert proc.stdout.count(": ok (") == 3
    assert "ok 3 " in " ".join(proc.stdout.split()) and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- Dask is optional


def test_missing_dask_is_a_typed_error(corpus, monkeypatch) -> None:
    directory, _ = corpus
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    with pytest.raises(MissingDependencyError, match=r"skelstore\[dask\]"):
        validate_corpus(str(directory / "*.zarr"), runner=Runner(workers=2))
    code, _, stderr = run_cli("validate", str(directory / "*.zarr"), "--workers", "2")
    assert code == 2 and stderr.count("\n") == 1 and "--workers 0" in stderr
    assert validate_corpus(str(directory / "*.zarr"), runner=SERIAL).ok


def test_importing_skelstore_does_not_import_dask() -> None:
    code = (
        "import sys, skelstore, skelstore.cli, skelstore.corpus; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
