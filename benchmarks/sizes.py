"""Bytes on disk and chunk shapes of the same dumps in HDF5, Zarr 3 and Zarr 2.

    python benchmarks/sizes.py [--markdown benchmarks/results/sizes.md]

Writes synthetic BODY_25 dumps (``trackshots`` and ``unseg``, presets ``none`` and
``lossless``, two lengths) and the golden ``unseg_body25.h5``, converts each to
Zarr 3 and Zarr 2 with :func:`skelstore.convert`, and prints the bytes of every
file (a store's files summed), the ratio to HDF5 and the chunk shape of the
first track's ``data`` array on each engine. Deterministic (seeded data).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "tests", "data", "golden", "unseg_body25.h5")


def size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def first_data_chunks(url: str) -> tuple[int, ...] | None:
    import skelstore
    from skelstore.summary import iter_tracks

    with skelstore.open(url) as root:
        tracks = iter_tracks(root)
        return tuple(tracks[0][1]["data"].chunks) if tracks else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--markdown", help="also write the table as markdown to this file")
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    from data import make_dump

    import skelstore

    tmp = tempfile.mkdtemp(prefix="skelstore-sizes-")
    cases: list[tuple[str, str]] = []
    try:
        for kind in ("trackshots", "unseg"):
            for comp in ("none", "lossless"):
                for frames in (1000, 20000):
                    src = os.path.join(tmp, f"{kind}-{comp}-{frames}.h5")
                    make_dump(
                        src, frames, mode="BODY_25", tracked=kind == "trackshots", compression=comp
                    )
                    cases.append((f"{kind}, {comp}, {frames} frames (synthetic)", src))
        golden = os.path.join(tmp, "golden.h5")
        shutil.copy(GOLDEN, golden)
        cases.append(("unseg, none, 300 frames (tests/data/golden/unseg_body25.h5)", golden))
        lines = [
            "| dump | HDF5 bytes | Zarr 3 | Zarr 2 | `data` chunks: HDF5 | Zarr |",
            "| --- | ---: | ---: | ---: | --- | --- |",
        ]
        for name, src in cases:
            h5 = size(src)
            row = [name, f"{h5:,}"]
            for zf in (3, 2):
                dst = src.replace(".h5", f"-z{zf}.zarr")
                skelstore.convert(src, dst, zarr_format=zf, layout="skelshop")
                z = size(dst)
                row.append(f"{z:,} ({z / h5:.2f}x)")
            row += [str(first_data_chunks(src)), str(first_data_chunks(dst))]
            lines.append("| " + " | ".join(row) + " |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = "\n".join(lines) + "\n"
    print(table)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table)


if __name__ == "__main__":
    main()
