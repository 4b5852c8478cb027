"""In real browsers, per engine: how long after domain-b's navigation starts the session cookie is there, by the
iframe path and by the handoff path, and how many requests each page view makes to the bridge.

    python bench/browser.py [--runs 20] [--engines chromium,firefox,webkit]

Topology as in e2e/: the real `cookiebridge serve` process on https://127.0.0.1 (access log on: it is how requests
are counted, for every engine alike), two sites https://127.0.0.2 (domain-a) and https://127.0.0.3 (domain-b)
serving one small page that loads the provider from the bridge and calls loadCookie() at once, recording
performance.now() (ms since the page's navigation start) when it resolves with the restored cookie.

Each run is a fresh browser session (empty cookies and HTTP cache), like a customer's first move from A to B:
  iframe path:  A: set the session cookie, saveCookie(); then B is typed in (goto); B restores from the iframe.
                Only where third-party cookies work (the "third-party-allowed" profiles; not WebKit).
  handoff path: A: set the session cookie, saveCookie() (as on WebChat.started); click the link to B; the
                provider puts a handoff code on it; B redeems.
                In each engine as shipped ("default" policy).
Caching, per engine as shipped: requests to the bridge on a first view of A, a repeat view of A (another page of
the site: a different URL, so nothing is a reload), the handoff arrival on B and a repeat view of B.
Arrival against its floor, per engine as shipped, in the same run (issue 12): the handoff path's time to the session
cookie on B with the provider, against B's floor page, whose <head> holds, at the provider's place, an inline script
that does one fetch POST to the bridge's redeem and writes the cookie. A is the same provider page for both (its link
gets the code); runs alternate provider and floor. Goal: provider median <= 1.25 x floor median.
B's provider page comes in variants of what the site owner puts in <head> (VARIANTS: the plain tag, crossorigin,
preconnect, preload of the API script, a self-hosted or inline copy), all in the same run as the floor, in a
rotating order; per variant, the median timeline of the bridge requests from performance.getEntriesByType('resource').
Ratios printed: handoff/iframe median time, provider/floor arrival median time, and repeat/first view requests.

    --sections paths,arrival,caching   (default: all three) runs only some of them
    --variants plain,cors,...          (default: all) B's provider page variants in the arrival section
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import ssl
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from cryptography import x509  # noqa: E402  (installed with trustme)
from cryptography.hazmat.primitives import serialization  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import HTMLResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from bench.common import median, percentile, print_machine  # noqa: E402
from cookiebridge.demo.certs import Certs, make_certificates  # noqa: E402
from cookiebridge.demo.servers import https_server  # noqa: E402
from e2e import drivers  # noqa: E402
from testsupport import BridgeProcess, ServerThread, free_port  # noqa: E402

COOKIE = "customer-defined-session-cookie"
SECRET = "browser-bench-secret-0123456789"
# First in both pages' <head>: when the redeem's fetch() resolves on the page (its answer reached the main thread),
# and the main thread's long tasks (> 50 ms; Chromium reports them).
PROBES = """<script>window.__marks = {{ long: [] }}; (function () {{
  var f = window.fetch;
  window.fetch = function (url) {{
    var p = f.apply(this, arguments);
    if (String(url).indexOf('/handoff/redeem') > 0) p.then(function () {{ window.__marks.resolved = performance.now(); }});
    return p;
  }};
  if ((PerformanceObserver.supportedEntryTypes || []).indexOf('longtask') >= 0) new PerformanceObserver(function (list) {{
    list.getEntries().forEach(function (e) {{ window.__marks.long.push([e.startTime, e.duration]); }});
  }}).observe({{ type: 'longtask', buffered: true }});
  document.addEventListener('DOMContentLoaded', function () {{ window.__marks.dcl = performance.now(); }});
  document.addEventListener('load', function (e) {{ // the provider's hidden iframe has loaded
    if (e.target.tagName == 'IFRAME') window.__marks.frame = performance.now();
  }}, true);
}})();</script>"""
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cookiebridge bench: {site}</title>
""" + PROBES + """
<script>window.__ran = []; document.addEventListener('load', function (e) {{ // a script's load event: it has run
  if (e.target.tagName == 'SCRIPT') window.__ran.push([e.target.src, performance.now()]);
}}, true);</script>
{head}
<script>
window.__bench = {{}};
window.provider = new CookieProvider({cookie!r}, {bridge!r} + "/iframe.html");
provider.loadCookie().then(function (value) {{
  window.__bench = {{ value: value, at: performance.now(), via: provider.restoredFrom }};
}});
</script></head>
<body><p>{site}</p><a id="to-other" href="{other}/bench.html">to the other site</a>
<a id="to-floor" href="{other}/floor.html">to the other site's floor page</a>
{variant_links}</body></html>"""
# What the site owner puts in <head> to load the provider, on B's page in the arrival section (issue 12). {api} is
# the API script's hashed name, {integrity} its SRI value, as the provider pins them.
CORS_TAG = '<script src="{bridge}/cookie-provider.min.js" crossorigin="anonymous"></script>'
VARIANTS: dict[str, str] = {
    "plain": '<script src="{bridge}/cookie-provider.min.js"></script>',
    "cors": CORS_TAG,
    "preconnect": '<link rel="preconnect" href="{bridge}" crossorigin>\n' + CORS_TAG,
    "preload": '<link rel="preload" as="script" crossorigin href="{bridge}/{api}">\n' + CORS_TAG,
    "preload-sri": '<link rel="preload" as="script" crossorigin href="{bridge}/{api}" integrity="{integrity}">\n'
                   + CORS_TAG,
    # A copy of the provider on the site's own origin, whose connection the page's own request has opened.
    "self-hosted": '<link rel="preconnect" href="{bridge}" crossorigin>\n<script src="/cookie-provider.min.js"></script>',
    # Not a recommendation (updates, CSP): what is left of the gap once no script has to be fetched first.
    "inline": "<script>{source}</script>",
}
# The floor of arrival: nothing but the one request the provider must make, inline at the provider's place.
FLOOR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cookiebridge bench floor: {site}</title>
""" + PROBES + """
<script>
window.__bench = {{}};
(function () {{
  var code = (location.hash.match(/[#&]cb-handoff=([^&]*)/) || [])[1];
  if (code) fetch({bridge!r} + '/api/v1/handoff/redeem', {{
    method: 'POST', body: JSON.stringify({{ code: code, referrer: document.referrer }})
  }}).then(function (response) {{ return response.json(); }}).then(function (data) {{
    document.cookie = data.name + '=' + data.value + '; Path=/; Secure; SameSite=Lax';
    window.__bench = {{ value: data.value, at: performance.now(), via: 'floor' }};
  }});
}})();
</script></head>
<body><p>{site} (floor)</p></body></html>"""
ARRIVAL_GOAL = 1.25  # provider arrival median / floor median, per engine
LOADED = "window.__bench && 'at' in window.__bench"
REQUEST = re.compile(r'"(GET|HEAD|POST|OPTIONS) (\S+) HTTP/[\d.]+" (\d{3})')


class Provider:
    """The provider as the bridge serves it, and the API script it pins: what the variants' tags name."""

    def __init__(self, bridge: str, certs: Certs) -> None:
        context = ssl.create_default_context(cafile=str(certs.ca))
        with urllib.request.urlopen(bridge + "/cookie-provider.min.js", context=context, timeout=10) as response:
            self.source: bytes = response.read()
        pinned = re.search(rb"'(cookie-provider-api\.[0-9a-f]{12}\.min\.js)','(sha256-[A-Za-z0-9+/=]+)'", self.source)
        if pinned is None:
            raise RuntimeError(f"{bridge}/cookie-provider.min.js pins no hashed cookie-provider-api: run a built bridge")
        self.api, self.integrity = pinned.group(1).decode(), pinned.group(2).decode()

    def head(self, variant: str, bridge: str) -> str:
        if variant == "inline":
            return VARIANTS["inline"].replace("{source}", self.source.decode())
        return VARIANTS[variant].format(bridge=bridge, api=self.api, integrity=self.integrity)


def sites_app(bridge: str, sites: list[str], provider: Provider) -> Starlette:
    links = "\n".join(f'<a id="to-{variant}" href="{{other}}/bench.html?head={variant}">{variant}</a>' for variant in VARIANTS)

    async def page(request: Request) -> Response:
        here = f"{request.url.scheme}://{request.url.netloc}"
        other = next(site for site in sites if site != here)
        variant = request.query_params.get("head", "plain")
        if variant not in VARIANTS:
            return HTMLResponse(f"head={variant!r}: use one of {', '.join(VARIANTS)}", status_code=404)
        html = PAGE.format(site=here, bridge=bridge, cookie=COOKIE, other=other, head=provider.head(variant, bridge),
                           variant_links=links.replace("{other}", other))
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def provider_copy(request: Request) -> Response:
        return Response(provider.source, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "max-age=300"})

    async def floor(request: Request) -> Response:
        here = f"{request.url.scheme}://{request.url.netloc}"
        return HTMLResponse(FLOOR_PAGE.format(site=here, bridge=bridge), headers={"Cache-Control": "no-store"})

    return Starlette(routes=[Route("/bench.html", page), Route("/floor.html", floor),
                             Route("/cookie-provider.min.js", provider_copy)])


class BridgeLog:
    """The bridge's access log: requests made to it since a mark."""

    def __init__(self, path: Path, bridge: str) -> None:
        self.path = path
        self.bridge = bridge

    def mark(self) -> int:
        return len(self._requests())

    def since(self, mark: int, settle: float = 0.3) -> list[str]:
        time.sleep(settle)  # a request still in flight when the page reported
        return self._requests()[mark:]

    def _requests(self) -> list[str]:
        text = self.path.read_text(errors="replace")
        return [f"{m.group(1)} {m.group(2)} {m.group(3)}" for m in REQUEST.finditer(text)]


class Sessions:
    """Fresh browser sessions, as e2e/drivers opens them, except that Chromium trusts the test certificate by its
    key (--ignore-certificate-errors-spki-list) instead of ignoring certificate errors: Chromium keeps nothing
    from a connection with a certificate error in its HTTP cache, which would hide the caching being measured.
    (Firefox and WebKit cache such responses; they keep the drivers' settings.)"""

    def __init__(self, certs: Certs) -> None:
        cert = x509.load_pem_x509_certificate(certs.cert_chain.read_bytes())
        spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.args = [*drivers.CHROMIUM_ARGS,
                     "--ignore-certificate-errors-spki-list=" + base64.b64encode(hashlib.sha256(spki).digest()).decode()]
        self.browser = None

    def open(self, engine: str, policy: str, workdir: Path) -> drivers.Session:
        if engine != "chromium":
            return drivers.open_session(engine, policy, workdir=workdir)
        playwright = drivers._playwright_instance()
        if policy == "default":
            if self.browser is None or not self.browser.is_connected():
                self.browser = playwright.chromium.launch(executable_path=drivers.CHROMIUM.path, args=self.args)
            return drivers.PlaywrightSession("chromium", policy, self.browser.version, self.browser.new_context(),
                                             cleanup=None)
        profile = workdir / "chromium-profile"
        (profile / "Default").mkdir(parents=True)
        (profile / "Default" / "Preferences").write_text(json.dumps(drivers.CHROMIUM_ALLOW_THIRD_PARTY_PREFS))
        context = playwright.chromium.launch_persistent_context(str(profile), executable_path=drivers.CHROMIUM.path,
                                                                args=self.args)
        return drivers.PlaywrightSession("chromium", policy, context.browser.version if context.browser else "",
                                         context, cleanup=profile)

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()


def start_session(session: drivers.Session, value: str) -> bool:
    """What a chat start does on A: the widget writes its session cookie, and the guide's page calls saveCookie()
    on WebChat.started (which also has the provider load its API script, so links carry the session). Returns
    saveCookie()'s result: whether the bridge now holds the session."""
    return session.evaluate("""
        document.cookie = args[0] + '=' + args[1] + '; Path=/; Secure; SameSite=Lax';
        return await provider.saveCookie();""", COOKIE, value)


# B's requests to the bridge (and to a self-hosted provider copy), ms since navigation start: [path, start, end,
# when the script ran (null: not a script, or not run)].
RESOURCES = """const ran = Object.fromEntries(window.__ran || []);
return performance.getEntriesByType('resource')
  .filter(e => e.name.startsWith(args[0]) || e.name.endsWith('/cookie-provider.min.js'))
  .map(e => [new URL(e.name).pathname, e.startTime, e.responseEnd, ran[e.name] ?? null]);"""


def run_once(sessions: Sessions, engine: str, policy: str, path: str, site_a: str, site_b: str, log: BridgeLog,
             workdir: Path, variant: str = "") -> tuple[float, list[str], list[list]]:
    """`variant`: for the handoff path, which of B's provider pages the link on A leads to (default: the plain one)."""
    value = "bench-" + uuid.uuid4().hex
    with sessions.open(engine, policy, workdir) as session:
        session.goto(site_a + "/bench.html")
        session.wait_for(LOADED)
        saved = start_session(session, value)
        if path == "iframe":
            if saved is not True:
                raise RuntimeError(f"{engine}/{policy}: saveCookie() failed: third-party cookies blocked?")
            mark = log.mark()
            session.goto(site_b + "/bench.html")
        else:
            mark = log.mark()
            session.click("#to-floor" if path == "floor" else f"#to-{variant}" if variant else "#to-other")
        session.wait_for(f"location.origin === {site_b!r} && {LOADED}", timeout=15)
        result = session.evaluate("return window.__bench;")
        resources = session.evaluate(RESOURCES, log.bridge)
        marks = session.evaluate("return window.__marks;") or {}
        redeems = [entry for entry in resources if entry[0].endswith("/handoff/redeem")]
        if redeems and marks.get("resolved") is not None:
            # Answer in (responseEnd) -> fetch() resolved on the page -> the cookie; long tasks meanwhile.
            end, resolved, at = redeems[0][2], marks["resolved"], float(result["at"])
            busy = sum(duration for start, duration in marks.get("long", []) if start < at and start + duration > end)
            # Other main-thread events, relative to fetch() resolving: DOMContentLoaded, the iframe's load event.
            after = [marks[key] - resolved if marks.get(key) is not None else None for key in ("dcl", "frame")]
            resources.append(["gap", end, resolved, at, busy, *after])
        requests = log.since(mark)
    if result["value"] != value or result["via"] != path:
        raise RuntimeError(f"{engine}/{policy} {path} {variant}: restored {result!r}, expected {value!r} via {path}")
    return float(result["at"]), requests, resources


def paths(sessions: Sessions, engines: list[str], runs: int, site_a: str, site_b: str, log: BridgeLog,
          work: Path) -> None:
    """Per engine: B's time to the session cookie by the iframe path and by the handoff path."""
    print(f"browser: time from domain-b navigation start to the session cookie (ms), {runs} fresh-session "
          "runs each; requests to the bridge from the click or goto on")
    print(f"{'engine':9} {'policy':20} {'path':8} {'median':>7} {'p10':>7} {'p90':>7}  requests per run")
    medians: dict[tuple[str, str], float] = {}
    for engine in engines:
        for path in ("iframe", "handoff"):
            policy = "default" if path == "handoff" else "third-party-allowed"
            if policy not in drivers.policies_for(engine):
                print(f"{engine:9} {'-':20} {path:8} {'n/a':>7}  third-party cookies cannot be allowed: "
                      "the iframe path never works here (handoff, identity do)")
                continue
            times, requests = [], []
            for run in range(runs):
                at, made, _ = run_once(sessions, engine, policy, path, site_a, site_b, log,
                                       work / f"{engine}-{path}-{run}")
                times.append(at)
                requests.append(made)
            medians[(engine, path)] = median(times)
            counts = sorted({len(made) for made in requests})
            print(f"{engine:9} {policy:20} {path:8} {median(times):7.1f} {percentile(times, .1):7.1f} "
                  f"{percentile(times, .9):7.1f}  {'/'.join(map(str, counts))}: {describe(requests[-1])}")
        if (engine, "iframe") in medians and (engine, "handoff") in medians:
            print(f"{engine:9} ratio handoff/iframe median time "
                  f"{medians[(engine, 'handoff')] / medians[(engine, 'iframe')]:.2f}")


def arrival_against_floor(sessions: Sessions, engines: list[str], variants: list[str], runs: int, site_a: str,
                          site_b: str, log: BridgeLog, workdir: Path) -> None:
    """Per engine as shipped: B's time to the session cookie on each provider page variant and on the floor page,
    runs rotating through them, the ratio of the medians, and each page's median timeline of bridge requests."""
    print(f"browser: arrival against its floor, domain-b navigation start to the session cookie (ms), {runs} "
          f"fresh-session runs each, rotating; goal provider/floor <= {ARRIVAL_GOAL}")
    print(f"{'engine':9} {'page':12} {'median':>7} {'p10':>7} {'p90':>7} {'ratio':>6}  requests per run; median "
          "start-end (ms) of the provider script, the API script and the redeem, and when a script ran")
    pages = [*variants, "floor"]
    for engine in engines:
        times: dict[str, list[float]] = {page: [] for page in pages}
        made: dict[str, list[list[str]]] = {page: [] for page in pages}
        timelines: dict[str, list[list]] = {page: [] for page in pages}
        for run in range(runs):
            for page in pages[run % len(pages):] + pages[:run % len(pages)]:  # no page always first or last
                path, variant = ("floor", "") if page == "floor" else ("handoff", page)
                at, requests, resources = run_once(sessions, engine, "default", path, site_a, site_b, log,
                                                   workdir / f"{engine}-arrival-{page}-{run}", variant)
                times[page].append(at)
                made[page].append(requests)
                timelines[page].append(resources)
        floor = median(times["floor"])
        for page in pages:
            ratio = median(times[page]) / floor
            counts = "/".join(map(str, sorted({len(requests) for requests in made[page]})))
            print(f"{engine:9} {page:12} {median(times[page]):7.1f} {percentile(times[page], .1):7.1f} "
                  f"{percentile(times[page], .9):7.1f} {ratio:6.2f}{'*' if ratio <= ARRIVAL_GOAL else ' '} "
                  f"{counts}: {describe(made[page][-1])}; {timeline(timelines[page])}")
    print(f"(* within the goal of {ARRIVAL_GOAL})")


def timeline(runs: list[list]) -> str:
    """Median start-end per kind of request over the runs where it was made (xN: made N times in a run), and for a
    script when it ran."""
    kinds = {"provider": r"/cookie-provider(\.[0-9a-f]{12})?\.min\.js$", "API": r"/cookie-provider-api\.",
             "redeem": r"/handoff/redeem$"}
    parts = []
    for kind, pattern in kinds.items():
        entries = [[entry for entry in resources if re.search(pattern, entry[0])] for resources in runs]
        firsts = [found[0] for found in entries if found]
        if not firsts:
            continue
        most = max(len(found) for found in entries)
        ran = [entry[3] for found in entries for entry in found if entry[3] is not None]
        parts.append(f"{kind} {median([e[1] for e in firsts]):.0f}-{median([e[2] for e in firsts]):.0f}"
                     + (f" x{most}" if most > 1 else "") + (f" ran {median(ran):.0f}" if ran else ""))
    gaps = [entry for resources in runs for entry in resources if entry[0] == "gap"]
    if gaps:
        parts.append(f"answer in -> fetch resolved {median([g[2] - g[1] for g in gaps]):.1f}, -> cookie "
                     f"{median([g[3] - g[2] for g in gaps]):.1f} (long tasks meanwhile {median([g[4] for g in gaps]):.0f})")
        for index, event in ((5, "DOMContentLoaded"), (6, "iframe load")):
            seen = [g[index] for g in gaps if g[index] is not None]
            if seen:
                parts.append(f"{event} at fetch resolved {median(seen):+.1f}")
    return ", ".join(parts) or "no entries"


def caching(sessions: Sessions, engine: str, site_a: str, site_b: str, log: BridgeLog,
            workdir: Path) -> dict[str, list[str]]:
    views: dict[str, list[str]] = {}
    with sessions.open(engine, "default", workdir) as session:
        def view(label: str, url: str | None) -> None:
            mark = log.mark()
            if url:
                session.goto(url)
            else:
                session.click("#to-other")
            session.wait_for(f"location.href.startsWith({(url or site_b)!r}) && {LOADED}", timeout=15)
            views[label] = log.since(mark)

        view("first view A", site_a + "/bench.html?view=1")
        view("repeat view A", site_a + "/bench.html?view=2")
        start_session(session, "bench-" + uuid.uuid4().hex)
        view("handoff to B", None)
        view("repeat view B", site_b + "/bench.html?view=2")
    return views


def caching_report(sessions: Sessions, engines: list[str], site_a: str, site_b: str, log: BridgeLog,
                   work: Path) -> None:
    print("browser: requests to the bridge per page view (engine as shipped, one fresh session)")
    for engine in engines:
        views = caching(sessions, engine, site_a, site_b, log, work / f"{engine}-caching")
        for label, made in views.items():
            print(f"{engine:9} {label:14} {len(made):2}  {describe(made)}")
        first, repeat = len(views["first view A"]), len(views["repeat view A"])
        print(f"{engine:9} ratio repeat/first view requests {repeat}/{first} = {repeat / first:.2f}")


def describe(requests: list[str]) -> str:
    counts: dict[str, int] = {}
    for request in requests:
        method, path, status = request.split()
        path = re.sub(r"\.[0-9a-f]{12}\.min\.js$", ".<hash>.min.js", path)
        key = f"{method} {path} {status}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key}" + (f" x{n}" if n > 1 else "") for key, n in counts.items()) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="fresh-session runs per engine and path (median)")
    parser.add_argument("--engines", default=",".join(drivers.ENGINES))
    parser.add_argument("--sections", default="paths,arrival,caching",
                        help="which measurements: paths (iframe, handoff), arrival (against the floor), caching")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="arrival: which of B's provider pages to measure against the floor")
    args = parser.parse_args(argv)
    sections = set(args.sections.split(","))
    if not sections <= {"paths", "arrival", "caching"}:
        parser.error(f"--sections {args.sections!r}: use a comma-separated subset of paths,arrival,caching")
    variants = [variant for variant in args.variants.split(",") if variant]
    if not variants or not set(variants) <= set(VARIANTS):
        parser.error(f"--variants {args.variants!r}: use a comma-separated subset of {','.join(VARIANTS)}")
    os.chdir(ROOT)  # BridgeProcess runs `python -m cookiebridge` from the working directory
    engines = [engine for engine in args.engines.split(",") if engine]
    print_machine()
    versions = []
    for engine in engines:
        try:
            versions.append(f"{engine} {drivers.engine_version(engine)}")
        except drivers.BrowserUnavailable as missing:
            print(f"browser: {missing}", file=sys.stderr)
            return 2
    print("browsers: " + ", ".join(versions))
    work = Path(tempfile.mkdtemp(prefix="cookiebridge-browser-bench-"))
    certs = make_certificates(work / "certs")
    site_port = free_port()
    site_a, site_b = f"https://127.0.0.2:{site_port}", f"https://127.0.0.3:{site_port}"
    bridge_args = ["--ssl-certfile", str(certs.cert_chain), "--ssl-keyfile", str(certs.key),
                   "--store", f"sqlite:///{work / 'bridge.db'}", "--trusted-origin", site_a, "--trusted-origin", site_b]
    env = {"COOKIEBRIDGE_SECRET_KEY": SECRET, "PYTHONUNBUFFERED": "1"}  # access log lines reach the file at once
    with BridgeProcess(bridge_args, work / "bridge.log", env=env, tls=True) as bridge:
        app = sites_app(bridge.url, [site_a, site_b], Provider(bridge.url, certs))
        servers = ServerThread([https_server(app, "127.0.0.2", site_port, certs),
                                https_server(app, "127.0.0.3", site_port, certs)]).start()
        log = BridgeLog(work / "bridge.log", bridge.url)
        sessions = Sessions(certs)
        try:
            if "paths" in sections:
                paths(sessions, engines, args.runs, site_a, site_b, log, work)
            if "arrival" in sections:
                arrival_against_floor(sessions, engines, variants, args.runs, site_a, site_b, log, work)
            if "caching" in sections:
                caching_report(sessions, engines, site_a, site_b, log, work)
        finally:
            sessions.close()
            servers.stop()
            drivers.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
