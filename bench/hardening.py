"""Issue 17, items 1 and 2, measured: a legitimate client's latency while one attacker floods a header or holds
connections open (slowloris), for `serve` before the fix (a git ref, extracted to a temp dir) and after (this
tree), in one run; then requests/s of both, of the same app on uvicorn's h11 with its size limit, and of nginx.

    python -m bench.hardening                  # before = 95c2f27 (the commit issue 17 was measured on)
    python -m bench.hardening --before HEAD~3

Bounded: every attack lasts --attack-seconds (default 12, past the 10 s read deadlines), loopback only; the throughput part is
--rounds x --seconds per server (default 2 x 3 s). Each server runs with RLIMIT_NOFILE 1024, the systemd default.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from bench.common import ROOT, median, percentile, print_machine, stop_process, wait_for_http
from bench.throughput import nginx_config, run_wrk
from cookiebridge.build import build
from testsupport import free_port, make_settings

SECRET = "hardening-bench-key-Hj8kL2mN5pQ9rS3tV6wX"
ORIGINS = ["https://www.domain-a.com", "https://shop.domain-b.co.uk"]
FD_LIMIT = 1024
H11_SERVER = """
import sys, uvicorn
uvicorn.run("cookiebridge.app:app_from_environment", factory=True, http="h11", port=int(sys.argv[1]),
            log_level="warning", server_header=False, h11_max_incomplete_event_size=32 * 1024, limit_concurrency=1000)
"""


def extract(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def start(tree: Path, port: int, work: Path, *, h11: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(tree), "COOKIEBRIDGE_SECRET_KEY": SECRET,
           "COOKIEBRIDGE_TRUSTED_ORIGINS": ",".join(ORIGINS), "COOKIEBRIDGE_STORE": f"sqlite:///{work / f'{port}.db'}"}
    if h11:
        command = [sys.executable, "-c", H11_SERVER, str(port)]
    else:
        command = [sys.executable, "-m", "cookiebridge", "serve", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=tree, env=env, stdout=(work / f"{port}.log").open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=limit_fds)
    wait_for_http(f"http://127.0.0.1:{port}/healthz")
    return process


def cpu_and_rss(pid: int) -> tuple[float, float]:
    """CPU seconds used so far and resident MiB of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return (int(fields[11]) + int(fields[12])) / ticks, rss


class Poller(threading.Thread):
    """The legitimate client: a fresh connection and `GET /healthz` every 50 ms, 2 s timeout each."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.latencies, self.failures, self.stop = port, [], 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\nConnection: close\r\n\r\n")
                    answer = sock.recv(4096)
                if not answer.startswith(b"HTTP/1.1 200"):
                    raise OSError(answer[:40])
                self.latencies.append((time.monotonic() - began) * 1000)
            except OSError:
                self.failures += 1
            self.stop.wait(max(0.0, 0.05 - (time.monotonic() - began)))

    def summary(self) -> str:
        if not self.latencies:
            return f"ok 0, failed {self.failures}"
        return (f"ok {len(self.latencies)}, failed {self.failures}, p50 {median(self.latencies):.1f} ms, "
                f"p99 {percentile(self.latencies, 0.99):.1f} ms, max {max(self.latencies):.0f} ms")


def header_flood(port: int, seconds: float, limit: int = 200 << 20) -> str:
    """For `seconds`, one connection at a time sends one header value, 64 KiB at a time, until the server answers
    or closes, or until `limit` bytes (the issue's 200 MB) went out on it; then the next connection starts."""
    sent, answers, deadline, chunk = 0, {}, time.monotonic() + seconds, b"a" * 65536
    while time.monotonic() < deadline:
        answer, on_this = b"", 0
        with socket.create_connection(("127.0.0.1", port), timeout=seconds + 5) as sock:
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\nX-Flood: ")
                while time.monotonic() < deadline and on_this < limit:
                    sock.sendall(chunk)
                    on_this += len(chunk)
                sock.settimeout(1)
                answer = sock.recv(100)
            except OSError:
                try:
                    answer = sock.recv(100)
                except OSError:
                    pass
        sent += on_this
        status = answer.split(b"\r\n")[0].decode(errors="replace") or "none"
        answers[status] = answers.get(status, 0) + 1
    return f"sent {sent / 2**20:.0f} MiB on {sum(answers.values())} connection(s), answers {answers}"


def slowloris(port: int, seconds: float, connections: int = 1100) -> str:
    """Hold `connections` connections that each send half a request head, then one header line every 2 s; reopen
    any the server closes."""
    socks: list[socket.socket] = []
    opened = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        while len(socks) < connections and time.monotonic() < deadline:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=2)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n")
                socks.append(sock)
                opened += 1
            except OSError:
                break
        time.sleep(2)
        alive = []
        for sock in socks:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                alive.append(sock)
            except OSError:
                sock.close()
        socks = alive
    held = len(socks)
    for sock in socks:
        sock.close()
    return f"opened {opened} connections in all, held {held} at the end"


