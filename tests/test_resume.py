"""Resume through the bridge (docs/resume.md): the /resume pages, the resume API, and how both refuse."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from itsdangerous import URLSafeTimedSerializer
from starlette.testclient import TestClient

from cookiebridge import resume as resume_module
from cookiebridge.app import create_app
from cookiebridge.config import Settings
from cookiebridge.resume import CODE_SALT, COOKIE, DEV_COOKIE, FORM_SALT, TOKEN_SALT, state_hash
from testsupport.settings import NAME, SECRET, A, B, C, make_settings

BRIDGE = "https://bridge.example"
STATE = "the-page-state-0123456789"


def make_client(**flags: Any) -> TestClient:
    settings = make_settings(resume=True, store="memory:", **flags)
    return TestClient(create_app(settings), base_url=BRIDGE)


@pytest.fixture
def client() -> TestClient:
    return make_client()


def params(to: str = A + "/shop?item=1", state: str = STATE, name: str = NAME) -> dict[str, str]:
    return {"to": to, "state": state_hash(state), "name": name}


def start(client: TestClient, **kwargs: Any) -> Any:
    return client.get("/resume", params=params(**kwargs), follow_redirects=False)


def code_of(response: Any) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert "#cb-resume=" in location
    return location.split("#cb-resume=", 1)[1]


def api(client: TestClient, endpoint: str, body: dict[str, Any], origin: str = A) -> Any:
    return client.post(f"/api/v1/resume/{endpoint}", json=body, headers={"Origin": origin})


def redeem(client: TestClient, code: str, state: str = STATE, origin: str = A) -> Any:
    return api(client, "redeem", {"code": code, "state": state}, origin)


def token_for(client: TestClient, origin: str = A) -> str:
    """A token for `origin`, by the first visit's bounce (no stored session yet)."""
    answer = redeem(client, code_of(start(client, to=origin + "/")), origin=origin)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def save(client: TestClient, value: str = "session-1", origin: str = A) -> str:
    token = token_for(client, origin)
    assert api(client, "save", {"token": token, "name": NAME, "value": value}, origin).json() == {"saved": True}
    return token


def ask_page(client: TestClient, to: str = B + "/", state: str = STATE) -> Any:
    response = start(client, to=to, state=state)
    assert response.status_code == 200, response.text
    return response


def csrf_of(page: Any) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def choose(client: TestClient, choice: str, csrf: str, to: str = B + "/", state: str = STATE, **extra: str) -> Any:
    form = {**params(to=to, state=state), "csrf": csrf, "choice": choice, **extra}
    return client.post("/resume", data=form, follow_redirects=False)


# --- GET /resume: parameters -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "named"), [
    ({"to": "https://evil.example/"}, "to"),
    ({"to": "javascript:alert(1)"}, "to"),
    ({"to": "//domain-a.example/"}, "to"),
    ({"to": "/relative"}, "to"),
    ({"to": A + "@evil.example/"}, "to"),
    ({"to": "https://user@domain-a.example/"}, "to"),
    ({"to": "https://domain-a.example.evil.example/"}, "to"),
    ({"to": "https://domain-a.example\\@evil.example/"}, "to"),
    ({"to": "ftp://domain-a.example/"}, "to"),
    ({"to": "https://domain-a.example:99999/"}, "to"),
    ({"to": A + "/" + "x" * 5000}, "to"),
    ({"to": A + "/a b"}, "to"),
    ({"state": "short"}, "state"),
    ({"state": "=" * 43}, "state"),
    ({"name": "not-a-cookie-name"}, "name"),
])
def test_a_bad_parameter_is_a_400_page_naming_it_and_never_a_redirect(client: TestClient, query: dict[str, str],
                                                                       named: str) -> None:
    response = client.get("/resume", params={**params(), **query}, follow_redirects=False)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert f"{named} parameter" in response.text
    assert "evil" not in response.text  # the value is not echoed


@pytest.mark.parametrize("missing", ["to", "state", "name"])
def test_a_missing_or_repeated_parameter_is_named(client: TestClient, missing: str) -> None:
    query = {key: value for key, value in params().items() if key != missing}
    assert f"{missing} parameter" in client.get("/resume", params=query).text
    repeated = [*params().items(), (missing, params()[missing])]
    assert f"{missing} parameter" in client.get("/resume", params=repeated).text


