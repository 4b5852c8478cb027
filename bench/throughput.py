"""Static files from `cookiebridge serve` versus nginx serving the `cookiebridge build` output, same machine, same
run, same load tool, one worker each.

    python -m bench.throughput [--seconds 5] [--connections 32] [--rounds 3]

Needs `wrk` and `nginx` (Debian: apt-get install -y wrk nginx). Both servers get the same files (`build --with-api`
makes the iframe page `serve` renders), plain HTTP on loopback, access logs off (`serve --log-level warning`, nginx
`access_log off`), one process each (`serve --workers 1`, nginx `worker_processes 1`). wrk runs one thread on the
other core. Each path is loaded as a browser asks for it (Accept-Encoding: gzip, deflate, br; serve answers br,
nginx without ngx_brotli gzip) and without compression. A third server, bench/bare_asgi.py, answers every request
with one constant response on uvicorn as `serve` runs it: the ceiling for Python code on this server.
The figure this is about: serve's requests/s as a ratio of nginx's (target: at least 0.35).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, median, parse_wrk, print_machine, stop_process, wait_for_http
from cookiebridge.build import build
from testsupport import free_port, make_settings

TARGET_RATIO = 0.35
PATHS = ("/iframe.html", "/cookie-provider.min.js")
ENCODINGS = {"browser (gzip, br)": "gzip, deflate, br", "uncompressed": "identity"}
ORIGINS = ["https://www.domain-a.com", "https://shop.domain-b.co.uk"]


def nginx_config(work: Path, out: Path, port: int) -> Path:
    conf = work / "nginx.conf"
    temp = work / "nginx-temp"
    temp.mkdir()
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # the files are in a root-only temp dir
        + f"worker_processes 1;\ndaemon off;\npid {work}/nginx.pid;\nerror_log {work}/nginx-error.log warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n  access_log off;\n  server_tokens off;\n  keepalive_requests 1000000;\n"
        f"  client_body_temp_path {temp}; proxy_temp_path {temp}; fastcgi_temp_path {temp};\n"
        f"  uwsgi_temp_path {temp}; scgi_temp_path {temp};\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    include {out}/nginx.conf;\n  }}\n}}\n")
    return conf


def run_wrk(url: str, accept: str, seconds: int, connections: int) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"Accept-Encoding: {accept}", url]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse_wrk(result.stdout)


def start_bare(port: int, file: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_asgi.py"), str(port), str(file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="length of each measured wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all servers; the median is printed")
    args = parser.parse_args(argv)
    missing = [tool for tool in ("wrk", "nginx") if not shutil.which(tool)]
    if missing:
        print(f"throughput: {' and '.join(missing)} not found (apt-get install -y wrk nginx)", file=sys.stderr)
        return 2
    print_machine()
    work = Path(tempfile.mkdtemp(prefix="cookiebridge-throughput-"))
    os.chmod(work, 0o755)
    serve_port, nginx_port = free_port(), free_port()
    flags: dict = {"trusted_origins": ORIGINS, "secret_key": "throughput-secret-0123456789"}
    out = work / "static"
    build(make_settings(**flags), out, f"http://127.0.0.1:{nginx_port}/", api=True)
    nginx = subprocess.Popen(["nginx", "-c", str(nginx_config(work, out, nginx_port))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    serve_args = [sys.executable, "-m", "cookiebridge", "serve", "--host", "127.0.0.1", "--port", str(serve_port),
                  "--workers", "1", "--log-level", "warning", "--store", f"sqlite:///{work / 'bridge.db'}"]
    for origin in ORIGINS:
        serve_args += ["--trusted-origin", origin]
    serve = subprocess.Popen(serve_args, cwd=ROOT, env={**os.environ, "COOKIEBRIDGE_SECRET_KEY": flags["secret_key"]},
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    processes = [serve, nginx]
    # The ceiling of a Python app on uvicorn, per path: the gzip copy (what nginx sends a browser) as a constant.
    bare = {}
    for path in PATHS:
        port = free_port()
        processes.append(start_bare(port, out / (path.lstrip("/") + ".gz")))
        bare[path] = f"http://127.0.0.1:{port}"
    servers = {"serve": f"http://127.0.0.1:{serve_port}", "nginx": f"http://127.0.0.1:{nginx_port}"}
    try:
        for base in [*servers.values(), *bare.values()]:
            wait_for_http(base + "/iframe.html")
        print(f"throughput: wrk -t1 -c{args.connections} -d{args.seconds}s, median of {args.rounds} round(s); serve, "
              "nginx and a bare ASGI app on uvicorn (the Python ceiling), one worker each, access logs off")
        print(f"{'path':24} {'request':19} {'server':6} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7}")
        ratios = []
        for path in PATHS:
            for label, accept in ENCODINGS.items():
                targets = {**servers, "bare": bare[path] + path}
                targets = {name: (url if name == "bare" else url + path) for name, url in targets.items()}
                for url in targets.values():
                    run_wrk(url, accept, 1, args.connections)  # warm-up
                rounds: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
                for _ in range(args.rounds):  # interleaved, so drifting load on the machine hits every server
                    for name, url in targets.items():
                        rounds[name].append(run_wrk(url, accept, args.seconds, args.connections))
                rps: dict[str, float] = {}
                for name, results in rounds.items():
                    figures = {key: median([r[key] for r in results]) for key in ("rps", "p50_ms", "p99_ms", "errors")}
                    if figures["errors"]:
                        print(f"throughput: {name} {path}: {figures['errors']:.0f} errors", file=sys.stderr)
                    rps[name] = figures["rps"]
                    print(f"{path:24} {label:19} {name:6} {figures['rps']:9.0f} {figures['p50_ms']:7.2f} "
                          f"{figures['p99_ms']:7.2f}")
                ratio = rps["serve"] / rps["nginx"]
                ratios.append(ratio)
                print(f"{path:24} {label:19} ratio serve/nginx {ratio:.2f} (target >= {TARGET_RATIO}); "
                      f"serve/bare {rps['serve'] / rps['bare']:.2f}, bare/nginx {rps['bare'] / rps['nginx']:.2f}")
        worst = min(ratios)
        print(f"throughput: lowest ratio serve/nginx {worst:.2f}: target {TARGET_RATIO} "
              f"{'met' if worst >= TARGET_RATIO else 'NOT met'}")
        return 0
    finally:
        for process in processes:
            stop_process(process, timeout=10)
        time.sleep(0.1)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
