import json
import re
import time
import uuid

import pytest
from starlette.testclient import TestClient

from cookiebridge.demo_sites import SYSTEM_PARTICIPANT, ChatEmulator, create_demo_app
from cookiebridge.origins import OriginError

BRIDGE = "https://127.0.0.1:8443"
SITE_A, SITE_B = "https://127.0.0.2:8443", "https://127.0.0.3:8443"

# Distinctive lines of the guide's "Complete Chat Initialization Sample", in the order the guide has them.
GUIDE_SAMPLE_LINES = [
    "if (!window._genesys) window._genesys = {};",
    "window._genesys = {",
    'type: "",',
    'dataURL: "", // Provided by Genesys',
    'endpoint: "", // Provided by Genesys',
    '"x-api-key": "", // Provided by Genesys',
    "enabled: true,",
    "getSessionData: function (sessionData, Cookie, CookieOptions) {",
    "// Note: You don't have to use Cookies. You can, instead, store in a secured location like a database.",
    "Cookie.set(",
    "SESSION_COOKIE_NAME,",
    "JSON.stringify(sessionData),",
    "CookieOptions",
    "setSessionData: function (Open, Cookie, CookieOptions) {",
    "// Retrieve from your secured location.",
    "return Cookie.get(SESSION_COOKIE_NAME);",
    "// you need add this option only if you use alternative connection",
    'const widgetScriptElement = document.createElement("script");',
    'const widgetBaseUrl = "/widgets/";',
    "// provide your own SESSION_COOKIE_NAME (example 'customer-defined-session-cookie')  and IFRAME_URL "
    "(example 'https://iframe.com/iframe.html')",
    "let cookieProvider = new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL);",
    "//load cookie",
    "cookieProvider.loadCookie();",
    "// chat initializing",
    'widgetScriptElement.setAttribute("src", widgetBaseUrl + "cxbus.min.js");',
    'widgetScriptElement.addEventListener("load", async function () {',
    "await CXBus.configure({",
    "debug: true,",
    'pluginsPath: widgetBaseUrl + "plugins/",',
    'await CXBus.loadPlugin("widgets-core");',
    'await CXBus.command("WebChat.open");',
    "// set cookie to iframe when chat started",
    'var cookieProviderPlugin = window._genesys.widgets.bus.registerPlugin("CookieProvider");',
    'cookieProviderPlugin .subscribe("WebChat.started", function (e) {',
    "//save cookie",
    "cookieProvider.saveCookie();",
    "document.head.appendChild(widgetScriptElement);",
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> ChatEmulator:
    return ChatEmulator(reply_delay=2.0, long_poll=0, clock=clock)


def client_for(app, site: str = SITE_A) -> TestClient:
    return TestClient(app, base_url=site)


@pytest.fixture
def site_a(emulator: ChatEmulator) -> TestClient:
    return client_for(create_demo_app(bridge_url=BRIDGE, sites=[SITE_A, SITE_B], emulator=emulator))


def scripts(html: str) -> list[str]:
    return re.findall(r"<script[^>]*>(.*?)</script>", html, re.S)


def constant(html: str, name: str) -> object:
    match = re.search(rf"const {name} = (.*?);\n", html)
    assert match, name
    return json.loads(match.group(1))


def code_lines(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if line.strip()]


def without_comments(script: str) -> str:
    return re.sub(r"//[^\n]*", "", script)


# -- pages -----------------------------------------------------------------------------------------------------


def test_index_embeds_the_bridge_constants_and_links_to_the_other_site(site_a: TestClient) -> None:
    response = site_a.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert constant(html, "IFRAME_URL") == BRIDGE + "/iframe.html"
    assert constant(html, "SESSION_COOKIE_NAME") == "customer-defined-session-cookie"
    assert f'<script src="{BRIDGE}/cookie-provider.min.js"></script>' in html
    assert html.index("cookie-provider.min.js") < html.index("const IFRAME_URL")
    assert '<a id="to-other-site" href="https://127.0.0.3:8443/">Continue on 127.0.0.3:8443</a>' in html
    assert "<h1>127.0.0.2:8443</h1>" in html


def test_the_first_script_collects_uncaught_errors(site_a: TestClient) -> None:
    for path in ("/", "/extension.html"):
        html = site_a.get(path).text
        head = html[: html.index("</head>")]
        first = scripts(head)[0]
        assert head.index("<script") < head.index("<title>")
        assert "window.__cbErrors = [];" in first
        assert "window.onerror" in first and '"unhandledrejection"' in first


def test_index_holds_the_guides_complete_sample_verbatim(site_a: TestClient) -> None:
    sample = next(s for s in scripts(site_a.get("/").text) if "CXBus" in s)
    lines = code_lines(sample)
    position = -1
    for expected in GUIDE_SAMPLE_LINES:
        assert expected in lines[position + 1:], expected
        position = lines.index(expected, position + 1)
    # The sample's `extensions: { CookieProviderExtension }` names an undeclared variable: left out here.
    assert "CookieProviderExtension" not in without_comments(sample)
    assert "alert(" not in without_comments(sample)


def test_extension_page_uses_init_cookie_provider_extension(site_a: TestClient) -> None:
    html = site_a.get("/extension.html").text
    script = next(s for s in scripts(html) if "CXBus" in s)
    code = without_comments(script)
    assert "CookieProviderExtension: initCookieProviderExtension(SESSION_COOKIE_NAME,\n        IFRAME_URL, showThirdPartyCookieNotification)" in code
    assert "new CookieProvider(" not in code
    assert "alert(" not in code
    assert 'document.getElementById("third-party-cookies").textContent = isEnable ? "enabled" : "disabled";' in code
    assert '<strong id="third-party-cookies">' in html
    assert constant(html, "IFRAME_URL") == BRIDGE + "/iframe.html"
    assert '<a id="to-other-site" href="https://127.0.0.3:8443/extension.html">' in html
    assert 'id="to-other-site-extension" class="secondary" href="https://127.0.0.3:8443/extension.html"' in html


def test_each_site_links_to_all_the_others(emulator: ChatEmulator) -> None:
    sites = [SITE_A, SITE_B, "https://127.0.0.4:9443/"]
    app = create_demo_app(bridge_url=BRIDGE + "/", sites=sites, emulator=emulator)
    html = client_for(app, SITE_B).get("/").text
    links = re.findall(r'<a id="(to-other-site[^"]*)" href="([^"]+)"', html)
    assert links == [("to-other-site", SITE_A + "/"), ("to-other-site-2", "https://127.0.0.4:9443/")]
    assert constant(html, "IFRAME_URL") == BRIDGE + "/iframe.html"  # no double slash
    unknown = client_for(app, "https://elsewhere.test").get("/").text
    assert len(re.findall(r'<a id="to-other-site', unknown)) == 3


def test_hostile_cookie_name_and_bridge_url_stay_inside_their_strings(emulator: ChatEmulator) -> None:
    name = 'x"</script><script>alert(1)</script><!--\u2028'
    bridge = 'https://bridge.test/a"b</script><script>alert(2)</script>'
    benign_app = create_demo_app(bridge_url=BRIDGE, sites=[SITE_A, SITE_B], emulator=emulator)
    app = create_demo_app(bridge_url=bridge, sites=[SITE_A, SITE_B], cookie_name=name, emulator=emulator)
    for path in ("/", "/extension.html"):
        benign = client_for(benign_app).get(path).text
        html = client_for(app).get(path).text
        assert "<script>alert" not in html
        assert html.count("</script>") == benign.count("</script>") == 3
        assert html.count("<!--") == benign.count("<!--")
        assert "\u2028" not in html  # raw line separators are escaped too
        assert constant(html, "SESSION_COOKIE_NAME") == name
        assert constant(html, "IFRAME_URL") == bridge + "/iframe.html"
        assert '<script src="https://bridge.test/a&#34;b&lt;/script&gt;' in html


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="bridge_url"):
        create_demo_app(bridge_url="javascript:alert(1)", sites=[SITE_A])
    with pytest.raises(ValueError, match="cookie_name"):
        create_demo_app(bridge_url=BRIDGE, sites=[SITE_A], cookie_name="")
    with pytest.raises(OriginError):
        create_demo_app(bridge_url=BRIDGE, sites=["127.0.0.2:8443"])


