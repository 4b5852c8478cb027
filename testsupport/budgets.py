"""Size budgets: gzipped bytes a visitor downloads, enforced by tests/test_size_budget.py and printed against the
real figures by `python -m bench.sizes`."""

from __future__ import annotations

from typing import NamedTuple


class Budget(NamedTuple):
    files: tuple[str, ...]  # the responses it covers, gzipped and summed
    bytes: int
    when: str  # which page views pay it


BUDGETS = (
    Budget(("cookie-provider.min.js",), 2000, "every page view"),
    Budget(("iframe.html", "iframe.min.js"), 1500, "every page view: the hidden iframe's two responses"),
    Budget(("cookie-provider-api.min.js",), 1600,
           "pages with a session, a handoff code, an identity or the resume option"),
    Budget(("cookie-provider-links.min.js",), 1300, "pages with a session (links that carry it)"),
    Budget(("cookie-provider-resume.min.js",), 1000, "pages with the resume option"),
)
# A typical configuration: two sites, one session cookie.
ORIGINS = ["https://www.domain-a.com", "https://shop.domain-b.co.uk"]
COOKIES = ["customer-defined-session-cookie"]
# What a page view downloads from the bridge, by kind of page.
WITHOUT_SESSION = ("cookie-provider.min.js", "iframe.html", "iframe.min.js")
WITH_SESSION = (*WITHOUT_SESSION, "cookie-provider-api.min.js", "cookie-provider-links.min.js")
