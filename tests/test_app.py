import json
import re

from starlette.testclient import TestClient

from cookiebridge.assets import build_script, render_iframe_page

ORIGINS = ["https://domain-a.example", "https://domain-b.example:8443"]  # as in conftest.settings


def config_block(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="cookiebridge-config">(.*?)</script>', html, re.S)
    assert match, html
    return json.loads(match.group(1))


def test_iframe_page_embeds_the_trusted_origins_and_its_hashed_script(client: TestClient) -> None:
    response = client.get("/iframe.html")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    config = config_block(response.text)
    assert config["origins"] == ORIGINS
    assert config["names"] == ["customer-defined-session-cookie"]
    script = re.search(r'<script src="(iframe\.[0-9a-f]{12}\.min\.js)" integrity="(sha384-[^"]+)"></script>', response.text)
    assert script, response.text
    hashed = client.get("/" + script.group(1))
    assert hashed.status_code == 200 and hashed.content == client.get("/iframe.min.js").content


def test_iframe_page_headers(client: TestClient) -> None:
    headers = client.get("/iframe.html").headers
    csp = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
    assert csp["frame-ancestors"].split() == ORIGINS
    assert csp["script-src"] == "'self'"
    assert csp["default-src"] == "'none'"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["etag"].startswith('"')
    assert "max-age" in headers["cache-control"]


def test_etag_answers_304_without_a_body(client: TestClient) -> None:
    for path in ("/iframe.html", "/cookie-provider.min.js", "/iframe.min.js"):
        etag = client.get(path).headers["etag"]
        again = client.get(path, headers={"If-None-Match": f'W/"other", {etag}'})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        assert client.get(path, headers={"If-None-Match": '"stale"'}).status_code == 200


def test_hostile_configured_values_cannot_leave_the_script_context() -> None:
    hostile = ['https://a.test</script><script>alert(1)</script>', "https://b.test'\"&<!--"]
    page = render_iframe_page(hostile, ["x</script><script>alert(2)//"], 60, build_script("iframe"), api=True)
    html = page.body.decode()
    assert "<script>alert" not in html and "<!--" not in html
    assert html.count("</script>") == 2
    config = config_block(html)
    assert config["origins"] == hostile
    assert config["names"] == ["x</script><script>alert(2)//"]


def test_scripts_are_minified_with_banner_and_hashed_immutable_copies(client: TestClient) -> None:
    for name in ("cookie-provider", "iframe"):
        stable = client.get(f"/{name}.min.js")
        assert stable.status_code == 200
        assert stable.headers["content-type"] == "text/javascript; charset=utf-8"
        assert stable.text.startswith(f"/*! cookiebridge {name} | MIT */")
        assert "\n  " not in stable.text  # indentation is gone
        assert stable.headers["cache-control"] == "public, max-age=300"
        asset = build_script(name)
        hashed = client.get("/" + asset.hashed_name)
        assert hashed.content == stable.content
        assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert hashed.headers["access-control-allow-origin"] == "*"


def test_head_healthz_and_json_404(client: TestClient) -> None:
    assert client.head("/iframe.html").status_code == 200
    health = client.get("/healthz")
    assert health.json()["status"] == "ok" and health.headers["cache-control"] == "no-store"
    missing = client.get("/secrets.txt")
    assert missing.status_code == 404 and missing.json()["error"] == "not-found"


def test_root_is_a_small_page_naming_what_the_bridge_serves(client: TestClient, settings) -> None:
    """`GET /` (a person opening the bridge's address): the files and the health URLs, and no setting at all."""
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    for path in ("/iframe.html", "/cookie-provider.min.js", "/cookie-provider-api.min.js", "/iframe.min.js",
                 "/healthz", "/readyz"):
        assert f'href="{path}"' in page.text, path
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for value in (settings.secret_key, *settings.trusted_origins, *settings.cookie_names, settings.store):
        assert value not in page.text
    assert client.head("/").status_code == 200
    assert client.post("/").status_code == 405
