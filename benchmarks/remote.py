"""Requests, bytes and seconds to read a dump from S3, behind a latency-adding proxy.

    python benchmarks/remote.py [--frames 90000] [--latency 0.02] [--markdown FILE]
                                [--skip-baseline-all]

Starts moto's S3 server on 127.0.0.1, puts a counting proxy in front of it
(``benchmarks/proxy.py``: ``--latency`` seconds per request), uploads a seeded
synthetic tracked BODY_25_ALL dump as HDF5 and as Zarr v3 (converted with
skelstore), and measures three operations on each through the proxy:

* open: ``skelstore.open`` and the reader's set-up (root attrs, shot names);
* one shot: read every frame of the shot in the middle (``reader[idx]``);
* everything: iterate every frame of every shot.

The baseline is plain h5py over s3fs with fsspec's default cache, reading the
same datasets (``h5py.File(fs.open(path))``). The Zarr store is also read with
zero latency, for the latency ratio. Every operation starts from a fresh
filesystem instance (no warm caches).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def fresh_fs(endpoint: str) -> Any:
    import s3fs

    return s3fs.S3FileSystem(
        endpoint_url=endpoint,
        key="testing",
        secret="testing",
        skip_instance_cache=True,
        use_listings_cache=False,
    )


def storage_options(endpoint: str) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "skip_instance_cache": True,
        "use_listings_cache": False,
    }


def measure(proxy: Any, fn: Any) -> dict[str, Any]:
    proxy.reset()
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    return {**proxy.snapshot(), "seconds": dt}


def skelstore_ops(url: str, endpoint: str) -> dict[str, Any]:
    import skelstore
    from skelstore.io import ShotSegmentedReader

    def op_open() -> None:
        with skelstore.open(url, storage_options=storage_options(endpoint)) as root:
            len(ShotSegmentedReader(root))

    def op_shot() -> None:
        with skelstore.open(url, storage_options=storage_options(endpoint)) as root:
            reader = ShotSegmentedReader(root)
            for bundle in reader[len(reader) // 2]:
                for _ in bundle:
                    pass

    def op_all() -> None:
        with skelstore.open(url, storage_options=storage_options(endpoint)) as root:
            for shot in ShotSegmentedReader(root):
                for bundle in shot:
                    for _ in bundle:
                        pass

    return {"open": op_open, "one shot": op_shot, "everything": op_all}


def baseline_ops(path: str, endpoint: str) -> dict[str, Any]:
    import h5py
    import hdf5plugin  # noqa: F401

    def op_open() -> None:
        with h5py.File(fresh_fs(endpoint).open(path, "rb"), "r") as f:
            len(f["timeline"])

    def op_shot() -> None:
        with h5py.File(fresh_fs(endpoint).open(path, "rb"), "r") as f:
            names = sorted(f["timeline"], key=lambda n: int(n[4:]))
            shot = f["timeline"][names[len(names) // 2]]
            for pose in shot.values():
                for arr in ("data", "indices", "indptr"):
                    pose[arr][()]

    def op_all() -> None:
        with h5py.File(fresh_fs(endpoint).open(path, "rb"), "r") as f:
            for shot in f["timeline"].values():
                for pose in shot.values():
                    for arr in ("data", "indices", "indptr"):
                        pose[arr][()]

    return {"open": op_open, "one shot": op_shot, "everything": op_all}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, default=90_000)
    ap.add_argument(
        "--people",
        type=float,
        default=2.6,
        help="mean tracks per shot (2.6 gives a ~95 MB dump at 90k frames)",
    )
    ap.add_argument("--latency", type=float, default=0.02)
    ap.add_argument("--markdown")
    ap.add_argument(
        "--skip-baseline-all",
        action="store_true",
        help="skip the (very slow) baseline whole-file read",
    )
    args = ap.parse_args()

    import logging

    from data import make_dump
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    from proxy import CountingProxy

    from skelstore.conversion import convert

    tmp = tempfile.mkdtemp(prefix="skelstore-remote-")
    h5 = os.path.join(tmp, "video.h5")
    make_dump(
        h5,
        args.frames,
        mode="BODY_25_ALL",
        tracked=True,
        compression="lossless",
        people=args.people,
    )
    zarr_dir = os.path.join(tmp, "video.zarr")
    convert(h5, zarr_dir)
    size_h5 = os.path.getsize(h5)
    size_zarr = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(zarr_dir) for f in fs
    )

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    direct = f"http://{host}:{port}"
    fs = fresh_fs(direct)
    fs.mkdir("bench")
    fs.put(h5, "bench/video.h5")
    fs.put(zarr_dir, "bench/video.zarr", recursive=True)
    slow = CountingProxy(direct, latency=args.latency)
    fast = CountingProxy(direct, latency=0.0)

    rows = []
    cases = [
        ("h5py + s3fs defaults (baseline)", "HDF5", baseline_ops("bench/video.h5", slow.url), slow),
        ("skelstore", "HDF5", skelstore_ops("s3://bench/video.h5", slow.url), slow),
        ("skelstore", "Zarr v3", skelstore_ops("s3://bench/video.zarr", slow.url), slow),
        (
            "skelstore, no latency",
            "Zarr v3",
            skelstore_ops("s3://bench/video.zarr", fast.url),
            fast,
        ),
        ("skelstore, no latency", "HDF5", skelstore_ops("s3://bench/video.h5", fast.url), fast),
    ]
    for who, fmt, ops, proxy in cases:
        for op, fn in ops.items():
            if who.startswith("h5py") and op == "everything" and args.skip_baseline_all:
                continue
            r = measure(proxy, fn)
            size = size_h5 if fmt == "HDF5" else size_zarr
            rows.append((who, fmt, op, r["requests"], r["bytes"], r["bytes"] / size, r["seconds"]))
            print(
                f"{who:34} {fmt:8} {op:10} {r['requests']:6} req {r['bytes'] / 1e6:9.1f} MB "
                f"({r['bytes'] / size:6.2f}x) {r['seconds']:7.2f} s {r['by_method']}",
                file=sys.stderr,
            )
    slow.stop()
    fast.stop()
    server.stop()

    lines = [
        f"S3 (moto on 127.0.0.1) behind a proxy adding {args.latency * 1000:.0f} ms per request; "
        f"{args.frames}-frame BODY_25_ALL tracked dump, lossless: HDF5 {size_h5 / 1e6:.1f} MB, "
        f"Zarr v3 {size_zarr / 1e6:.1f} MB; one run on {platform.machine()} / "
        f"{os.cpu_count()} cores / Python {platform.python_version()}.",
        "",
        "| reader | format | operation | requests | MB moved | x file | seconds |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for who, fmt, op, req, nbytes, ratio, sec in rows:
        lines.append(
            f"| {who} | {fmt} | {op} | {req} | {nbytes / 1e6:.1f} | {ratio:.2f} | {sec:.2f} |"
        )

    def secs(reader: str, fmt: str) -> dict[str, float]:
        return {op: sec for who, f, op, *_, sec in rows if who == reader and f == fmt}

    zl, zs = secs("skelstore, no latency", "Zarr v3"), secs("skelstore", "Zarr v3")
    if "everything" in zl and "everything" in zs:
        lines += [
            "",
            f"Zarr whole read with {args.latency * 1000:.0f} ms latency / without: "
            f"{zs['everything'] / zl['everything']:.2f}x",
        ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
