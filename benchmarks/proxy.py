"""A loopback HTTP reverse proxy that adds latency and counts requests and bytes.

``tc netem`` is not available on this machine kind, so latency is injected here:
every request waits ``latency`` seconds before it is forwarded. Used in front of
the S3 test server (moto) by ``benchmarks/remote.py``. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length",
        "host", "server", "date"}


class CountingProxy:
    """Forward everything to ``upstream`` (``http://127.0.0.1:PORT``), counting.

    Attributes:
        requests: Counter of requests by HTTP method.
        bytes_out: response body bytes sent to clients.
    """

    def __init__(self, upstream: str, latency: float = 0.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.latency = latency
        self.requests: Counter[str] = Counter()
        self.bytes_out = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_out = 0

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": sum(self.requests.values()), "by_method": dict(self.requests),
                    "bytes": self.bytes_out}

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        url = self.upstream + request.path_qs
        async with self._session.request(
            request.method, url, headers=headers, data=body or None, allow_redirects=False
        ) as up:
            payload = await up.read()
            out_headers = {k: v for k, v in up.headers.items() if k.lower() not in _HOP}
            with self._lock:
                self.requests[request.method] += 1
                self.bytes_out += len(payload)
            if request.method == "HEAD":  # keep the size HEAD reports; no body
                out_headers["Content-Length"] = up.headers.get("Content-Length", "0")
                return web.Response(status=up.status, headers=out_headers)
            return web.Response(status=up.status, body=payload, headers=out_headers)

    def stop(self) -> None:
        async def _stop() -> None:
            await self._session.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
