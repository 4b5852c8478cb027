"""The guide's flow, domain-a → domain-b, on every engine and cookie policy, through the real bridge process.

Each test is one row of the compatibility matrix. Where a mechanism cannot work (third-party cookies blocked or
partitioned), the test asserts that this is detected and reported, never that it works, and is never skipped.
The widget is the double of the real Genesys Widgets 9 (cookiebridge/demo/static/widgets-double.js), driven through its DOM
like a customer (e2e/widget.py); e2e/test_core_scenarios.py runs the core of this with the real library too.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import quote, urlsplit

import pytest

from cookiebridge.identity import sign_identity
from e2e.drivers import Session
from e2e.matrix import observe
from e2e.topology import COOKIE, IDENTITY_SECRET, NamedTopology, Topology, wait_saved_in_iframe
from e2e.widget import FORM, TRANSCRIPT, ChatWidget

PAGES = {"guide": "/", "extension": "/extension.html"}
PROVIDER = {
    "guide": "cookieProvider",
    "extension": "window._genesys.widgets.extensions.CookieProviderExtension.provider",
}
NOTICE = "['enabled', 'disabled'].includes(document.getElementById('third-party-cookies').textContent) && document.getElementById('third-party-cookies').textContent"
# What the customer writes on A: B's transcript must show it (the server's history of the restored chat).
MESSAGE = "Where is my order? Grüße ☃"
# Every cookie of the session's name on this page, raw (a domain cookie and a host-only one both show).
SESSION_COOKIES = f"return document.cookie.split('; ').filter(c => c.startsWith({COOKIE!r} + '=')).map(c => c.slice({len(COOKIE) + 1}));"
# The token in the guide's cookie: the widget's sessionData {messageIndex, token}, written with js-cookie 2.
COOKIE_TOKEN = f"""
const raw = document.cookie.split('; ').find(c => c.startsWith({COOKIE!r} + '='));
return raw ? JSON.parse(decodeURIComponent(raw.slice({len(COOKIE) + 1}))).token : null;"""


def third_party_cookies(combo: tuple[str, str]) -> bool:
    """Where the iframe's cookie is shared between sites (docs/browsers.md): only the permissive profiles."""
    return combo[1] == "third-party-allowed"


def start_chat(browser: Session, url: str) -> str:
    """Open `url`, start a chat through the pre-chat form and write MESSAGE; returns the session id."""
    browser.goto(url)
    chat = ChatWidget(browser)
    assert chat.arrive() == FORM
    session_id = chat.start()
    chat.send(MESSAGE)
    return session_id


def click_through(browser: Session, href: str, origin: str) -> None:
    """Follow `href` by clicking a link to it on the current page, as a customer does (a typed URL has no referrer,
    and the bridge redeems a handoff code only on a page that came from the site that issued it)."""
    browser.evaluate("""
        const link = Object.assign(document.createElement('a'), {id: 'cb-test-link', href: args[0], textContent: 'go'});
        document.body.prepend(link);
        return true;""", href)
    browser.follow("#cb-test-link", origin)


def arrive(browser: Session) -> tuple[ChatWidget, str]:
    """After a navigation: the widget's settled view, FORM (a fresh chat) or TRANSCRIPT, and no page error."""
    chat = ChatWidget(browser)
    view = chat.arrive()
    assert browser.evaluate("return window.__cbErrors;") == []
    return chat, view


def assert_restored(browser: Session, session_id: str | None = None) -> ChatWidget:
    """The widget on this page continued the chat: it never offered a new one, and shows what was written on A."""
    chat, view = arrive(browser)
    if view != TRANSCRIPT:
        late = "the session cookie is here now: the provider answered after the widget had read it" if browser.evaluate(
            f"return document.cookie.includes({COOKIE!r} + '=');") else "no session cookie arrived"
        pytest.fail(f"the widget offered a new chat ({late})")
    assert FORM not in chat.views(), "the pre-chat form flashed up before the restore"
    if session_id is not None:
        assert chat.session_id() == session_id
    chat.wait_for_text(MESSAGE)
    return chat


@pytest.mark.parametrize(
    "page",
    [pytest.param("guide", marks=pytest.mark.scenario("link A→B keeps the chat (guide's CookieProvider page)")),
     pytest.param("extension", marks=pytest.mark.scenario("link A→B keeps the chat (guide's extension page)"))],
)
def test_following_a_link_keeps_the_chat(request, browser: Session, topology: Topology, page: str) -> None:
    session = start_chat(browser, topology.site_a + PAGES[page])
    browser.follow("#to-other-site", topology.site_b)
    # The code leaves the address bar a moment later: the API script that takes it out loads after the restore.
    browser.wait_for("!location.href.includes('cb-handoff')", timeout=5)
    assert_restored(browser, session)
    source = browser.evaluate(f"return {PROVIDER[page]}.restoredFrom;")
    assert source == "handoff"
    observe(request.node, f"kept, via {source}")


