"""Fault injection against the real `cookiebridge serve` process: the store goes away, fills up or turns read-only,
the bridge is killed or stopped mid-request.

What a customer would notice is asserted: the API answers 503 with a JSON error (the provider then falls back), the
page and scripts keep being served, and once the fault clears the same process serves again with every session
saved before the fault still there.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from cookiebridge.identity import sign_identity
from testsupport import BridgeProcess, RedisServer
from testsupport.api import Answer, call
from testsupport.files import read_only
from testsupport.settings import NAME, A, B

SECRET = "faults-test-key-Hj8kL2mN5pQ9rS3tV6wX"
IDENTITY_KEY = "faults-identity-Qm4vT9xK2pL7wZ3nR8bY"
ENV = {"COOKIEBRIDGE_SECRET_KEY": SECRET, "COOKIEBRIDGE_IDENTITY_SECRET": IDENTITY_KEY}


def bridge_args(store: str) -> list[str]:
    return ["--trusted-origin", A, "--trusted-origin", B, "--store", store, "--rate-limit", "1000000"]


def get(bridge: BridgeProcess, path: str) -> int:
    with urllib.request.urlopen(bridge.url + path, timeout=10) as response:
        return response.status


def save(bridge: BridgeProcess, customer: str, value: str) -> Answer:
    return call(bridge, "identity/save", {"token": sign_identity(customer, IDENTITY_KEY), "name": NAME, "value": value})


def load(bridge: BridgeProcess, customer: str) -> Answer:
    return call(bridge, "identity/load", {"token": sign_identity(customer, IDENTITY_KEY), "name": NAME}, origin=B)


def issue(bridge: BridgeProcess, value: str) -> str:
    status, body, _ = call(bridge, "handoff", {"name": NAME, "value": value, "destination": B})
    assert status == 200, body
    return body["code"]


def redeem(bridge: BridgeProcess, code: str) -> Answer:
    return call(bridge, "handoff/redeem", {"code": code, "referrer": A + "/"}, origin=B)


def assert_unavailable(answer: Answer) -> None:
    status, body, headers = answer
    assert (status, body["error"]) == (503, "unavailable"), body
    assert headers["retry-after"] == "5" and headers["access-control-allow-origin"] in (A, B)  # the provider can read it


def assert_pages_still_served(bridge: BridgeProcess) -> None:
    assert [get(bridge, path) for path in ("/iframe.html", "/cookie-provider.min.js", "/iframe.min.js", "/healthz")] == [200] * 4



# --- Redis ----------------------------------------------------------------------------------------------------


def test_redis_restart_answers_503_then_recovers_with_the_sessions(redis: RedisServer, tmp_path: Path) -> None:
    """Fault: Redis is stopped (a restart or failover). Seen: API calls answer 503 unavailable at once, pages and
    scripts are still served; when Redis is back (with its snapshot) the same bridge process serves again, the
    session saved before the outage loads and the handoff code issued before it redeems."""
    with BridgeProcess(bridge_args(redis.url), tmp_path / "bridge.log", env=ENV) as bridge:
        pid = bridge.process.pid
        assert save(bridge, "customer-1", "session-before-outage")[0] == 200
        code = issue(bridge, "handed-over-before-outage")
        assert redis.command("SAVE") == b"+OK"  # what a persistent Redis does; the test server has no save points
        redis.stop()
        began = time.monotonic()
        assert_unavailable(save(bridge, "customer-2", "during"))
        assert_unavailable(load(bridge, "customer-1"))
        assert_unavailable(call(bridge, "handoff", {"name": NAME, "value": "v", "destination": B}))
        assert time.monotonic() - began < 3  # refused connections fail fast
        assert_pages_still_served(bridge)
        redis.start()
        assert load(bridge, "customer-1")[1] == {"value": "session-before-outage"}
        assert redeem(bridge, code)[1]["value"] == "handed-over-before-outage"
        assert save(bridge, "customer-2", "after")[0] == 200
        assert bridge.process.pid == pid and bridge.process.poll() is None
    assert "Traceback" not in bridge.log()


def test_hung_redis_answers_503_within_the_timeout_then_recovers(redis: RedisServer, tmp_path: Path) -> None:
    """Fault: the Redis host hangs (SIGSTOP: connections open, nothing answers). Seen: each API call answers 503
    after about the 1 s store timeout, not after the provider's 3 s; once Redis resumes the next calls succeed and
    nothing saved before was lost."""
    with BridgeProcess(bridge_args(redis.url), tmp_path / "bridge.log", env=ENV) as bridge:
        assert save(bridge, "customer-1", "session-before-hang")[0] == 200
        redis.pause()
        try:
            began = time.monotonic()
            assert_unavailable(load(bridge, "customer-1"))
            waited = time.monotonic() - began
            assert_pages_still_served(bridge)
        finally:
            redis.resume()
        assert waited < 2.5
        answers = [load(bridge, "customer-1") for _ in range(3)]
        assert [body for _, body, _ in answers] == [{"value": "session-before-hang"}] * 3
    assert "Traceback" not in bridge.log()


# --- SQLite ---------------------------------------------------------------------------------------------------


def test_read_only_sqlite_answers_503_then_recovers_with_the_sessions(tmp_path: Path) -> None:
    """Fault: the bridge starts on a SQLite database (file and directory) that is read-only, e.g. a volume mounted
    ro after a redeploy. Seen: pages are served and API calls answer 503 unavailable; once the volume is writable
    the same process serves the session an earlier process saved, and takes new ones.

    (Not tested on a live process: making the WAL index read-only under a running SQLite connection ends the
    process with SIGBUS, in SQLite's own mmap; SECURITY.md says to run the bridge under a supervisor.)"""
    data = tmp_path / "data"
    data.mkdir()
    db = data / "bridge.db"
    with BridgeProcess(bridge_args(f"sqlite:///{db}"), tmp_path / "before.log", env=ENV) as before:
        assert save(before, "customer-1", "session-before-fault")[0] == 200
    assert sorted(path.name for path in data.iterdir()) == ["bridge.db"]  # a clean stop folds the WAL back
    with BridgeProcess(bridge_args(f"sqlite:///{db}"), tmp_path / "bridge.log", env=ENV) as bridge:
        with read_only(db, data):
            assert_unavailable(save(bridge, "customer-2", "during"))
            assert_unavailable(load(bridge, "customer-1"))
            assert_pages_still_served(bridge)
        assert load(bridge, "customer-1")[1] == {"value": "session-before-fault"}
        assert save(bridge, "customer-2", "after")[0] == 200
        assert bridge.process.poll() is None
    assert "Traceback" not in bridge.log()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real disk that fills up. Needs mount rights (root, outside restrictive containers)."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'not root'}); "
                    "tests/test_stores.py covers SQLITE_FULL with SQLite's own page cap")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError:  # ENOSPC: full
            pass
    return filler


