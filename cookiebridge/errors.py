"""Errors the API answers with: each has an HTTP status, a stable code for programs and a message for people."""

from __future__ import annotations

import logging
import traceback

logger = logging.getLogger("cookiebridge")

INTERNAL_ERROR = {"error": "internal", "message": "the bridge failed on this request; it has been logged"}


def log_internal_error(method: str, path: str, error: BaseException) -> None:
    """One line for an unexpected exception: where it was raised and what, without the request's data spilling
    over lines (a traceback per request would let one client flood the log)."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
    what = f"{type(error).__name__}: {error}".encode("unicode_escape").decode("ascii")[:300]
    logger.error("cookiebridge: internal error on %s %s at %s: %s", method, path[:100].encode("unicode_escape")
                 .decode("ascii"), where, what)


class BridgeError(Exception):
    status = 400
    code = "bad-request"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code

    def to_json(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class BadRequest(BridgeError):
    status, code = 400, "bad-request"


class Forbidden(BridgeError):
    status, code = 403, "forbidden"


class Gone(BridgeError):
    """A handoff code that was valid once: expired or already redeemed."""

    status, code = 410, "gone"


class PayloadTooLarge(BridgeError):
    status, code = 413, "too-large"


class TooManyRequests(BridgeError):
    status, code = 429, "rate-limited"


class OverBudget(BridgeError):
    """The handoff budget (live bytes, global or for the calling site) is spent: a flood, or a budget too small."""

    status, code = 429, "over-budget"


class Unavailable(BridgeError):
    status, code = 503, "unavailable"
