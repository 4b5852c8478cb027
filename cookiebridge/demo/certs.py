"""TLS material for the demo and the end-to-end tests: a CA and a server certificate for the loopback sites, by
address and by the test hostnames the browsers resolve to loopback.

`cached_certificates` is the demo's: one CA kept in the user's cache directory and reused by every run, so a
browser that imported it once trusts every later run. `make_certificates` is the tests': a fresh CA each call.
Both need the `demo` extra (trustme, and with it cryptography): `pip install 'cookiebridge[demo]'`.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

from . import DemoError
from .topology import SPARE_HOSTS

INSTALL_HINT = "the demo needs its extra: pip install 'cookiebridge[demo]' (from a clone: pip install '.[demo]')"
# The same roles on hostnames (e2e/drivers.py HOSTNAMES maps them to loopback addresses): sites on names get
# domain cookies, where sites on addresses get host-only ones.
TEST_HOSTNAMES: tuple[str, ...] = ("bridge.test", "www.domain-a.test", "www.domain-b.test")
SERVER_IDENTITIES: tuple[str, ...] = SPARE_HOSTS + ("localhost",) + TEST_HOSTNAMES
CA_ORGANIZATION = "cookiebridge demo"
# A server certificate the demo issues is valid this long (Apple platforms refuse more than 825 days), and is
# issued again when less than RENEW_BEFORE is left.
SERVER_VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)


@dataclass(frozen=True)
class Certs:
    ca: Path  # CA certificate (PEM): what a client trusts
    cert_chain: Path  # server certificate followed by its chain (PEM)
    key: Path  # server private key (PEM)


def _trustme() -> Any:
    try:
        import trustme
    except ImportError:
        raise DemoError(INSTALL_HINT) from None
    return trustme


def default_cache_dir() -> Path:
    """Where the demo keeps its CA: $XDG_CACHE_HOME/cookiebridge/demo-ca, else ~/.cache/cookiebridge/demo-ca."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "cookiebridge" / "demo-ca"


def make_certificates(directory: Path) -> Certs:
    """Create a fresh CA and a server certificate for every loopback test site, written under `directory`."""
    trustme = _trustme()
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    certs = _paths(directory)
    _write(certs.ca, ca.cert_pem.bytes())
    _write_server(certs, ca.issue_cert(*SERVER_IDENTITIES))
    return certs


def cached_certificates(directory: Path | None = None, hosts: Iterable[str] = ()) -> Certs:
    """The demo's certificates under `directory` (default_cache_dir()): the CA made on the first run and kept, and
    a server certificate for SERVER_IDENTITIES and `hosts`, issued again only when a host is new or it is near its
    end. The folder and its keys are readable by their owner only."""
    trustme = _trustme()
    directory = directory or default_cache_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    certs = _paths(directory)
    ca_key = directory / "ca.key"
    if certs.ca.is_file() and ca_key.is_file():
        ca = trustme.CA.from_pem(certs.ca.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name=CA_ORGANIZATION)
        _write(ca_key, ca.private_key_pem.bytes(), private=True)
        _write(certs.ca, ca.cert_pem.bytes())
        _remove(certs.cert_chain, certs.key)  # issued by a CA that is gone
    identities = sorted(set(SERVER_IDENTITIES) | set(hosts))
    listed = directory / "server.names"
    current = listed.read_text().split() if listed.is_file() else []
    if current != identities or not _still_valid(certs.cert_chain) or not certs.key.is_file():
        now = datetime.now(timezone.utc)
        _write_server(certs, ca.issue_cert(*identities, common_name="cookiebridge demo sites",
                                           not_before=now - timedelta(hours=1), not_after=now + SERVER_VALIDITY))
        _write(listed, "\n".join(identities).encode() + b"\n")
    return certs


def ssl_context_for_client(certs: Certs) -> ssl.SSLContext:
    """A client context that trusts only the test CA (for httpx/urllib checks against the test servers)."""
    return ssl.create_default_context(cafile=str(certs.ca))


def ssl_context_for_server(certs: Certs) -> ssl.SSLContext:
    """A server context presenting the test certificate (for http.server style test servers)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certs.cert_chain), str(certs.key))
    return context


def _paths(directory: Path) -> Certs:
    return Certs(ca=directory / "ca.pem", cert_chain=directory / "server.pem", key=directory / "server.key")


def _write_server(certs: Certs, server: Any) -> None:
    _write(certs.key, server.private_key_pem.bytes(), private=True)
    _write(certs.cert_chain, b"".join(blob.bytes() for blob in server.cert_chain_pems))


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write whole or not at all (a demo stopped mid-write leaves the last good file), private keys as 0600 from
    the start."""
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.replace(partial, path)


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _still_valid(chain: Path) -> bool:
    if not chain.is_file():
        return False
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificate(chain.read_bytes())
    except ValueError:
        return False
    return leaf.not_valid_after_utc - datetime.now(timezone.utc) > RENEW_BEFORE
