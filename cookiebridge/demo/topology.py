"""Where `cookiebridge demo` runs: the bridge and the demo sites on loopback addresses, one port for all.

The one place the demo's hosts, port and site names are declared; the CLI's defaults, the banner, the pages'
names, the certificate and the bridge's embedded local-trial default (config.DEMO_ORIGINS) follow it.
"""

from __future__ import annotations

from typing import Sequence

BRIDGE_HOST = "127.0.0.1"
SITE_HOSTS: tuple[str, ...] = ("127.0.0.2", "127.0.0.3")
PORT = 8443
SITE_NAMES: tuple[str, ...] = ("domain-a", "domain-b", "domain-c", "domain-d", "domain-e")
# Addresses the demo certificate names besides the demo's own: spares for the e2e tests' hostile origins.
SPARE_HOSTS: tuple[str, ...] = tuple(f"127.0.0.{n}" for n in range(1, 7))


def origin(host: str, port: int = PORT) -> str:
    return f"https://{host}:{port}" if port != 443 else f"https://{host}"


def site_origins(hosts: Sequence[str] = SITE_HOSTS, port: int = PORT) -> list[str]:
    return [origin(host, port) for host in hosts]


def site_name(position: int) -> str:
    """domain-a for the first site, domain-b for the second, ...; "site N" past the named ones."""
    return SITE_NAMES[position] if position < len(SITE_NAMES) else f"site {position + 1}"


# The sites `cookiebridge demo` serves by default.
SITE_ORIGINS: tuple[str, ...] = tuple(site_origins())
