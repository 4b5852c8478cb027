"""Build every file the bridge serves — minified scripts and the rendered iframe page — with their headers.

`serve` and `build` both call `build_assets`, so the bytes a browser gets from either are the same.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
from dataclasses import dataclass, field
from typing import Iterable

import jinja2
import rjsmin

from .resources import resource_dir

try:  # optional (`pip install cookiebridge[brotli]`): without it there are no .br copies
    import brotli
except ImportError:  # pragma: no cover - depends on the installation
    brotli = None

SCRIPTS = ("cookie-provider", "cookie-provider-api", "iframe", "chat-finalizer", "web-engagement")
# cookie-provider.min.js loads cookie-provider-api.min.js on the pages that need it, by hashed name and pinned with
# SRI; its source holds this [file, integrity] pair, which the build fills in.
API_SCRIPT_SLOT = '["cookie-provider-api.min.js",""]'
# Scripts whose locals are renamed (tools/terser) for their size budgets: the bridge serves static/mangled/<name>.js,
# generated from static/<name>.js and committed, so that installing or running cookiebridge needs no Node.
MANGLED = ("cookie-provider", "cookie-provider-api")
IFRAME_PAGE = "iframe.html"
STABLE_CACHE = "public, max-age=300"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
# The precompressed copies, in order of preference when a client accepts several.
ENCODINGS = ("br", "gzip")
# Headers every server derives itself, so they are not in response_headers() nor in the nginx/_headers output:
# the length, the validators, and which copy was sent (Content-Encoding, with Vary: Accept-Encoding).
SERVER_HEADERS = frozenset({"content-length", "etag", "last-modified", "content-encoding", "vary"})
JS_TYPE = "text/javascript; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    hashed_name: str = ""  # content-addressed copy, served immutable; empty for the iframe page

    @property
    def etag(self) -> str:
        return etag_of(self.body)

    @property
    def integrity(self) -> str:
        return subresource_integrity(self.body)

    @property
    def urls(self) -> dict[str, bool]:
        """Every name this file is served under -> whether that URL is immutable (the content-hashed copy)."""
        return {self.name: False, **({self.hashed_name: True} if self.hashed_name else {})}

    def response_headers(self, *, immutable: bool) -> dict[str, str]:
        """The headers of a 200 for this file under a stable or a hashed URL, whoever serves it (`serve`, or the
        nginx snippet and _headers file of `build`), apart from SERVER_HEADERS."""
        return {"Content-Type": self.content_type, **self.headers, "Cache-Control": cache_control(immutable=immutable)}

    @functools.cached_property
    def encodings(self) -> dict[str, bytes]:
        """Precompressed copies, made once and only where smaller: encoding -> bytes. Deterministic: gzip at level
        9 with mtime 0 (so `build` output is byte-identical run to run), brotli at quality 11 if installed."""
        copies = {"gzip": gzip.compress(self.body, compresslevel=9, mtime=0)}
        if brotli is not None:
            copies["br"] = brotli.compress(self.body, quality=11)
        return {encoding: copies[encoding] for encoding in ENCODINGS
                if encoding in copies and len(copies[encoding]) < len(self.body)}


def cache_control(*, immutable: bool) -> str:
    """Hashed names never change content: cached for a year. Stable names and iframe.html: five minutes, then
    revalidated with the validators (ETag, or nginx's Last-Modified)."""
    return IMMUTABLE_CACHE if immutable else STABLE_CACHE


def subresource_integrity(body: bytes, algorithm: str = "sha384") -> str:
    return f"{algorithm}-" + base64.b64encode(hashlib.new(algorithm, body).digest()).decode("ascii")


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def minify(source: str) -> str:
    """rjsmin, keeping the /*! license banner */."""
    return rjsmin.jsmin(source, keep_bang_comments=True).strip() + "\n"


def _hashed(stable: str, body: bytes) -> str:
    stem, _, ext = stable.partition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:12]}.{ext}"


def build_script(name: str, api_script: Asset | None = None) -> Asset:
    """`api_script`: for cookie-provider, the built cookie-provider-api it pins (built here when not given)."""
    path = resource_dir("static") / ("mangled" if name in MANGLED else "") / f"{name}.js"
    source = minify(path.read_text(encoding="utf-8"))
    if name == "cookie-provider":
        source = pin_api_script(source, api_script or build_script("cookie-provider-api"))
    body = source.encode("utf-8")
    stable = f"{name}.min.js"
    headers = {
        "X-Content-Type-Options": "nosniff",
        # Scripts are public: '*' lets sites load them with integrity + crossorigin (SRI).
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    return Asset(stable, body, JS_TYPE, headers, _hashed(stable, body))


def pin_api_script(provider: str, api_script: Asset) -> str:
    """The minified provider, loading this exact build of cookie-provider-api: its immutable hashed name, pinned
    by SRI. sha256, which SRI accepts as it does sha384, keeps about 20 gzipped bytes off every page view."""
    if provider.count(API_SCRIPT_SLOT) != 1:
        raise RuntimeError(f"cookie-provider.js must hold {API_SCRIPT_SLOT} exactly once")
    pinned = f"['{api_script.hashed_name}','{subresource_integrity(api_script.body, 'sha256')}']"
    return provider.replace(API_SCRIPT_SLOT, pinned)


def content_security_policy(trusted_origins: Iterable[str]) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors " + " ".join(trusted_origins),
        ]
    )


def render_iframe_page(
    trusted_origins: Iterable[str], cookie_names: Iterable[str], cookie_max_age: int, script: Asset, *, api: bool
) -> Asset:
    """`api`: whether the bridge's JSON API (link handoff, identity) answers beside this page."""
    origins = list(trusted_origins)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_dir("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    config = {"origins": origins, "names": list(cookie_names), "maxAge": cookie_max_age, "api": api}
    html = environment.get_template(IFRAME_PAGE).render(config=config, script=script)
    headers = {
        "Content-Security-Policy": content_security_policy(origins),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return Asset(IFRAME_PAGE, html.encode("utf-8"), HTML_TYPE, headers)


def build_assets(
    trusted_origins: Iterable[str], cookie_names: Iterable[str], cookie_max_age: int, *, api: bool = True
) -> list[Asset]:
    """Every served file: the scripts, then the iframe page that references the iframe script by hash."""
    api_script = build_script("cookie-provider-api")
    scripts = {
        name: api_script if name == "cookie-provider-api" else build_script(name, api_script) for name in SCRIPTS
    }
    page = render_iframe_page(trusted_origins, cookie_names, cookie_max_age, scripts["iframe"], api=api)
    return [*scripts.values(), page]
