"""Overload: one `serve` worker driven past saturation with handoff traffic, then back to a light load. Does it shed
(answer 503/429 at once) and recover, or does every client time out? Loopback only, bounded (about 90 s).

    python -m bench.overload [--light 16] [--heavy 2500] [--seconds 8] [--timeout 1] [--json FILE]

Two configurations of the same tree, `max_concurrent_requests` 128 (the default) and 100000 (no shedding, as
before issue 16), both with `max_connections` 5000 so that the connection cap is not what sheds. Two kinds of
client: "back off" waits the 503's Retry-After (1 s) before its next request, as a page whose provider fell back
does; "retry at once" sends the next request immediately, as a flood would. For each pair, three wrk phases run
back to back: light (`--light` connections, 4 s), heavy (`--heavy` connections, `--seconds`), light again (4 s).
Each connection issues a handoff code (Origin domain-a) and redeems it (Origin domain-b), over and over, on
SQLite, rate limit and budgets at their maximum. wrk's `--timeout` is the provider's (1 s): an answer later than
that is one the customer's page has already given up on. Needs wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, print_machine, wait_for_http
from bench.common import stop_process as stop
from testsupport import free_port

A, B = "https://domain-a.example", "https://domain-b.example"
NAME = "customer-defined-session-cookie"
SECRET = "overload-bench-key-Hj8kL2mN5pQ9rS3tV6wX"

LUA = r"""
local issue_body = '{"name":"%(name)s","value":"j%%3A%%7B%%22sessionId%%22%%3A%%22load%%22%%7D","destination":"%(b)s"}'
local issue_headers = {["Origin"] = "%(a)s", ["Content-Type"] = "text/plain;charset=UTF-8"}
local redeem_headers = {["Origin"] = "%(b)s", ["Content-Type"] = "text/plain;charset=UTF-8"}
local threads = {}
local back_off = %(back_off)s
ok, s429, s503, other, code, wait = 0, 0, 0, 0, nil, 0

function setup(thread) table.insert(threads, thread) end

function delay()
  local ms = wait
  wait = 0
  return ms
end

function request()
  if code then
    local body = '{"code":"' .. code .. '","referrer":"%(a)s/"}'
    code = nil
    return wrk.format("POST", "/api/v1/handoff/redeem", redeem_headers, body)
  end
  return wrk.format("POST", "/api/v1/handoff", issue_headers, issue_body)
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    code = body and string.match(body, '"code":"([^"]+)"')
  elseif status == 429 then s429 = s429 + 1
  elseif status == 503 then
    s503 = s503 + 1
    if back_off then wait = 1000 end  -- Retry-After: 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local t = {ok = 0, s429 = 0, s503 = 0, other = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(t) do t[key] = t[key] + thread:get(key) end
  end
  local e = summary.errors
  io.write(string.format('CBOVER {"requests":%%d,"duration_us":%%d,"ok":%%d,"s429":%%d,"s503":%%d,"other":%%d,' ..
    '"timeout":%%d,"connect":%%d,"read":%%d,"write":%%d,"p50_ms":%%.1f,"p99_ms":%%.1f,"max_ms":%%.1f}\n',
    summary.requests, summary.duration, t.ok, t.s429, t.s503, t.other, e.timeout, e.connect, e.read, e.write,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192, hard))


def phase(script: Path, url: str, connections: int, seconds: int, timeout: float) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", f"{timeout:g}s", "-s", str(script),
               url]
    output = subprocess.run(command, capture_output=True, text=True, preexec_fn=raise_fd_limit).stdout
    line = next((line for line in output.splitlines() if line.startswith("CBOVER ")), None)
    if line is None:
        raise RuntimeError("wrk printed no CBOVER line:\n" + output)
    figures = json.loads(line.removeprefix("CBOVER "))
    seconds_run = figures["duration_us"] / 1e6
    answered = figures["ok"] + figures["s429"] + figures["s503"] + figures["other"]
    figures.update(connections=connections, ok_per_s=round(figures["ok"] / seconds_run),
                   answered=answered, timed_out_share=round(figures["timeout"] / max(1, answered + figures["timeout"]), 3))
    return figures


def run(work: Path, script: Path, client: str, max_concurrent: int, args: argparse.Namespace) -> list[dict]:
    port, log = free_port(), work / f"serve-{max_concurrent}.log"
    command = [sys.executable, "-m", "cookiebridge", "serve", "--port", str(port), "--log-level", "warning",
               "--store", f"sqlite:///{work / f'bridge-{client}-{max_concurrent}.db'}", "--rate-limit", "1000000",
               "--handoff-budget", str(1 << 40), "--handoff-budget-per-origin", str(1 << 40),
               "--max-connections", "5000", "--max-concurrent-requests", str(max_concurrent),
               "--trusted-origin", A, "--trusted-origin", B]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "COOKIEBRIDGE_SECRET_KEY": SECRET},
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz")
        url = f"http://127.0.0.1:{port}"
        results = []
        for name, connections, seconds in (("light", args.light, 4), ("heavy", args.heavy, args.seconds),
                                           ("light again", args.light, 4)):
            figures = phase(script, url, connections, seconds, args.timeout)
            figures.update(client=client, max_concurrent_requests=max_concurrent, phase=name,
                           load=round(os.getloadavg()[0], 2))
            results.append(figures)
            print(f"{client}, max_concurrent_requests {max_concurrent}, {name} ({connections} connections, {seconds} s): "
                  f"{figures['ok_per_s']} ok/s, 200 {figures['ok']}, 503 {figures['s503']}, 429 {figures['s429']}, "
                  f"other {figures['other']}, timed out {figures['timeout']} ({figures['timed_out_share']:.1%}), "
                  f"socket errors {figures['connect'] + figures['read'] + figures['write']}; latency p50 "
                  f"{figures['p50_ms']} ms, p99 {figures['p99_ms']} ms; load average {figures['load']}", flush=True)
        text = log.read_text(errors="replace")
        print(f"  log: {text.count('shedding load')} shedding lines, {text.count('Traceback')} tracebacks")
        return results
    finally:
        stop(process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--light", type=int, default=16, help="connections before and after")
    parser.add_argument("--heavy", type=int, default=2500, help="connections past saturation")
    parser.add_argument("--seconds", type=int, default=8, help="length of the heavy phase")
    parser.add_argument("--timeout", type=float, default=1.0, help="client timeout (the provider's: 1 s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("overload: wrk not found (apt-get install -y wrk)", file=sys.stderr)
        return 2
    print_machine()
    work = Path(tempfile.mkdtemp(prefix="cookiebridge-overload-"))
    scripts = {}
    for client, back_off in (("back off", "true"), ("retry at once", "false")):
        scripts[client] = work / f"handoff-{back_off}.lua"
        scripts[client].write_text(LUA % {"a": A, "b": B, "name": NAME, "back_off": back_off})
    try:
        results = [row for client, script in scripts.items() for limit in (128, 100_000)
                   for row in run(work, script, client, limit, args)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
