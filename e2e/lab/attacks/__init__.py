"""The attack lab: hostile frames and messages against the real bridge iframe, and a bridge that misbehaves. Pages
and scripts are files beside this module; `running_lab()` starts the servers (conftest.py's `lab` fixture, once
per run).

  bridge      https://127.0.0.1:P1   a real `cookiebridge serve` trusting the two lab sites below
  probe       https://127.0.0.1:P2   that bridge behind `forwarding_proxy` with probe.js: no CSP, and a script at
                                     the top of iframe.html that counts messages, records uncaught errors and
                                     prototype pollution inside the iframe and reports them on {cbProbe: 'report'}
  faulty      https://127.0.0.1:P3   a stand-in bridge that is slow (/slow/...) or fails (/error/..., /unavailable/...;
                                     the latter serves the real scripts, so the provider's API script loads)
  site a, b   https://127.0.0.2:T, https://127.0.0.3:T   trusted lab sites (page.html as /harness, /attacker,
                                     /victim; lab.js)
  evil        https://127.0.0.4:T    untrusted
  look-alikes https://127.0.0.22:T (host with the trusted one as prefix), https://127.0.0.2:T1 (port with the
              trusted one as prefix: T1 = 10 T + 1), both serving hostile.html (`hostile_app`)

Where a test runs the bridge without CSP (the probe), the iframe script's own origin and source checks stand alone.
`hostile_app` and `forwarding_proxy` also serve the main e2e topology (conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from cookiebridge.assets import IFRAME_PAGE, build_assets
from e2e.drivers import Session
from e2e.lab import render
from e2e.topology import COOKIE, IDENTITY_SECRET, SECRET, bridge_args
from testsupport import BridgeProcess, ServerThread, free_port, https_server
from testsupport.servers import CertificatePair

FILES = Path(__file__).parent
TIMEOUT_MS = 1000  # the providers' timeout in these tests
SLOW_SECONDS = 4.0  # how long the faulty bridge keeps a "slow" request: far beyond TIMEOUT_MS


def script(name: str) -> str:
    """A script of this folder, e.g. the body a test passes to `Session.evaluate`."""
    return (FILES / name).read_text()


def _page(head: str = "", body: str = "") -> HTMLResponse:
    return HTMLResponse(render("attacks/page.html", head=head, body=body), headers={"Cache-Control": "no-store"})


@dataclass(frozen=True)
class Lab:
    bridge: str
    probe: str
    faulty: str
    site_a: str
    site_b: str
    evil: str
    look_alike_host: str
    look_alike_port: str
    certs: CertificatePair
    work: Path

    def harness(self, site: str) -> str:
        return f"{site}/harness"


def lab_pages(bridge: str) -> Starlette:
    """The lab sites: every origin serves the same pages; `/lab.js` is fetched from the page's own origin."""
    provider = f'<script src="{bridge}/cookie-provider.min.js"></script>'

    async def lab_js(request: Request) -> Response:
        return Response(script("lab.js"), media_type="text/javascript", headers={"Access-Control-Allow-Origin": "*"})

    async def harness(request: Request) -> Response:
        return _page(head=provider)

    async def attacker(request: Request) -> Response:
        return _page(body="<script>lab.attack(JSON.parse(decodeURIComponent(location.hash.slice(1))));</script>")

    async def victim(request: Request) -> Response:
        return _page(head=provider, body=f"<script>\n{script('victim.js')}</script>")

    return Starlette(routes=[Route("/lab.js", lab_js), Route("/harness", harness), Route("/attacker", attacker),
                             Route("/victim", victim)])


def hostile_app(name: str) -> Starlette:
    """An attacker's site: `/?iframe=URL` serves hostile.html against the bridge iframe at URL, for cookie `name`."""

    async def page(request: Request) -> Response:
        iframe_url = request.query_params["iframe"]
        html = render("attacks/hostile.html", bridge=iframe_url.rsplit("/", 1)[0], iframe_url=json.dumps(iframe_url),
                      name=json.dumps(name))
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    return Starlette(routes=[Route("/", page)])


def forwarding_proxy(upstream: str, *, probe: bool = False) -> Starlette:
    """Forwards GETs to the bridge at `upstream` and drops its Content-Security-Policy, so the iframe script's own
    checks stand alone; with `probe`, probe.js runs at the top of iframe.html."""
    client = httpx.AsyncClient(base_url=upstream, verify=False)  # the test CA; loopback only
    dropped = {"content-security-policy", "content-length", "content-encoding", "transfer-encoding", "connection", "etag"}
    injected = f"<script>\n{script('probe.js')}</script>".encode() if probe else b""

    async def forward(request: Request) -> Response:
        answer = await client.get(request.url.path)
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in dropped}
        body = answer.content
        if injected and request.url.path == "/iframe.html":
            body = body.replace(b"<head>", b"<head>" + injected, 1)
        return Response(body, status_code=answer.status_code, headers=headers)

    return Starlette(routes=[Route("/{path:path}", forward)])


