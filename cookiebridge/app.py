"""The Starlette application that serves the bridge origin."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import ipaddress
import logging
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import __version__, metrics
from .api import Api
from .assets import HTML_TYPE, IFRAME_PAGE, Asset, build_assets, etag_of
from .config import Settings, load_settings
from .errors import INTERNAL, INTERNAL_ERROR, METHOD_NOT_ALLOWED, NOT_FOUND, BridgeError, log_internal_error
from .handoff import HandoffCodes
from .health import Incidents, MeteredStore, Readiness
from .logs import AccessLog
from .resume import ResumePages, ResumeSigner
from .stores import Store, StoreUnavailable, open_store

logger = logging.getLogger("cookiebridge")


class PreparedFile:
    """Serves one URL of a prebuilt file as a raw ASGI app. The headers of every response (each precompressed copy,
    its 304) are encoded once at start-up, so a request costs a dict lookup and two `send` calls: profiling showed
    Starlette's middleware, routing and per-request header building taking most of a static file's time
    (bench/profile_serve.py)."""

    def __init__(self, asset: Asset, *, immutable: bool, storage_access: frozenset[str] | None = None) -> None:
        """`storage_access`: the embedders (trusted origins) to answer Storage Access Headers for (iframe.html)."""
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                   for name, value in asset.response_headers(immutable=immutable).items()]
        vary = ["Accept-Encoding"] if asset.encodings else []  # the body depends on it, for every client of this URL
        if storage_access is not None:
            vary.append("Sec-Fetch-Storage-Access")
        if vary:
            headers.append((b"vary", ", ".join(vary).encode("latin-1")))
        self.storage_access = storage_access
        # A Storage Access answer depends on the embedder too.
        self.vary_origin = (b"vary", ", ".join([*vary, "Origin"]).encode("latin-1"))
        # encoding ("" = the file itself) -> (ETag, 200 headers, body, 304 headers)
        self.variants: dict[str, tuple[bytes, tuple, bytes, tuple]] = {}
        for encoding, body in {"": asset.body, **asset.encodings}.items():
            etag = (asset.etag if not encoding else etag_of(body)).encode("ascii")
            common = [*headers, (b"etag", etag), *([(b"content-encoding", encoding.encode())] if encoding else [])]
            ok = (*common, (b"content-length", str(len(body)).encode()))
            not_modified = tuple(pair for pair in common if pair[0] not in (b"content-type", b"content-encoding"))
            self.variants[encoding] = (etag, ok, body, not_modified)
        self.encodings = tuple(asset.encodings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        accept = if_none_match = storage_access = origin = b""
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                accept = value
            elif name == b"if-none-match":
                if_none_match = value
            elif name == b"sec-fetch-storage-access":
                storage_access = value
            elif name == b"origin":
                origin = value
        encoding = _choose_encoding(accept, self.encodings) if accept and self.encodings else ""
        etag, ok, body, not_modified = self.variants[encoding]
        extra = self._storage_access(storage_access, origin) if storage_access and self.storage_access else None
        # Fresh message objects per request: middleware may add headers to a message's list in place.
        if if_none_match and _etag_matches(if_none_match, etag):
            await send({"type": "http.response.start", "status": 304, "headers": _with(not_modified, extra)})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.start", "status": 200, "headers": _with(ok, extra)})
            await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    def _storage_access(self, status: bytes, origin: bytes) -> list[tuple[bytes, bytes]] | None:
        """Storage Access Headers: a trusted embedder whose storage-access permission is granted but inactive is
        asked to retry with it (its unpartitioned cookies); one with it active, to keep it for the page it loads.
        Other values, and other embedders, get the page as it is (with Vary saying why)."""
        status = status.strip()
        try:
            embedder = origin.decode("ascii")
        except UnicodeDecodeError:
            embedder = ""
        trusted = self.storage_access is not None and embedder in self.storage_access
        if status == b"inactive" and trusted:
            answer = b'retry; allowed-origin="' + origin + b'"'
        elif status == b"active" and trusted:
            answer = b"load"
        else:
            return [self.vary_origin]
        return [self.vary_origin, (b"activate-storage-access", answer)]


def _with(headers: tuple, extra: list[tuple[bytes, bytes]] | None) -> list[tuple[bytes, bytes]]:
    """A response's prepared headers, with `extra` in place of its Vary header when given."""
    if extra is None:
        return list(headers)
    return [pair for pair in headers if pair[0] != b"vary"] + extra


