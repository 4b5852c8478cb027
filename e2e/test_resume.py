"""Resume through the bridge (issue 14): an anonymous chat started on A continues on B after a typed URL, with the
provider option `resume: true` and a bridge with `resume` on. Every engine and cookie policy, driven as a customer
does: real clicks on the page's "Chat with us" button and on the bridge's confirmation page, the widget read
through its DOM. Each row says how many clicks it took.

With the widget double: its own bridge process (`--resume`) and demo sites (/resume.html), on addresses of their
own port: bridge https://127.0.0.1:P1, domain-a https://127.0.0.2:P2, domain-b https://127.0.0.3:P2. With the real
Genesys Widgets (opt-in, as in test_core_scenarios.py): the `real_widget_sites` bridge, which runs with `--resume`.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest

from cookiebridge.demo.certs import Certs
from cookiebridge.demo.chat import ChatServer
from cookiebridge.demo.servers import https_server
from cookiebridge.demo.sites import create_demo_app
from e2e import drivers
from e2e.drivers import Session
from e2e.matrix import observe
from e2e.topology import COOKIE, RESULTS, SECRET, bridge_args
from e2e.widget import FORM, TRANSCRIPT, ChatWidget
from testsupport import BridgeProcess, ServerThread, free_port

WIDGETS = {"double": "widget double", "real": "real Genesys Widgets"}
PAGE = "/resume.html"
TOKEN_KEY = f"cookiebridge.resume.{COOKIE}"
TRIP_TIMEOUT = 20.0  # seconds: to the bridge and back, and the page's widget loaded
LOADED = "window.__widgetsLoaded === true && document.readyState === 'complete'"  # set by /resume.html


@dataclass(frozen=True)
class ResumeSites:
    bridge: str
    site_a: str
    site_b: str
    version: str = ""  # the real library's, or "" for the double


@pytest.fixture(scope="session")
def double_resume_sites(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResumeSites]:
    work = tmp_path_factory.mktemp("resume")
    port = free_port()
    site_a, site_b = f"https://127.0.0.2:{port}", f"https://127.0.0.3:{port}"
    bridge = BridgeProcess(bridge_args(certs, [site_a, site_b], f"sqlite:///{work / 'bridge.db'}", "--resume"),
                           work / "bridge.log", env={"COOKIEBRIDGE_SECRET_KEY": SECRET}, tls=True)
    with bridge:
        demo = create_demo_app(bridge_url=bridge.url, sites=[site_a, site_b], emulator=ChatServer(), resume=True)
        servers = ServerThread([https_server(demo, "127.0.0.2", port, certs),
                                https_server(demo, "127.0.0.3", port, certs)]).start()
        try:
            yield ResumeSites(bridge.url, site_a, site_b)
        finally:
            servers.stop()


@pytest.fixture
def resume_sites(request: pytest.FixtureRequest) -> ResumeSites:
    """The widget double's sites, or the real Genesys Widgets' (opt-in: skips without the library, and in CI)."""
    if request.param == "real":
        real = request.getfixturevalue("real_widget_sites")
        return ResumeSites(real.bridge, real.site_a, real.site_b, real.version)
    return request.getfixturevalue("double_resume_sites")


def widgets(scenario: str) -> pytest.MarkDecorator:
    """Parametrize `resume_sites` over both widgets; each (scenario, widget) is its own row of the matrix."""
    return pytest.mark.parametrize("resume_sites", [
        pytest.param(widget, id=widget, marks=pytest.mark.scenario(f"{scenario} ({label})"))
        for widget, label in WIDGETS.items()
    ], indirect=True)


def seen_with(sites: ResumeSites, text: str) -> str:
    return f"{text} ({sites.version})" if sites.version else text


def shared_iframe_cookie(combo: tuple[str, str]) -> bool:
    return combo[1] == "third-party-allowed"


# The profiles where the iframe cookie is not shared: the page goes to the bridge.
trip_profiles = pytest.mark.parametrize(
    "combo", [combo for combo in drivers.matrix() if not shared_iframe_cookie(combo)],
    ids=lambda combo: f"{combo[0]}-{combo[1]}")


class Customer:
    """One customer's browser on the resume pages, counting the clicks they make."""

    def __init__(self, browser: Session, sites: ResumeSites) -> None:
        self.browser, self.sites, self.clicks = browser, sites, 0
        self.chat = ChatWidget(browser)

    def click(self, selector: str) -> None:
        self.clicks += 1
        self.browser.click(selector)

    def type_address(self, site: str) -> None:
        self.browser.goto(site + PAGE)
        self.browser.wait_for(LOADED, timeout=TRIP_TIMEOUT)

    def open_chat(self) -> None:
        """"Chat with us": the chat opens here, or the page first goes to the bridge's resume page."""
        # A customer's click comes more than a reaction time after the widget appears; the resume script looks for
        # the widget's bus every 50 ms.
        time.sleep(0.3)
        self.browser.evaluate("window.__beforeOpen = true; return true;")
        self.click("#open-chat")

    def wait_on_bridge(self) -> None:
        self._wait(f"location.origin === {self.sites.bridge!r} && document.readyState === 'complete'")

    def wait_back_on(self, site: str) -> None:
        """Back from the bridge: a document of `site` that is not the one the open was clicked on."""
        self._wait(f"location.origin === {site!r} && !window.__beforeOpen && {LOADED}")

    def arrive(self) -> str:
        try:
            return self.chat.arrive()
        except TimeoutError as error:
            raise TimeoutError(f"{error}; page: {self.state()}") from None

    def state(self) -> str:
        return str(self.browser.evaluate("""return JSON.stringify({href: location.href, loaded: window.__widgetsLoaded,
            beforeOpen: window.__beforeOpen, errors: window.__cbErrors, storage: {...sessionStorage},
            events: window.__widgetDouble && window.__widgetDouble.events, cookie: document.cookie,
            restoredFrom: window.cookieProvider && cookieProvider.restoredFrom});"""))

    def _wait(self, expression: str) -> None:
        try:
            self.browser.wait_for(expression, timeout=TRIP_TIMEOUT)
        except TimeoutError as error:
            raise TimeoutError(f"{error}; page: {self.state()}") from None

    def saved_on_bridge(self) -> None:
        """Until the bridge holds this site's session cookie under the resume token (or, with a shared iframe
        cookie and no token, in the iframe)."""
        self.browser.wait_for(f"""(async () => {{
            const raw = (document.cookie.split('; ').find(c => c.startsWith({COOKIE!r} + '=')) || '').slice({len(COOKIE) + 1});
            const token = localStorage.getItem({TOKEN_KEY!r});
            if (!raw) return false;
            if (!token) return (await cookieProvider.request({{op: 'get', name: {COOKIE!r}}})).value === raw;
            const r = await fetch({self.sites.bridge!r} + '/api/v1/resume/load',
                                  {{method: 'POST', body: JSON.stringify({{token, name: {COOKIE!r}}})}});
            return (await r.json()).value === raw;
        }})()""", timeout=TRIP_TIMEOUT)

    def screenshot(self, name: str, combo: tuple[str, str]) -> None:
        if RESULTS.is_dir():
            self.browser.screenshot(RESULTS / f"resume-{name}-{combo[0]}-{combo[1]}.png")


