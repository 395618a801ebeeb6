"""Remote reads under faults: a fault-injecting loopback proxy in front of moto's S3
(and of the HTTP test server).

The proxy (``benchmarks/proxy.py``, via ``servers.CountingProxy``) answers 500/503,
holds requests past the client's timeout, or drops connections, and counts every
request. Nothing of fsspec or the engines is mocked: the bytes go through s3fs,
botocore and aiohttp as in production.

What is checked:

* transient failures (5xx, one hang, dropped connections) are retried, and the
  golden dumps then decode exactly, for HDF5 (whole-object fetch and byte-range
  fetches) and Zarr (formats 3 and 2);
* a persistent 500, a hang and a 403 raise typed skelstore errors naming the URL,
  within a bounded time; a 403 is not retried.

The retry layers stack: botocore (``standard`` mode, 3 attempts, set by
``skelstore.urls.PROTOCOL_DEFAULTS``), s3fs (timeouts and broken connections) and
skelstore's own :func:`skelstore.rangefile.default_retry`. Faults are armed for
more consecutive requests than botocore's 3 attempts where skelstore's own layer
is the one under test.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
from dumputil import (
    GOLDEN_DIR,
    assert_rows_equal,
    decode_trackshots,
    decode_unseg,
    golden_shot_ranges,
    load_expected,
)
from servers import CountingProxy
from test_golden import golden_limbs

import skelstore
from skelstore import rangefile
from skelstore.conversion import convert
from skelstore.errors import (
    NotFoundError,
    RemoteAccessError,
    RemoteError,
    RemoteTimeoutError,
    SkelstoreError,
)
from skelstore.rangefile import RangeCacheFile, RetryPolicy, classify

LOSSLESS = "trackshots_lossless.h5"
UNSEG = "unseg_body25.h5"
#: The longest any failing read may take here (the policies below make it ~1-10 s).
BOUND = 30.0
#: botocore's retries off, where only skelstore's layer is under test (faster).
NO_BOTOCORE_RETRY = {"mode": "standard", "total_max_attempts": 1}


def decode(root: Any, name: str) -> Any:
    limbs = golden_limbs(name)
    if name == UNSEG:
        return decode_unseg(root, limbs)[0]
    return decode_trackshots(root, golden_shot_ranges(name), limbs)


@dataclass
class Remote:
    """A fresh bucket, written directly and read through the fault proxy."""

    bucket: str
    direct: dict[str, Any]  # storage options that bypass the proxy
    proxy: Any

    def upload(self, local: Path, key: str) -> str:
        fs = fsspec.filesystem("s3", **self.direct)
        fs.put(str(local), f"{self.bucket}/{key}", recursive=local.is_dir())
        fs.invalidate_cache()
        return f"s3://{self.bucket}/{key}"

    def options(self, **config: Any) -> dict[str, Any]:
        """Storage options through the proxy; ``config`` goes to botocore's Config.
        (The ``s3_bucket`` fixture drops fsspec's cached listings around each test.)"""
        opts = {**self.direct, "endpoint_url": self.proxy.url}
        if config:
            opts["config_kwargs"] = config
        return opts

    def open(self, url: str, **config: Any) -> skelstore.Group:
        return skelstore.open(url, storage_options=self.options(**config))

    def arm(self, kind: str, count: int | None = 1, **kwargs: Any) -> None:
        """A fault for this test's bucket only (stragglers of earlier tests, such as
        zarr's un-awaited sibling reads, are left alone)."""
        self.proxy.inject(kind, count=count, path_contains=self.bucket, **kwargs)

    def counts(self) -> dict[str, Any]:
        """The proxy's counts of this test's requests."""
        return self.proxy.snapshot(path_contains=self.bucket)


@pytest.fixture
def remote(s3_server: Any, s3_bucket: str, fault_proxy: Any) -> Remote:
    return Remote(s3_bucket, s3_server.storage_options(), fault_proxy)


@pytest.fixture(scope="module")
def golden_zarr(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``get(name, fmt)``: a local Zarr copy of a golden dump (made once)."""
    root = tmp_path_factory.mktemp("faults-zarr")
    made: dict[tuple[str, int], Path] = {}

    def get(name: str, fmt: int) -> Path:
        if (name, fmt) not in made:
            dst = root / f"v{fmt}" / name.replace(".h5", ".zarr")
            convert(GOLDEN_DIR / name, dst, zarr_format=fmt)
            made[name, fmt] = dst
        return made[name, fmt]

    return get


@pytest.fixture(scope="module")
def padded_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lossless golden dump followed by 17 MiB of zeros (HDF5 ignores bytes past
    its end of file): larger than the 16 MiB read whole, so the engine reads it by
    metadata blocks and chunk ranges."""
    path = tmp_path_factory.mktemp("faults-h5") / "padded.h5"
    shutil.copyfile(GOLDEN_DIR / LOSSLESS, path)
    with open(path, "ab") as f:
        f.write(b"\0" * (17 * 2**20))
    return path


@pytest.fixture
def quick_policy(monkeypatch: pytest.MonkeyPatch) -> RetryPolicy:
    """A short-fused :func:`default_retry` (2 attempts of at most 0.75 s), so hangs
    and persistent failures end within seconds."""
    policy = RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.2, timeout=0.75)
    monkeypatch.setattr(rangefile, "default_retry", lambda: policy)
    return policy


@pytest.fixture
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> RetryPolicy:
    """:func:`default_retry` with 2 attempts and short pauses, but time enough per
    attempt for botocore's own retries (its backoff alone can take 3 s)."""
    policy = RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.2, timeout=15.0)
    monkeypatch.setattr(rangefile, "default_retry", lambda: policy)
    return policy