def test_the_redirect_goes_to_the_trusted_address_without_its_fragment(client: TestClient) -> None:
    response = start(client, to="HTTPS://DOMAIN-A.example:443/shop?item=1&x=%2F#old-fragment")
    location = response.headers["location"]
    assert location.startswith(A + "/shop?item=1&x=%2F#cb-resume=")
    assert "old-fragment" not in location
    assert urlsplit(location).netloc == "domain-a.example"
    assert start(client, to=A).headers["location"].startswith(A + "/#cb-resume=")


def test_the_browser_cookie_attributes(client: TestClient) -> None:
    cookie = start(client).headers["set-cookie"]
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert cookie.startswith(COOKIE + "=")
    assert {"httponly", "secure", "path=/", "samesite=lax", "max-age=2592000"} <= set(attributes)
    assert not any(part.startswith(("domain=", "expires=")) for part in attributes)
    # Kept, not set again, on the next visit.
    assert "set-cookie" not in start(client).headers


def test_over_plain_http_the_cookie_is_not_secure_and_not_host_prefixed() -> None:
    client = TestClient(create_app(make_settings(resume=True, store="memory:")), base_url="http://127.0.0.1")
    cookie = client.get("/resume", params=params(), follow_redirects=False).headers["set-cookie"]
    assert cookie.startswith(DEV_COOKIE + "=") and "secure" not in cookie.lower()


def test_a_cookie_that_is_altered_or_too_old_is_replaced() -> None:
    client = make_client(resume_max_age=3600)
    client.cookies.set(COOKIE, "WyJhIl0.forged.value", domain="bridge.example")
    assert start(client).headers["set-cookie"].startswith(COOKIE + "=")
    old = URLSafeTimedSerializer([SECRET], salt=resume_module.BROWSER_SALT)
    client.cookies.clear()
    client.cookies.set(COOKIE, old.dumps("an-old-id"), domain="bridge.example")
    now = time.time()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: now + 7200)
        assert start(client).headers["set-cookie"].startswith(COOKIE + "=")


def test_without_a_stored_session_the_page_goes_straight_back_with_an_empty_code(client: TestClient) -> None:
    answer = redeem(client, code_of(start(client)))
    assert answer.status_code == 200
    body = answer.json()
    assert body["name"] == NAME and body["value"] is None and body["from"] is None
    assert isinstance(body["token"], str)


# --- the confirmation page ----------------------------------------------------------------------------------

def test_a_stored_session_asks_with_the_site_and_the_time(client: TestClient) -> None:
    save(client)
    page = ask_page(client)
    assert "from domain-a.example, started" in page.text
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\dZ">\d\d:\d\d UTC</time>', page.text)
    assert '<button id="cb-continue" name="choice" value="continue">Continue</button>' in page.text
    assert '<button id="cb-new" name="choice" value="new">Start new</button>' in page.text
    assert '<html lang="en">' in page.text and "<script" not in page.text
    for field in ("to", "state", "name", "csrf"):
        assert f'type="hidden" name="{field}"' in page.text


def test_the_pages_cannot_be_framed_or_cached(client: TestClient) -> None:
    save(client)
    for response in (ask_page(client), start(client, to="https://evil.example/"), start(client, to=B + "/")):
        headers = response.headers
        assert headers["x-frame-options"] == "DENY"
        csp = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
        assert csp["frame-ancestors"] == "'none'" and csp["default-src"] == "'none'"
        assert csp["form-action"].split() == ["'self'", A, B, C]
        assert "script-src" not in csp
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "strict-origin"
        assert headers["x-content-type-options"] == "nosniff"


def test_continue_carries_the_stored_value_and_keeps_it(client: TestClient) -> None:
    save(client, "session-1")
    response = choose(client, "continue", csrf_of(ask_page(client)))
    assert response.headers["location"].startswith(B + "/#cb-resume=")
    body = redeem(client, code_of(response), origin=B).json()
    assert body["value"] == "session-1" and body["from"] == A
    loaded = api(client, "load", {"token": body["token"], "name": NAME}, B).json()
    assert loaded == {"value": "session-1", "from": A}


def test_start_new_deletes_the_stored_session(client: TestClient) -> None:
    token = save(client, "session-1")
    response = choose(client, "new", csrf_of(ask_page(client)))
    body = redeem(client, code_of(response), origin=B).json()
    assert body["value"] is None and body["from"] is None
    assert api(client, "load", {"token": token, "name": NAME}).json() == {"value": None, "from": None}
    assert start(client, to=B + "/").status_code == 303  # nothing left to ask about


