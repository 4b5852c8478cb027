"""`cookiebridge demo`: the bridge and two demo customer sites on loopback, in one process, over HTTPS."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Literal, Sequence

import click
import uvicorn
from starlette.types import ASGIApp

from .app import create_app
from .config import load_settings
from .demo_sites import create_demo_app
from .devcerts import Certs, make_certificates
from .stores import open_store


def demo_servers(*, bridge_host: str, site_hosts: Sequence[str], port: int, certs_dir: Path,
                 log_level: str = "warning") -> tuple[list[uvicorn.Server], str, list[str]]:
    certs = make_certificates(certs_dir)
    bridge_url = f"https://{bridge_host}:{port}"
    sites = [f"https://{host}:{port}" for host in site_hosts]
    settings = load_settings(environ={}, flags={"trusted_origins": sites, "store": "memory:"})
    bridge = create_app(settings, open_store("memory:"))
    demo = create_demo_app(bridge_url=bridge_url, sites=sites)
    servers = [https_server(bridge, bridge_host, port, certs, log_level=log_level)]
    servers += [https_server(demo, host, port, certs, log_level=log_level) for host in site_hosts]
    return servers, bridge_url, sites


def https_server(app: ASGIApp, host: str, port: int, certs: Certs | None, *, log_level: str = "warning",
                 lifespan: Literal["auto", "on", "off"] = "auto") -> uvicorn.Server:
    """A uvicorn server for `app`, over HTTPS with `certs` (plain HTTP without)."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan=lifespan,
                            ssl_certfile=str(certs.cert_chain) if certs else None,
                            ssl_keyfile=str(certs.key) if certs else None)
    return uvicorn.Server(config)


def run_demo(*, bridge_host: str = "127.0.0.1", site_hosts: Sequence[str] = ("127.0.0.2", "127.0.0.3"),
             port: int = 8443, certs_dir: Path | None = None) -> None:
    certs_dir = certs_dir or Path(tempfile.mkdtemp(prefix="cookiebridge-demo-"))
    servers, bridge_url, sites = demo_servers(bridge_host=bridge_host, site_hosts=site_hosts, port=port,
                                              certs_dir=certs_dir)
    names = ["domain-a", "domain-b", "domain-c", "domain-d"]
    lines = [f"cookiebridge demo: bridge {bridge_url}/iframe.html"]
    lines += [f"  {names[i] if i < len(names) else 'site'}: {site}/   (the guide's sample; {site}/extension.html: "
              "the extension way)" for i, site in enumerate(sites)]
    lines += [
        "Open domain-a, start a chat, send a message, then follow the link to domain-b: the chat continues.",
        "Also on each site: /finalizer.html (close the chat when the agent ends it) and /web-engagement.html "
        "(visitID/pageID handed to a media widget).",
        f"The certificates are self-signed (CA: {certs_dir / 'ca.pem'}): import that CA into your browser, or open "
        f"{bridge_url}/healthz and each site once and accept the warning. Ctrl+C stops the demo.",
    ]
    for line in lines:
        click.echo(line)

    async def serve_all() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(serve_all())
