"""Fuzzing: damaged and hostile dumps either decode or raise a SkelstoreError.

Two parts:

* the fixed corpus in ``tests/data/fuzz/`` (built by ``tests/fuzz_corpus.py``,
  never regenerated here): every file is decoded by worker processes
  (``tests/fuzz_worker.py``) — open, every frame and pose through the reader its
  ``fmt_type`` calls for, ``describe``, ``validate(deep=True)``, ``read_poses`` —
  and each step must succeed or raise a ``SkelstoreError``, within
  :data:`TIMEOUT` seconds per file and :data:`RSS_LIMIT_KIB` of peak memory. A
  worker that dies (segfault, abort) or hangs fails the file it was on; the
  other files go on in a fresh worker.
* a hypothesis test that mutates the bytes of the corpus's base dumps (flip,
  overwrite, insert, delete, truncate) and runs the same decoding in a persistent
  worker process, so a crash or hang fails the example instead of pytest. It is
  derandomized (the same 100 examples on every run, so CI is repeatable); to
  explore, run with ``SKELSTORE_FUZZ_RANDOM=1 SKELSTORE_FUZZ_EXAMPLES=5000``.

Some corpus files must be *refused*, not decoded: links, external raw storage and
virtual datasets that point out of the file (:data:`MUST_REFUSE`). The unmutated
bases (``NNNN-base-*``) must decode in every step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
FUZZ_DIR = HERE / "data" / "fuzz"
WORKER = HERE / "fuzz_worker.py"
CORPUS = (
    sorted(p for p in FUZZ_DIR.iterdir() if p.name.endswith((".h5", ".zarr.zip")))
    if FUZZ_DIR.is_dir()
    else []
)
#: Seconds one file may take for all its steps.
TIMEOUT = 10.0
#: Peak resident memory one file may cost its worker.
RSS_LIMIT_KIB = int(1.5 * 2**20)
#: Worker processes decoding the corpus side by side.
WORKERS = 2
#: Name parts of corpus files that point out of the file: reading them must be refused.
MUST_REFUSE = ("-extlink-", "-external-raw-", "-vds-etc-passwd", "-vds-other-file")
STEPS = ("open", "read", "describe", "validate", "dense", "close")


# ------------------------------------------------------------------ corpus run


def _worker_cmd(*args: str) -> list[str]:
    return [sys.executable, str(WORKER), "--timeout", str(TIMEOUT), *args]


def _run_shard(files: list[str]) -> dict[str, dict[str, Any]]:
    """Decode ``files`` in a worker; restart it after a death, blaming the file it
    was on (the last ``start`` line without a result)."""
    results: dict[str, dict[str, Any]] = {}
    todo = list(files)
    while todo:
        proc = subprocess.run(
            _worker_cmd(*todo), capture_output=True, text=True, timeout=TIMEOUT * (len(todo) + 6)
        )
        current = None
        for line in proc.stdout.splitlines():
            msg = json.loads(line)
            if "start" in msg:
                current = msg["start"]
            else:
                results[msg["file"]] = msg
                current = None
        if current is None and proc.returncode == 0:
            break
        if current is None:  # died between files (should not happen): blame the next one
            current = next((f for f in todo if f not in results), None)
            if current is None:
                break
        results[current] = {
            "file": current,
            "crash": proc.returncode,
            "stderr": proc.stderr[-4000:],
        }
        todo = todo[todo.index(current) + 1 :]
    return results


@pytest.fixture(scope="session")
def corpus_results() -> dict[str, dict[str, Any]]:
    files = [str(p) for p in CORPUS]
    shards = [files[i::WORKERS] for i in range(WORKERS)]
    out: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(WORKERS) as pool:
        for part in pool.map(_run_shard, shards):
            out.update(part)
    return {Path(k).name: v for k, v in out.items()}


def _problems(name: str, res: dict[str, Any]) -> list[str]:
    """What is wrong with one file's decoding report (empty: all good)."""
    if "crash" in res:
        if "Timeout (" in res["stderr"]:  # faulthandler's watchdog: stuck in C code
            what = f"hung in native code for over {TIMEOUT + 5:.0f} s (killed by the watchdog)"
        else:
            what = f"crashed the worker (exit status {res['crash']}; negative: the signal)"
        return [f"{name}: {what}; worker stderr:\n{res['stderr']}"]
    problems = []
    if res["timeout"]:
        done = [o["step"] for o in res["outcomes"]]
        tb = next(
            (o.get("traceback", "") for o in res["outcomes"] if o["outcome"] == "timeout"), ""
        )
        problems.append(
            f"{name}: took more than {TIMEOUT:.0f} s (steps run: {done}); stuck at:\n{tb}"
        )
    for o in res["outcomes"]:
        if o["outcome"] == "untyped":
            problems.append(
                f"{name}: step {o['step']!r} raised {o['type']} (not a SkelstoreError): "
                f"{o['message']}\n{o['traceback']}"
            )
    if res.get("peak_rss_kib", 0) > RSS_LIMIT_KIB:
        problems.append(
            f"{name}: peak memory {res['peak_rss_kib'] / 2**20:.2f} GiB exceeds "
            f"{RSS_LIMIT_KIB / 2**20:.1f} GiB"
            + (
                ""
                if res.get("peak_rss_per_file")
                else " (process peak: per-file reset unavailable)"
            )
        )
    return problems


