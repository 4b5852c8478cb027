"""Attack catalogue and faults, browser side: hostile frames and messages against the real bridge iframe, on every
engine and cookie policy. Each test is a row of the compatibility matrix.

The lab (started once for this module):
  bridge      https://127.0.0.1:P1   a real `cookiebridge serve` trusting the two lab sites below
  probe       https://127.0.0.1:P2   that bridge behind a proxy that drops its CSP and adds a probe script to
                                     iframe.html: it counts messages, records uncaught errors and prototype
                                     pollution inside the iframe and reports them on request ({cbProbe: 'report'})
  faulty      https://127.0.0.1:P3   a stand-in bridge that is slow (/slow/...) or fails (/error/..., /unavailable/...;
                                     the latter serves the real scripts, so the provider's API script loads)
  site a, b   https://127.0.0.2:T, https://127.0.0.3:T   trusted lab sites (a harness page, lab.js)
  evil        https://127.0.0.4:T    untrusted
  look-alikes https://127.0.0.22:T (host with the trusted one as prefix), https://127.0.0.2:T1 (port with the
              trusted one as prefix: T1 = 10 T + 1)

Where a test runs the bridge without CSP (the probe), the iframe script's own origin and source checks stand alone.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from cookiebridge.assets import IFRAME_PAGE, build_assets
from cookiebridge.demo.certs import Certs
from e2e.conftest import COOKIE, IDENTITY_SECRET, SECRET, Topology, bridge_args
from e2e.drivers import Session
from e2e.matrix import observe
from e2e.widget import FORM, ChatWidget
from cookiebridge.demo.servers import https_server
from e2e.servers import ServerThread, hostile_app
from tests.processes import BridgeProcess, free_port

TIMEOUT_MS = 1000  # the providers' timeout in these tests
SLOW_SECONDS = 4.0  # how long the faulty bridge keeps a "slow" request: far beyond TIMEOUT_MS

# Runs inside the bridge iframe, before the bridge's own script, when it is served through the probe proxy.
PROBE = b"""<script>
(function () {
  var builtins = Object.getOwnPropertyNames(Object.prototype).concat(Object.getOwnPropertyNames(Array.prototype));
  var probe = { errors: [], received: 0 };
  addEventListener('error', function (e) { probe.errors.push(String(e.message || e)); });
  addEventListener('unhandledrejection', function (e) { probe.errors.push('rejection: ' + e.reason); });
  addEventListener('message', function (e) {
    if (e.data && e.data.cbProbe === 'report') {
      var now = Object.getOwnPropertyNames(Object.prototype).concat(Object.getOwnPropertyNames(Array.prototype));
      var cookie;
      try { cookie = document.cookie; } catch (error) { cookie = 'no cookie jar: ' + error.name; } // sandboxed: opaque
      e.source.postMessage({ cbProbeReport: { errors: probe.errors, received: probe.received, cookie: cookie,
        polluted: now.filter(function (k) { return builtins.indexOf(k) < 0; }) } }, '*');
    } else {
      probe.received++;
    }
  });
})();
</script>"""

# Loaded by every lab page (trusted harness, attacker pages, sandboxed and data: frames).
LAB_JS = r"""
(function () {
  'use strict';
  var inbox = [];
  window.__errors = [];
  addEventListener('error', function (e) { window.__errors.push(String(e.message || e)); });
  addEventListener('unhandledrejection', function (e) { window.__errors.push('rejection: ' + e.reason); });
  addEventListener('message', function (event) { inbox.push({ source: event.source, origin: event.origin, data: event.data }); });

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function frame(src, attributes, parent) {
    return new Promise(function (resolve) {
      var element = document.createElement('iframe');
      Object.keys(attributes || {}).forEach(function (key) { element.setAttribute(key, attributes[key]); });
      var done = function () { resolve(element); };
      element.addEventListener('load', done, { once: true });
      setTimeout(done, 4000); // a frame the CSP blocks may never fire load
      if (src) element.src = src;
      (parent || document.body || document.documentElement).appendChild(element);
    });
  }

  function plain(message) { return { origin: message.origin, data: message.data }; }
  function isProbe(data) { return !!(data && (data.cbProbeReport || data.childResult || data.victimResult)); }
  // Everything a window sent us except test instrumentation.
  function replies(win) {
    return inbox.filter(function (m) { return m.source === win && !isProbe(m.data); }).map(plain);
  }
  function allReplies() { return inbox.filter(function (m) { return !isProbe(m.data); }).map(plain); }

  async function waitFor(predicate, ms) {
    for (var waited = 0; waited < ms; waited += 50) {
      var found = inbox.filter(predicate)[0];
      if (found) return found.data;
      await sleep(50);
    }
    return null;
  }

  async function report(win) {
    var since = inbox.length;
    win.postMessage({ cbProbe: 'report' }, '*');
    var data = await waitFor(function (m) { return inbox.indexOf(m) >= since && m.source === win && m.data && m.data.cbProbeReport; }, 3000);
    return data && data.cbProbeReport;
  }

  // Sends `message` to the bridge iframe `win` both ways an attacker could try:
  //  (a) as a plain window message (the shape of the retired id-based protocol): nothing may ever answer it;
  //  (b) in the real protocol: a hello carrying a fresh MessagePort (the session), then, unless the message is
  //      itself a hello (op 'hello', or options.hello), `message` posted on that session port with a reply port.
  // Replies on the reply port (or, for a hello, on the session port) go into the inbox as
  //   { source: win, origin: 'port', data: { id, ...reply } }   (a hello's info: { id, ok: true, value: info }),
  // so replies(win) / allReplies() / waitFor see them. The hello answer of a session opened for a request is
  // recorded too, as origin 'session' (data: { id, ok: true, value: info }): anything the iframe posts is seen.
  // options: id (what replies are recorded under; default message.id), hello (post `message` itself as the
  // hello), port: false (a hello without any port), reply: false (a request without a reply port).
  // Throws (e.g. DataCloneError) before anything is sent when `message` cannot be cloned.
  var held = [];  // every port of ours, so that none is garbage-collected while a reply may still come
  function ask(win, message, targetOrigin, options) {
    options = options || {};
    var id = 'id' in options ? options.id : (message !== null && typeof message === 'object' ? message.id : undefined);
    var isHello = !!options.hello || (message !== null && typeof message === 'object' && message.op === 'hello');
    var record = function (origin, reply) {
      var data = { id: id };
      if (reply !== null && typeof reply === 'object') Object.keys(reply).forEach(function (k) { data[k] = reply[k]; });
      else data.raw = reply;
      inbox.push({ source: win, origin: origin, data: data });
    };
    win.postMessage(message, targetOrigin);  // (a)
    if (options.port === false) { win.postMessage(message, targetOrigin); return; }  // (b) a hello without a port
    var session = new MessageChannel();
    held.push(session.port1);
    session.port1.onmessage = function (e) { record(isHello ? 'port' : 'session', { ok: true, value: e.data }); };
    win.postMessage(isHello ? message : { cookiebridge: 1, op: 'hello' }, targetOrigin, [session.port2]);
    if (isHello) return;
    if (options.reply === false) { session.port1.postMessage(message); return; }
    var reply = new MessageChannel();
    held.push(reply.port1);
    reply.port1.onmessage = function (e) { record('port', e.data); };
    session.port1.postMessage(message, [reply.port2]);
  }

  // The protocol messages an attacker tries: read, probe, overwrite and delete the session cookie.
  function attackMessages(name) {
    return [
      { cookiebridge: 1, id: 'h', op: 'hello' },
      { cookiebridge: 1, id: 'g', op: 'get', name: name },
      { cookiebridge: 1, id: 't', op: 'test' },
      { cookiebridge: 1, id: 's', op: 'set', name: name, value: 'attacker-session' },
      { cookiebridge: 1, id: 'r', op: 'remove', name: name }
    ];
  }

  // An attacker's page or frame: message bridge iframes (its own children, or frames of its parent given by
  // index), then tell the parent what came back.
  async function attack(config) {
    try {
      return await attackOnce(config);
    } catch (error) {
      window.__errors.push('attack: ' + error);
      parent.postMessage({ childResult: { origin: self.origin, replies: allReplies(), reports: [], errors: window.__errors } }, '*');
    }
  }

  async function attackOnce(config) {
    var targets = [];
    if (config.own) {
      for (var i = 0; i < config.own.length; i++) targets.push((await frame(config.own[i])).contentWindow);
    }
    (config.siblings || []).forEach(function (index) { targets.push(parent.frames[index]); });
    targets.forEach(function (win) {
      attackMessages(config.name).forEach(function (message) {
        try { ask(win, message, '*'); } catch (e) { window.__errors.push('post: ' + e); }
      });
    });
    await sleep(800);
    var reports = [];  // from the frames config.report names (probe frames: others would never answer)
    for (var j = 0; j < (config.report || []).length; j++) reports.push(await report(targets[config.report[j]]));
    var result = { origin: self.origin, replies: allReplies(), reports: reports, errors: window.__errors };
    parent.postMessage({ childResult: result }, '*');
    return result;
  }

  async function childResult(ms) {
    var data = await waitFor(function (m) { return m.data && m.data.childResult; }, ms || 8000);
    return data && data.childResult;
  }

  window.lab = { inbox: inbox, sleep: sleep, frame: frame, replies: replies, allReplies: allReplies, report: report,
                 waitFor: waitFor, attack: attack, attackMessages: attackMessages, childResult: childResult, ask: ask };
})();
"""

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>lab</title>
<script src="/lab.js"></script>{head}</head><body>{body}</body></html>"""

