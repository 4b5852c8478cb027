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

SCRIPTS = ("cookie-provider", "cookie-provider-api", "cookie-provider-links", "cookie-provider-resume", "iframe",
           "chat-finalizer", "web-engagement")
# A script that loads another on the pages that need it, by hashed name and pinned with SRI, holds the slot
# ["<other>.min.js",""] in its source, which the build fills in: the provider loads cookie-provider-api, which
# loads cookie-provider-links and cookie-provider-resume. A page that pins the provider runs only pinned code.
PINS = {"cookie-provider": ("cookie-provider-api",),
        "cookie-provider-api": ("cookie-provider-links", "cookie-provider-resume")}
# Scripts whose locals are renamed (tools/terser) for their size budgets: the bridge serves static/mangled/<name>.js,
# generated from static/<name>.js and committed, so that installing or running cookiebridge needs no Node.
MANGLED = ("cookie-provider", "cookie-provider-api", "cookie-provider-links", "cookie-provider-resume")
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


def build_script(name: str, built: dict[str, Asset] | None = None) -> Asset:
    """The minified script `name`, with the script it pins filled in; `built` caches the scripts made so far."""
    built = {} if built is None else built
    if name in built:
        return built[name]
    path = resource_dir("static") / ("mangled" if name in MANGLED else "") / f"{name}.js"
    source = minify(path.read_text(encoding="utf-8"))
    for pinned in PINS.get(name, ()):
        source = pin_script(source, build_script(pinned, built))
    body = source.encode("utf-8")
    stable = f"{name}.min.js"
    headers = {
        "X-Content-Type-Options": "nosniff",
        # Scripts are public: '*' lets sites load them with integrity + crossorigin (SRI).
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    built[name] = Asset(stable, body, JS_TYPE, headers, _hashed(stable, body))
    return built[name]


def pin_slot(name: str) -> str:
    """What the source of the script that loads `name` holds, for the build to fill in."""
    return f'["{name}.min.js",""]'


def pin_script(source: str, pinned: Asset) -> str:
    """The minified `source`, loading this exact build of `pinned`: its immutable hashed name, pinned by SRI.
    sha256, which SRI accepts as it does sha384, keeps about 20 gzipped bytes off every page view."""
    slot = pin_slot(pinned.name.removesuffix(".min.js"))
    if source.count(slot) != 1:
        raise RuntimeError(f"the script that loads {pinned.name} must hold {slot} exactly once")
    return source.replace(slot, f"['{pinned.hashed_name}','{subresource_integrity(pinned.body, 'sha256')}']")


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
    trusted_origins: Iterable[str], cookie_names: Iterable[str], cookie_max_age: int, script: Asset, *, api: bool,
    resume: bool = False,
) -> Asset:
    """`api`: whether the bridge's JSON API (link handoff, identity) answers beside this page; `resume`: whether its
    resume page does (the setting `resume`)."""
    origins = list(trusted_origins)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_dir("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    config = {"origins": origins, "names": list(cookie_names), "maxAge": cookie_max_age, "api": api,
              "resume": api and resume}
    html = environment.get_template(IFRAME_PAGE).render(config=config, script=script)
    headers = {
        "Content-Security-Policy": content_security_policy(origins),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return Asset(IFRAME_PAGE, html.encode("utf-8"), HTML_TYPE, headers)


def build_assets(
    trusted_origins: Iterable[str], cookie_names: Iterable[str], cookie_max_age: int, *, api: bool = True,
    resume: bool = False,
) -> list[Asset]:
    """Every served file: the scripts, then the iframe page that references the iframe script by hash."""
    built: dict[str, Asset] = {}
    scripts = {name: build_script(name, built) for name in SCRIPTS}
    page = render_iframe_page(trusted_origins, cookie_names, cookie_max_age, scripts["iframe"], api=api,
                              resume=resume)
    return [*scripts.values(), page]
