"""`cookiebridge demo`, as a newcomer runs it: start a chat on domain-a, follow the link, see it go on at domain-b
and the page say how; type the address instead and see why it did not; sign in and see it follow a typed address;
and a bridge whose certificate is not accepted says so on the page. A screenshot of each demo page per engine and
policy goes to e2e/results/."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from typing import Iterator

import pytest

from cookiebridge.demo.certs import Certs
from cookiebridge.demo.servers import https_server
from cookiebridge.demo.sites import create_demo_app
from e2e.drivers import Session
from e2e.matrix import observe
from e2e.topology import RESULTS
from e2e.widget import FORM, TRANSCRIPT, ChatWidget
from testsupport import ServerThread, free_port, wait_until_healthy

STATUS_DONE = "window.__demoStatus && window.__demoStatus.done && window.__demoStatus.cookieTest !== null"
MECHANISM = "return document.getElementById('status-mechanism').textContent;"
NOTICE = ("const box = document.getElementById('status-notice');"
          "return box && !box.hidden ? box.textContent.replace(/\\s+/g, ' ').trim() : null;")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    work = tmp_path_factory.mktemp("demo")
    log = work / "demo.log"
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache"), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "cookiebridge", "demo", "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        try:
            wait_until_healthy(f"https://127.0.0.1:{port}", process)
        except RuntimeError as exited:
            raise RuntimeError(f"{exited}; its output: {log.read_text()[-2000:]}") from None
        assert "domain-b: https://127.0.0.3:" in log.read_text()
        yield f"{port}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        if RESULTS.is_dir():
            (RESULTS / "demo.log").write_bytes(log.read_bytes())


@pytest.fixture(scope="module")
def untrusted_bridge_site(certs: Certs) -> Iterator[str]:
    """A demo site whose bridge does not answer: the provider script fails to load, as it does in a browser that
    has not accepted the bridge's certificate."""
    port = free_port()
    site = f"https://127.0.0.2:{port}"
    app = create_demo_app(bridge_url=f"https://127.0.0.1:{free_port()}", sites=[site, f"https://127.0.0.3:{port}"])
    servers = ServerThread([https_server(app, "127.0.0.2", port, certs)]).start()
    try:
        yield site
    finally:
        servers.stop()