# A trusted page that a test frames inside an untrusted one: it uses the real bridge, and the probe directly.
VICTIM = """<script>
(async function () {
  var config = JSON.parse(decodeURIComponent(location.hash.slice(1)));
  var began = Date.now();
  var provider = new CookieProvider(config.name, config.bridge + '/iframe.html', { timeout: config.timeout });
  var loaded = await provider.loadCookie();
  var tested = await provider.cookieTest();
  var waited = Date.now() - began;
  var probe = (await lab.frame(config.probe + '/iframe.html')).contentWindow;
  lab.ask(probe, { cookiebridge: 1, id: 'own-hello', op: 'hello' }, config.probeOrigin);
  await lab.sleep(500);
  parent.postMessage({ victimResult: { loaded: loaded, tested: tested, waited: waited,
    probeAnswered: lab.replies(probe).some(function (m) {
      return m.origin === 'port' && m.data.id === 'own-hello' && m.data.ok === true && m.data.value.version === 1;
    }) } }, '*');
})();
</script>"""


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
    certs: Certs
    work: Path

    def harness(self, site: str) -> str:
        return f"{site}/harness"


def lab_pages(bridge: str) -> Starlette:
    """The lab sites: every origin serves the same pages; `/lab.js` is fetched from the page's own origin."""

    def page(head: str = "", body: str = "") -> HTMLResponse:
        return HTMLResponse(PAGE.format(head=head, body=body), headers={"Cache-Control": "no-store"})

    async def lab_js(request: Request) -> Response:
        return Response(LAB_JS, media_type="text/javascript", headers={"Access-Control-Allow-Origin": "*"})

    async def harness(request: Request) -> Response:
        return page(head=f'<script src="{bridge}/cookie-provider.min.js"></script>')

    async def attacker(request: Request) -> Response:
        return page(body="<script>lab.attack(JSON.parse(decodeURIComponent(location.hash.slice(1))));</script>")

    async def victim(request: Request) -> Response:
        return page(head=f'<script src="{bridge}/cookie-provider.min.js"></script>', body=VICTIM)

    return Starlette(routes=[Route("/lab.js", lab_js), Route("/harness", harness), Route("/attacker", attacker),
                             Route("/victim", victim)])


