"""What the e2e tests share besides their fixtures (which are in conftest.py): keys, names, the topologies'
shapes and the bridge's command line. Test modules import from here, never from conftest."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from e2e import drivers
    from testsupport.servers import CertificatePair

# Fresh per run, like real keys: a memorable test key would trip the bridge's weak-key warning in every log.
SECRET = secrets.token_urlsafe(32)
IDENTITY_SECRET = secrets.token_urlsafe(32)
COOKIE = "customer-defined-session-cookie"
RESULTS = Path(__file__).parent / "results"
# The widget double publishes WebChat.opened once it has either restored a session or offered a new chat.
WIDGET_SETTLED = "window.__widgetDouble && window.__widgetDouble.events.indexOf('WebChat.opened') >= 0"
NAMED_BARE_PAGE = "/bare.html"  # on each named site: the bridge's provider script and nothing else (no widget)


def wait_saved_in_iframe(browser: drivers.Session, provider: str) -> None:
    """Until the bridge's iframe cookie holds this site's session cookie (saveCookie has run). `provider`: the
    page's expression for its CookieProvider."""
    browser.wait_for(f"""(async () => {{
        const p = {provider}, raw = document.cookie.split('; ').find(c => c.startsWith(p.name + '='));
        return raw && (await p.request({{ op: 'get', name: p.name }})).value === raw.slice(p.name.length + 1);
    }})()""")


def bridge_args(certs: CertificatePair, origins: list[str], store: str, *extra: str) -> list[str]:
    """`cookiebridge serve` arguments: TLS with the test certificate, `store`, each origin trusted, then `extra`."""
    args = ["--ssl-certfile", str(certs.cert_chain), "--ssl-keyfile", str(certs.key), "--store", store]
    for origin in origins:
        args += ["--trusted-origin", origin]
    return [*args, *extra]


@dataclass(frozen=True)
class Topology:
    """The `topology` fixture's servers (conftest.py's docstring has the map)."""
    bridge: str
    site_a: str
    site_b: str
    hostile: dict[str, str]
    stripped_bridge: str
    down_site: str
    redis_a: str
    redis_b: str
    logs: Path


@dataclass(frozen=True)
class NamedTopology:
    """bridge https://bridge.test:P1, site_a https://www.domain-a.test:P2, site_b https://www.domain-b.test:P2 (the
    demo app, one chat server for both; NAMED_BARE_PAGE on each). The names resolve to 127.0.0.1/.2/.3 through
    /etc/hosts (drivers.HOSTNAMES)."""
    bridge: str
    site_a: str
    site_b: str
    logs: Path
