"""The JSON API the cookie provider calls directly from each trusted site.

Why CORS and not the iframe: on arrival at the destination site the provider redeems the handoff code with one
request, without waiting for the hidden iframe to load, and the caller's origin comes from the browser's `Origin`
header rather than from our own script. Requests are CORS "simple" (POST, text/plain JSON body), so no preflight.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import time
from typing import Any, Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import metrics
from .config import Settings
from .errors import (
    BAD_DESTINATION,
    BAD_JSON,
    BAD_VALUE,
    IDENTITY_DISABLED,
    INTERNAL,
    INTERNAL_ERROR,
    NAME_NOT_ALLOWED,
    OVER_BUDGET,
    RATE_LIMITED,
    TOO_LARGE,
    UNTRUSTED_ORIGIN,
    USED,
    BridgeError,
    log_internal_error,
)
from .handoff import HandoffCodes
from .identity import is_text, verify_identity
from .limits import SHED_LOG
from .resume import ResumeSigner, code_key, session_key
from .stores import Store, StoreUnavailable

MAX_BODY = 16 * 1024
MAX_VALUE = 4096
# What a handoff record costs the store besides its value: key, JSON envelope, the store's own bookkeeping.
RECORD_OVERHEAD = 128
Handler = Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]]
logger = logging.getLogger("cookiebridge")
# One info line per handoff issued or redeemed and per identity load, naming sites only: never a code, value or
# token (`cookiebridge demo` shows them as the customer clicks; `serve` logs them with its other info lines).
events = logging.getLogger("cookiebridge.api")


def client_key(host: str) -> str:
    """The rate limit's name for a client address: IPv4 as is (also when IPv4-mapped IPv6), IPv6 by its /64 (one
    subscriber or host usually holds a whole /64), anything else (an X-Forwarded-For that is no address) hashed."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "h-" + hashlib.sha256(host.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address.packed, 64), strict=False).network_address) + "/64"
    return str(address)


