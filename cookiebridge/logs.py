"""Logging for `serve`: uvicorn's text lines (the default), or one JSON object per line (`log_format = "json"`).

A JSON line has `time` (UTC, ISO 8601), `level`, `event`, `message`, and for requests `request_id`, `method`, `path`
(never the query), `status`, `outcome` (`ok` or the API's error code), `latency_ms` and `client`. Nothing from a
request body, no header but X-Request-ID, no query string: so no session value, handoff code or token
(tests/test_logs.py). Lines logged while a request is handled carry its `request_id`.
"""

from __future__ import annotations

import contextvars
import copy
import json
import logging
import re
import secrets
import time
from datetime import datetime, timezone
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import LOGGING_CONFIG

LOG_FORMATS = ("text", "json")
REQUEST_ID = contextvars.ContextVar("cookiebridge_request_id", default="")
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
# Record attributes copied into the JSON object when a log call passes them in `extra`.
_FIELDS = ("request_id", "method", "path", "status", "outcome", "latency_ms", "client")
_EVENTS = {"uvicorn.error": "server", "uvicorn": "server", "uvicorn.access": "request", "cookiebridge": "bridge"}
access_logger = logging.getLogger("cookiebridge.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", None) or _EVENTS.get(record.name, record.name),
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if "request_id" not in line and REQUEST_ID.get():
            line["request_id"] = REQUEST_ID.get()
        if record.exc_info:  # one line all the same
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(line, ensure_ascii=True, separators=(",", ":"))


def uvicorn_log_config(log_format: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with the bridge's own logger (shedding, store incidents, internal errors)
    on the same handler; for "json", every logger through JsonFormatter and uvicorn's access log replaced by the
    bridge's request lines (AccessLog)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["cookiebridge"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    if log_format == "json":
        for name in ("default", "access"):
            config["formatters"][name] = {"()": "cookiebridge.logs.JsonFormatter"}
        config["handlers"]["access"]["stream"] = "ext://sys.stderr"
        config["loggers"]["cookiebridge.access"] = {"handlers": ["access"], "level": "INFO", "propagate": False}
    return config


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    return {429: "rate-limited", 503: "unavailable", 404: "not-found", 405: "method-not-allowed"}.get(
        status, "client-error" if status < 500 else "server-error")


class AccessLog:
    """ASGI middleware for `log_format = "json"`: a request id (the client's X-Request-ID when it is a plain token
    of up to 64 characters, e.g. nginx's $request_id, else a new one) echoed in the answer, and one `request` line
    per request. The API puts its error code in scope["state"]["outcome"]."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
        request_id = given.decode("ascii") if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
        token = REQUEST_ID.set(request_id)
        scope.setdefault("state", {})
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode("ascii"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            state = scope.get("state") or {}
            client = scope.get("client")
            access_logger.info("%s %s %d", scope["method"], _printable(scope["path"]), status, extra={
                "event": "request", "request_id": request_id, "method": scope["method"],
                "path": _printable(scope["path"]), "status": status,
                "outcome": state.get("outcome") or outcome_of(status),
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                "client": client[0] if client else None})
            REQUEST_ID.reset(token)


def _printable(path: str) -> str:
    return path[:200].encode("unicode_escape").decode("ascii")