def probing_proxy(upstream: str) -> Starlette:
    """The bridge without its CSP header and with PROBE at the top of iframe.html."""
    client = httpx.AsyncClient(base_url=upstream, verify=False)  # the test CA; loopback only
    dropped = {"content-security-policy", "content-length", "content-encoding", "transfer-encoding", "connection", "etag"}

    async def forward(request: Request) -> Response:
        answer = await client.get(request.url.path)
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in dropped}
        body = answer.content
        if request.url.path == "/iframe.html":
            body = body.replace(b"<head>", b"<head>" + PROBE, 1)
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


@pytest.fixture(scope="module")
def lab(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("lab")
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
            https_server(probing_proxy(bridge.url), "127.0.0.1", probe_port, certs),
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


# --- untrusted parents ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [pytest.param("sandboxed", marks=pytest.mark.scenario("null origin: sandboxed frame gets no answer")),
     pytest.param("data-url", marks=pytest.mark.scenario("null origin: data: URL frame gets no answer"))],
)
def test_null_origin_parents_get_no_answer(request, browser: Session, lab: Lab, kind: str) -> None:
    """Attacker: a frame with the opaque origin `null` (a sandboxed srcdoc, or a data: URL) inside a trusted page
    embeds the bridge iframe itself, once with its CSP and once without (probe), and sends hello/get/test/set/remove.
    Seen: no answer from either; the probe shows every message arrived, no error inside the iframe and no
    'attacker-session' cookie."""
    browser.goto(lab.harness(lab.site_a))
    config = {"own": [lab.bridge + "/iframe.html", lab.probe + "/iframe.html"], "report": [1], "name": COOKIE}
    html = (f'<!doctype html><script src="{lab.site_a}/lab.js"></script>'
            f"<script>lab.attack({json.dumps(config)});</script>")
    result = browser.evaluate("""
        const [kind, html] = args;
        if (kind === 'sandboxed') await lab.frame(null, { sandbox: 'allow-scripts', srcdoc: html });
        else await lab.frame('data:text/html;charset=utf-8,' + encodeURIComponent(html));
        return await lab.childResult(12000);
    """, kind, html)
    assert result is not None, "the attacker frame did not run"
    assert result["origin"] == "null"
    assert result["replies"] == [] and result["errors"] == []
    probe = result["reports"][0]
    # Each of the 5 attack messages is posted twice: plain, and as a hello with a port (the request follows on it).
    assert probe["received"] >= 10 and probe["errors"] == [] and "attacker" not in probe["cookie"]
    no_page_errors(browser)
    # A frame inside a sandboxed one inherits the sandbox: the bridge there has an opaque origin and no cookies.
    jar = "no cookie jar" if probe["cookie"].startswith("no cookie jar") else "cookie untouched"
    observe(request.node, f"{probe['received']} messages delivered, 0 answered; {jar}")


@pytest.mark.parametrize(
    "child",
    [pytest.param("same-origin", marks=pytest.mark.scenario("child frame of a trusted page (same origin) gets no answer")),
     pytest.param("cross-origin", marks=pytest.mark.scenario("child frame of a trusted page (other site) gets no answer"))],
)
def test_child_frames_of_a_trusted_page_get_no_answer(request, browser: Session, lab: Lab, child: str) -> None:
    """Attacker: a frame inside a trusted page (an ad, a widget, a same-origin srcdoc an injected script wrote)
    messages its sibling, the page's bridge iframe. The same-origin child even has a trusted `event.origin`; only
    the `event.source === parent` check stops it. Seen: no answer to the child, its set/remove had no effect, and
    the iframe still answers the page itself."""
    browser.goto(lab.harness(lab.site_a))
    config = {"siblings": [0], "name": COOKIE}
    result = browser.evaluate("""
        const [child, config, probeUrl, evil] = args;
        const bridge = (await lab.frame(probeUrl + '/iframe.html')).contentWindow;
        const attacker = '<!doctype html><script src="/lab.js"></scr' + 'ipt><script>lab.attack(' + JSON.stringify(config) + ');</scr' + 'ipt>';
        if (child === 'same-origin') await lab.frame(null, { srcdoc: attacker });
        else await lab.frame(evil + '/attacker#' + encodeURIComponent(JSON.stringify(config)));
        const attack = await lab.childResult(10000);
        lab.ask(bridge, { cookiebridge: 1, id: 'mine', op: 'get', name: args[4] }, new URL(probeUrl).origin);
        await lab.sleep(500);
        return { attack, own: lab.replies(bridge).filter(m => m.origin === 'port').map(m => m.data),
                 probe: await lab.report(bridge) };
    """, child, config, lab.probe, lab.evil, COOKIE)
    attack = result["attack"]
    assert attack is not None and attack["replies"] == [] and attack["errors"] == []
    assert attack["origin"] == (lab.site_a if child == "same-origin" else lab.evil)
    # The page's own request is answered, once, on its reply port.
    assert [reply["id"] for reply in result["own"]] == ["mine"] and result["own"][0]["ok"] is True
    probe = result["probe"]
    # 5 attack messages and the page's own, each posted plain and as a hello with a port.
    assert probe["received"] >= 12 and probe["errors"] == [] and "attacker" not in probe["cookie"]
    no_page_errors(browser)
    observe(request.node, f"child at {'trusted' if child == 'same-origin' else 'evil'} origin: 0 answers")


