"""A store that cannot work is visible: at start-up (serve refuses), in `check`, in /readyz and, once per incident,
in the log. /healthz stays a liveness check that never touches the store."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cookiebridge import health
from cookiebridge.app import create_app
from cookiebridge.identity import sign_identity
from cookiebridge.stores import Store, StoreUnavailable, open_store
from testsupport import BridgeProcess, RedisServer, free_port, make_settings

A, B = "https://domain-a.example", "https://domain-b.example"
NAME = "customer-defined-session-cookie"
SECRET = "readiness-test-key-Hj8kL2mN5pQ9rS3tV6w"
IDENTITY_KEY = "readiness-identity-Qm4vT9xK2pL7wZ3nR8b"
ENV = {"COOKIEBRIDGE_SECRET_KEY": SECRET, "COOKIEBRIDGE_IDENTITY_SECRET": IDENTITY_KEY}



def cookiebridge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cookiebridge", *args, "--trusted-origin", A], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", **ENV}, timeout=60)


def load(client: TestClient) -> int:
    body = {"token": sign_identity("customer-1", IDENTITY_KEY), "name": NAME}
    return client.post("/api/v1/identity/load", content=json.dumps(body), headers={"Origin": A}).status_code


def app_on(url: str) -> tuple[Starlette, Store]:
    """The app on the store at `url`, and that store: a test replaces its methods to make it fail."""
    store = open_store(url)
    settings = make_settings(trusted_origins=[A, B], secret_key=SECRET, identity_secret=IDENTITY_KEY, store=url)
    return create_app(settings, store), store


def test_healthz_never_touches_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, store = app_on(f"sqlite:///{tmp_path / 'bridge.db'}")

    async def broken(*args: object) -> None:
        raise AssertionError("/healthz used the store")

    for operation in ("put", "get", "delete", "hit"):
        monkeypatch.setattr(store, operation, broken)
    with TestClient(app) as client:
        assert client.get("/healthz").json()["status"] == "ok"


def test_readyz_names_the_store_while_it_fails_and_recovers_by_itself(redis: RedisServer,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "READY_CACHE", 0.0)
    with TestClient(app_on(redis.url)[0]) as client:
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (200, "ready")
        redis.stop()
        unready = client.get("/readyz")
        assert unready.status_code == 503 and unready.headers["retry-after"] == "5"
        assert unready.json()["failing"] == ["store"] and "ConnectionError" in unready.json()["store"]
        assert client.get("/healthz").status_code == 200  # alive all the same: no restart wanted
        redis.start()
        assert client.get("/readyz").status_code == 200


def test_readyz_answers_are_reused_for_a_second(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, store = app_on(f"sqlite:///{tmp_path / 'bridge.db'}")
    calls = []
    put = store.put

    async def counting(*args: object) -> None:
        calls.append(args[0])
        await put(*args)

    monkeypatch.setattr(store, "put", counting)
    with TestClient(app) as client:
        assert {client.get("/readyz").status_code for _ in range(20)} == {200}
    assert len(calls) == 1


def test_each_store_incident_is_logged_once_not_per_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """Reads fail while the rate limit's writes still work (the store half down): one incident, not a line per
    request; it ends at the first success RECOVERY_QUIET after the last failure."""
    monkeypatch.setattr(health, "RECOVERY_QUIET", 0.3)
    app, store = app_on(f"sqlite:///{tmp_path / 'bridge.db'}")
    get = store.get

    async def down(*args: object) -> None:
        raise StoreUnavailable("SQLite store x: disk I/O error")

    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="cookiebridge"):
        assert load(client) == 200
        for incident in range(2):
            monkeypatch.setattr(store, "get", down)
            assert [load(client) for _ in range(15)] == [503] * 15
            monkeypatch.setattr(store, "get", get)
            assert load(client) == 200  # too soon to call it recovered
            time.sleep(0.35)
            assert load(client) == 200
    lines = [record.getMessage() for record in caplog.records if record.name == "cookiebridge"]
    assert len(lines) == 4, lines
    for failed, recovered in (lines[0:2], lines[2:4]):
        assert failed == ("cookiebridge: store unavailable, the API answers 503 until it recovers: SQLite store x: "
                          "disk I/O error")
        assert recovered.startswith("cookiebridge: store recovered after ") and "(15 operations failed" in recovered, lines


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_serve_refuses_to_start_on_a_store_it_cannot_open(kind: str) -> None:
    port = free_port()
    store = "sqlite:////nonexistent/dir/x.db" if kind == "sqlite" else f"redis://127.0.0.1:{port}/0"
    began = time.monotonic()
    result = cookiebridge("serve", "--port", str(free_port()), "--store", store)
    assert result.returncode == 2 and time.monotonic() - began < 20
    last = result.stderr.strip().splitlines()[-1]
    expected = {"sqlite": "cookiebridge: error: store sqlite:////nonexistent/dir/x.db cannot be opened: SQLite store "
                          "/nonexistent/dir/x.db: unable to open database file; check the path and its permissions",
                "redis": f"cookiebridge: error: store redis://127.0.0.1:{port}/0 cannot be opened: Redis store "
                         f"RedisStore('redis://127.0.0.1:{port}/0'): ConnectionError: Error 111 connecting to "
                         f"127.0.0.1:{port}. Connect call failed ('127.0.0.1', {port}); check that the server is up "
                         "and reachable from here"}[kind]
    assert last == expected
    assert "Traceback" not in result.stderr and "Started server process" not in result.stderr


def test_check_tries_the_store_and_reports_it(tmp_path: Path) -> None:
    absent = cookiebridge("check", "--store", f"sqlite:///{tmp_path / 'new.db'}")
    assert absent.returncode == 0
    assert absent.stderr.strip().splitlines()[-1] == (f"cookiebridge: store sqlite:///{tmp_path / 'new.db'}: does not "
                                                      f"exist yet; serve will create it in {tmp_path}")
    assert not (tmp_path / "new.db").exists()  # check creates nothing
    nowhere = cookiebridge("check", "--store", "sqlite:////nonexistent/dir/x.db")
    assert nowhere.returncode == 2 and nowhere.stderr.strip().splitlines()[-1] == (
        "cookiebridge: error: store sqlite:////nonexistent/dir/x.db cannot be created: directory /nonexistent/dir "
        "does not exist or is not writable; fix the path in store or create the directory")
    dead = cookiebridge("check", "--store", f"redis://:pw@127.0.0.1:{free_port()}/0")
    assert dead.returncode == 2 and "cannot be opened" in dead.stderr and ":pw@" not in dead.stderr
    with BridgeProcess(["--trusted-origin", A, "--store", f"sqlite:///{tmp_path / 'made.db'}"], tmp_path / "s.log",
                       env=ENV):
        pass
    existing = cookiebridge("check", "--store", f"sqlite:///{tmp_path / 'made.db'}")
    assert existing.returncode == 0 and existing.stderr.strip().splitlines()[-1] == (
        f"cookiebridge: store sqlite:///{tmp_path / 'made.db'}: written and read back")


def test_a_real_redis_outage_in_serve_readiness_and_log(redis: RedisServer, tmp_path: Path) -> None:
    """The operator's view of the issue's report: a running `serve` whose Redis goes away. /readyz answers 503
    naming the store, the API 503, the log says so once; when Redis is back, all of it recovers by itself."""

    def get(bridge: BridgeProcess, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(bridge.url + path, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def handoff(bridge: BridgeProcess) -> int:
        request = urllib.request.Request(bridge.url + "/api/v1/handoff", method="POST", headers={"Origin": A},
                                         data=json.dumps({"name": NAME, "value": "v", "destination": B}).encode())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    args = ["--trusted-origin", A, "--trusted-origin", B, "--store", redis.url]
    with BridgeProcess(args, tmp_path / "bridge.log", env=ENV) as bridge:
        assert get(bridge, "/readyz")[0] == 200
        redis.stop()
        time.sleep(1.1)  # past the cached answer
        status, body = get(bridge, "/readyz")
        assert status == 503 and body["failing"] == ["store"]
        assert [handoff(bridge) for _ in range(10)] == [503] * 10
        redis.start()
        time.sleep(2.1)  # health.RECOVERY_QUIET, and past the cached answer
        assert get(bridge, "/readyz")[0] == 200 and handoff(bridge) == 200
    log = bridge.log()
    assert log.count("store unavailable, the API answers 503") == 1, log
    assert log.count("store recovered after") == 1 and "Traceback" not in log
