import base64
import hashlib
import hmac
import json

import pytest

from cookiebridge.identity import IdentityError, sign_identity, verify_identity

KEY = "identity-key-for-docs-0123456789"
NOW = 1767225600  # 2026-01-01T00:00:00Z
# The README's test vector: any backend language must produce exactly this token for these inputs.
VECTOR = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJjdXN0b21lci00MiIsImF1ZCI6ImNvb2tpZWJyaWRnZSIsImlhdCI6MTc2NzIyNTYwMCwiZXhwIjoxNzY3MjI5MjAwfQ."
    "BJ3vft1hGLqPeGIQ-cDF0MqnADmFtkjx6gZBTus-n14"
)


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def handmade(header: dict, claims: dict, key: str = KEY) -> str:
    signed = f"{b64(header)}.{b64(claims)}"
    return signed + "." + b64(hmac.new(key.encode(), signed.encode(), hashlib.sha256).digest())


def test_python_helper_matches_the_documented_vector() -> None:
    assert sign_identity("customer-42", KEY, audience="cookiebridge", ttl=3600, now=NOW) == VECTOR
    assert verify_identity(VECTOR, [KEY], audience="cookiebridge", now=NOW + 10) == "customer-42"


def test_a_token_made_with_only_the_standard_library_is_accepted() -> None:
    token = handmade({"alg": "HS256", "typ": "JWT"}, {"sub": "c-7", "aud": ["other", "cookiebridge"], "exp": NOW + 60})
    assert verify_identity(token, [KEY], audience="cookiebridge", now=NOW) == "c-7"


def test_previous_keys_still_verify_during_rotation() -> None:
    token = sign_identity("c-1", "old-key-0123456789abcdef", now=NOW)
    assert verify_identity(token, [KEY, "old-key-0123456789abcdef"], audience="cookiebridge", now=NOW) == "c-1"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (VECTOR[:-2] + ("AA" if not VECTOR.endswith("AA") else "BB"), "bad-signature"),
        (sign_identity("customer-42", "another-key-0123456789", now=NOW), "bad-signature"),
        (sign_identity("customer-42", KEY, now=NOW - 7200, ttl=3600), "token-expired"),
        (sign_identity("customer-42", KEY, audience="someone-else", now=NOW), "wrong-audience"),
        (handmade({"alg": "none", "typ": "JWT"}, {"sub": "x", "aud": "cookiebridge", "exp": NOW + 60}), "unsupported-algorithm"),
        (b64({"alg": "none"}) + "." + b64({"sub": "x", "aud": "cookiebridge", "exp": NOW + 60}) + ".", "unsupported-algorithm"),
        (handmade({"alg": "HS512", "typ": "JWT"}, {"sub": "x", "aud": "cookiebridge", "exp": NOW + 60}), "unsupported-algorithm"),
        (handmade({"alg": "HS256"}, {"sub": "x", "aud": "cookiebridge"}), "malformed"),
        (handmade({"alg": "HS256"}, {"sub": "", "aud": "cookiebridge", "exp": NOW + 60}), "malformed"),
        (handmade({"alg": "HS256"}, {"sub": "x", "aud": "cookiebridge", "exp": NOW + 60, "nbf": NOW + 600}), "not-yet-valid"),
        ("not-a-token", "malformed"),
        ("a.b.c", "malformed"),
        (b64({"alg": "HS256"}) + ".e30.!!", "malformed"),
        ("e30.e30.", "unsupported-algorithm"),
        (None, "malformed"),
        ("x" * 5000, "malformed"),
    ],
)
def test_bad_tokens_are_refused_with_a_code_and_a_message(token: object, code: str) -> None:
    with pytest.raises(IdentityError) as caught:
        verify_identity(token, [KEY], audience="cookiebridge", now=NOW)
    assert caught.value.code == code
    assert str(caught.value)
