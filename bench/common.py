"""Helpers shared by the benchmarks: waiting for servers, statistics, machine facts, wrk output. Ports, processes and
servers come from testsupport; run the benchmarks from the repository root as `python -m bench.NAME`."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from testsupport import loopback_client_context

ROOT = Path(__file__).resolve().parents[1]


def wait_for_http(url: str, timeout: float = 20.0) -> None:
    """Until `url` answers at all (any HTTP status); TimeoutError after `timeout` seconds."""
    context = loopback_client_context()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:g} s") from None
            time.sleep(0.05)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _command_version(command: list[str], pattern: str = r"\d+(?:\.\d+)+") -> str:
    if not shutil.which(command[0]):
        return "not installed"
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    match = re.search(pattern, result.stdout + result.stderr)
    return match.group(0) if match else "unknown"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "load average (1 min, at start)": f"{os.getloadavg()[0]:.2f}",
        "memory": memory,
        "cpu": cpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "cookiebridge": _version("cookiebridge") if _version("cookiebridge") != "not installed" else "source tree",
        "starlette": _version("starlette"),
        "uvicorn": _version("uvicorn"),
        "uvloop": _version("uvloop"),
        "httptools": _version("httptools"),
        "rjsmin": _version("rjsmin"),
        "brotli": _version("brotli"),
        "redis (py)": _version("redis"),
        "redis-server": _command_version(["redis-server", "--version"]),
        "nginx": _command_version(["nginx", "-v"]),
        "wrk": _command_version(["wrk", "--version"], r"\d+\.\d+\.\d+"),
        "playwright": _version("playwright"),
        "selenium": _version("selenium"),
    }


def print_machine() -> None:
    facts = machine()
    print("machine: " + ", ".join(f"{key} {value}" for key, value in facts.items() if value))


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, p50/p99 latency (ms) and error counts from `wrk --latency` output."""
    figures: dict[str, float] = {"errors": 0.0}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            figures["rps"] = float(line.split()[1])
        elif re.match(r"^(50|99)%\s", line):
            percent, value = line.split()
            figures[f"p{percent.rstrip('%')}_ms"] = _milliseconds(value)
        elif line.startswith("Non-2xx or 3xx responses:"):
            figures["errors"] += float(line.split()[-1])
        elif line.startswith("Socket errors:"):
            figures["errors"] += sum(float(n) for n in re.findall(r"\d+", line))
    if "rps" not in figures:
        raise ValueError("wrk printed no Requests/sec line:\n" + output)
    return figures


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