def shot(browser: Session, page: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    # Two frames, so that what the page just wrote is painted (WebKitGTK's screenshot can lag the DOM).
    browser.evaluate("await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));")
    browser.screenshot(RESULTS / f"demo-{page}-{browser.engine}-{browser.policy}.png")


def blocks_third_party_cookies(browser: Session) -> bool:
    return browser.policy != "third-party-allowed"  # docs/browsers.md: every engine as shipped blocks them


def start_chat(browser: Session, url: str, question: str, first_name: str = "Ann") -> tuple[ChatWidget, str]:
    chat = ChatWidget(browser)
    browser.goto(url)
    assert chat.arrive() == FORM
    session_id = chat.start(first_name=first_name, last_name="Newcomer")
    chat.send(question)
    chat.wait_for_text(f"you said \u201c{question}\u201d")  # the simulated agent answers
    return chat, session_id


@pytest.mark.scenario("cookiebridge demo: chat started on domain-a continues on domain-b")
def test_demo_chat_continues_on_domain_b(request, browser: Session, demo: str) -> None:
    question = "Where is my order #1234?"
    chat, session_id = start_chat(browser, f"https://127.0.0.2:{demo}/", question)
    browser.wait_for(STATUS_DONE)
    shot(browser, "domain-a")
    browser.click("#to-other-site")
    browser.wait_for(f"location.host === '127.0.0.3:{demo}' && document.readyState === 'complete'")
    assert chat.arrive() == TRANSCRIPT, f"domain-b shows the pre-chat form (views: {chat.views()})"
    assert FORM not in chat.views() and chat.error() is None
    chat.wait_for_text(question)
    assert chat.session_id() == session_id
    assert browser.evaluate("return cookieProvider.restoredFrom;") == "handoff"
    # The page and the widget say how the chat got here.
    browser.wait_for(STATUS_DONE)
    assert browser.evaluate(MECHANISM) == "Continued from domain-a (link handoff)"
    chat.wait_for_text("Continued from domain-a (link handoff)")
    assert browser.evaluate(NOTICE) is None
    assert browser.evaluate("return document.getElementById('status-bridge').textContent;") == (
        f"reachable at https://127.0.0.1:{demo}")
    assert browser.evaluate("return window.__cbErrors;") == []
    shot(browser, "domain-b")
    observe(request.node, "continued, and the page says how; screenshots in e2e/results")


@pytest.mark.scenario("cookiebridge demo: a typed address says why the chat did not follow")
def test_typed_address_explains_itself(request, browser: Session, demo: str) -> None:
    start_chat(browser, f"https://127.0.0.2:{demo}/", "Typed, not followed")
    browser.goto(f"https://127.0.0.3:{demo}/")
    browser.wait_for(STATUS_DONE)
    chat = ChatWidget(browser)
    if blocks_third_party_cookies(browser):
        assert chat.arrive() == FORM
        assert browser.evaluate(MECHANISM) == "Nothing restored: a new chat"
        notice = browser.evaluate(NOTICE)
        assert notice and notice.startswith("This browser blocks third-party cookies, so a chat does not follow a "
                                            "typed address"), notice
        assert "Follow a link from domain-a" in notice and "signed-in page" in notice and "not-stored" in notice
        assert browser.evaluate("return document.getElementById('status-cookie-test').textContent;").startswith(
            "third-party cookies blocked")
        observe(request.node, "new chat, and the page says why and what would carry it")
    else:
        assert chat.arrive() == TRANSCRIPT
        assert browser.evaluate(MECHANISM) == "Continued through the bridge's iframe cookie (third-party cookies " \
            "allowed)"
        assert browser.evaluate(NOTICE) is None
        observe(request.node, "continued through the iframe cookie, and the page says so")
    assert browser.evaluate("return window.__cbErrors;") == []
    shot(browser, "typed-domain-b")


@pytest.mark.scenario("cookiebridge demo: the signed-in page keeps the chat on a typed address")
def test_signed_in_page_keeps_the_chat_on_a_typed_address(request, browser: Session, demo: str) -> None:
    question = "Signed in, typed"
    customer = f"customer={uuid.uuid4().hex[:12]}"  # one customer per browser: the demo process is shared
    chat, session_id = start_chat(browser, f"https://127.0.0.2:{demo}/identity.html?{customer}", question, "Sig")
    browser.wait_for(STATUS_DONE)
    shot(browser, "identity-domain-a")
    browser.goto(f"https://127.0.0.3:{demo}/identity.html?{customer}")
    assert chat.arrive() == TRANSCRIPT, f"domain-b shows {chat.views()}"
    chat.wait_for_text(question)
    assert chat.session_id() == session_id
    browser.wait_for(STATUS_DONE)
    assert browser.evaluate(MECHANISM) == "Continued for the signed-in customer (signed identity)"
    chat.wait_for_text("Continued for the signed-in customer (signed identity)")
    assert browser.evaluate(NOTICE) is None
    assert browser.evaluate("return window.__cbErrors;") == []
    shot(browser, "identity-typed-domain-b")
    observe(request.node, "continued by signed identity")


@pytest.mark.scenario("cookiebridge demo: a bridge whose certificate is not accepted is named on the page")
def test_untrusted_bridge_says_what_to_do(request, browser: Session, untrusted_bridge_site: str) -> None:
    browser.goto(untrusted_bridge_site + "/")
    browser.wait_for("window.__demoStatus && window.__demoStatus.done && window.__demoStatus.bridge")
    assert browser.evaluate("return typeof window.CookieProvider;") == "undefined"
    notice = browser.evaluate(NOTICE)
    assert notice and notice.startswith("The bridge's script did not load"), notice
    assert "/healthz, accept the warning, and reload this page" in notice
    assert browser.evaluate("return window.__demoStatus.bridge;") == "unreachable"
    assert browser.evaluate(MECHANISM) == "Nothing: the cookie provider did not load"
    assert browser.evaluate("return document.getElementById('chat').textContent;").startswith("No chat widget")
    shot(browser, "untrusted-bridge")
    observe(request.node, "the page names the bridge and what to do")


@pytest.mark.scenario("cookiebridge demo: every page renders (screenshots)")
def test_every_demo_page_renders(request, browser: Session, demo: str) -> None:
    site = f"https://127.0.0.2:{demo}"
    browser.goto(site + "/extension.html")
    browser.wait_for(STATUS_DONE + " && ['enabled', 'disabled'].includes("
                     "document.getElementById('third-party-cookies').textContent)")
    shot(browser, "extension")
    browser.goto(site + "/finalizer.html")
    browser.wait_for(STATUS_DONE)
    assert browser.evaluate(MECHANISM) != "checking\u2026"
    shot(browser, "finalizer")
    browser.goto(site + "/web-engagement.html")
    browser.click("#accept-frame")
    browser.wait_for("window.__opened && document.getElementById('media-widget').contentWindow.__webEngagement")
    assert browser.evaluate("return document.getElementById('invitation').hidden;") is True
    assert browser.evaluate("return getComputedStyle(document.getElementById('media-widget').contentDocument"
                            ".querySelector('header')).display;") == "none"
    shot(browser, "web-engagement-frame")
    browser.goto(site + "/media-widget.html?visitID=v1&pageID=p1&gmsScenario=CHAT-NOW")
    shot(browser, "media-widget")
    assert browser.evaluate("return window.__cbErrors;") == []
    observe(request.node, "screenshots in e2e/results")