def chat_on_a(customer: Customer, combo: tuple[str, str]) -> tuple[str, str]:
    """Opens the chat on A (through the bridge where the iframe cookie is not shared: nothing held there yet, so
    it returns at once, no click), starts it and sends a message. Returns (session id, text)."""
    sites = customer.sites
    customer.type_address(sites.site_a)
    customer.open_chat()
    if not shared_iframe_cookie(combo):
        customer.wait_back_on(sites.site_a)
    assert customer.arrive() == FORM
    has_token = customer.browser.evaluate(f"return localStorage.getItem({TOKEN_KEY!r}) !== null;")
    assert has_token is not shared_iframe_cookie(combo), "the page went to the bridge only where it had to"
    session_id = customer.chat.start()
    text = f"Hello from A, {uuid.uuid4().hex[:8]}"
    customer.chat.send(text)
    customer.saved_on_bridge()
    return session_id, text


@widgets("typed URL on B, anonymous, resume through the bridge: Continue keeps the chat")
def test_a_typed_url_continues_the_chat_after_one_click_on_the_bridge(
        request: pytest.FixtureRequest, browser: Session, combo: tuple[str, str], resume_sites: ResumeSites) -> None:
    customer = Customer(browser, resume_sites)
    session_id, text = chat_on_a(customer, combo)
    clicks_on_a = customer.clicks
    customer.type_address(resume_sites.site_b)
    if shared_iframe_cookie(combo):  # the iframe restores it, no trip: as without the option
        assert browser.evaluate("return cookieProvider.restoredFrom;") == "iframe"
        customer.open_chat()  # the restored async chat shows when opened
        assert customer.chat.arrive() == TRANSCRIPT
        customer.chat.wait_for_text(text)
        assert customer.chat.session_id() == session_id
        observe(request.node, seen_with(resume_sites, f"kept via the iframe cookie, no trip; clicks: A {clicks_on_a}, B 1 (open)"))
        return
    assert customer.chat.view() is None  # nothing restored: the page offers "Chat with us"
    customer.open_chat()
    customer.wait_on_bridge()
    heading = browser.evaluate("return document.body.innerText;")
    assert "Continue your conversation" in heading and "127.0.0.2" in heading, heading
    customer.screenshot("confirmation", combo)
    customer.click("#cb-continue")
    customer.wait_back_on(resume_sites.site_b)
    assert customer.arrive() == TRANSCRIPT
    customer.chat.wait_for_text(text)
    assert customer.chat.session_id() == session_id
    assert browser.evaluate("return cookieProvider.restoredFrom;") == "resume"
    # What the demo page tells the person: how the chat got here.
    assert "resume through the bridge" in browser.evaluate("return window.__demoStatus.line;")
    assert browser.evaluate("return location.hash;") == ""  # the code left the address bar
    customer.screenshot("continued", combo)
    clicks_on_b = customer.clicks - clicks_on_a

    # A second typed visit to B, in a tab of its own (its own sessionStorage), after the cookie there is gone:
    # B's resume token loads the session without a trip.
    browser.evaluate(f"document.cookie = {COOKIE!r} + '=; Max-Age=0; Path=/'; return true;")
    customer.type_address(resume_sites.site_b)
    assert customer.chat.arrive() == TRANSCRIPT
    assert browser.evaluate("return cookieProvider.restoredFrom;") == "resume"
    observe(request.node, seen_with(resume_sites, f"kept after Continue; clicks: A {clicks_on_a} (open), B "
                                                  f"{clicks_on_b} (open, Continue); second typed visit to B: 0"))


