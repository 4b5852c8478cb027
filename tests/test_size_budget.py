"""Size budgets: what a visitor downloads, gzipped as `serve` and `build` send them (gzip -9, the precompressed
copy). `python -m bench.sizes` prints the same figures.

Every page view costs cookie-provider.min.js and the hidden iframe (iframe.html + iframe.min.js). The provider
loads cookie-provider-api.min.js (link handoff, signed identity) only on a page that arrives with a handoff code,
has an identity, or holds a chat session; that script has a budget of its own, and so does the sum such a page pays.
"""

from __future__ import annotations

import re

import pytest

from cookiebridge.assets import SCRIPTS, build_assets, subresource_integrity
from testsupport.budgets import API_SCRIPT_BUDGET, COOKIES, IFRAME_BUDGET, ORIGINS, PROVIDER_BUDGET  # and why each


def gzipped(api: bool = True) -> dict[str, int]:
    return {asset.name: len(asset.encodings["gzip"]) for asset in build_assets(ORIGINS, COOKIES, 30 * 86400, api=api)}


def test_cookie_provider_fits_the_budget() -> None:
    size = gzipped()["cookie-provider.min.js"]
    assert size <= PROVIDER_BUDGET, f"cookie-provider.min.js is {size} bytes gzipped, over {PROVIDER_BUDGET}"


def test_api_script_fits_its_budget() -> None:
    size = gzipped()["cookie-provider-api.min.js"]
    assert size <= API_SCRIPT_BUDGET, f"cookie-provider-api.min.js is {size} bytes gzipped, over {API_SCRIPT_BUDGET}"


@pytest.mark.parametrize("api", [True, False], ids=["serve", "static build"])
def test_iframe_page_and_its_script_fit_the_budget(api: bool) -> None:
    sizes = gzipped(api)
    total = sizes["iframe.html"] + sizes["iframe.min.js"]
    assert total <= IFRAME_BUDGET, f"iframe.html + iframe.min.js are {total} bytes gzipped, over {IFRAME_BUDGET}"


def test_the_provider_loads_exactly_this_build_of_the_api_script() -> None:
    """The budget split must not open a hole in SRI: a page that pins cookie-provider.min.js runs only the
    cookie-provider-api.min.js it names, by immutable hashed name and integrity."""
    assets = {asset.name: asset for asset in build_assets(ORIGINS, COOKIES, 60)}
    api_script, provider = assets["cookie-provider-api.min.js"], assets["cookie-provider.min.js"].body.decode()
    pinned = re.findall(r"\['(cookie-provider-api\.[0-9a-f]{12}\.min\.js)','(sha256-[A-Za-z0-9+/=]+)'\]", provider)
    assert pinned == [(api_script.hashed_name, subresource_integrity(api_script.body, "sha256"))]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_keeps_its_license_banner(name: str) -> None:
    script = next(asset for asset in build_assets(ORIGINS, COOKIES, 60) if asset.name == f"{name}.min.js")
    assert script.body.startswith(f"/*! cookiebridge {name} | MIT */".encode())