@pytest.mark.parametrize(
    "page",
    [pytest.param("guide", marks=pytest.mark.scenario("typed URL on B keeps the chat (iframe cookie)")),
     pytest.param("extension", marks=pytest.mark.scenario("typed URL on B, extension page: kept or reported"))],
)
def test_typing_the_other_sites_url_keeps_the_chat_only_where_third_party_cookies_work(
    request, browser: Session, topology: Topology, combo: tuple[str, str], page: str
) -> None:
    session = start_chat(browser, topology.site_a + PAGES[page])
    if third_party_cookies(combo):
        wait_saved_in_iframe(browser, PROVIDER[page])
    browser.goto(topology.site_b + PAGES[page])
    if third_party_cookies(combo):
        assert_restored(browser, session)
        assert browser.evaluate(f"return {PROVIDER[page]}.restoredFrom;") == "iframe"
        observe(request.node, "kept, via iframe cookie")
    else:
        assert arrive(browser)[1] == FORM  # a fresh chat: the iframe's cookie is blocked or partitioned
        assert browser.evaluate(f"return await {PROVIDER[page]}.cookieTest();") is False
        if page == "extension":
            assert browser.wait_for(NOTICE) == "disabled"
        observe(request.node, "not kept; detected: cookieTest() = false")


@pytest.mark.scenario("cookieTest tells the truth and calls the notification")
def test_cookie_test_reports_the_truth(request, browser: Session, topology: Topology, combo: tuple[str, str]) -> None:
    browser.goto(topology.site_a + PAGES["extension"])
    shown = browser.wait_for(NOTICE)
    expected = third_party_cookies(combo)
    assert shown == ("enabled" if expected else "disabled")
    details = browser.evaluate("""
        return await new Promise(resolve => cookieProvider.cookieTest((enabled, details) => resolve([enabled, details])));
    """.replace("cookieProvider", PROVIDER["extension"]))
    assert details[0] is expected
    assert details[1] == {"thirdPartyCookies": expected, "handoff": True, "identity": False}
    observe(request.node, f"cookieTest() = {str(expected).lower()}")


def forgotten(browser: Session, provider: str) -> None:
    """Until this site's session cookie and the bridge's iframe copy are both gone."""
    browser.wait_for(f"""(async () => !document.cookie.includes({COOKIE!r} + '=') &&
        (await {provider}.request({{ op: 'get', name: {COOKIE!r} }})).value == null)()""", timeout=15)


@pytest.mark.parametrize(
    "page, ended_by",
    [pytest.param("guide", "server", marks=pytest.mark.scenario("chat ended by the server is not restored on B")),
     pytest.param("extension", "customer", marks=pytest.mark.scenario("chat ended by the customer is not restored on B"))],
)
def test_an_ended_chat_is_not_restored(request, browser: Session, topology: Topology, combo: tuple[str, str],
                                       page: str, ended_by: str) -> None:
    """The real widget publishes no WebChat.ended, and a chat the server ends has no event at all: the provider
    follows the widget's own state cookie, and the extension listens to WebChatService.ended."""
    session = start_chat(browser, topology.site_a + PAGES[page])
    chat = ChatWidget(browser)
    if third_party_cookies(combo):
        wait_saved_in_iframe(browser, PROVIDER[page])
    if ended_by == "server":
        chat.agent(session, end=True)
    else:
        chat.end()
    forgotten(browser, PROVIDER[page])
    browser.follow("#to-other-site", topology.site_b)
    chat, view = arrive(browser)
    assert view == FORM and chat.error() is None  # a fresh chat, and no "session lost" error
    browser.goto(topology.site_b + PAGES[page])
    assert arrive(browser)[1] == FORM
    observe(request.node, "B starts a fresh chat")


