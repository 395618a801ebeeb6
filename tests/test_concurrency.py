"""Many threads, and more than one writer.

Reading: a ``ThreadPoolExecutor(8)`` decodes the golden dumps fully in every
thread, (a) all through one open root and (b) each through its own root, local
HDF5 and Zarr (formats 3 and 2, and a ``.zarr.zip``), and HDF5/Zarr on
``memory://`` (the remote code paths: :class:`~skelstore.rangefile.RangeCacheFile`
and zarr's fsspec store); every thread's rows must equal the golden expectation.

Writing: two writers to one path are refused rather than interleaved, for HDF5
(h5py's file lock across processes; skelstore's check within one) and local Zarr
(skelstore's lock file beside the store), from a second process and from the
same one; the error is a :class:`~skelstore.errors.LockedError` naming the path
(and, where it can be told, the holder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
from dumputil import (
    GOLDEN_DIR,
    GOLDEN_FILES,
    UNSEG_GOLDEN,
    Rows,
    assert_rows_equal,
    decode_shot,
    decode_trackshots,
    decode_unseg,
    golden_shot_ranges,
    load_expected,
    rows_from_list,
)
from test_golden import golden_limbs

import skelstore
from skelstore.conversion import convert
from skelstore.dump import add_fmt_metadata, add_metadata, write_shots
from skelstore.errors import EngineError, LockedError
from skelstore.io import ShotSegmentedReader
from skelstore.sample import sample_frames

THREADS = 8
LOSSY = "trackshots_lossy.h5"
REPO = Path(__file__).resolve().parent.parent


def decode(root: Any, name: str) -> Rows:
    limbs = golden_limbs(name)
    if name in UNSEG_GOLDEN:
        return decode_unseg(root, limbs)[0]
    return decode_trackshots(root, golden_shot_ranges(name), limbs)


def check(got: Rows, name: str, kind: str) -> None:
    """Exactly skelshop's rows; a Zarr copy of the lossy dump is re-quantised, so it
    is compared within its precision (as in test_cloud)."""
    atol = 0.01 if name == LOSSY and "zarr" in kind else 0.0
    assert_rows_equal(got, load_expected(name), atol=atol)


def run_all(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run ``jobs`` on a pool of :data:`THREADS`; the first wave starts together."""
    barrier = threading.Barrier(min(THREADS, len(jobs)))

    def start(i: int, job: Callable[[], Any]) -> Any:
        if i < barrier.parties:  # one per thread: the pool starts a thread for each
            barrier.wait(timeout=30)
        return job()

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(start, i, job) for i, job in enumerate(jobs)]
        return [f.result(timeout=120) for f in futures]


# ---------------------------------------------------------------- copies to read


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], str]:
    """``get(kind, name)``: the URL of a copy of golden dump ``name`` of ``kind``
    (made once; ``memory://`` copies are put back before each use)."""
    root = tmp_path_factory.mktemp("concurrency")
    made: dict[tuple[str, str], str] = {}
    blobs: dict[str, Path] = {}

    def get(kind: str, name: str) -> str:
        stem = name[:-3]
        if (kind, name) not in made:
            if kind == "hdf5":
                made[kind, name] = str(GOLDEN_DIR / name)
            elif kind in ("zarr3", "zarr2"):
                dst = root / kind / f"{stem}.zarr"
                convert(GOLDEN_DIR / name, dst, zarr_format=int(kind[-1]))
                made[kind, name] = str(dst)
            elif kind == "zarrzip":
                dst = root / "zip" / f"{stem}.zarr.zip"
                dst.parent.mkdir(exist_ok=True)
                convert(GOLDEN_DIR / name, dst)
                made[kind, name] = str(dst)
            elif kind == "memory-hdf5":
                # padded past the 16 MiB read whole: read by concurrent range fetches
                padded = root / f"{stem}.padded.h5"
                shutil.copyfile(GOLDEN_DIR / name, padded)
                with open(padded, "ab") as f:
                    f.write(b"\0" * (17 * 2**20))
                blobs[f"/{stem}.h5"] = padded
                made[kind, name] = f"memory://{stem}.h5"
            elif kind == "memory-zarr":
                blobs[f"/{stem}.zarr"] = Path(get("zarr3", name))
                made[kind, name] = f"memory://{stem}.zarr"
            else:
                raise ValueError(kind)
        url = made[kind, name]
        if url.startswith("memory://"):
            key = "/" + url.removeprefix("memory://")
            fs = fsspec.filesystem("memory")
            if not fs.exists(key):
                fs.put(str(blobs[key]), key, recursive=blobs[key].is_dir())
        return url

    return get


READ_KINDS = ["hdf5", "zarr3", "zarr2", "zarrzip", "memory-hdf5", "memory-zarr"]


