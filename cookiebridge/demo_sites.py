"""The demo customer sites (domain-a, domain-b, ...) and an in-memory chat emulator they share.

One Starlette app is served on every site origin: each page works out which site it is from the Host header and
links to the others. The pages are the Genesys guide's own samples; the widget they load is a test double
(`static/demo/widgets-double.js`) that talks to `ChatEmulator`, a small stand-in for the Digital Channels
Consumer Messaging API. Nothing here is used by the bridge itself.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Sequence
from urllib.parse import urlencode, urlsplit

import anyio
import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .identity import sign_identity
from .origins import DEFAULT_PORTS, normalise_origin
from .resources import resource_dir

DEFAULT_COOKIE_NAME = "customer-defined-session-cookie"
SYSTEM_PARTICIPANT = "00000000-0000-0000-0000-000000000000"
INTERACTION_STATES = ("Active", "Finalizing", "Completed")
# The pages' Genesys Widgets transport (type "pureengage-v3-rest"): the chat emulator's dataURL on every site, the
# endpoint (service) name and the x-api-key it checks.
CHAT_DATA_URL = "/genesys/chat/v3/customer-support"
CHAT_ENDPOINT = "customer-support"
CHAT_API_KEY = "demo-api-key"
GREETING = "Agent (simulated): hello! How can I help you today?"

MAX_BODY = 16 * 1024
MAX_TEXT = 4000
MAX_SESSIONS = 1000
MAX_MESSAGES = 500
_INDEX = re.compile(r"^(\d{1,16})-(\d{1,9})$")
_NO_STORE = {"Cache-Control": "no-store"}
SITE_HUES = (215, 150, 280, 25, 345)  # page accent per site, so screenshots tell domain-a from domain-b


class ChatError(Exception):
    """An emulator error answered as `{"status": {"code": code, "message": ...}}` with `http_status`."""

    def __init__(self, http_status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code


@dataclass
class _Session:
    id: str
    customer_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    agent_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    messages: list[dict[str, Any]] = field(default_factory=list)
    pending: list[tuple[float, str]] = field(default_factory=list)  # (due time, agent text): replies "typing"
    ended: bool = False


def _parse_index(index: str) -> tuple[int, int]:
    match = _INDEX.match(index)
    if not match:
        raise ChatError(400, "BAD_REQUEST", "index must be a message index such as '1625826338845-0'")
    return int(match.group(1)), int(match.group(2))


class ChatEmulator:
    """Sessions and messages in memory, shaped like the Consumer Messaging API's `GET .../messages` answer.

    The simulated agent answers each customer message `reply_delay` seconds later; replies are delivered
    lazily (when someone reads), so the emulator needs no background task and works from any event loop or
    thread. A `GET` with `index` waits up to `long_poll` seconds for something newer.
    """

    def __init__(self, *, reply_delay: float = 0.6, long_poll: float = 0.8, greeting: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.reply_delay = reply_delay
        self.long_poll = long_poll
        self.greeting = greeting
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._last_index = (0, 0)

    # -- model ---------------------------------------------------------------------------------------------

    def _next_index(self) -> str:
        # Redis-stream style "<ms>-<seq>", strictly increasing even within one millisecond.
        now = int(time.time() * 1000)
        last_ms, last_seq = self._last_index
        self._last_index = (now, 0) if now > last_ms else (last_ms, last_seq + 1)
        return "%d-%d" % self._last_index

    def _append(self, session: _Session, kind: str, sender: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        index = self._next_index()
        message = {
            "type": kind,
            "from": sender,
            "visibility": "All",
            "id": str(uuid.uuid4()),
            **body,  # "event" and "data" for System messages, "text" for Text ones
            "utcTime": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "streamId": index,
            "index": index,
        }
        session.messages.append(message)
        return message

    def _text(self, session: _Session, sender: str, text: str) -> dict[str, Any]:
        participant = session.customer_id if sender == "Customer" else session.agent_id
        return self._append(session, "Text", {"participantId": participant, "type": sender}, {"text": text})

    def _deliver_due(self, session: _Session) -> None:
        now = self._clock()
        while session.pending and session.pending[0][0] <= now:
            _, text = session.pending.pop(0)
            if not session.ended:
                self._text(session, "Agent", text)

    def _session(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise ChatError(404, "NOT_FOUND", "chat session not found")
        self._deliver_due(session)
        return session

    def _writable(self, session_id: str) -> _Session:
        session = self._session(session_id)
        if session.ended:
            raise ChatError(409, "CHAT_ENDED", "the chat session has ended")
        if len(session.messages) >= MAX_MESSAGES:
            raise ChatError(429, "TOO_MANY_MESSAGES", f"a demo chat holds at most {MAX_MESSAGES} messages")
        return session

    # -- operations ----------------------------------------------------------------------------------------

    def create_session(self) -> str:
        with self._lock:
            while len(self._sessions) >= MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]  # oldest first
            session = _Session(id=str(uuid.uuid4()))
            self._sessions[session.id] = session
            if self.greeting:
                self._text(session, "Agent", GREETING)
            return session.id

    def messages(self, session_id: str, index: str | None = None) -> dict[str, Any]:
        """The `data` part of the messages answer: everything, or only the messages after `index`."""
        after = _parse_index(index) if index is not None else None
        with self._lock:
            session = self._session(session_id)
            found = [m for m in session.messages if after is None or _parse_index(m["index"]) > after]
            last = found[-1]["index"] if found else index
            return {"messages": copy.deepcopy(found), "lastDeliveredIndex": last,
                    "chatEnded": session.ended}

    def customer_message(self, session_id: str, text: str) -> dict[str, Any]:
        with self._lock:
            session = self._writable(session_id)
            message = self._text(session, "Customer", text)
            session.pending.append((self._clock() + self.reply_delay, f"Agent (simulated): you said \u201c{text}\u201d"))
            return message

    def agent_action(self, session_id: str, text: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        """Test/demo control: the agent sends `text` and/or the interaction moves to `state`."""
        with self._lock:
            session = self._writable(session_id)
            added = []
            if text is not None:
                added.append(self._text(session, "Agent", text))
            if state is not None:
                system = {"participantId": SYSTEM_PARTICIPANT, "type": "System"}
                body = {"event": "InteractionStateChange", "data": {"interactionState": state}}
                added.append(self._append(session, "System", system, body))
            return added

    def end(self, session_id: str) -> None:
        with self._lock:
            session = self._session(session_id)
            session.ended = True
            session.pending.clear()

    # -- HTTP ----------------------------------------------------------------------------------------------

    def routes(self, prefix: str = "/chat/sessions") -> list[Route]:
        return [
            Route(prefix, self._create, methods=["POST"]),
            Route(prefix + "/{session_id}/messages", self._get_messages, methods=["GET"]),
            Route(prefix + "/{session_id}/messages", self._post_message, methods=["POST"]),
            Route(prefix + "/{session_id}/agent", self._post_agent, methods=["POST"]),
            Route(prefix + "/{session_id}/end", self._post_end, methods=["POST"]),
        ]

    async def _create(self, request: Request) -> Response:
        async def run() -> Response:
            await _json_body(request, optional=True)
            session_id = self.create_session()
            return _success({"sessionId": session_id}, sessionId=session_id)
        return await _answer(run)

    async def _get_messages(self, request: Request) -> Response:
        async def run() -> Response:
            session_id = request.path_params["session_id"]
            index = request.query_params.get("index")
            data = self.messages(session_id, index)
            deadline = time.monotonic() + self.long_poll
            # Long poll: with an index, wait (briefly) for something newer or for the chat to end.
            while index is not None and not data["messages"] and not data["chatEnded"] and time.monotonic() < deadline:
                await anyio.sleep(0.05)
                data = self.messages(session_id, index)
            return _success(data)
        return await _answer(run)

    async def _post_message(self, request: Request) -> Response:
        async def run() -> Response:
            body = await _json_body(request)
            message = self.customer_message(request.path_params["session_id"], _text_field(body, "text"))
            return _success({"messages": [message]})
        return await _answer(run)

    async def _post_agent(self, request: Request) -> Response:
        async def run() -> Response:
            body = await _json_body(request)
            text = _text_field(body, "text") if "text" in body else None
            state = body.get("interactionState")
            if state is not None and state not in INTERACTION_STATES:
                raise ChatError(400, "BAD_REQUEST", f"interactionState must be one of {', '.join(INTERACTION_STATES)}")
            if text is None and state is None:
                raise ChatError(400, "BAD_REQUEST", "send 'text' and/or 'interactionState'")
            return _success({"messages": self.agent_action(request.path_params["session_id"], text, state)})
        return await _answer(run)

    async def _post_end(self, request: Request) -> Response:
        async def run() -> Response:
            self.end(request.path_params["session_id"])
            return _success({"chatEnded": True})
        return await _answer(run)


def _envelope(status: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"status": status, **extra, "operationId": str(uuid.uuid4()), "referenceId": str(uuid.uuid4())}


def _success(data: dict[str, Any], **top: Any) -> JSONResponse:
    return JSONResponse(_envelope({"code": "SUCCESS"}, data=data, **top), headers=_NO_STORE)


async def _answer(handler: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await handler()
    except ChatError as error:
        body = _envelope({"code": error.code, "message": str(error)})
        return JSONResponse(body, status_code=error.http_status, headers=_NO_STORE)


async def _json_body(request: Request, optional: bool = False) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ChatError(413, "PAYLOAD_TOO_LARGE", f"request bodies are limited to {MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ChatError(413, "PAYLOAD_TOO_LARGE", f"request bodies are limited to {MAX_BODY} bytes")
    if optional and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ChatError(400, "BAD_REQUEST", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ChatError(400, "BAD_REQUEST", "the request body must be a JSON object")
    return body


def _text_field(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ChatError(400, "BAD_REQUEST", f"'{key}' must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise ChatError(400, "BAD_REQUEST", f"'{key}' is limited to {MAX_TEXT} characters")
    return value


# -- the sites -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Site:
    origin: str  # https://127.0.0.2:8443
    host: str  # 127.0.0.2:8443, as in the Host header


def _site(value: str) -> _Site:
    origin = normalise_origin(value)
    return _Site(origin=origin, host=urlsplit(origin).netloc)


def _request_host(request: Request) -> str:
    host = request.headers.get("host", "").lower()
    default = ":%d" % DEFAULT_PORTS.get(request.url.scheme, 0)
    return host[: -len(default)] if host.endswith(default) else host


def create_demo_app(*, bridge_url: str, sites: Sequence[str], cookie_name: str = DEFAULT_COOKIE_NAME,
                    emulator: ChatEmulator | None = None, identity_secret: str | None = None,
                    identity_audience: str = "cookiebridge", provider_url: str | None = None) -> Starlette:
    """The demo customer sites. Serve the same app on every origin in `sites` (e.g. https://127.0.0.2:8443 and
    https://127.0.0.3:8443); `bridge_url` is the bridge origin serving iframe.html and cookie-provider.min.js.
    With `identity_secret` (the bridge's), /identity.html?customer=ID plays a site whose backend signs the id.
    `provider_url`: where the pages load cookie-provider.min.js from, if not the bridge (a self-hosted copy).
    /finalizer.html, /web-engagement.html and /media-widget.html load the widget-extension scripts from the bridge."""
    bridge = urlsplit(bridge_url)
    if bridge.scheme not in ("http", "https") or not bridge.netloc:
        raise ValueError(f"bridge_url {bridge_url!r} must be an http(s) URL such as 'https://127.0.0.1:8000'")
    if not cookie_name:
        raise ValueError("cookie_name must not be empty")
    base = bridge_url.rstrip("/")
    known = [_site(value) for value in sites]
    chat = emulator or ChatEmulator()
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_dir("templates") / "demo"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    widget = (resource_dir("static") / "demo" / "widgets-double.js").read_bytes()

    def page(template: str, target_path: str, signed_in: bool = False,
             knobs: Sequence[str] = ()) -> Callable[[Request], Any]:
        """`knobs`: query flags the page reads (`?async=0` turns one off); links to the other sites keep them."""
        async def endpoint(request: Request) -> Response:
            host = _request_host(request)
            token, path = None, target_path
            if signed_in:
                customer = request.query_params.get("customer", "demo-customer")[:64] or "demo-customer"
                # What the site's own backend does: sign the signed-in customer's id for the bridge.
                token = sign_identity(customer, identity_secret or "", audience=identity_audience, ttl=3600)
                path = f"{target_path}?{urlencode({'customer': customer})}"
            flags = {knob: request.query_params.get(knob) != "0" for knob in knobs}
            off = {knob: "0" for knob, on in flags.items() if not on}
            if off:
                path = f"{target_path}?{urlencode(off)}"
            others = [site for site in known if site.host != host]
            position = next((i for i, site in enumerate(known) if site.host == host), None)
            html = templates.get_template(template).render(
                site_name=host or "demo site",
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
                web_engagement_url=base + "/web-engagement.min.js",
                flags=flags,
                others=[{"name": site.host, "href": site.origin + "/", "target": site.origin + path}
                        for site in others],
            )
            return HTMLResponse(html, headers=_NO_STORE)
        return endpoint

    async def widget_script(request: Request) -> Response:
        return Response(widget, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})

    async def no_favicon(request: Request) -> Response:
        return Response(status_code=204)

    routes = [
        Route("/", page("index.html", "/"), methods=["GET", "HEAD"]),
        Route("/extension.html", page("extension.html", "/extension.html"), methods=["GET", "HEAD"]),
        *([Route("/identity.html", page("index.html", "/identity.html", signed_in=True), methods=["GET", "HEAD"])]
          if identity_secret else []),
        # The guide's widget extensions: the chat finalizer (?async=0: a non-async chat, ?provider=0: no cookie
        # provider) and the Web Engagement invitation → media widget hand-over.
        Route("/finalizer.html", page("finalizer.html", "/finalizer.html", knobs=("async", "provider")),
              methods=["GET", "HEAD"]),
        Route("/web-engagement.html", page("web-engagement.html", "/web-engagement.html"), methods=["GET", "HEAD"]),
        Route("/media-widget.html", page("media-widget.html", "/media-widget.html"), methods=["GET", "HEAD"]),
        Route("/widgets/cxbus.min.js", widget_script, methods=["GET", "HEAD"]),
        Route("/favicon.ico", no_favicon, methods=["GET", "HEAD"]),
        *chat.routes(),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = chat
    app.state.sites = [site.origin for site in known]
    return app
