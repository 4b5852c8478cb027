"""Throw-away TLS material for the demo and the end-to-end tests: one CA and one certificate for loopback sites,
by address and by the test hostnames the browsers resolve to loopback."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

# 127.0.0.1 is the bridge (iframe) origin, 127.0.0.2 .. the customer sites; a few spares for hostile origins.
# The names are the same roles on hostnames (e2e/drivers.py HOSTNAMES maps them to those addresses): sites on
# names get domain cookies, where sites on addresses get host-only ones.
TEST_HOSTNAMES: tuple[str, ...] = ("bridge.test", "www.domain-a.test", "www.domain-b.test")
SERVER_IDENTITIES: tuple[str, ...] = (
    tuple(f"127.0.0.{n}" for n in range(1, 7)) + ("localhost",) + TEST_HOSTNAMES
)


@dataclass(frozen=True)
class Certs:
    ca: Path  # CA certificate (PEM): what a client trusts
    cert_chain: Path  # server certificate followed by its chain (PEM)
    key: Path  # server private key (PEM)


def make_certificates(directory: Path) -> Certs:
    """Create a fresh CA and a server certificate for every loopback test site, written under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(*SERVER_IDENTITIES)
    certs = Certs(ca=directory / "ca.pem", cert_chain=directory / "server.pem", key=directory / "server.key")
    ca.cert_pem.write_to_path(str(certs.ca))
    server.private_key_pem.write_to_path(str(certs.key))
    with certs.cert_chain.open("wb") as chain:
        for blob in server.cert_chain_pems:
            chain.write(blob.bytes())
    certs.key.chmod(0o600)
    return certs


def ssl_context_for_client(certs: Certs) -> ssl.SSLContext:
    """A client context that trusts only the test CA (for httpx/urllib checks against the test servers)."""
    return ssl.create_default_context(cafile=str(certs.ca))


def ssl_context_for_server(certs: Certs) -> ssl.SSLContext:
    """A server context presenting the test certificate (for http.server style test servers)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certs.cert_chain), str(certs.key))
    return context

