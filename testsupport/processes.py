"""Start the real `cookiebridge serve` process for tests, wait until it answers, stop it, keep its log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

from testsupport.tls import loopback_client_context


def free_port() -> int:
    """A TCP port that no socket holds on any address right now (the OS picks it).

    Asked of the wildcard address, not of one loopback address: the test servers listen on 127.0.0.2, 127.0.0.3
    and others, and a port that is free on 127.0.0.1 may be one another pytest worker serves on 127.0.0.2 (CI met
    it: every test of that worker failed on "address already in use"). The probe socket never listens.
    """
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


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
