"""Load: a mix of page, script and handoff traffic against `cookiebridge serve` for a minute, then the same against
two `serve` processes sharing one Redis. Loopback only, bounded in time.

    python -m bench.load [--seconds 60] [--connections 32] [--warm-up 10] [--only sqlite|redis] [--json FILE]

Needs wrk (Debian: apt-get install -y wrk) and, for the Redis part, redis-server. Each wrk connection runs a
Lua script that picks, per request: GET /iframe.html (30 %), GET /cookie-provider.min.js (25 %, as browsers ask,
gzip/br accepted), GET /iframe.min.js (15 %), POST /api/v1/handoff/redeem of a code this connection's thread was
issued earlier (15 %, when it holds one) and POST /api/v1/handoff (the rest). Codes are issued with Origin
domain-a for domain-b and redeemed with Origin domain-b, so every request should answer 200.

Pass criteria (exit status 1 otherwise): no socket error or timeout, no 5xx (nor 4xx), and the server's resident
memory (VmRSS, sampled every 0.5 s) at most 10 % higher in the last quarter of the measured run than in the first.
A warm-up run comes first and is not measured, so the first quarter is not start-up allocation. Rate limit is set
to its maximum: every request comes from 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.common import ROOT, print_machine, wait_for_http
from bench.common import stop_process as stop
from testsupport import RedisServer, find_redis_server, free_port

A, B = "https://domain-a.example", "https://domain-b.example"
NAME = "customer-defined-session-cookie"
SECRET = "load-bench-key-Hj8kL2mN5pQ9rS3tV6wX"
MAX_GROWTH = 0.10
SAMPLE_EVERY = 0.5

LUA = r"""
-- cookiebridge load mix; per-thread state, results collected in done().
local issue_body = '{"name":"%(name)s","value":"j%%3A%%7B%%22sessionId%%22%%3A%%22load%%22%%7D","destination":"%(b)s"}'
local api = {["Origin"] = "%(a)s", ["Content-Type"] = "text/plain;charset=UTF-8"}
local redeem_headers = {["Origin"] = "%(b)s", ["Content-Type"] = "text/plain;charset=UTF-8"}
local browser = {["Accept-Encoding"] = "gzip, deflate, br"}
local codes, threads = {}, {}
s2xx, s3xx, s4xx, s5xx, issued, redeemed, other = 0, 0, 0, 0, 0, 0, 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + #threads)
  page = wrk.format("GET", "/iframe.html", browser)
  provider = wrk.format("GET", "/cookie-provider.min.js", browser)
  frame_js = wrk.format("GET", "/iframe.min.js", browser)
  issue = wrk.format("POST", "/api/v1/handoff", api, issue_body)
end

function request()
  local roll = math.random(100)
  if roll <= 30 then return page end
  if roll <= 55 then return provider end
  if roll <= 70 then return frame_js end
  if roll <= 85 and #codes > 0 then
    local code = table.remove(codes)
    return wrk.format("POST", "/api/v1/handoff/redeem", redeem_headers, '{"code":"' .. code .. '"}')
  end
  return issue
end

function response(status, headers, body)
  if status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1
  elseif status >= 300 then s3xx = s3xx + 1
  else s2xx = s2xx + 1 end
  if status == 200 and body then
    local code = string.match(body, '"code":"([^"]+)"')
    if code then
      issued = issued + 1
      table.insert(codes, code)
    elseif string.find(body, '"from":', 1, true) then
      redeemed = redeemed + 1
    end
  end
end

