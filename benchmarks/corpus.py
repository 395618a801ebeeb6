"""Corpus throughput (files/s, frames/s): serial against a Dask LocalCluster of 2 workers.

    python benchmarks/corpus.py [--files 60] [--frames 500:3000] [--workers 2] [--seed 0]
                                [--markdown benchmarks/results/corpus.md]

The corpus is seeded (``benchmarks/data.py:make_corpus``): small BODY_25 dumps, HDF5
files and Zarr stores, one in nine broken on purpose (they fail fast, as in a real
corpus). Each operation (``validate``, ``info``, ``convert`` to the other engine,
verified) runs once serially in this process (``Runner(workers=0)``) and once on a
``LocalCluster`` of ``--workers`` worker processes (one thread each), started once
beforehand; its start-up time is given separately. Frames/s counts the frames of
the files that did not fail.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from data import make_corpus  # noqa: E402

from skelstore.corpus import Runner, convert_corpus, info_corpus, validate_corpus  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=60)
    ap.add_argument("--frames", default="500:3000", help="frames per dump, A:B (seeded)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", help="also write the table as markdown to this file")
    args = ap.parse_args()
    lo, hi = (int(x) for x in args.frames.split(":"))

    from distributed import Client, LocalCluster

    tmp = tempfile.mkdtemp(prefix="skelstore-corpus-bench-")
    try:
        src = os.path.join(tmp, "src")
        t = time.perf_counter()
        manifest = make_corpus(src, args.files, frames=(lo, hi), seed=args.seed)
        frames_of = {m["name"]: m["frames"] for m in manifest}
        print(f"generated {args.files} dumps in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        t = time.perf_counter()
        cluster = LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )  # fmt: skip
        client = Client(cluster)
        client.run(lambda: __import__("skelstore.corpus"))  # workers import like a real run
        startup = time.perf_counter() - t
        pattern = os.path.join(src, "*")
        ops = {
            "validate": lambda r, tag: validate_corpus(pattern, runner=r),
            "info": lambda r, tag: info_corpus(pattern, runner=r),
            "convert (verified)": lambda r, tag: convert_corpus(
                pattern, os.path.join(tmp, f"out-{tag}"), runner=r
            ),
        }
        rows = []
        for name, op in ops.items():
            timings = {}
            for tag, runner in (("serial", Runner(workers=0)), ("dask", Runner(client=client))):
                report = op(runner, tag)
                ok = [r for r in report.results if not r.failed]
                frames = sum(frames_of[os.path.basename(r.src.rstrip("/"))] for r in ok)
                timings[tag] = (report.seconds, len(report.results), frames)
                print(f"{name} {tag}: {report.footer()}", file=sys.stderr)
            rows.append((name, timings))
        client.close()
        cluster.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lines = [
        f"{args.files} seeded dumps of {lo}-{hi} frames (BODY_25; HDF5 and Zarr; "
        f"{sum(m['kind'] not in ('hdf5', 'zarr') for m in manifest)} broken), one run on "
        f"{platform.machine()} / {os.cpu_count()} cores / Python {platform.python_version()}; "
        f"Dask: LocalCluster of {args.workers} worker processes, started beforehand in "
        f"{startup:.1f} s:",
        "",
        "| operation | serial (s) | Dask (s) | serial files/s | Dask files/s "
        "| serial frames/s | Dask frames/s | Dask speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in rows:
        (ss, n, fr), (ds, _, _) = t["serial"], t["dask"]
        lines.append(
            f"| {name} | {ss:.2f} | {ds:.2f} | {n / ss:.1f} | {n / ds:.1f} | "
            f"{fr / ss:,.0f} | {fr / ds:,.0f} | {ss / ds:.2f}x |"
        )
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
