"""The end-to-end topology, started once per run, and the browser session for each (engine, policy).

bridge        https://127.0.0.1:P1   the real `cookiebridge serve` process (SQLite store)
domain-a/b    https://127.0.0.2:P2, https://127.0.0.3:P2   the demo sites (the guide's pages)
hostile       https://127.0.0.4:P2 (other host), https://127.0.0.2:P3 (same host, other port),
              http://127.0.0.2:P4 (plain http)
stripped      https://127.0.0.1:P5   the bridge behind a proxy that drops its CSP header
down          https://127.0.0.2:P6   a demo site whose bridge does not answer
redis pair    two `cookiebridge serve` processes on one Redis, with sites https://127.0.0.2:P7 / 127.0.0.3:P7
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from cookiebridge.demo.certs import Certs, make_certificates
from cookiebridge.demo.chat import ChatServer
from cookiebridge.demo.servers import https_server
from cookiebridge.demo.sites import create_demo_app
from e2e import drivers, matrix
from e2e.lab.attacks import Lab, forwarding_proxy, hostile_app, running_lab
from e2e.topology import (
    COOKIE,
    IDENTITY_SECRET,
    NAMED_BARE_PAGE,
    RESULTS,
    SECRET,
    WIDGET_SETTLED,
    NamedTopology,
    Topology,
    bridge_args,
)
from testsupport import BridgeProcess, RedisServer, ServerThread, free_port


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario(name): the compatibility-matrix row a browser test fills")
    matrix.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # an xdist worker saw only its share: the controller writes
        matrix.write(RESULTS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    report = yield
    matrix.annotate(item, report)
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Every report reaches this hook in the process that writes the matrix, with or without xdist."""
    matrix.record(report)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def topology(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    work = tmp_path_factory.mktemp("topology")
    site_port, other_port, http_port, proxy_port, down_port, redis_site_port = (free_port() for _ in range(6))
    site_a, site_b = f"https://127.0.0.2:{site_port}", f"https://127.0.0.3:{site_port}"
    env = {"COOKIEBRIDGE_SECRET_KEY": SECRET, "COOKIEBRIDGE_IDENTITY_SECRET": IDENTITY_SECRET}
    bridge = BridgeProcess(bridge_args(certs, [site_a, site_b], f"sqlite:///{work / 'bridge.db'}"),
                           work / "bridge.log", env=env, tls=True)
    redis = RedisServer()
    redis_sites = [f"https://127.0.0.2:{redis_site_port}", f"https://127.0.0.3:{redis_site_port}"]
    redis_bridges = [
        BridgeProcess(bridge_args(certs, redis_sites, redis.url, "--handoff-ttl", "5"), work / f"redis-bridge-{n}.log",
                      env=env, tls=True)
        for n in (1, 2)
    ]
    with bridge, redis, redis_bridges[0], redis_bridges[1]:
        chat = ChatServer()
        demo = create_demo_app(bridge_url=bridge.url, sites=[site_a, site_b], emulator=chat,
                               identity_secret=IDENTITY_SECRET)
        # The site hosts the provider script itself (here: a copy from the live bridge); its iframe origin is dead.
        down = create_demo_app(bridge_url=f"https://127.0.0.1:{free_port()}", sites=[f"https://127.0.0.2:{down_port}"],
                               provider_url=bridge.url + "/cookie-provider.min.js")
        redis_a = create_demo_app(bridge_url=redis_bridges[0].url, sites=redis_sites, emulator=chat)
        redis_b = create_demo_app(bridge_url=redis_bridges[1].url, sites=redis_sites, emulator=chat)
        hostile = hostile_app(COOKIE)
        servers = ServerThread([
            https_server(demo, "127.0.0.2", site_port, certs),
            https_server(demo, "127.0.0.3", site_port, certs),
            https_server(hostile, "127.0.0.4", site_port, certs),
            https_server(hostile, "127.0.0.2", other_port, certs),
            https_server(hostile, "127.0.0.2", http_port, None),
            https_server(forwarding_proxy(bridge.url), "127.0.0.1", proxy_port, certs),
            https_server(down, "127.0.0.2", down_port, certs),
            https_server(redis_a, "127.0.0.2", redis_site_port, certs),
            https_server(redis_b, "127.0.0.3", redis_site_port, certs),
        ]).start()
        try:
            yield Topology(
                bridge=bridge.url, site_a=site_a, site_b=site_b,
                hostile={"other host": f"https://127.0.0.4:{site_port}", "same host, other port":
                         f"https://127.0.0.2:{other_port}", "plain http": f"http://127.0.0.2:{http_port}"},
                stripped_bridge=f"https://127.0.0.1:{proxy_port}", down_site=f"https://127.0.0.2:{down_port}",
                redis_a=redis_sites[0], redis_b=redis_sites[1], logs=work,
            )
        finally:
            servers.stop()
    shutil.copy(work / "bridge.log", RESULTS / "bridge.log") if RESULTS.is_dir() else None


# --- opt-in: the same demo sites serving the real Genesys Widgets (proprietary: never in the repository) ---------

GENESYS_WIDGETS = "COOKIEBRIDGE_GENESYS_WIDGETS"  # a folder: cxbus.min.js + plugins/ (CDN layout), or widgets.min.js
_WIDGETS_VERSION = re.compile(rb'product:\s*"Genesys Widgets",\s*version:\s*"([0-9.]+)"')
# Read once, and taken out of the environment: `cookiebridge serve` refuses unknown COOKIEBRIDGE_* variables, and
# every bridge process of the run inherits this process's environment. pytest-xdist workers start after the main
# process read it, so it travels on to them under a name of the harness's own.
_WORKERS_COPY = "E2E_GENESYS_WIDGETS_DIR"
_GENESYS_WIDGETS_DIR = os.environ.pop(GENESYS_WIDGETS, "") or os.environ.get(_WORKERS_COPY, "")
os.environ[_WORKERS_COPY] = _GENESYS_WIDGETS_DIR


@dataclass(frozen=True)
class RealWidgetSites:
    """domain-a/b with the real library: https://127.0.0.2:P / https://127.0.0.3:P, their own bridge process and
    chat server; `version` as the library names itself, e.g. "9.0.018.07"."""
    bridge: str
    site_a: str
    site_b: str
    version: str
    named_a: str = ""  # the same on hostnames (www.domain-a.test:P2), where the widget writes domain cookies
    named_b: str = ""


def _real_widgets_dir(folder: Path, work: Path) -> Path:
    """The folder to serve as /widgets/: the CDN layout as it is; a one-file bundle as a cxbus.min.js of its own
    (it holds CXBus and every plugin), with its stylesheet and i18n/ beside it when the folder has them."""
    if (folder / "cxbus.min.js").is_file() and (folder / "plugins").is_dir():
        return folder
    bundle = folder / "widgets.min.js"
    if not bundle.is_file():
        pytest.fail(f"{GENESYS_WIDGETS}={str(folder)!r} holds neither cxbus.min.js + plugins/ nor widgets.min.js: "
                    "point it at an unpacked Genesys Widgets copy", pytrace=False)
    served = work / "genesys-widgets"
    (served / "plugins").mkdir(parents=True)
    shutil.copyfile(bundle, served / "cxbus.min.js")  # a test run's temporary folder, never the repository
    # The bundle already holds widgets-core, but the pages' CXBus.loadPlugin("widgets-core") loads a file: an empty one.
    (served / "plugins" / "widgets-core.min.js").write_text("/* widgets-core is in the bundle */\n")
    if (folder / "widgets.min.css").is_file():
        shutil.copyfile(folder / "widgets.min.css", served / "widgets.min.css")
    if (folder / "i18n").is_dir():
        shutil.copytree(folder / "i18n", served / "i18n")
    return served


def _real_widgets_version(served: Path) -> str:
    for candidate in (served / "plugins" / "widgets-core.min.js", served / "cxbus.min.js"):
        found = _WIDGETS_VERSION.search(candidate.read_bytes()) if candidate.is_file() else None
        if found:
            return found.group(1).decode()
    return "unknown version"


@pytest.fixture(scope="session")
def real_widget_sites(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealWidgetSites]:
    """Skips (one line) unless COOKIEBRIDGE_GENESYS_WIDGETS names a copy of the library; always skips in CI."""
    if os.environ.get("CI") == "true":
        pytest.skip("real Genesys Widgets: not run in CI (the library is proprietary and not public to CI)")
    folder = _GENESYS_WIDGETS_DIR
    if not folder:
        pytest.skip(f"real Genesys Widgets: set {GENESYS_WIDGETS} to a folder with cxbus.min.js + plugins/ "
                    "(or widgets.min.js)")
    work = tmp_path_factory.mktemp("real-widget")
    served = _real_widgets_dir(Path(folder).expanduser().resolve(), work)
    port, named_port = free_port(), free_port()
    site_a, site_b = f"https://127.0.0.2:{port}", f"https://127.0.0.3:{port}"
    try:
        drivers.check_hostnames()  # the named sites below need them
    except drivers.HostnamesUnavailable as missing:
        pytest.skip(str(missing))
    named_a, named_b = _named_url("127.0.0.2", named_port), _named_url("127.0.0.3", named_port)
    env = {"COOKIEBRIDGE_SECRET_KEY": SECRET, "COOKIEBRIDGE_IDENTITY_SECRET": IDENTITY_SECRET}
    with BridgeProcess(bridge_args(certs, [site_a, site_b, named_a, named_b], f"sqlite:///{work / 'bridge.db'}",
                                   "--resume"),
                       work / "bridge.log", env=env, tls=True) as bridge:
        chat = ChatServer()
        demo = create_demo_app(bridge_url=bridge.url, sites=[site_a, site_b], emulator=chat, widgets_dir=served,
                               resume=True)
        named = create_demo_app(bridge_url=bridge.url, sites=[named_a, named_b], emulator=chat, widgets_dir=served,
                                resume=True)
        servers = ServerThread([https_server(demo, "127.0.0.2", port, certs),
                                https_server(demo, "127.0.0.3", port, certs),
                                https_server(named, "127.0.0.2", named_port, certs),
                                https_server(named, "127.0.0.3", named_port, certs)]).start()
        try:
            yield RealWidgetSites(bridge=bridge.url, site_a=site_a, site_b=site_b,
                                  version=_real_widgets_version(served), named_a=named_a, named_b=named_b)
        finally:
            servers.stop()


@pytest.fixture(params=drivers.matrix(), ids=lambda combo: f"{combo[0]}-{combo[1]}")
def combo(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


_warmed: set[tuple[str, str]] = set()


def _warm_up(combo: tuple[str, str], topology: Topology, workdir: Path) -> None:
    """Load the demo page once in a throw-away session: a customer's browser is already running, while the first
    page of a freshly started test browser also pays for the browser's own start-up."""
    if combo in _warmed:
        return
    _warmed.add(combo)
    with drivers.open_session(*combo, workdir=workdir) as session:
        session.goto(topology.site_a + "/")
        session.wait_for(WIDGET_SETTLED, timeout=20)


@pytest.fixture
def browser(combo: tuple[str, str], topology: Topology, tmp_path: Path) -> Iterator[drivers.Session]:
    engine, policy = combo
    try:
        _warm_up(combo, topology, tmp_path / "warm-up")
        session = drivers.open_session(engine, policy, workdir=tmp_path)
    except drivers.BrowserUnavailable as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} (CI runs every engine)")
        pytest.skip(str(missing))
    with session:
        yield session


@pytest.fixture
def new_browser(combo: tuple[str, str], tmp_path: Path) -> Iterator[object]:
    """Opens more fresh sessions of the same engine and policy (a second customer, another device)."""
    opened: list[drivers.Session] = []

    def open_another() -> drivers.Session:
        session = drivers.open_session(*combo, workdir=tmp_path / f"extra-{len(opened)}")
        opened.append(session)
        return session

    yield open_another
    for session in opened:
        session.close()


# --- the same roles on hostnames: sites on names get domain cookies, sites on addresses host-only ones -------------

def _with_bare_page(app: ASGIApp, bridge_url: str) -> ASGIApp:
    page = (f'<!doctype html><meta charset="utf-8"><title>bare page</title>\n'
            f'<script src="{bridge_url}/cookie-provider.min.js"></script>\n').encode()

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != NAMED_BARE_PAGE:
            await app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": page})
    return serve


def _named_url(role_address: str, port: int) -> str:
    name = next(name for name, address in drivers.HOSTNAMES.items() if address == role_address)
    return f"https://{name}:{port}"


@pytest.fixture(scope="session")
def named_topology(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamedTopology]:
    try:
        drivers.check_hostnames()
    except drivers.HostnamesUnavailable as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} (CI runs the hostname tests)")
        pytest.skip(str(missing))
    work = tmp_path_factory.mktemp("named-topology")
    site_port = free_port()
    site_a, site_b = _named_url("127.0.0.2", site_port), _named_url("127.0.0.3", site_port)
    env = {"COOKIEBRIDGE_SECRET_KEY": SECRET, "COOKIEBRIDGE_IDENTITY_SECRET": IDENTITY_SECRET}
    # Bound to the bridge's address; the browsers reach it by name.
    with BridgeProcess(bridge_args(certs, [site_a, site_b], f"sqlite:///{work / 'named-bridge.db'}"),
                       work / "named-bridge.log", env=env, tls=True) as bridge:
        bridge_url = _named_url(bridge.host, bridge.port)
        demo = _with_bare_page(create_demo_app(bridge_url=bridge_url, sites=[site_a, site_b],
                                               identity_secret=IDENTITY_SECRET), bridge_url)
        servers = ServerThread([
            https_server(demo, "127.0.0.2", site_port, certs),
            https_server(demo, "127.0.0.3", site_port, certs),
        ]).start()
        try:
            yield NamedTopology(bridge=bridge_url, site_a=site_a, site_b=site_b, logs=work)
        finally:
            servers.stop()