# ---------------------------------------------------------------- transient faults


@pytest.mark.parametrize("name", [LOSSLESS])
def test_hdf5_transient_503s_are_retried_and_decode_exactly(remote: Remote, name: str):
    url = remote.upload(GOLDEN_DIR / name, name)
    # 3 in a row outlast botocore's 3 attempts: skelstore's own retry finishes the job
    remote.arm("status", 3, status=503, methods={"GET"})
    with remote.open(url) as root:
        got = decode(root, name)
    assert_rows_equal(got, load_expected(name))
    assert remote.counts()["faults"] == {"status": 3}


def test_hdf5_byte_ranges_survive_random_503s(remote: Remote, padded_h5: Path):
    """A file read by ranges (metadata blocks, chunk prefetches, read-ahead) with a
    seeded 30% of its range GETs failing decodes exactly."""
    url = remote.upload(padded_h5, "padded.h5")
    remote.arm("status", None, fraction=0.3, status=503, seed=7, methods={"GET"}, ranged=True)
    with remote.open(url) as root:
        got = decode(root, LOSSLESS)
        rf = root._rangefile
        assert rf is not None and rf.bytes_fetched < padded_h5.stat().st_size
    assert_rows_equal(got, load_expected(LOSSLESS))
    snap = remote.counts()
    assert snap["faults"].get("status", 0) >= 1, snap


@pytest.mark.parametrize("fmt", [3])
def test_zarr_survives_random_503s(remote: Remote, golden_zarr: Any, fmt: int):
    name = "trackshots_offset_face.h5"
    url = remote.upload(golden_zarr(name, fmt), f"v{fmt}.zarr")
    # any request: GET, HEAD, LIST
    remote.arm("status", None, fraction=0.15, status=503, seed=fmt)
    with remote.open(url) as root:
        assert root.engine_name == "zarr"
        got = decode(root, name)
    assert_rows_equal(got, load_expected(name))
    assert remote.counts()["faults"].get("status", 0) >= 2


def test_zarr_transient_run_of_503s_is_retried(remote: Remote, golden_zarr: Any):
    url = remote.upload(golden_zarr(UNSEG, 2), "u.zarr")
    with remote.open(url) as root:
        remote.arm("status", 4, status=503, methods={"GET"})  # mid-read, longer than botocore's
        got = decode(root, UNSEG)
    assert_rows_equal(got, load_expected(UNSEG))
    assert remote.counts()["faults"] == {"status": 4}


@pytest.mark.parametrize("engine", ["hdf5", "zarr"])
def test_dropped_connections_are_retried(remote: Remote, golden_zarr: Any, engine: str):
    local = GOLDEN_DIR / UNSEG if engine == "hdf5" else golden_zarr(UNSEG, 3)
    url = remote.upload(local, local.name)
    remote.arm("drop", 4, methods={"GET"})
    with remote.open(url) as root:
        got = decode(root, UNSEG)
    assert_rows_equal(got, load_expected(UNSEG))
    assert remote.counts()["faults"] == {"drop": 4}


