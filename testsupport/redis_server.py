"""Run a throwaway `redis-server` on a free loopback port for tests: no persistence, own temp dir, own log."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

from testsupport.processes import free_port

INSTALL_HINT = "redis-server not found: install the Debian package with `apt-get install redis-server`"


def find_redis_server() -> str | None:
    """The redis-server executable, on PATH or where Debian puts it; None when it is not installed."""
    return shutil.which("redis-server") or next(
        (path for path in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(path, os.X_OK)), None
    )


class RedisServer:
    """`with RedisServer() as server:` serves `server.url`; `stop()`/`start()` keep the port, for outage tests."""

    def __init__(self, executable: str | None = None, port: int | None = None, *, args: Sequence[str] = ()) -> None:
        self.executable = executable or find_redis_server() or "redis-server"
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cookiebridge-redis-"))
        self.process: subprocess.Popen | None = None
        self.extra_args = list(args)  # e.g. --replicaof, --cluster-enabled

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        args = [*self.command_line(), *self.extra_args]
        with (self.dir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {self.process.returncode}:\n{self.log()}")
            try:
                if self.command("PING") == b"+PONG":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"redis-server did not answer PING on port {self.port} within {timeout} s:\n{self.log()}")

    def command_line(self) -> list[str]:
        return [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir)]

    def kill(self) -> None:
        """SIGKILL, as when the host dies: nothing is flushed, no replica is told."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # in case a test paused it
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers, as with a hung host."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def command(self, *args: str) -> bytes:
        """Send one command; the first line of the reply, e.g. b'+OK'."""
        payload = f"*{len(args)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(payload)
            return sock.makefile("rb").readline().rstrip(b"\r\n")

    def flush(self) -> None:
        reply = self.command("FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL answered {reply!r}")

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisSentinel(RedisServer):
    """`redis-server sentinel.conf --sentinel` (Debian's redis-server has Sentinel built in) watching one primary as
    `service`, quorum 1, primary declared down after `down_after_ms`."""

    def __init__(self, primary_port: int, *, service: str = "mymaster", down_after_ms: int = 1000,
                 executable: str | None = None) -> None:
        super().__init__(executable)
        self.service = service
        (self.dir / "sentinel.conf").write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {service} 127.0.0.1 {primary_port} 1\n"
            f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
            f"sentinel failover-timeout {service} 5000\nsentinel parallel-syncs {service} 1\n")

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def command_line(self) -> list[str]:
        return [self.executable, str(self.dir / "sentinel.conf"), "--sentinel"]


def cluster_args(bus_port: int) -> list[str]:
    """A cluster node with its bus on `bus_port` (by default port + 10000, which may not exist); CLUSTER MEET must
    then name that port too."""
    return ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
            "--cluster-port", str(bus_port)]