@pytest.mark.scenario("untrusted origins learn nothing (CSP on, and CSP stripped)")
def test_untrusted_origins_learn_nothing(request, browser: Session, topology: Topology, combo: tuple[str, str]) -> None:
    session = start_chat(browser, topology.site_a + PAGES["guide"])
    if third_party_cookies(combo):
        wait_saved_in_iframe(browser, PROVIDER["guide"])
    tried = 0
    for name, origin in topology.hostile.items():
        for bridge in (topology.bridge, topology.stripped_bridge):
            browser.goto(f"{origin}/?iframe={quote(bridge + '/iframe.html', safe='')}")
            learned = browser.evaluate("return await window.__attack;")
            assert learned["loaded"] is None, (name, bridge)
            assert learned["tested"] is False, (name, bridge)
            assert learned["replies"] == [], (name, bridge)
            # Cookies ignore ports, and on loopback plain http counts as secure: a page on domain-a's own host
            # shares domain-a's first-party cookie jar whatever the bridge does; elsewhere there must be nothing.
            if urlsplit(origin).hostname != urlsplit(topology.site_a).hostname:
                assert COOKIE not in learned["cookie"], (name, bridge)
            tried += 1
    # The attacker's 'set' and 'remove' changed nothing: B still restores the real session.
    browser.goto(topology.site_a + PAGES["guide"])
    assert arrive(browser)[1] == TRANSCRIPT
    browser.follow("#to-other-site", topology.site_b)
    assert_restored(browser, session)
    observe(request.node, f"{tried} attacks, no reply, no data")


@pytest.mark.scenario("bridge unreachable: page and widget work, loadCookie settles")
def test_the_page_works_when_the_bridge_is_down(request, browser: Session, topology: Topology) -> None:
    browser.goto(topology.down_site + "/")
    chat = ChatWidget(browser)
    assert chat.arrive() == FORM
    began = time.monotonic()
    value = browser.evaluate("return await cookieProvider.loadCookie();")
    waited = time.monotonic() - began
    assert value is None and waited < 3.5  # the default timeout is 3 s
    assert browser.evaluate("return await cookieProvider.saveCookie();") is False
    assert browser.evaluate("return await cookieProvider.cookieTest();") is False
    chat.start()
    chat.send(MESSAGE)
    assert browser.evaluate("return window.__cbErrors;") == []
    observe(request.node, f"settled in {waited:.1f} s, chat works")


@pytest.mark.scenario("signed identity keeps the chat on a typed URL")
def test_signed_identity_keeps_the_chat_on_a_typed_url(request, browser: Session, topology: Topology) -> None:
    customer = f"customer-{uuid.uuid4()}"
    session = start_chat(browser, f"{topology.site_a}/identity.html?customer={customer}")
    # Until the bridge's identity store holds this site's session cookie (the page's saveCookie has run).
    token = sign_identity(customer, IDENTITY_SECRET, audience="cookiebridge", ttl=600)
    browser.wait_for(f"""(async () => {{
        const p = cookieProvider, raw = document.cookie.split('; ').find(c => c.startsWith(p.name + '='));
        const r = await fetch({topology.bridge + '/api/v1/identity/load'!r}, {{ method: 'POST', credentials: 'omit',
            body: JSON.stringify({{ token: {token!r}, name: p.name }}) }});
        return !!raw && r.ok && (await r.json()).value === raw.slice(p.name.length + 1);
    }})()""")
    browser.goto(f"{topology.site_b}/identity.html?customer={customer}")
    assert_restored(browser, session)
    assert browser.evaluate("return cookieProvider.restoredFrom;") == "identity"
    observe(request.node, "kept, via identity")


@pytest.mark.scenario("a replayed handoff link restores nothing")
def test_a_replayed_handoff_link_restores_nothing(request, browser: Session, new_browser, topology: Topology) -> None:
    start_chat(browser, topology.site_a + PAGES["guide"])
    link = browser.evaluate("return await cookieProvider.decorate(args[0]);", topology.site_b + "/")
    assert "#cb-handoff=" in link
    click_through(browser, link, topology.site_b)
    assert_restored(browser)
    # Another customer gets the same link onto domain-a's own page (as good a referrer as it gets) and follows it.
    other = new_browser()
    other.goto(topology.site_a + "/")
    click_through(other, link, topology.site_b)
    assert arrive(other)[1] == FORM
    assert other.evaluate("return cookieProvider.restoredFrom;") is None
    observe(request.node, "second use: fresh chat")


@pytest.mark.scenario("two bridges on one Redis: code from one redeemed by the other; expired code restores nothing")
def test_two_bridges_sharing_redis(request, browser: Session, new_browser, topology: Topology) -> None:
    session = start_chat(browser, topology.redis_a + "/")
    link = browser.evaluate("return await cookieProvider.decorate(args[0]);", topology.redis_b + "/")
    click_through(browser, link, topology.redis_b)  # redis_b's pages use the second bridge process
    assert_restored(browser, session)
    stale = browser.evaluate("return await cookieProvider.decorate(args[0]);", topology.redis_a + "/")
    time.sleep(6)  # these bridges run with --handoff-ttl 5
    other = new_browser()
    other.goto(topology.redis_b + "/")
    click_through(other, stale, topology.redis_a)
    assert arrive(other)[1] == FORM
    observe(request.node, "redeemed across processes; expired: fresh chat")


