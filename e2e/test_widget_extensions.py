"""The guide's widget extensions in real browsers: chat-finalizer.min.js and web-engagement.min.js, served by the real
bridge process, on the demo sites' /finalizer.html, /web-engagement.html and /media-widget.html pages.

The chat widget (the double of the real Genesys Widgets) is driven through its DOM by e2e.widget.ChatWidget; the
agent is played through the chat server's control route (POST {dataURL}/{sid}/agent); what the widget delivered
is read from the bus. The Monitoring JS API (_gt) is played by the double on /web-engagement.html
(?gt=answer|silent|absent|queued).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from e2e.drivers import Session
from e2e.matrix import observe
from e2e.topology import COOKIE, Topology
from e2e.widget import FORM, TRANSCRIPT, ChatWidget

NOTICE = ("Thank you for your query. Please do not respond to this automated message if you do not have additional "
          "questions.")
INJECTED = {"type": "text", "text": NOTICE, "bubble": {"time": False}}
# What breaks naive query-string handling: separators, spaces, plus and percent signs, non-ASCII, a surrogate pair.
SPECIAL_IDS = {"visitID": "v&id=1 2+3%20é☃/?#日本😀", "pageID": "  p=&q r  "}
WIDGET_BASE = {"first_name": "Demo", "last_name": "Customer"}
# Records what the widget publishes on the bus: the interaction states its messageReceived events delivered (a
# history replay included) and the chat service's lifecycle events. Installed right after the page's load event,
# while widgets-core is still loading, so it sees the restore's replay too.
RECORD_BUS = """
if (window.__bus) return true;
const bus = window.__bus = {states: [], events: []};
for (const name of ['WebChatService.started', 'WebChatService.restored', 'WebChatService.ended',
                    'WebChatService.sessionLost']) {
  CXBus.subscribe(name, () => bus.events.push(name));
}
CXBus.subscribe('WebChatService.messageReceived', (e) => {
  const messages = e && e.data && e.data.originalMessages;
  for (const m of Array.isArray(messages) ? messages : []) {
    if (m && m.type === 'System' && m.event === 'InteractionStateChange' && m.data) {
      bus.states.push(m.data.interactionState);
    }
  }
});
return true;"""
NOTICES = "document.querySelectorAll('.cx-webchat .cx-transcript .cx-message.cx-injected')"
# Until the bridge's iframe cookie holds this chat's token. Not the exact value: the widget rewrites the cookie after
# every message it processes (messageIndex changes), and a restore reads only the token.
CHAT_IN_IFRAME = """(async () => {
  const p = cookieProvider, raw = document.cookie.split('; ').find(c => c.startsWith(p.name + '='));
  const token = (value) => { try { return JSON.parse(decodeURIComponent(value)).token || null; } catch (e) { return null; } };
  const saved = (await p.request({op: 'get', name: p.name})).value;
  return !!raw && !!saved && token(saved) !== null && token(saved) === token(raw.slice(p.name.length + 1));
})()"""
NO_SESSION = """(async () => {
  let d = null;
  try { d = await CXBus.command('WebChatService.getSessionData'); } catch (rejected) { /* no chat service */ }
  return !d || !d.sessionId;
})()"""


def no_errors(browser: Session, frame: str = "window") -> None:
    assert browser.evaluate(f"return {frame}.__cbErrors;") == []


def open_finalizer(browser: Session, site: str, query: str = "") -> ChatWidget:
    """/finalizer.html with the bus recorder; returns once the widget has settled (form or restored transcript)."""
    chat = ChatWidget(browser)
    browser.goto(f"{site}/finalizer.html{query}")
    browser.evaluate(RECORD_BUS)
    chat.arrive()
    return chat


def seen(browser: Session, state: str, count: int = 1) -> None:
    """Until the widget has delivered `count` state changes to `state`, and its subscribers (the finalizer, and a
    command the finalizer sent) have had time to run."""
    browser.wait_for(f"window.__bus.states.filter(s => s === {state!r}).length >= {count}")
    browser.evaluate("await new Promise(r => setTimeout(r, 250)); return true;")


def agent(chat: ChatWidget, session_id: str, state: str, count: int = 1) -> None:
    """The agent moves the interaction to `state`; waits until the widget has seen it (the `count`th time)."""
    chat.agent(session_id, interactionState=state)
    seen(chat.browser, state, count)


def notices(browser: Session) -> list[str]:
    """The finalizer's notices in the transcript (the page may inject messages of its own)."""
    texts = browser.evaluate(f"return Array.from({NOTICES}, m => m.textContent.trim());")
    return [text for text in texts if text == NOTICE]


