"""Data safety on object storage (issue 13, items 11 and 12), against real servers on
127.0.0.1 (moto's S3, fake-gcs-server) and the fault-injecting loopback proxy.

* a not-found decided from a listing fsspec cached earlier in the process is
  confirmed against the store (S3 and GCS);
* remote writes are bounded in time like reads (a stalled server: a typed
  :class:`~skelstore.errors.RemoteTimeoutError` after the policy's attempts), the
  limits configurable (``SKELSTORE_REMOTE_TIMEOUT``/``SKELSTORE_REMOTE_ATTEMPTS``);
* a refused connection is a :class:`~skelstore.errors.RemoteError`, not "no such
  object";
* ``gs://`` without credentials fails at once with an access error, without probing
  for a metadata server.

The time limits here are set low (about a second an attempt); no assertion is timed:
what is checked is the typed error and how many requests were tried.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from servers import CountingProxy

import skelstore
from skelstore import rangefile
from skelstore.conversion import convert
from skelstore.corpus.sources import expand_sources
from skelstore.dump import write_shots
from skelstore.errors import (
    NotFoundError,
    RemoteAccessError,
    RemoteError,
    RemoteTimeoutError,
    SkelstoreError,
)
from skelstore.io import UnsegmentedReader
from skelstore.rangefile import RetryPolicy
from skelstore.sample import sample_frames
from skelstore.urls import with_defaults

GOLDEN = Path(__file__).parent / "data" / "golden"
UNSEG = GOLDEN / "unseg_body25.h5"
#: How long a hung request is held by the proxy (well beyond the 1 s limits here;
#: short, so that the proxy can stop at the end of the session).
HANG = 8.0


def _write(url: str, options: dict[str, Any]) -> None:
    with skelstore.open(url, "w", storage_options=options) as root:
        write_shots(root, 25, sample_frames())


# ---------------------------------------------------------------- stale listings


@pytest.fixture(params=["s3", "gcs"])
def bucket(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """``(gs|s3://bucket, storage options)`` on a fresh bucket of each server."""
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        name = request.getfixturevalue("s3_bucket")
        return f"s3://{name}", server.storage_options()
    server = request.getfixturevalue("gcs_server")
    name = request.getfixturevalue("gcs_bucket")
    return f"gs://{name}", server.storage_options()


def test_objects_uploaded_by_another_client_are_found(bucket: tuple[str, dict[str, Any]]) -> None:
    """Before: after this process listed the bucket (a glob, a write), an object
    another client uploaded later was "no such object" for as long as it ran."""
    base, options = bucket
    _write(f"{base}/a.zarr", options)
    _write(f"{base}/b.h5", options)
    assert expand_sources([f"{base}/*"], options) == [f"{base}/a.zarr", f"{base}/b.h5"]
    proto, name = base.split("://")
    other = fsspec.filesystem(proto, skip_instance_cache=True, **options)  # another client
    for key in ("later.h5", "later.bin"):  # by suffix, and sniffed
        other.put(str(UNSEG), f"{name}/{key}")
    for key in ("later.h5", "later.bin"):
        with skelstore.open(f"{base}/{key}", storage_options=options) as root:
            assert len(list(UnsegmentedReader(root))) == 300
    convert(f"{base}/later.h5", f"{base}/later.zarr", storage_options=options, verify=True)
    # appending to it must not start a new file over the other client's object
    with skelstore.open(f"{base}/later.h5", "a", storage_options=options) as root:
        root.attrs["note"] = "appended"
    with skelstore.open(f"{base}/later.h5", storage_options=options) as root:
        assert root.attrs["note"] == "appended" and len(list(UnsegmentedReader(root))) == 300
    with pytest.raises(NotFoundError):  # a real not-found is still one
        skelstore.open(f"{base}/never.h5", storage_options=options)


# ---------------------------------------------------------------- stalled writes


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> RetryPolicy:
    """A short-fused default policy (2 attempts of about a second)."""
    policy = RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.1, timeout=1.0, min_rate=2**30)
    monkeypatch.setattr(rangefile, "default_retry", lambda: policy)
    return policy


