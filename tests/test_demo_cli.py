"""`cookiebridge demo` as a newcomer meets it: ports bound before the banner, one line for a busy port or a missing
extra, one CA kept in the cache directory, nothing left in the temporary folder, and the terminal saying what the
bridge does."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from cookiebridge import config
from cookiebridge.cli import main
from cookiebridge.demo import DemoError, topology
from cookiebridge.demo.certs import INSTALL_HINT, cached_certificates
from cookiebridge.demo.servers import bind
from testsupport.processes import free_port

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


def demo_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "TMPDIR": str(tmp_path / "tmp"),
            "PYTHONUNBUFFERED": "1"}


def start_demo(tmp_path: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cookiebridge", "demo", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=demo_env(tmp_path),
                            start_new_session=True)


def read_banner(process: subprocess.Popen, port: int) -> list[str]:
    """The banner's lines; on its first line, every demo port already accepts connections."""
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("cookiebridge demo is running"), first + (process.stderr.read() if process.stderr else "")
    for host in HOSTS:
        with socket.create_connection((host, port), timeout=2):
            pass
    lines = [first.rstrip("\n")]
    while not lines[-1].startswith("Also on each site"):
        lines.append(process.stdout.readline().rstrip("\n"))
    return lines


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    return process.wait(timeout=20)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, int, list[str]]]:
    port = free_port()
    process = start_demo(tmp_path, port)
    try:
        yield process, port, read_banner(process, port)
    finally:
        stop(process)


