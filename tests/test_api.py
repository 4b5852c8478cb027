"""The JSON API: link handoff codes and signed-identity sessions, over a real SQLite store."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cookiebridge.app import create_app
from testsupport import make_settings, sqlite_url
from testsupport.api import issue, post, token
from testsupport.settings import IDENTITY_KEY, NAME, VALUE, A, B, C

EVIL = "https://domain-a.example.evil.test"


def make_client(tmp_path: Path, **flags: object) -> TestClient:
    settings = make_settings(**{"identity_secret": IDENTITY_KEY, "store": sqlite_url(tmp_path), **flags})
    return TestClient(create_app(settings))


@pytest.fixture
def api(tmp_path: Path):
    with make_client(tmp_path) as client:
        yield client


def test_a_code_carries_the_session_to_its_destination_once(api: TestClient) -> None:
    code = issue(api)
    status, body, headers = post(api, "handoff/redeem", B, {"referrer": A + "/", "code": code})
    assert status == 200 and body == {"name": NAME, "value": VALUE, "from": A}
    assert headers["access-control-allow-origin"] == B and headers["cache-control"] == "no-store"
    status, body, _ = post(api, "handoff/redeem", B, {"referrer": A + "/", "code": code})
    assert (status, body["error"]) == (410, "used")


def test_code_has_128_random_bits_and_no_session_data(api: TestClient) -> None:
    codes = {issue(api) for _ in range(20)}
    assert len(codes) == 20
    assert all("s-1" not in code and "sessionId" not in code for code in codes)


@pytest.mark.parametrize(
    ("origin", "mutate", "status", "error"),
    [
        (C, lambda code: code, 403, "wrong-destination"),
        (B, lambda code: code[:-4], 403, "forged"),
        (B, lambda code: code[:10], 403, "forged"),
        # A character inside the signature: the last one of a base64 string may only carry padding bits.
        (B, lambda code: code[:-6] + ("A" if code[-6] != "A" else "B") + code[-5:], 403, "forged"),
        (B, lambda code: 12345, 400, "bad-code"),
        (B, lambda code: "x" * 600, 400, "bad-code"),
        (EVIL, lambda code: code, 403, "untrusted-origin"),
        (None, lambda code: code, 403, "untrusted-origin"),
    ],
)
def test_bad_redemptions_are_refused_and_leave_the_code_usable(api: TestClient, origin, mutate, status, error) -> None:
    code = issue(api)
    got_status, body, headers = post(api, "handoff/redeem", origin, {"referrer": A + "/", "code": mutate(code)})
    assert (got_status, body["error"]) == (status, error)
    assert "value" not in body and "access-control-allow-origin" not in headers or origin in (B, C)
    assert post(api, "handoff/redeem", B, {"referrer": A + "/", "code": code})[1]["value"] == VALUE


def test_expired_codes_are_gone(tmp_path: Path) -> None:
    with make_client(tmp_path, handoff_ttl="5") as client:
        code = issue(client)
        time.sleep(6.1)
        status, body, _ = post(client, "handoff/redeem", B, {"referrer": A + "/", "code": code})
    assert (status, body["error"]) == (410, "expired")


def test_many_concurrent_redeems_of_one_code_succeed_exactly_once(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        code = issue(client)
        barrier = threading.Barrier(20)

        def redeem(_: int) -> int:
            barrier.wait()
            return post(client, "handoff/redeem", B, {"referrer": A + "/", "code": code})[0]

        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(redeem, range(20)))
    assert statuses.count(200) == 1 and statuses.count(410) == 19


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"name": "other-cookie", "value": VALUE, "destination": B}, 403, "name-not-allowed"),
        ({"name": NAME, "value": "", "destination": B}, 400, "bad-value"),
        ({"name": NAME, "value": {"__proto__": 1}, "destination": B}, 400, "bad-value"),
        ({"name": NAME, "value": "x" * 4097, "destination": B}, 413, "too-large"),
        ({"name": NAME, "value": VALUE, "destination": A}, 403, "bad-destination"),
        ({"name": NAME, "value": VALUE, "destination": EVIL}, 403, "bad-destination"),
        ("not json", 400, "bad-json"),
        ("[1, 2]", 400, "bad-json"),
        ("x" * 20000, 413, "too-large"),
    ],
)
def test_bad_issue_requests_get_a_clear_json_error(api: TestClient, body: object, status: int, error: str) -> None:
    got_status, got, _ = post(api, "handoff", A, body)
    assert (got_status, got["error"]) == (status, error)
    assert got["message"]


def test_preflight_is_answered_only_for_trusted_origins(api: TestClient) -> None:
    ok = api.options("/api/v1/handoff", headers={"Origin": A, "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == A
    refused = api.options("/api/v1/handoff", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


def test_rate_limit_answers_429(tmp_path: Path) -> None:
    with make_client(tmp_path, rate_limit="5") as client:
        statuses = [post(client, "handoff/redeem", B, {"referrer": A + "/", "code": "forged"})[0] for _ in range(8)]
    assert statuses[:5] == [403] * 5 and statuses[5:] == [429] * 3


@pytest.mark.parametrize("subject", ["customer-42", "kunde-ü-" + "x" * 240])
def test_identity_keeps_the_session_on_every_trusted_site_until_removed(api: TestClient, subject: str) -> None:
    assert post(api, "identity/save", A, {"token": token(subject), "name": NAME, "value": VALUE})[:2] == (200, {"saved": True})
    for origin in (A, B, C):
        assert post(api, "identity/load", origin, {"token": token(subject), "name": NAME})[1] == {"value": VALUE}
    assert post(api, "identity/load", B, {"token": token("someone-else"), "name": NAME})[1] == {"value": None}
    assert post(api, "identity/delete", C, {"token": token(subject), "name": NAME})[1] == {"deleted": True}
    assert post(api, "identity/load", A, {"token": token(subject), "name": NAME})[1] == {"value": None}


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (token(key="wrong-key-0123456789abcdef"), "bad-signature"),
        (token(ttl=-120), "token-expired"),
        (token(audience="another-bridge"), "wrong-audience"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "unsupported-algorithm"),
    ],
)
def test_bad_identity_tokens_are_refused(api: TestClient, bad: str, error: str) -> None:
    status, body, _ = post(api, "identity/load", B, {"token": bad, "name": NAME})
    assert (status, body["error"]) == (403, error)


def test_identity_is_refused_when_not_configured(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(trusted_origins=[A, B], store=sqlite_url(tmp_path)))) as client:
        status, body, _ = post(client, "identity/load", A, {"token": token(), "name": NAME})
    assert (status, body["error"]) == (403, "identity-disabled")