@pytest.mark.scenario("providers on one page share one iframe; values up to the cookie limit round-trip, larger refused")
def test_shared_iframe_and_value_limits(request, browser: Session, topology: Topology,
                                        combo: tuple[str, str]) -> None:
    browser.goto(topology.site_a + PAGES["guide"])
    ChatWidget(browser).arrive()
    outcome = browser.evaluate("""
        const again = new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL), third = new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL);
        await Promise.all([again.cookieTest(), third.cookieTest(), cookieProvider.cookieTest()]);
        const bridgeFrames = () => [...document.querySelectorAll('iframe')].filter(f => f.src === IFRAME_URL);
        const frames = bridgeFrames().length;
        // Raw cookie values as the widget's Cookie helper writes them: every character is cookie-safe.
        const fits = 'v'.repeat(4096 - SESSION_COOKIE_NAME.length - 1), tooLarge = fits + 'v';
        const stored = await cookieProvider.request({op: 'set', name: SESSION_COOKIE_NAME, value: fits});
        const readBack = await cookieProvider.request({op: 'get', name: SESSION_COOKIE_NAME});
        const refused = await cookieProvider.request({op: 'set', name: SESSION_COOKIE_NAME, value: tooLarge});
        // A page that moves the iframe in the DOM reloads it; the provider opens a new channel to the new document.
        const frame = bridgeFrames()[0];
        const reloaded = new Promise(resolve => frame.addEventListener('load', resolve, {once: true}));
        document.body.appendChild(frame);
        await reloaded;
        const afterMove = await cookieProvider.request({op: 'hello'});
        return {frames, stored, readBack: readBack.value === fits, refused, afterMove};
    """)
    assert outcome["frames"] == 1
    assert outcome["afterMove"]["ok"] is True and outcome["afterMove"]["value"]["version"] == 1
    assert outcome["refused"] == {"ok": False, "error": "too-large"}
    if third_party_cookies(combo) or combo == ("firefox", "default"):  # Firefox stores a partitioned copy
        assert outcome["stored"]["ok"] is True and outcome["readBack"] is True
        observe(request.node, "1 iframe; 4096-byte cookie kept; larger: too-large")
    else:
        assert outcome["stored"] == {"ok": False, "error": "not-stored"}
        observe(request.node, "1 iframe; blocked: not-stored; larger: too-large")


@pytest.mark.scenario("the bridge's access log holds no session data or handoff code")
def test_bridge_log_holds_no_session_data(request, browser: Session, topology: Topology) -> None:
    session = start_chat(browser, topology.site_a + PAGES["guide"])
    token = browser.evaluate(COOKIE_TOKEN)
    code_link = browser.evaluate("return await cookieProvider.decorate(args[0]);", topology.site_b + "/")
    click_through(browser, code_link, topology.site_b)
    assert_restored(browser)
    log = (topology.logs / "bridge.log").read_text()
    assert '"POST /api/v1/handoff/redeem HTTP/1.1" 200' in log  # the log is on and saw the redemption
    code = code_link.split("cb-handoff=", 1)[1]
    for secret in (session, token, token[-20:], code, code[:20]):
        assert secret not in log
    observe(request.node, "log checked")


@pytest.mark.scenario("on hostnames: one session cookie after a link, the widget reads it, removeCookie leaves none")
def test_one_session_cookie_on_hostnames(request, browser: Session, named_topology: NamedTopology) -> None:
    """On a hostname the real widget writes the guide's cookie with Domain=.<registrable domain>; the provider
    writes its restored copy there too, so B never holds two cookies of one name (the widget would read the older)."""
    session = start_chat(browser, named_topology.site_a + PAGES["extension"])
    browser.follow("#to-other-site", named_topology.site_b)
    chat = assert_restored(browser, session)
    cookies = browser.evaluate(SESSION_COOKIES)
    assert len(cookies) == 1, cookies
    # The widget's own view of the session is the restored cookie's (it rewrote it with its fresh token).
    assert browser.evaluate(COOKIE_TOKEN) == chat.session_data()["token"]
    assert browser.evaluate(f"return await {PROVIDER['extension']}.removeCookie();") is True
    assert browser.evaluate(SESSION_COOKIES) == []
    observe(request.node, "1 cookie; removeCookie: none left")
