"""Where does `cookiebridge serve` spend its time on a static file? cProfile around the server while wrk loads it.

    python -m bench.profile_serve [--path /iframe.html] [--seconds 6] [--top 25]

Runs the app exactly as `serve` builds it (create_app, uvicorn with httptools/uvloop, no server header, access
log off as in the throughput benchmark) in this process under cProfile, points `wrk` at one path, and prints the
functions with the most own time plus the share of time spent in Starlette's routing and in the asset endpoint.
Profiling slows everything down; read shares, not rates.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import wait_for_http
from testsupport import free_port, make_settings, sqlite_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default="/iframe.html")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("profile_serve: wrk not found (apt-get install -y wrk)", file=sys.stderr)
        return 2

    import uvicorn

    from cookiebridge.app import create_app

    work = Path(tempfile.mkdtemp(prefix="cookiebridge-profile-"))
    settings = make_settings(trusted_origins=["https://domain-a.example", "https://domain-b.example"],
                             secret_key="profile-secret-0123456789", store=sqlite_url(work))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, server_header=False, proxy_headers=False))
    url = f"http://127.0.0.1:{port}{args.path}"
    report: dict[str, str] = {}

    def load() -> None:
        try:
            wait_for_http(url)
            result = subprocess.run(["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", url],
                                    capture_output=True, text=True, check=False)
            report["wrk"] = result.stdout
        finally:
            server.should_exit = True

    threading.Thread(target=load, daemon=True).start()
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.runcall(server.run)
    elapsed = time.perf_counter() - began
    shutil.rmtree(work, ignore_errors=True)

    stats = pstats.Stats(profiler)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(args.top)
    print(text.getvalue())
    total = sum(row[2] for row in stats.stats.values())  # own time of every function

    def share(fragment: str) -> float:
        return sum(row[2] for (file, _, _), row in stats.stats.items() if fragment in file) / total

    def cumulative(file_fragment: str, name: str) -> float:
        return max((row[3] for (file, _, func), row in stats.stats.items()
                    if func == name and file_fragment in file), default=0.0)

    print(f"profile_serve: {args.path}, {elapsed:.1f} s under cProfile")
    for line in report.get("wrk", "").splitlines():
        if "Requests/sec" in line:
            print(f"  wrk under the profiler: {line.strip()}")
    print(f"  own time in starlette/*: {share('starlette/'):.0%}, uvicorn/*: {share('uvicorn/'):.0%}, "
          f"cookiebridge/*: {share('cookiebridge/'):.0%}, everything else (asyncio, logging, C calls): "
          f"{1 - share('starlette/') - share('uvicorn/') - share('cookiebridge/'):.0%}")
    asgi = cumulative("uvicorn/protocols/http/", "run_asgi")
    if asgi:
        for label, (fragment, name) in {
            "Starlette app (middleware, router, endpoint)": ("starlette/applications.py", "__call__"),
            "Starlette router": ("starlette/routing.py", "app"),
            "cookiebridge asset code": ("cookiebridge/", "handle"),
            "cookiebridge fast path": ("cookiebridge/app.py", "__call__"),
        }.items():
            spent = cumulative(fragment, name)
            if spent:
                print(f"  {label}: {spent / asgi:.0%} of the time in the ASGI call ({spent:.2f} of {asgi:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
