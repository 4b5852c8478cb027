"""An in-memory stand-in for the Genesys Digital Channels chat API, as the Genesys Widgets `pureengage-v3-rest`
transport calls it: start and restore with a JWT `clientToken`, a held long poll per token, count/index queries,
Text and typing posts, leaving, user data, and a control route that plays the agent (for the demo and the tests).

Demo only: nothing here is used by the bridge. Agent replies are delivered lazily, when someone reads the session,
so the server needs no background task and works from any event loop or thread (state sits behind one lock).
"""

from __future__ import annotations

import base64
import bisect
import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CHAT_ENDPOINT = "customer-support"
CHAT_API_KEY = "demo-api-key"
GREETING = "Agent (simulated): hello! How can I help you today?"
SYSTEM_PARTICIPANT = "00000000-0000-0000-0000-000000000000"
INTERACTION_STATES = ("Active", "Finalizing", "Completed")
SEND_TYPES = ("Text", "TypingStarted", "TypingStopped")
START_FIELDS = ("firstName", "lastName", "nickname", "email", "subject")

MAX_BODY = 16 * 1024
MAX_TEXT = 4000
MAX_FIELD = 256  # names, e-mail, subject
MAX_SESSIONS = 1000
MAX_MESSAGES = 500
MAX_TOKENS = 64  # poll cursors kept per session; a token whose cursor was dropped starts again from the beginning
MAX_HELD_POLLS = 64  # polls waiting at once; further polls are answered at once instead of held
MAX_FORM_FIELDS = 200
MAX_FORM_DEPTH = 6
MAX_TOKEN = 2048
POLL_STEP = 0.05  # how often a held poll looks again

_INDEX = re.compile(r"^([0-9]{1,15})-([0-9])$")
_BARE_INDEX = re.compile(r"^[0-9]{2,16}$")  # the widget's own form: the index with its dash removed
_COUNT = re.compile(r"^[0-9]{1,9}$")
_FORM_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_OPERATION_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_KNOWN_PATH = re.compile(r"^/?$|^/[^/]+/(messages|userdata|agent|images|participants/[^/]+)$")
_CORS = {"Access-Control-Allow-Origin": "*"}
_PREFLIGHT = {
    **_CORS,
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "x-api-key, x-nexus-client-key, content-type",
    "Access-Control-Max-Age": "600",
}
_HEADERS = {**_CORS, "Cache-Control": "no-store"}


class ChatError(Exception):
    """Answered as `{"status": {"code": code, "message": ...}}` with `http_status`."""

    def __init__(self, http_status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code


def _bad(message: str) -> ChatError:
    return ChatError(400, "BAD_REQUEST", message)


def _invalid(message: str, http_status: int = 404) -> ChatError:
    return ChatError(http_status, "INVALID_SESSION", message)


@dataclass
class _Session:
    id: str
    nickname: str
    customer_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    agent_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    messages: list[dict[str, Any]] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)  # each message's index ms, in order
    pending: list[tuple[float, str]] = field(default_factory=list)  # (due on the clock, agent text)
    cursors: OrderedDict[str, int] = field(default_factory=OrderedDict)  # token jti -> ms of the last delivered
    user_data: dict[str, Any] = field(default_factory=dict)
    ended: bool = False


@dataclass(frozen=True)
class _Token:
    session_id: str
    participant_id: str
    jti: str


# -- encoding helpers -----------------------------------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _utc(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_index(value: str) -> int:
    """The ms of a message index: `"1700000000000-0"`, or the widget's dash-less `"17000000000000"`."""
    match = _INDEX.match(value)
    if match:
        return int(match.group(1))
    if _BARE_INDEX.match(value):
        return int(value) // 10  # the sequence digit is always 0 here
    raise _bad(f"index {value[:40]!r} is not a message index: use one such as '1700000000000-0'")


def _parse_count(value: str) -> int:
    if not _COUNT.match(value) or int(value) < 1:
        raise _bad(f"count {value[:40]!r} is not a positive whole number: use one such as 20")
    return int(value)


# -- request bodies -------------------------------------------------------------------------------------------