function done(summary, latency, requests)
  local totals = {s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0, issued = 0, redeemed = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do totals[key] = totals[key] + thread:get(key) end
  end
  local e = summary.errors
  io.write(string.format(
    'CBLOAD {"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,' ..
    '"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"p999_us":%%d,"max_us":%%d,"s2xx":%%d,"s3xx":%%d,' ..
    '"s4xx":%%d,"s5xx":%%d,"issued":%%d,"redeemed":%%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    totals.s2xx, totals.s3xx, totals.s4xx, totals.s5xx, totals.issued, totals.redeemed))
end
"""


@dataclass
class Result:
    scenario: str
    seconds: int
    connections: int
    requests: int = 0
    rps: float = 0.0
    errors: int = 0  # socket errors and timeouts
    s5xx: int = 0
    s4xx: int = 0
    issued: int = 0
    redeemed: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    p999_ms: float = 0.0
    max_ms: float = 0.0
    rss_first_mib: list[float] = field(default_factory=list)  # per server
    rss_last_mib: list[float] = field(default_factory=list)
    growth: list[float] = field(default_factory=list)
    tracebacks: int = 0

    @property
    def passed(self) -> bool:
        return not self.errors and not self.s5xx and not self.s4xx and not self.tracebacks and all(
            growth < MAX_GROWTH for growth in self.growth)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Sampler:
    """Samples the resident memory of some processes every SAMPLE_EVERY seconds in a background thread."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.samples: list[tuple[float, list[float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        began = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - began, [rss_mib(pid) for pid in self.pids]))
            self._stop.wait(SAMPLE_EVERY)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def quarters(self) -> tuple[list[float], list[float]]:
        """Mean RSS per process over the first and the last quarter of the sampled time."""
        end = self.samples[-1][0]
        first = [values for at, values in self.samples if at <= end / 4]
        last = [values for at, values in self.samples if at >= 3 * end / 4]
        mean = lambda rows, index: statistics.fmean(row[index] for row in rows)  # noqa: E731
        return [mean(first, i) for i in range(len(self.pids))], [mean(last, i) for i in range(len(self.pids))]


def start_serve(work: Path, port: int, store: str, log: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "cookiebridge", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--log-level", "warning", "--store", store, "--rate-limit", "1000000", "--trusted-origin", A,
            "--trusted-origin", B]
    process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, "COOKIEBRIDGE_SECRET_KEY": SECRET},
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_http(f"http://127.0.0.1:{port}/healthz")
    return process


def wrk(script: Path, url: str, seconds: int, connections: int) -> subprocess.Popen:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script), url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def figures(output: str) -> dict[str, int]:
    line = next((line for line in output.splitlines() if line.startswith("CBLOAD ")), None)
    if line is None:
        raise RuntimeError("wrk printed no CBLOAD line:\n" + output)
    return json.loads(line.removeprefix("CBLOAD "))


def run_mix(name: str, urls: list[str], pids: list[int], logs: list[Path], script: Path, args: argparse.Namespace
            ) -> Result:
    """Warm up, then load every URL at once (connections split between them) while sampling the servers' RSS."""
    per_server = max(1, args.connections // len(urls))
    for runner in [wrk(script, url, args.warm_up, per_server) for url in urls]:
        runner.communicate()
    with Sampler(pids) as sampler:
        runners = [wrk(script, url, args.seconds, per_server) for url in urls]
        outputs = [runner.communicate()[0] for runner in runners]
    parts = [figures(output) for output in outputs]
    for log in logs:
        text = log.read_text(errors="replace")
        if "Traceback" in text:  # say what broke: the run fails on any traceback
            print(f"load: {log.name}: first traceback:\n" + text[text.index("Traceback"):][:3000], file=sys.stderr)
            break
    first, last = sampler.quarters()
    total = sum(part["requests"] for part in parts)
    seconds = max(part["duration_us"] for part in parts) / 1e6
    worst = lambda key: max(part[key] for part in parts) / 1000  # noqa: E731 - the slower server's percentile
    return Result(
        scenario=name, seconds=args.seconds, connections=per_server * len(urls), requests=total, rps=total / seconds,
        errors=sum(part[key] for part in parts for key in ("connect", "read", "write", "timeout")),
        s5xx=sum(part["s5xx"] for part in parts), s4xx=sum(part["s4xx"] for part in parts),
        issued=sum(part["issued"] for part in parts), redeemed=sum(part["redeemed"] for part in parts),
        p50_ms=worst("p50_us"), p99_ms=worst("p99_us"), p999_ms=worst("p999_us"), max_ms=worst("max_us"),
        rss_first_mib=[round(v, 1) for v in first], rss_last_mib=[round(v, 1) for v in last],
        growth=[round((b - a) / a, 4) for a, b in zip(first, last)],
        tracebacks=sum(log.read_text(errors="replace").count("Traceback") for log in logs),
    )


def sqlite_scenario(work: Path, script: Path, args: argparse.Namespace) -> Result:
    port, log = free_port(), work / "serve.log"
    process = start_serve(work, port, f"sqlite:///{work / 'bridge.db'}", log)
    try:
        return run_mix("one serve, SQLite", [f"http://127.0.0.1:{port}"], [process.pid], [log], script, args)
    finally:
        stop(process)


def redis_scenario(work: Path, script: Path, args: argparse.Namespace) -> Result:
    with RedisServer() as redis:
        ports = [free_port(), free_port()]
        logs = [work / f"serve-redis-{n}.log" for n in (1, 2)]
        processes = [start_serve(work, port, redis.url, log) for port, log in zip(ports, logs)]
        try:
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            return run_mix("two serve, one Redis", urls, [p.pid for p in processes], logs, script, args)
        finally:
            for process in processes:
                stop(process)


def show(result: Result) -> None:
    growth = ", ".join(f"{a} -> {b} MiB ({g:+.1%})" for a, b, g in zip(result.rss_first_mib, result.rss_last_mib,
                                                                      result.growth))
    print(f"{result.scenario}: {result.seconds} s, {result.connections} connections: {result.requests} requests "
          f"({result.rps:.0f}/s; {result.issued} codes issued, {result.redeemed} redeemed), socket errors/timeouts "
          f"{result.errors}, 5xx {result.s5xx}, 4xx {result.s4xx}, tracebacks {result.tracebacks}; latency p50 "
          f"{result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, p99.9 {result.p999_ms:.1f} ms, max "
          f"{result.max_ms:.0f} ms; RSS first -> last quarter {growth}: {'PASS' if result.passed else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="measured run (at least 60 for the record)")
    parser.add_argument("--connections", type=int, default=32, help="in total, split between the servers")
    parser.add_argument("--warm-up", type=int, default=10, help="seconds of load before measuring")
    parser.add_argument("--only", choices=("sqlite", "redis"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("load: wrk not found (apt-get install -y wrk)", file=sys.stderr)
        return 2
    if args.only != "sqlite" and not find_redis_server():
        print("load: redis-server not found (apt-get install -y redis-server), or pass --only sqlite", file=sys.stderr)
        return 2
    print_machine()
    work = Path(tempfile.mkdtemp(prefix="cookiebridge-load-"))
    script = work / "mix.lua"
    script.write_text(LUA % {"a": A, "b": B, "name": NAME})
    results = []
    try:
        for name, scenario in (("sqlite", sqlite_scenario), ("redis", redis_scenario)):
            if args.only in (None, name):
                results.append(scenario(work, script, args))
                show(results[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "passed": r.passed} for r in results], indent=2) + "\n")
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