def post(url: str, origin: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"})
    with urllib.request.urlopen(request, timeout=10, context=ssl._create_unverified_context()) as response:
        return json.loads(response.read())


def test_banner_names_the_sites_and_the_cached_ca_after_binding(running, tmp_path: Path) -> None:
    process, port, banner = running
    text = "\n".join(banner)
    assert f"  bridge:   https://127.0.0.1:{port}/iframe.html" in banner
    assert f"  domain-a: https://127.0.0.2:{port}/" in banner and f"  domain-b: https://127.0.0.3:{port}/" in banner
    ca = tmp_path / "cache" / "cookiebridge" / "demo-ca" / "ca.pem"
    assert str(ca) in text and ca.is_file()
    assert "/identity.html" in text


def test_the_terminal_logs_handoffs_and_identity_loads_without_codes_or_values(running) -> None:
    process, port, _ = running
    bridge, a, b = (f"https://{host}:{port}" for host in HOSTS)
    secret_value = "session-value-that-must-not-be-logged"
    code = post(f"{bridge}/api/v1/handoff", a, {"name": "customer-defined-session-cookie", "value": secret_value,
                                               "destination": b})["code"]
    assert post(f"{bridge}/api/v1/handoff/redeem", b, {"code": code, "referrer": a + "/"})["value"] == secret_value
    stop(process)
    assert process.stdout is not None
    log = process.stdout.read()
    assert f"cookiebridge: handoff issued on {a} for a link to {b}" in log
    assert f"cookiebridge: handoff redeemed on {b}: a chat continued from {a}" in log
    assert code not in log and secret_value not in log


def test_identity_is_on_by_default_and_its_loads_are_logged(running) -> None:
    process, port, _ = running
    a = f"https://127.0.0.2:{port}"
    with urllib.request.urlopen(a + "/identity.html", timeout=10, context=ssl._create_unverified_context()) as page:
        html = page.read().decode()
    token = json.loads(html.split("{ identity: ", 1)[1].split(" });", 1)[0])
    assert post(f"https://127.0.0.1:{port}/api/v1/identity/load", a,
                {"name": "customer-defined-session-cookie", "token": token}) == {"value": None}
    stop(process)
    assert process.stdout is not None
    log = process.stdout.read()
    assert f"cookiebridge: identity load on {a}: no chat saved" in log and token not in log


def test_a_stopped_demo_exits_cleanly_and_leaves_no_temporary_folder(tmp_path: Path) -> None:
    port = free_port()
    process = start_demo(tmp_path, port)
    read_banner(process, port)
    assert stop(process) == 0
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_demo_ca_is_kept_and_reused(tmp_path: Path) -> None:
    first = cached_certificates(tmp_path / "ca")
    ca, key = first.ca.read_bytes(), (tmp_path / "ca" / "ca.key").read_bytes()
    chain = first.cert_chain.read_bytes()
    again = cached_certificates(tmp_path / "ca")
    assert again == first and again.ca.read_bytes() == ca and again.cert_chain.read_bytes() == chain
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o077 == 0 and first.key.stat().st_mode & 0o077 == 0
    assert (tmp_path / "ca").stat().st_mode & 0o077 == 0
    # A new site address gets a new server certificate from the same CA.
    other = cached_certificates(tmp_path / "ca", hosts=["127.0.0.9"])
    assert other.ca.read_bytes() == ca and (tmp_path / "ca" / "ca.key").read_bytes() == key
    assert other.cert_chain.read_bytes() != chain
    context = ssl.create_default_context(cafile=str(other.ca))
    context.load_cert_chain(str(other.cert_chain), str(other.key))  # the key matches the certificate


def test_two_runs_share_one_ca(tmp_path: Path) -> None:
    cas = []
    for _ in range(2):
        port = free_port()
        process = start_demo(tmp_path, port)
        read_banner(process, port)
        stop(process)
        cas.append((tmp_path / "cache" / "cookiebridge" / "demo-ca" / "ca.pem").read_bytes())
    assert cas[0] == cas[1]


def test_a_busy_port_is_one_line_naming_it_and_the_flag(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.3", port))
        taken.listen()
        result = subprocess.run([sys.executable, "-m", "cookiebridge", "demo", "--port", str(port)],
                                capture_output=True, text=True, env=demo_env(tmp_path), timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""  # no banner
    assert result.stderr == (f"cookiebridge: error: port {port} on 127.0.0.3 is in use (another `cookiebridge "
                             "demo`?): stop it, or pick another port with --port N\n")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_second_demo_on_the_same_port_says_so_and_the_first_keeps_running(running, tmp_path: Path) -> None:
    process, port, _ = running
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "cookiebridge", "demo", "--port", str(port)],
                            capture_output=True, text=True, env=demo_env(tmp_path), timeout=60)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert time.monotonic() - started < 30 and process.poll() is None


def test_bind_names_an_address_that_is_not_on_this_machine() -> None:
    with pytest.raises(DemoError, match=r"address 192\.0\.2\.1 is not on this machine.*--site-host"):
        bind("192.0.2.1", free_port())


def test_without_the_demo_extra_the_command_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # import trustme raises ImportError
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["demo", "--port", str(free_port())])
    assert result.exit_code == 2
    assert result.output == f"cookiebridge: error: {INSTALL_HINT}\n"
    assert "pip install 'cookiebridge[demo]'" in result.output
    assert not (tmp_path / "cookiebridge").exists()


def test_the_same_address_twice_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--site-host", "127.0.0.1", "--site-host", "127.0.0.3"])
    assert result.exit_code == 2 and "one address each" in result.output


def test_the_topology_is_declared_once() -> None:
    assert config.DEMO_ORIGINS == topology.SITE_ORIGINS == ("https://127.0.0.2:8443", "https://127.0.0.3:8443")
    demo = main.commands["demo"]
    defaults = {param.name: param.default for param in demo.params}
    assert defaults == {"port": topology.PORT, "bridge_host": topology.BRIDGE_HOST, "site_hosts": topology.SITE_HOSTS}


def test_the_bridge_never_imports_the_demo() -> None:
    probe = ("import sys, cookiebridge.app, cookiebridge.cli, cookiebridge.build;"
             "print(sorted(m for m in sys.modules if m.startswith('cookiebridge.demo') or m == 'trustme'))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    # The CLI reads the demo's topology for its option defaults; nothing else of the demo, and no trustme.
    assert result.stdout.strip() == "['cookiebridge.demo', 'cookiebridge.demo.topology']"