def bus_events(browser: Session) -> list[str]:
    return browser.evaluate("return window.__bus.events;")


@pytest.mark.scenario("finalizer: agent finalizes → one notice (Finalizing, then Completed)")
def test_finalizing_then_completed_injects_the_notice_once(request, browser: Session, topology: Topology) -> None:
    chat = open_finalizer(browser, topology.site_a, "?provider=0")
    session = chat.start()
    # Malformed events reach the finalizer first: it must neither throw nor act.
    browser.evaluate("""
        for (const data of [null, {}, {originalMessages: 'x'}, {originalMessages: [null, 5, {type: 'System'},
            {type: 'System', event: 'InteractionStateChange'},
            {type: 'System', event: 'InteractionStateChange', data: {interactionState: {}}}]}]) {
          CXBus.publish('WebChatService.messageReceived', data);
        }
        await new Promise(r => setTimeout(r, 250));
        return true;""")
    assert notices(browser) == []
    agent(chat, session, "Finalizing")
    assert notices(browser) == [NOTICE]
    # Only the double can tell the injected message's options: the guide's bubble without a time.
    injected = browser.evaluate("return window.__widgetDouble.injected;")
    assert [data for data in injected if data.get("text") == NOTICE] == [INJECTED]
    agent(chat, session, "Completed")
    assert notices(browser) == [NOTICE]
    assert browser.evaluate("return document.getElementById('finalized').textContent;").startswith("Finalizing")
    # An async chat gets the notice and goes on: no end, the same session, the message input still there.
    assert "WebChatService.ended" not in bus_events(browser)
    assert chat.session_id() == session and chat.view() == TRANSCRIPT
    no_errors(browser)
    observe(request.node, "1 notice for Finalizing + Completed")


@pytest.mark.scenario("finalizer: reload replays the history → no second notice")
def test_a_reload_replaying_the_history_does_not_repeat_the_notice(request, browser: Session,
                                                                   topology: Topology) -> None:
    chat = open_finalizer(browser, topology.site_a)  # with the cookie provider, as the guide's page has it
    session = chat.start()
    agent(chat, session, "Finalizing")
    assert notices(browser) == [NOTICE]
    chat = open_finalizer(browser, topology.site_a)
    assert chat.view() == TRANSCRIPT and FORM not in chat.views()
    assert "WebChatService.restored" in bus_events(browser)
    assert chat.session_id() == session
    seen(browser, "Finalizing")  # the history replay delivered the old state change again
    assert notices(browser) == []
    agent(chat, session, "Completed")  # the same interaction completes after the reload
    assert notices(browser) == []
    no_errors(browser)
    observe(request.node, "replayed Finalizing, later Completed: no notice")


@pytest.mark.scenario("finalizer: a new interaction gets its own notice")
def test_a_new_interaction_is_notified_again(request, browser: Session, topology: Topology) -> None:
    chat = open_finalizer(browser, topology.site_a, "?provider=0")
    session = chat.start()
    agent(chat, session, "Finalizing")
    chat.send("Thanks!")
    agent(chat, session, "Active")
    agent(chat, session, "Finalizing", count=2)
    agent(chat, session, "Completed")
    assert notices(browser) == [NOTICE, NOTICE]
    chat = open_finalizer(browser, topology.site_a, "?provider=0")
    assert chat.view() == TRANSCRIPT and chat.session_id() == session
    seen(browser, "Finalizing", count=2)
    assert notices(browser) == []
    no_errors(browser)
    observe(request.node, "2 interactions: 2 notices; reload: none")