@pytest.mark.parametrize("engine", ["hdf5", "zarr"])
def test_one_hang_past_the_read_timeout_is_retried(remote: Remote, golden_zarr: Any, engine: str):
    local = GOLDEN_DIR / UNSEG if engine == "hdf5" else golden_zarr(UNSEG, 3)
    url = remote.upload(local, local.name)
    remote.arm("hang", 1, seconds=60, methods={"GET"})
    t0 = time.monotonic()
    with remote.open(url, read_timeout=0.5, connect_timeout=0.5) as root:
        got = decode(root, UNSEG)
    assert time.monotonic() - t0 < BOUND
    assert_rows_equal(got, load_expected(UNSEG))
    assert remote.counts()["faults"] == {"hang": 1}


# ---------------------------------------------------------------- permanent faults


def _assert_names(exc: BaseException, url: str) -> None:
    assert url.removeprefix("s3://") in str(exc), str(exc)


@pytest.mark.parametrize("engine", ["hdf5", "zarr"])
def test_persistent_500_raises_remote_error_in_bounded_time(
    remote: Remote, golden_zarr: Any, engine: str
):
    """With the default policy: botocore's 3 attempts, times skelstore's 3."""
    local = GOLDEN_DIR / UNSEG if engine == "hdf5" else golden_zarr(UNSEG, 3)
    url = remote.upload(local, local.name)
    remote.arm("status", None, status=500, methods={"GET"})
    t0 = time.monotonic()
    with pytest.raises(RemoteError) as info, remote.open(url) as root:
        decode(root, UNSEG)
    elapsed = time.monotonic() - t0
    assert elapsed < BOUND
    exc = info.value
    assert isinstance(exc, SkelstoreError) and isinstance(exc, OSError)
    assert (exc.status, exc.attempts) == (500, rangefile.default_retry().attempts)
    assert "HTTP 500" in str(exc)
    _assert_names(exc, url)
    gets = remote.counts()["by_method"]["GET"]
    tries = 3 * rangefile.default_retry().attempts  # botocore's 3 x skelstore's 3
    if engine == "hdf5":
        assert gets == tries
    else:  # zarr asks for its metadata documents concurrently: each is tried as often
        assert gets >= tries


def test_persistent_500_in_the_middle_of_a_read(
    remote: Remote, padded_h5: Path, short_pauses: RetryPolicy
):
    """Failures after the open (chunk prefetches) raise RemoteError, not FormatError."""
    url = remote.upload(padded_h5, "padded.h5")
    with remote.open(url, retries=NO_BOTOCORE_RETRY) as root:
        remote.arm("status", None, status=500, methods={"GET"})
        with pytest.raises(RemoteError) as info:
            decode(root, LOSSLESS)
    assert info.value.status == 500
    _assert_names(info.value, url)


def test_zarr_persistent_500_in_the_middle_of_a_read(
    remote: Remote, golden_zarr: Any, short_pauses: RetryPolicy
):
    url = remote.upload(golden_zarr(LOSSLESS, 3), "l.zarr")
    with remote.open(url, retries=NO_BOTOCORE_RETRY) as root:
        remote.arm("status", None, status=500, methods={"GET"})
        with pytest.raises(RemoteError) as info:
            decode(root, LOSSLESS)
    assert info.value.status == 500
    _assert_names(info.value, url)


@pytest.mark.parametrize("engine", ["hdf5", "zarr"])
def test_hang_becomes_a_timeout_error(
    remote: Remote, golden_zarr: Any, engine: str, quick_policy: RetryPolicy
):
    """Every GET hangs: botocore's read timeout (0.25 s) and s3fs's retries alone
    would take most of a minute (75 tries); skelstore cancels each attempt after
    0.75 s."""
    local = GOLDEN_DIR / UNSEG if engine == "hdf5" else golden_zarr(UNSEG, 3)
    url = remote.upload(local, local.name)
    remote.arm("hang", None, seconds=120, methods={"GET"})
    t0 = time.monotonic()
    opts = remote.options(read_timeout=0.25, connect_timeout=0.25)
    with (
        pytest.raises(RemoteTimeoutError) as info,
        skelstore.open(url, storage_options=opts) as root,
    ):
        decode(root, UNSEG)
    elapsed = time.monotonic() - t0
    assert elapsed < BOUND
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, RemoteError)
    assert info.value.attempts == quick_policy.attempts
    _assert_names(info.value, url)


def test_persistent_dropped_connections_raise_remote_error(
    remote: Remote, quick_policy: RetryPolicy
):
    url = remote.upload(GOLDEN_DIR / UNSEG, UNSEG)
    remote.arm("drop", None, methods={"GET"})
    t0 = time.monotonic()
    with pytest.raises(RemoteError) as info, remote.open(url) as root:
        decode(root, UNSEG)
    assert time.monotonic() - t0 < BOUND
    _assert_names(info.value, url)


