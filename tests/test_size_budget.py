"""Size budgets: every visitor of every page of every site downloads these bytes, gzipped as `serve` and `build`
send them (gzip -9, the precompressed copy). `python bench/sizes.py` prints the same figures.

The issue's target for cookie-provider.min.js is 2,000 bytes. With everything the provider does (iframe channel
with handshake, JSON API with timeouts, handoff on arrival and on links, identity, cookieTest details, the widget
extension) it is not reached: the rewrite for size took it from 3,987 to the ceiling below, and the same source
through a name-mangling minifier would still be about 2,900 (bench/RESULTS.md). The ceiling keeps it from growing.
"""

from __future__ import annotations

import pytest

from cookiebridge.assets import SCRIPTS, build_assets

PROVIDER_TARGET = 2000  # issue 5; not met, see above
PROVIDER_CEILING = 3360  # measured 3,357 bytes; lower it when the provider shrinks, never raise it silently
IFRAME_BUDGET = 1500  # iframe.html + iframe.min.js, the two responses the hidden iframe costs
# A typical configuration: two sites, one session cookie.
ORIGINS = ["https://www.domain-a.com", "https://shop.domain-b.co.uk"]
COOKIES = ["customer-defined-session-cookie"]


def gzipped(api: bool = True) -> dict[str, int]:
    return {asset.name: len(asset.encodings["gzip"]) for asset in build_assets(ORIGINS, COOKIES, 30 * 86400, api=api)}


def test_cookie_provider_stays_under_its_ceiling() -> None:
    size = gzipped()["cookie-provider.min.js"]
    assert size <= PROVIDER_CEILING, f"cookie-provider.min.js is {size} bytes gzipped, over {PROVIDER_CEILING}"


@pytest.mark.parametrize("api", [True, False], ids=["serve", "static build"])
def test_iframe_page_and_its_script_fit_the_budget(api: bool) -> None:
    sizes = gzipped(api)
    total = sizes["iframe.html"] + sizes["iframe.min.js"]
    assert total <= IFRAME_BUDGET, f"iframe.html + iframe.min.js are {total} bytes gzipped, over {IFRAME_BUDGET}"


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_keeps_its_license_banner(name: str) -> None:
    script = next(asset for asset in build_assets(ORIGINS, COOKIES, 60) if asset.name == f"{name}.min.js")
    assert script.body.startswith(f"/*! cookiebridge {name} | MIT License".encode())