def faulty_bridge(trusted_origins: list[str]) -> Starlette:
    """A bridge origin that misbehaves: /slow/* answers after SLOW_SECONDS, /error/* with an HTML 500/502 (so the
    provider's API script does not load either), /unavailable/* with the bridge's own 503 JSON (CORS included, so
    the provider can read it) for the iframe page and the API, but the real built scripts, as `serve` sends them,
    for script paths: there the API script loads and meets the 503s."""
    scripts = {}
    for asset in build_assets(trusted_origins, [COOKIE], 3600):
        if asset.name != IFRAME_PAGE:
            scripts.update({url: (asset, immutable) for url, immutable in asset.urls.items()})

    async def handle(request: Request) -> Response:
        mode, path = request.path_params["mode"], request.path_params["path"]
        origin = request.headers.get("origin", "*")
        if mode == "unavailable" and path in scripts:
            asset, immutable = scripts[path]
            return Response(asset.body, headers=asset.response_headers(immutable=immutable))
        if mode == "slow":
            await anyio.sleep(SLOW_SECONDS)
            return HTMLResponse("<!doctype html><title>late</title>", headers={"Access-Control-Allow-Origin": origin})
        if mode == "error":
            return HTMLResponse("<h1>Internal Server Error</h1>", status_code=500 if path == "iframe.html" else 502,
                                headers={"Access-Control-Allow-Origin": origin})
        if path == "iframe.html":
            return HTMLResponse("<h1>Service Unavailable</h1>", status_code=503)
        return JSONResponse({"error": "unavailable", "message": "the bridge's store is unavailable; try again shortly"},
                            status_code=503, headers={"Access-Control-Allow-Origin": origin, "Retry-After": "5"})

    return Starlette(routes=[Route("/{mode}/{path:path}", handle, methods=["GET", "POST"])])


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _site_port() -> int:
    """A port T such that T and 10 T + 1 are free on every lab host: the look-alike port starts with T."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(2000, 6553)
        hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.22"]
        if all(_bindable(host, port) for host in hosts) and _bindable("127.0.0.2", port * 10 + 1):
            return port
    raise RuntimeError("no free port pair for the look-alike origins")


@contextlib.contextmanager
def running_lab(certs: CertificatePair, work: Path) -> Iterator[Lab]:
    """The lab's bridge process and servers, stopped on exit; logs and databases in `work`."""
    port = _site_port()
    site_a, site_b = f"https://127.0.0.2:{port}", f"https://127.0.0.3:{port}"
    env = {"COOKIEBRIDGE_SECRET_KEY": SECRET, "COOKIEBRIDGE_IDENTITY_SECRET": IDENTITY_SECRET}
    bridge = BridgeProcess(bridge_args(certs, [site_a, site_b], f"sqlite:///{work / 'bridge.db'}"), work / "bridge.log",
                           env=env, tls=True)
    with bridge:
        probe_port, faulty_port = free_port(), free_port()
        pages = lab_pages(bridge.url)
        servers = ServerThread([
            https_server(pages, "127.0.0.2", port, certs),
            https_server(pages, "127.0.0.3", port, certs),
            https_server(pages, "127.0.0.4", port, certs),
            https_server(hostile_app(COOKIE), "127.0.0.22", port, certs),
            https_server(hostile_app(COOKIE), "127.0.0.2", port * 10 + 1, certs),
            https_server(forwarding_proxy(bridge.url, probe=True), "127.0.0.1", probe_port, certs),
            https_server(faulty_bridge([site_a, site_b]), "127.0.0.1", faulty_port, certs),
        ]).start()
        try:
            yield Lab(bridge=bridge.url, probe=f"https://127.0.0.1:{probe_port}", faulty=f"https://127.0.0.1:{faulty_port}",
                      site_a=site_a, site_b=site_b, evil=f"https://127.0.0.4:{port}",
                      look_alike_host=f"https://127.0.0.22:{port}", look_alike_port=f"https://127.0.0.2:{port * 10 + 1}",
                      certs=certs, work=work)
        finally:
            servers.stop()


def no_page_errors(browser: Session) -> None:
    assert browser.evaluate("return window.__errors;") == []
