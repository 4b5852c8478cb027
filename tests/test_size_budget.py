"""Size budgets: what a visitor downloads, gzipped as `serve` and `build` send them (gzip -9, the precompressed
copy). `python -m bench.sizes` prints the same figures.

Every page view costs cookie-provider.min.js and the hidden iframe (iframe.html + iframe.min.js). The provider
loads cookie-provider-api.min.js only on pages that use the bridge's API, and that script loads
cookie-provider-links.min.js (once the page holds a session) and cookie-provider-resume.min.js (the resume option);
each has a budget of its own (testsupport/budgets.py says which pages pay which).
"""

from __future__ import annotations

import re

import pytest

from cookiebridge.assets import PINS, SCRIPTS, build_assets, subresource_integrity
from testsupport.budgets import BUDGETS, COOKIES, ORIGINS, Budget


def gzipped(api: bool = True) -> dict[str, int]:
    return {asset.name: len(asset.encodings["gzip"]) for asset in build_assets(ORIGINS, COOKIES, 30 * 86400, api=api)}


@pytest.mark.parametrize("api", [True, False], ids=["serve", "static build"])
@pytest.mark.parametrize("budget", BUDGETS, ids=lambda budget: " + ".join(budget.files))
def test_every_file_fits_its_budget(budget: Budget, api: bool) -> None:
    sizes = gzipped(api)
    total = sum(sizes[name] for name in budget.files)
    assert total <= budget.bytes, f"{' + '.join(budget.files)}: {total} bytes gzipped, over {budget.bytes}"


@pytest.mark.parametrize("loader", PINS)
def test_a_script_loads_exactly_this_build_of_the_scripts_it_pins(loader: str) -> None:
    """The split into several scripts must not open a hole in SRI: a page that pins cookie-provider.min.js runs
    only the scripts it names, by immutable hashed name and integrity, and so on down the chain."""
    assets = {asset.name: asset for asset in build_assets(ORIGINS, COOKIES, 60)}
    body = assets[f"{loader}.min.js"].body.decode()
    pinned = re.findall(r"\['(cookie-provider-[a-z]+\.[0-9a-f]{12}\.min\.js)','(sha256-[A-Za-z0-9+/=]+)'\]", body)
    expected = [assets[f"{name}.min.js"] for name in PINS[loader]]
    assert pinned == [(script.hashed_name, subresource_integrity(script.body, "sha256")) for script in expected]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_keeps_its_license_banner(name: str) -> None:
    script = next(asset for asset in build_assets(ORIGINS, COOKIES, 60) if asset.name == f"{name}.min.js")
    assert script.body.startswith(f"/*! cookiebridge {name} | MIT */".encode())
