"""Decode dump files the way the fuzzing tests demand, in a process of its own.

``python tests/fuzz_worker.py FILE...`` decodes each file and prints one JSON line
per file to stdout; ``python tests/fuzz_worker.py --serve`` reads one path per
line from stdin and answers each with one JSON line (the hypothesis test keeps
one such process for all its examples). Before each file it prints a
``{"start": path}`` line, so that if the process dies (segfault, abort, the
per-file watchdog) the parent knows which file did it.

For every file the steps are: ``open`` (:func:`skelstore.open`), ``read`` (every
frame and pose with the reader the dump's ``fmt_type`` calls for), ``describe``,
``validate`` (``deep=True``) and ``dense`` (:func:`skelstore.dense.read_poses`).
Each step either succeeds or raises a :class:`skelstore.SkelstoreError`; anything
else is reported as ``untyped`` with its traceback. A file taking longer than
``--timeout`` seconds is reported as ``timeout`` (from a Python-level alarm), or,
if stuck in C code, the watchdog (``faulthandler``) kills the process a few
seconds later.
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import signal
import sys
import time
import traceback
from typing import Any

STEPS = ("open", "read", "describe", "validate", "dense")
#: Address-space ceiling of the worker: a runaway allocation fails with
#: MemoryError (reported against the file) instead of taking the machine down.
ADDRESS_SPACE_LIMIT = 8 * 2**30


class FileTimeout(BaseException):
    """Raised by the per-file alarm (a BaseException: nothing catches it by accident)."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise FileTimeout()


def _read_all(root: Any) -> int:
    """Every frame and pose of the dump with the reader its ``fmt_type`` asks for."""
    from skelstore.io import ShotSegmentedReader, UnsegmentedReader

    fmt_type = root.attrs.get("fmt_type")
    poses = 0
    if fmt_type == "unseg":
        for bundle in UnsegmentedReader(root):
            for pose in bundle:
                poses += pose.keypoints.shape[0] > 0
        return poses
    for shot in ShotSegmentedReader(root):
        for bundle in shot:
            for _pid, pose in bundle:
                poses += pose.keypoints.shape[0] > 0
    return poses


def decode(path: str, outcomes: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Run every step on ``path``; one outcome dict per step that ran (appended to
    ``outcomes`` as they finish, so a timeout keeps what ran before)."""
    import skelstore
    from skelstore.dense import read_poses
    from skelstore.summary import describe
    from skelstore.validate import validate

    outcomes = [] if outcomes is None else outcomes

    def run(step: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        try:
            value = fn()
        except skelstore.SkelstoreError as exc:
            outcomes.append(
                {
                    "step": step,
                    "outcome": "typed",
                    "type": type(exc).__name__,
                    "message": str(exc)[:500],
                    "seconds": time.perf_counter() - t0,
                }
            )
            return None
        except FileTimeout:
            outcomes.append(
                {"step": step, "outcome": "timeout", "traceback": traceback.format_exc()[-3000:]}
            )
            raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            outcomes.append(
                {
                    "step": step,
                    "outcome": "untyped",
                    "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                    "message": str(exc)[:500],
                    "traceback": traceback.format_exc()[-4000:],
                    "seconds": time.perf_counter() - t0,
                }
            )
            return None
        outcomes.append({"step": step, "outcome": "ok", "seconds": time.perf_counter() - t0})
        return value if value is not None else True

    root = run("open", lambda: skelstore.open(path))
    if root is None:
        return outcomes
    try:
        run("read", lambda: _read_all(root))
        run("describe", lambda: describe(root))
        run("validate", lambda: validate(root, deep=True))
        run("dense", lambda: read_poses(root))
    finally:
        run("close", root.close)
    return outcomes


def _reset_peak_rss() -> bool:
    """Reset the process's peak RSS (Linux ``clear_refs``); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_kib() -> int:
    """Peak resident set size since the last reset (VmHWM), or since start."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def process(path: str, timeout: float) -> dict[str, Any]:
    """Decode ``path`` under a time limit; the JSON-able report of it (with the peak
    RSS reached while decoding it, in KiB)."""
    per_file = _reset_peak_rss()
    t0 = time.perf_counter()
    outcomes: list[dict[str, Any]] = []
    timed_out = False
    signal.setitimer(signal.ITIMER_REAL, timeout)
    faulthandler.dump_traceback_later(timeout + 5, exit=True)
    try:
        decode(path, outcomes)
    except FileTimeout:
        timed_out = True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
    return {
        "file": path,
        "outcomes": outcomes,
        "timeout": timed_out,
        "seconds": time.perf_counter() - t0,
        "peak_rss_kib": _peak_rss_kib(),
        "peak_rss_per_file": per_file,
    }


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    timeout = 10.0
    if "--timeout" in argv:
        i = argv.index("--timeout")
        timeout = float(argv[i + 1])
        del argv[i : i + 2]
    serve = "--serve" in argv
    files = [a for a in argv if a != "--serve"]
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = (
        ADDRESS_SPACE_LIMIT if hard == resource.RLIM_INFINITY else min(hard, ADDRESS_SPACE_LIMIT)
    )
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.signal(signal.SIGALRM, _on_alarm)
    faulthandler.enable()  # a crash prints the Python stack to stderr (the parent shows it)
    os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
    import skelstore.backends.hdf5
    import skelstore.backends.zarr
    import skelstore.dense  # noqa: F401

    source = (line.rstrip("\n") for line in sys.stdin) if serve else iter(files)
    for path in source:
        if not path:
            continue
        _emit({"start": path})
        _emit(process(path, timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