def test_corpus_is_there() -> None:
    assert len(CORPUS) >= 200, f"{FUZZ_DIR}: {len(CORPUS)} files; run python tests/fuzz_corpus.py"
    assert any(p.name.endswith(".zarr.zip") for p in CORPUS)


@pytest.mark.parametrize("name", [p.name for p in CORPUS])
def test_corpus_file(name: str, corpus_results: dict[str, dict[str, Any]]) -> None:
    res = corpus_results.get(name)
    assert res is not None, f"{name}: no report from the workers"
    problems = _problems(name, res)
    if "crash" not in res:
        steps = {o["step"]: o for o in res["outcomes"]}
        if "-base-" in name:  # the unmutated dumps: everything must work
            bad = {s: o.get("message") for s, o in steps.items() if o["outcome"] != "ok"}
            if bad or set(steps) != set(STEPS):
                problems.append(f"{name}: a base dump must decode in every step: {bad or steps}")
        if any(part in name for part in MUST_REFUSE):
            read = steps.get("read") or steps.get("open")
            if read is None or read["outcome"] != "typed":
                problems.append(
                    f"{name}: points out of the file, reading must raise a SkelstoreError; "
                    f"got {read}"
                )
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


# ------------------------------------------------------------------ hypothesis


class _Server:
    """A worker in ``--serve`` mode: one path in, one JSON report out."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.lock = threading.Lock()

    def _start(self) -> subprocess.Popen[str]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                _worker_cmd("--serve"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        return self.proc

    def decode(self, path: str) -> dict[str, Any]:
        with self.lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(path + "\n")
            proc.stdin.flush()
            result = None
            while result is None:
                line = proc.stdout.readline()
                if not line:  # the worker died on this file
                    rc = proc.wait()
                    err = proc.stderr.read()[-4000:] if proc.stderr else ""
                    self.proc = None
                    return {"file": path, "crash": rc, "stderr": err}
                msg = json.loads(line)
                if "outcomes" in msg:
                    result = msg
            return result

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server()
    yield srv
    srv.close()


BASES = [p for p in CORPUS if "-base-" in p.name]
_BASE_BYTES = {p.name: p.read_bytes() for p in BASES}

_offsets = st.integers(min_value=0, max_value=2**20)
_mutation = st.one_of(
    st.tuples(st.just("flip"), _offsets, st.integers(1, 255)),
    st.tuples(st.just("set"), _offsets, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("insert"), _offsets, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), _offsets, st.integers(1, 256)),
    st.tuples(st.just("truncate"), _offsets, st.just(0)),
)


def mutate(blob: bytes, mutations: list[tuple[str, int, Any]]) -> bytes:
    """Apply ``mutations`` in order; offsets wrap around the current length."""
    b = bytearray(blob)
    for op, offset, arg in mutations:
        if not b:
            break
        at = offset % len(b)
        if op == "flip":
            b[at] ^= arg
        elif op == "set":
            b[at : at + len(arg)] = arg
        elif op == "insert":
            b[at:at] = arg
        elif op == "delete":
            del b[at : at + arg]
        else:
            del b[at:]
    return bytes(b)


@settings(
    max_examples=int(os.environ.get("SKELSTORE_FUZZ_EXAMPLES", "100")),
    deadline=None,
    derandomize=os.environ.get("SKELSTORE_FUZZ_RANDOM", "") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    base=st.sampled_from(sorted(_BASE_BYTES)) if _BASE_BYTES else st.nothing(),
    mutations=st.lists(_mutation, min_size=1, max_size=4),
)
def test_mutated_bytes_decode_or_raise_typed(
    base: str, mutations: list[tuple[str, int, Any]], server: _Server, tmp_path_factory: Any
) -> None:
    suffix = ".zarr.zip" if base.endswith(".zarr.zip") else ".h5"
    path = tmp_path_factory.mktemp("fuzz") / f"mutant{suffix}"
    path.write_bytes(mutate(_BASE_BYTES[base], mutations))
    res = server.decode(str(path))
    problems = _problems(f"{base} mutated by {mutations}", res)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
    os.remove(path)