@pytest.mark.scenario("finalizer: non-async chat → endChat")
def test_a_non_async_chat_is_ended(request, browser: Session, topology: Topology) -> None:
    chat = open_finalizer(browser, topology.site_a, "?async=0&provider=0")
    session = chat.start()
    chat.agent(session, interactionState="Finalizing")
    browser.wait_for("window.__bus.events.includes('WebChatService.ended')")
    browser.wait_for(NO_SESSION)
    assert notices(browser) == []
    # The chat server has ended it: the agent can no longer write into it.
    status = browser.evaluate("""
        const reply = await fetch(args[0], {method: 'POST', headers: {'Content-Type': 'application/json'},
                                            body: JSON.stringify({text: 'still there?'})});
        return reply.status;""", f"{chat.data_url}/{session}/agent")
    assert status == 409
    no_errors(browser)
    observe(request.node, "chat ended, no notice")


@pytest.mark.scenario("finalizer: chat ended → removeCookie, the other site starts fresh")
def test_an_ended_chat_is_removed_from_the_bridge(request, browser: Session, topology: Topology,
                                                 combo: tuple[str, str]) -> None:
    chat = open_finalizer(browser, topology.site_a)
    chat.start()
    if combo[1] == "third-party-allowed":  # only there does the iframe's cookie carry the chat (browsers.md)
        browser.wait_for(CHAT_IN_IFRAME)
    # Each removeCookie() call, and whether the finalizer made it (the provider's cookie follower may call it too,
    # once the widget's own state cookie has gone).
    browser.evaluate("""
        const original = cookieProvider.removeCookie;
        window.__removals = [];
        cookieProvider.removeCookie = function () {
          const removal = original.apply(this, arguments);
          window.__removals.push({removal, byFinalizer: /chat-finalizer/.test(new Error().stack || '')});
          return removal;
        };
        return true;""")
    chat.end()  # the customer: close, then "end this chat?" → yes
    assert "WebChatService.ended" in bus_events(browser)
    browser.wait_for("window.__removals.some(r => r.byFinalizer)")
    assert browser.evaluate("return (await Promise.all(window.__removals.map(r => r.removal))).every(ok => ok);")
    assert browser.evaluate("return (await cookieProvider.request({ op: 'get', name: cookieProvider.name })).value;") is None
    browser.follow("#to-other-site", topology.site_b)
    for arrival in ("link", "typed URL"):
        if arrival == "typed URL":
            browser.goto(topology.site_b + "/finalizer.html")
        assert chat.arrive() == FORM, f"{arrival}: B restored the ended chat: {chat.transcript()}"
        assert TRANSCRIPT not in chat.views() and chat.error() is None, arrival
        assert browser.evaluate("return cookieProvider.restoredFrom;") is None
        assert browser.evaluate(f"return document.cookie.includes({COOKIE!r} + '=');") is False
        no_errors(browser)
    observe(request.node, "removeCookie() = true; B: fresh chat")


@pytest.mark.scenario("finalizer: server-ended chat → no event; the provider forgets it, a new chat gets its notice")
def test_a_chat_the_server_ended_is_forgotten_without_an_event(request, browser: Session, topology: Topology,
                                                              combo: tuple[str, str]) -> None:
    chat = open_finalizer(browser, topology.site_a)
    session = chat.start()
    if combo[1] == "third-party-allowed":
        browser.wait_for(CHAT_IN_IFRAME)
    agent(chat, session, "Finalizing")
    chat.agent(session, end=True)  # the agent closes the chat: the widget learns it from a poll, silently
    browser.wait_for(NO_SESSION, timeout=15)
    # The cookie provider follows the widget's state cookie: the session goes, here and in the bridge.
    began = time.monotonic()
    browser.wait_for(f"""(async () => !document.cookie.split('; ').some(c => c.startsWith({COOKIE!r} + '='))
        && (await cookieProvider.request({{op: 'get', name: cookieProvider.name}})).value == null)()""", timeout=5)
    forgotten = time.monotonic() - began
    assert not {"WebChatService.ended", "WebChatService.sessionLost"} & set(bus_events(browser))
    browser.goto(topology.site_a + "/finalizer.html")  # a new chat on the same page and tab
    browser.evaluate(RECORD_BUS)
    assert chat.arrive() == FORM
    assert chat.error() is None
    fresh = chat.start()
    assert fresh != session
    agent(chat, fresh, "Finalizing")
    assert notices(browser) == [NOTICE]
    no_errors(browser)
    observe(request.node, f"no event; forgotten {forgotten:.1f} s after the widget; new chat: 1 notice")


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
