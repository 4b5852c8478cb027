"""`cookiebridge demo`: bind every port, then print the banner, then serve the bridge and the demo sites until
Ctrl+C."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import Callable, Iterator, Sequence

import uvicorn

from . import DemoError, topology
from .certs import Certs, cached_certificates
from .servers import bind, https_server

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class _DemoServer(uvicorn.Server):
    """A server that leaves signals to `serve_until_stopped`, which stops all of them at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def banner(bridge_url: str, sites: Sequence[str], ca: Path) -> list[str]:
    width = max(len(topology.site_name(i)) for i in range(len(sites)))
    lines = ["cookiebridge demo is running (Ctrl+C stops it):",
             f"  {'bridge:'.ljust(width + 1)} {bridge_url}/iframe.html"]
    lines += [f"  {(topology.site_name(i) + ':').ljust(width + 1)} {site}/" for i, site in enumerate(sites)]
    first, second = (list(sites) * 2)[:2]
    lines += [
        f"1. Trust the demo's certificate: import its CA, {ca}, into your browser once (every run reuses it), or "
        f"open {bridge_url}/healthz and each site once and accept the warning.",
        f"2. Open {first}/, start a chat, send a message, and follow the link to {topology.site_name(1)}: the chat "
        "continues, and the page says how.",
        f"3. Type {second}/ instead: where the browser blocks third-party cookies the chat does not follow, and the "
        "page says why; the signed-in page, /identity.html, keeps it.",
        "Also on each site: /extension.html (the extension way), /finalizer.html (close the chat when the agent "
        "ends it), /web-engagement.html (a Web Engagement invitation). Handoffs and identity loads are logged below.",
    ]
    return lines


def run_demo(*, bridge_host: str = topology.BRIDGE_HOST, site_hosts: Sequence[str] = topology.SITE_HOSTS,
             port: int = topology.PORT, ca_dir: Path | None = None,
             echo: Callable[[str], None] = print) -> None:
    """Serve the bridge on bridge_host:port and the demo sites on each of site_hosts:port until SIGINT/SIGTERM.
    DemoError (one line) before anything is printed when a port is busy or the demo extra is missing. `ca_dir`:
    where the demo CA is kept (default: the user's cache directory)."""
    hosts = [bridge_host, *site_hosts]
    if len(set(hosts)) != len(hosts):
        raise DemoError(f"the bridge and the sites need one address each, got {', '.join(hosts)}: give each "
                        "--site-host once, and none equal to --bridge-host")
    from .certs import _trustme

    _trustme()  # the extra's absence is the first thing to say
    sockets: list[socket.socket] = []
    try:
        for host in hosts:
            sockets.append(bind(host, port, host_flag="--bridge-host" if host == bridge_host else "--site-host"))
        certs = cached_certificates(ca_dir, hosts=hosts)
        servers, bridge_url, sites = demo_servers(bridge_host=bridge_host, site_hosts=site_hosts, port=port,
                                                  certs=certs)
        _log_bridge_events()
        # A Ctrl+C or SIGTERM between the banner and the servers' start waits for serve_until_stopped to take it.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        for line in banner(bridge_url, sites, certs.ca):
            echo(line)
        sys.stdout.flush()
        asyncio.run(serve_until_stopped(list(zip(servers, sockets))))
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        for sock in sockets:
            sock.close()


def demo_servers(*, bridge_host: str, site_hosts: Sequence[str], port: int, certs: Certs,
                 log_level: str = "warning") -> tuple[list[uvicorn.Server], str, list[str]]:
    """The bridge (memory store, the sites as trusted origins, a fresh identity secret shared with the sites, resume
    on) and the demo sites, as servers not yet started: the bridge first, then one per site host."""
    from ..app import create_app
    from ..config import load_settings
    from ..stores import open_store
    from .sites import create_demo_app

    bridge_url = topology.origin(bridge_host, port)
    sites = topology.site_origins(site_hosts, port)
    identity_secret = secrets.token_urlsafe(32)  # what each site's backend would share with the bridge
    settings = load_settings(environ={}, flags={"trusted_origins": sites, "store": "memory:",
                                                "identity_secret": identity_secret, "resume": True})
    bridge = create_app(settings, open_store("memory:"))
    demo = create_demo_app(bridge_url=bridge_url, sites=sites, identity_secret=identity_secret, ca_file=certs.ca,
                           resume=True)
    servers = [_server(bridge, bridge_host, port, certs, log_level)]
    servers += [_server(demo, host, port, certs, log_level) for host in site_hosts]
    return servers, bridge_url, sites


def _server(app: object, host: str, port: int, certs: Certs, log_level: str) -> uvicorn.Server:
    server = https_server(app, host, port, certs, log_level=log_level)  # type: ignore[arg-type]
    return _DemoServer(server.config)


async def serve_until_stopped(pairs: Sequence[tuple[uvicorn.Server, socket.socket]]) -> None:
    """Serve each server on its bound socket; the first SIGINT or SIGTERM stops them all, a second one at once."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server, _ in pairs:
            server.force_exit = server.should_exit
            server.should_exit = True

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # one that came early is handled now
    try:
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in pairs))
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def _log_bridge_events() -> None:
    """The bridge's info lines (each handoff issued and redeemed, each identity load) on the terminal."""
    logger = logging.getLogger("cookiebridge")
    if not any(getattr(handler, "cookiebridge_demo", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("cookiebridge: %(message)s"))
        handler.cookiebridge_demo = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
