"""Fixtures shared by the whole suite.

``target`` is parametrised over every storage kind a dump can live on; it yields a
factory ``make(name=None) -> (url, open_kwargs)`` that gives a fresh target on each
call, so a test writes with ``skelstore.open(url, "w", **open_kwargs)`` and reads
back with ``skelstore.open(url, "r")``.
"""

from __future__ import annotations

import os

# gcsfs reads this when it is first imported; left on, it hangs ~60 s per bucket
# against fake-gcs-server (it probes the bucket type over gRPC).
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dumputil import GOLDEN_DIR, STORAGE_KINDS, clear_memory_fs, make_target
from servers import GCSServer, HTTPServer, S3Server

TargetFactory = Callable[..., tuple[str, dict[str, Any]]]


@pytest.fixture
def golden_dir() -> Path:
    """The directory of the golden skelshop dumps and their expected decodings."""
    return GOLDEN_DIR


@pytest.fixture(autouse=True)
def _restore_settings() -> Iterator[None]:
    """Settings a test changes (``skelstore.set_options``) end with the test."""
    import skelstore

    with skelstore.set_options():
        yield


@pytest.fixture(autouse=True)
def _clean_memory_fs() -> Iterator[None]:
    """Every test starts and ends with an empty ``memory://`` filesystem."""
    clear_memory_fs()
    yield
    clear_memory_fs()


@pytest.fixture(params=STORAGE_KINDS)
def storage_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def target(storage_kind: str, tmp_path: Path) -> Iterator[TargetFactory]:
    """A factory of fresh ``(url, open_kwargs)`` pairs of one storage kind."""

    def make(name: str | None = None) -> tuple[str, dict[str, Any]]:
        return make_target(storage_kind, tmp_path, name)

    make.kind = storage_kind  # type: ignore[attr-defined]
    yield make


# ---------------------------------------------------------------- cloud servers
#
# Real servers on 127.0.0.1 (see servers.py): one of each per session, a fresh
# bucket (or served directory) per test, fsspec's caches invalidated around each.


def invalidate_fsspec_caches() -> None:
    """Drop the listing caches of every cached fsspec filesystem instance.

    zarr makes its own (async) instances, so what it writes never refreshes the
    listings cached by the instances tests use, and instances outlive a test.
    ``clear_instance_cache()`` is avoided: it leaves unclosed aiohttp sessions.
    """
    import fsspec.spec

    seen: set[type] = set()
    stack = [fsspec.spec.AbstractFileSystem]
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        for fs in list(cls.__dict__.get("_cache", {}).values()):
            fs.invalidate_cache()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 on 127.0.0.1, for the whole session."""
    server = S3Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    """fake-gcs-server on 127.0.0.1, for the whole session."""
    server = GCSServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HTTPServer]:
    """A read-only static HTTP server over a session temporary directory
    (``http_server.directory``); tests copy files into it (see ``http_dir``)."""
    server = HTTPServer(tmp_path_factory.mktemp("http-root")).start()
    try:
        yield server
    finally:
        server.stop()


def _bucket_name() -> str:
    return f"skel-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh, empty S3 bucket (its name); moto is reset afterwards."""
    invalidate_fsspec_caches()
    name = s3_server.make_bucket(_bucket_name())
    yield name
    invalidate_fsspec_caches()
    s3_server.reset()


@pytest.fixture
def gcs_bucket(gcs_server: GCSServer) -> Iterator[str]:
    """A fresh, empty GCS bucket (its name)."""
    invalidate_fsspec_caches()
    name = gcs_server.make_bucket(_bucket_name())
    yield name
    invalidate_fsspec_caches()


@pytest.fixture
def http_dir(http_server: HTTPServer) -> Iterator[tuple[Path, str]]:
    """``(directory, url)``: a fresh directory served by ``http_server`` and its URL."""
    invalidate_fsspec_caches()
    name = uuid.uuid4().hex[:12]
    directory = http_server.directory / name
    directory.mkdir()
    yield directory, http_server.url_for(name)
    invalidate_fsspec_caches()


# ---------------------------------------------------------------- fault injection


@pytest.fixture(scope="session")
def s3_proxy(s3_server: S3Server) -> Iterator[Any]:
    """A :class:`servers.CountingProxy` in front of ``s3_server``, for the session."""
    from servers import CountingProxy

    proxy = CountingProxy(s3_server.endpoint_url)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def fault_proxy(s3_proxy: Any) -> Iterator[Any]:
    """``s3_proxy`` with no faults armed and its counters at zero (also afterwards)."""
    s3_proxy.clear_faults()
    s3_proxy.reset()
    yield s3_proxy
    s3_proxy.clear_faults()
    s3_proxy.reset()
