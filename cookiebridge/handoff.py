"""Handoff codes: short-lived, single-use, signed tickets that carry a chat session across one link.

A code is `itsdangerous`-signed `[id, destination origin]` with a timestamp. The id (128 random bits) names the
stored session value; the signature lets the bridge refuse forged or garbled codes, and codes presented by the
wrong site, before it touches the store. Redeeming takes the stored value atomically, so a code works once.
"""

from __future__ import annotations

import re
import secrets
from typing import Sequence

from itsdangerous import BadData, BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from .errors import BadRequest, Forbidden, Gone

SALT = "cookiebridge.handoff.v1"
MAX_CODE_LENGTH = 512
_CODE = re.compile(r"[A-Za-z0-9_\-.]+")


def is_canonical(code: str) -> bool:
    """Only the base64url alphabet and dots, each part in the one spelling itsdangerous writes. Python's base64
    decoder skips other bytes and ignores unused low bits, so without this one code had many accepted spellings."""
    if not _CODE.fullmatch(code):
        return False
    try:
        return all(base64_encode(base64_decode(part)) == part.encode("ascii") for part in code.split(".") if part)
    except BadData:
        return False


class HandoffCodes:
    def __init__(self, secret_keys: Sequence[str], ttl: int) -> None:
        # itsdangerous signs with the last key and accepts all of them: old keys go first.
        self._serializer = URLSafeTimedSerializer(list(secret_keys), salt=SALT)
        self.ttl = ttl

    def issue(self, destination: str) -> tuple[str, str]:
        """Return (code, store id) for a session that may be redeemed only by `destination`."""
        ident = secrets.token_urlsafe(16)
        return self._serializer.dumps([ident, destination]), ident

    def open(self, code: object, origin: str) -> str:
        """Return the store id of a code presented by `origin`, or raise the error to answer with."""
        if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE_LENGTH:
            raise BadRequest("'code' must be the handoff code string from the link", "bad-code")
        if not is_canonical(code):
            raise Forbidden("handoff code is not one this bridge issued", "forged")
        try:
            ident, destination = self._serializer.loads(code, max_age=self.ttl)
        except SignatureExpired:
            raise Gone("handoff code has expired", "expired") from None
        except (BadSignature, ValueError, TypeError):
            raise Forbidden("handoff code is not one this bridge issued", "forged") from None
        if destination != origin:
            raise Forbidden(f"handoff code was issued for {destination}, not {origin}", "wrong-destination")
        return str(ident)