def parse_form(text: str) -> dict[str, Any]:
    """A jQuery `$.param` body as a nested dict: `data[userData][x]=1` → `{"data": {"userData": {"x": "1"}}}`."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="strict")
    except ValueError as error:  # too many fields, or percent-escapes that are not UTF-8
        raise _bad(f"the form body is not readable ({error}): send at most {MAX_FORM_FIELDS} UTF-8 fields") from None
    tree: dict[str, Any] = {}
    for key, value in pairs:
        match = _FORM_KEY.match(key)
        if not match:
            raise _bad(f"form field {key[:60]!r} is not a name such as data[type]")
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        if len(path) > MAX_FORM_DEPTH:
            raise _bad(f"form field {key[:60]!r} nests deeper than {MAX_FORM_DEPTH} levels")
        _assign(tree, path, value, key)
    return tree


def _assign(tree: dict[str, Any], path: list[str], value: str, key: str) -> None:
    append = len(path) > 1 and path[-1] == ""  # `a[]=1&a[]=2`: a list of values
    if append:
        path = path[:-1]
    if "" in path:
        raise _bad(f"form field {key[:60]!r} has [] before its end: name the items, as in a[0][b]")
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise _bad(f"form field {key[:60]!r} is both a value and a group of fields")
        node = child
    last = path[-1]
    if append:
        items = node.setdefault(last, [])
        if not isinstance(items, list):
            raise _bad(f"form field {key[:60]!r} mixes a list with other values")
        items.append(value)
    elif last in node and not isinstance(node[last], str):
        raise _bad(f"form field {key[:60]!r} is both a value and a group of fields")
    else:
        node[last] = value


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if re.fullmatch(r"[0-9]+", declared) and int(declared) > MAX_BODY:
        raise ChatError(413, "PAYLOAD_TOO_LARGE", f"request bodies are limited to {MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ChatError(413, "PAYLOAD_TOO_LARGE", f"request bodies are limited to {MAX_BODY} bytes")
    return raw


def parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """A form or JSON body as a dict; the content type decides, else the first character."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("the request body is not UTF-8 text") from None
    if not text.strip():
        return {}
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" or (kind != "application/x-www-form-urlencoded" and text.lstrip()[:1] == "{"):
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):
            raise _bad("the request body is not valid JSON: send an object such as {\"data\": {...}}") from None
        if not isinstance(body, dict):
            raise _bad("the JSON body must be an object such as {\"data\": {...}}")
        return body
    return parse_form(text)


def _data(body: dict[str, Any]) -> dict[str, Any]:
    """The request's fields: `body["data"]`, or the body itself when it is flat."""
    if "data" not in body:
        return {key: value for key, value in body.items() if key != "operationId"}
    if not isinstance(body["data"], dict):
        raise _bad("'data' must be a group of fields, such as data[type]=Text or {\"data\": {\"type\": \"Text\"}}")
    return body["data"]