@pytest.mark.scenario("trusted page framed inside an untrusted one")
def test_trusted_page_framed_by_an_untrusted_page(request, browser: Session, lab: Lab) -> None:
    """Attacker: an evil page frames a trusted page (clickjacking style) and messages the bridge iframes nested in
    it. Seen: the bridge's CSP (frame-ancestors checks every ancestor) keeps the real bridge from loading there, so
    the trusted page's provider settles with nothing within its timeout; the evil top gets no answer from any
    bridge frame, even from the CSP-stripped one that does answer its trusted parent."""
    browser.goto(lab.harness(lab.evil))
    config = {"name": COOKIE, "bridge": lab.bridge, "probe": lab.probe, "probeOrigin": lab.probe, "timeout": TIMEOUT_MS}
    result = browser.evaluate("""
        const [victimUrl, name] = args;
        const victim = (await lab.frame(victimUrl)).contentWindow;
        const deadline = Date.now() + 8000;
        let outcome = null;
        while (!outcome && Date.now() < deadline) {
          for (let i = 0; i < victim.frames.length; i++) {
            lab.attackMessages(name).forEach(m => lab.ask(victim.frames[i], m, '*'));
          }
          outcome = await lab.waitFor(m => m.data && m.data.victimResult, 300);
        }
        await lab.sleep(300);
        return { victim: outcome && outcome.victimResult, replies: lab.allReplies(), frames: victim.frames.length };
    """, f"{lab.site_a}/victim#{quote(json.dumps(config))}", COOKIE)
    victim = result["victim"]
    assert victim is not None, "the framed trusted page did not report"
    assert victim["loaded"] is None and victim["tested"] is False
    assert victim["waited"] < 3 * TIMEOUT_MS + 1500
    assert victim["probeAnswered"] is True  # without CSP the iframe serves its trusted parent...
    assert result["replies"] == []  # ...and never the page that frames it
    no_page_errors(browser)
    observe(request.node, f"bridge blocked by CSP, provider settled in {victim['waited'] / 1000:.1f} s, evil top: 0 answers")


@pytest.mark.parametrize(
    "where",
    [pytest.param("look_alike_host", marks=pytest.mark.scenario("look-alike host (trusted host as prefix) learns nothing")),
     pytest.param("look_alike_port", marks=pytest.mark.scenario("look-alike port (trusted port as prefix) learns nothing"))],
)
def test_look_alike_origins_learn_nothing(request, browser: Session, lab: Lab, where: str) -> None:
    """Attacker: a page whose origin starts with a trusted one (`https://127.0.0.22:T` for `https://127.0.0.2:T`,
    `https://127.0.0.2:T1` for `...:T`), which a prefix or unanchored check would accept, runs the provider and
    raw protocol messages (plain, and a hello with a port followed by requests on it) against the bridge without
    its CSP (the probe). Seen: nothing loaded, cookieTest false, no answer, the probe's cookie untouched."""
    origin = getattr(lab, where)
    browser.goto(f"{origin}/?iframe={quote(lab.probe + '/iframe.html', safe='')}")
    learned = browser.evaluate("return await window.__attack;")
    # Then the same attack through lab.ask (plain, and hello + request on ports) at one more probe frame, whose
    # report shows what arrived inside the iframe: every message, no error, the cookie untouched.
    ported = browser.evaluate("""
        const [labJs, probeUrl, name] = args;
        await new Promise((resolve, reject) => document.head.appendChild(
          Object.assign(document.createElement('script'), { src: labJs, onload: resolve, onerror: reject })));
        const bridge = (await lab.frame(probeUrl + '/iframe.html')).contentWindow;
        lab.attackMessages(name).forEach(m => lab.ask(bridge, m, new URL(probeUrl).origin));
        await lab.sleep(800);
        return { replies: lab.allReplies(), probe: await lab.report(bridge), errors: window.__errors };
    """, f"{lab.site_a}/lab.js", lab.probe, COOKIE)
    assert learned["loaded"] is None and learned["tested"] is False and learned["replies"] == []
    assert ported["replies"] == [] and ported["errors"] == []
    probe = ported["probe"]
    assert probe["received"] >= 10 and probe["errors"] == [] and "attacker" not in probe["cookie"]
    observe(request.node, "no reply, no data")


# --- hostile messages from the trusted parent -----------------------------------------------------------------

