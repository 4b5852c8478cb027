"""Errors the API answers with, declared once: each code's HTTP status and meaning, and the one exception root.

The JSON body of every error is `{"error": code, "message": text}`: the code is stable, for programs (the
provider, dashboards: metrics label refusals with it); the message is for people and may change. docs/api.md's
error table is generated from CODES (scripts/docs_tables.py) and tests/test_docs_tables.py keeps it in step.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass

logger = logging.getLogger("cookiebridge")


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    where: str  # which requests may get it, for the documentation
    meaning: str


CODES: dict[str, ErrorCode] = {}


def _declare(code: str, status: int, where: str, meaning: str) -> ErrorCode:
    declared = ErrorCode(code, status, where, meaning)
    CODES[code] = declared
    return declared


# Any API request.
UNTRUSTED_ORIGIN = _declare("untrusted-origin", 403, "every API request",
                            "The request's `Origin` is not one of `trusted_origins` (and gets no CORS headers).")
BAD_JSON = _declare("bad-json", 400, "every API request",
                    "The body is not a JSON object, or the client hung up before sending all of it.")
TOO_LARGE = _declare("too-large", 413, "every API request", "The body is over 16 KiB, or `value` over 4096 bytes.")
RATE_LIMITED = _declare("rate-limited", 429, "every API request",
                        "More than `rate_limit` requests a minute from this address (IPv6: from its /64).")
UNAVAILABLE = _declare("unavailable", 503, "every API request",
                       "The store cannot be reached, or this worker has too many requests in progress; retry "
                       "after `Retry-After` seconds.")
INTERNAL = _declare("internal", 500, "every request", "A bug in the bridge; it has been logged.")
NOT_FOUND = _declare("not-found", 404, "every request", "No such URL.")
METHOD_NOT_ALLOWED = _declare("method-not-allowed", 405, "every request", "The URL exists, but not for this method.")
# Storing a session: a handoff code, or an identity session.
NAME_NOT_ALLOWED = _declare("name-not-allowed", 403, "handoff, identity, resume",
                            "`name` is not one of the bridge's `cookie_names`.")
BAD_VALUE = _declare("bad-value", 400, "handoff, identity/save, resume/save",
                     "`value` is not a non-empty string of valid Unicode text.")
# Link handoff.
BAD_DESTINATION = _declare("bad-destination", 403, "handoff",
                           "`destination` is not another of the bridge's `trusted_origins`.")
OVER_BUDGET = _declare("over-budget", 429, "handoff",
                       "`handoff_budget` or `handoff_budget_per_origin` is spent; retry after `Retry-After` seconds.")
BAD_CODE = _declare("bad-code", 400, "handoff/redeem, resume/redeem", "`code` is not a string of 1 to 512 characters.")
FORGED = _declare("forged", 403, "handoff/redeem, resume",
                  "The code or resume token was not issued by this bridge (or was altered).")
WRONG_DESTINATION = _declare("wrong-destination", 403, "handoff/redeem, resume/redeem",
                             "The code was issued for another site than the one redeeming it.")
UNTRUSTED_REFERRER = _declare("untrusted-referrer", 403, "handoff/redeem",
                              "The page did not come from the site that issued the code (a planted link); the code "
                              "stays unused.")
EXPIRED = _declare("expired", 410, "handoff/redeem, resume",
                   "The code is older than `handoff_ttl`, or the resume token older than `resume_max_age`.")
USED = _declare("used", 410, "handoff/redeem, resume/redeem",
                "The code was already redeemed (or expired and was purged).")
# Resume through the bridge (docs/resume.md).
WRONG_STATE = _declare("wrong-state", 403, "resume/redeem",
                       "The resume code was not started by this page (its `state` does not match); the code stays "
                       "unused.")
BAD_TOKEN = _declare("bad-token", 400, "resume/load, resume/save, resume/delete",
                     "`token` is not a resume token string as the bridge writes them.")
WRONG_ORIGIN = _declare("wrong-origin", 403, "resume/load, resume/save, resume/delete",
                        "The resume token was handed to another site than the one using it.")
# Signed identity.
IDENTITY_DISABLED = _declare("identity-disabled", 403, "identity",
                             "Signed identity is off on this bridge: `identity_secret` is not set.")
MALFORMED = _declare("malformed", 403, "identity", "`token` is not a well-formed HS256 JWT with the claims required.")
UNSUPPORTED_ALGORITHM = _declare("unsupported-algorithm", 403, "identity",
                                 "The token's `alg` is not HS256 (`none` included).")
BAD_SIGNATURE = _declare("bad-signature", 403, "identity",
                         "The token was not signed with `identity_secret` (or a `previous_identity_secrets` key).")
TOKEN_EXPIRED = _declare("token-expired", 403, "identity",
                         "The token's `exp` has passed: the site's backend should sign a fresh one.")
NOT_YET_VALID = _declare("not-yet-valid", 403, "identity", "The token's `nbf` or `iat` lies in the future.")
WRONG_AUDIENCE = _declare("wrong-audience", 403, "identity", "The token's `aud` does not name `identity_audience`.")


class BridgeError(Exception):
    """The root of every error the API answers with: a declared code and a one-line message for people.
    `retry_after`: seconds for the Retry-After header, when waiting helps."""

    def __init__(self, error: ErrorCode, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.retry_after = retry_after

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def status(self) -> int:
        return self.error.status

    def to_json(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


INTERNAL_ERROR = BridgeError(INTERNAL, "the bridge failed on this request; it has been logged").to_json()


def log_internal_error(method: str, path: str, error: BaseException) -> None:
    """One line for an unexpected exception: where it was raised and what, without the request's data spilling
    over lines (a traceback per request would let one client flood the log)."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
    what = f"{type(error).__name__}: {error}".encode("unicode_escape").decode("ascii")[:300]
    logger.error("cookiebridge: internal error on %s %s at %s: %s", method, path[:100].encode("unicode_escape")
                 .decode("ascii"), where, what)