def _string(data: dict[str, Any], key: str, limit: int = MAX_FIELD, default: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise _bad(f"data[{key}] must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise _bad(f"data[{key}] is limited to {limit} characters")
    return value


def _operation_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _OPERATION_ID.match(value) else None


# -- the server -----------------------------------------------------------------------------------------------


class ChatServer:
    """Sessions, tokens and messages in memory; `routes(prefix)` mounts the HTTP API at a widget's dataURL.

    `reply_delay`: seconds (on `clock`) before the simulated agent answers a customer Text. `long_poll`: seconds a
    poll waits for something new. `greeting`: whether the agent greets each new chat.
    """

    def __init__(self, *, reply_delay: float = 0.6, long_poll: float = 0.8, greeting: bool = True,
                 clock: Callable[[], float] = time.monotonic, api_key: str = CHAT_API_KEY,
                 endpoint: str = CHAT_ENDPOINT) -> None:
        self.reply_delay = reply_delay
        self.long_poll = long_poll
        self.greeting = greeting
        self.api_key = api_key
        self.endpoint = endpoint
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()
        self._last_ms = 0
        self._held = 0

    # -- tokens ----------------------------------------------------------------------------------------------

    def _sign(self, session: _Session) -> str:
        header = _b64url(_compact({"alg": "HS256", "typ": "JWT"}))
        jti = uuid.uuid4().hex
        # Compact JSON of ids, hex and digits has no '>', '?' or '~', so its base64url needs no '-' or '_' and
        # the widget's plain atob() can read the payload.
        payload = _b64url(_compact({"sessionId": session.id, "participantId": session.customer_id, "jti": jti,
                                    "iat": int(time.time())}))
        signature = hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        self._cursor(session, jti)
        return f"{header}.{payload}.{_b64url(signature)}"

    def _verify(self, token: str) -> _Token | None:
        parts = token.split(".")
        if len(token) > MAX_TOKEN or len(parts) != 3 or not all(_B64URL.match(part) for part in parts):
            return None
        expected = hmac.new(self._secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(_unb64url(parts[2]), expected):
                return None
            payload = json.loads(_unb64url(parts[1]))
        except ValueError:
            return None
        fields = [payload.get(key) for key in ("sessionId", "participantId", "jti")]
        if not all(isinstance(value, str) for value in fields):
            return None
        return _Token(*fields)

    def _cursor(self, session: _Session, jti: str) -> int:
        if jti not in session.cursors:
            while len(session.cursors) >= MAX_TOKENS:
                session.cursors.popitem(last=False)
            session.cursors[jti] = 0
        session.cursors.move_to_end(jti)
        return session.cursors[jti]

    # -- model -----------------------------------------------------------------------------------------------

    def _next_ms(self) -> int:
        # Strictly increasing across the server, even within one millisecond or if the wall clock steps back.
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    def _append(self, session: _Session, kind: str, sender: str, **body: Any) -> dict[str, Any]:
        participant = {"Customer": session.customer_id, "Agent": session.agent_id}.get(sender, SYSTEM_PARTICIPANT)
        nickname = {"Customer": session.nickname, "Agent": "Agent"}.get(sender, "System")
        ms = self._next_ms()
        index = f"{ms}-0"
        message = {
            "type": kind,
            "from": {"participantId": participant, "type": sender, "nickname": nickname},
            "index": index,
            "streamId": index,
            "utcTime": _utc(ms),
            "visibility": "All",
            **body,  # "text", or "event" and "data" for System messages
        }
        session.messages.append(message)
        session.stamps.append(ms)
        return message

    def _state(self, session: _Session, state: str) -> dict[str, Any]:
        return self._append(session, "System", "System", event="InteractionStateChange",
                            data={"interactionState": state})

    def _deliver_due(self, session: _Session) -> None:
        now = self._clock()
        while session.pending and session.pending[0][0] <= now:
            _, text = session.pending.pop(0)
            if not session.ended and len(session.messages) < MAX_MESSAGES:
                self._append(session, "Text", "Agent", text=text)

    def _session(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise _invalid(f"chat session {session_id[:40]!r} is unknown or has expired: start a new chat")
        self._deliver_due(session)
        return session

    def _authorised(self, session_id: str, token: str | None) -> tuple[_Session, _Token]:
        claims = self._verify(token) if token else None
        if claims is None or claims.session_id != session_id:
            raise _invalid("the x-nexus-client-key header is not a token of this chat session: start or restore the "
                           "chat first")
        return self._session(session_id), claims

    def _new_session(self, nickname: str, user_data: dict[str, Any]) -> _Session:
        while len(self._sessions) >= MAX_SESSIONS:
            ended = next((key for key, old in self._sessions.items() if old.ended), None)
            del self._sessions[ended if ended is not None else next(iter(self._sessions))]
        session = _Session(id=str(uuid.uuid4()), nickname=nickname, user_data=user_data)
        self._sessions[session.id] = session
        self._append(session, "ParticipantJoined", "Customer")
        self._append(session, "ParticipantJoined", "Agent")
        self._state(session, "Active")
        if self.greeting:
            self._append(session, "Text", "Agent", text=GREETING)
        return session

    @staticmethod
    def _started(session: _Session, token: str) -> dict[str, Any]:
        return {"clientToken": token, "sessionId": session.id, "participantId": session.customer_id}

    @staticmethod
    def _after(session: _Session, ms: int) -> list[dict[str, Any]]:
        return session.messages[bisect.bisect_right(session.stamps, ms):]

    # -- operations (also the Python API of the tests and the e2e harness) -----------------------------------

    def start(self, first_name: str = "", *, nickname: str = "", user_data: dict[str, Any] | None = None
              ) -> dict[str, Any]:
        """A new chat: `{"clientToken", "sessionId", "participantId"}` as the start request answers it."""
        with self._lock:
            session = self._new_session(first_name or nickname or "Customer", dict(user_data or {}))
            return self._started(session, self._sign(session))

    def restore(self, token: str) -> dict[str, Any]:
        """A fresh token (new jti, new poll cursor) for the live session of `token`; 401 INVALID_SESSION if none."""
        claims = self._verify(token)
        with self._lock:
            session = self._sessions.get(claims.session_id) if claims is not None else None
            if claims is None or session is None or session.ended or claims.participant_id != session.customer_id:
                raise _invalid("the x-nexus-client-key token is not one of a live chat: start a new chat", 401)
            return self._started(session, self._sign(session))

    def poll_once(self, session_id: str, token: str | None) -> dict[str, Any]:
        """What a poll answers now: the messages after this token's cursor, which then moves past them."""
        with self._lock:
            session, claims = self._authorised(session_id, token)
            found = self._after(session, self._cursor(session, claims.jti))
            if found:  # the newest message of the session
                session.cursors[claims.jti] = session.stamps[-1]
            return {"messages": copy.deepcopy(found), "chatEnded": session.ended}

    def query(self, session_id: str, token: str | None, index: str | None, count: str | None) -> dict[str, Any]:
        """`count` alone: the latest N (cursor to the newest); `index` and `count`: up to N at or before I;
        `index` alone: the messages after I (the cursor moves past them)."""
        at = parse_index(index) if index is not None else None
        limit = _parse_count(count) if count is not None else None
        with self._lock:
            session, claims = self._authorised(session_id, token)
            cursor = self._cursor(session, claims.jti)
            if at is None:
                found = session.messages[-limit:] if limit else []
                if session.stamps:
                    session.cursors[claims.jti] = max(cursor, session.stamps[-1])
            elif limit is not None:
                found = session.messages[:bisect.bisect_right(session.stamps, at)][-limit:]
            else:
                found = self._after(session, at)
                if found:
                    session.cursors[claims.jti] = max(cursor, session.stamps[-1])
            return {"messages": copy.deepcopy(found), "chatEnded": session.ended}

    def send(self, session_id: str, token: str | None, kind: str, text: str) -> dict[str, Any]:
        """The customer's Text (answered by the agent `reply_delay` later) or typing notice (not stored)."""
        with self._lock:
            session, _ = self._authorised(session_id, token)
            if session.ended or kind != "Text":
                return {"chatEnded": session.ended}
            if len(session.messages) >= MAX_MESSAGES:
                raise ChatError(429, "TOO_MANY_MESSAGES", f"a demo chat holds at most {MAX_MESSAGES} messages: "
                                "start a new chat")
            self._append(session, "Text", "Customer", text=text)
            session.pending.append((self._clock() + self.reply_delay,
                                    f"Agent (simulated): you said \u201c{text}\u201d"))
            return {"chatEnded": False}

    def leave(self, session_id: str, token: str | None, participant_id: str) -> dict[str, Any]:
        """The customer ends the chat (their ParticipantLeft); ending an ended chat again changes nothing."""
        with self._lock:
            session, claims = self._authorised(session_id, token)
            if participant_id != claims.participant_id:
                raise _invalid(f"participant {participant_id[:40]!r} is not the one of this token: use the "
                               "participantId of the clientToken")
            if not session.ended:
                self._append(session, "ParticipantLeft", "Customer")
                session.ended = True
                session.pending.clear()
            return {"chatEnded": True}

    def update_user_data(self, session_id: str, token: str | None, data: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            session, _ = self._authorised(session_id, token)
            merged = {**session.user_data, **data}
            if len(_compact(merged)) > MAX_BODY:
                raise ChatError(413, "PAYLOAD_TOO_LARGE", f"a chat's user data is limited to {MAX_BODY} bytes")
            session.user_data = merged
            return {}

    def agent(self, session_id: str, text: str | None = None, state: str | None = None,
              end: bool = False) -> list[dict[str, Any]]:
        """Play the agent: send `text`, move the interaction to `state`, and/or `end` the chat (agent leaves)."""
        if state is not None and state not in INTERACTION_STATES:
            raise _bad(f"interactionState {str(state)[:40]!r} is unknown: use one of {', '.join(INTERACTION_STATES)}")
        with self._lock:
            session = self._session(session_id)
            if session.ended:
                raise ChatError(409, "CHAT_ENDED", "the chat has ended: start a new chat")
            if len(session.messages) >= MAX_MESSAGES and (text is not None or state is not None):
                raise ChatError(429, "TOO_MANY_MESSAGES", f"a demo chat holds at most {MAX_MESSAGES} messages")
            added = []
            if text is not None:
                added.append(self._append(session, "Text", "Agent", text=text))
            if state is not None:
                added.append(self._state(session, state))
            if end:
                added.append(self._append(session, "ParticipantLeft", "Agent"))
                session.ended = True
                session.pending.clear()
            return copy.deepcopy(added)

    def session_ids(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def messages(self, session_id: str) -> list[dict[str, Any]]:
        """Every message of the session (due agent replies included), oldest first."""
        with self._lock:
            return copy.deepcopy(self._session(session_id).messages)

    def is_ended(self, session_id: str) -> bool:
        with self._lock:
            return self._session(session_id).ended

    def user_data(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._session(session_id).user_data)

    @property
    def held_polls(self) -> int:
        return self._held

    # -- HTTP ------------------------------------------------------------------------------------------------

    def routes(self, prefix: str) -> list[Route]:
        """The API at `prefix` (the widget's dataURL, e.g. "/genesys/chat/v3/customer-support")."""
        prefix = prefix.rstrip("/")
        return [
            Route(prefix, self._post_start, methods=["POST"]),
            Route(prefix + "/{session_id}/messages", self._get_messages, methods=["GET"]),
            Route(prefix + "/{session_id}/messages", self._post_message, methods=["POST"]),
            Route(prefix + "/{session_id}/participants/{participant_id}", self._delete_participant,
                  methods=["DELETE"]),
            Route(prefix + "/{session_id}/userdata", self._put_user_data, methods=["PUT"]),
            Route(prefix + "/{session_id}/agent", self._post_agent, methods=["POST"]),
            Route(prefix + "/{session_id}/images", self._post_images, methods=["POST"]),
            Route(prefix, self._other, methods=["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]),
            Route(prefix + "/{rest:path}", self._other,
                  methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        ]

    async def _serve(self, request: Request, action: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
                     *, widget: bool = True, read_body: bool = True) -> Response:
        operation = _operation_id(request.query_params.get("operationId"))
        try:
            if widget and not hmac.compare_digest(request.headers.get("x-api-key", "").encode(),
                                                  self.api_key.encode()):
                raise ChatError(401, "UNAUTHORIZED", "the x-api-key header is missing or wrong: send the "
                                "transport's x-api-key")
            body: dict[str, Any] = {}
            if read_body and request.method != "GET":
                body = parse_body(await _read_body(request), request.headers.get("content-type", ""))
                operation = _operation_id(body.get("operationId")) or operation
            data = await action(body)
        except ChatError as error:
            return _envelope({"code": error.code, "message": str(error)}, {}, operation, error.http_status)
        return _envelope({"code": "SUCCESS"}, data, operation)

    async def _post_start(self, request: Request) -> Response:
        async def run(body: dict[str, Any]) -> dict[str, Any]:
            data = _data(body)
            token = request.headers.get("x-nexus-client-key", "")
            # The widget also sends the page's stale token when it starts a new chat (its pre-chat form fields
            # tell a start from a restore), so only a POST without them restores.
            if token and not any(key in data for key in START_FIELDS):
                return self.restore(token)
            names = {key: _string(data, key) for key in START_FIELDS}
            endpoint = _string(data, "endpoint")
            if endpoint and endpoint != self.endpoint:
                raise _bad(f"data[endpoint] {endpoint[:40]!r} is not served here: use {self.endpoint!r}")
            user_data = data.get("userData", {})
            if not isinstance(user_data, dict):
                raise _bad("data[userData] must be a group of fields such as data[userData][key]=value")
            return self.start(names["firstName"].strip(), nickname=names["nickname"].strip(), user_data=user_data)
        return await self._serve(request, run)

    async def _get_messages(self, request: Request) -> Response:
        async def run(body: dict[str, Any]) -> dict[str, Any]:
            session_id = request.path_params["session_id"]
            token = request.headers.get("x-nexus-client-key")
            index, count = request.query_params.get("index"), request.query_params.get("count")
            if index is not None or count is not None:
                return self.query(session_id, token, index, count)
            return await self._held_poll(session_id, token)
        return await self._serve(request, run)

    async def _held_poll(self, session_id: str, token: str | None) -> dict[str, Any]:
        data = self.poll_once(session_id, token)
        if data["messages"] or data["chatEnded"] or self.long_poll <= 0:
            return data
        with self._lock:
            if self._held >= MAX_HELD_POLLS:
                return data
            self._held += 1
        try:
            deadline = time.monotonic() + self.long_poll
            while not data["messages"] and not data["chatEnded"]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await anyio.sleep(min(POLL_STEP, remaining))
                data = self.poll_once(session_id, token)
            return data
        finally:
            with self._lock:
                self._held -= 1

    async def _post_message(self, request: Request) -> Response:
        async def run(body: dict[str, Any]) -> dict[str, Any]:
            data = _data(body)
            kind = _string(data, "type", default="Text")
            if kind not in SEND_TYPES:
                raise _bad(f"data[type] {kind[:40]!r} is not supported: use one of {', '.join(SEND_TYPES)}")
            text = _string(data, "text", MAX_TEXT)
            if kind == "Text" and not text.strip():
                raise _bad("data[text] must not be empty for a Text message")
            return self.send(request.path_params["session_id"], request.headers.get("x-nexus-client-key"), kind,
                             text)
        return await self._serve(request, run)

    async def _delete_participant(self, request: Request) -> Response:
        async def run(body: dict[str, Any]) -> dict[str, Any]:
            return self.leave(request.path_params["session_id"], request.headers.get("x-nexus-client-key"),
                              request.path_params["participant_id"])
        return await self._serve(request, run)

    async def _put_user_data(self, request: Request) -> Response:
        async def run(body: dict[str, Any]) -> dict[str, Any]:
            return self.update_user_data(request.path_params["session_id"],
                                         request.headers.get("x-nexus-client-key"), _data(body))
        return await self._serve(request, run)

    async def _post_agent(self, request: Request) -> Response:
        async def run(body: dict[str, Any]) -> dict[str, Any]:
            text = body.get("text")
            if text is not None:
                text = _string(body, "text", MAX_TEXT)
                if not text.strip():
                    raise _bad("text must not be empty: leave it out to send no message")
            state = body.get("interactionState")
            if state is not None and not isinstance(state, str):
                raise _bad("interactionState must be a string such as \"Finalizing\"")
            end = body.get("end", False)
            if end not in (True, False, "true", "false"):
                raise _bad("end must be true or false")
            end = end in (True, "true")
            if text is None and state is None and not end:
                raise _bad("send 'text', 'interactionState' and/or 'end': true")
            return {"messages": self.agent(request.path_params["session_id"], text, state, end)}
        return await self._serve(request, run, widget=False)

    async def _post_images(self, request: Request) -> Response:
        async def run(body: dict[str, Any]) -> dict[str, Any]:
            with self._lock:
                self._authorised(request.path_params["session_id"], request.headers.get("x-nexus-client-key"))
            # Not a 404: the widget would take that for a lost session.
            raise ChatError(501, "NOT_IMPLEMENTED", "the demo chat server does not take file uploads: send text")
        return await self._serve(request, run, read_body=False)

    async def _other(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=_PREFLIGHT)
        rest = "/" + request.path_params.get("rest", "")
        operation = _operation_id(request.query_params.get("operationId"))
        if _KNOWN_PATH.match(rest):
            return _envelope({"code": "METHOD_NOT_ALLOWED", "message": f"{request.method} is not served here"}, {},
                             operation, 405)
        return _envelope({"code": "NOT_FOUND", "message": f"no chat API route at {rest[:80]!r}"}, {}, operation, 404)


def _envelope(status: dict[str, str], data: dict[str, Any], operation: str | None,
              http_status: int = 200) -> JSONResponse:
    body = {"status": status, "data": data, "operationId": operation or str(uuid.uuid4()),
            "referenceId": str(uuid.uuid4())}
    return JSONResponse(body, status_code=http_status, headers=_HEADERS)
