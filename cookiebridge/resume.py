"""Resume through the bridge: a customer who types the other site's address continues an anonymous chat after one
click on a top-level page of the bridge (docs/resume.md; on only with the `resume` setting).

The pieces, each signed with itsdangerous under a salt of its own and the keys handoff codes use:
- the browser id: a random id in the bridge's own first-party cookie (`__Host-cb-resume`), set by GET /resume;
- a resume token, `[id, origin]`: handed to one site's page, which keeps it and uses it for resume/load, save and
  delete, only with requests whose `Origin` is that site;
- a resume code, `[ident, destination, state hash]`: carried once in the fragment of the redirect back to the site,
  naming a short-lived record (the stored value or none, and a token for the destination);
- the form's csrf field, `[id, state hash]`: the click must come from the page the bridge showed to this browser.

Stored sessions are keyed by a hash of the cookie name and the browser id, never by the id itself.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from . import metrics
from .config import Settings
from .errors import (
    BAD_CODE,
    BAD_TOKEN,
    RATE_LIMITED,
    WRONG_DESTINATION,
    WRONG_ORIGIN,
    WRONG_STATE,
    BridgeError,
)
from .handoff import MAX_CODE_LENGTH, is_canonical, open_signed
from .stores import Store

BROWSER_SALT = "cookiebridge.resume-browser.v1"
TOKEN_SALT = "cookiebridge.resume-token.v1"
CODE_SALT = "cookiebridge.resume-code.v1"
FORM_SALT = "cookiebridge.resume-form.v1"
FORM_MAX_AGE = 600
COOKIE = "__Host-cb-resume"
DEV_COOKIE = "cb-resume"  # over plain http (development only): a __Host- cookie must be Secure
MAX_TOKEN_LENGTH = 512
MAX_STATE_LENGTH = 512
MAX_URL_LENGTH = 4096
MAX_FORM = 16 * 1024
FRAGMENT = "#cb-resume="
_STATE_HASH = re.compile(r"[A-Za-z0-9_-]{43}")
# What `to` may hold: printable ASCII without spaces, double quotes, angle brackets or backslashes (browsers send
# location.href percent-encoded, so a real page's address always fits).
_URL = re.compile(r"[!#-;=?-\[\]-~]+")
Limiter = Callable[[Request, str, int], Awaitable[None]]


def state_hash(state: str) -> str:
    """base64url without padding of sha256(state as UTF-8): 43 characters."""
    digest = hashlib.sha256(state.encode("utf-8", "surrogatepass")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def session_key(name: str, browser: str) -> str:
    return "resume:" + hashlib.sha256(f"{name}\0{browser}".encode("utf-8")).hexdigest()


def code_key(ident: str) -> str:
    return f"resume-code:{ident}"


class ResumeSigner:
    """The four signed things of resume, one salt each. `secret_keys`: old keys first, the signing key last."""

    def __init__(self, secret_keys: Sequence[str], *, code_ttl: int, max_age: int) -> None:
        keys = list(secret_keys)
        self.browser = URLSafeTimedSerializer(keys, salt=BROWSER_SALT)
        self.token = URLSafeTimedSerializer(keys, salt=TOKEN_SALT)
        self.code = URLSafeTimedSerializer(keys, salt=CODE_SALT)
        self.form = URLSafeTimedSerializer(keys, salt=FORM_SALT)
        self.code_ttl = code_ttl
        self.max_age = max_age

    # --- the browser id ----------------------------------------------------------------------------------
    def new_browser(self) -> tuple[str, str]:
        """(id, cookie value) of a new browser id."""
        browser = secrets.token_urlsafe(16)
        return browser, self.browser.dumps(browser)

    def browser_id(self, cookie: str | None) -> str | None:
        """The id in a cookie value, or None when it is missing, altered or older than resume_max_age."""
        if not cookie or len(cookie) > MAX_TOKEN_LENGTH or not is_canonical(cookie):
            return None
        try:
            browser = self.browser.loads(cookie, max_age=self.max_age)
        except (BadSignature, ValueError, TypeError):  # SignatureExpired is a BadSignature
            return None
        return browser if isinstance(browser, str) else None

    # --- resume tokens -----------------------------------------------------------------------------------
    def issue_token(self, browser: str, origin: str) -> str:
        return self.token.dumps([browser, origin])

    def open_token(self, token: object, origin: str) -> str:
        """The browser id of a token presented by `origin`, or the error to answer with."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or not is_canonical(token):
            raise BridgeError(BAD_TOKEN, "'token' must be the resume token string the bridge handed to this site")
        browser, issued_to = open_signed(self.token, token, self.max_age, items=2,
                                         expired="resume token has expired: resume through the bridge again",
                                         forged="resume token is not one this bridge issued")
        if issued_to != origin:
            raise BridgeError(WRONG_ORIGIN, f"resume token was handed to {issued_to}, not {origin}")
        return str(browser)

    # --- resume codes ------------------------------------------------------------------------------------
    def issue_code(self, destination: str, hashed_state: str) -> tuple[str, str]:
        """(code, store id) of a code that `destination`'s page holding the state behind `hashed_state` redeems."""
        ident = secrets.token_urlsafe(16)
        return self.code.dumps([ident, destination, hashed_state]), ident

    def open_code(self, code: object, origin: str, state: object) -> str:
        """The store id of a code presented by `origin` with `state`, or the error to answer with. A wrong state
        is checked last and consumes nothing: the page that started the resume may still redeem it."""
        if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE_LENGTH:
            raise BridgeError(BAD_CODE, "'code' must be the resume code string from the address")
        ident, destination, hashed_state = open_signed(self.code, code, self.code_ttl, items=3,
                                                       expired="resume code has expired",
                                                       forged="resume code is not one this bridge issued")
        if destination != origin:
            raise BridgeError(WRONG_DESTINATION, f"resume code was issued for {destination}, not {origin}")
        if not isinstance(state, str) or len(state) > MAX_STATE_LENGTH or state_hash(state) != hashed_state:
            raise BridgeError(WRONG_STATE, "the resume code was not started by this page")
        return str(ident)

    # --- the form's csrf field ---------------------------------------------------------------------------
    def csrf(self, browser: str, hashed_state: str) -> str:
        return self.form.dumps([browser, hashed_state])

    def csrf_matches(self, csrf: str, browser: str | None, hashed_state: str) -> bool:
        if browser is None or len(csrf) > MAX_TOKEN_LENGTH:
            return False
        try:
            return bool(self.form.loads(csrf, max_age=FORM_MAX_AGE) == [browser, hashed_state])
        except (BadSignature, ValueError, TypeError):
            return False


