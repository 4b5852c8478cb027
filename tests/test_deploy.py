"""docs/deploy.md, run: Debian's nginx terminating TLS in front of two `cookiebridge serve` instances that share
Redis, the static files served by nginx from `cookiebridge build`, the API proxied. The configuration, the unit's
ExecStart line, the environment file and the build command are read from the page itself; only host names, ports,
paths and the rate limit are changed, so the page cannot drift from what is tested."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import trustme

from testsupport import INSTALL_HINT, BridgeProcess, RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "deploy.md"
A, B = "https://www.domain-a.com", "https://www.domain-b.com"  # the page's trusted_origins
NAME = "customer-defined-session-cookie"
RATE_LIMIT = 20


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), re.S | re.M)


def replace(text: str, changes: dict[str, str]) -> str:
    for old, new in changes.items():
        assert old in text, f"docs/deploy.md no longer says {old!r}: update tests/test_deploy.py with it"
        text = text.replace(old, new)
    return text


def need(program: str, hint: str) -> str:
    found = shutil.which(program) or next((p for p in (f"/usr/sbin/{program}", f"/usr/bin/{program}")
                                           if os.access(p, os.X_OK)), None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(hint)
        pytest.skip(hint)
    return found


class Deployment:
    def __init__(self, stack: ExitStack, tmp: Path) -> None:
        nginx = need("nginx", "nginx not found: install the Debian package with `apt-get install nginx`")
        redis = stack.enter_context(RedisServer(need("redis-server", INSTALL_HINT)))
        self.port = free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        self.ports = [free_port(), free_port()]
        # TLS: a test CA and a certificate for 127.0.0.1, as the page's fullchain.pem and privkey.pem.
        authority = trustme.CA()
        certificate = authority.issue_cert("127.0.0.1")
        certificate.private_key_pem.write_to_path(str(tmp / "privkey.pem"))
        certificate.cert_chain_pems[0].write_to_path(str(tmp / "fullchain.pem"))
        authority.cert_pem.write_to_path(str(tmp / "ca.pem"))
        self.ca = str(tmp / "ca.pem")
        # The configuration file and the environment file, from the page.
        (config,) = blocks("toml")
        config_path = tmp / "cookiebridge.toml"
        config_path.write_text(replace(config, {'store = "redis://10.0.0.5:6379/0"': f'store = "{redis.url}"',
                                                "rate_limit = 600": f"rate_limit = {RATE_LIMIT}"}))
        environment = next(block for block in blocks("sh") if block.startswith("COOKIEBRIDGE_SECRET_KEY="))
        secrets_env = {}
        for line in environment.splitlines():
            key, _, _ = line.partition("=")
            secrets_env[key] = f"deploy-test-{key.lower()}-" + os.urandom(16).hex()
        # The static files: the page's build command, into a directory nginx's workers can read.
        self.www = Path(tempfile.mkdtemp(prefix="cookiebridge-www-"))
        stack.callback(shutil.rmtree, self.www, ignore_errors=True)
        build = next(block for block in blocks("sh") if " build " in block).strip()
        build = replace(build, {"/opt/cookiebridge/bin/cookiebridge": f"{sys.executable} -m cookiebridge",
                                "/etc/cookiebridge/cookiebridge.toml": str(config_path),
                                "/srv/cookiebridge/www": str(self.www),
                                "https://bridge.example.net/": self.base + "/"})
        built = subprocess.run(shlex.split(build), capture_output=True, text=True, cwd=ROOT, timeout=60,
                               env={**os.environ, **secrets_env})
        assert built.returncode == 0, built.stderr
        os.chmod(self.www, 0o755)
        for path in self.www.iterdir():
            os.chmod(path, 0o644)
        # The two instances: the unit's ExecStart, with %i, and the environment file.
        (unit,) = blocks("ini")
        assert "Restart=always" in unit and "EnvironmentFile=/etc/cookiebridge/secrets.env" in unit
        exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)
        command = replace(exec_start, {"/etc/cookiebridge/cookiebridge.toml": str(config_path)}).split()
        assert command[:2] == ["/opt/cookiebridge/bin/cookiebridge", "serve"]
        self.instances = []
        for n, port in enumerate(self.ports):
            args = [arg.replace("%i", str(port)) for arg in command[2:]]
            self.instances.append(stack.enter_context(BridgeProcess(args, tmp / f"instance-{n}.log", port=port,
                                                                    env=secrets_env)))
        # nginx, with the page's conf.d file inside an http block of our own (temp paths, no system files).
        (site,) = blocks("nginx")
        site = replace(site, {"server 127.0.0.1:8001": f"server 127.0.0.1:{self.ports[0]}",
                              "server 127.0.0.1:8002": f"server 127.0.0.1:{self.ports[1]}",
                              "listen 443 ssl http2;": f"listen 127.0.0.1:{self.port} ssl http2;",
                              "/etc/ssl/bridge.example.net": str(tmp),
                              "/srv/cookiebridge/www": str(self.www)})
        (tmp / "site.conf").write_text(site)
        conf = tmp / "nginx.conf"
        conf.write_text(("user root;\n" if os.geteuid() == 0 else "")
                        + f"worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;\n"
                        "events { worker_connections 256; }\n"
                        f"http {{ access_log {tmp}/access.log; client_body_temp_path {tmp}; proxy_temp_path {tmp};"
                        f" fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n"
                        f"  include {tmp}/site.conf; }}\n")
        self.nginx = subprocess.Popen([nginx, "-c", str(conf)], stderr=subprocess.PIPE)
        stack.callback(self._stop_nginx)
        deadline = time.monotonic() + 15
        while True:
            try:
                with self.client() as client:
                    client.get("/iframe.html")
                break
            except httpx.TransportError:
                assert self.nginx.poll() is None, self.nginx.stderr.read().decode()
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.1)

    def _stop_nginx(self) -> None:
        self.nginx.terminate()
        try:
            self.nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.nginx.kill()
            self.nginx.wait()

    def client(self, source: str = "127.0.0.1") -> httpx.Client:
        """A browser at loopback address `source`: what nginx sees as $remote_addr."""
        context = ssl.create_default_context(cafile=self.ca)
        return httpx.Client(base_url=self.base, transport=httpx.HTTPTransport(local_address=source, verify=context),
                            timeout=10)

    def served_by(self, request_id: str) -> int:
        """Which instance (0 or 1) logged the request nginx numbered `request_id` (a line written just after the
        answer went out, so perhaps a moment after the client has it)."""
        deadline = time.monotonic() + 5
        wanted = f'"request_id":"{request_id}"'
        while True:
            found = [n for n, instance in enumerate(self.instances)
                     if any(wanted in line and '"event":"request"' in line for line in instance.log().splitlines())]
            if found or time.monotonic() > deadline:
                assert len(found) == 1, (request_id, found)
                return found[0]
            time.sleep(0.05)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with ExitStack() as stack:
        yield Deployment(stack, tmp_path_factory.mktemp("deploy"))


def issue(client: httpx.Client, value: str, **headers: str) -> httpx.Response:
    body = json.dumps({"name": NAME, "value": value, "destination": B})
    return client.post("/api/v1/handoff", content=body, headers={"Origin": A, **headers})


def redeem(client: httpx.Client, code: str) -> httpx.Response:
    body = json.dumps({"code": code, "referrer": A + "/"})
    return client.post("/api/v1/handoff/redeem", content=body, headers={"Origin": B})


def test_nginx_serves_the_built_files_over_tls_and_keeps_the_rest_to_the_host(deployment: Deployment) -> None:
    with deployment.client() as client:
        page = client.get("/iframe.html", headers={"Accept-Encoding": "identity"})
        assert page.status_code == 200 and page.content == (deployment.www / "iframe.html").read_bytes()
        assert page.headers["server"].startswith("nginx")  # from the files, not proxied to serve
        assert "frame-ancestors " + A + " " + B in page.headers["content-security-policy"]
        gzipped = client.get("/cookie-provider.min.js", headers={"Accept-Encoding": "gzip"})
        assert gzipped.headers["content-encoding"] == "gzip"
        assert [client.get(path).status_code for path in ("/healthz", "/readyz", "/metrics", "/")] == [404] * 4
        assert client.get("/api/v1/handoff").status_code == 405  # proxied: the bridge's JSON 405


def test_a_handoff_issued_through_one_instance_is_redeemed_through_the_other(deployment: Deployment) -> None:
    crossed = 0
    with deployment.client("127.0.0.7") as client:
        for n in range(6):
            issued = issue(client, f"session-{n}")
            assert issued.status_code == 200, issued.text
            redeemed = redeem(client, issued.json()["code"])
            assert redeemed.json() == {"name": NAME, "value": f"session-{n}", "from": A}
            # nginx's $request_id, passed as X-Request-ID, comes back in the answer and in the instance's JSON log.
            ids = issued.headers["x-request-id"], redeemed.headers["x-request-id"]
            assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
            crossed += deployment.served_by(ids[0]) != deployment.served_by(ids[1])
    assert crossed >= 1  # round robin: usually every one


def test_the_rate_limit_counts_the_browser_address_not_nginx(deployment: Deployment) -> None:
    """One browser at 127.0.0.5, sending a forged X-Forwarded-For of its own, spread over both instances by nginx:
    refused after rate_limit requests in all (the counter is in Redis, keyed by the address nginx saw). Another
    browser at 127.0.0.6 is not affected, though both reach the instances from nginx's 127.0.0.1."""
    with deployment.client("127.0.0.5") as flooder:
        statuses = [issue(flooder, "v", **{"X-Forwarded-For": f"198.51.100.{n}"}).status_code
                    for n in range(RATE_LIMIT + 3)]
    assert statuses == [200] * RATE_LIMIT + [429] * 3
    with deployment.client("127.0.0.6") as neighbour:
        answer = issue(neighbour, "v")
        assert answer.status_code == 200 and deployment.served_by(answer.headers["x-request-id"]) in (0, 1)
    requests = [json.loads(line) for instance in deployment.instances for line in instance.log().splitlines()
                if '"event":"request"' in line and '"POST"' in line]  # every POST came from 127.0.0.5-8
    clients = {entry["client"] for entry in requests}
    assert {"127.0.0.5", "127.0.0.6"} <= clients and "127.0.0.1" not in clients
    assert not any(entry["client"].startswith("198.51.100.") for entry in requests)


def test_killing_one_instance_loses_no_handoff(deployment: Deployment) -> None:
    with deployment.client("127.0.0.8") as client:
        codes = {}
        for n in range(10):
            response = issue(client, f"before-kill-{n}")
            assert response.status_code == 200
            codes[response.json()["code"]] = f"before-kill-{n}"
        victim = deployment.instances[0]
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait(timeout=10)
        redeemed = {code: redeem(client, code).json().get("value") for code in codes}
        assert redeemed == codes
        after = issue(client, "after-kill")
        assert after.status_code == 200
        assert redeem(client, after.json()["code"]).json()["value"] == "after-kill"