def test_full_disk_answers_503_then_recovers_with_the_sessions(small_disk: Path, tmp_path: Path) -> None:
    """Fault: the disk holding the SQLite store fills up. Seen: once SQLite cannot grow, API calls answer 503
    unavailable (never 500), pages are served; after space is freed the same process saves again and the session
    saved before the fault is intact."""
    with BridgeProcess(bridge_args(f"sqlite:///{small_disk / 'bridge.db'}"), tmp_path / "bridge.log", env=ENV) as bridge:
        assert save(bridge, "customer-1", "session-before-fault")[0] == 200
        filler = fill(small_disk)
        statuses = []
        for n in range(300):  # distinct customers, 4 KB each: the WAL and the database must grow
            statuses.append(save(bridge, f"filler-customer-{n}", "x" * 4000)[0])
            if statuses[-1] != 200:
                break
        assert statuses[-1] == 503 and set(statuses) <= {200, 503}
        assert_unavailable(save(bridge, "customer-2", "y" * 4000))
        assert_pages_still_served(bridge)
        filler.unlink()
        assert save(bridge, "customer-2", "after")[0] == 200
        assert load(bridge, "customer-1")[1] == {"value": "session-before-fault"}
    assert "Traceback" not in bridge.log()


# --- the bridge process itself --------------------------------------------------------------------------------