# Requests on an established session port from the trusted parent (each case opens its own session with a valid
# hello), and malformed hellos. Version and id fields of requests are ignored now: a request is whatever arrives on
# the session port, and its reply goes to the port that came with it.
HOSTILE_MESSAGES = r"""
const name = args[0];
const nested = (depth, leaf) => { let v = leaf; for (let i = 0; i < depth; i++) v = { a: v }; return v; };
const deepArray = (depth) => { let v = []; for (let i = 0; i < depth; i++) v = [v]; return v; };
return [
  // [expected reply: an error, true (answered ok) or null (no reply at all), message, lab.ask options]
  // Requests on the session port:
  ['too-large', { cookiebridge: 1, id: 'big', op: 'set', name: name, value: 'x'.repeat(1 << 20) }],
  [true, { cookiebridge: 1, id: 'i'.repeat(65), op: 'get', name: name }],
  ['name-not-allowed', { cookiebridge: 1, id: 'deep-name', op: 'get', name: nested(2000, name) }],
  ['bad-value', { cookiebridge: 1, id: 'deep-value', op: 'set', name: name, value: deepArray(2000) }],
  ['unknown-operation', nested(2000, { cookiebridge: 1, id: 'deep-envelope', op: 'get', name: name })],
  ['unknown-operation', JSON.stringify({ cookiebridge: 1, id: 'json-string', op: 'get', name: name })],
  ['unknown-operation', 'get ' + name], ['unknown-operation', 42], ['unknown-operation', null],
  ['unknown-operation', [1, 'get', name]], ['unknown-operation', true], ['unknown-operation', new ArrayBuffer(16)],
  ['unknown-operation', new Date(0)], ['unknown-operation', /get/], ['unknown-operation', new Map([['op', 'get']])],
  [true, { cookiebridge: '1', id: 'string-version', op: 'get', name: name }],
  [true, { cookiebridge: 2, id: 'future-version', op: 'get', name: name }],
  [true, { cookiebridge: 1, id: 7, op: 'get', name: name }],
  [true, { op: 'get', name: name }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-proto', op: '__proto__' }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-constructor', op: 'constructor' }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-hasown', op: 'hasOwnProperty' }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-tostring', op: 'toString' }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-array', op: ['get'] }],
  ['unknown-operation', { cookiebridge: 1, id: 'op-upper', op: 'GET', name: name }],
  ['unknown-operation', { id: 'op-missing', name: name, value: 'attacker' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'name-missing', op: 'get' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'name-proto', op: 'get', name: '__proto__' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'name-constructor', op: 'set', name: 'constructor', value: 'x' }],
  ['name-not-allowed', JSON.parse('{"cookiebridge":1,"id":"proto-key","op":"set","name":"__proto__","value":"x","__proto__":{"polluted":1}}')],
  ['name-not-allowed', { cookiebridge: 1, id: 'ctor-key', op: 'set', name: 'x', value: 'x', constructor: { prototype: { polluted: 1 } } }],
  ['name-not-allowed', { cookiebridge: 1, id: 'other-cookie', op: 'set', name: 'other-cookie', value: 'attacker' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'test-cookie', op: 'get', name: '__cookiebridge_test' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'upper', op: 'set', name: name.toUpperCase(), value: 'attacker' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'padded', op: 'remove', name: name + ' ' }],
  ['name-not-allowed', { cookiebridge: 1, id: 'name-array', op: 'get', name: [name] }],
  ['bad-value', { cookiebridge: 1, id: 'value-object', op: 'set', name: name, value: { toString: 'attacker' } }],
  ['bad-value', { cookiebridge: 1, id: 'value-number', op: 'set', name: name, value: 42 }],
  [true, JSON.parse('{"cookiebridge":1,"id":"own-proto","op":"get","name":"' + name + '","__proto__":{"op":"set","value":"attacker"}}')],
  // A request without a reply port: nobody to answer (and nothing more on the session port).
  [null, { cookiebridge: 1, id: 'no-reply-port', op: 'set', name: name, value: 'attacker' }, { reply: false }],
  // Hellos, posted with a fresh port: only { cookiebridge: 1 } with a port is a hello.
  [true, { cookiebridge: 1, id: 'hello-extra-keys', op: 'hello', name: '__proto__', constructor: { prototype: { polluted: 1 } } }],
  [null, { cookiebridge: 2, id: 'hello-future-version', op: 'hello' }],
  [null, { cookiebridge: '1', id: 'hello-string-version', op: 'hello' }],
  [null, { cookiebridge: true, id: 'hello-true-version', op: 'hello' }],
  [null, { id: 'hello-no-version', op: 'hello' }],
  [null, { cookiebridge: 1, id: 'hello-no-port', op: 'hello' }, { port: false }],
  [null, 'hello', { hello: true }],
  [null, JSON.stringify({ cookiebridge: 1, op: 'hello' }), { hello: true }],
  [null, [{ cookiebridge: 1, op: 'hello' }], { hello: true }],
  [null, new Map([['cookiebridge', 1], ['op', 'hello']]), { hello: true }],
];
"""