# ---------------------------------------------------------------- (a) one root


@pytest.mark.parametrize("kind", READ_KINDS)
def test_threads_share_one_open_root(copies: Any, kind: str):
    name = "trackshots_lossless.h5"
    with skelstore.open(copies(kind, name)) as root:
        results = run_all([lambda: decode(root, name) for _ in range(THREADS)])
    for got in results:
        check(got, name, kind)


@pytest.mark.parametrize("kind", ["hdf5", "zarr3", "memory-hdf5"])
def test_threads_read_different_shots_of_one_root(copies: Any, kind: str):
    """Random access by shot (``reader[n]``) from every thread at once, each thread
    with its own reader over the shared root."""
    name = "trackshots_body25all.h5"
    ranges = golden_shot_ranges(name)
    limbs = golden_limbs(name)
    expected = load_expected(name)

    with skelstore.open(copies(kind, name)) as root:

        def shot(n: int) -> tuple[int, Rows]:
            out: list = []
            decode_shot(ShotSegmentedReader(root)[n], n, out, limbs)
            return n, rows_from_list(out, limbs)

        jobs = [lambda n=n: shot(n) for n in sorted(ranges) for _ in range(3)]
        results = run_all(jobs)
    for n, got in results:
        assert_rows_equal(got, expected.select(expected.shot == n))


# ---------------------------------------------------------------- (b) many roots


# skelstore silences this zarr warning with warnings.catch_warnings, which is not
# thread-safe: with readers in several threads one can slip through
@pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in the Zarr")
def test_threads_read_different_dumps(copies: Any):
    """Every golden dump as HDF5 and Zarr v3, the small ones also as Zarr v2 and
    ``.zarr.zip``, each thread opening its own root."""
    small = ["trackshots_offset_face.h5", "unseg_body25.h5"]
    cases = [(k, n) for k in ("hdf5", "zarr3") for n in GOLDEN_FILES]
    cases += [(k, n) for k in ("zarr2", "zarrzip") for n in small]
    urls = {case: copies(*case) for case in cases}  # made before the threads start

    def job(kind: str, name: str) -> tuple[str, str, Rows]:
        with skelstore.open(urls[kind, name]) as root:
            return kind, name, decode(root, name)

    for kind, name, got in run_all([lambda c=c: job(*c) for c in cases]):
        check(got, name, kind)


def test_threads_read_different_remote_dumps(copies: Any):
    cases = [(k, n) for k in ("memory-hdf5", "memory-zarr") for n in GOLDEN_FILES]
    urls = {case: copies(*case) for case in cases}

    def job(kind: str, name: str) -> tuple[str, str, Rows]:
        with skelstore.open(urls[kind, name]) as root:
            return kind, name, decode(root, name)

    for kind, name, got in run_all([lambda c=c: job(*c) for c in cases]):
        check(got, name, kind)


def test_rangefile_cache_under_threads(tmp_path: Path):
    """:class:`RangeCacheFile` from many threads: prefetches, block misses and
    ``read_at`` racing over one cache return the right bytes, and every byte is
    fetched once."""
    from skelstore.rangefile import RangeCacheFile

    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 8 * 2**20, dtype=np.uint8).tobytes()
    (tmp_path / "blob").write_bytes(data)
    f = RangeCacheFile(
        fsspec.filesystem("file"), str(tmp_path / "blob"), whole_below=0, block_size=64 * 1024
    )

    def job(i: int) -> None:
        r = np.random.default_rng(i)
        for _ in range(50):
            a = int(r.integers(0, len(data) - 70_000))
            b = a + int(r.integers(1, 70_000))
            if r.random() < 0.3:
                f.prefetch([(a, b)])
            assert f.read_at(a, b - a) == data[a:b]

    run_all([lambda i=i: job(i) for i in range(THREADS)])
    # the cache's extents stay sorted and disjoint (what a race would break)
    ends = [s + len(d) for s, d in zip(f._starts, f._data, strict=True)]
    assert all(e <= s for e, s in zip(ends, f._starts[1:], strict=False))
    assert f.cached_bytes() <= len(data)


# ---------------------------------------------------------------- one writer


def _write_sample(root: skelstore.Group) -> None:
    add_fmt_metadata(root, "trackshots")
    add_metadata(root, "x.mp4", num_frames=300, mode="BODY_25", limbs=25)
    write_shots(root, 25, sample_frames(), compression="lossless")


WRITE_KINDS = {
    "hdf5": ("x.h5", {}),
    "zarr3": ("x.zarr", {"zarr_format": 3}),
    "zarr2": ("x.zarr", {"zarr_format": 2}),
    "zarrzip": ("x.zarr.zip", {}),
}