def test_killed_bridge_loses_nothing_it_acknowledged(tmp_path: Path) -> None:
    """Fault: the bridge is killed (SIGKILL, OOM killer) mid-session. Seen: after a restart on the same SQLite file,
    the session saved and the code issued before the kill are both there."""
    db = f"sqlite:///{tmp_path / 'bridge.db'}"
    with BridgeProcess(bridge_args(db), tmp_path / "first.log", env=ENV) as bridge:
        assert save(bridge, "customer-1", "acknowledged-session")[0] == 200
        code = issue(bridge, "acknowledged-handoff")
        os.killpg(bridge.process.pid, signal.SIGKILL)
        bridge.process.wait(timeout=10)
    with BridgeProcess(bridge_args(db), tmp_path / "second.log", env=ENV) as restarted:
        assert load(restarted, "customer-1")[1] == {"value": "acknowledged-session"}
        assert redeem(restarted, code)[1]["value"] == "acknowledged-handoff"


def test_sigterm_lets_an_in_flight_request_finish(tmp_path: Path) -> None:
    """Fault: a deploy sends SIGTERM while a customer's browser is half-way through sending a handoff request.
    Seen: the server stops accepting new connections but completes that request with 200 and a code, then exits
    cleanly; the code redeems on the next process."""
    db = f"sqlite:///{tmp_path / 'bridge.db'}"
    body = json.dumps({"name": NAME, "value": "in-flight-session", "destination": B}).encode()
    head = (f"POST /api/v1/handoff HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {A}\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with BridgeProcess(bridge_args(db), tmp_path / "first.log", env=ENV) as bridge:
        with socket.create_connection((bridge.host, bridge.port), timeout=15) as customer:
            customer.sendall(head + body[:10])
            time.sleep(0.3)
            os.killpg(bridge.process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while "Shutting down" not in bridge.log() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "Shutting down" in bridge.log()
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((bridge.host, bridge.port), timeout=2).close()
            customer.sendall(body[10:])
            response = customer.makefile("rb").read()  # the server closes the connection after answering
        status_line, _, rest = response.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 200 OK"
        code = json.loads(rest.partition(b"\r\n\r\n")[2])["code"]
        # uvicorn re-raises the signal once it has shut down cleanly, so the exit status is "terminated by SIGTERM".
        assert bridge.process.wait(timeout=15) in (0, -signal.SIGTERM)
        assert "Finished server process" in bridge.log() and "Traceback" not in bridge.log()
    with BridgeProcess(bridge_args(db), tmp_path / "second.log", env=ENV) as restarted:
        assert redeem(restarted, code)[1]["value"] == "in-flight-session"


def test_clients_hanging_up_mid_request_leave_no_traceback(tmp_path: Path) -> None:
    """Fault (or a cheap log-flooding attack): clients that send an API request's headers and part of its body,
    then hang up. Seen before the fix: an ERROR and a ClientDisconnect traceback in the log for each one. Now: the
    log stays clean and the bridge answers the next customer."""
    body = json.dumps({"name": NAME, "value": "v", "destination": B}).encode()
    head = (f"POST /api/v1/handoff HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {A}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with BridgeProcess(bridge_args(f"sqlite:///{tmp_path / 'bridge.db'}"), tmp_path / "bridge.log", env=ENV) as bridge:
        for _ in range(20):
            with socket.create_connection((bridge.host, bridge.port), timeout=5) as client:
                client.sendall(head + body[:5])
                time.sleep(0.02)
        time.sleep(0.5)
        assert issue(bridge, "next-customer")
    assert "Traceback" not in bridge.log() and "ERROR" not in bridge.log()