def _etag_matches(header: bytes, etag: bytes) -> bool:
    tags = {tag.strip().removeprefix(b"W/") for tag in header.split(b",")}
    return etag in tags or b"*" in tags


@functools.lru_cache(maxsize=256)
def _codings(header: bytes) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """(accepted, refused) codings of an Accept-Encoding value, by q > 0 or q = 0. Cached: browsers send a handful
    of distinct values."""
    accepted: set[bytes] = set()
    refused: set[bytes] = set()
    for item in header.lower().split(b","):
        coding, _, params = item.partition(b";")
        quality = 1.0
        for param in params.split(b";"):
            key, _, value = param.partition(b"=")
            if key.strip() == b"q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        (accepted if quality > 0 else refused).add(coding.strip())
    return frozenset(accepted), frozenset(refused)


def _choose_encoding(header: bytes, available: tuple[str, ...]) -> str:
    accepted, refused = _codings(header[:512])  # real browsers' values are short; a long tail is ignored
    for encoding in available:  # ENCODINGS order: br, then gzip
        coding = encoding.encode()
        if coding in accepted or (b"*" in accepted and coding not in refused):
            return encoding
    return ""


class BridgeApp(Starlette):
    """Starlette with a fast path in front: GET and HEAD of a prebuilt file skip the middleware and the router.
    Everything else (the API, /healthz, 404s, other methods on the files) goes through Starlette."""

    def __init__(self, files: dict[str, PreparedFile], *, access_log: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.files = files  # URL path -> prepared file
        # JSON logs: a request id and one line per request around everything, the fast path included.
        self.handle = AccessLog(self.dispatch) if access_log else self.dispatch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handle(scope, receive, send)

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            file = self.files.get(scope["path"])
            if file is not None:
                await file(scope, receive, send)
                return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        except Exception as error:  # Starlette answered with internal_error below and re-raised: log one line
            log_internal_error(scope["method"], scope["path"], error)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__}, headers={"Cache-Control": "no-store"})


def readyz(readiness: Readiness) -> Any:
    async def ready(request: Request) -> Response:
        failure = await readiness.check()
        headers = {"Cache-Control": "no-store"}
        if failure is None:
            return JSONResponse({"status": "ready", "version": __version__}, headers=headers)
        return JSONResponse({"status": "unready", "failing": ["store"], "store": failure}, status_code=503,
                            headers={**headers, "Retry-After": "5"})

    return ready


