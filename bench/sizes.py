"""Bytes every visitor pays: each served file as source, minified, gzipped and brotli'd, against the budgets.

    python -m bench.sizes

The gzip and brotli figures are the precompressed copies `serve` sends and `build` writes (Asset.encodings);
tests/test_size_budget.py enforces the same budgets.
"""

from __future__ import annotations

from bench.common import print_machine
from cookiebridge.assets import build_assets
from cookiebridge.resources import resource_dir
from testsupport.budgets import BUDGETS, COOKIES, ORIGINS, WITH_SESSION, WITHOUT_SESSION


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
    met = True
    for budget in BUDGETS:
        size = sum(gzipped[name] for name in budget.files)
        met &= size <= budget.bytes
        print(f"budget {' + '.join(budget.files)} ({budget.when}) gzip: {size} bytes; budget {budget.bytes} "
              f"(ratio {size / budget.bytes:.2f}, {'met' if size <= budget.bytes else 'NOT met'})")
    print(f"a page view without a chat session: {sum(gzipped[name] for name in WITHOUT_SESSION)} bytes gzipped from "
          f"the bridge; with one: {sum(gzipped[name] for name in WITH_SESSION)}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
