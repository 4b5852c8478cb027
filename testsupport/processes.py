"""Start the real `cookiebridge serve` process for tests, wait until it answers, stop it, keep its log."""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

from testsupport.tls import loopback_client_context

# Where free_port() looks: below the kernel's ephemeral range, from which every outgoing connection (the browsers
# make hundreds) takes its local port, so none can take a test server's port between the probe and the bind; and
# one slice of it per pytest-xdist worker, so two workers never pick the same port.
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST, _SLICES = 10000, 8
_given: set[int] = set()


def _candidates() -> list[int]:
    try:
        top = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        top = 32768  # Linux's default
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    size = max((top - _LOWEST) // _SLICES, 0)
    first = _LOWEST + (int(worker) % _SLICES if worker.isdigit() else 0) * size
    ports = list(range(first, first + size))
    random.shuffle(ports)
    return ports


def free_port() -> int:
    """A TCP port that no socket holds on any address now, that this process has not handed out before, and that no
    outgoing connection can take (see _candidates). Asked of the wildcard address: the test servers listen on
    127.0.0.2, 127.0.0.3 and others. The probe socket never listens."""
    for port in itertools.chain(_candidates(), [0]):  # 0: the OS picks, where the range below it is too small
        if port in _given:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            chosen = int(sock.getsockname()[1])
        _given.add(chosen)
        return chosen
    raise RuntimeError("no free TCP port on this machine")


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Until `url`/healthz answers 200; raise if `process` exits first or `timeout` seconds pass."""
    context = loopback_client_context()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cookiebridge serve exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1, context=context) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"cookiebridge serve did not answer {url}/healthz within {timeout} s")


class BridgeProcess:
    """`with BridgeProcess(args, log_path) as bridge:` runs `python -m cookiebridge serve ARGS` on a free port."""

    def __init__(self, args: Sequence[str], log_path: Path, *, host: str = "127.0.0.1", port: int | None = None,
                 env: Mapping[str, str] | None = None, tls: bool = False) -> None:
        self.host, self.port = host, port or free_port()
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self.args = [sys.executable, "-m", "cookiebridge", "serve", "--host", host, "--port", str(self.port), *args]
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "BridgeProcess":
        self.log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(self.args, stdout=self.log_file, stderr=subprocess.STDOUT, env=self.env,
                                        start_new_session=True)
        try:
            wait_until_healthy(self.url, self.process)
            self._wait_until_bound()
        except Exception:
            self.stop()
            raise RuntimeError(f"{' '.join(self.args)} did not start:\n{self.log()}") from None
        return self

    def _wait_until_bound(self, timeout: float = 20.0) -> None:
        # /healthz may have been answered by another process that took the port first (free_port only knows it was
        # free a moment ago); ours says that it listens only once it has bound the port, before it answers anything.
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not ("listening on" in (log := self.log()) and f":{self.port}/" in log):
            if self.process.poll() is not None:
                raise RuntimeError(f"cookiebridge serve exited with status {self.process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"cookiebridge serve did not say it listens on port {self.port} within {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log_file.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        self.stop()