@pytest.mark.parametrize("engine", ["hdf5", "zarr"])
def test_forbidden_is_permanent_and_not_retried(remote: Remote, golden_zarr: Any, engine: str):
    local = GOLDEN_DIR / UNSEG if engine == "hdf5" else golden_zarr(UNSEG, 3)
    url = remote.upload(local, local.name)
    remote.arm("status", None, status=403, methods={"GET"})
    with pytest.raises(RemoteAccessError) as info, remote.open(url) as root:
        decode(root, UNSEG)
    assert isinstance(info.value, PermissionError)
    assert info.value.status == 403
    _assert_names(info.value, url)
    gets = [n for key, n in remote.counts()["by_path"].items() if key.startswith("GET ")]
    assert gets and set(gets) == {1}  # nobody retried


def test_object_deleted_while_reading(remote: Remote, padded_h5: Path):
    """A 404 after the open is a RemoteError ("vanished"), not NotFoundError (which
    readers take for a missing group); before the open it is NotFoundError."""
    url = remote.upload(padded_h5, "padded.h5")
    with remote.open(url) as root:
        fsspec.filesystem("s3", **remote.direct).rm(url)
        with pytest.raises(RemoteError, match="vanished") as info:
            decode(root, LOSSLESS)
    assert not isinstance(info.value, NotFoundError) and info.value.status == 404
    _assert_names(info.value, url)
    with pytest.raises(NotFoundError):
        remote.open(url)


# ---------------------------------------------------------------- plain HTTP


def test_http_has_only_skelstore_retries(http_dir: tuple[Path, str]):
    """fsspec's HTTP filesystem does not retry: a 503 reaches skelstore, which does."""
    directory, base = http_dir
    shutil.copyfile(GOLDEN_DIR / UNSEG, directory / UNSEG)
    with CountingProxy(base.rsplit("/", 1)[0]) as proxy:
        url = f"{proxy.url}/{base.rsplit('/', 1)[1]}/{UNSEG}"
        proxy.fail_next(2, 503, methods={"GET"})
        with skelstore.open(url) as root:
            got = decode(root, UNSEG)
        assert proxy.snapshot()["faults"] == {"status": 2}
        proxy.fail_next(None, 500, methods={"GET"})
        with pytest.raises(RemoteError) as info:
            skelstore.open(url)
        assert info.value.status == 500 and info.value.attempts == 3
    assert_rows_equal(got, load_expected(UNSEG))


# ---------------------------------------------------------------- the policy itself


def test_classify_tells_transient_from_permanent():
    assert classify(TimeoutError("slow")) == (True, True, None)
    assert classify(ConnectionResetError())[:2] == (True, True)
    assert classify(FileNotFoundError("x"))[:2] == (True, False)
    assert classify(PermissionError("x"))[:2] == (True, False)
    assert classify(ValueError("a bug"))[0] is False  # not a storage failure: raised as is

    class Response(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(f"HTTP {status}")
            self.status = status

    assert classify(Response(503)) == (True, True, 503)
    assert classify(Response(429)) == (True, True, 429)
    assert classify(Response(403)) == (True, False, 403)
    wrapped = OSError(5, "I/O error")
    wrapped.__cause__ = Response(500)
    assert classify(wrapped) == (True, True, 500)


def test_policy_is_bounded():
    policy = RetryPolicy(attempts=3, backoff=0.25, max_backoff=4.0, timeout=30.0)
    assert [policy.pause(1) <= 0.25, policy.pause(2) <= 0.5, policy.pause(9) <= 4.0] == [True] * 3
    assert policy.attempt_timeout(512 * 1024) == pytest.approx(31.0)
    assert RetryPolicy(timeout=None).attempt_timeout(10**9) is None
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_rangefile_reads_at_offsets(tmp_path: Path):
    """``read_at`` reads without the shared position (what threads use)."""
    data = bytes(range(256)) * 4096
    (tmp_path / "f.bin").write_bytes(data)
    fs = fsspec.filesystem("file")
    f = RangeCacheFile(fs, str(tmp_path / "f.bin"), whole_below=0, block_size=4096)
    assert f.read_at(5000, 10) == data[5000:5010]
    f.prefetch([(100_000, 200_000), (300_000, 310_000)])
    assert f.read_at(150_000, 1000) == data[150_000:151_000]
    assert f.requests >= 2 and f.cached_bytes() >= 110_000