@pytest.mark.scenario("oversized, nested, non-JSON, prototype-polluting and disallowed-name messages")
def test_hostile_messages_get_documented_errors_and_change_nothing(request, browser: Session, lab: Lab) -> None:
    """Attacker: a script on a trusted page (e.g. a compromised third-party tag) opens sessions with the iframe and
    sends on them a 1 MiB value, a 65-character id, 2,000-deep nesting, JSON as a string, non-objects (numbers,
    ArrayBuffer, Date, RegExp, Map), stray versions, `__proto__`/`constructor`/`toString` as operation, name or key,
    and cookie names outside the configured one; and it tries malformed hellos (wrong version, no port, a string).
    Every message also goes out as a plain window message. Seen: each request gets exactly the documented reply on
    its own reply port (none when it came without one); malformed hellos and plain messages get nothing; no exception
    and no prototype pollution inside the iframe; no cookie but the configured one is written."""
    browser.goto(lab.harness(lab.site_a))
    result = browser.evaluate("""
        const cases = (async () => {""" + HOSTILE_MESSAGES + """})();
        const probeOrigin = new URL(args[1]).origin;
        const bridge = (await lab.frame(args[1] + '/iframe.html')).contentWindow;
        const list = await cases, expected = [];
        for (const [i, [want, message, options]] of list.entries()) {
          const object = message !== null && typeof message === 'object';
          const id = i + ':' + (object && typeof message.id === 'string' ? message.id.slice(0, 24) : typeof message);
          const hello = !!(options && options.hello) || (object && message.op === 'hello');
          try {
            lab.ask(bridge, message, probeOrigin, Object.assign({ id }, options));
            expected.push([want, id, hello]);
          } catch (e) { /* this engine cannot clone it (e.g. too deep): nothing was sent */ }
        }
        await lab.sleep(1500);
        const replies = lab.replies(bridge);
        return { expected, tried: list.length,
                 answers: replies.filter(m => m.origin === 'port').map(m => m.data),
                 sessions: replies.filter(m => m.origin === 'session').map(m => m.data.id),
                 window: replies.filter(m => m.origin !== 'port' && m.origin !== 'session'),
                 probe: await lab.report(bridge) };
    """, COOKIE, lab.probe)
    got = {reply["id"]: reply for reply in result["answers"]}
    assert len(result["answers"]) == len(got), "a message was answered twice"
    assert result["window"] == []  # plain window messages, from the trusted parent too: never answered
    for want, ident, hello in result["expected"]:
        if want is None:
            assert ident not in got, (ident, got.get(ident))
        elif want is True:
            assert got[ident]["ok"] is True and set(got[ident]) == {"id", "ok", "value"}, (ident, got[ident])
            if hello:
                assert got[ident]["value"]["version"] == 1, got[ident]
        else:
            assert got[ident] == {"id": ident, "ok": False, "error": want}, (ident, got[ident])
        # A request's session opened with a valid hello: its info came once, and nothing else on that port.
        assert result["sessions"].count(ident) == (0 if hello else 1), (ident, result["sessions"].count(ident))
    answered = {ident for want, ident, hello in result["expected"] if want is not None}
    assert set(got) == answered
    probe = result["probe"]
    # Every message went out twice: plainly, and as the hello (or after the hello) of its own session.
    assert probe["errors"] == [] and probe["polluted"] == [] and probe["received"] >= 2 * len(result["expected"])
    assert "attacker" not in probe["cookie"] and "other-cookie" not in probe["cookie"]
    no_page_errors(browser)
    assert len(result["expected"]) >= result["tried"] - 3
    observe(request.node, f"{len(result['expected'])} messages: {len(answered)} answered as documented, rest ignored")


# --- fuzz -----------------------------------------------------------------------------------------------------

FUZZ_MESSAGES = 1000
FUZZ = r"""
const [name, probeUrl, count, seed] = args;
let state = seed >>> 0;
const rnd = () => { state = (state * 1664525 + 1013904223) >>> 0; return state / 4294967296; };
const pick = (list) => list[Math.floor(rnd() * list.length)];
const words = ['hello', 'get', 'set', 'remove', 'test', '__proto__', 'constructor', 'toString', '', 'valueOf', name,
               'other', '__cookiebridge_test', name.toUpperCase(), 'x'.repeat(70), '\u0000', '\ud800', '💥'];
const anything = (depth) => {
  const kind = Math.floor(rnd() * (depth > 3 ? 6 : 9));
  switch (kind) {
    case 0: return null;
    case 1: return rnd() < 0.5;
    case 2: return Math.floor(rnd() * 2e9) - 1e9;
    case 3: return pick([NaN, Infinity, -0, 1e308, 0.5]);
    case 4: return pick(words);
    case 5: return 'r' + Math.floor(rnd() * 1e6).toString(36).repeat(Math.floor(rnd() * 40));
    case 6: { const a = []; for (let i = rnd() * 4; i > 0; i--) a.push(anything(depth + 1)); return a; }
    case 7: { const o = {}; for (let i = rnd() * 4; i > 0; i--) o[pick(words.concat(['cookiebridge', 'id', 'op', 'name', 'value']))] = anything(depth + 1); return o; }
    default: return pick([new Date(0), new Uint8Array(4), /re/g, new Map(), new Set([1]), new ArrayBuffer(2)]);
  }
};
const messages = [];
for (let i = 0; i < count; i++) {
  const roll = rnd();
  let message;
  if (roll < 0.35) message = anything(0);
  else {
    message = { cookiebridge: roll < 0.9 ? 1 : anything(2), id: roll < 0.8 ? 'f' + i : anything(2), op: rnd() < 0.7 ? pick(words) : anything(2) };
    if (rnd() < 0.7) message.name = rnd() < 0.5 ? name : anything(1);
    if (rnd() < 0.6) message.value = anything(1);
    if (rnd() < 0.2) message[pick(words)] = anything(1);
  }
  messages.push(message);
}
const probeOrigin = new URL(probeUrl).origin;
const bridge = (await lab.frame(probeUrl + '/iframe.html')).contentWindow;
// Each message goes out plainly and in its own session (lab.ask): a request after a valid hello, or, when its op is
// 'hello', as the hello itself. Replies are counted per message: the fuzzed ids are mere data now.
const expected = new Map();  // 'f' + index -> replies due on its port: 1 per request, 1 per valid hello, else 0
let sent = 0, requests = 0;
messages.forEach((m, i) => {
  const id = 'f' + i;
  try { lab.ask(bridge, m, probeOrigin, { id }); sent++; } catch (e) { return; }
  const hello = m !== null && typeof m === 'object' && m.op === 'hello';
  if (!hello) requests++;
  expected.set(id, hello ? (m.cookiebridge === 1 ? 1 : 0) : 1);
});
await lab.sleep(2000);
const all = lab.replies(bridge), answers = all.filter(r => r.origin === 'port').map(r => r.data);
const answered = new Map();
for (const r of answers) answered.set(r.id, (answered.get(r.id) || 0) + 1);
const mismatched = [...new Set([...expected.keys(), ...answered.keys()])]
  .filter(id => (expected.get(id) || 0) !== (answered.get(id) || 0)).map(id => JSON.stringify(id));
const documented = ['unknown-operation', 'name-not-allowed', 'bad-value', 'too-large', 'not-stored', 'failed'];
return { sent, requests, valid: [...expected.values()].reduce((a, b) => a + b, 0), answered: answers.length, mismatched,
         malformed: answers.filter(r => typeof r.ok !== 'boolean' || (r.ok ? !('value' in r) : typeof r.error !== 'string'))
           .map(r => JSON.stringify(r)).slice(0, 10),
         errors: [...new Set(answers.filter(r => r.ok === false).map(r => r.error))],
         undocumented: answers.filter(r => r.ok === false && !documented.includes(r.error)).length,
         sessions: all.filter(r => r.origin === 'session').length,
         window: all.filter(r => r.origin !== 'port' && r.origin !== 'session').length,
         total: lab.allReplies().length,
         probe: await lab.report(bridge) };
"""