@pytest.fixture
def stalled(s3_server: Any, s3_bucket: str, fault_proxy: Any) -> Iterator[tuple[str, dict]]:
    """``(bucket, options)``: S3 through the proxy, every upload (PUT, POST) held."""
    fault_proxy.inject(
        "hang", count=None, seconds=HANG, path_contains=s3_bucket, methods={"PUT", "POST"}
    )
    options = {**s3_server.storage_options(), "endpoint_url": fault_proxy.url}
    options["config_kwargs"] = {"retries": {"mode": "standard", "total_max_attempts": 1}}
    yield s3_bucket, options
    fault_proxy.clear_faults()


def _held(proxy: Any, bucket: str) -> int:
    return proxy.snapshot(path_contains=bucket)["faults"].get("hang", 0)


@pytest.mark.parametrize("suffix", [".h5", ".zarr", ".zarr.zip"])
def test_stalled_remote_write_fails_typed_and_bounded(
    quick: RetryPolicy, stalled: tuple[str, dict], fault_proxy: Any, suffix: str
) -> None:
    """Before: no time limit (convert to s3:// ran for over 1000 s)."""
    bucket, options = stalled
    url = f"s3://{bucket}/x{suffix}"
    with pytest.raises(SkelstoreError) as info:
        _write(url, options)
    exc = info.value
    kept = re.search(r"kept at (\S+)", str(exc))  # what was written is kept: not here
    if kept:  # in a directory of its own (skelstore-kept-*): never anything else
        parent = os.path.dirname(kept.group(1))
        assert os.path.basename(parent).startswith("skelstore-kept-"), parent
        shutil.rmtree(parent)
    timeout = exc if isinstance(exc, RemoteTimeoutError) else exc.__cause__
    assert isinstance(timeout, RemoteTimeoutError), repr(exc)
    assert f"s3://{bucket}/x" in str(exc) and f"after {quick.attempts} attempts" in str(exc)
    assert 1 <= _held(fault_proxy, bucket) <= quick.attempts  # one request, tried twice


