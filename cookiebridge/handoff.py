"""Handoff codes: short-lived, single-use, signed tickets that carry a chat session across one link.

A code is `itsdangerous`-signed `[id, destination origin, issuing origin]` with a timestamp. The id (128 random bits)
names the stored session value; the signature lets the bridge refuse forged or garbled codes, codes presented by the
wrong site, and (the referrer gate) codes on a page that did not come from the issuing site, before it touches the
store. Redeeming takes the stored value atomically, so a code works once.

Why the referrer gate: anyone can mint a code for a session of their choice (any HTTP client can send a trusted
`Origin`), so a code alone proves nothing about who put it in the link. A customer who clicks a link on the issuing
site arrives with that site as `document.referrer`; a mailed link, a typed URL or a foreign page's link or redirect
does not give it, so a planted code is refused there, unconsumed.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Sequence

from itsdangerous import BadData, BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from .errors import BAD_CODE, EXPIRED, FORGED, UNTRUSTED_REFERRER, WRONG_DESTINATION, BridgeError

SALT = "cookiebridge.handoff.v1"
MAX_CODE_LENGTH = 512
_CODE = re.compile(r"[A-Za-z0-9_\-.]+")
_ORIGIN = re.compile(r"https?://[^/?#\s]+")


def referrer_origin(referrer: object) -> str | None:
    """The origin of a `document.referrer` as browsers serialise it (`https://host[:port]/…`), or None."""
    match = _ORIGIN.match(referrer) if isinstance(referrer, str) and len(referrer) <= 4096 else None
    return match.group(0) if match else None


def is_canonical(code: str) -> bool:
    """Only the base64url alphabet and dots, each part in the one spelling itsdangerous writes. Python's base64
    decoder skips other bytes and ignores unused low bits, so without this one code had many accepted spellings."""
    if not _CODE.fullmatch(code):
        return False
    try:
        return all(base64_encode(base64_decode(part)) == part.encode("ascii") for part in code.split(".") if part)
    except BadData:
        return False


def open_signed(serializer: URLSafeTimedSerializer, text: str, max_age: int, *, items: int, expired: str,
                forged: str) -> list[Any]:
    """The payload (a list of `items` values) of a signed, timestamped string this bridge made, or BridgeError
    EXPIRED / FORGED with the message given: a non-canonical spelling, or a payload of another shape, is forged."""
    if not is_canonical(text):
        raise BridgeError(FORGED, forged)
    try:
        payload = serializer.loads(text, max_age=max_age)
    except SignatureExpired:
        raise BridgeError(EXPIRED, expired) from None
    except (BadSignature, ValueError, TypeError):
        raise BridgeError(FORGED, forged) from None
    if not isinstance(payload, list) or len(payload) != items:
        raise BridgeError(FORGED, forged)
    return payload


class HandoffCodes:
    def __init__(self, secret_keys: Sequence[str], ttl: int) -> None:
        # itsdangerous signs with the last key and accepts all of them: old keys go first.
        self._serializer = URLSafeTimedSerializer(list(secret_keys), salt=SALT)
        self.ttl = ttl

    def issue(self, destination: str, source: str) -> tuple[str, str]:
        """Return (code, store id) for a session issued by `source` that may be redeemed only by `destination`."""
        ident = secrets.token_urlsafe(16)
        return self._serializer.dumps([ident, destination, source]), ident

    def open(self, code: object, origin: str, referrer: object = None, *, gate: bool = True) -> str:
        """Return the store id of a code presented by `origin` on a page whose `document.referrer` is `referrer`,
        or raise the error to answer with. With `gate`, the referrer must be the site that issued the code."""
        if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE_LENGTH:
            raise BridgeError(BAD_CODE, "'code' must be the handoff code string from the link")
        ident, destination, source = open_signed(self._serializer, code, self.ttl, items=3,
                                                 expired="handoff code has expired",
                                                 forged="handoff code is not one this bridge issued")
        if destination != origin:
            raise BridgeError(WRONG_DESTINATION, f"handoff code was issued for {destination}, not {origin}")
        if gate and referrer_origin(referrer) != source:
            came_from = referrer_origin(referrer) or "none"
            raise BridgeError(UNTRUSTED_REFERRER, f"handoff code was issued by {source}, and this page did not come "
                              f"from there (referrer {came_from}): a planted link restores nothing")
        return str(ident)
