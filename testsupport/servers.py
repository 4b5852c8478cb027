"""In-process uvicorn servers for tests and benchmarks: pages, stand-in sites and proxies on loopback addresses.

The bridge itself is never served from here where a test means the product: that is `BridgeProcess`, the real
`cookiebridge serve` process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Sequence

import uvicorn

# One definition of a demo or test server: the demo's (it needs only uvicorn, not the demo's certificates).
from cookiebridge.demo.servers import CertificatePair, https_server

__all__ = ["CertificatePair", "ServerThread", "https_server"]


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
