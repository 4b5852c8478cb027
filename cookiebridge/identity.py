"""Signed identity for signed-in customers: a JWT (HS256) that the site's backend makes with its standard library.

Format: base64url(header) "." base64url(claims) "." base64url(HMAC-SHA256(key, header "." claims)), with header
exactly {"alg": "HS256", "typ": "JWT"} and claims {"sub": customer id, "aud": audience, "exp": unix time}
(`iat`/`nbf` optional). Any other algorithm, `alg: none` included, is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import time
from typing import Any, Iterable

from .errors import (
    BAD_SIGNATURE,
    MALFORMED,
    NOT_YET_VALID,
    TOKEN_EXPIRED,
    UNSUPPORTED_ALGORITHM,
    WRONG_AUDIENCE,
    BridgeError,
)

MAX_TOKEN_LENGTH = 4096
MAX_SUBJECT_LENGTH = 256
DEFAULT_MAX_TTL = 24 * 3600
TOKEN_ERRORS = (MALFORMED, UNSUPPORTED_ALGORITHM, BAD_SIGNATURE, TOKEN_EXPIRED, NOT_YET_VALID, WRONG_AUDIENCE)


class IdentityError(BridgeError, ValueError):
    """A token that cannot be accepted: one of TOKEN_ERRORS and a message saying why."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise IdentityError(MALFORMED, "identity token is not three base64url parts separated by dots")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:  # a length of 4n+1 is no base64 at all
        raise IdentityError(MALFORMED, "identity token is not three base64url parts separated by dots") from None
    if _b64encode(data) != text:  # unused low bits set: another spelling of the same bytes, which no signer writes
        raise IdentityError(MALFORMED, "identity token part is not in canonical base64url (unused bits set)")
    return data


def _time_claim(claims: dict[str, Any], name: str, required: bool = False) -> float | None:
    """A NumericDate claim: a finite JSON number (not a boolean), or absent when not required."""
    value = claims.get(name)
    if value is None and not required and name not in claims:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise IdentityError(MALFORMED, f"identity token claim {name!r} must be a unix time (a finite number)")
    return float(value)


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign_identity(subject: str, secret: str | bytes, *, audience: str = "cookiebridge", ttl: int = 3600,
                  now: float | None = None) -> str:
    """Make a token for `subject` (your customer id), valid for `ttl` seconds. For the site's backend."""
    issued = int(time.time() if now is None else now)
    header = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": subject, "aud": audience, "iat": issued, "exp": issued + ttl}
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(_key(secret), f"{header}.{payload}".encode("ascii"), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64encode(signature)}"


def _json_part(text: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(text))
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly nested JSON
        raise IdentityError(MALFORMED, "identity token part is not base64url-encoded JSON") from None
    if not isinstance(value, dict):
        raise IdentityError(MALFORMED, "identity token part is not a JSON object")
    return value


def is_text(value: str) -> bool:
    """False for strings with lone surrogates, which JSON's \\ud800 escapes can smuggle in: no text at all."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def verify_identity(token: Any, secrets: Iterable[str | bytes], *, audience: str, leeway: int = 30,
                    now: float | None = None, max_ttl: float = DEFAULT_MAX_TTL) -> str:
    """Return the verified subject, or raise IdentityError. `secrets`: the current key first, then old ones.
    `max_ttl`: the longest validity accepted, counted from now, whatever `exp` says."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2 or not token.isascii():
        raise IdentityError(MALFORMED, "identity token is not three base64url parts separated by dots")
    header_part, payload_part, signature_part = token.split(".")
    header = _json_part(header_part)
    if header.get("alg") != "HS256":
        raise IdentityError(UNSUPPORTED_ALGORITHM, f"identity token algorithm {header.get('alg')!r}: only HS256")
    if "crit" in header:  # RFC 7515 4.1.11: extensions the verifier does not understand must be refused
        raise IdentityError(MALFORMED, "identity token header lists 'crit' extensions; this bridge supports none")
    signature = _b64decode(signature_part)
    signed = f"{header_part}.{payload_part}".encode("ascii")
    if not any(hmac.compare_digest(hmac.new(_key(s), signed, hashlib.sha256).digest(), signature) for s in secrets):
        raise IdentityError(BAD_SIGNATURE, "identity token signature does not match the configured identity key")
    claims = _json_part(payload_part)
    current = time.time() if now is None else now
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH or not is_text(subject):
        raise IdentityError(MALFORMED, f"identity token needs a 'sub' string of 1-{MAX_SUBJECT_LENGTH} characters")
    expires = _time_claim(claims, "exp", required=True)
    assert expires is not None  # required=True raises when it is missing
    if current > expires + leeway:
        raise IdentityError(TOKEN_EXPIRED, "identity token has expired: have the site's backend issue a fresh one")
    if expires > current + max_ttl + leeway:
        raise IdentityError(MALFORMED, f"identity token 'exp' lies more than {max_ttl:g} s ahead "
                            "(identity_max_ttl): have the backend sign tokens with a shorter lifetime")
    not_before, issued = _time_claim(claims, "nbf"), _time_claim(claims, "iat")
    if not_before is not None and current + leeway < not_before:
        raise IdentityError(NOT_YET_VALID, "identity token is not valid yet (nbf): check the backend's clock")
    if issued is not None and current + leeway < issued:
        raise IdentityError(NOT_YET_VALID, "identity token was issued in the future (iat): check the backend's clock")
    audiences = claims.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences
    if not isinstance(audiences, list) or audience not in audiences:
        raise IdentityError(WRONG_AUDIENCE, f"identity token audience must include {audience!r}")
    return subject