@pytest.mark.parametrize("choice", ["", "maybe", "CONTINUE"])
def test_an_unknown_choice_is_a_400(client: TestClient, choice: str) -> None:
    save(client)
    response = choose(client, choice, csrf_of(ask_page(client)))
    assert response.status_code == 400 and "choice" in response.text


def test_a_forged_missing_or_foreign_csrf_is_refused(client: TestClient) -> None:
    save(client)
    csrf = csrf_of(ask_page(client))
    missing = client.post("/resume", data={**params(to=B + "/"), "choice": "continue"}, follow_redirects=False)
    assert missing.status_code == 400 and "csrf" in missing.text
    assert choose(client, "continue", csrf[:-4] + "AAAA").status_code == 403
    forged = URLSafeTimedSerializer(["another-key-0123456789abcdef"], salt=FORM_SALT).dumps(["x", state_hash(STATE)])
    assert choose(client, "continue", forged).status_code == 403
    # Another state than the page was shown for.
    assert choose(client, "continue", csrf, state="another state").status_code == 403
    # Another browser (its own id cookie) with this page's field: refused, and nothing deleted.
    other = TestClient(client.app, base_url=BRIDGE)
    assert start(other).headers["set-cookie"].startswith(COOKIE + "=")
    assert choose(other, "new", csrf).status_code == 403
    other.cookies.clear()
    assert choose(other, "new", csrf).status_code == 403  # no cookie at all
    body = redeem(client, code_of(choose(client, "continue", csrf)), origin=B).json()
    assert body["value"] == "session-1"


def test_a_csrf_field_over_ten_minutes_old_is_refused(client: TestClient) -> None:
    save(client)
    csrf = csrf_of(ask_page(client))
    now = time.time()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: now + 601)
        assert choose(client, "continue", csrf).status_code == 403


def test_the_post_revalidates_the_address(client: TestClient) -> None:
    save(client)
    csrf = csrf_of(ask_page(client))
    response = choose(client, "continue", csrf, to="https://evil.example/")
    assert response.status_code == 400 and "location" not in response.headers


def test_a_form_that_is_not_urlencoded_is_refused(client: TestClient) -> None:
    response = client.post("/resume", content=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


# --- the API ------------------------------------------------------------------------------------------------------

def test_redeem_checks_in_order_and_a_wrong_state_consumes_nothing(client: TestClient) -> None:
    code = code_of(start(client))
    assert redeem(client, 42).json()["error"] == "bad-code"  # type: ignore[arg-type]
    assert redeem(client, "").json()["error"] == "bad-code"
    assert redeem(client, "not a code").json()["error"] == "forged"
    assert redeem(client, code[:-2] + "xx").json()["error"] == "forged"
    assert redeem(client, code, origin=B).json()["error"] == "wrong-destination"
    wrong = redeem(client, code, state="another page's state")
    assert wrong.status_code == 403 and wrong.json()["error"] == "wrong-state"
    assert redeem(client, code, state=None).json()["error"] == "wrong-state"  # type: ignore[arg-type]
    assert redeem(client, code).status_code == 200
    replay = redeem(client, code)
    assert replay.status_code == 410 and replay.json()["error"] == "used"


def test_a_handoff_code_is_not_a_resume_code(client: TestClient) -> None:
    handoff = client.post("/api/v1/handoff", json={"name": NAME, "value": "v", "destination": B},
                          headers={"Origin": A}).json()["code"]
    assert redeem(client, handoff, origin=B).json()["error"] == "forged"


def test_an_expired_code_is_refused(client: TestClient) -> None:
    code = code_of(start(client))
    now = time.time()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: now + 61)
        expired = redeem(client, code)
    assert expired.status_code == 410 and expired.json()["error"] == "expired"


def test_a_code_signed_with_the_previous_key_is_accepted_after_a_rotation() -> None:
    old = make_client()
    code = code_of(start(old))
    settings: Settings = make_settings(resume=True, store="memory:", secret_key="a-new-key-9f8e7d6c5b4a3210",
                                       previous_secret_keys=[SECRET])
    rotated = TestClient(create_app(settings), base_url=BRIDGE)
    # Another app and store: the record is not there, but the signature passed (used, not forged).
    assert redeem(rotated, code).json()["error"] == "used"


