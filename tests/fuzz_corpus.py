"""Deterministic generator of the fuzzing corpus in ``tests/data/fuzz/``.

Run ``python tests/fuzz_corpus.py`` (from anywhere) to rebuild the corpus: it
deletes ``tests/data/fuzz/*.h5`` and ``*.zarr.zip`` and writes them again, byte
for byte the same on every run (fixed seeds, fixed zip timestamps). The test
suite (``tests/test_fuzz.py``) reads the committed files; it never regenerates.

Small base dumps are written with skelstore's own writers (BODY_25, 60 frames):

* ``trackshots``: three shots of 20 frames (pose0 in shot0; pose1, with an
  occlusion, in shot1; shot2 empty), written twice: with skelstore's file
  settings (``ts0``: ``libver`` earliest, skelshop's real on-disk structures: v1
  B-trees, symbol tables, variable-length string attributes in a global heap) and
  with ``libver="latest"`` and fixed-length string attributes (``ts``: a third of
  the size; the base of most structural mutations);
* ``trackshots`` with the ``lossless`` preset (Blosc through hdf5plugin);
* ``unseg`` with two detection slots (``lossless``: growable chunks compress);
* the same trackshots timeline as Zarr v3 and v2 ``.zarr.zip`` stores.

Each is mutated: truncated, bytes flipped in the superblock, metadata and chunk
regions, attributes and arrays deleted, renamed, retyped or made inconsistent,
arrays replaced by groups and back, links and external storage pointing out of
the file, huge declared shapes that were never written, and Zarr metadata
documents broken or made hostile. Every corpus file either decodes or must make
skelstore raise a ``SkelstoreError``. Names are ``NNNN-kind.h5`` /
``NNNN-kind.zarr.zip``; ``0001``..``0006`` are the unmutated bases (controls).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS_DIR = HERE / "data" / "fuzz"
SEED = 20240611
LIMBS = 25
NUM_FRAMES = 60
#: Per shot: (frames, [(pose_id, first, end, hidden frames)]), frames counted from
#: the shot's start.
PLAN: list[tuple[int, list[tuple[int, int, int, range]]]] = [
    (20, [(0, 0, 20, range(0))]),
    (20, [(1, 0, 15, range(6, 9))]),
    (20, []),
]
HUGE = 2**40
ZIP_DATE = (2024, 1, 1, 0, 0, 0)


# ------------------------------------------------------------------ bases


def _pose(rng: np.random.Generator, kps: int = 4) -> np.ndarray:
    p = np.zeros((LIMBS, 3), np.float32)
    idx = rng.choice(LIMBS, kps, replace=False)
    p[idx, 0] = rng.uniform(0, 640, kps).round(2)
    p[idx, 1] = rng.uniform(0, 480, kps).round(2)
    p[idx, 2] = rng.uniform(0.1, 1, kps).round(3)
    return p


def _trackshots_frames(rng: np.random.Generator):
    from skelstore.dump import SHOT_CHANGE

    for si, (n, tracks) in enumerate(PLAN):
        if si:
            yield SHOT_CHANGE
        for f in range(n):
            yield [
                (pid, _pose(rng)) for pid, a, b, hidden in tracks if a <= f < b and f not in hidden
            ]


def _unseg_frames(rng: np.random.Generator):
    for f in range(NUM_FRAMES):
        yield [(slot, _pose(rng)) for slot in range(2) if (f + slot) % 3]


def _write(root: Any, fmt_type: str, compression: str) -> None:
    from skelstore.dump import add_fmt_metadata, add_metadata, write_shots
    from skelstore.io import ShotSegmentedWriter, UnsegmentedWriter

    rng = np.random.default_rng(SEED)
    add_metadata(root, "video.mp4", NUM_FRAMES, "BODY_25", LIMBS)
    add_fmt_metadata(root, fmt_type)
    if fmt_type == "unseg":
        write_shots(root, LIMBS, _unseg_frames(rng), UnsegmentedWriter, compression=compression)
    else:
        write_shots(
            root, LIMBS, _trackshots_frames(rng), ShotSegmentedWriter, compression=compression
        )


def build_bases(tmp: Path) -> dict[str, Path]:
    """Write the base dumps into ``tmp``; returns ``{base name: path}``."""
    import skelstore

    os.environ.pop("LEGACY_SKELS", None)  # recorded in the metadata: keep it fixed
    out: dict[str, Path] = {}

    def h5(name: str, fmt_type: str, compression: str, latest: bool) -> None:
        path = tmp / f"{name}.h5"
        if latest:
            # written by skelstore, then copied with its string attributes stored as
            # fixed-length strings: no 4 KiB global heap, a corpus half the size
            full = tmp / f"{name}.full.h5"
            with h5py.File(full, "w", libver="latest", track_order=True) as f:
                _write(f, fmt_type, compression)
            with h5py.File(full, "r") as src, h5py.File(path, "w", libver="latest") as dst:
                for key, value in src.attrs.items():
                    dst.attrs[key] = np.bytes_(value.encode()) if isinstance(value, str) else value
                src.copy("timeline", dst)
        else:
            with skelstore.open(path, "w") as root:
                _write(root, fmt_type, compression)
        out[name] = path

    h5("ts", "trackshots", "none", latest=True)
    h5("ts0", "trackshots", "none", latest=False)
    h5("tsz", "trackshots", "lossless", latest=True)
    h5("unseg", "unseg", "lossless", latest=True)
    for fmt in (3, 2):
        path = tmp / f"z{fmt}.zarr.zip"
        with skelstore.open(path, "w", zarr_format=fmt) as root:
            _write(root, "trackshots", "lossless")
        members = _read_zip(path.read_bytes())
        for key in members:  # compact JSON documents (smaller corpus); same content
            if key.rsplit("/", 1)[-1] in (
                "zarr.json",
                ".zarray",
                ".zgroup",
                ".zattrs",
                ".zmetadata",
            ):
                _jdump(members, key, _jload(members, key))
        path.write_bytes(_make_zip(members))  # fixed timestamps and order
        out[f"z{fmt}"] = path
    return out


# ------------------------------------------------------------------ zip helpers


def _read_zip(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            zf.writestr(info, members[name])
    return buf.getvalue()


# ------------------------------------------------------------------ byte regions


def data_regions(path: Path) -> list[tuple[int, int]]:
    """File byte ranges of every chunk / contiguous extent (the raw data)."""
    regions: list[tuple[int, int]] = []

    def visit(_name: str, obj: Any) -> None:
        if not isinstance(obj, h5py.Dataset) or obj.size == 0:
            return
        if obj.chunks is None:
            off = obj.id.get_offset()
            if off is not None:
                regions.append((off, off + obj.id.get_storage_size()))
            return
        for i in range(obj.id.get_num_chunks()):
            info = obj.id.get_chunk_info(i)
            if info.byte_offset is not None:
                regions.append((info.byte_offset, info.byte_offset + info.size))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return sorted(regions)


def _superblock_size(blob: bytes) -> int:
    return 96 if blob[8] in (0, 1) else 48


def _metadata_offsets(blob: bytes, data: list[tuple[int, int]]) -> list[int]:
    sb = _superblock_size(blob)
    taken = np.zeros(len(blob), bool)
    taken[:sb] = True
    for a, b in data:
        taken[a:b] = True
    return [int(i) for i in np.flatnonzero(~taken)]


# ------------------------------------------------------------------ the catalogue


Mutation = tuple[str, str, Callable[..., Any], str]  # (slug, base, fn, kind)


class Catalogue:
    """Mutations in order; ``kind`` is ``bytes`` (fn(blob) -> blob), ``h5``
    (fn(h5py.File) in place), or ``zip`` (fn(members dict) in place)."""

    def __init__(self) -> None:
        self.items: list[Mutation] = []

    def raw(self, slug: str, base: str, fn: Callable[[bytes], bytes]) -> None:
        self.items.append((slug, base, fn, "bytes"))

    def h5(self, slug: str, fn: Callable[[h5py.File], None], base: str = "ts") -> None:
        self.items.append((slug, base, fn, "h5"))

    def zip(self, slug: str, base: str, fn: Callable[[dict[str, bytes]], None]) -> None:
        self.items.append((slug, base, fn, "zip"))


def _flip(offset: int, xor: int = 0xFF) -> Callable[[bytes], bytes]:
    def fn(blob: bytes) -> bytes:
        b = bytearray(blob)
        b[offset % len(b)] ^= xor
        return bytes(b)

    return fn


def _fill(offset: int, length: int, value: int) -> Callable[[bytes], bytes]:
    def fn(blob: bytes) -> bytes:
        b = bytearray(blob)
        o = offset % len(b)
        b[o : o + length] = bytes([value]) * len(b[o : o + length])
        return bytes(b)

    return fn


def _truncate(size: int) -> Callable[[bytes], bytes]:
    return lambda blob: blob[: size if size >= 0 else len(blob) + size]


def _replace(grp: h5py.Group, name: str, data: Any = None, **kwargs: Any) -> None:
    """Replace ``grp[name]`` by a new dataset."""
    if name in grp:
        del grp[name]
    grp.create_dataset(name, data=data, **kwargs)


def _swap_dtype(path: str, dtype: Any) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        grp, name = f[path].parent, path.rsplit("/", 1)[1]
        _replace(grp, name, f[path][()].astype(dtype))

    return fn


def _set_attr(path: str, key: str, value: Any) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        f[path].attrs[key] = value

    return fn


def _del_attr(path: str, key: str) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        del f[path].attrs[key]

    return fn


def _set_array(path: str, values: Any, dtype: Any = None) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        grp, name = f[path].parent, path.rsplit("/", 1)[1]
        old = f[path]
        arr = np.asarray(values(old[()]) if callable(values) else values, dtype=dtype or old.dtype)
        _replace(grp, name, arr)

    return fn


P0 = "/timeline/shot0/pose0"
P1 = "/timeline/shot1/pose1"
S0, S1, S2 = "/timeline/shot0", "/timeline/shot1", "/timeline/shot2"
U0 = "/timeline/pose0"


def catalogue(bases: dict[str, Path]) -> Catalogue:
    rng = np.random.default_rng(SEED + 1)
    cat = Catalogue()
    blobs = {k: p.read_bytes() for k, p in bases.items() if k in ("ts", "ts0", "tsz", "unseg")}

    # controls: the unmutated bases
    for name in ("ts", "ts0", "tsz", "unseg"):
        cat.raw(f"base-{name}", name, lambda b: b)
    cat.zip("base-zarr3", "z3", lambda m: None)
    cat.zip("base-zarr2", "z2", lambda m: None)

    # ---------------------------------------------------------- truncation
    n0 = len(blobs["ts0"])
    for off in (0, 1, 8, 9, 40, 96, 512, 1400, 2048, 4096, 8192, 12000, 16384):
        if off < n0:
            cat.raw(f"truncate-ts0-{off}", "ts0", _truncate(off))
    for off in (-700, -9, -1):
        cat.raw(f"truncate-ts0-end{off}", "ts0", _truncate(off))
    n = len(blobs["ts"])
    for frac in (0.15, 0.45, 0.75):
        cat.raw(f"truncate-ts-{int(n * frac)}", "ts", _truncate(int(n * frac)))
    cat.raw("truncate-ts-end-1", "ts", _truncate(-1))
    for frac in (0.5, 0.95):
        nu = len(blobs["unseg"])
        cat.raw(f"truncate-unseg-{int(nu * frac)}", "unseg", _truncate(int(nu * frac)))
    cat.raw("append-garbage", "ts", lambda b: b + bytes(rng.integers(0, 256, 4096, np.uint8)))
    cat.raw("prepend-garbage", "ts", lambda b: bytes(rng.integers(0, 256, 512, np.uint8)) + b)

    # ---------------------------------------------------------- byte flips
    for base, n_sb, n_meta, n_data in (
        ("ts0", 6, 12, 3),
        ("ts", 3, 10, 3),
        ("tsz", 1, 3, 5),
        ("unseg", 1, 5, 2),
    ):
        blob = blobs[base]
        data = data_regions(bases[base])
        sb = _superblock_size(blob)
        for off in sorted(rng.choice(sb, n_sb, replace=False)):
            cat.raw(f"flip-{base}-superblock-{off}", base, _flip(int(off)))
        meta = _metadata_offsets(blob, data)
        for off in sorted(rng.choice(meta, n_meta, replace=False)):
            xor = int(rng.integers(1, 256))
            cat.raw(f"flip-{base}-meta-{off}-x{xor:02x}", base, _flip(int(off), xor))
        data_offs = [o for a, b in data for o in range(a, b)]
        for off in sorted(rng.choice(data_offs, n_data, replace=False)):
            xor = int(rng.integers(1, 256))
            cat.raw(f"flip-{base}-data-{off}-x{xor:02x}", base, _flip(int(off), xor))
    meta0 = _metadata_offsets(blobs["ts0"], data_regions(bases["ts0"]))
    for off in sorted(rng.choice(meta0, 4, replace=False)):
        cat.raw(f"ff8-ts0-meta-{off}", "ts0", _fill(int(off), 8, 0xFF))
    for off in sorted(rng.choice(meta0, 2, replace=False)):
        cat.raw(f"zero64-ts0-meta-{off}", "ts0", _fill(int(off), 64, 0x00))
    for off in sorted(rng.choice(meta0, 2, replace=False)):
        cat.raw(
            f"rand32-ts0-meta-{off}",
            "ts0",
            lambda b, o=int(off): (
                b[:o] + bytes(np.random.default_rng(o).integers(0, 256, 32, np.uint8)) + b[o + 32 :]
            ),
        )
    for a, b in data_regions(bases["tsz"])[:2]:
        cat.raw(f"zero-tsz-chunk-{a}", "tsz", _fill(a, b - a, 0))
        cat.raw(f"ff-tsz-chunk-header-{a}", "tsz", _fill(a + 4, 12, 0xFF))

    # ---------------------------------------------------------- root attributes
    for key in ("fmt_type", "mode", "limbs", "num_frames", "fmt_ver"):
        cat.h5(f"root-del-{key}", _del_attr("/", key))
    cat.h5("root-del-all-attrs", lambda f: [f.attrs.__delitem__(k) for k in list(f.attrs)])
    cat.h5(
        "unseg-del-limbs-and-mode",
        lambda f: (f.attrs.__delitem__("limbs"), f.attrs.__delitem__("mode")),
        "unseg",
    )
    for slug, key, value in (
        ("fmt-type-unknown", "fmt_type", "keypoints"),
        ("fmt-type-unseg", "fmt_type", "unseg"),
        ("fmt-type-int", "fmt_type", 7),
        ("fmt-type-list", "fmt_type", ["trackshots", "unseg"]),
        ("fmt-type-bytes-bad-utf8", "fmt_type", np.bytes_(b"\xff\xfetrackshots")),
        ("fmt-type-empty", "fmt_type", h5py.Empty("S1")),
        ("mode-unknown", "mode", "BODY_99"),
        ("mode-int", "mode", 25),
        ("mode-list", "mode", ["BODY_25"]),
        ("limbs-string", "limbs", "25"),
        ("limbs-negative", "limbs", -1),
        ("limbs-huge", "limbs", HUGE),
        ("limbs-65537", "limbs", 2**16 + 1),
        ("limbs-too-small", "limbs", 3),
        ("limbs-float", "limbs", 25.5),
        ("limbs-float-integral", "limbs", 25.0),
        ("limbs-array", "limbs", np.array([25, 25])),
        ("limbs-bool", "limbs", True),
        ("limbs-uint64-max", "limbs", np.uint64(2**64 - 1)),
        ("limbs-long-array", "limbs", np.arange(5000)),
        ("num-frames-negative", "num_frames", -5),
        ("num-frames-huge", "num_frames", HUGE),
        ("num-frames-2e62", "num_frames", 2**62),
        ("num-frames-1e7", "num_frames", 10**7),
        ("num-frames-string", "num_frames", "sixty"),
        ("fmt-ver-99", "fmt_ver", 99),
        ("attr-compound", "mode", np.array((1, 2.0), dtype=[("a", "i4"), ("b", "f8")])),
    ):
        cat.h5(f"root-{slug}", _set_attr("/", key, value))
    cat.h5("unseg-fmt-type-trackshots", _set_attr("/", "fmt_type", "trackshots"), "unseg")
    cat.h5("unseg-limbs-huge", _set_attr("/", "limbs", HUGE), "unseg")
    cat.h5("unseg-num-frames-huge", _set_attr("/", "num_frames", HUGE), "unseg")
    cat.h5("root-attr-reference", lambda f: f.attrs.__setitem__("limbs", f["timeline"].ref), "ts")

    # ---------------------------------------------------------- frame attributes
    for where, tag, base, n in (
        (S0, "shot0", "ts", 6),
        (P1, "pose1", "ts", 4),
        ("/timeline", "unseg-timeline", "unseg", 4),
        (U0, "unseg-pose0", "unseg", 2),
    ):
        for slug, fn in [
            ("del-start", _del_attr(where, "start_frame")),
            ("end-huge", _set_attr(where, "end_frame", HUGE)),
            ("start-gt-end", _set_attr(where, "start_frame", 10**6)),
            ("del-end", _del_attr(where, "end_frame")),
            ("start-negative", _set_attr(where, "start_frame", -3)),
            ("start-string", _set_attr(where, "start_frame", "0")),
        ][:n]:
            cat.h5(f"{tag}-{slug}", fn, base)
    cat.h5("shot0-start-float", _set_attr(S0, "start_frame", 0.5))
    cat.h5("shot0-start-array", _set_attr(S0, "start_frame", np.array([0, 1])))
    cat.h5("shot0-start-bool", _set_attr(S0, "start_frame", True))
    cat.h5("shot0-end-inf", _set_attr(S0, "end_frame", np.inf))
    cat.h5("pose1-start-nan", _set_attr(P1, "start_frame", np.nan))
    cat.h5("shot0-end-int64-max", _set_attr(S0, "end_frame", 2**63 - 1))
    cat.h5("shot0-end-uint64-max", _set_attr(S0, "end_frame", np.uint64(2**64 - 1)))
    # empty frames beyond num_frames: readers yield every one of them unless they check
    cat.h5("shot2-end-1e8", _set_attr(S2, "end_frame", 10**8))
    cat.h5("unseg-timeline-end-1e8", _set_attr("/timeline", "end_frame", 10**8), "unseg")
    cat.h5("shot2-end-2e31", _set_attr(S2, "end_frame", 2**31))

    def shift_all(f: h5py.File) -> None:  # every shot and pose 1e8 frames later
        for path in (S0, S1, S2, P0, P1):
            attrs = f[path].attrs
            attrs.update({k: int(attrs[k]) + 10**8 for k in ("start_frame", "end_frame")})

    cat.h5("shots-start-at-1e8", shift_all)  # readers yield 1e8 empty frames first
    cat.h5("shots-overlap", _set_attr(S1, "start_frame", 10))
    cat.h5("shots-same-range", lambda f: f[S1].attrs.update({"start_frame": 0, "end_frame": 20}))
    cat.h5(
        "shots-out-of-order",
        lambda f: (
            f[S0].attrs.update({"start_frame": 40, "end_frame": 60}),
            f[S2].attrs.update({"start_frame": 0, "end_frame": 20}),
        ),
    )
    cat.h5("pose1-outside-shot", lambda f: f[P1].attrs.update({"start_frame": 0, "end_frame": 15}))
    cat.h5("pose1-end-beyond-indptr", _set_attr(P1, "end_frame", 60))
    cat.h5("pose1-shorter-than-indptr", _set_attr(P1, "end_frame", 25))
    cat.h5("pose1-empty-range", _set_attr(P1, "end_frame", 20))
    cat.h5("unseg-timeline-start-after-poses", _set_attr("/timeline", "start_frame", 30), "unseg")

    # ---------------------------------------------------------- arrays: presence
    for name in ("data", "indices", "indptr"):
        cat.h5(f"pose0-del-{name}", lambda f, n=name: f[P0].__delitem__(n))
        cat.h5(f"pose0-{name}-renamed", lambda f, n=name: f[P0].move(n, n + "_"))
        cat.h5(
            f"pose0-{name}-is-group",
            lambda f, n=name: (f[P0].__delitem__(n), f[P0].create_group(n)),
        )
    cat.h5("unseg-pose1-del-indptr", lambda f: f["/timeline/pose1"].__delitem__("indptr"), "unseg")
    cat.h5(
        "pose0-is-dataset",
        lambda f: (f[S0].__delitem__("pose0"), f[S0].create_dataset("pose0", data=np.arange(3))),
    )
    cat.h5(
        "shot1-is-dataset",
        lambda f: (
            f["timeline"].__delitem__("shot1"),
            f["timeline"].create_dataset("shot1", data=[1.0]),
        ),
    )
    cat.h5(
        "timeline-is-dataset",
        lambda f: (f.__delitem__("timeline"), f.create_dataset("timeline", data=[0])),
    )
    cat.h5("timeline-missing", lambda f: f.__delitem__("timeline"))
    cat.h5("timeline-empty", lambda f: [f["timeline"].__delitem__(k) for k in list(f["timeline"])])
    cat.h5(
        "unseg-timeline-empty",
        lambda f: [f["timeline"].__delitem__(k) for k in list(f["timeline"])],
        "unseg",
    )
    cat.h5("unseg-timeline-missing", lambda f: f.__delitem__("timeline"), "unseg")
    cat.h5("pose0-empty-group", lambda f: [f[P0].__delitem__(k) for k in list(f[P0])])

    # ---------------------------------------------------------- indptr
    cat.h5("indptr-non-monotone", _set_array(P0 + "/indptr", lambda a: a[::-1]))
    cat.h5(
        "indptr-dip", _set_array(P0 + "/indptr", lambda a: np.where(np.arange(len(a)) == 5, 0, a))
    )
    cat.h5("indptr-too-short", _set_array(P0 + "/indptr", lambda a: a[:5]))
    cat.h5(
        "indptr-too-long",
        _set_array(P0 + "/indptr", lambda a: np.concatenate([a, a[-1:] + np.arange(1, 40)])),
    )
    cat.h5("indptr-one-entry", _set_array(P0 + "/indptr", [0]))
    cat.h5("indptr-empty", _set_array(P0 + "/indptr", np.zeros(0)))
    cat.h5(
        "indptr-last-gt-data",
        _set_array(P0 + "/indptr", lambda a: np.concatenate([a[:-1], a[-1:] + 7])),
    )
    cat.h5(
        "indptr-last-lt-data",
        _set_array(P0 + "/indptr", lambda a: np.concatenate([a[:-1], a[-1:] - 7])),
    )
    cat.h5("indptr-huge-values", _set_array(P0 + "/indptr", lambda a: np.full_like(a, 2**32 - 1)))
    cat.h5(
        "indptr-huge-last",
        _set_array(P0 + "/indptr", lambda a: np.concatenate([a[:-1], [2**32 - 1]])),
    )
    cat.h5("indptr-starts-at-5", _set_array(P0 + "/indptr", lambda a: a + 5))
    cat.h5("indptr-2d", _set_array(P0 + "/indptr", lambda a: a[:, None]))
    cat.h5("indptr-scalar", _set_array(P0 + "/indptr", 0))
    cat.h5("unseg-indptr-non-monotone", _set_array(U0 + "/indptr", lambda a: a[::-1]), "unseg")
    cat.h5(
        "unseg-indptr-huge",
        _set_array(U0 + "/indptr", lambda a: np.full_like(a, 2**32 - 1)),
        "unseg",
    )

    # ---------------------------------------------------------- indices
    cat.h5(
        "indices-eq-limbs",
        _set_array(P0 + "/indices", lambda a: np.where(np.arange(len(a)) == 3, 25, a)),
    )
    cat.h5("indices-65535", _set_array(P0 + "/indices", lambda a: np.full_like(a, 65535)))
    cat.h5("indices-shorter", _set_array(P0 + "/indices", lambda a: a[:-5]))
    cat.h5("indices-longer", _set_array(P0 + "/indices", lambda a: np.concatenate([a, a[:9]])))
    cat.h5("indices-2d", _set_array(P0 + "/indices", lambda a: a[:, None]))
    cat.h5("indices-empty", _set_array(P0 + "/indices", np.zeros(0)))
    cat.h5("unseg-indices-eq-limbs", _set_array(U0 + "/indices", lambda a: a + 25), "unseg")

    # ---------------------------------------------------------- data shape
    cat.h5("data-n2", _set_array(P0 + "/data", lambda a: a[:, :2]))
    cat.h5("data-n4", _set_array(P0 + "/data", lambda a: np.concatenate([a, a[:, :1]], axis=1)))
    cat.h5("data-n31", _set_array(P0 + "/data", lambda a: a[:, :, None]))
    cat.h5("data-1d", _set_array(P0 + "/data", lambda a: a[:, 0]))
    cat.h5("data-3n", _set_array(P0 + "/data", lambda a: a.T))
    cat.h5("data-scalar", _set_array(P0 + "/data", 1.0))
    cat.h5("data-empty", _set_array(P0 + "/data", np.zeros((0, 3))))
    cat.h5("data-shorter", _set_array(P0 + "/data", lambda a: a[:-9]))
    cat.h5(
        "data-nan-inf",
        _set_array(P0 + "/data", lambda a: np.where(a > 300, np.nan, np.where(a < 0.5, np.inf, a))),
    )

    # ---------------------------------------------------------- dtypes
    for slug, path, dtype in (
        ("data-float64", P0 + "/data", np.float64),
        ("data-float16", P0 + "/data", np.float16),
        ("data-int32", P0 + "/data", np.int32),
        ("data-uint8", P0 + "/data", np.uint8),
        ("data-complex", P0 + "/data", np.complex64),
        ("data-bool", P0 + "/data", np.bool_),
        ("data-bytes", P0 + "/data", "S8"),
        ("data-bigendian", P0 + "/data", ">f4"),
        ("indices-int64", P0 + "/indices", np.int64),
        ("indices-int8", P0 + "/indices", np.int8),
        ("indices-float32", P0 + "/indices", np.float32),
        ("indices-bytes", P0 + "/indices", "S2"),
        ("indptr-float32", P0 + "/indptr", np.float32),
        ("indptr-int64", P0 + "/indptr", np.int64),
        ("indptr-int8", P0 + "/indptr", np.int8),
        ("indptr-uint64", P0 + "/indptr", np.uint64),
        ("indptr-bytes", P0 + "/indptr", "S4"),
        ("indptr-bool", P0 + "/indptr", np.bool_),
    ):
        cat.h5(f"dtype-{slug}", _swap_dtype(path, dtype))
    cat.h5(
        "dtype-indices-int16-negative",
        _set_array(P0 + "/indices", lambda a: -a.astype(np.int16) - 1, np.int16),
    )
    cat.h5(
        "dtype-indptr-int64-negative",
        _set_array(P0 + "/indptr", lambda a: a.astype(np.int64) - 100, np.int64),
    )
    cat.h5(
        "dtype-indptr-float-nan",
        _set_array(
            P0 + "/indptr", lambda a: np.where(np.arange(len(a)) == 4, np.nan, a), np.float64
        ),
    )
    cat.h5(
        "dtype-indptr-uint64-2e63",
        _set_array(P0 + "/indptr", lambda a: np.concatenate([a[:-1], [2**63]]), np.uint64),
    )
    cat.h5(
        "dtype-indptr-int64-huge",
        _set_array(P0 + "/indptr", lambda a: np.concatenate([a[:-1], [2**62]]), np.int64),
    )
    cat.h5(
        "dtype-data-compound",
        _set_array(
            P0 + "/data",
            lambda a: np.zeros(len(a), dtype=[("x", "f4"), ("y", "f4"), ("c", "f4")]),
            [("x", "f4"), ("y", "f4"), ("c", "f4")],
        ),
    )
    cat.h5(
        "dtype-indptr-vlen-str",
        lambda f: _replace(
            f[P0], "indptr", np.array(["0"] * 21, dtype=object), dtype=h5py.string_dtype()
        ),
    )
    cat.h5(
        "dtype-data-enum",
        lambda f: _replace(
            f[P0],
            "data",
            np.zeros((80, 3), np.int8),
            dtype=h5py.enum_dtype({"a": 0, "b": 1}, basetype="i1"),
        ),
    )
    cat.h5(
        "dtype-indices-reference",
        lambda f: _replace(f[P0], "indices", np.array([f.ref] * 80, dtype=h5py.ref_dtype)),
    )
    cat.h5(
        "dtype-indptr-array-type",
        lambda f: _replace(f[P0], "indptr", np.zeros(21, dtype=np.dtype(("u4", (2,))))),
    )

    # ---------------------------------------------------------- names
    for slug, new in (
        ("shotX", "shotX"),
        ("shot-1", "shot-1"),
        ("pose", "pose"),
        ("shot", "shot"),
        ("shot-space", "shot 1"),
        ("shot-unicode", "sh\u00f6t1"),
        ("shot01", "shot01"),
        ("shot-long-digits", "shot" + "9" * 60),
        ("shot-superscript", "shot\u00b2"),
    ):
        cat.h5(f"name-{slug}", lambda f, n=new: f["timeline"].move("shot1", n))
    for slug, new in (
        ("poseX", "poseX"),
        ("pose-1", "pose-1"),
        ("shot0", "shot0"),
        ("pose-fullwidth", "pose\uff11"),
    ):
        cat.h5(f"name-{slug}-as-pose", lambda f, n=new: f[S0].move("pose0", n))
    cat.h5(
        "name-extra-dataset-in-timeline", lambda f: f["timeline"].create_dataset("notes", data=[1])
    )
    cat.h5("name-extra-group-in-shot", lambda f: f[S0].create_group("meta"))
    cat.h5("name-unseg-shot-group", lambda f: f["timeline"].create_group("shot0"), "unseg")
    cat.h5("name-duplicate-pose-id", lambda f: f.copy(P0, S1 + "/pose1x"))

    # ---------------------------------------------------------- huge declared shapes
    def huge(name: str, shape: tuple, dtype: Any, chunks: tuple, path: str = P0) -> Callable:
        def fn(f: h5py.File) -> None:
            _replace(f[path], name, shape=shape, dtype=dtype, chunks=chunks)

        return fn

    cat.h5("huge-data-chunked-unwritten", huge("data", (HUGE, 3), "f4", (1024, 3)))
    cat.h5("huge-indices-chunked-unwritten", huge("indices", (HUGE,), "u2", (1024,)))
    cat.h5("huge-indptr-chunked-unwritten", huge("indptr", (HUGE,), "u4", (1024,)))
    cat.h5("huge-data-2e28", huge("data", (2**28, 3), "f4", (4096, 3)))
    cat.h5("huge-indptr-2e28", huge("indptr", (2**28,), "u4", (4096,)))
    cat.h5(
        "huge-data-contiguous-unwritten",
        lambda f: _replace(f[P0], "data", shape=(HUGE, 3), dtype="f4"),
    )
    cat.h5("huge-unseg-data", huge("data", (HUGE, 3), "f4", (1024, 3), U0), "unseg")

    def huge_consistent(f: h5py.File) -> None:
        n = 2**33
        _replace(f[P0], "data", shape=(n, 3), dtype="f4", chunks=(4096, 3))
        _replace(f[P0], "indices", shape=(n,), dtype="u2", chunks=(4096,))
        _replace(f[P0], "indptr", np.linspace(0, n, 21).astype(np.int64))

    cat.h5("huge-consistent-indptr-and-arrays", huge_consistent)

    def huge_maxshape(f: h5py.File) -> None:
        _replace(f[P0], "data", shape=(80, 3), maxshape=(None, 3), dtype="f4", chunks=(16, 3))
        f[P0 + "/data"].resize(HUGE, axis=0)

    cat.h5("huge-resized-growable", huge_maxshape)

    # ---------------------------------------------------------- links and external storage
    cat.h5(
        "extlink-data-etc-passwd",
        lambda f: (
            f[P0].__delitem__("data"),
            f[P0].__setitem__("data", h5py.ExternalLink("/etc/passwd", "/x")),
        ),
    )
    cat.h5(
        "extlink-shot1-to-base",
        lambda f: (
            f["timeline"].__delitem__("shot1"),
            f["timeline"].__setitem__(
                "shot1", h5py.ExternalLink("0001-base-ts.h5", "/timeline/shot0")
            ),
        ),
    )
    cat.h5(
        "extlink-indptr-to-base",
        lambda f: (
            f[P0].__delitem__("indptr"),
            f[P0].__setitem__("indptr", h5py.ExternalLink("0001-base-ts.h5", P0 + "/indptr")),
        ),
    )
    cat.h5(
        "extlink-timeline-parent-dir",
        lambda f: (
            f.__delitem__("timeline"),
            f.__setitem__("timeline", h5py.ExternalLink("../golden/unseg_body25.h5", "/timeline")),
        ),
    )
    cat.h5("extlink-self", lambda f: f[S2].__setitem__("pose9", h5py.ExternalLink(".", P0)))
    cat.h5("softlink-dangling", lambda f: f[S2].__setitem__("pose9", h5py.SoftLink("/nowhere")))
    cat.h5(
        "softlink-cycle",
        lambda f: (
            f[S2].__setitem__("pose8", h5py.SoftLink(S2 + "/pose9")),
            f[S2].__setitem__("pose9", h5py.SoftLink(S2 + "/pose8")),
        ),
    )
    cat.h5("softlink-to-pose0", lambda f: f[S2].__setitem__("pose9", h5py.SoftLink(P0)))
    cat.h5("softlink-to-root", lambda f: f[S2].__setitem__("pose9", h5py.SoftLink("/")))
    cat.h5("hardlink-cycle", lambda f: f[P0].__setitem__("loop", f["timeline"]))
    cat.h5("hardlink-timeline-in-shot", lambda f: f[S2].__setitem__("pose9", f["timeline"]))
    cat.h5("hardlink-root-in-pose", lambda f: f[S2].__setitem__("pose9", f["/"]))

    def external_raw(target: str) -> Callable:
        def fn(f: h5py.File) -> None:
            _replace(
                f[P0], "data", shape=(80, 3), dtype="f4", external=[(target, 0, h5py.h5f.UNLIMITED)]
            )

        return fn

    cat.h5("external-raw-etc-passwd", external_raw("/etc/passwd"))
    cat.h5("external-raw-relative", external_raw("../../../../../../../etc/hostname"))
    cat.h5("external-raw-missing", external_raw("no-such-raw-file.bin"))

    def vds(src_file: str, src_path: str) -> Callable:
        def fn(f: h5py.File) -> None:
            if src_file == ".":  # a copy of the data elsewhere in the file: allowed
                f.copy(P0 + "/data", src_path)
            layout = h5py.VirtualLayout(shape=(80, 3), dtype="f4")
            layout[:] = h5py.VirtualSource(src_file, src_path, shape=(80, 3))
            del f[P0]["data"]
            dcpl = layout._get_dcpl(f.filename)
            dcpl.set_obj_track_times(False)  # no timestamp: the same bytes on every run
            h5py.h5d.create(
                f[P0].id, b"data", h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple((80, 3)), dcpl=dcpl
            )

        return fn

    cat.h5("vds-etc-passwd", vds("/etc/passwd", "/x"))
    cat.h5("vds-other-file", vds("0001-base-ts.h5", P0 + "/data"))
    cat.h5("vds-self", vds(".", "/stash"))

    # ---------------------------------------------------------- filters and chunks
    def unknown_filter(f: h5py.File) -> None:
        arr = f[P0 + "/data"][()]
        del f[P0]["data"]
        ds = f[P0].create_dataset(
            "data",
            shape=arr.shape,
            dtype="f4",
            chunks=arr.shape,
            compression=31999,
            allow_unknown_filter=True,
        )
        ds.id.write_direct_chunk((0, 0), arr.tobytes())

    cat.h5("filter-unregistered", unknown_filter)

    def direct_chunk(payload: bytes, compression: Any = "gzip") -> Callable:
        def fn(f: h5py.File) -> None:
            arr = f[P0 + "/data"][()]
            del f[P0]["data"]
            ds = f[P0].create_dataset(
                "data", shape=arr.shape, dtype="f4", chunks=arr.shape, compression=compression
            )
            ds.id.write_direct_chunk((0, 0), payload)

        return fn

    cat.h5("chunk-gzip-garbage", direct_chunk(bytes(rng.integers(0, 256, 200, np.uint8))))
    cat.h5("chunk-gzip-one-byte", direct_chunk(b"x"))
    cat.h5("chunk-gzip-bomb", direct_chunk(__import__("zlib").compress(bytes(2**22), 9)))
    import hdf5plugin

    blosc = hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE)
    cat.h5("chunk-blosc-garbage", direct_chunk(bytes(rng.integers(0, 256, 200, np.uint8)), blosc))
    # a Blosc header declaring 2 GiB of output for a 960-byte chunk
    hdr = (
        bytes([2, 1, 0x05 | 0x10, 4])
        + (2**31 - 1).to_bytes(4, "little")
        + (2**16).to_bytes(4, "little")
        + (64).to_bytes(4, "little")
    )
    cat.h5("chunk-blosc-header-huge-nbytes", direct_chunk(hdr + bytes(48), blosc))
    cat.h5("chunk-blosc-truncated-header", direct_chunk(hdr[:7], blosc))
    cat.h5(
        "chunk-fletcher32-corrupt",
        lambda f: (
            _replace(f[P0], "data", f[P0 + "/data"][()], chunks=(80, 3), fletcher32=True),
            f[P0 + "/data"].id.write_direct_chunk((0, 0), bytes(80 * 12 + 4)),
        ),
    )
    cat.h5(
        "chunk-scaleoffset-int-indices",
        lambda f: _replace(f[P0], "indices", f[P0 + "/indices"][()], chunks=(80,), scaleoffset=0),
    )
    cat.h5(
        "chunk-shuffle-gzip-indptr",
        lambda f: _replace(
            f[P0], "indptr", f[P0 + "/indptr"][()], chunks=(21,), shuffle=True, compression="gzip"
        ),
    )
    cat.h5(
        "chunk-data-wrong-size-direct",
        lambda f: (
            _replace(f[P0], "data", shape=(80, 3), dtype="f4", chunks=(80, 3)),
            f[P0 + "/data"].id.write_direct_chunk((0, 0), b"\x01" * 17),
        ),
    )
    cat.h5(
        "chunk-unwritten-data",
        lambda f: _replace(f[P0], "data", shape=(80, 3), dtype="f4", chunks=(16, 3)),
    )
    cat.h5(
        "compact-data",
        lambda f: (
            f[P0].__delitem__("data"),
            h5py.h5d.create(
                f[P0].id,
                b"data",
                h5py.h5t.IEEE_F32LE,
                h5py.h5s.create_simple((80, 3)),
                _compact_dcpl(),
            ),
        ),
    )

    # ---------------------------------------------------------- zarr
    _zarr_mutations(cat)
    return cat


def _compact_dcpl() -> Any:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    dcpl.set_obj_track_times(False)  # no timestamp: the same bytes on every run
    return dcpl


def _jload(m: dict[str, bytes], key: str) -> Any:
    return json.loads(m[key])


def _jdump(m: dict[str, bytes], key: str, doc: Any) -> None:
    m[key] = json.dumps(doc, separators=(",", ":")).encode()


def _edit_v3(path: str, edit: Callable[[dict], None]) -> Callable[[dict[str, bytes]], None]:
    """Edit the metadata of node ``path`` in its own zarr.json and in the root's
    consolidated copy (zip stores are read from the consolidated document)."""

    def fn(m: dict[str, bytes]) -> None:
        own = _jload(m, f"{path}/zarr.json")
        edit(own)
        _jdump(m, f"{path}/zarr.json", own)
        root = _jload(m, "zarr.json")
        edit(root["consolidated_metadata"]["metadata"][path])
        _jdump(m, "zarr.json", root)

    return fn


def _edit_v2(
    path: str, edit: Callable[[dict], None], doc: str = ".zarray"
) -> Callable[[dict[str, bytes]], None]:
    def fn(m: dict[str, bytes]) -> None:
        own = _jload(m, f"{path}/{doc}")
        edit(own)
        _jdump(m, f"{path}/{doc}", own)
        if ".zmetadata" in m:
            zm = _jload(m, ".zmetadata")
            edit(zm["metadata"][f"{path}/{doc}"])
            _jdump(m, ".zmetadata", zm)

    return fn


def _set(key: str, value: Any) -> Callable[[dict], None]:
    return lambda d: d.__setitem__(key, value)


def _zarr_mutations(cat: Catalogue) -> None:
    zp = "timeline/shot0/pose0"
    # v3
    cat.zip(
        "zarr3-root-json-truncated",
        "z3",
        lambda m: m.__setitem__("zarr.json", m["zarr.json"][:300]),
    )
    cat.zip("zarr3-root-json-list", "z3", lambda m: m.__setitem__("zarr.json", b"[]"))
    cat.zip(
        "zarr3-root-json-binary", "z3", lambda m: m.__setitem__("zarr.json", b"\xff\xfe\x00garbage")
    )
    cat.zip(
        "zarr3-root-format-4",
        "z3",
        lambda m: _jdump(m, "zarr.json", {**_jload(m, "zarr.json"), "zarr_format": 4}),
    )
    cat.zip(
        "zarr3-root-is-array",
        "z3",
        lambda m: _jdump(m, "zarr.json", {**_jload(m, f"{zp}/data/zarr.json")}),
    )
    cat.zip(
        "zarr3-unknown-codec",
        "z3",
        _edit_v3(f"{zp}/data", lambda d: d["codecs"].append({"name": "evil_codec"})),
    )
    cat.zip("zarr3-data-type-float64", "z3", _edit_v3(f"{zp}/data", _set("data_type", "float64")))
    cat.zip("zarr3-data-type-unknown", "z3", _edit_v3(f"{zp}/data", _set("data_type", "object")))
    cat.zip("zarr3-data-type-string", "z3", _edit_v3(f"{zp}/indptr", _set("data_type", "string")))
    cat.zip("zarr3-huge-shape", "z3", _edit_v3(f"{zp}/data", _set("shape", [HUGE, 3])))
    cat.zip("zarr3-huge-shape-indptr", "z3", _edit_v3(f"{zp}/indptr", _set("shape", [HUGE])))
    cat.zip("zarr3-shape-rank-mismatch", "z3", _edit_v3(f"{zp}/data", _set("shape", [80])))
    cat.zip(
        "zarr3-chunk-shape-zero",
        "z3",
        _edit_v3(
            f"{zp}/indptr",
            lambda d: d["chunk_grid"]["configuration"].__setitem__("chunk_shape", [0]),
        ),
    )
    cat.zip("zarr3-fill-value-bad", "z3", _edit_v3(f"{zp}/indptr", _set("fill_value", "abc")))
    cat.zip(
        "zarr3-attr-start-string",
        "z3",
        _edit_v3("timeline/shot0", lambda d: d["attributes"].__setitem__("start_frame", "0")),
    )
    cat.zip(
        "zarr3-attr-limbs-huge",
        "z3",
        lambda m: _jdump(
            m,
            "zarr.json",
            {
                **_jload(m, "zarr.json"),
                "attributes": {**_jload(m, "zarr.json")["attributes"], "limbs": HUGE},
            },
        ),
    )

    def traversal(key: str) -> Callable[[dict[str, bytes]], None]:
        def fn(m: dict[str, bytes]) -> None:
            root = _jload(m, "zarr.json")
            meta = root["consolidated_metadata"]["metadata"]
            meta[key] = meta["timeline/shot2"]
            _jdump(m, "zarr.json", root)

        return fn

    cat.zip("zarr3-consolidated-dotdot", "z3", traversal("../x"))
    cat.zip("zarr3-consolidated-dotdot-nested", "z3", traversal("timeline/../../etc"))
    cat.zip("zarr3-consolidated-absolute", "z3", traversal("/etc/passwd"))
    cat.zip("zarr3-consolidated-shot-dotdot", "z3", traversal("timeline/shot.."))
    cat.zip(
        "zarr3-member-dotdot-file",
        "z3",
        lambda m: m.__setitem__("../evil/zarr.json", m["timeline/shot2/zarr.json"]),
    )
    cat.zip(
        "zarr3-chunk-truncated",
        "z3",
        lambda m: m.__setitem__(f"{zp}/data/c/0/0", m[f"{zp}/data/c/0/0"][:20]),
    )
    cat.zip(
        "zarr3-chunk-garbage", "z3", lambda m: m.__setitem__(f"{zp}/indptr/c/0", bytes(range(84)))
    )
    cat.zip("zarr3-chunk-missing", "z3", lambda m: m.__delitem__(f"{zp}/indptr/c/0"))
    cat.zip("zarr3-array-doc-missing", "z3", lambda m: m.__delitem__(f"{zp}/data/zarr.json"))
    cat.zip(
        "zarr3-consolidated-dropped",
        "z3",
        lambda m: _jdump(
            m,
            "zarr.json",
            {k: v for k, v in _jload(m, "zarr.json").items() if k != "consolidated_metadata"},
        ),
    )
    # v2
    cat.zip(
        "zarr2-zarray-bad-json",
        "z2",
        lambda m: (
            m.__setitem__(f"{zp}/data/.zarray", b'{"shape": ['),
            m.__delitem__(".zmetadata"),
        ),
    )
    cat.zip(
        "zarr2-pickle-object",
        "z2",
        _edit_v2(
            f"{zp}/data",
            lambda d: d.update({"dtype": "|O", "filters": [{"id": "pickle", "protocol": 5}]}),
        ),
    )
    cat.zip(
        "zarr2-compressor-pickle",
        "z2",
        _edit_v2(f"{zp}/indptr", _set("compressor", {"id": "pickle"})),
    )
    cat.zip(
        "zarr2-compressor-unknown",
        "z2",
        _edit_v2(f"{zp}/indptr", _set("compressor", {"id": "evil"})),
    )
    cat.zip("zarr2-huge-shape", "z2", _edit_v2(f"{zp}/data", _set("shape", [HUGE, 3])))
    cat.zip("zarr2-dtype-f8", "z2", _edit_v2(f"{zp}/data", _set("dtype", "<f8")))
    cat.zip("zarr2-order-F", "z2", _edit_v2(f"{zp}/data", _set("order", "F")))
    cat.zip(
        "zarr2-zmetadata-dotdot",
        "z2",
        lambda m: _jdump(
            m,
            ".zmetadata",
            {
                **_jload(m, ".zmetadata"),
                "metadata": {
                    **_jload(m, ".zmetadata")["metadata"],
                    "../../etc/.zgroup": {"zarr_format": 2},
                    "timeline/../../x/.zgroup": {"zarr_format": 2},
                },
            },
        ),
    )
    cat.zip("zarr2-zmetadata-bad-json", "z2", lambda m: m.__setitem__(".zmetadata", b"{not json"))
    cat.zip(
        "zarr2-zattrs-not-object",
        "z2",
        lambda m: (
            m.__setitem__("timeline/shot0/.zattrs", b"[1, 2]"),
            _zm_set(m, "timeline/shot0/.zattrs", [1, 2]),
        ),
    )
    cat.raw("zarrzip-truncated", "z2", _truncate(-200))
    cat.raw("zarrzip-garbage", "z2", lambda b: b[:4] + bytes(len(b) - 4))


def _zm_set(m: dict[str, bytes], key: str, value: Any) -> None:
    zm = _jload(m, ".zmetadata")
    zm["metadata"][key] = value
    _jdump(m, ".zmetadata", zm)


# ------------------------------------------------------------------ writing


def _slugify(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in s)


def generate(out_dir: Path = CORPUS_DIR) -> list[Path]:
    """Rebuild the corpus in ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in list(out_dir.glob("*.h5")) + list(out_dir.glob("*.zarr.zip")):
        old.unlink()
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmpname:
        tmp = Path(tmpname)
        bases = build_bases(tmp)
        cat = catalogue(bases)
        for i, (slug, base, fn, kind) in enumerate(cat.items, start=1):
            zarr_base = base.startswith("z")
            suffix = ".zarr.zip" if zarr_base else ".h5"
            dest = out_dir / f"{i:04d}-{_slugify(slug)}{suffix}"
            if kind == "bytes":
                dest.write_bytes(fn(bases[base].read_bytes()))
            elif kind == "zip":
                members = _read_zip(bases[base].read_bytes())
                fn(members)
                dest.write_bytes(_make_zip(members))
            else:
                work = tmp / "work.h5"
                shutil.copyfile(bases[base], work)
                with h5py.File(work, "r+") as f:
                    fn(f)
                shutil.copyfile(work, dest)
            written.append(dest)
    return written


def main() -> None:
    files = generate()
    total = sum(p.stat().st_size for p in files)
    print(f"wrote {len(files)} files, {total / 2**20:.2f} MiB, to {CORPUS_DIR}", file=sys.stderr)


if __name__ == "__main__":
    main()