@pytest.mark.parametrize(
    "parent",
    [pytest.param("trusted", marks=pytest.mark.scenario("fuzz: 1,000 random messages from a trusted parent")),
     pytest.param("untrusted", marks=pytest.mark.scenario("fuzz: 1,000 random messages from an untrusted parent"))],
)
def test_fuzzed_messages(request, browser: Session, lab: Lab, parent: str) -> None:
    """Attacker: 1,000 seeded random messages (random types, keys, versions, ids, operations, names and values,
    NaN, lone surrogates, typed arrays, Maps), each posted to the iframe (served without CSP) plainly and in a
    session of its own: as a request on the port a hello handed over, or, with op 'hello', as the hello itself.
    Seen from a trusted parent: no exception and no pollution inside the iframe, exactly one well-formed answer on
    its reply port to every request and to every valid hello, none to malformed hellos or plain messages. From an
    untrusted parent: the same messages, not one answer (the hello is refused, so nothing on the port either)."""
    seed = 20260107 + (1 if parent == "untrusted" else 0)
    browser.goto(lab.harness(lab.site_a if parent == "trusted" else lab.evil))
    result = browser.evaluate(FUZZ, COOKIE, lab.probe, FUZZ_MESSAGES, seed)
    probe = result["probe"]
    assert result["sent"] >= FUZZ_MESSAGES - 50  # a few (e.g. Symbols) cannot be cloned at all
    # Every message sent counts twice in the iframe: the plain one and the session's hello.
    assert probe["errors"] == [] and probe["polluted"] == [] and probe["received"] >= 2 * result["sent"]
    if parent == "trusted":
        assert result["mismatched"] == [] and result["malformed"] == [] and result["undocumented"] == 0, result
        assert result["answered"] == result["valid"] > 100 and result["valid"] >= result["requests"] > 100
        assert result["sessions"] == result["requests"] and result["window"] == 0
    else:
        assert result["total"] == 0 and result["answered"] == 0
    no_page_errors(browser)
    observe(request.node, f"{result['sent']} sent, {result['answered']} answered, 0 exceptions in the iframe")


# --- handoff links --------------------------------------------------------------------------------------------


@pytest.mark.scenario("forged or garbled handoff code in a link restores nothing")
def test_forged_handoff_link_restores_nothing(request, browser: Session, topology: Topology) -> None:
    """Attacker: sends a link to domain-b with a made-up code, a code signed with another key, and a truncated
    real-looking one. Seen: the page works, the widget opens a fresh chat, the code leaves the address bar, no
    error on the page."""
    from itsdangerous import URLSafeTimedSerializer

    from cookiebridge.handoff import SALT

    forged = URLSafeTimedSerializer("attacker-key-0123456789abcdef", salt=SALT).dumps(["x", topology.site_b])
    for attempt, code in enumerate(("AAAA", forged, forged[:-10])):
        browser.goto(f"{topology.site_b}/?attempt={attempt}#cb-handoff={code}")  # a new document each time
        assert ChatWidget(browser).arrive() == FORM
        assert "cb-handoff" not in browser.url()
        assert browser.evaluate("return cookieProvider.restoredFrom;") is None
        assert browser.evaluate("return window.__cbErrors;") == []
    observe(request.node, "3 forged links: fresh chat each time")


# --- faults ---------------------------------------------------------------------------------------------------

