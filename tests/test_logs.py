"""JSON logs (`--log-format json`): one object per line with time, level, event, request id, outcome and latency,
and never a session value, a handoff code or a token, as the browser test of the text access log checks."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cookiebridge.app import create_app
from cookiebridge.identity import sign_identity
from cookiebridge.logs import JsonFormatter
from cookiebridge.stores import StoreUnavailable, open_store
from testsupport import BridgeProcess, make_settings, sqlite_url

A, B = "https://domain-a.example", "https://domain-b.example"
NAME = "customer-defined-session-cookie"
SECRET = "logs-test-key-Hj8kL2mN5pQ9rS3tV6wXyZa"
IDENTITY_KEY = "logs-identity-Qm4vT9xK2pL7wZ3nR8bYzA"
ENV = {"COOKIEBRIDGE_SECRET_KEY": SECRET, "COOKIEBRIDGE_IDENTITY_SECRET": IDENTITY_KEY}


def call(url: str, body: dict | bytes, origin: str = A, **headers: str) -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Origin": origin, **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers.items())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers.items())


def test_json_log_lines_carry_the_request_and_no_secret(tmp_path: Path) -> None:
    value, customer = "j%3A%7B%22sessionId%22%3A%22SESSION-8c1f%22%7D", "CUSTOMER-3e9a"
    token = sign_identity(customer, IDENTITY_KEY)
    args = ["--log-format", "json", "--trusted-origin", A, "--trusted-origin", B,
            "--store", f"sqlite:///{tmp_path / 'bridge.db'}"]
    with BridgeProcess(args, tmp_path / "bridge.log", env=ENV) as bridge:
        api = bridge.url + "/api/v1/"
        status, body, headers = call(api + "handoff", {"name": NAME, "value": value, "destination": B},
                                     **{"X-Request-ID": "nginx-req-0001"})
        assert status == 200 and headers["x-request-id"] == "nginx-req-0001"
        code = body["code"]
        assert call(api + "handoff/redeem", {"code": code, "referrer": A + "/"}, origin=B)[1]["value"] == value
        assert call(api + "handoff/redeem", {"code": code, "referrer": A + "/"}, origin=B)[1]["error"] == "used"
        assert call(api + "handoff/redeem", {"code": code[:-4] + "AAAA", "referrer": A + "/"}, origin=B)[0] == 403
        assert call(api + "identity/save", {"token": token, "name": NAME, "value": value})[0] == 200
        assert call(api + "identity/load", {"token": token, "name": NAME}, origin=B)[1] == {"value": value}
        assert call(api + "identity/load", {"token": token[:-2], "name": NAME}, origin=B)[0] == 403
        assert call(api + "handoff", b"{broken " + value.encode())[0] == 400
        _, _, odd = call(api + "handoff", {}, **{"X-Request-ID": "has spaces and " + "x" * 80})
        with urllib.request.urlopen(bridge.url + f"/iframe.html?cb={code}&v={value}", timeout=10) as page:
            page_id = page.headers["x-request-id"]
    lines = [line for line in bridge.log().splitlines() if line.strip()]
    objects = [json.loads(line) for line in lines]  # every line, start-up and shutdown included, is one object
    for entry in objects:
        assert {"time", "level", "event", "message"} <= set(entry) and entry["time"].endswith("Z")
    requests = [entry for entry in objects if entry["event"] == "request" and entry["path"] != "/healthz"]
    assert [(entry["path"], entry["status"], entry["outcome"]) for entry in requests] == [
        ("/api/v1/handoff", 200, "ok"), ("/api/v1/handoff/redeem", 200, "ok"), ("/api/v1/handoff/redeem", 410, "used"),
        ("/api/v1/handoff/redeem", 403, "forged"), ("/api/v1/identity/save", 200, "ok"),
        ("/api/v1/identity/load", 200, "ok"), ("/api/v1/identity/load", 403, "malformed"),
        ("/api/v1/handoff", 400, "bad-json"), ("/api/v1/handoff", 403, "name-not-allowed"), ("/iframe.html", 200, "ok")]
    assert requests[0]["request_id"] == "nginx-req-0001"
    assert odd["x-request-id"] != "has spaces" and len(odd["x-request-id"]) == 16  # a made-up id replaced
    assert requests[-1]["request_id"] == page_id and len({entry["request_id"] for entry in requests}) == 10
    for entry in requests:
        assert entry["level"] == "info" and entry["method"] in ("POST", "GET") and entry["client"] == "127.0.0.1"
        assert isinstance(entry["latency_ms"], float) and 0 <= entry["latency_ms"] < 5000
    assert any(entry["event"] == "start" and "written and read back" in entry["message"] for entry in objects)
    log = bridge.log()
    for secret in (value, "SESSION-8c1f", customer, token, token[-20:], token[:30], code, code[:20], code[-20:],
                   SECRET, IDENTITY_KEY):
        assert secret not in log


def test_lines_logged_during_a_request_carry_its_request_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(trusted_origins=[A, B], secret_key=SECRET, identity_secret=IDENTITY_KEY,
                             log_format="json", store=sqlite_url(tmp_path))
    store = open_store(settings.store)
    app = create_app(settings, store)

    async def down(*args: object) -> None:
        raise StoreUnavailable("SQLite store x: disk I/O error")

    monkeypatch.setattr(store, "get", down)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("cookiebridge")
    logger.addHandler(handler)
    old_level, logger.level = logger.level, logging.INFO
    try:
        with TestClient(app) as client:
            body = json.dumps({"token": sign_identity("c", IDENTITY_KEY), "name": NAME})
            answer = client.post("/api/v1/identity/load", content=body, headers={"Origin": A, "X-Request-ID": "r-42"})
    finally:
        logger.removeHandler(handler)
        logger.level = old_level
    assert answer.status_code == 503
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    incident = next(entry for entry in entries if entry["event"] == "store-unavailable")
    assert incident["level"] == "warning" and incident["request_id"] == "r-42" and incident["outcome"] == "unavailable"
    request = next(entry for entry in entries if entry["event"] == "request")
    assert (request["request_id"], request["status"], request["outcome"]) == ("r-42", 503, "unavailable")


def test_log_format_is_validated() -> None:
    from cookiebridge.config import ConfigError

    with pytest.raises(ConfigError, match=r"^log_format = 'xml' must be text \(uvicorn's lines\) or json"):
        make_settings(log_format="xml")
    with pytest.raises(ConfigError, match=r"^metrics_allow_ips: 'prometheus' is not an IP address or network"):
        make_settings(metrics_allow_ips="10.0.0.1,prometheus")
