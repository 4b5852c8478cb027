"""Calling the bridge as a site's page would: its JSON API in-process (a TestClient) or over HTTP (a real process),
identity tokens, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

from starlette.testclient import TestClient

from cookiebridge.identity import sign_identity
from testsupport.processes import BridgeProcess
from testsupport.settings import IDENTITY_KEY, NAME, VALUE, A, B

Answer = tuple[int, dict, dict]  # status, JSON body, headers


def post(client: TestClient, path: str, origin: str | None, body: object) -> Answer:
    """POST /api/v1/`path` as a page at `origin` (None: no Origin header) sends it: a JSON body as text/plain, or
    `body` as it is when it is bytes or str."""
    headers = {"Content-Type": "text/plain;charset=UTF-8"}
    if origin:
        headers["Origin"] = origin
    raw = isinstance(body, (bytes, str))
    response = client.post("/api/v1/" + path, headers=headers, content=body if raw else None,  # type: ignore[arg-type]
                           json=None if raw else body)
    return response.status_code, response.json(), dict(response.headers)


def issue(client: TestClient, origin: str = A, destination: str = B, value: str = VALUE) -> str:
    """A handoff code for NAME=`value` from `origin` to `destination`; the request must succeed."""
    status, body, _ = post(client, "handoff", origin, {"name": NAME, "value": value, "destination": destination})
    assert status == 200, body
    return body["code"]


def token(subject: str = "customer-42", **kwargs: Any) -> str:
    """An identity token for `subject`, signed with IDENTITY_KEY unless `key=` says otherwise; other keywords go to
    `sign_identity` (ttl, audience, now)."""
    return sign_identity(subject, kwargs.pop("key", IDENTITY_KEY), **kwargs)


def call(bridge: BridgeProcess, path: str, body: dict, origin: str = A, timeout: float = 10) -> Answer:
    """POST /api/v1/`path` to a running bridge process, over HTTP; headers come back with lower-case names."""
    request = urllib.request.Request(bridge.url + "/api/v1/" + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), {k.lower(): v for k, v in error.headers.items()}


def cookiebridge(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m cookiebridge ARGS` with only PATH and `env` in its environment; output captured as text."""
    return subprocess.run([sys.executable, "-m", "cookiebridge", *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **(env or {})}, timeout=60)