@trip_profiles
@widgets("typed URL on B, anonymous, resume through the bridge: Start new gives a fresh chat")
def test_start_new_on_the_bridge_gives_a_fresh_chat(
        request: pytest.FixtureRequest, browser: Session, combo: tuple[str, str], resume_sites: ResumeSites) -> None:
    customer = Customer(browser, resume_sites)
    chat_on_a(customer, combo)
    customer.type_address(resume_sites.site_b)
    customer.open_chat()
    customer.wait_on_bridge()
    customer.click("#cb-new")
    customer.wait_back_on(resume_sites.site_b)
    assert customer.chat.arrive() == FORM  # the chat the customer asked for, opened, empty
    assert TRANSCRIPT not in customer.chat.views()
    assert not customer.chat.session_id()
    # A's chat is no longer offered: the next typed visit with the token finds nothing.
    assert browser.evaluate(f"return localStorage.getItem({TOKEN_KEY!r}) !== null;") is True
    observe(request.node, seen_with(resume_sites, "fresh chat after Start new; the stored chat is deleted"))


@trip_profiles
@widgets("resume: a code that comes back to a tab that did not start the trip restores nothing")
def test_a_trip_started_elsewhere_restores_nothing(
        request: pytest.FixtureRequest, browser: Session, combo: tuple[str, str], resume_sites: ResumeSites) -> None:
    """A link that starts the trip from outside (an attacker's, or a stale tab's): the bridge asks, the customer
    even clicks Continue, and B, which kept no state for it, restores nothing."""
    customer = Customer(browser, resume_sites)
    chat_on_a(customer, combo)
    state = secrets.token_urlsafe(32)[:43]
    to = json.dumps(resume_sites.site_b + PAGE)
    browser.goto(f"{resume_sites.bridge}/resume?to={resume_sites.site_b}{PAGE}&state={state}&name={COOKIE}")
    customer.wait_on_bridge()
    customer.click("#cb-continue")
    browser.wait_for(f"location.href.startsWith({to}) && {LOADED}", timeout=TRIP_TIMEOUT)
    assert browser.evaluate("return (await cookieProvider.loadCookie());") is None
    assert customer.chat.view() is None
    assert browser.evaluate("return cookieProvider.restoredFrom;") is None
    assert browser.evaluate(f"return localStorage.getItem({TOKEN_KEY!r});") is None
    observe(request.node, seen_with(resume_sites, "nothing restored (wrong-state), no token kept"))
