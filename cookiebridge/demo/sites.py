"""The demo customer sites (domain-a, domain-b, ...) and the in-memory chat server they share.

One Starlette app is served on every site origin: each page works out which site it is from the Host header and
links to the others. The pages are the Genesys guide's own samples (`templates/`); the widget they load is either a
test double (`static/widgets-double.js`) or a real Genesys Widgets copy (`widgets_dir`), and it talks to
`chat.ChatServer`, a stand-in for the Digital Channels chat API at CHAT_DATA_URL. The demo's own explanations (how
the chat got here, what cookieTest() found, whether the bridge answers) come from a separate script,
`static/demo-status.js`, at /demo/status.js. Nothing here is used by the bridge itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlencode, urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from ..identity import sign_identity
from ..origins import DEFAULT_PORTS, normalise_origin
from .chat import CHAT_API_KEY, CHAT_ENDPOINT, ChatServer
from .topology import site_name

DEFAULT_COOKIE_NAME = "customer-defined-session-cookie"
# The pages' Genesys Widgets transport (type "pureengage-v3-rest"): the chat server's dataURL on every site; the
# endpoint (service) name and the x-api-key it checks come from demo_chat.
CHAT_DATA_URL = "/genesys/chat/v3/customer-support"
_NO_STORE = {"Cache-Control": "no-store"}
_HERE = Path(__file__).resolve().parent
TEMPLATES = _HERE / "templates"
STATIC = _HERE / "static"
SIGNED_IN_CUSTOMER = "demo-customer"
SITE_HUES = (215, 150, 280, 25, 345)  # page accent per site, so screenshots tell domain-a from domain-b
# What /widgets/ serves from a Genesys Widgets copy: anything else is a 404.
WIDGET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".gif": "image/gif",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
}


# -- the sites -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Site:
    origin: str  # https://127.0.0.2:8443
    host: str  # 127.0.0.2:8443, as in the Host header
    name: str  # domain-a


def _site(value: str, position: int) -> _Site:
    origin = normalise_origin(value)
    return _Site(origin=origin, host=urlsplit(origin).netloc, name=site_name(position))


def _request_host(request: Request) -> str:
    host = request.headers.get("host", "").lower()
    default = ":%d" % DEFAULT_PORTS.get(request.url.scheme, 0)
    return host[: -len(default)] if host.endswith(default) else host


def create_demo_app(*, bridge_url: str, sites: Sequence[str], cookie_name: str = DEFAULT_COOKIE_NAME,
                    emulator: ChatServer | None = None, identity_secret: str | None = None,
                    identity_audience: str = "cookiebridge", provider_url: str | None = None,
                    widgets_dir: Path | None = None, ca_file: Path | None = None, resume: bool = False) -> Starlette:
    """The demo customer sites. Serve the same app on every origin in `sites` (e.g. https://127.0.0.2:8443 and
    https://127.0.0.3:8443); `bridge_url` is the bridge origin serving iframe.html and cookie-provider.min.js.
    With `identity_secret` (the bridge's), /identity.html?customer=ID plays a site whose backend signs the id.
    `provider_url`: where the pages load cookie-provider.min.js from, if not the bridge (a self-hosted copy).
    /finalizer.html, /web-engagement.html and /media-widget.html load the widget-extension scripts from the bridge.
    `emulator`: the chat server (share one between apps whose pages share chats). `widgets_dir`: a real Genesys
    Widgets copy (cxbus.min.js, plugins/, widgets.min.css, i18n/) served at /widgets/ in place of the test double.
    The sites are named domain-a, domain-b, ... in the order of `sites`. `ca_file`: the demo CA, named on the page
    when the bridge's certificate is not accepted. `resume`: the bridge runs with `resume` on; /resume.html shows
    resume through the bridge."""
    bridge = urlsplit(bridge_url)
    if bridge.scheme not in ("http", "https") or not bridge.netloc:
        raise ValueError(f"bridge_url {bridge_url!r} must be an http(s) URL such as 'https://127.0.0.1:8000'")
    if not cookie_name:
        raise ValueError("cookie_name must not be empty")
    base = bridge_url.rstrip("/")
    known = [_site(value, position) for position, value in enumerate(sites)]
    chat = emulator or ChatServer()
    widgets_root = _widgets_root(widgets_dir) if widgets_dir is not None else None
    # The real widget is unstyled (and its panel unplaced) without its stylesheet; the double brings its own.
    stylesheet = "/widgets/widgets.min.css" if widgets_root and (widgets_root / "widgets.min.css").is_file() else None
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    widget = (STATIC / "widgets-double.js").read_bytes()
    status_script = (STATIC / "demo-status.js").read_bytes()

    def page(template: str, target_path: str, signed_in: bool = False,
             knobs: Sequence[str] = ()) -> Callable[[Request], Any]:
        """`knobs`: query flags the page reads (`?async=0` turns one off); links to the other sites keep them."""
        async def endpoint(request: Request) -> Response:
            host = _request_host(request)
            token, path = None, target_path
            if signed_in:
                customer = request.query_params.get("customer", SIGNED_IN_CUSTOMER)[:64] or SIGNED_IN_CUSTOMER
                # What the site's own backend does: sign the signed-in customer's id for the bridge.
                token = sign_identity(customer, identity_secret or "", audience=identity_audience, ttl=3600)
                path = f"{target_path}?{urlencode({'customer': customer})}"
            flags = {knob: request.query_params.get(knob) != "0" for knob in knobs}
            off = {knob: "0" for knob, on in flags.items() if not on}
            if off:
                path = f"{target_path}?{urlencode(off)}"
            others = [site for site in known if site.host != host]
            position = next((i for i, site in enumerate(known) if site.host == host), None)
            here = known[position] if position is not None else None
            html = templates.get_template(template).render(
                site_name=here.name if here else host or "demo site",
                site_address=host,
                signed_in=signed_in,
                identity_enabled=bool(identity_secret),
                resume_enabled=resume,
                demo_config={
                    "bridge": base,
                    "cookieName": cookie_name,
                    "here": here.name if here else host,
                    "sites": {site.origin: site.name for site in known},
                    "signedIn": signed_in,
                    "identityPage": "/identity.html" if identity_secret else None,
                    "caFile": str(ca_file) if ca_file else None,
                },
                accent=SITE_HUES[position % len(SITE_HUES)] if position is not None else 0,
                bridge_url=base,
                iframe_url=base + "/iframe.html",
                provider_url=provider_url or base + "/cookie-provider.min.js",
                cookie_name=cookie_name,
                identity_token=token,
                chat_data_url=CHAT_DATA_URL,
                chat_endpoint=CHAT_ENDPOINT,
                chat_api_key=CHAT_API_KEY,
                finalizer_url=base + "/chat-finalizer.min.js",
                widget_stylesheet=stylesheet,
                web_engagement_url=base + "/web-engagement.min.js",
                flags=flags,
                others=[{"name": site.name, "address": site.host, "href": site.origin + "/",
                         "target": site.origin + path} for site in others],
            )
            return HTMLResponse(html, headers=_NO_STORE)
        return endpoint

    async def widget_script(request: Request) -> Response:
        return Response(widget, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})

    async def demo_status(request: Request) -> Response:
        return Response(status_script, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    async def widget_file(request: Request) -> Response:
        assert widgets_root is not None
        found = _widget_file(widgets_root, request.path_params["path"])
        if found is None:
            return Response("Not Found", status_code=404, media_type="text/plain; charset=utf-8")
        return FileResponse(found, media_type=WIDGET_TYPES[found.suffix.lower()],
                            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    async def no_favicon(request: Request) -> Response:
        return Response(status_code=204)

    routes = [
        Route("/", page("index.html", "/"), methods=["GET", "HEAD"]),
        Route("/extension.html", page("extension.html", "/extension.html"), methods=["GET", "HEAD"]),
        *([Route("/resume.html", page("resume.html", "/resume.html"), methods=["GET", "HEAD"])] if resume else []),
        *([Route("/identity.html", page("index.html", "/identity.html", signed_in=True), methods=["GET", "HEAD"])]
          if identity_secret else []),
        # The guide's widget extensions: the chat finalizer (?async=0: a non-async chat, ?provider=0: no cookie
        # provider) and the Web Engagement invitation → media widget hand-over.
        Route("/finalizer.html", page("finalizer.html", "/finalizer.html", knobs=("async", "provider")),
              methods=["GET", "HEAD"]),
        Route("/web-engagement.html", page("web-engagement.html", "/web-engagement.html"), methods=["GET", "HEAD"]),
        Route("/media-widget.html", page("media-widget.html", "/media-widget.html"), methods=["GET", "HEAD"]),
        (Route("/widgets/{path:path}", widget_file, methods=["GET", "HEAD"]) if widgets_root is not None
         else Route("/widgets/cxbus.min.js", widget_script, methods=["GET", "HEAD"])),
        Route("/demo/status.js", demo_status, methods=["GET", "HEAD"]),
        Route("/favicon.ico", no_favicon, methods=["GET", "HEAD"]),
        *chat.routes(CHAT_DATA_URL),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = chat
    app.state.sites = [site.origin for site in known]
    return app


def _widgets_root(widgets_dir: Path) -> Path:
    root = Path(widgets_dir).resolve()
    if not (root / "cxbus.min.js").is_file():
        raise ValueError(f"widgets_dir {str(widgets_dir)!r} holds no cxbus.min.js: pass the folder of a Genesys "
                         "Widgets copy (cxbus.min.js, plugins/, widgets.min.css, i18n/)")
    return root


def _widget_file(root: Path, path: str) -> Path | None:
    """The file at `path` under `root`, if it is a plain, visible file of a served type; else None."""
    parts = path.split("/")
    if any(not part or part.startswith(".") or "\\" in part or "\0" in part or ":" in part for part in parts):
        return None
    candidate = root.joinpath(*parts)
    if candidate.suffix.lower() not in WIDGET_TYPES:
        return None
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return resolved if resolved.is_relative_to(root) and resolved.is_file() else None
