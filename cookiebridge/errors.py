"""Errors the API answers with: each has an HTTP status, a stable code for programs and a message for people."""

from __future__ import annotations


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


class Unavailable(BridgeError):
    status, code = 503, "unavailable"
