"""Smoke tests of the driver layer: every (engine, policy) against small HTTPS sites on loopback addresses."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cookiebridge.demo.certs import Certs, make_certificates, ssl_context_for_client, ssl_context_for_server
from e2e import drivers

MATRIX = drivers.matrix()
MATRIX_IDS = [f"{engine}-{policy}" for engine, policy in MATRIX]

FRAME_HOST = "127.0.0.1"  # the hidden iframe's site, as the bridge will be
SITE_A_HOST = "127.0.0.2"
SITE_B_HOST = "127.0.0.3"

# A hidden third-party iframe that writes or reads a cookie when its parent asks by postMessage.
FRAME_PAGE = """<!doctype html><meta charset="utf-8"><title>frame</title><script>
const storage = () => { try { return localStorage; } catch (error) { return null; } };
addEventListener("message", async (event) => {
  if (event.data === "write") {
    document.cookie = "framed=1; SameSite=None; Secure; Path=/; Max-Age=600";
    if (storage()) storage().setItem("framed", "1");
  }
  parent.postMessage({cookie: document.cookie, storage: storage() && storage().getItem("framed")}, "*");
});
parent.postMessage("ready", "*");
</script>"""

TOP_PAGE = """<!doctype html><meta charset="utf-8"><title>top</title>
<iframe id="frame" style="display:none" src="{frame_origin}/frame"></iframe><script>
const ready = new Promise((resolve) => addEventListener("message", function onReady(event) {{
  if (event.data === "ready") {{ removeEventListener("message", onReady); resolve(); }}
}}));
window.askFrame = async (what) => {{
  await ready;
  return new Promise((resolve) => {{
    addEventListener("message", function onAnswer(event) {{
      if (event.data !== "ready") {{ removeEventListener("message", onAnswer); resolve(event.data); }}
    }});
    document.getElementById("frame").contentWindow.postMessage(what, "*");
  }});
}};
</script>"""

HOME_PAGE = """<!doctype html><meta charset="utf-8"><title>home</title>
<p id="host">{host}</p><a id="other" href="{other_origin}/">to the other site</a>
<button id="stay" onclick="this.textContent = 'clicked'">stay</button>
<a id="prevented" href="{other_origin}/"
   onclick="event.preventDefault(); this.textContent = 'prevented'">no</a>"""

DELAYED_PAGE = """<!doctype html><meta charset="utf-8"><title>delayed</title>
<script>setTimeout(() => {{ window.ready = "yes"; }}, 300);</script>"""


class _TLSServer(ThreadingHTTPServer):
    """HTTPS with the handshake in the per-request thread, so an idle preconnect cannot stall accept()."""

    daemon_threads = True

    def __init__(self, host: str, context: ssl.SSLContext, origins: dict[str, str]) -> None:
        super().__init__((host, 0), _Handler)
        self.context = context
        self.origins = origins

    def finish_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that gave up, or one that does not trust the certificate
        try:
            super().finish_request(tls, client_address)
        finally:
            self.shutdown_request(tls)  # the wrapper owns the descriptor now


class _Handler(BaseHTTPRequestHandler):
    server: _TLSServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        headers: list[tuple[str, str]] = []
        origins = self.server.origins
        host = self.headers.get("Host", "")
        if url.path == "/frame":
            body = FRAME_PAGE
        elif url.path == "/top":
            body = TOP_PAGE.format(frame_origin=origins[FRAME_HOST])
        elif url.path == "/delayed":
            body = DELAYED_PAGE.format()
        elif url.path == "/set-cookie":
            headers.append(("Set-Cookie", "smoke=1; Path=/; Max-Age=600; SameSite=Lax; Secure"))
            body = "<!doctype html><title>cookie set</title>"
        else:
            other = SITE_B_HOST if host.startswith(SITE_A_HOST) else SITE_A_HOST
            body = HOME_PAGE.format(host=query.get("host", [host])[0], other_origin=origins[other])
        self._send(body.encode(), headers)

    def _send(self, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@dataclass(frozen=True)
class Sites:
    certs: Certs
    origins: dict[str, str]  # host -> "https://host:port"

    @property
    def a(self) -> str:
        return self.origins[SITE_A_HOST]

    @property
    def b(self) -> str:
        return self.origins[SITE_B_HOST]

    @property
    def frame(self) -> str:
        return self.origins[FRAME_HOST]


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    certs = make_certificates(tmp_path_factory.mktemp("tls"))
    context = ssl_context_for_server(certs)
    origins: dict[str, str] = {}
    hosts = (FRAME_HOST, SITE_A_HOST, SITE_B_HOST)
    servers = [_TLSServer(host, context, origins) for host in hosts]
    for host, server in zip(hosts, servers, strict=True):
        origins[host] = f"https://{host}:{server.server_port}"
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield Sites(certs, origins)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


OpenSession = Callable[[str, str], drivers.Session]


@pytest.fixture
def open_session(tmp_path: Path) -> Iterator[OpenSession]:
    """Open sessions that are closed after the test; a missing browser skips, or fails when CI=true."""
    opened: list[drivers.Session] = []

    def open_(engine: str, policy: str) -> drivers.Session:
        try:
            session = drivers.open_session(engine, policy, workdir=tmp_path)
        except drivers.BrowserUnavailable as error:
            if os.environ.get("CI") == "true":
                raise
            pytest.skip(str(error))
        opened.append(session)
        return session

    yield open_
    for session in opened:
        session.close()


def test_the_test_certificate_covers_every_site(sites: Sites) -> None:
    context = ssl_context_for_client(sites.certs)
    for origin in sites.origins.values():
        with urllib.request.urlopen(origin + "/", context=context, timeout=10) as response:
            assert response.status == 200


@pytest.mark.parametrize(("engine", "policy"), MATRIX, ids=MATRIX_IDS)
def test_goto_and_evaluate(sites: Sites, open_session: OpenSession, engine: str, policy: str,
                           tmp_path: Path) -> None:
    session = open_session(engine, policy)
    assert (session.engine, session.policy) == (engine, policy)
    assert session.version[:1].isdigit()
    session.goto(sites.a + "/")
    doubled = session.evaluate("return [args[0] * 2, location.host, await Promise.resolve(args[1])];", 21, "x")
    assert doubled == [42, sites.a.removeprefix("https://"), "x"]
    assert session.evaluate("document.title = 'changed';") is None
    with pytest.raises(drivers.JavaScriptError, match="boom"):
        session.evaluate("throw new TypeError('boom');")
    with pytest.raises(drivers.JavaScriptError, match="late"):
        session.evaluate("await new Promise((resolve) => setTimeout(resolve, 10)); throw new Error('late');")
    session.screenshot(tmp_path / "page.png")
    assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("engine", "policy"), MATRIX, ids=MATRIX_IDS)
def test_click_navigates_to_the_other_site(sites: Sites, open_session: OpenSession, engine: str,
                                           policy: str) -> None:
    session = open_session(engine, policy)
    session.goto(sites.a + "/")
    session.click("#other")
    assert session.url() == sites.b + "/"
    # No wait_for here: click must already have waited for the new page's load.
    assert session.evaluate("return document.getElementById('host').textContent;") == sites.b.removeprefix(
        "https://")


@pytest.mark.parametrize(("engine", "policy"), MATRIX, ids=MATRIX_IDS)
def test_click_without_navigation_returns_at_once(sites: Sites, open_session: OpenSession, engine: str,
                                                  policy: str) -> None:
    session = open_session(engine, policy)
    session.goto(sites.a + "/")
    started = time.monotonic()
    session.click("#stay")
    session.click("#prevented")
    assert time.monotonic() - started < 5
    assert session.url() == sites.a + "/"
    assert session.evaluate(
        "return ['stay', 'prevented'].map((id) => document.getElementById(id).textContent);"
    ) == ["clicked", "prevented"]


@pytest.mark.parametrize(("engine", "policy"), MATRIX, ids=MATRIX_IDS)
def test_wait_for_returns_the_value_or_times_out(sites: Sites, open_session: OpenSession, engine: str,
                                                 policy: str) -> None:
    session = open_session(engine, policy)
    session.goto(sites.a + "/delayed")
    assert session.wait_for("window.ready") == "yes"
    with pytest.raises(TimeoutError, match=r"window\.neverSet"):
        session.wait_for("window.neverSet", timeout=0.5)
    with pytest.raises(TimeoutError, match="notDefinedAnywhere"):
        session.wait_for("notDefinedAnywhere.property", timeout=0.3)


@pytest.mark.parametrize(("engine", "policy"), MATRIX, ids=MATRIX_IDS)
def test_a_fresh_session_has_no_cookies_or_storage(sites: Sites, open_session: OpenSession, engine: str,
                                                   policy: str) -> None:
    first = open_session(engine, policy)
    first.goto(sites.a + "/set-cookie")
    first.evaluate("document.cookie = 'script=1; Path=/; Max-Age=600'; localStorage.setItem('smoke', '1');")
    read_back = "return [document.cookie.split('; ').sort(), localStorage.length];"
    assert first.evaluate(read_back) == [["script=1", "smoke=1"], 1]

    alongside = open_session(engine, policy)  # while the first is still open
    alongside.goto(sites.a + "/")
    assert alongside.evaluate(read_back) == [[""], 0]
    alongside.close()
    first.close()

    after = open_session(engine, policy)
    after.goto(sites.a + "/")
    assert after.evaluate(read_back) == [[""], 0]


# What reaches the hidden iframe under the second site, as in the shipped browsers: Chrome partitions
# third-party storage even when it allows third-party cookies; Firefox with cookieBehavior 0 partitions
# nothing; everything else keeps both apart.
CROSSES_SITES = {
    ("chromium", "third-party-allowed"): {"cookie": True, "storage": False},
    ("firefox", "third-party-allowed"): {"cookie": True, "storage": True},
}


@pytest.mark.parametrize(("engine", "policy"), MATRIX, ids=MATRIX_IDS)
def test_the_policy_decides_what_a_hidden_iframe_carries_across_sites(sites: Sites, open_session: OpenSession,
                                                                       engine: str, policy: str) -> None:
    session = open_session(engine, policy)
    session.goto(sites.a + "/top")
    session.evaluate("return await window.askFrame('write');")
    session.goto(sites.b + "/top")
    seen = session.evaluate("return await window.askFrame('read');")
    crossed = {"cookie": "framed=1" in seen["cookie"], "storage": seen["storage"] == "1"}
    assert crossed == CROSSES_SITES.get((engine, policy), {"cookie": False, "storage": False})


def test_webkit_has_only_the_default_policy(tmp_path: Path) -> None:
    assert drivers.policies_for("webkit") == ("default",)
    with pytest.raises(ValueError, match="webkit"):
        drivers.open_session("webkit", "third-party-allowed", workdir=tmp_path)
    with pytest.raises(ValueError, match="unknown engine"):
        drivers.policies_for("lynx")


def test_a_missing_binary_names_the_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drivers, "CHROMIUM", drivers.Binary("/nonexistent/chromium", "chromium"))
    with pytest.raises(drivers.BrowserUnavailable, match=r"apt-get install chromium"):
        drivers.open_session("chromium", "default", workdir=tmp_path)
