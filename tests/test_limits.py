"""Hostile clients at the HTTP level, against the real `cookiebridge serve` process (issue 17, items 1 and 2).

Each test runs one attack from a single connection (or a handful) while a legitimate client asks for `/healthz`,
and asserts what that client and the operator see: answers within a fraction of a second, the attacker cut off
early with a status that names the limit, and one log line saying the bridge shed load.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from cookiebridge.identity import sign_identity
from testsupport import BridgeProcess
from testsupport.api import call
from testsupport.settings import NAME

SECRET = "limits-test-key-Hj8kL2mN5pQ9rS3tV6wX"
ARGS = ["--trusted-origin", "https://domain-a.example", "--header-timeout", "2", "--body-timeout", "2",
        "--max-connections", "40"]


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[BridgeProcess]:
    args = [*ARGS, "--store", f"sqlite:///{tmp_path / 'bridge.db'}"]
    with BridgeProcess(args, tmp_path / "bridge.log", env={"COOKIEBRIDGE_SECRET_KEY": SECRET}) as process:
        yield process


def healthz_seconds(bridge: BridgeProcess) -> float:
    began = time.monotonic()
    with urllib.request.urlopen(bridge.url + "/healthz", timeout=10) as response:
        assert response.status == 200
    return time.monotonic() - began


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def send_and_read(bridge: BridgeProcess, pieces: Iterator[bytes], timeout: float = 10) -> tuple[bytes, int]:
    """Send pieces until the server answers or closes; return its answer and how many bytes went out."""
    sent = 0
    with socket.create_connection((bridge.host, bridge.port), timeout=timeout) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return sock.recv(65536), sent
        except ConnectionResetError:
            return b"", sent


def long_header(total: int) -> Iterator[bytes]:
    yield b"GET /healthz HTTP/1.1\r\nHost: bridge\r\nX-Flood: "
    for _ in range(total // 65536):
        yield b"a" * 65536


def test_a_huge_header_value_is_refused_after_the_limit_and_others_are_not_slowed(bridge: BridgeProcess) -> None:
    """Attacker: one connection sends a 64 MB header value (before the fix the parser joined its pieces on the
    event loop: other clients waited 12-15 s per request). Seen: 431 once the head passes max_header_bytes (32 KiB),
    the connection closed, and a customer's /healthz meanwhile answered in well under a second."""
    answers: list[tuple[bytes, int]] = []
    attacker = threading.Thread(target=lambda: answers.append(send_and_read(bridge, long_header(64 << 20))))
    attacker.start()
    slowest = max(healthz_seconds(bridge) for _ in range(10))
    attacker.join(30)
    answer, sent = answers[0]
    assert status_of(answer) == 431 and sent < 64 << 20
    assert slowest < 0.5
    assert "shedding load: answered 431" in bridge.log()