async def issue_code(store: Store, signer: ResumeSigner, *, browser: str, name: str, destination: str,
                     hashed_state: str, value: str | None, source: str | None) -> str:
    """A resume code for `destination`, its record stored: the value (or none) and a token for the destination."""
    code, ident = signer.issue_code(destination, hashed_state)
    record = {"name": name, "value": value, "from": source, "token": signer.issue_token(browser, destination)}
    await store.put(code_key(ident), json.dumps(record).encode("utf-8"), signer.code_ttl)
    return code


# --- the top-level pages ----------------------------------------------------------------------------------------

_STYLE = ("body{font:1.125rem/1.5 system-ui,sans-serif;margin:0;padding:2rem 1rem;color:#1a1a1a;background:#fff}"
          "main{max-width:32rem;margin:auto}h1{font-size:1.5rem;line-height:1.25}"
          "button{font:inherit;padding:.6rem 1.2rem;margin:0 .75rem .75rem 0;border:2px solid #1a1a1a;"
          "border-radius:.375rem;background:#fff;color:#1a1a1a;cursor:pointer}"
          "#cb-continue{background:#1a1a1a;color:#fff}button:focus-visible{outline:3px solid #1565c0;"
          "outline-offset:2px}@media(prefers-color-scheme:dark){body{background:#121212;color:#eee}"
          "button{background:#121212;color:#eee;border-color:#eee}#cb-continue{background:#eee;color:#121212}}")
_STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode("ascii")).digest()).decode("ascii")
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
{main}
</main>
</body>
</html>
"""
_ASK = """<h1>Continue your conversation from {site}, started {started}?</h1>
<p>You are going to {destination}. Continue keeps that chat; Start new ends it on this browser.</p>
<form method="post" action="resume">
<input type="hidden" name="to" value="{to}">
<input type="hidden" name="state" value="{state}">
<input type="hidden" name="name" value="{name}">
<input type="hidden" name="csrf" value="{csrf}">
<button id="cb-continue" name="choice" value="continue">Continue</button>
<button id="cb-new" name="choice" value="new">Start new</button>
</form>"""


class PageError(Exception):
    """A page that cannot go on: its status and one sentence for the customer (and the site owner)."""

    def __init__(self, status: int, sentence: str, *, retry_after: int | None = None) -> None:
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence
        self.retry_after = retry_after


@dataclass(frozen=True)
class Target:
    """The validated parameters of a resume: where to go back to, the page's state hash, the cookie name."""

    to: str  # the address without its fragment, rebuilt on the trusted origin
    origin: str
    state: str
    name: str


