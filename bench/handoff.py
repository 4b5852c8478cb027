"""Handoff codes through the real `cookiebridge serve` process: issue (site A) + redeem (site B) pairs per second on
SQLite and on Redis, with p50/p99 latency of a pair and of each call.

    python -m bench.handoff [--seconds 10] [--concurrency 16] [--stores sqlite,redis]

One `serve` worker per store (rate limit raised out of the way; every request still counts against it in the
store, as in production), plain HTTP on loopback, access log off. The load generator is a small asyncio HTTP/1.1
client with keep-alive connections, each looping: POST /api/v1/handoff from A, then POST /api/v1/handoff/redeem
from B with the code, checking both answers. Redis is a throwaway `redis-server` (apt-get install redis-server).
The ratio it prints: Redis pairs/s over SQLite pairs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import ROOT, percentile, print_machine, wait_for_http
from testsupport import RedisServer, find_redis_server, free_port

SITE_A, SITE_B = "https://www.domain-a.com", "https://shop.domain-b.co.uk"
COOKIE = "customer-defined-session-cookie"
VALUE = json.dumps({"sessionId": "4f3c2a1e-0000-4000-8000-123456789abc", "deploymentKey": "x" * 40})


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads Content-Length answers: little client cost."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, origin: str, body: dict) -> tuple[int, dict]:
        data = json.dumps(body).encode()
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nOrigin: {origin}\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), json.loads(payload)

    def close(self) -> None:
        self.writer.close()


async def load(port: int, seconds: float, concurrency: int) -> dict[str, list[float]]:
    pairs: list[float] = []
    issues: list[float] = []
    redeems: list[float] = []
    failures: list[str] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        connection = Connection("127.0.0.1", port)
        await connection.open()
        try:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                status, issued = await connection.post("/api/v1/handoff", SITE_A,
                                                       {"name": COOKIE, "value": VALUE, "destination": SITE_B})
                middle = time.perf_counter()
                if status != 200:
                    failures.append(f"issue {status} {issued}")
                    continue
                status, redeemed = await connection.post("/api/v1/handoff/redeem", SITE_B, {"code": issued["code"]})
                ended = time.perf_counter()
                if status != 200 or redeemed.get("value") != VALUE:
                    failures.append(f"redeem {status} {redeemed}")
                    continue
                pairs.append(ended - began)
                issues.append(middle - began)
                redeems.append(ended - middle)
        finally:
            connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{len(failures)} failed pairs, e.g. {failures[0]}")
    return {"pairs": pairs, "issue": issues, "redeem": redeems, "elapsed": [elapsed]}


def serve(store: str, port: int, log: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "cookiebridge", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--log-level", "warning", "--store", store, "--rate-limit", "1000000",
            "--trusted-origin", SITE_A, "--trusted-origin", SITE_B]
    env = {**os.environ, "COOKIEBRIDGE_SECRET_KEY": "handoff-bench-secret-0123456789"}
    with log.open("wb") as output:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16, help="connections, each looping issue + redeem")
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args(argv)
    stores = args.stores.split(",")
    if "redis" in stores and not find_redis_server():
        print("handoff: redis-server not found (apt-get install -y redis-server); measuring SQLite only",
              file=sys.stderr)
        stores.remove("redis")
    print_machine()
    print(f"handoff: issue + redeem pairs through one `serve` worker, {args.concurrency} connections, "
          f"{args.seconds:g} s per store")
    print(f"{'store':7} {'pairs/s':>8} {'pair p50':>9} {'pair p99':>9} {'issue p50':>10} {'issue p99':>10} "
          f"{'redeem p50':>11} {'redeem p99':>11}  (ms)")
    work = Path(tempfile.mkdtemp(prefix="cookiebridge-handoff-"))
    rates: dict[str, float] = {}
    try:
        for store in stores:
            with ExitStack() as stack:
                if store == "redis":
                    url = stack.enter_context(RedisServer()).url
                else:
                    url = f"sqlite:///{work / 'handoff.db'}"
                port = free_port()
                process = serve(url, port, work / f"serve-{store}.log")
                stack.callback(lambda p=process: (p.terminate(), p.wait(timeout=15)))
                wait_for_http(f"http://127.0.0.1:{port}/healthz")
                asyncio.run(load(port, 1.0, args.concurrency))  # warm-up: connections, store, caches
                result = asyncio.run(load(port, args.seconds, args.concurrency))
            pairs = result["pairs"]
            rates[store] = len(pairs) / result["elapsed"][0]

            def ms(values: list[float], fraction: float) -> str:
                return f"{percentile(values, fraction) * 1000:.2f}"

            print(f"{store:7} {rates[store]:8.0f} {ms(pairs, .5):>9} {ms(pairs, .99):>9} {ms(result['issue'], .5):>10} "
                  f"{ms(result['issue'], .99):>10} {ms(result['redeem'], .5):>11} {ms(result['redeem'], .99):>11}")
        if len(rates) == 2:
            print(f"handoff: ratio redis/sqlite pairs per second {rates['redis'] / rates['sqlite']:.2f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