def test_a_long_url_gets_414_and_many_header_lines_get_431(bridge: BridgeProcess) -> None:
    """Attacker: a 9,000-byte URL, and 5,000 header lines of 8 bytes each (memory per connection grew from 46 to
    360 MB before). Seen: 414 and 431, and the bridge answers the next request."""
    url = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: bridge\r\n\r\n"
    assert status_of(send_and_read(bridge, iter([url]))[0]) == 414
    lines = iter([b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n", *[b"X-%04d: a\r\n" % n for n in range(5000)], b"\r\n"])
    assert status_of(send_and_read(bridge, lines)[0]) == 431
    assert healthz_seconds(bridge) < 0.5


@pytest.mark.parametrize(
    ("sent", "expected"),
    [(b"", b""), (b"GET /healthz HTTP/1.1\r\nHost: br", b"HTTP/1.1 408"),
     (b"POST /api/v1/handoff HTTP/1.1\r\nHost: bridge\r\nOrigin: https://domain-a.example\r\nContent-Length: 50\r\n\r\n{",
      b"HTTP/1.1 408")],
    ids=["nothing", "half a head", "one body byte"],
)
def test_slow_clients_are_cut_off_after_the_read_timeout(bridge: BridgeProcess, sent: bytes, expected: bytes) -> None:
    """Attacker (slowloris): connections that send nothing, half a request head, or one byte of a declared body,
    then wait (before the fix: held open 75-90 s and more). Seen: closed after header_timeout / body_timeout
    (2 s here), with 408 when a request had begun; one log line for the partial ones."""
    with socket.create_connection((bridge.host, bridge.port), timeout=10) as sock:
        sock.sendall(sent)
        began = time.monotonic()
        answer = sock.recv(65536)
        waited = time.monotonic() - began
    assert answer.startswith(expected) and 1.5 < waited < 4
    if sent:
        assert "shedding load: closed connections still sending their request" in bridge.log()


def test_a_trickled_head_cannot_outlive_the_header_timeout(bridge: BridgeProcess) -> None:
    """Attacker: sends one header byte a second, so no read ever times out on its own (uvicorn's keep-alive timer
    is reset by every byte). Seen: 408 after header_timeout (2 s) in all, not after the last byte."""
    with socket.create_connection((bridge.host, bridge.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        began = time.monotonic()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(10):
                time.sleep(0.5)
                sock.sendall(b"X")
        assert time.monotonic() - began < 4


def test_slowloris_past_max_connections_sheds_the_slow_ones_and_serves_customers(bridge: BridgeProcess) -> None:
    """Attacker: opens three times max_connections (40 here) connections that each send half a head and wait
    (before the fix 1,100 of them filled the 1,024 descriptors and every new client was reset, nothing logged).
    Seen: customers are answered at once, because each new connection pushes out the oldest one still waiting
    for its head; the log says so."""
    attackers = []
    for _ in range(120):
        sock = socket.create_connection((bridge.host, bridge.port), timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: br")
        attackers.append(sock)
    try:
        assert max(healthz_seconds(bridge) for _ in range(20)) < 0.5
    finally:
        for sock in attackers:
            sock.close()
    assert "shedding load: 41 connections open (max_connections 40): closed the oldest one" in bridge.log()


def test_workers_get_the_keys_without_them_in_their_environment(tmp_path: Path) -> None:
    """Attacker with read access to /proc (another service under the same user, a debugging dump): reads the
    workers' environment. Before the fix `serve` copied the effective settings, secret_key and identity_secret
    included, into every worker's environment, although the operator kept them in a 0600 file. Seen now: neither
    key in any worker's /proc/<pid>/environ, and the workers still sign and verify with them."""
    secret, identity = "file-held-Qm4vT9xK2pL7wZ3nR8bY6cH1", "file-held-identity-Hj8kL2mN5pQ9rS3tV"
    config = tmp_path / "bridge.toml"
    config.write_text(f'trusted_origins = ["https://domain-a.example", "https://domain-b.example"]\n'
                      f'secret_key = "{secret}"\nidentity_secret = "{identity}"\n'
                      f'store = "sqlite:///{tmp_path / "bridge.db"}"\n')
    config.chmod(0o600)
    with BridgeProcess(["--config", str(config), "--workers", "2"], tmp_path / "bridge.log") as bridge:
        workers = [int(pid) for pid in Path(f"/proc/{bridge.process.pid}/task/{bridge.process.pid}/children")
                   .read_text().split()]
        environments = [Path(f"/proc/{pid}/environ").read_bytes() for pid in [bridge.process.pid, *workers]]
        token = sign_identity("customer-1", identity)
        assert call(bridge, "identity/save", {"token": token, "name": NAME, "value": "v"})[0] == 200
        assert call(bridge, "identity/load", {"token": token, "name": NAME})[1] == {"value": "v"}
    assert len(workers) >= 2
    assert not [env for env in environments if secret.encode() in env or identity.encode() in env]


def test_limit_settings_are_validated_and_loose_ones_warned_about() -> None:
    """The new settings follow the others: whole numbers in a range (one-line ConfigError otherwise), shown by
    `check`, and a warning when they are loose enough to let slow clients hold a worker."""
    from cookiebridge.config import ConfigError, load_settings

    base = {"trusted_origins": ["https://a.example"], "secret_key": "Qm4vT9xK2pL7wZ3nR8bY6cH1dF5gJ0sA"}
    with pytest.raises(ConfigError, match=r"^header_timeout = '0' must be a whole number from 1 to 300$"):
        load_settings(environ={}, flags={**base, "header_timeout": "0"})
    loose = load_settings(environ={"COOKIEBRIDGE_MAX_CONNECTIONS": "50000"}, flags={**base, "body_timeout": "120"})
    assert loose.effective()["max_connections"] == 50000
    assert any(note.startswith("max_connections 50000, header_timeout 10 s, body_timeout 120 s") for note in loose.warnings())
    assert load_settings(environ={}, flags=base).warnings() == []