# --- the link-handoff lab (issue 12): its own bridge, two trusted lab sites, a foreign site and a redirect target ---

from e2e.lab import Foreign, LabTopology, site_app  # noqa: E402  (this section's own import)


@pytest.fixture(scope="session")
def lab_topology(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabTopology]:
    work = tmp_path_factory.mktemp("lab")
    port, catcher_port = free_port(), free_port()
    site_a, site_b = f"https://127.0.0.2:{port}", f"https://127.0.0.3:{port}"
    foreign, catcher = f"https://127.0.0.4:{port}", f"https://127.0.0.4:{catcher_port}"
    env = {"COOKIEBRIDGE_SECRET_KEY": SECRET}
    with BridgeProcess(bridge_args(certs, [site_a, site_b], f"sqlite:///{work / 'lab-bridge.db'}"),
                       work / "lab-bridge.log", env=env, tls=True) as bridge:
        sites = site_app(bridge.url, [site_a, site_b], catcher, COOKIE)
        spy = Foreign(bridge.url, site_a, site_b, COOKIE)
        spied = spy.app()
        servers = ServerThread([
            https_server(sites, "127.0.0.2", port, certs),
            https_server(sites, "127.0.0.3", port, certs),
            https_server(spied, "127.0.0.4", port, certs),
            https_server(spied, "127.0.0.4", catcher_port, certs),
        ]).start()
        try:
            yield LabTopology(bridge=bridge.url, site_a=site_a, site_b=site_b, foreign=foreign, catcher=catcher,
                              spy=spy, logs=work)
        finally:
            servers.stop()


# --- the attack lab (e2e/test_attacks_*.py): hostile frames and messages, a probe inside the iframe, a faulty bridge ---


@pytest.fixture(scope="session")
def lab(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(certs, tmp_path_factory.mktemp("attack-lab")) as started:
        yield started