def test_widget_double_is_served_and_labelled(site_a: TestClient) -> None:
    response = site_a.get("/widgets/cxbus.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    first = response.text.splitlines()[0]
    assert first.startswith("/*") and "TEST DOUBLE of Genesys Widgets" in first and "NOT Genesys code" in first
    assert site_a.head("/").status_code == 200
    assert site_a.get("/favicon.ico").status_code == 204


# -- widget extension pages ----------------------------------------------------------------------------------------

EXTENSION_PAGES = ("/finalizer.html", "/web-engagement.html", "/media-widget.html")


def script_sources(html: str) -> list[str]:
    return re.findall(r'<script src="([^"]+)"></script>', html)


def test_extension_pages_are_served_and_collect_errors(site_a: TestClient) -> None:
    for path in EXTENSION_PAGES:
        response = site_a.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store"
        head = response.text[: response.text.index("</head>")]
        assert "window.__cbErrors = [];" in scripts(head)[0], path
        assert site_a.head(path).status_code == 200


def test_finalizer_page_is_the_guide_sample_with_the_finalizer_extension(site_a: TestClient) -> None:
    html = site_a.get("/finalizer.html").text
    assert script_sources(html) == [f"{BRIDGE}/cookie-provider.min.js", f"{BRIDGE}/chat-finalizer.min.js"]
    code = without_comments(next(s for s in scripts(html) if "CXBus" in s))
    assert constant(html, "IFRAME_URL") == BRIDGE + "/iframe.html"
    assert "let cookieProvider = new CookieProvider(SESSION_COOKIE_NAME, IFRAME_URL);" in code
    assert "ChatFinalizer: initChatFinalizer({ provider: cookieProvider, onFinalized: showFinalized })," in code
    assert "enabled: true," in code
    assert 'cookieProvider.saveCookie();' in code
    assert code.index("initChatFinalizer(") < code.index('CXBus.command("WebChat.open")')
    for state in ("Finalizing", "Completed", "Active"):
        assert f'data-state="{state}"' in html
    assert '<a id="to-other-site" href="https://127.0.0.3:8443/finalizer.html">' in html


def test_finalizer_page_knobs_turn_off_async_and_the_provider_and_follow_the_links(site_a: TestClient) -> None:
    html = site_a.get("/finalizer.html", params={"async": "0", "provider": "0"}).text
    assert script_sources(html) == [f"{BRIDGE}/chat-finalizer.min.js"]
    code = without_comments(next(s for s in scripts(html) if "CXBus" in s))
    assert "enabled: false," in code
    assert "let cookieProvider = null;" in code and "new CookieProvider(" not in code
    assert "saveCookie" not in code
    assert 'href="https://127.0.0.3:8443/finalizer.html?async=0&amp;provider=0"' in html
    only_sync = site_a.get("/finalizer.html", params={"async": "0", "provider": "yes"}).text
    assert "enabled: false," in only_sync and f"{BRIDGE}/cookie-provider.min.js" in only_sync
    assert 'href="https://127.0.0.3:8443/finalizer.html?async=0"' in only_sync


def test_finalizer_page_keeps_hostile_settings_inside_their_strings(emulator: ChatEmulator) -> None:
    name = 'x"</script><script>alert(1)</script><!--\u2028'
    app = create_demo_app(bridge_url=BRIDGE, sites=[SITE_A, SITE_B], cookie_name=name, emulator=emulator)
    benign = client_for(create_demo_app(bridge_url=BRIDGE, sites=[SITE_A, SITE_B], emulator=emulator))
    html = client_for(app).get("/finalizer.html").text
    assert "<script>alert" not in html and "\u2028" not in html
    assert html.count("</script>") == benign.get("/finalizer.html").text.count("</script>")
    assert constant(html, "SESSION_COOKIE_NAME") == name


def test_web_engagement_page_has_a_labelled_gt_double_before_the_script(site_a: TestClient) -> None:
    html = site_a.get("/web-engagement.html").text
    assert script_sources(html) == [f"{BRIDGE}/web-engagement.min.js"]
    double = next(s for s in scripts(html) if "_gt" in s and "TEST DOUBLE" in s)
    assert double.lstrip().startswith("/* TEST DOUBLE of the Genesys Web Engagement Monitoring JS API (_gt). NOT "
                                      "Genesys code")
    assert html.index(double) < html.index(f'<script src="{BRIDGE}/web-engagement.min.js">')
    page = next(s for s in scripts(html) if "startGms" in s)
    assert 'const WIDGET_URL = "/media-widget.html";' in page
    assert 'startGms("CHAT-NOW"' in page and "WebEngagementContext.openWidget(WIDGET_URL" in page
    assert 'id="accept-popup"' in html and 'id="accept-frame"' in html and '<iframe id="media-widget"' in html
    assert '<div id="chat">' not in html  # no chat widget on this page


def test_media_widget_page_reads_the_context_and_shows_the_attached_data(site_a: TestClient) -> None:
    html = site_a.get("/media-widget.html", params={"visitId": "<b>", "pageId": "x"}).text
    assert script_sources(html) == [f"{BRIDGE}/web-engagement.min.js"]
    page = next(s for s in scripts(html) if "gpeStartScenario" in s)
    assert "WebEngagementContext.readFromLocation(location.search)" in page
    assert "WebEngagementContext.attachedData(context)" in page
    assert '<pre id="attached-data">' in html
    assert "<b>" not in html  # the page renders nothing from the query on the server


# -- chat emulator -----------------------------------------------------------------------------------------------

INDEX = re.compile(r"^\d+-\d+$")
UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def new_session(client: TestClient) -> str:
    response = client.post("/chat/sessions")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == {"code": "SUCCESS"}
    assert body["data"]["sessionId"] == body["sessionId"]
    return body["sessionId"]


def messages(client: TestClient, session_id: str, index: str | None = None) -> dict:
    params = {"index": index} if index is not None else {}
    response = client.get(f"/chat/sessions/{session_id}/messages", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def assert_envelope(body: dict) -> None:
    assert body["status"] == {"code": "SUCCESS"}
    assert isinstance(body["operationId"], str) and body["operationId"]
    assert isinstance(body["referenceId"], str) and body["referenceId"]


def test_messages_have_the_documented_shape(site_a: TestClient, clock: FakeClock) -> None:
    session_id = new_session(site_a)
    uuid.UUID(session_id)
    site_a.post(f"/chat/sessions/{session_id}/messages", json={"text": "hello"})
    clock.now += 2.0
    site_a.post(f"/chat/sessions/{session_id}/agent", json={"interactionState": "Finalizing"})
    body = messages(site_a, session_id)
    assert_envelope(body)
    data = body["data"]
    assert set(data) == {"messages", "lastDeliveredIndex", "chatEnded"}
    assert data["chatEnded"] is False
    greeting, question, reply, system = data["messages"]
    assert data["lastDeliveredIndex"] == system["index"]

    for message in (greeting, question, reply):
        assert set(message) == {"type", "from", "visibility", "id", "text", "utcTime", "streamId", "index"}
        assert message["type"] == "Text" and message["visibility"] == "All"
    assert question["from"]["type"] == "Customer" and question["text"] == "hello"
    assert reply["from"]["type"] == "Agent" and reply["text"] == "Agent (simulated): you said \u201chello\u201d"
    assert greeting["from"] == reply["from"] != question["from"]

    # Field by field, the guide's example of a state change.
    assert set(system) == {"type", "from", "visibility", "id", "event", "data", "utcTime", "streamId", "index"}
    assert system["type"] == "System"
    assert system["from"] == {"participantId": SYSTEM_PARTICIPANT, "type": "System"}
    assert system["visibility"] == "All"
    uuid.UUID(system["id"])
    assert system["event"] == "InteractionStateChange"
    assert system["data"] == {"interactionState": "Finalizing"}
    assert UTC.match(system["utcTime"])
    assert INDEX.match(system["index"]) and system["streamId"] == system["index"]

    indexes = [tuple(map(int, m["index"].split("-"))) for m in data["messages"]]
    assert indexes == sorted(indexes) and len(set(indexes)) == len(indexes)
    assert len({m["id"] for m in data["messages"]}) == 4


def test_index_returns_only_later_messages(site_a: TestClient, clock: FakeClock) -> None:
    session_id = new_session(site_a)
    greeting = messages(site_a, session_id)["data"]["messages"][0]
    posted = site_a.post(f"/chat/sessions/{session_id}/messages", json={"text": "one"}).json()
    assert_envelope(posted)
    mine = posted["data"]["messages"][0]
    assert mine["text"] == "one"

    after_greeting = messages(site_a, session_id, greeting["index"])["data"]
    assert [m["id"] for m in after_greeting["messages"]] == [mine["id"]]

    # The simulated agent answers only after reply_delay.
    nothing = messages(site_a, session_id, mine["index"])["data"]
    assert nothing["messages"] == [] and nothing["lastDeliveredIndex"] == mine["index"]
    clock.now += 2.0
    later = messages(site_a, session_id, mine["index"])["data"]
    assert [m["from"]["type"] for m in later["messages"]] == ["Agent"]
    assert later["lastDeliveredIndex"] == later["messages"][0]["index"]
    assert messages(site_a, session_id, "99999999999999-0")["data"]["messages"] == []


def test_agent_control_sends_text_and_changes_state(site_a: TestClient) -> None:
    session_id = new_session(site_a)
    response = site_a.post(f"/chat/sessions/{session_id}/agent", json={"text": "Anything else?", "interactionState": "Completed"})
    assert response.status_code == 200
    text, state = response.json()["data"]["messages"]
    assert text["type"] == "Text" and text["from"]["type"] == "Agent" and text["text"] == "Anything else?"
    assert state["type"] == "System" and state["data"] == {"interactionState": "Completed"}
    assert messages(site_a, session_id)["data"]["messages"][-2:] == [text, state]


def test_both_sites_share_one_emulator(emulator: ChatEmulator) -> None:
    app = create_demo_app(bridge_url=BRIDGE, sites=[SITE_A, SITE_B], emulator=emulator)
    session_id = new_session(client_for(app, SITE_A))
    assert len(messages(client_for(app, SITE_B), session_id)["data"]["messages"]) == 1
    assert app.state.emulator is emulator


def test_end_marks_the_chat_ended_and_refuses_new_messages(site_a: TestClient, clock: FakeClock) -> None:
    session_id = new_session(site_a)
    site_a.post(f"/chat/sessions/{session_id}/messages", json={"text": "bye"})
    ended = site_a.post(f"/chat/sessions/{session_id}/end")
    assert ended.status_code == 200 and ended.json()["data"] == {"chatEnded": True}
    clock.now += 10
    data = messages(site_a, session_id)["data"]
    assert data["chatEnded"] is True
    assert [m["from"]["type"] for m in data["messages"]] == ["Agent", "Customer"]  # the pending reply is dropped
    refused = site_a.post(f"/chat/sessions/{session_id}/messages", json={"text": "again"})
    assert refused.status_code == 409 and refused.json()["status"]["code"] == "CHAT_ENDED"


def test_long_poll_waits_for_the_agent_reply() -> None:
    emulator = ChatEmulator(reply_delay=0.2, long_poll=1.0)
    client = client_for(create_demo_app(bridge_url=BRIDGE, sites=[SITE_A], emulator=emulator))
    session_id = new_session(client)
    mine = client.post(f"/chat/sessions/{session_id}/messages", json={"text": "hi"}).json()["data"]["messages"][0]
    started = time.monotonic()
    reply = messages(client, session_id, mine["index"])["data"]["messages"]
    assert [m["from"]["type"] for m in reply] == ["Agent"]
    assert time.monotonic() - started < 0.9
    started = time.monotonic()
    assert messages(client, session_id, reply[0]["index"])["data"]["messages"] == []
    assert 0.9 <= time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/messages"), ("POST", "/messages"), ("POST", "/agent"), ("POST", "/end")],
)
def test_unknown_session_is_404_with_the_error_shape(site_a: TestClient, method: str, path: str) -> None:
    response = site_a.request(method, f"/chat/sessions/{uuid.uuid4()}{path}", json={"text": "x"})
    assert response.status_code == 404
    body = response.json()
    assert body["status"]["code"] == "NOT_FOUND" and body["status"]["message"]
    assert "data" not in body and body["operationId"] and body["referenceId"]


@pytest.mark.parametrize(
    ("path", "content", "status", "code"),
    [
        ("/messages", b"{not json", 400, "BAD_REQUEST"),
        ("/messages", b"\xff\xfe", 400, "BAD_REQUEST"),
        ("/messages", b"[1, 2]", 400, "BAD_REQUEST"),
        ("/messages", b"{}", 400, "BAD_REQUEST"),
        ("/messages", b'{"text": "   "}', 400, "BAD_REQUEST"),
        ("/messages", b'{"text": 5}', 400, "BAD_REQUEST"),
        ("/messages", json.dumps({"text": "x" * 4001}).encode(), 400, "BAD_REQUEST"),
        ("/messages", json.dumps({"text": "x" * 20000}).encode(), 413, "PAYLOAD_TOO_LARGE"),
        ("/agent", b"{}", 400, "BAD_REQUEST"),
        ("/agent", b'{"interactionState": "Sleeping"}', 400, "BAD_REQUEST"),
    ],
)
def test_bad_input_is_a_json_error(site_a: TestClient, path: str, content: bytes, status: int, code: str) -> None:
    session_id = new_session(site_a)
    response = site_a.post(f"/chat/sessions/{session_id}{path}", content=content)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"]["code"] == code
    assert len(messages(site_a, session_id)["data"]["messages"]) == 1  # nothing stored


def test_bad_index_is_400(site_a: TestClient) -> None:
    session_id = new_session(site_a)
    for index in ("", "abc", "1-2-3", "1" * 40 + "-0"):
        response = site_a.get(f"/chat/sessions/{session_id}/messages", params={"index": index})
        assert response.status_code == 400, index
        assert response.json()["status"]["code"] == "BAD_REQUEST"


def test_create_session_accepts_an_optional_json_body(site_a: TestClient) -> None:
    assert site_a.post("/chat/sessions", json={"nickname": "demo"}).status_code == 200
    assert site_a.post("/chat/sessions", content=b"nope").status_code == 400
