"""In-process uvicorn servers for tests and benchmarks: pages, stand-in sites and proxies on loopback addresses.

The bridge itself is never served from here where a test means the product: that is `BridgeProcess`, the real
`cookiebridge serve` process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Literal, Protocol, Sequence

import uvicorn
from starlette.types import ASGIApp


class CertificatePair(Protocol):
    """What a server needs of `cookiebridge.demo.certs.Certs`: the chain and its key, as PEM files."""

    cert_chain: Path
    key: Path


def https_server(app: ASGIApp, host: str, port: int, certs: CertificatePair | None, *, log_level: str = "warning",
                 lifespan: Literal["auto", "on", "off"] = "auto") -> uvicorn.Server:
    """A uvicorn server (not started) for `app` on host:port, over HTTPS with `certs`, plain HTTP without."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan=lifespan,
                            ssl_certfile=str(certs.cert_chain) if certs else None,
                            ssl_keyfile=str(certs.key) if certs else None)
    return uvicorn.Server(config)


class ServerThread:
    """Runs several uvicorn servers on one event loop in a background thread: `ServerThread([...]).start()`, then
    `stop()`."""

    def __init__(self, servers: Sequence[uvicorn.Server]) -> None:
        self.servers = list(servers)
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        await asyncio.gather(*(server.serve() for server in self.servers))

    def start(self, timeout: float = 15.0) -> "ServerThread":
        """Until every server listens; raise if one fails or `timeout` seconds pass."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not all(server.started for server in self.servers):
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("in-process test servers did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
        self.thread.join(timeout=10)