@pytest.fixture(params=list(WRITE_KINDS))
def writing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, Any]]:
    """``(kind, path, root)``: a dump of ``kind`` open for writing (closed after)."""
    name, kwargs = WRITE_KINDS[request.param]
    path = str(tmp_path / name)
    root = skelstore.open(path, "w", **kwargs)
    try:
        yield request.param, path, root
    finally:
        root.close()


@pytest.mark.parametrize("mode", ["w", "a", "r+"])
def test_second_writer_in_the_same_process_is_refused(writing: Any, mode: str):
    kind, path, root = writing
    if mode == "r+" and kind == "zarrzip":
        # a new .zarr.zip exists only once closed: r+ finds nothing to open
        with pytest.raises(skelstore.NotFoundError):
            skelstore.open(path, mode)
        return
    with pytest.raises(LockedError) as info:
        skelstore.open(path, mode)
    exc = info.value
    assert isinstance(exc, EngineError)
    assert path in str(exc) and "this process" in str(exc)
    if kind != "hdf5":
        assert exc.holder is not None and f"pid {os.getpid()}" in exc.holder
    # the first writer is unharmed and can finish; then the path is free again
    _write_sample(root)
    root.close()
    with skelstore.open(path, "a") as again:
        assert again.attrs["fmt_type"] == "trackshots"
    with skelstore.open(path) as reader:
        assert len(ShotSegmentedReader(reader)) == 3


def _other_process(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60, env=env, cwd=str(REPO),
    )  # fmt: skip


def test_second_writer_in_another_process_is_refused(writing: Any):
    kind, path, root = writing
    result = _other_process(
        f"""
        import skelstore
        from skelstore.errors import LockedError
        try:
            skelstore.open({path!r}, "a")
        except LockedError as exc:
            print("LOCKED", exc.holder)
            print(exc)
        else:
            print("OPENED")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("LOCKED"), result.stdout + result.stderr
    assert path in result.stdout
    holder = result.stdout.splitlines()[0].removeprefix("LOCKED ")
    if kind == "hdf5" and not os.path.exists("/proc/locks"):
        assert holder == "None"  # HDF5 keeps no holder; skelstore looks in /proc/locks
    else:
        assert f"pid {os.getpid()}" in holder
    root.close()
    ok = _other_process(f"import skelstore; skelstore.open({path!r}, 'a').close(); print('OK')")
    assert ok.stdout.strip() == "OK", ok.stderr


def test_lock_of_a_dead_writer_is_released(tmp_path: Path):
    """A writer killed without closing leaves no lock behind (the OS drops flock)."""
    path = str(tmp_path / "crash.zarr")
    result = _other_process(
        f"""
        import os, skelstore
        root = skelstore.open({path!r}, "w")
        os._exit(0)  # no close, no atexit
        """
    )
    assert result.returncode == 0, result.stderr
    with skelstore.open(path, "a") as root:  # not LockedError
        _write_sample(root)
    with skelstore.open(path) as root:
        assert len(ShotSegmentedReader(root)) == 3


def test_zarr_lock_file_sits_beside_the_store_and_goes_away(tmp_path: Path):
    path = tmp_path / "side.zarr"
    with skelstore.open(str(path), "w") as root:
        _write_sample(root)
        lock = tmp_path / ".side.zarr.skelstore-write.lock"
        assert lock.is_file() and f"pid {os.getpid()}" in lock.read_text()
        assert not any("lock" in p.name for p in path.rglob("*"))  # not inside the store
    assert not lock.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["side.zarr"]


@pytest.mark.parametrize("name", ["race.h5", "race.zarr"])
def test_racing_writers_one_wins(tmp_path: Path, name: str):
    """Threads opening the same new dump for writing at once: exactly one gets it."""
    path = str(tmp_path / name)

    def attempt() -> Any:
        try:
            return skelstore.open(path, "a")
        except LockedError as exc:
            return exc

    results = run_all([attempt for _ in range(THREADS)])
    roots = [r for r in results if not isinstance(r, LockedError)]
    assert len(roots) == 1
    assert all(isinstance(r, LockedError) for r in results if r is not roots[0])
    _write_sample(roots[0])
    roots[0].close()
    with skelstore.open(path) as root:
        assert len(ShotSegmentedReader(root)) == 3


def test_readers_are_not_locked_out_of_zarr(tmp_path: Path):
    """The Zarr lock is for writers only: a reader opens while a writer is open (the
    dump is marked in progress until closed, hence ``allow_incomplete``)."""
    path = str(tmp_path / "rw.zarr")
    with skelstore.open(path, "w") as writer:
        _write_sample(writer)
        writer.flush()
        with skelstore.open(path, allow_incomplete=True) as reader:
            assert reader.attrs["fmt_type"] == "trackshots"
