"""The guide's widget extensions in real browsers: chat-finalizer.min.js and web-engagement.min.js, served by the real
bridge process, on the demo sites' /finalizer.html, /web-engagement.html and /media-widget.html pages.

The agent is played through the chat emulator's control route; the Monitoring JS API (_gt) by the double on
/web-engagement.html (?gt=answer|silent|absent|queued).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from e2e.conftest import COOKIE, WIDGET_SETTLED, Topology, wait_saved_in_iframe
from e2e.drivers import Session
from e2e.matrix import observe

NOTICE = ("Thank you for your query. Please do not respond to this automated message if you do not have additional "
          "questions.")
INJECTED = {"type": "text", "text": NOTICE, "bubble": {"time": False}}
SETTLED = WIDGET_SETTLED
# What breaks naive query-string handling: separators, spaces, plus and percent signs, non-ASCII, a surrogate pair.
SPECIAL_IDS = {"visitID": "v&id=1 2+3%20é☃/?#日本😀", "pageID": "  p=&q r  "}
WIDGET_BASE = {"first_name": "Demo", "last_name": "Customer"}


def no_errors(browser: Session, frame: str = "window") -> None:
    assert browser.evaluate(f"return {frame}.__cbErrors;") == []


def open_finalizer(browser: Session, site: str, query: str = "") -> dict:
    browser.goto(f"{site}/finalizer.html{query}")
    browser.wait_for(SETTLED)
    return browser.evaluate("return window.__widgetDouble;")


def start_chat(browser: Session) -> str:
    browser.evaluate("await CXBus.command('WebChat.startChat', {}); return true;")
    return browser.wait_for("window.__widgetDouble.state === 'started' && window.__widgetDouble.sessionId")


def seen(browser: Session, state: str, count: int = 1) -> None:
    """Until the widget has delivered `count` state changes to `state` (its subscribers have run by then)."""
    browser.wait_for(f"""window.__widgetDouble.messages.filter(m => m.event === 'InteractionStateChange'
        && m.data.interactionState === {state!r}).length >= {count}""")


def agent(browser: Session, state: str, count: int = 1) -> None:
    """The agent moves the interaction to `state`; waits until the widget has seen it (the `count`th time)."""
    assert browser.evaluate("return await simulatedAgent(args[0]);", state) is True
    seen(browser, state, count)


def injected(browser: Session) -> list:
    return browser.evaluate("return window.__widgetDouble.injected;")


@pytest.mark.scenario("finalizer: agent finalizes → one notice (Finalizing, then Completed)")
def test_finalizing_then_completed_injects_the_notice_once(request, browser: Session, topology: Topology) -> None:
    open_finalizer(browser, topology.site_a, "?provider=0")
    start_chat(browser)
    # Malformed events reach the finalizer first: it must neither throw nor act.
    browser.evaluate("""
        for (const data of [null, {}, {originalMessages: 'x'}, {originalMessages: [null, 5, {type: 'System'},
            {type: 'System', event: 'InteractionStateChange'},
            {type: 'System', event: 'InteractionStateChange', data: {interactionState: {}}}]}]) {
          CXBus.publish('WebChatService.messageReceived', data);
        }
        return true;""")
    assert injected(browser) == []
    agent(browser, "Finalizing")
    assert injected(browser) == [INJECTED]
    agent(browser, "Completed")
    assert injected(browser) == [INJECTED]
    assert browser.evaluate("return document.querySelectorAll('#chat-messages li.injected').length;") == 1
    assert browser.evaluate("return document.getElementById('finalized').textContent;").startswith("Finalizing")
    assert browser.evaluate("return window.__widgetDouble.state;") == "started"  # async chat: not ended
    no_errors(browser)
    observe(request.node, "1 notice for Finalizing + Completed")


@pytest.mark.scenario("finalizer: reload replays the history → no second notice")
def test_a_reload_replaying_the_history_does_not_repeat_the_notice(request, browser: Session,
                                                                   topology: Topology) -> None:
    open_finalizer(browser, topology.site_a)  # with the cookie provider, as the guide's page has it
    session = start_chat(browser)
    agent(browser, "Finalizing")
    assert injected(browser) == [INJECTED]
    browser.goto(topology.site_a + "/finalizer.html")
    browser.wait_for("window.__widgetDouble.state === 'restored'")
    assert browser.evaluate("return window.__widgetDouble.sessionId;") == session
    seen(browser, "Finalizing")  # the history replay delivered the old state change again
    assert injected(browser) == []
    agent(browser, "Completed")  # the same interaction completes after the reload
    assert injected(browser) == []
    no_errors(browser)
    observe(request.node, "replayed Finalizing, later Completed: no notice")


@pytest.mark.scenario("finalizer: a new interaction gets its own notice")
def test_a_new_interaction_is_notified_again(request, browser: Session, topology: Topology) -> None:
    open_finalizer(browser, topology.site_a, "?provider=0")
    start_chat(browser)
    agent(browser, "Finalizing")
    browser.evaluate("await CXBus.command('WebChat.sendMessage', {message: 'Thanks!'}); return true;")
    agent(browser, "Active")
    agent(browser, "Finalizing", count=2)
    agent(browser, "Completed")
    assert injected(browser) == [INJECTED, INJECTED]
    browser.goto(topology.site_a + "/finalizer.html?provider=0")
    browser.wait_for("window.__widgetDouble.state === 'restored'")
    seen(browser, "Finalizing", count=2)
    assert injected(browser) == []
    no_errors(browser)
    observe(request.node, "2 interactions: 2 notices; reload: none")


@pytest.mark.scenario("finalizer: non-async chat → endChat")
def test_a_non_async_chat_is_ended(request, browser: Session, topology: Topology) -> None:
    open_finalizer(browser, topology.site_a, "?async=0&provider=0")
    session = start_chat(browser)
    assert browser.evaluate("return await simulatedAgent('Finalizing');") is True
    browser.wait_for("window.__widgetDouble.state === 'ended'")
    assert injected(browser) == []
    ended = browser.evaluate("""
        const reply = await fetch('/chat/sessions/' + encodeURIComponent(args[0]) + '/messages', {cache: 'no-store'});
        return (await reply.json()).data.chatEnded;""", session)
    assert ended is True
    assert browser.evaluate("return window.__widgetDouble.events.includes('WebChat.ended');") is True
    no_errors(browser)
    observe(request.node, "chat ended, no notice")


@pytest.mark.scenario("finalizer: chat ended → removeCookie, the other site starts fresh")
def test_an_ended_chat_is_removed_from_the_bridge(request, browser: Session, topology: Topology,
                                                 combo: tuple[str, str]) -> None:
    open_finalizer(browser, topology.site_a)
    start_chat(browser)
    if combo[1] == "third-party-allowed":  # only there does the iframe's cookie carry the chat (browsers.md)
        wait_saved_in_iframe(browser, "cookieProvider")
    browser.evaluate("""
        const original = cookieProvider.removeCookie;
        window.__removals = [];
        cookieProvider.removeCookie = function () {
          const removal = original.apply(this, arguments);
          window.__removals.push(removal);
          return removal;
        };
        return true;""")
    browser.evaluate("await CXBus.command('WebChat.endChat'); return true;")
    browser.wait_for("window.__removals.length === 1")
    assert browser.evaluate("return await window.__removals[0];") is True
    assert browser.evaluate("return (await cookieProvider.request({ op: 'get', name: cookieProvider.name })).value;") is None
    browser.click("#to-other-site")
    browser.wait_for(f"location.origin === {topology.site_b!r} && document.readyState === 'complete'")
    for _ in ("link", "typed URL"):
        state = browser.wait_for(f"({SETTLED}) && window.__widgetDouble.state")
        assert state == "open"
        assert browser.evaluate("return cookieProvider.restoredFrom;") is None
        assert browser.evaluate(f"return document.cookie.includes({COOKIE!r} + '=');") is False
        no_errors(browser)
        browser.goto(topology.site_b + "/finalizer.html")
    observe(request.node, "removeCookie() = true; B: fresh chat")


# -- Web Engagement -------------------------------------------------------------------------------------------


def accept(browser: Session, site: str, button: str, ids: dict | None = None, mode: str = "answer") -> dict:
    browser.goto(f"{site}/web-engagement.html?gt={mode}")
    if ids is not None:
        browser.evaluate("window.__gtDouble.ids = args[0]; return true;", ids)
    browser.click(button)
    return browser.evaluate("return await window.__opening;")


@pytest.mark.scenario("web engagement: visitID/pageID with &, =, spaces, non-ASCII reach the widget exactly")
def test_ids_reach_the_media_widget_exactly(request, browser: Session, topology: Topology) -> None:
    expected = {**WIDGET_BASE, **SPECIAL_IDS, "webengagement": ""}
    opened = accept(browser, topology.site_a, "#accept-frame", SPECIAL_IDS)
    assert opened["ids"] == SPECIAL_IDS and not opened["blocked"]
    query = parse_qs(urlsplit(opened["url"]).query, keep_blank_values=True, strict_parsing=True)
    assert query == {"visitId": [SPECIAL_IDS["visitID"]], "pageId": [SPECIAL_IDS["pageID"]],
                     "gmsScenario": ["CHAT-NOW"]}
    frame = "document.getElementById('media-widget').contentWindow"
    widget = browser.wait_for(f"{frame}.__webEngagement")
    assert widget["params"] == expected
    assert widget["context"]["scenario"] == "CHAT-NOW" and widget["context"]["engaged"] is True
    no_errors(browser)
    no_errors(browser, frame)

    opened = accept(browser, topology.site_a, "#accept-popup", SPECIAL_IDS)
    assert opened["popup"] is True and not opened["blocked"]
    popup = browser.wait_for("window.__opened.window.__webEngagement")
    assert popup["params"] == expected
    assert browser.evaluate("const w = window.__opened.window, errors = w.__cbErrors; w.close(); return errors;") == []
    no_errors(browser)
    observe(request.node, "exact in iframe and pop-up; webengagement attached")


@pytest.mark.scenario("web engagement: _gt absent, silent or late → settles within the timeout")
def test_get_ids_settles_when_gt_is_absent_silent_or_late(request, browser: Session, topology: Topology) -> None:
    timings = {}
    for mode, expected in (("absent", None), ("silent", None), ("queued", {"visitID": "-2nd8kqzkm1bf4m3a",
                                                                          "pageID": "-2nd8kqzkm1bf4m3b"})):
        browser.goto(f"{topology.site_a}/web-engagement.html?gt={mode}")
        began = time.monotonic()
        assert browser.evaluate("return await WebEngagementContext.getIds(1000);") == expected, mode
        timings[mode] = time.monotonic() - began
        assert timings[mode] < 2.5, mode
        no_errors(browser)
    assert timings["queued"] < 0.95  # answered once the late agent drained its queue, not at the timeout

    opened = accept(browser, topology.site_a, "#accept-frame", mode="silent")
    assert opened["ids"] is None and "visitId" not in opened["url"] and "gmsScenario=CHAT-NOW" in opened["url"]
    frame = "document.getElementById('media-widget').contentWindow"
    widget = browser.wait_for(f"{frame}.__webEngagement")
    assert widget["params"] == WIDGET_BASE and widget["context"]["engaged"] is False
    no_errors(browser)
    no_errors(browser, frame)
    observe(request.node, ", ".join(f"{mode} {seconds:.1f} s" for mode, seconds in timings.items()))


@pytest.mark.scenario("web engagement: missing or invalid values → no crash, no attached data")
def test_missing_or_invalid_values_do_not_crash_the_widget(request, browser: Session, topology: Topology) -> None:
    browser.goto(topology.site_a + "/media-widget.html")
    widget = browser.wait_for("window.__webEngagement")
    assert widget["params"] == WIDGET_BASE
    assert widget["context"] == {"visitID": None, "pageID": None, "scenario": "CHAT-NOW", "engaged": False}
    no_errors(browser)
    browser.goto(topology.site_a + "/media-widget.html?visitId=%00x&pageId=%E0%A4%A&gmsScenario=%3Cscript%3E")
    assert browser.wait_for("window.__webEngagement")["params"] == WIDGET_BASE
    assert browser.evaluate("return document.getElementById('we-scenario').textContent;") == "CHAT-NOW"
    no_errors(browser)
    cases = browser.evaluate("""
        const read = (search) => {
          const context = WebEngagementContext.readFromLocation(search);
          return [context.scenario, WebEngagementContext.attachedData(context)];
        };
        return {
          empty: read(''), garbage: read('?%%%&&=='), onlyVisit: read('?visitId=v'),
          blankPage: read('?visitId=v&pageId=%20'),
          tooLong: read('?visitId=' + 'x'.repeat(257) + '&pageId=p'), control: read('?visitId=v%0A&pageId=p'),
          loneSurrogate: read('?visitId=%ED%A0%80&pageId=p'), valid: read('?visitId=v&pageId=p&gmsScenario=VOICE-NOW'),
          noContext: WebEngagementContext.attachedData(undefined),
          badUrl: WebEngagementContext.buildWidgetUrl('https://[', {}),
        };""")
    for name in ("empty", "garbage", "onlyVisit", "blankPage", "tooLong", "control", "loneSurrogate"):
        assert cases[name] == ["CHAT-NOW", {}], name
    assert cases["valid"] == ["VOICE-NOW", {"visitID": "v", "pageID": "p", "webengagement": ""}]
    assert cases["noContext"] == {} and cases["badUrl"] is None
    no_errors(browser)
    observe(request.node, "no attached data, scenario CHAT-NOW, no error")
