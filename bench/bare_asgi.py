"""The least an ASGI app on uvicorn can do for a static file: one constant response, no routing, no negotiation.

    python bench/bare_asgi.py PORT FILE

The throughput benchmark runs it beside `serve` and nginx as the ceiling of any Python app on this server: how
far `serve` is from it is our code; how far it is from nginx is uvicorn's per-request cost.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn


def make_app(body: bytes):  # noqa: ANN201 - an ASGI callable
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    port, file = int(sys.argv[1]), Path(sys.argv[2])
    # As `serve` runs uvicorn (cli.run): no server header, no proxy headers, log level warning.
    uvicorn.run(make_app(file.read_bytes()), host="127.0.0.1", port=port, log_level="warning", server_header=False,
                proxy_headers=False, lifespan="off")


if __name__ == "__main__":
    main()