def test_token_load_save_delete_round_trip(client: TestClient) -> None:
    token = token_for(client)
    assert api(client, "load", {"token": token, "name": NAME}).json() == {"value": None, "from": None}
    assert api(client, "save", {"token": token, "name": NAME, "value": "v1"}).json() == {"saved": True}
    assert api(client, "save", {"token": token, "name": NAME, "value": "v2"}).json() == {"saved": True}
    assert api(client, "load", {"token": token, "name": NAME}).json() == {"value": "v2", "from": A}
    assert api(client, "delete", {"token": token, "name": NAME}).json() == {"deleted": True}
    assert api(client, "delete", {"token": token, "name": NAME}).json() == {"deleted": False}
    assert api(client, "load", {"token": token, "name": NAME}).json() == {"value": None, "from": None}


def test_the_start_time_stays_that_of_the_first_save(client: TestClient) -> None:
    token = token_for(client)
    api(client, "save", {"token": token, "name": NAME, "value": "v1"})
    first = re.search(r'datetime="([^"]+)"', ask_page(client).text).group(1)  # type: ignore[union-attr]
    now = time.time()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: now + 3 * 3600)
        api(client, "save", {"token": token, "name": NAME, "value": "v2"})
    assert re.search(r'datetime="([^"]+)"', ask_page(client).text).group(1) == first  # type: ignore[union-attr]


def test_a_token_is_only_good_for_the_origin_it_was_handed_to(client: TestClient) -> None:
    token = save(client)
    refused = api(client, "load", {"token": token, "name": NAME}, origin=B)
    assert refused.status_code == 403 and refused.json()["error"] == "wrong-origin"
    assert api(client, "save", {"token": token, "name": NAME, "value": "x"}, B).json()["error"] == "wrong-origin"
    assert api(client, "delete", {"token": token, "name": NAME}, B).json()["error"] == "wrong-origin"


def test_token_errors(client: TestClient) -> None:
    token = token_for(client)
    for bad in (None, 7, "", "not a token", "x" * 600):
        answer = api(client, "load", {"token": bad, "name": NAME})
        assert answer.status_code == 400 and answer.json()["error"] == "bad-token", bad
    assert api(client, "load", {"token": token[:-3] + "AAA", "name": NAME}).json()["error"] == "forged"
    other_salt = URLSafeTimedSerializer([SECRET], salt=CODE_SALT).dumps(["id", A])
    assert api(client, "load", {"token": other_salt, "name": NAME}).json()["error"] == "forged"
    assert api(client, "load", {"token": token, "name": "other"}).json()["error"] == "name-not-allowed"
    assert api(client, "save", {"token": token, "name": NAME, "value": ""}).json()["error"] == "bad-value"
    now = time.time()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: now + 31 * 86400)
        expired = api(client, "load", {"token": token, "name": NAME})
    assert expired.status_code == 410 and expired.json()["error"] == "expired"


def test_a_token_from_another_key_is_forged(client: TestClient) -> None:
    foreign = URLSafeTimedSerializer(["another-key-0123456789abcdef"], salt=TOKEN_SALT).dumps(["id", A])
    assert api(client, "load", {"token": foreign, "name": NAME}).json()["error"] == "forged"


def test_the_api_answers_cors_only_to_trusted_origins(client: TestClient) -> None:
    answer = api(client, "load", {"token": "x", "name": NAME}, origin="https://evil.example")
    assert answer.status_code == 403 and answer.json()["error"] == "untrusted-origin"
    assert "access-control-allow-origin" not in answer.headers
    preflight = client.options("/api/v1/resume/save", headers={"Origin": A})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == A


def test_the_pages_and_api_share_the_resume_rate_limit() -> None:
    client = make_client(rate_limit=3)
    for _ in range(3):
        assert start(client).status_code == 303
    limited = start(client)
    assert limited.status_code == 429 and "retry-after" in limited.headers and "location" not in limited.headers
    assert api(client, "load", {"token": "x", "name": NAME}).json()["error"] == "rate-limited"


# --- off by default -----------------------------------------------------------------------------------------------

def test_everything_is_a_404_with_resume_off() -> None:
    client = TestClient(create_app(make_settings(store="memory:")), base_url=BRIDGE)
    assert client.get("/resume", params=params(), follow_redirects=False).status_code == 404
    assert client.post("/resume", data={"choice": "new"}).status_code == 404
    for endpoint in ("redeem", "load", "save", "delete"):
        assert api(client, endpoint, {}).status_code == 404, endpoint