class LocalCounters:
    """Fixed-window counters in this process, used when the store cannot count: a store outage then costs the
    per-worker precision of the rate limit, not every API call (reads such as identity loads may still work)."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self.counts: dict[str, tuple[float, int]] = {}

    def hit(self, key: str, window: float) -> int:
        now = time.monotonic()
        if len(self.counts) > self.MAX_KEYS:
            self.counts = {k: v for k, v in self.counts.items() if v[0] > now}
            if len(self.counts) > self.MAX_KEYS:
                self.counts.clear()
        ends, count = self.counts.get(key, (0.0, 0))
        ends, count = (ends, count + 1) if ends > now else (now + window, 1)
        self.counts[key] = (ends, count)
        return count


async def read_json(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared and (not (declared.isascii() and declared.isdigit()) or int(declared) > MAX_BODY):
        raise BridgeError(TOO_LARGE, f"request body over {MAX_BODY} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise BridgeError(TOO_LARGE, f"request body over {MAX_BODY} bytes")
    except ClientDisconnect:  # nobody reads the answer; without this, every hang-up logs an ERROR and a traceback
        raise BridgeError(BAD_JSON, "the client disconnected before sending the whole body") from None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: thousands of nested [ or {
        raise BridgeError(BAD_JSON, "request body must be a JSON object") from None
    if not isinstance(data, dict):
        raise BridgeError(BAD_JSON, "request body must be a JSON object")
    return data


class Api:
    def __init__(self, settings: Settings, store: Store, codes: HandoffCodes,
                 resume: ResumeSigner | None = None) -> None:
        """`resume`: the signer of resume codes and tokens, when the `resume` setting is on (its routes exist)."""
        self.settings = settings
        self.store = store
        self.codes = codes
        self.resume = resume
        self.trusted = frozenset(settings.trusted_origins)
        self.local = LocalCounters()

    # --- shared request handling -------------------------------------------------------------------------
    def _cors(self, origin: str | None) -> dict[str, str]:
        headers = {"Cache-Control": "no-store", "Vary": "Origin"}
        if origin in self.trusted:
            headers["Access-Control-Allow-Origin"] = origin
        return headers

    async def _limit(self, request: Request, bucket: str, limit: int) -> None:
        # Behind a proxy the address comes from X-Forwarded-For, which may hold anything: client_key keeps it valid.
        key = f"rl:{bucket}:{client_key(request.client.host if request.client else 'unknown')}"
        try:
            count = await self.store.hit(key, 60)
        except StoreUnavailable:
            count = self.local.hit(key, 60)
        if count > limit:
            raise BridgeError(RATE_LIMITED, f"more than {limit} {bucket} requests a minute from this address; retry "
                              "later")

    limit = _limit  # for the resume pages (cookiebridge/resume.py), which share the per-address limit

    async def _spend_handoff_budget(self, origin: str, size: int) -> None:
        """Count a new record against the live-bytes budgets (fixed windows of handoff_ttl: what was issued in
        this window and the last is all that can still be live, so at most twice the budget is ever held)."""
        ttl, settings = self.codes.ttl, self.settings
        mine = await self.store.hit("hb:o:" + hashlib.sha256(origin.encode()).hexdigest()[:32], ttl, size)
        if mine > settings.handoff_budget_per_origin:
            raise BridgeError(OVER_BUDGET, f"handoff records issued by {origin} in the last {ttl} s passed "
                              f"handoff_budget_per_origin ({settings.handoff_budget_per_origin} bytes); retry later",
                              retry_after=ttl)
        if await self.store.hit("hb:all", ttl, size) > settings.handoff_budget:
            raise BridgeError(OVER_BUDGET, f"handoff records issued in the last {ttl} s passed handoff_budget "
                              f"({settings.handoff_budget} bytes); retry later", retry_after=ttl)

    def endpoint(self, name: str, bucket: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        latency = metrics.LATENCY.labels(name)

        async def handle(request: Request) -> Response:
            started = time.perf_counter()
            response, outcome, result = await self._answer(request, bucket, handler)
            request.state.outcome = outcome  # for the JSON request log (logs.AccessLog)
            latency.observe(time.perf_counter() - started)
            metrics.RESPONSES.labels(name, str(response.status_code)).inc()
            _count(name, bucket, outcome, result)
            return response

        return handle

    async def _answer(self, request: Request, bucket: str,
                      handler: Handler) -> tuple[Response, str, dict[str, Any] | None]:
        """The response, its outcome ("ok" or the error code) and, on success, the handler's result."""
        origin = request.headers.get("origin")
        headers = self._cors(origin)
        try:
            if origin not in self.trusted:
                raise BridgeError(UNTRUSTED_ORIGIN, f"origin {origin!r} is not a trusted origin of this bridge")
            await self._limit(request, bucket, self.settings.rate_limit)
            result = await handler(await read_json(request), origin)
        except BridgeError as error:  # StoreUnavailable too: logged once per incident by health.MeteredStore
            if error.error is OVER_BUDGET:
                SHED_LOG.note("over-budget", error.message)
            if error.retry_after is not None:
                headers["Retry-After"] = str(error.retry_after)
            return JSONResponse(error.to_json(), status_code=error.status, headers=headers), error.code, None
        except Exception as error:  # a bug: one log line, and an answer the provider can read
            log_internal_error(request.method, request.url.path, error)
            return JSONResponse(INTERNAL_ERROR, status_code=INTERNAL.status, headers=headers), INTERNAL.code, None
        return JSONResponse(result, headers=headers), "ok", result

    async def preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin not in self.trusted:
            return Response(status_code=UNTRUSTED_ORIGIN.status, headers=self._cors(origin))
        headers = {**self._cors(origin), "Access-Control-Allow-Methods": "POST",
                   "Access-Control-Allow-Headers": "content-type", "Access-Control-Max-Age": "600"}
        return Response(status_code=204, headers=headers)

    # --- checks on fields --------------------------------------------------------------------------------
    def _name(self, data: dict[str, Any]) -> str:
        name = data.get("name")
        if name not in self.settings.cookie_names:
            raise BridgeError(NAME_NOT_ALLOWED, f"cookie name {name!r} is not in the bridge's cookie_names")
        return str(name)

    @staticmethod
    def _value(data: dict[str, Any]) -> str:
        value = data.get("value")
        if not isinstance(value, str) or not value:
            raise BridgeError(BAD_VALUE, "'value' must be a non-empty string")
        if not value.isascii() and not is_text(value):
            raise BridgeError(BAD_VALUE, "'value' must be valid Unicode text (it holds a lone surrogate)")
        if len(value.encode("utf-8")) > MAX_VALUE:
            raise BridgeError(TOO_LARGE, f"'value' is over {MAX_VALUE} bytes")
        return value

    def _subject(self, data: dict[str, Any]) -> str:
        if not self.settings.identity_secret:
            raise BridgeError(IDENTITY_DISABLED, "signed identity is not enabled on this bridge (set identity_secret)")
        keys = [self.settings.identity_secret, *self.settings.previous_identity_secrets]
        return verify_identity(data.get("token"), keys, audience=self.settings.identity_audience,
                               max_ttl=self.settings.identity_max_ttl)  # IdentityError: a BridgeError

    # --- handlers ----------------------------------------------------------------------------------------
    async def issue_handoff(self, data: dict[str, Any], origin: str) -> dict[str, Any]:
        name, value = self._name(data), self._value(data)
        destination = data.get("destination")
        if not isinstance(destination, str) or destination not in self.trusted or destination == origin:
            raise BridgeError(BAD_DESTINATION, f"destination {destination!r} is not another trusted origin")
        code, ident = self.codes.issue(destination, origin)
        record = json.dumps({"name": name, "value": value, "from": origin}).encode("utf-8")
        await self._spend_handoff_budget(origin, len(record) + RECORD_OVERHEAD)
        await self.store.put(f"handoff:{ident}", record, self.codes.ttl)
        events.info("handoff issued on %s for a link to %s", origin, destination, extra={"event": "handoff-issued"})
        return {"code": code, "expiresIn": self.codes.ttl}

    async def redeem_handoff(self, data: dict[str, Any], origin: str) -> dict[str, Any]:
        ident = self.codes.open(data.get("code"), origin, data.get("referrer"),
                                gate=self.settings.handoff_referrer_gate)
        record = await self.store.take(f"handoff:{ident}")
        if record is None:
            raise BridgeError(USED, "handoff code was already used or has expired")
        stored = json.loads(record)
        events.info("handoff redeemed on %s: a chat continued from %s", origin, stored["from"],
                    extra={"event": "handoff-redeemed"})
        return {"name": stored["name"], "value": stored["value"], "from": stored["from"]}

    def _session_key(self, data: dict[str, Any]) -> str:
        # Hashed: customer ids may be long or non-ASCII, and need not be readable in the store.
        who = hashlib.sha256(f"{self._name(data)}\0{self._subject(data)}".encode("utf-8")).hexdigest()
        return f"identity:{who}"

    async def save_identity(self, data: dict[str, Any], origin: str) -> dict[str, Any]:
        key, value = self._session_key(data), self._value(data)
        await self.store.put(key, value.encode("utf-8"), self.settings.cookie_max_age)
        return {"saved": True}

    async def load_identity(self, data: dict[str, Any], origin: str) -> dict[str, Any]:
        stored = await self.store.get(self._session_key(data))
        events.info("identity load on %s: %s", origin, "a chat found" if stored is not None else "no chat saved",
                    extra={"event": "identity-load"})
        return {"value": stored.decode("utf-8") if stored is not None else None}

    async def delete_identity(self, data: dict[str, Any], origin: str) -> dict[str, Any]:
        return {"deleted": await self.store.delete(self._session_key(data))}

    # --- resume through the bridge (docs/resume.md) ---------------------------------------------------------
    def _resume_signer(self) -> ResumeSigner:
        if self.resume is None:  # the routes exist only with a signer; this keeps mypy and a misuse honest
            raise RuntimeError("resume endpoints called without a ResumeSigner")
        return self.resume

    def _resume_key(self, data: dict[str, Any], origin: str) -> str:
        browser = self._resume_signer().open_token(data.get("token"), origin)
        return session_key(self._name(data), browser)

    async def redeem_resume(self, data: dict[str, Any], origin: str) -> dict[str, Any]:
        ident = self._resume_signer().open_code(data.get("code"), origin, data.get("state"))
        record = await self.store.take(code_key(ident))
        if record is None:
            raise BridgeError(USED, "resume code was already used or has expired")
        stored = json.loads(record)
        events.info("resume redeemed on %s: %s", origin, f"a chat continued from {stored['from']}"
                    if stored["value"] is not None else "no chat to continue", extra={"event": "resume-redeemed"})
        return {"name": stored["name"], "value": stored["value"], "from": stored["from"], "token": stored["token"]}

    async def _resume_record(self, key: str) -> dict[str, Any] | None:
        raw = await self.store.get(key)
        stored = json.loads(raw) if raw is not None else None
        return stored if isinstance(stored, dict) else None

    async def load_resume(self, data: dict[str, Any], origin: str) -> dict[str, Any]:
        stored = await self._resume_record(self._resume_key(data, origin))
        return {"value": stored.get("value"), "from": stored.get("from")} if stored else {"value": None, "from": None}

    async def save_resume(self, data: dict[str, Any], origin: str) -> dict[str, Any]:
        key, value = self._resume_key(data, origin), self._value(data)
        # `at` stays the time the chat was first saved: the confirmation page says when it started.
        stored = await self._resume_record(key)
        at = stored.get("at") if stored and isinstance(stored.get("at"), int) else int(time.time())
        record = json.dumps({"value": value, "from": origin, "at": at}).encode("utf-8")
        await self.store.put(key, record, self.settings.cookie_max_age)
        return {"saved": True}

    async def delete_resume(self, data: dict[str, Any], origin: str) -> dict[str, Any]:
        return {"deleted": await self.store.delete(self._resume_key(data, origin))}

    def routes(self) -> list[Route]:
        table = [
            ("/api/v1/handoff", "handoff", "issue", self.issue_handoff),
            ("/api/v1/handoff/redeem", "handoff_redeem", "redeem", self.redeem_handoff),
            ("/api/v1/identity/save", "identity_save", "identity", self.save_identity),
            ("/api/v1/identity/load", "identity_load", "identity", self.load_identity),
            ("/api/v1/identity/delete", "identity_delete", "identity", self.delete_identity),
        ]
        if self.resume is not None:
            table += [
                ("/api/v1/resume/redeem", "resume_redeem", "resume", self.redeem_resume),
                ("/api/v1/resume/load", "resume_load", "resume", self.load_resume),
                ("/api/v1/resume/save", "resume_save", "resume", self.save_resume),
                ("/api/v1/resume/delete", "resume_delete", "resume", self.delete_resume),
            ]
        routes = []
        for path, name, bucket, handler in table:
            routes.append(Route(path, self.endpoint(name, bucket, handler), methods=["POST"]))
            routes.append(Route(path, self.preflight, methods=["OPTIONS"]))
        return routes


