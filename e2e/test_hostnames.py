"""Smoke tests of the named topology: every (engine, policy) reaches bridge.test, www.domain-a.test and
www.domain-b.test by name over HTTPS, as the hostname cookie scenarios need.

They drive the cookie provider directly on a bare page, so they hold whatever the demo's widget double does.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cookiebridge.demo.certs import Certs, ssl_context_for_client
from e2e import drivers
from e2e.topology import COOKIE, NAMED_BARE_PAGE, NamedTopology

SITE_COOKIE = "named-smoke"  # a site's own cookie, on its registrable domain
REGISTRABLE_A = "domain-a.test"

# Loads the bare page's provider against the named bridge and reports what the iframe answered.
PROVIDER_CHECK = """
const provider = new CookieProvider(args[1], args[0] + "/iframe.html", {timeout: 10000});
const thirdPartyCookies = await provider.cookieTest();
const got = await provider.request({op: "get", name: args[1]});
const frame = [...document.querySelectorAll("iframe")].map((element) => element.src).find(Boolean) || null;
return {thirdPartyCookies, got, frame};
"""


@pytest.fixture
def named_browser(combo: tuple[str, str], named_topology: NamedTopology,
                  tmp_path: Path) -> Iterator[drivers.Session]:
    try:
        session = drivers.open_session(*combo, workdir=tmp_path)
    except drivers.BrowserUnavailable as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} (CI runs every engine)")
        pytest.skip(str(missing))
    with session:
        yield session


def _load_bare_page(browser: drivers.Session, site: str) -> None:
    """Load the site's bare page and check it really is that page (WebKitGTK shows an error page without raising)."""
    browser.goto(site + NAMED_BARE_PAGE)
    where = browser.evaluate("return {origin: location.origin, title: document.title}")
    assert where == {"origin": site, "title": "bare page"}, f"{site}{NAMED_BARE_PAGE} did not load: {where}"


def test_the_names_resolve_and_the_certificate_names_them(named_topology: NamedTopology, certs: Certs) -> None:
    assert {urlsplit(url).hostname for url in (named_topology.bridge, named_topology.site_a,
                                               named_topology.site_b)} == set(drivers.HOSTNAMES)
    context = ssl_context_for_client(certs)  # verifies the certificate against each name
    for url in (named_topology.bridge + "/healthz", named_topology.site_a + NAMED_BARE_PAGE,
                named_topology.site_b + NAMED_BARE_PAGE):
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            assert response.status == 200, url


def test_every_engine_reaches_the_named_sites(named_browser: drivers.Session,
                                               named_topology: NamedTopology) -> None:
    site_a, site_b = named_topology.site_a, named_topology.site_b
    _load_bare_page(named_browser, site_a)

    # A domain cookie: browsers refuse a Domain attribute on an address, so this needs the name.
    named_browser.evaluate(
        f"document.cookie = '{SITE_COOKIE}=a-1; Domain={REGISTRABLE_A}; Path=/; Secure; SameSite=Lax'"
    )
    assert f"{SITE_COOKIE}=a-1" in named_browser.evaluate("return document.cookie").split("; ")

    seen = named_browser.evaluate(PROVIDER_CHECK, named_topology.bridge, COOKIE)
    assert seen["frame"] == named_topology.bridge + "/iframe.html"
    # As on addresses: the bridge's cookie is shared only where the policy allows third-party cookies.
    assert seen["thirdPartyCookies"] is (named_browser.policy == "third-party-allowed"), seen
    assert seen["got"].get("ok") is True, seen  # the iframe answered (not a timeout or "no-bridge")

    _load_bare_page(named_browser, site_b)
    assert SITE_COOKIE not in named_browser.evaluate("return document.cookie"), "site_b sees site_a's cookie"