FALLBACK = r"""
const [name, iframeUrl, origins, timeout, token] = args;
let ticks = 0;
const ticker = setInterval(() => ticks++, 50);  // the page's own work must keep running
const failures = [];
const provider = new CookieProvider(name, iframeUrl, { timeout, origins, identity: token,
  onError: (operation, error) => failures.push(operation + ':' + error) });
document.cookie = name + '=current-session; Path=/; Secure; SameSite=Lax';
const timed = async (promise) => { const began = performance.now(); const value = await promise;
  return { value, ms: Math.round(performance.now() - began) }; };
const result = {
  load: await timed(provider.loadCookie()),
  save: await timed(provider.saveCookie()),
  test: await timed(provider.cookieTest()),
  link: await timed(provider.decorate(origins[1] + '/next')),
};
clearInterval(ticker);
return { result, ticks, failures: failures, cookie: document.cookie.includes(name + '=current-session') };
"""


@pytest.mark.parametrize(
    "mode",
    [pytest.param("slow", marks=pytest.mark.scenario("bridge slow (answers after 4 s): provider settles within its timeout")),
     pytest.param("error", marks=pytest.mark.scenario("bridge answers 5xx HTML: provider settles, page works")),
     pytest.param("unavailable", marks=pytest.mark.scenario("bridge answers 503 JSON: provider settles, page works"))],
)
def test_provider_falls_back_when_the_bridge_misbehaves(request, browser: Session, lab: Lab, mode: str) -> None:
    """Fault: the bridge origin is slow (every answer after 4 s), answers HTML 500/502, or answers the API's own
    503 JSON (its scripts load: the provider's API script meets the 503s). Seen: loadCookie, saveCookie, cookieTest and link decoration each settle (null / false / the plain
    link) within the 1 s timeout plus scheduling slack, the site's own cookie and scripts are untouched, onError
    names each failure, and nothing throws."""
    browser.goto(lab.harness(lab.site_a))
    token = "any-identity-token"  # so the identity mechanism is tried too
    outcome = browser.evaluate(FALLBACK, COOKIE, f"{lab.faulty}/{mode}/iframe.html", [lab.site_a, lab.site_b],
                               TIMEOUT_MS, token)
    result = outcome["result"]
    assert result["load"]["value"] is None and result["save"]["value"] is False and result["test"]["value"] is False
    assert result["link"]["value"] == lab.site_b + "/next"
    # loadCookie starts identity and the iframe at once: the whole call settles within one timeout too.
    for step in ("load", "save", "test", "link"):
        assert result[step]["ms"] < TIMEOUT_MS + 700, (step, result[step])
    assert outcome["cookie"] is True and outcome["ticks"] > 10
    failures = outcome["failures"]
    assert any(failure.startswith("handoff:") for failure in failures)
    assert "iframe:timeout" in failures  # loadCookie's iframe request: no bridge script ever takes the hello
    if mode == "unavailable":
        # The API script loaded (served like the real bridge does); the API itself answered 503.
        assert "handoff:unavailable" in failures and "identity:unavailable" in failures, failures
    else:
        # The API script never arrives (late, or a 5xx): the API mechanisms are skipped, links stay plain.
        assert "handoff:unreachable" in failures, failures
    no_page_errors(browser)
    slowest = max(result[step]["ms"] for step in result)
    observe(request.node, f"settled; slowest call {slowest / 1000:.1f} s (timeout {TIMEOUT_MS / 1000:.0f} s)")


@pytest.mark.scenario("bridge killed mid-session: links fall back, then recover without reload")
def test_bridge_killed_mid_session(request, browser: Session, lab: Lab) -> None:
    """Fault: the bridge process is killed (SIGKILL) while a customer is on a page, then restarted. Seen: while it
    is down, a link to the other site resolves to the plain link within the timeout and the already-loaded iframe
    still answers; after the restart the same page gets handoff codes again without a reload."""
    port = free_port()
    args = bridge_args(lab.certs, [lab.site_a, lab.site_b], f"sqlite:///{lab.work / 'mortal.db'}")
    env = {"COOKIEBRIDGE_SECRET_KEY": SECRET}
    mortal = BridgeProcess(args, lab.work / f"mortal-{time.monotonic_ns()}.log", port=port, env=env, tls=True)
    browser.goto(lab.harness(lab.site_a))
    with mortal:
        before = browser.evaluate("""
            const [name, iframeUrl, origins, timeout] = args;
            document.cookie = name + '=live-session; Path=/; Secure; SameSite=Lax';
            window.provider = new CookieProvider(name, iframeUrl, { timeout, origins });
            return { link: await provider.decorate(origins[1] + '/'), hello: (await provider.request({ op: 'hello' })).ok };
        """, COOKIE, mortal.url + "/iframe.html", [lab.site_a, lab.site_b], TIMEOUT_MS)
        assert "#cb-handoff=" in before["link"] and before["hello"] is True
        os.killpg(mortal.process.pid, signal.SIGKILL)
        mortal.process.wait(timeout=10)
    during = browser.evaluate("""
        const began = performance.now();
        const link = await provider.decorate(args[0] + '/');
        return { link, ms: performance.now() - began, hello: (await provider.request({ op: 'hello' })).ok };
    """, lab.site_b)
    assert during["link"] == lab.site_b + "/" and during["ms"] < TIMEOUT_MS + 700
    assert during["hello"] is True  # the iframe document lives in the browser, not on the server
    with BridgeProcess(args, lab.work / f"mortal-{time.monotonic_ns()}.log", port=port, env=env, tls=True):
        after = browser.evaluate("return await provider.decorate(args[0] + '/');", lab.site_b)
    assert "#cb-handoff=" in after
    no_page_errors(browser)
    observe(request.node, f"down: plain link in {during['ms'] / 1000:.1f} s; restarted: codes again")