def _count(endpoint: str, bucket: str, outcome: str, result: dict[str, Any] | None) -> None:
    """The business counters of one API answer. Labels are endpoint names and error codes only (metrics.label)."""
    reason = metrics.label(outcome, metrics.ERROR_CODES)
    if outcome == RATE_LIMITED.code:
        metrics.RATE_LIMITED.labels(bucket).inc()
    if endpoint in ("handoff", "handoff_redeem"):
        operation = "issue" if endpoint == "handoff" else "redeem"
        if result is None:
            metrics.HANDOFF_REFUSED.labels(operation, reason).inc()
        else:
            (metrics.HANDOFF_ISSUED if operation == "issue" else metrics.HANDOFF_REDEEMED).inc()
    elif endpoint.startswith("resume_"):
        _count_resume(endpoint.removeprefix("resume_"), reason, result)
    else:
        operation = endpoint.removeprefix("identity_")
        if result is None:
            metrics.IDENTITY.labels(operation, reason).inc()
        elif operation == "load":
            metrics.IDENTITY.labels(operation, "found" if result.get("value") is not None else "missing").inc()
        elif operation == "delete":
            metrics.IDENTITY.labels(operation, "deleted" if result.get("deleted") else "missing").inc()
        else:
            metrics.IDENTITY.labels(operation, "saved").inc()


def _count_resume(operation: str, reason: str, result: dict[str, Any] | None) -> None:
    if result is None:
        outcome = reason
    elif operation in ("redeem", "load"):
        outcome = "found" if result.get("value") is not None else "missing"
    elif operation == "delete":
        outcome = "deleted" if result.get("deleted") else "missing"
    else:
        outcome = "saved"
    metrics.RESUME.labels(operation, metrics.label(outcome, metrics.RESUME_RESULTS)).inc()
