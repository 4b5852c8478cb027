"""Overload: a worker with more requests in progress than max_concurrent_requests answers new ones 503 at once
(with Retry-After), keeps answering /healthz, says so in one log line, and serves normally once the load is gone.
The store is hung here (SIGSTOP) so that requests pile up deterministically; bench/overload.py drives a real
load past saturation and has the figures."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from testsupport.processes import BridgeProcess
from testsupport.redis_server import RedisServer

A, B = "https://domain-a.example", "https://domain-b.example"
NAME = "customer-defined-session-cookie"
ENV = {"COOKIEBRIDGE_SECRET_KEY": "overload-test-key-Hj8kL2mN5pQ9rS3tV6wX"}



def issue(url: str) -> tuple[int, str, float, str | None]:
    """(status, body, seconds, Retry-After) of one handoff request on a fresh connection."""
    request = urllib.request.Request(url + "/api/v1/handoff", method="POST", headers={"Origin": A},
                                     data=json.dumps({"name": NAME, "value": "v", "destination": B}).encode())
    began = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode(), time.monotonic() - began, None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), time.monotonic() - began, error.headers.get("retry-after")


def test_past_max_concurrent_requests_new_requests_get_an_immediate_503(redis: RedisServer, tmp_path: Path) -> None:
    args = ["--trusted-origin", A, "--trusted-origin", B, "--store", redis.url, "--rate-limit", "100000",
            "--max-concurrent-requests", "6"]
    with BridgeProcess(args, tmp_path / "bridge.log", env=ENV) as bridge:
        assert issue(bridge.url)[0] == 200
        redis.pause()
        try:
            gate = threading.Barrier(30)
            answers: list[tuple[int, str, float, str | None]] = []

            def customer() -> None:
                gate.wait()
                answers.append(issue(bridge.url))

            threads = [threading.Thread(target=customer) for _ in range(30)]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            began = time.monotonic()
            with urllib.request.urlopen(bridge.url + "/healthz", timeout=5) as health:
                assert health.status == 200  # liveness is never shed
            health_seconds = time.monotonic() - began
            for thread in threads:
                thread.join(timeout=20)
        finally:
            redis.resume()
        busy = [answer for answer in answers if "max_concurrent_requests" in answer[1]]
        waited = [answer for answer in answers if "max_concurrent_requests" not in answer[1]]
        assert len(answers) == 30 and all(status == 503 for status, *_ in answers)
        assert all(json.loads(body)["error"] == "unavailable" for _, body, _, _ in answers)
        assert len(busy) >= 18 and all(seconds < 1.5 and retry == "1" for _, _, seconds, retry in busy)
        # the ones let in waited for the hung store (1 s timeouts) and got the API's own JSON 503
        assert all(json.loads(body)["error"] == "unavailable" for _, body, _, _ in waited)
        assert health_seconds < 1.0
        time.sleep(2.1)  # the store's incident ends (health.RECOVERY_QUIET)
        assert [issue(bridge.url)[0] for _ in range(5)] == [200] * 5
    log = bridge.log()
    assert log.count("max_concurrent_requests 6): answered new ones 503 at once") == 1, log
    assert "Traceback" not in log