def site_of(origin: str) -> str:
    """An origin as people read it: the host, and the port when there is one."""
    return origin.split("://", 1)[-1]


def started_text(at: object, now: float | None = None) -> tuple[str, str]:
    """(shown, ISO) of the time a stored chat started, in UTC: the bridge does not know the customer's zone."""
    moment = time.gmtime(at if isinstance(at, (int, float)) and not isinstance(at, bool) else 0)
    today = time.gmtime(now if now is not None else time.time())
    shown = time.strftime("%H:%M UTC", moment)
    if moment[:3] != today[:3]:
        shown = f"{moment.tm_mday} {time.strftime('%B %Y', moment)}, {shown}"
    return shown, time.strftime("%Y-%m-%dT%H:%MZ", moment)


class ResumePages:
    """GET and POST /resume. `limit`: the API's per-address rate limit (bucket "resume")."""

    def __init__(self, settings: Settings, store: Store, signer: ResumeSigner, limit: Limiter) -> None:
        self.settings = settings
        self.store = store
        self.signer = signer
        self.limit = limit
        self.trusted = frozenset(settings.trusted_origins)
        self.headers = {
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin",
            # form-action also governs the redirect after the POST: the trusted origins are where it may lead.
            "Content-Security-Policy": f"default-src 'none'; style-src '{_STYLE_HASH}'; base-uri 'none'; "
                                       f"form-action 'self' {' '.join(settings.trusted_origins)}; "
                                       "frame-ancestors 'none'",
        }

    async def page(self, request: Request) -> Response:
        operation = "choose" if request.method == "POST" else "ask"
        try:
            await self.limit(request, "resume", self.settings.rate_limit)
            if request.method == "POST":
                return await self.choose(request)
            return await self.ask(request)
        except PageError as error:
            _count(operation, "refused")
            return self._error_page(error)
        except BridgeError as error:  # the rate limit, or the store (StoreUnavailable)
            _count(operation, "refused")
            retry = error.retry_after if error.retry_after is not None else (60 if error.error is RATE_LIMITED else 5)
            return self._error_page(PageError(error.status, "The chat bridge is busy: please try again in a "
                                              "moment.", retry_after=retry))

    # --- parameters --------------------------------------------------------------------------------------
    def target(self, params: dict[str, list[str]]) -> Target:
        to, state, name = _single(params, "to"), _single(params, "state"), _single(params, "name")
        address = self._address(to)
        if state is None or not _STATE_HASH.fullmatch(state):
            raise PageError(400, "The link's state parameter must be 43 base64url characters (the page's state "
                            "hash).")
        if name is None or name not in self.settings.cookie_names:
            raise PageError(400, "The link's name parameter must be one of the bridge's cookie names.")
        return Target(address[0], address[1], state, name)

    def _address(self, to: str | None) -> tuple[str, str]:
        """(address without fragment, origin) of `to`, rebuilt on the trusted origin it names; never anything
        else, so the bridge cannot be made to redirect elsewhere."""
        bad = PageError(400, "The link's to parameter must be the full address (https://…) of a page on one of the "
                        "sites this bridge trusts.")
        if to is None or len(to) > MAX_URL_LENGTH or not _URL.fullmatch(to):
            raise bad
        try:
            parts = urllib.parse.urlsplit(to)
            port = parts.port
        except ValueError:
            raise bad from None
        if parts.scheme not in ("https", "http") or "@" in parts.netloc or not parts.hostname:
            raise bad
        default = 443 if parts.scheme == "https" else 80
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        origin = f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")
        if origin not in self.trusted or (parts.path and not parts.path.startswith("/")):
            raise bad
        return origin + (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), origin

    def _cookie_name(self, request: Request) -> str:
        return COOKIE if request.url.scheme == "https" else DEV_COOKIE

    # --- GET: ask, or go straight back ---------------------------------------------------------------------
    async def ask(self, request: Request) -> Response:
        target = self.target({key: request.query_params.getlist(key) for key in ("to", "state", "name")})
        cookie_name = self._cookie_name(request)
        browser = self.signer.browser_id(request.cookies.get(cookie_name))
        new_cookie = None
        if browser is None:
            browser, new_cookie = self.signer.new_browser()
            stored = None
        else:
            stored = await self._stored(target.name, browser)
        if stored is None:
            code = await self._code(browser, target, None)
            response: Response = self._back(target, code)
            _count("ask", "missing")
        else:
            response = self._ask_page(target, browser, stored)
            _count("ask", "found")
        if new_cookie is not None:
            response.set_cookie(cookie_name, new_cookie, max_age=self.settings.resume_max_age, path="/",
                                secure=cookie_name == COOKIE, httponly=True, samesite="lax")
        return response

    def _ask_page(self, target: Target, browser: str, stored: dict[str, Any]) -> Response:
        shown, iso = started_text(stored.get("at"))
        source = stored.get("from") if isinstance(stored.get("from"), str) else None
        main = _ASK.format(
            site=html.escape(site_of(source)) if source else "another of your sites",
            started=f'<time datetime="{iso}">{html.escape(shown)}</time>',
            destination=html.escape(site_of(target.origin)), to=html.escape(target.to), state=target.state,
            name=html.escape(target.name), csrf=self.signer.csrf(browser, target.state))
        return self._page(200, "Continue your conversation?", main)

    # --- POST: the customer's choice ---------------------------------------------------------------------
    async def choose(self, request: Request) -> Response:
        form = await _read_form(request)
        target = self.target(form)
        csrf, choice = _single(form, "csrf"), _single(form, "choice")
        if csrf is None:
            raise PageError(400, "The form's csrf field is missing: open the link on the site again.")
        if choice not in ("continue", "new"):
            raise PageError(400, "The form's choice must be continue or new.")
        browser = self.signer.browser_id(request.cookies.get(self._cookie_name(request)))
        if browser is None or not self.signer.csrf_matches(csrf, browser, target.state):
            raise PageError(403, "This form was not shown to this browser, or is over ten minutes old: go back to "
                            "the site and open the chat again.")
        value = source = None
        if choice == "new":
            await self.store.delete(session_key(target.name, browser))
        else:
            stored = await self._stored(target.name, browser)
            if stored is not None:
                value, source = stored["value"], stored.get("from")
        _count("choose", choice)
        return self._back(target, await self._code(browser, target, (value, source)))

    # --- shared --------------------------------------------------------------------------------------------
    async def _stored(self, name: str, browser: str) -> dict[str, Any] | None:
        raw = await self.store.get(session_key(name, browser))
        if raw is None:
            return None
        try:
            stored = json.loads(raw)
        except ValueError:
            return None
        return stored if isinstance(stored, dict) and isinstance(stored.get("value"), str) else None

    async def _code(self, browser: str, target: Target, carried: tuple[str | None, Any] | None) -> str:
        value, source = carried or (None, None)
        return await issue_code(self.store, self.signer, browser=browser, name=target.name,
                                destination=target.origin, hashed_state=target.state, value=value,
                                source=source if isinstance(source, str) else None)

    def _back(self, target: Target, code: str) -> Response:
        return RedirectResponse(target.to + FRAGMENT + code, status_code=303, headers=self.headers)

    def _page(self, status: int, title: str, main: str, headers: dict[str, str] | None = None) -> Response:
        body = _PAGE.format(title=html.escape(title), style=_STYLE, main=main)
        return HTMLResponse(body, status_code=status, headers={**self.headers, **(headers or {})})

    def _error_page(self, error: PageError) -> Response:
        extra = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
        main = f"<h1>This chat cannot be resumed here</h1>\n<p>{html.escape(error.sentence)}</p>"
        return self._page(error.status, "Chat not resumed", main, extra)


def _single(params: dict[str, list[str]], key: str) -> str | None:
    """The one value of a parameter; None when it is missing or repeated (both are refused by the caller)."""
    values = params.get(key) or []
    return values[0] if len(values) == 1 else None


async def _read_form(request: Request) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body of at most MAX_FORM bytes, as lists of values."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise PageError(400, "The form must be sent as application/x-www-form-urlencoded, as the bridge's page "
                        "sends it.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise PageError(413, f"The form is over {MAX_FORM} bytes.")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=False,
                                       max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "The form is not one the bridge's page sends.") from None
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    return form


def _count(operation: str, result: str) -> None:
    metrics.RESUME.labels(metrics.label(operation, metrics.RESUME_OPERATIONS),
                          metrics.label(result, metrics.RESUME_RESULTS)).inc()
