"""Conversion throughput (frames/s) and peak memory (RSS) for a 90k-frame dump.

    python benchmarks/convert.py [--frames 90000] [--markdown benchmarks/results/convert.md]

Each conversion runs in a fresh subprocess so its peak RSS is its own
(``ru_maxrss`` of the child, which includes the interpreter and imports: the
``baseline`` row is a child that only imports skelstore).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {here!r})
import skelstore
from skelstore.conversion import convert
t = time.perf_counter()
if {src!r}:
    convert({src!r}, {dst!r}, zarr_format={zf!r}, compression={comp!r})
dt = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": dt, "maxrss_kb": rss}}))
"""


def child(src: str, dst: str, zf: int | None = None, comp: str | None = None) -> dict:
    code = CHILD.format(here=HERE, src=src, dst=dst, zf=zf, comp=comp)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=90_000)
    ap.add_argument("--markdown", help="also write the table as markdown to this file")
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    from data import make_dump

    tmp = tempfile.mkdtemp(prefix="skelstore-bench-")
    src = os.path.join(tmp, "src.h5")
    t = time.perf_counter()
    make_dump(src, args.frames, mode="BODY_25_ALL", tracked=True, compression="lossless")
    took = time.perf_counter() - t
    print(
        f"generated {args.frames} frames ({size(src) / 1e6:.1f} MB) in {took:.1f} s",
        file=sys.stderr,
    )
    runs = [
        ("baseline (import only)", "", "", None, None),
        ("HDF5 -> Zarr v3", src, os.path.join(tmp, "a.zarr"), 3, None),
        ("HDF5 -> Zarr v2", src, os.path.join(tmp, "b.zarr"), 2, None),
        ("Zarr v3 -> HDF5", os.path.join(tmp, "a.zarr"), os.path.join(tmp, "c.h5"), None, None),
        ("Zarr v2 -> Zarr v3", os.path.join(tmp, "b.zarr"), os.path.join(tmp, "d.zarr"), 3, None),
        ("HDF5 -> HDF5 lossy", src, os.path.join(tmp, "e.h5"), None, "lossy"),
        ("HDF5 -> Zarr v3 .zip", src, os.path.join(tmp, "f.zarr.zip"), None, None),
    ]
    rows = []
    for name, s, d, zf, comp in runs:
        r = child(s, d, zf, comp)
        fps = args.frames / r["seconds"] if s else None
        rows.append(
            (
                name,
                r["seconds"] if s else None,
                fps,
                r["maxrss_kb"] / 1024,
                size(d) / 1e6 if d else None,
            )
        )
    lines = [
        f"Conversion of a {args.frames}-frame BODY_25_ALL tracked dump "
        f"({size(src) / 1e6:.1f} MB HDF5, lossless), one run on "
        f"{platform.machine()} / {os.cpu_count()} cores / Python {platform.python_version()}:",
        "",
        "| conversion | seconds | frames/s | peak RSS (MB) | output (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, sec, fps, rss, out in rows:
        lines.append(
            f"| {name} | {'' if sec is None else f'{sec:.2f}'} | "
            f"{'' if fps is None else f'{fps:,.0f}'} | {rss:.0f} | "
            f"{'' if out is None else f'{out:.1f}'} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