def test_stalled_convert_to_s3_fails_typed(
    quick: RetryPolicy, stalled: tuple[str, dict], fault_proxy: Any, tmp_path: Path
) -> None:
    bucket, options = stalled
    for dst in (f"s3://{bucket}/c.h5", f"s3://{bucket}/c.zarr"):
        with pytest.raises(RemoteTimeoutError, match="upload timed out after 2 attempts"):
            convert(UNSEG, dst, storage_options=options)
    assert 1 <= _held(fault_proxy, bucket) <= 100  # bounded: no retry loop of its own
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_remote_limits_from_the_environment(
    s3_server: Any, s3_bucket: str, fault_proxy: Any, tmp_path: Path
) -> None:
    """The command line takes the limits from SKELSTORE_REMOTE_TIMEOUT/_ATTEMPTS."""
    fault_proxy.inject("hang", count=None, seconds=HANG, path_contains=s3_bucket, methods={"PUT"})
    env = {**os.environ, "SKELSTORE_REMOTE_TIMEOUT": "1", "SKELSTORE_REMOTE_ATTEMPTS": "3"}
    opts = [
        f"endpoint_url={fault_proxy.url}",
        "key=testing",
        "secret=testing",
        'config_kwargs={"retries": {"mode": "standard", "total_max_attempts": 1}}',
    ]
    args = [a for o in opts for a in ("-o", o)]
    proc = subprocess.run(
        [sys.executable, "-m", "skelstore", *args, "convert", str(UNSEG), f"s3://{s3_bucket}/e.h5"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    fault_proxy.clear_faults()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        line for line in proc.stderr.strip().splitlines() if line.startswith("skelstore: error:")
    ]
    assert "timed out after 3 attempts" in proc.stderr
    assert _held(fault_proxy, s3_bucket) == 3
    with pytest.raises(ValueError, match="SKELSTORE_REMOTE_ATTEMPTS"):
        RetryPolicy.from_env({"SKELSTORE_REMOTE_ATTEMPTS": "0"})
    assert RetryPolicy.from_env({"SKELSTORE_REMOTE_TIMEOUT": "none"}).timeout is None
    assert RetryPolicy.from_env({}) == RetryPolicy()


# ---------------------------------------------------------------- refused connections


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("name", ["x.h5", "x.zarr", "x"])
def test_refused_connection_is_not_no_such_object(
    quick: RetryPolicy, closed_port: int, name: str
) -> None:
    """Before: "no such object" for .h5, an untyped ClientConnectorError without a suffix."""
    url = f"http://127.0.0.1:{closed_port}/{name}"
    with pytest.raises(RemoteError) as info:
        skelstore.open(url)
    assert not isinstance(info.value, NotFoundError)
    assert f"127.0.0.1:{closed_port}" in str(info.value)


# ---------------------------------------------------------------- gs:// credentials


class _Canary:
    """A loopback listener that records whether anything connected to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def no_google_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Canary]:
    """No Google credentials anywhere; a metadata-server canary on loopback (so that
    even a probe would stay on this machine)."""
    canary = _Canary()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(home / "gcloud"))
    monkeypatch.setenv("GCE_METADATA_HOST", canary.address)
    monkeypatch.setenv("GCE_METADATA_IP", canary.address)
    monkeypatch.delenv("NO_GCE_CHECK", raising=False)
    yield canary
    canary.close()


def test_gcs_without_credentials_is_anonymous_at_once(
    no_google_credentials: _Canary, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert with_defaults("gs://b/x.h5", {})["token"] == "anon"
    assert with_defaults("gs://b/x.h5", {"token": "cloud"})["token"] == "cloud"
    assert "token" not in with_defaults("s3://b/x.h5", {})
    creds = tmp_path / "sa.json"
    creds.write_text("{}")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(creds))
    assert "token" not in with_defaults("gs://b/x.h5", {})  # gcsfs finds them itself


@pytest.fixture(scope="session")
def gcs_proxy(gcs_server: Any) -> Iterator[Any]:
    """A :class:`servers.CountingProxy` in front of ``gcs_server``, for the session
    (stopped at its end, like ``s3_proxy``: its event loop is not closed before)."""
    proxy = CountingProxy(gcs_server.url)
    try:
        yield proxy
    finally:
        proxy.stop()


def test_gcs_write_without_credentials_fails_at_once(
    no_google_credentials: _Canary, gcs_proxy: Any, gcs_bucket: str
) -> None:
    """Before: minutes probing for credentials, ~18 lines; now one access error, and
    no metadata server was asked."""
    proxy = gcs_proxy  # a server that wants credentials
    proxy.inject(
        "status", count=None, status=401, methods={"POST", "PUT"}, path_contains=gcs_bucket
    )
    try:
        options = {"endpoint_url": proxy.url, "project": "test"}  # no token
        env = {**os.environ, "SKELSTORE_REMOTE_TIMEOUT": "5", "SKELSTORE_REMOTE_ATTEMPTS": "2"}
        args = [a for o in (f"endpoint_url={proxy.url}", "project=test") for a in ("-o", o)]
        dst = f"gs://{gcs_bucket}/{uuid.uuid4().hex}.h5"
        proc = subprocess.run(
            [sys.executable, "-m", "skelstore", *args, "convert", str(UNSEG), dst],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "access denied" in lines[0] and dst in lines[0], lines
        with pytest.raises(RemoteAccessError):  # in process too, not retried
            _write(f"gs://{gcs_bucket}/{uuid.uuid4().hex}.zarr", options)
    finally:
        proxy.clear_faults()
    assert no_google_credentials.connections == 0
