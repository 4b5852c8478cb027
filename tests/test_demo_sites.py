import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cookiebridge.demo.chat import CHAT_API_KEY, CHAT_ENDPOINT, ChatServer
from cookiebridge.demo.sites import CHAT_DATA_URL, create_demo_app
from cookiebridge.origins import OriginError

BRIDGE = "https://127.0.0.1:8443"
STATUS_SCRIPT = "/demo/status.js"
SITE_A, SITE_B = "https://127.0.0.2:8443", "https://127.0.0.3:8443"

# Distinctive lines of the guide's "Complete Chat Initialization Sample", in the order the guide has them.
GUIDE_SAMPLE_LINES = [
    "if (!window._genesys) window._genesys = {};",
    "window._genesys = {",
    # The transport's values: the guide leaves them empty ("Provided by Genesys"); the demo's chat server's here.
    'type: "pureengage-v3-rest",',
    'dataURL: "/genesys/chat/v3/customer-support", // Provided by Genesys',
    'endpoint: "customer-support", // Provided by Genesys',
    '"x-api-key": "demo-api-key", // Provided by Genesys',
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


@pytest.fixture
def emulator() -> ChatServer:
    return ChatServer(reply_delay=2.0, long_poll=0)


def client_for(app, site: str = SITE_A) -> TestClient:
    return TestClient(app, base_url=site)


@pytest.fixture
def site_a(emulator: ChatServer) -> TestClient:
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
    assert ('<a id="to-other-site" href="https://127.0.0.3:8443/">Continue on domain-b '
            '<span class="address">127.0.0.3:8443</span></a>') in html
    assert '<h1>domain-a <span class="address">127.0.0.2:8443</span></h1>' in html


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
    assert html.count('href="https://127.0.0.3:8443/extension.html"') == 1  # one "Continue on" link, not two


def test_each_site_links_to_all_the_others(emulator: ChatServer) -> None:
    sites = [SITE_A, SITE_B, "https://127.0.0.4:9443/"]
    app = create_demo_app(bridge_url=BRIDGE + "/", sites=sites, emulator=emulator)
    html = client_for(app, SITE_B).get("/").text
    links = re.findall(r'<a id="(to-other-site[^"]*)" href="([^"]+)"', html)
    assert links == [("to-other-site", SITE_A + "/"), ("to-other-site-2", "https://127.0.0.4:9443/")]
    assert constant(html, "IFRAME_URL") == BRIDGE + "/iframe.html"  # no double slash
    unknown = client_for(app, "https://elsewhere.test").get("/").text
    assert len(re.findall(r'<a id="to-other-site', unknown)) == 3


def test_hostile_cookie_name_and_bridge_url_stay_inside_their_strings(emulator: ChatServer) -> None:
    name = 'x"</script><script>alert(1)</script><!--\u2028'
    bridge = 'https://bridge.test/a"b</script><script>alert(2)</script>'
    benign_app = create_demo_app(bridge_url=BRIDGE, sites=[SITE_A, SITE_B], emulator=emulator)
    app = create_demo_app(bridge_url=bridge, sites=[SITE_A, SITE_B], cookie_name=name, emulator=emulator)
    for path in ("/", "/extension.html"):
        benign = client_for(benign_app).get(path).text
        html = client_for(app).get(path).text
        assert "<script>alert" not in html
        assert html.count("</script>") == benign.count("</script>") == 5  # with the demo config and status script
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
    assert response.text.startswith("/*")
    opening = " ".join(response.text[: response.text.index("*/")].split())  # the leading comment, one line
    assert "TEST DOUBLE of Genesys Widgets" in opening and "NOT Genesys code" in opening
    assert site_a.head("/").status_code == 200
    assert site_a.get("/favicon.ico").status_code == 204


# -- widget extension pages ----------------------------------------------------------------------------------------

EXTENSION_PAGES = ("/finalizer.html", "/web-engagement.html", "/media-widget.html")


def script_sources(html: str) -> list[str]:
    """The page's script tags, without the demo's own explanation (/demo/status.js, on every chat page)."""
    return [src for src in re.findall(r'<script src="([^"]+)"></script>', html) if src != STATUS_SCRIPT]


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


def test_finalizer_page_keeps_hostile_settings_inside_their_strings(emulator: ChatServer) -> None:
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


# -- the chat server and the widget files ------------------------------------------------------------------------


def test_both_sites_share_one_chat_server_at_the_data_url(emulator: ChatServer) -> None:
    app = create_demo_app(bridge_url=BRIDGE, sites=[SITE_A, SITE_B], emulator=emulator)
    assert app.state.emulator is emulator
    headers = {"x-api-key": CHAT_API_KEY}
    started = client_for(app, SITE_A).post(CHAT_DATA_URL, data={"data[firstName]": "Ann"}, headers=headers)
    assert started.status_code == 200
    session = started.json()["data"]
    response = client_for(app, SITE_B).get(f"{CHAT_DATA_URL}/{session['sessionId']}/messages", params={"count": 20},
                                           headers={**headers, "x-nexus-client-key": session["clientToken"]})
    assert response.status_code == 200 and len(response.json()["data"]["messages"]) == 4
    assert emulator.session_ids() == [session["sessionId"]]
    assert client_for(app).post("/chat/sessions").status_code == 404  # the old made-up API is gone


def test_pages_configure_the_chat_servers_transport(site_a: TestClient) -> None:
    for path in ("/", "/extension.html", "/finalizer.html"):
        code = without_comments(next(s for s in scripts(site_a.get(path).text) if "CXBus" in s))
        assert 'type: "pureengage-v3-rest",' in code, path
        assert f"dataURL: {json.dumps(CHAT_DATA_URL)}," in code, path
        assert f"endpoint: {json.dumps(CHAT_ENDPOINT)}," in code, path
        assert f'"x-api-key": {json.dumps(CHAT_API_KEY)},' in code, path


def test_finalizer_page_plays_the_agent_through_the_control_route(site_a: TestClient) -> None:
    html = site_a.get("/finalizer.html").text
    assert f'fetch({json.dumps(CHAT_DATA_URL)} + "/" + encodeURIComponent(sessionId) + "/agent", {{' in html
    assert "/chat/sessions" not in html


@pytest.fixture
def widgets_copy(tmp_path: Path) -> Path:
    """A stand-in for a Genesys Widgets copy (the library itself is never in the repository)."""
    root = tmp_path / "widgets"
    (root / "plugins").mkdir(parents=True)
    (root / "i18n").mkdir()
    (root / "cxbus.min.js").write_text("/* cxbus */")
    (root / "plugins" / "webchat.min.js").write_text("/* webchat */")
    (root / "widgets.min.css").write_text(".cx-widget{}")
    (root / "i18n" / "widgets-en.i18n.json").write_text("{}")
    (root / ".hidden.js").write_text("secret")
    (root / "notes.txt").write_text("not served")
    (tmp_path / "outside.js").write_text("outside")
    (root / "plugins" / "link.js").symlink_to(tmp_path / "outside.js")
    return root


def test_widgets_dir_is_served_with_content_types(widgets_copy: Path, emulator: ChatServer) -> None:
    app = create_demo_app(bridge_url=BRIDGE, sites=[SITE_A], emulator=emulator, widgets_dir=widgets_copy)
    client = client_for(app)
    expected = {
        "/widgets/cxbus.min.js": ("text/javascript; charset=utf-8", "/* cxbus */"),
        "/widgets/plugins/webchat.min.js": ("text/javascript; charset=utf-8", "/* webchat */"),
        "/widgets/widgets.min.css": ("text/css; charset=utf-8", ".cx-widget{}"),
        "/widgets/i18n/widgets-en.i18n.json": ("application/json", "{}"),
    }
    for path, (content_type, text) in expected.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == content_type and response.text == text
        assert response.headers["x-content-type-options"] == "nosniff"
        assert client.head(path).status_code == 200


@pytest.mark.parametrize("path", [
    "/widgets/../outside.js", "/widgets/%2e%2e/outside.js", "/widgets/plugins/..%2f..%2foutside.js",
    "/widgets/.hidden.js", "/widgets/notes.txt", "/widgets/plugins/", "/widgets/plugins", "/widgets/",
    "/widgets//cxbus.min.js", "/widgets/plugins/link.js", "/widgets/missing.js", "/widgets/plugins%5Cwebchat.min.js",
    "/widgets/cxbus.min.js%00.js",
])
def test_widgets_dir_refuses_paths_outside_or_hidden(widgets_copy: Path, emulator: ChatServer, path: str) -> None:
    app = create_demo_app(bridge_url=BRIDGE, sites=[SITE_A], emulator=emulator, widgets_dir=widgets_copy)
    response = client_for(app).get(path)
    assert response.status_code == 404, path
    assert "outside" not in response.text and "secret" not in response.text


def test_widgets_dir_must_hold_cxbus(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="widgets_dir"):
        create_demo_app(bridge_url=BRIDGE, sites=[SITE_A], widgets_dir=tmp_path)


def test_widget_file_resolution_stays_inside_the_folder(widgets_copy: Path) -> None:
    from cookiebridge.demo.sites import _widget_file

    root = widgets_copy.resolve()
    assert _widget_file(root, "plugins/webchat.min.js") == root / "plugins" / "webchat.min.js"
    for path in ("../outside.js", "plugins/../../outside.js", "plugins/link.js", ".hidden.js", "a\\b.js",
                 "c:/x.js", "cxbus.min.js\x00.js", "", "plugins//webchat.min.js", "/etc/passwd.js"):
        assert _widget_file(root, path) is None, path


# -- the demo's explanations -------------------------------------------------------------------------------------


def demo_config(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="demo-config">(.*?)</script>', html, re.S)
    assert match
    return json.loads(match.group(1))


def test_chat_pages_load_the_status_script_in_the_head_before_the_provider(site_a: TestClient) -> None:
    for path in ("/", "/extension.html", "/finalizer.html"):
        html = site_a.get(path).text
        head = html[: html.index("</head>")]
        assert f'<script src="{STATUS_SCRIPT}"></script>' in head, path  # before any provider exists
        assert html.index(STATUS_SCRIPT) < html.index("cookie-provider.min.js"), path
        assert html.index('id="demo-config"') < html.index(STATUS_SCRIPT), path
        assert 'id="demo-status"' in html and 'id="status-mechanism"' in html and 'id="status-notice"' in html
        config = demo_config(html)
        assert config["bridge"] == BRIDGE and config["here"] == "domain-a"
        assert config["sites"] == {SITE_A: "domain-a", SITE_B: "domain-b"}
        assert config["cookieName"] == "customer-defined-session-cookie"
        assert config["identityPage"] is None and config["signedIn"] is False  # no identity secret given here
    script = site_a.get(STATUS_SCRIPT)
    assert script.status_code == 200 and script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "cookiebridge DEMO ONLY" in script.text and "cookiebridge:restored" in script.text


def test_pages_without_a_chat_have_no_status_panel(site_a: TestClient) -> None:
    for path in ("/web-engagement.html", "/media-widget.html"):
        html = site_a.get(path).text
        assert STATUS_SCRIPT not in html and 'id="demo-status"' not in html, path


def test_the_guides_sample_is_untouched_by_the_demo_additions(site_a: TestClient) -> None:
    """The explanation is a separate script: the guide's sample script does not mention it."""
    sample = next(s for s in scripts(site_a.get("/").text) if "CXBus" in s)
    assert "demo-status" not in sample and "__demoStatus" not in sample and "cookiebridge:restored" not in sample


def test_sites_are_named_domain_a_and_b_with_their_address(site_a: TestClient) -> None:
    html = site_a.get("/").text
    assert "<title>domain-a · cookiebridge demo</title>" in html
    b = client_for(create_demo_app(bridge_url=BRIDGE, sites=[SITE_A, SITE_B]), SITE_B).get("/").text
    assert '<h1>domain-b <span class="address">127.0.0.3:8443</span></h1>' in b
    assert "Continue on domain-a" in b


def test_signed_in_page_is_offered_when_the_bridge_has_an_identity_secret(emulator: ChatServer,
                                                                          tmp_path: Path) -> None:
    app = create_demo_app(bridge_url=BRIDGE, sites=[SITE_A, SITE_B], emulator=emulator, identity_secret="s" * 32,
                          ca_file=tmp_path / "ca.pem")
    client = client_for(app)
    index = client.get("/").text
    assert '<a id="sign-in" class="secondary" href="/identity.html">' in index
    config = demo_config(index)
    assert config["identityPage"] == "/identity.html" and config["caFile"] == str(tmp_path / "ca.pem")
    signed_in = client.get("/identity.html").text
    assert demo_config(signed_in)["signedIn"] is True
    assert '<a id="sign-out" class="secondary" href="/">' in signed_in and 'id="sign-in"' not in signed_in
    assert "{ identity: " in signed_in
    assert 'href="https://127.0.0.3:8443/identity.html?customer=demo-customer"' in signed_in


def test_media_widget_shows_only_itself_inside_a_frame_and_the_invitation_stays_for_a_pop_up(
        site_a: TestClient) -> None:
    media = site_a.get("/media-widget.html").text
    assert 'if (window.top !== window) document.documentElement.classList.add("embedded");' in media
    assert "html.embedded header, html.embedded .links { display: none; }" in media
    invitation = site_a.get("/web-engagement.html").text
    assert 'if (inPage) document.getElementById("invitation").hidden = true;' in invitation


def test_packaged_demo_files_sit_inside_the_demo_package() -> None:
    from cookiebridge.demo import sites

    assert sites.TEMPLATES.parent == sites.STATIC.parent == Path(sites.__file__).resolve().parent
    assert {path.name for path in sites.STATIC.iterdir()} >= {"widgets-double.js", "demo-status.js"}
    assert (sites.TEMPLATES / "base.html").is_file()
