"""A loopback HTTP reverse proxy that adds latency, counts requests and bytes, and
injects faults.

``tc netem`` is not available on this machine kind, so latency is injected here:
every request waits ``latency`` seconds before it is forwarded. Used in front of
the S3 test server (moto) by ``benchmarks/remote.py``, and by the fault tests
(``tests/test_faults.py``, through ``tests/servers.py``). Binds 127.0.0.1 only.

Faults (:meth:`CountingProxy.inject`), each for the next ``count`` matching
requests (``None``: until :meth:`CountingProxy.clear_faults`) or for a seeded
random ``fraction`` of them:

* ``status``: answer ``500``/``503``/... at once (an S3-style XML error body,
  no body for HEAD) without forwarding;
* ``hang``: wait ``seconds`` before forwarding (longer than a client's timeout:
  the client gives up first);
* ``drop``: close the connection without answering.

Every request received is counted, faulted or not (``requests`` by method;
``faults`` by kind), so a test sees how many attempts a client made;
``snapshot(path_contains=...)`` counts only the requests for some paths (a test's
own bucket), unaffected by stragglers of earlier tests.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-encoding",
    "content-length",
    "host",
    "server",
    "date",
}

_REASONS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "Service Unavailable"),
    504: ("GatewayTimeout", "Gateway timeout."),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
}

FAULT_KINDS = ("status", "hang", "drop")


@dataclass
class Fault:
    """One injected fault; see :meth:`CountingProxy.inject`."""

    kind: str
    status: int = 503
    seconds: float = 0.0
    count: int | None = 1  # matching requests still to fault; None: every one
    fraction: float | None = None  # fault each matching request with this probability
    methods: frozenset[str] | None = None  # e.g. {"GET"}; None: any method
    path_contains: str | None = None  # only requests whose path contains this
    ranged: bool | None = None  # True: only requests with a Range header; False: without
    rng: random.Random = field(default_factory=random.Random)

    def matches(self, request: web.Request) -> bool:
        if self.methods is not None and request.method not in self.methods:
            return False
        if self.path_contains is not None and self.path_contains not in request.path:
            return False
        return self.ranged is None or ("Range" in request.headers) == self.ranged


class CountingProxy:
    """Forward everything to ``upstream`` (``http://127.0.0.1:PORT``), counting.

    Attributes:
        requests: Counter of requests received, by HTTP method (faulted ones too).
        faults: Counter of injected faults, by kind.
        bytes_out: response body bytes sent to clients.
    """

    def __init__(self, upstream: str, latency: float = 0.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.latency = latency
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.bytes_out = 0
        self._log: deque[tuple[str, str, str | None]] = deque(maxlen=1_000_000)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="counting-proxy")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- counting ----------------------------------------------------------
    def reset(self) -> None:
        """Zero the counters (faults stay armed)."""
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.bytes_out = 0
            self._log.clear()

    def snapshot(self, path_contains: str | None = None) -> dict[str, Any]:
        """Counts since the last :meth:`reset`: ``requests``, ``by_method``,
        ``faults`` (by kind) and ``bytes``; with ``path_contains``, only of the
        requests whose path contains it (then ``by_path`` instead of ``bytes``)."""
        with self._lock:
            if path_contains is None:
                return {
                    "requests": sum(self.requests.values()),
                    "by_method": dict(self.requests),
                    "bytes": self.bytes_out,
                    "faults": dict(self.faults),
                }
            log = [(m, p, k) for m, p, k in self._log if path_contains in p]
        return {
            "requests": len(log),
            "by_method": dict(Counter(m for m, _, _ in log)),
            "by_path": dict(Counter(f"{m} {p}" for m, p, _ in log)),
            "faults": dict(Counter(k for _, _, k in log if k is not None)),
        }

    # -- faults -----------------------------------------------------------
    def inject(
        self,
        kind: str,
        *,
        count: int | None = 1,
        fraction: float | None = None,
        status: int = 503,
        seconds: float = 30.0,
        seed: int = 0,
        methods: Any = None,
        path_contains: str | None = None,
        ranged: bool | None = None,
    ) -> Fault:
        """Arm a fault for the next ``count`` matching requests (``None``: all of them).

        With ``fraction``, each matching request is faulted with that probability
        (a ``random.Random(seed)`` draw per request; ``count`` still caps the total).
        Faults are tried in the order armed; the first that takes a request wins.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        fault = Fault(
            kind,
            status=status,
            seconds=seconds,
            count=count,
            fraction=fraction,
            methods=frozenset(m.upper() for m in methods) if methods else None,
            path_contains=path_contains,
            ranged=ranged,
            rng=random.Random(seed),
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail_next(self, n: int | None = 1, status: int = 503, **match: Any) -> Fault:
        """Answer ``status`` to the next ``n`` matching requests."""
        return self.inject("status", count=n, status=status, **match)

    def fail_fraction(
        self, fraction: float, status: int = 503, seed: int = 0, **match: Any
    ) -> Fault:
        """Answer ``status`` to a seeded random ``fraction`` of matching requests."""
        return self.inject(
            "status", count=None, fraction=fraction, status=status, seed=seed, **match
        )

    def hang_next(self, n: int | None = 1, seconds: float = 30.0, **match: Any) -> Fault:
        """Hold the next ``n`` matching requests ``seconds`` before forwarding them."""
        return self.inject("hang", count=n, seconds=seconds, **match)

    def drop_next(self, n: int | None = 1, **match: Any) -> Fault:
        """Close the connection of the next ``n`` matching requests without answering."""
        return self.inject("drop", count=n, **match)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, request: web.Request) -> Fault | None:
        with self._lock:
            self.requests[request.method] += 1
            taken = None
            for fault in self._faults:
                if fault.count == 0 or not fault.matches(request):
                    continue
                if fault.fraction is not None and fault.rng.random() >= fault.fraction:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                self.faults[fault.kind] += 1
                taken = fault
                break
            self._log.append((request.method, request.path, taken.kind if taken else None))
            return taken

    # -- serving ----------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = self._take_fault(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        body = await request.read()
        if fault is not None:
            if fault.kind == "status":
                return _error_response(request, fault.status)
            if fault.kind == "drop":
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError  # nothing more to send on this connection
            await asyncio.sleep(fault.seconds)  # "hang": the client gives up first
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        url = self.upstream + request.path_qs
        async with self._session.request(
            request.method, url, headers=headers, data=body or None, allow_redirects=False
        ) as up:
            payload = await up.read()
            out_headers = {k: v for k, v in up.headers.items() if k.lower() not in _HOP}
            with self._lock:
                self.bytes_out += len(payload)
            if request.method == "HEAD":  # keep the size HEAD reports; no body
                out_headers["Content-Length"] = up.headers.get("Content-Length", "0")
                return web.Response(status=up.status, headers=out_headers)
            return web.Response(status=up.status, body=payload, headers=out_headers)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def _stop() -> None:
            await self._session.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _error_response(request: web.Request, status: int) -> web.Response:
    """An S3-style error (what botocore parses) with HTTP status ``status``."""
    code, message = _REASONS.get(status, ("InjectedError", "injected fault"))
    if request.method == "HEAD":
        return web.Response(status=status)
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><Resource>{request.path}</Resource>"
        "<RequestId>injected</RequestId></Error>"
    )
    return web.Response(status=status, body=body.encode(), content_type="application/xml")
