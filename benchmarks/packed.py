"""The packed layout's numbers (issue 16's done-when list), in one run.

    python benchmarks/packed.py [--tracked-frames 30000] [--remote-frames 90000]
                                [--untracked-frames 30000] [--repeat 5]
                                [--markdown benchmarks/results/packed.md]

Dumps are seeded synthetic ones (``benchmarks/data.py``) shaped like the dumps the
issue measured: tracked BODY_25_ALL, shots of 50-300 frames, ~2 tracks per shot
(a 90k-frame one: ~510 shots, ~1,040 tracks, ~90 MB lossless); untracked BODY_25
with 0-4 detections per frame.

1. Local reads, presets ``none`` and ``lossless``: every pose of every frame
   (``pose.keypoints``) with ``ShotSegmentedReader`` over the packed HDF5 and
   packed Zarr copies of the 30k-frame dump, against a raw bulk h5py read of every
   array of its skelshop-layout file (``ds[()]``). Best of ``--repeat``
   interleaved rounds, wall and CPU time.
2. The packed Zarr copy of the 90k-frame dump: its object count; converting the
   HDF5 file to it (frames/s: median of 3 runs, each in a fresh child process;
   peak RSS).
3. Remote reads from moto's S3 through a counting proxy (no added latency):
   requests and bytes to open (open + reader set-up), to read one shot in the
   middle (after opening) and to read everything, on the packed Zarr copy and on
   the HDF5 original.
4. Writers: ``ShotSegmentedWriter`` (30k tracked frames) and ``UnsegmentedWriter``
   (untracked frames) on HDF5 and Zarr, skelshop's layout against packed, frames/s
   (best of 3 interleaved rounds).
5. An untracked dump written to Zarr (packed) and to HDF5 (skelshop's layout) for
   every preset: bytes on storage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

SHOTS = (50, 300)
PEOPLE = 2.0


def size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def objects(path: str) -> int:
    return sum(len(fs) for _, _, fs in os.walk(path))


def remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def make(url: str, frames: int, compression: str, **kwargs: Any) -> None:
    from data import make_dump

    make_dump(url, frames, mode="BODY_25_ALL", tracked=True, compression=compression,
              people=PEOPLE, shot_frames=SHOTS, **kwargs)  # fmt: skip


# ---------------------------------------------------------------- 1. local reads


def bulk_h5py(path: str) -> None:
    import h5py
    import hdf5plugin  # noqa: F401

    with h5py.File(path, "r") as f:

        def visit(_: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                obj[()]

        f.visititems(visit)


def read_all(url: str) -> int:
    import skelstore
    from skelstore.io import ShotSegmentedReader

    n = 0
    with skelstore.open(url) as root:
        for shot in ShotSegmentedReader(root):
            for bundle in shot:
                for _, pose in bundle:
                    pose.keypoints  # noqa: B018 - touching every pose is the point
                    n += 1
    return n


def bench_reads(tmp: str, frames: int, repeat: int) -> list[dict]:
    from skelstore.conversion import convert

    rows = []
    for preset in ("none", "lossless"):
        h5 = os.path.join(tmp, f"r-{preset}.h5")
        make(h5, frames, preset)
        ph5, pz = os.path.join(tmp, f"r-{preset}.p.h5"), os.path.join(tmp, f"r-{preset}.zarr")
        convert(h5, ph5, layout="packed")
        convert(h5, pz)
        cases = {
            "bulk h5py (skelshop file)": lambda h5=h5: bulk_h5py(h5),
            "packed HDF5": lambda ph5=ph5: read_all(ph5),
            "packed Zarr v3": lambda pz=pz: read_all(pz),
            "skelshop HDF5": lambda h5=h5: read_all(h5),
        }
        best = {k: [float("inf"), float("inf")] for k in cases}
        for fn in cases.values():  # warm-up
            fn()
        for _ in range(repeat):
            for name, fn in cases.items():
                t, c = time.perf_counter(), time.process_time()
                fn()
                w, cpu = time.perf_counter() - t, time.process_time() - c
                best[name] = [min(best[name][0], w), min(best[name][1], cpu)]
        rows.append({"preset": preset, "best": best, "poses": read_all(ph5)})
    return rows


# ---------------------------------------------------------------- 2. conversion

CHILD = r"""
import json, sys, time
import skelstore
from skelstore.conversion import convert
t = time.perf_counter()
convert({src!r}, {dst!r})
dt = time.perf_counter() - t
# VmHWM, not ru_maxrss: the latter carries the forking parent's size across exec
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({{"seconds": dt, "maxrss_kb": hwm}}))
"""


def bench_convert(src: str, dst: str, runs: int = 3) -> dict:
    """``runs`` conversions, each in a fresh child process: the median time (the
    machine is shared: single runs vary by 2x), every run's time, the peak RSS."""
    results = []
    for _ in range(runs):
        remove(dst)
        code = CHILD.format(src=src, dst=dst)
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    times = sorted(r["seconds"] for r in results)
    return {
        "seconds": times[len(times) // 2],
        "runs": [r["seconds"] for r in results],
        "maxrss_kb": max(r["maxrss_kb"] for r in results),
    }


# ---------------------------------------------------------------- 3. remote


def bench_remote(h5: str, zarr_path: str) -> list[tuple]:
    import s3fs
    from proxy import CountingProxy
    from servers import S3Server

    import skelstore
    from skelstore.io import ShotSegmentedReader

    server = S3Server().start()
    proxy = CountingProxy(server.endpoint_url)
    fs = s3fs.S3FileSystem(**server.storage_options())
    fs.mkdir("bench")
    fs.put(h5, "bench/v.h5")
    fs.put(zarr_path, "bench/v.zarr", recursive=True)
    opts = {"endpoint_url": proxy.url, "key": "testing", "secret": "testing",
            "skip_instance_cache": True, "use_listings_cache": False}  # fmt: skip
    rows = []
    try:
        for fmt, url, stored in (
            ("packed Zarr v3", "s3://bench/v.zarr", size(zarr_path)),
            ("HDF5 (skelshop's layout)", "s3://bench/v.h5", size(h5)),
        ):
            proxy.reset()
            t = time.perf_counter()
            root = skelstore.open(url, storage_options=opts)
            reader = ShotSegmentedReader(root)
            len(reader)
            snap = proxy.snapshot()
            rows.append(
                (fmt, "open", snap["requests"], snap["bytes"], stored, time.perf_counter() - t)
            )
            proxy.reset()
            t = time.perf_counter()
            for bundle in reader[len(reader) // 2]:
                for _ in bundle:
                    pass
            snap = proxy.snapshot()
            rows.append(
                (
                    fmt,
                    "one shot (after open)",
                    snap["requests"],
                    snap["bytes"],
                    stored,
                    time.perf_counter() - t,
                )
            )
            root.close()
            proxy.reset()
            t = time.perf_counter()
            with skelstore.open(url, storage_options=opts) as root:
                for shot in ShotSegmentedReader(root):
                    for bundle in shot:
                        for _ in bundle:
                            pass
            snap = proxy.snapshot()
            rows.append(
                (
                    fmt,
                    "everything (with open)",
                    snap["requests"],
                    snap["bytes"],
                    stored,
                    time.perf_counter() - t,
                )
            )
    finally:
        proxy.stop()
        server.stop()
    return rows


# ---------------------------------------------------------------- 4. writers


def bench_writers(
    tmp: str, tracked_frames_n: int, untracked_frames_n: int, rounds: int = 3
) -> list[tuple]:
    """Best of ``rounds`` interleaved rounds (each round writes every variant once)."""
    from data import tracked_frames, untracked_frames

    import skelstore
    from skelstore.dump import add_fmt_metadata, add_metadata, write_shots
    from skelstore.io import ShotSegmentedWriter, UnsegmentedWriter
    from skelstore.pose import LIMBS

    rows = []
    for label, mode, n, cls, fmt, frames in (
        ("ShotSegmentedWriter", "BODY_25_ALL", tracked_frames_n, ShotSegmentedWriter,
         "trackshots", list(tracked_frames(tracked_frames_n, 138, 0, people=PEOPLE,
                                           shot_frames=SHOTS))),
        ("UnsegmentedWriter", "BODY_25", untracked_frames_n, UnsegmentedWriter, "unseg",
         list(untracked_frames(untracked_frames_n, 25))),
    ):  # fmt: skip
        best: dict[tuple[str, str], float] = {}
        variants = [(s, lay) for s in (".h5", ".zarr") for lay in ("skelshop", "packed")]
        for _ in range(rounds):
            for suffix, layout in variants:
                url = os.path.join(tmp, f"w{suffix}")
                remove(url)
                t = time.perf_counter()
                with skelstore.open(url, "w", layout=layout) as root:
                    add_fmt_metadata(root, fmt)
                    add_metadata(root, "v.mp4", n, mode, LIMBS[mode])
                    write_shots(root, LIMBS[mode], frames, writer_cls=cls,
                                compression="lossless")  # fmt: skip
                dt = time.perf_counter() - t
                best[(suffix, layout)] = min(best.get((suffix, layout), dt), dt)
        rows.append((label, {k: n / v for k, v in best.items()}))
    return rows


# ---------------------------------------------------------------- 5. unsegmented sizes


def bench_unseg_sizes(tmp: str, frames: int) -> list[tuple]:
    from data import make_dump

    rows = []
    for preset in ("none", "lossless", "lossless9", "lossy", "lossy9"):
        h5, z = os.path.join(tmp, f"u-{preset}.h5"), os.path.join(tmp, f"u-{preset}.zarr")
        for url in (h5, z):
            remove(url)
            make_dump(url, frames, mode="BODY_25", tracked=False, compression=preset)
        rows.append((preset, size(h5), size(z)))
    return rows


# ---------------------------------------------------------------- report


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tracked-frames", type=int, default=30_000)
    ap.add_argument("--remote-frames", type=int, default=90_000)
    ap.add_argument("--untracked-frames", type=int, default=30_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--markdown")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="skelstore-packed-")
    try:
        print("reads", file=sys.stderr)
        reads = bench_reads(tmp, args.tracked_frames, args.repeat)
        print("convert", file=sys.stderr)
        h5 = os.path.join(tmp, "big.h5")
        make(h5, args.remote_frames, "lossless")
        zarr_path = os.path.join(tmp, "big.zarr")
        conv = bench_convert(h5, zarr_path)
        print("remote", file=sys.stderr)
        remote = bench_remote(h5, zarr_path)
        print("writers", file=sys.stderr)
        writers = bench_writers(tmp, args.tracked_frames, args.untracked_frames)
        print("sizes", file=sys.stderr)
        sizes = bench_unseg_sizes(tmp, args.untracked_frames)
        text = report(args, reads, conv, h5, zarr_path, remote, writers, sizes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def report(args: argparse.Namespace, reads: list, conv: dict, h5: str, zarr_path: str,
           remote: list, writers: list, sizes: list) -> str:  # fmt: skip
    import skelstore
    from skelstore.summary import describe

    with skelstore.open(h5) as root:
        info = describe(root)
    out = [
        "# The packed layout",
        "",
        f"`python benchmarks/packed.py --markdown benchmarks/results/packed.md` on "
        f"{platform.machine()} / {os.cpu_count()} CPUs / Python {platform.python_version()} "
        f"(a machine shared with other work: CPU times are the steadier figures).",
        "",
        f"Dumps: tracked BODY_25_ALL, shots of {SHOTS[0]}-{SHOTS[1]} frames, ~{PEOPLE:.0f} "
        f"tracks a shot; the {args.remote_frames}-frame one has {info.shots} shots, "
        f"{info.pose_tracks} tracks, {info.bytes_stored / 1e6:.1f} MB (lossless).",
        "",
        f"## Reading every pose ({args.tracked_frames} frames)",
        "",
        f"Best of {args.repeat} interleaved rounds; seconds (wall / CPU).",
        "",
        "| preset | poses | bulk h5py (skelshop file) | packed HDF5 | packed Zarr v3 | "
        "skelshop HDF5 | packed HDF5 / bulk (≤ 1) | packed Zarr / packed HDF5 (≤ 1.3) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reads:
        b = r["best"]
        bulk, ph, pz, sh = (b[k] for k in ("bulk h5py (skelshop file)", "packed HDF5",
                                           "packed Zarr v3", "skelshop HDF5"))  # fmt: skip
        ratio = ph[1] / bulk[1]
        zr = pz[1] / ph[1]
        out.append(
            f"| {r['preset']} | {r['poses']:,} | {bulk[0]:.3f} / {bulk[1]:.3f} | "
            f"{ph[0]:.3f} / {ph[1]:.3f} | {pz[0]:.3f} / {pz[1]:.3f} | {sh[0]:.3f} / {sh[1]:.3f} | "
            f"{ratio:.2f} CPU, {ph[0] / bulk[0]:.2f} wall ({verdict(ratio <= 1)}) | "
            f"{zr:.2f} CPU, {pz[0] / ph[0]:.2f} wall ({verdict(zr <= 1.3)}) |"
        )
    n_obj = objects(zarr_path)
    fps = args.remote_frames / conv["seconds"]
    rss = conv["maxrss_kb"] / 1024
    out += [
        "",
        f"## The packed Zarr copy of the {args.remote_frames}-frame dump",
        "",
        f"Conversion: median of {len(conv['runs'])} runs, each in a fresh process "
        f"(imports of the engines included), seconds "
        f"{', '.join(f'{x:.2f}' for x in conv['runs'])}; RSS: the largest peak.",
        "",
        "| objects (≤ 50) | stored MB | convert from HDF5: s | frames/s (≥ 50,000) | "
        "peak RSS MB (< 200) |",
        "|---:|---:|---:|---:|---:|",
        f"| {n_obj} ({verdict(n_obj <= 50)}) | {size(zarr_path) / 1e6:.1f} | "
        f"{conv['seconds']:.2f} | {fps:,.0f} ({verdict(fps >= 50_000)}) | "
        f"{rss:.0f} ({verdict(rss < 200)}) |",
        "",
        "## Remote reads (moto S3 through a counting proxy)",
        "",
        "Budgets for the packed Zarr copy: open ≤ 3 requests; one shot ≤ 6 requests and "
        "2 MB; everything ≤ 30 requests and 1.2x the stored bytes.",
        "",
        "| copy | operation | requests | MB moved | x stored | seconds |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for fmt, op, req, nbytes, stored, sec in remote:
        out.append(f"| {fmt} | {op} | {req} | {nbytes / 1e6:.2f} | {nbytes / stored:.2f} | "
                   f"{sec:.2f} |")  # fmt: skip
    out += [
        "",
        "## Writers (frames/s, lossless, best of 3 interleaved rounds)",
        "",
        "| writer | HDF5 skelshop | HDF5 packed | Zarr v3 skelshop | Zarr v3 packed | "
        "packed / skelshop (HDF5, Zarr) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, r in writers:
        hs, hp, zs, zp = (r[(".h5", "skelshop")], r[(".h5", "packed")],
                          r[(".zarr", "skelshop")], r[(".zarr", "packed")])  # fmt: skip
        out.append(f"| {label} | {hs:,.0f} | {hp:,.0f} | {zs:,.0f} | {zp:,.0f} | "
                   f"{hp / hs:.2f}, {zp / zs:.2f} |")  # fmt: skip
    out += [
        "",
        f"## An untracked dump ({args.untracked_frames} frames BODY_25) in Zarr (packed) "
        "and in HDF5 (skelshop's layout)",
        "",
        "| preset | HDF5 MB | Zarr MB | Zarr / HDF5 (≤ 1.2) |",
        "|---|---:|---:|---:|",
    ]
    for preset, h, z in sizes:
        out.append(f"| {preset} | {h / 1e6:.2f} | {z / 1e6:.2f} | {z / h:.2f} "
                   f"({verdict(z / h <= 1.2)}) |")  # fmt: skip
    return "\n".join(out)


if __name__ == "__main__":
    main()
