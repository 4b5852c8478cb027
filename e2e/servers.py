"""In-process HTTPS servers for the end-to-end topology: the demo sites, hostile pages, a CSP-stripping proxy.

The bridge itself is never served from here: the tests start the real `cookiebridge serve` process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Sequence

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route



class ServerThread:
    """Runs several uvicorn servers on one event loop in a background thread."""

    def __init__(self, servers: Sequence[uvicorn.Server]) -> None:
        self.servers = list(servers)
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        await asyncio.gather(*(server.serve() for server in self.servers))

    def start(self, timeout: float = 15.0) -> "ServerThread":
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


# An attacker's page: our own client script pointed at the bridge, then hand-written protocol messages to a
# second copy of the iframe, as plain messages and on ports. Everything it learns ends up in window.__attack.
HOSTILE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>hostile</title>
<script src="{bridge}/cookie-provider.min.js"></script></head>
<body><script>
window.__attack = (async function () {{
  var iframeUrl = {iframe_url!r}, bridgeOrigin = new URL(iframeUrl).origin, replies = [];
  window.addEventListener('message', function (event) {{
    if (event.origin === bridgeOrigin) replies.push(event.data);
  }});
  var provider = new CookieProvider({name!r}, iframeUrl, {{ timeout: 1500 }});
  var loaded = await provider.loadCookie();
  var tested = await provider.cookieTest();
  var frame = document.createElement('iframe');
  frame.src = iframeUrl;
  document.body.appendChild(frame);
  await new Promise(function (resolve) {{ setTimeout(resolve, 800); }});
  var messages = [
    {{ cookiebridge: 1, id: 'h', op: 'hello' }},
    {{ cookiebridge: 1, id: 'g', op: 'get', name: {name!r} }},
    {{ cookiebridge: 1, id: 't', op: 'test' }},
    {{ cookiebridge: 1, id: 's', op: 'set', name: {name!r}, value: 'attacker-session' }},
    {{ cookiebridge: 1, id: 'r', op: 'remove', name: {name!r} }}
  ];
  // Each as a plain message (the shape an attacker might guess) and in the real protocol: a hello handing over a
  // port, then the request on that port with a port for its reply. Anything that comes back is recorded.
  messages.forEach(function (message) {{
    var session = new MessageChannel(), reply = new MessageChannel();
    session.port1.onmessage = reply.port1.onmessage = function (event) {{ replies.push(event.data); }};
    try {{
      frame.contentWindow.postMessage(message, '*');
      frame.contentWindow.postMessage({{ cookiebridge: 1, op: 'hello' }}, '*', [session.port2]);
      session.port1.postMessage(message, [reply.port2]);
    }} catch (e) {{ replies.push('post threw: ' + e); }}
  }});
  await new Promise(function (resolve) {{ setTimeout(resolve, 800); }});
  return {{ loaded: loaded, tested: tested, replies: replies, cookie: document.cookie }};
}})();
</script></body></html>"""


def hostile_app(name: str) -> Starlette:
    async def page(request: Request) -> Response:
        iframe_url = request.query_params["iframe"]
        bridge = iframe_url.rsplit("/", 1)[0]
        html = HOSTILE_PAGE.format(bridge=bridge, iframe_url=iframe_url, name=name)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    return Starlette(routes=[Route("/", page)])


def csp_stripping_proxy(upstream: str) -> Starlette:
    """Forwards to the bridge and drops its Content-Security-Policy, so the iframe script's own checks stand alone."""
    client = httpx.AsyncClient(base_url=upstream, verify=False)  # the test CA; loopback only
    dropped = {"content-security-policy", "content-length", "content-encoding", "transfer-encoding", "connection"}

    async def forward(request: Request) -> Response:
        upstream_response = await client.get(request.url.path)
        headers = {k: v for k, v in upstream_response.headers.items() if k.lower() not in dropped}
        return Response(upstream_response.content, status_code=upstream_response.status_code, headers=headers)

    return Starlette(routes=[Route("/{path:path}", forward)])