def attack(name: str, tree: Path, work: Path, seconds: float) -> None:
    port = free_port()
    process = start(tree, port, work)
    try:
        quiet = Poller(port)
        quiet.start()
        time.sleep(1.5)
        quiet.stop.set()
        quiet.join()
        cpu_before, rss_before = cpu_and_rss(process.pid)
        for label, run in (("header flood", header_flood), ("slowloris", slowloris)):
            poller = Poller(port)
            poller.start()
            peak = [rss_before]

            def watch() -> None:
                while not poller.stop.is_set():
                    peak.append(cpu_and_rss(process.pid)[1])
                    time.sleep(0.2)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            outcome = run(port, seconds)
            poller.stop.set()
            poller.join()
            cpu, _ = cpu_and_rss(process.pid)
            print(f"{name:6} {label:13} legit client: {poller.summary()}; attacker: {outcome}; server CPU "
                  f"{cpu - cpu_before:.1f} s, peak RSS {max(peak):.0f} MiB", flush=True)
            cpu_before = cpu
            time.sleep(3)  # let the server drop what is left
        print(f"{name:6} {'no attack':13} legit client: {quiet.summary()}", flush=True)
        log = (work / f"{port}.log").read_text(errors="replace")
        print(f"{name:6} log lines about shedding: {log.count('shedding load')}, tracebacks: {log.count('Traceback')}")
    finally:
        stop_process(process, timeout=10)


def throughput(trees: dict[str, Path], work: Path, seconds: int, rounds: int, connections: int) -> None:
    out = work / "static"
    nginx_port = free_port()
    build(make_settings(trusted_origins=ORIGINS, secret_key=SECRET), out, f"http://127.0.0.1:{nginx_port}/", api=True)
    nginx = subprocess.Popen(["nginx", "-c", str(nginx_config(work, out, nginx_port))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    servers = {"nginx": (nginx, nginx_port)}
    for name, tree in trees.items():
        port = free_port()
        servers[name] = (start(tree, port, work, h11=name.endswith("h11")), port)
    try:
        wait_for_http(f"http://127.0.0.1:{nginx_port}/iframe.html")
        print(f"throughput: wrk -t1 -c{connections} -d{seconds}s, median of {rounds} interleaved round(s)")
        for label, accept in (("browser", "gzip, deflate, br"), ("uncompressed", "identity")):
            figures: dict[str, list[float]] = {name: [] for name in servers}
            for _, port in servers.values():
                run_wrk(f"http://127.0.0.1:{port}/iframe.html", accept, 1, connections)
            for _ in range(rounds):
                for name, (_, port) in servers.items():
                    figures[name].append(run_wrk(f"http://127.0.0.1:{port}/iframe.html", accept, seconds,
                                                 connections)["rps"])
            nginx_rps = median(figures["nginx"])
            for name, values in figures.items():
                print(f"/iframe.html {label:12} {name:10} {median(values):8.0f} req/s  serve/nginx "
                      f"{median(values) / nginx_rps:.2f}", flush=True)
    finally:
        for process, _ in servers.values():
            stop_process(process, timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="95c2f27", help="git ref of the code before the fix")
    parser.add_argument("--attack-seconds", type=float, default=12)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    print_machine()
    work = Path(tempfile.mkdtemp(prefix="cookiebridge-hardening-"))
    os.chmod(work, 0o755)
    try:
        before = extract(args.before, work / "before")
        trees = {"before": before, "after": ROOT}
        for name, tree in trees.items():
            attack(name, tree, work, args.attack_seconds)
        if not args.skip_throughput and shutil.which("wrk") and shutil.which("nginx"):
            throughput({**trees, "after-h11": ROOT}, work, args.seconds, args.rounds, args.connections)
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
