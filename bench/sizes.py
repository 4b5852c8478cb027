"""Bytes every visitor pays: each served file as source, minified, gzipped and brotli'd, against the budgets.

    python -m bench.sizes

The gzip and brotli figures are the precompressed copies `serve` sends and `build` writes (Asset.encodings);
tests/test_size_budget.py enforces the same budgets.
"""

from __future__ import annotations

from bench.common import print_machine
from cookiebridge.assets import build_assets
from cookiebridge.resources import resource_dir
from testsupport.budgets import API_SCRIPT_BUDGET, COOKIES, IFRAME_BUDGET, ORIGINS, PROVIDER_BUDGET


def main(argv: list[str] | None = None) -> int:
    print_machine()
    assets = build_assets(ORIGINS, COOKIES, 30 * 86400)
    print(f"sizes: bytes per file, configuration of {len(ORIGINS)} trusted origins and {len(COOKIES)} cookie name")
    print(f"{'file':28} {'source':>8} {'minified':>9} {'gzip':>6} {'brotli':>7}")
    gzipped = {}
    for asset in assets:
        source = resource_dir("static") / asset.name.replace(".min.js", ".js")
        source_size = source.stat().st_size if asset.name.endswith(".js") else len(asset.body)
        gzipped[asset.name] = len(asset.encodings["gzip"])
        brotli = len(asset.encodings["br"]) if "br" in asset.encodings else "-"
        print(f"{asset.name:28} {source_size:8} {len(asset.body):9} {gzipped[asset.name]:6} {brotli!s:>7}")
    provider, api_script = gzipped["cookie-provider.min.js"], gzipped["cookie-provider-api.min.js"]
    iframe = gzipped["iframe.html"] + gzipped["iframe.min.js"]
    checks = [
        ("cookie-provider.min.js (every page view)", provider, PROVIDER_BUDGET),
        ("cookie-provider-api.min.js (pages with a session, a handoff code or an identity)", api_script, API_SCRIPT_BUDGET),
        ("iframe.html + iframe.min.js (every page view)", iframe, IFRAME_BUDGET),
    ]
    for label, size, budget in checks:
        print(f"budget {label} gzip: {size} bytes; budget {budget} "
              f"(ratio {size / budget:.2f}, {'met' if size <= budget else 'NOT met'})")
    print(f"a page view without a chat session: {provider + iframe} bytes gzipped from the bridge; "
          f"with one: {provider + api_script + iframe}")
    return 0 if all(size <= budget for _, size, budget in checks) else 1

if __name__ == "__main__":
    raise SystemExit(main())