def metrics_endpoint(allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> Any:
    """/metrics for the addresses in metrics_allow_ips (the scraper); everyone else gets the ordinary 404."""

    async def exposition(request: Request) -> Response:
        if not _address_in(request.client.host if request.client else "", allowed):
            return await not_found(request, Exception())
        body = await asyncio.get_running_loop().run_in_executor(None, metrics.exposition)  # reads files with workers
        return Response(body, media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    return exposition


def _address_in(host: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """metrics_allow_ips: comma-separated addresses or networks (ValueError on a bad one)."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())


async def not_found(request: Request, exc: Exception) -> Response:
    error = BridgeError(NOT_FOUND, f"no such resource: {request.url.path}")
    return JSONResponse(error.to_json(), status_code=error.status)


async def internal_error(request: Request, exc: Exception) -> Response:
    return JSONResponse(INTERNAL_ERROR, status_code=INTERNAL.status, headers={"Cache-Control": "no-store"})


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    allow = getattr(exc, "headers", None) or {}
    error = BridgeError(METHOD_NOT_ALLOWED, f"{request.method} is not allowed on {request.url.path}")
    return JSONResponse(error.to_json(), status_code=error.status, headers=allow)


def prepare_files(assets: list[Asset], trusted_origins: tuple[str, ...] = ()) -> dict[str, PreparedFile]:
    """URL path -> prepared file, for every name of every asset (stable and content-hashed). iframe.html answers
    Storage Access Headers for `trusted_origins`."""
    embedders = frozenset(trusted_origins)
    return {"/" + name: PreparedFile(asset, immutable=immutable,
                                     storage_access=embedders if name == IFRAME_PAGE else None)
            for asset in assets for name, immutable in asset.urls.items()}


def asset_routes(files: dict[str, PreparedFile]) -> list[Route]:
    # Only reached for the methods the fast path leaves to Starlette, which then answers 405.
    return [Route(path, file, methods=["GET", "HEAD"]) for path, file in files.items()]


# What each file of the bridge is for, on the index page; a file not named here is listed without a word.
_PURPOSES = {
    IFRAME_PAGE: "the bridge page the sites frame (IFRAME_URL)",
    "cookie-provider.min.js": "the script tag for every page of every trusted site",
    "cookie-provider-api.min.js": "loaded by the provider for link handoff and signed identity",
    "iframe.min.js": "the script of iframe.html",
}


def index_page(assets: list[Asset]) -> Asset:
    """`GET /`: a small page naming what the bridge serves, for a person who opens its address. It shows no setting
    (the trusted origins are in iframe.html already, and not repeated here)."""
    items = [f'<li><a href="/{html.escape(asset.name)}">/{html.escape(asset.name)}</a>'
             + (f": {html.escape(_PURPOSES[asset.name])}" if asset.name in _PURPOSES else "") + "</li>"
             for asset in assets]
    items += ['<li><a href="/healthz">/healthz</a>: the process answers</li>',
              '<li><a href="/readyz">/readyz</a>: the store answers too</li>']
    body = ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cookiebridge</title></head>"
            f"<body>\n<h1>cookiebridge {html.escape(__version__)}</h1>\n<p>This is a cookiebridge bridge origin: it "
            "keeps a chat session when customers move between the sites it trusts. It serves:</p>\n<ul>\n"
            + "\n".join(items) + "\n</ul>\n</body></html>\n")
    headers = {"Content-Security-Policy": "default-src 'none'; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    return Asset("", body.encode("utf-8"), HTML_TYPE, headers)


PURGE_INTERVAL = 60.0


async def purge_periodically(store: Store) -> None:
    while True:
        await asyncio.sleep(PURGE_INTERVAL)
        try:
            await store.purge_expired()
        except StoreUnavailable:
            pass  # the store's incident is logged once by MeteredStore


def create_app(settings: Settings, store: Store | None = None) -> BridgeApp:
    """The bridge app. `store` defaults to the configured one, opened lazily and closed at shutdown."""
    assets = build_assets(settings.trusted_origins, settings.cookie_names, settings.cookie_max_age,
                          resume=settings.resume)
    store = store or open_store(settings.store)
    # itsdangerous signs with the last key and verifies with all: old keys first.
    codes = HandoffCodes([*settings.previous_secret_keys, settings.secret_key], settings.handoff_ttl)
    metered = MeteredStore(store, Incidents())
    resume = ResumeSigner([*settings.previous_secret_keys, settings.secret_key], code_ttl=settings.handoff_ttl,
                          max_age=settings.resume_max_age) if settings.resume else None
    api = Api(settings, metered, codes, resume)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        purger = asyncio.create_task(purge_periodically(metered))
        try:
            yield
        finally:
            purger.cancel()
            await store.aclose()

    files = prepare_files(assets, settings.trusted_origins)
    files["/"] = PreparedFile(index_page(assets), immutable=False)
    routes = [Route("/healthz", healthz, methods=["GET", "HEAD"]),
              Route("/readyz", readyz(Readiness(metered)), methods=["GET", "HEAD"]),
              *asset_routes(files), *api.routes()]
    if resume is not None:  # off: /resume is an ordinary 404, like every unknown URL
        routes.append(Route("/resume", ResumePages(settings, metered, resume, api.limit).page, methods=["GET", "POST"]))
    if settings.metrics:
        routes.append(Route("/metrics", metrics_endpoint(parse_networks(settings.metrics_allow_ips)), methods=["GET"]))
    app = BridgeApp(files, routes=routes, access_log=settings.log_format == "json",
                    exception_handlers={404: not_found, 405: method_not_allowed, Exception: internal_error},
                    lifespan=lifespan)
    # No 307 from /iframe.html/ to /iframe.html: its Location would be built from the Host header (and say http://
    # behind a TLS proxy). Every URL the bridge serves is exact; anything else is a 404.
    app.router.redirect_slashes = False
    return app


_handed_over: list[str] = []


def hand_over_settings(text: str) -> None:
    """Called by `serve`'s uvicorn configuration in each worker, just before uvicorn calls the factory below."""
    _handed_over[:] = [text]


def app_from_environment() -> Starlette:
    """uvicorn factory for `serve`: the settings `serve` validated and handed over (see cli.BridgeConfig), or,
    when started by uvicorn directly, the settings from the environment and COOKIEBRIDGE_CONFIG."""
    if _handed_over:
        return create_app(Settings.from_json(_handed_over.pop()))
    return create_app(load_settings())
