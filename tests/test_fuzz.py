"""Property-based fuzzing (hypothesis) of everything the bridge parses: configuration, origins, handoff codes,
identity tokens and every API request. The property is always the one a user relies on: a documented error or a
valid result, never a crash, a 500 or a traceback.

Examples per test: FUZZ_EXAMPLES (default 300); CI may raise it. No example database is written.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import os
import re
import string
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from starlette.applications import Starlette

from cookiebridge.app import create_app
from cookiebridge.assets import build_assets
from cookiebridge.config import BY_NAME, SETTINGS, ConfigError, Settings, load_settings
from cookiebridge.errors import (
    BAD_CODE,
    CODES,
    EXPIRED,
    FORGED,
    INTERNAL,
    WRONG_DESTINATION,
    BridgeError,
)
from cookiebridge.handoff import HandoffCodes
from cookiebridge.identity import (
    TOKEN_ERRORS,
    IdentityError,
    sign_identity,
    verify_identity,
)
from cookiebridge.origins import OriginError, normalise_origin

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
# Failing examples are printed; the patch files hypothesis writes for them go to a temp dir, not the checkout.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "cookiebridge-hypothesis")
fuzz = settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

A, B = "https://domain-a.example", "https://domain-b.example:8443"
NAME = "customer-defined-session-cookie"
SECRET = "fuzz-test-key-Hj8kL2mN5pQ9rS3tV6wX"
IDENTITY_KEY = "fuzz-identity-Qm4vT9xK2pL7wZ3nR8bY"

# Every status and error code the API declares (cookiebridge/errors.py), except the 500 of a bug.
ERRORS = {code for code, declared in CODES.items() if declared is not INTERNAL}
STATUSES = {200} | {CODES[code].status for code in ERRORS}
IDENTITY_ERRORS = {error.code for error in TOKEN_ERRORS}
CODE_ERRORS = {error.code for error in (BAD_CODE, FORGED, EXPIRED, WRONG_DESTINATION)}
# A browser's serialisation of an origin: what may go into the CSP header and be compared with event.origin.
ORIGIN = re.compile(r"^https?://(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])"
                    r"(?::[1-9][0-9]{0,4})?$")

# Text including lone surrogates, control characters and astral planes.
any_text = st.text(st.characters(exclude_categories=()), max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)


# --- configuration --------------------------------------------------------------------------------------------

URLISH = st.builds(
    lambda scheme, host, port, tail: f"{scheme}{host}{port}{tail}",
    st.sampled_from(["https://", "http://", "HTTPS://", "", "ftp://", "https:/", "//", "null"]),
    st.one_of(st.sampled_from(["domain-a.example", "127.0.0.1", "[::1]", "localhost", "bücher.example",
                               "a.example.", "A.EXAMPLE", "[zz::1]", "0x7f.1", "a..b", "-a.example", "*"]), any_text),
    st.one_of(st.just(""), st.integers(-1, 70000).map(lambda port: f":{port}"), any_text.map(lambda t: ":" + t)),
    st.sampled_from(["", "/", "/path", "?q", "#f", " ", ";", " *", "\x00", "@evil.test"]),
)
setting_values = st.one_of(any_text, URLISH, st.integers(-10, 10**7), st.booleans(), st.none(), st.floats(),
                           st.lists(st.one_of(URLISH, any_text), max_size=3), st.lists(st.integers(), max_size=2))
SETTING_KEYS = [declared.name for declared in SETTINGS] + ["no_such_key"]


def check_settings(result: Settings) -> None:
    """What an accepted configuration must give: origins browsers can send, a CSP with exactly six directives
    and a template whose config block is the exact JSON of the settings."""
    assert all(ORIGIN.match(origin) for origin in result.trusted_origins), result.trusted_origins
    page = build_assets(result.trusted_origins, result.cookie_names, result.cookie_max_age)[-1]
    directives = page.headers["Content-Security-Policy"].split("; ")
    assert len(directives) == 6 and directives[-1] == "frame-ancestors " + " ".join(result.trusted_origins)
    html = page.body.decode()
    assert html.count("<script") == 2 and html.count("</script>") == 2
    config = json.loads(html.split('id="cookiebridge-config">', 1)[1].split("</script>", 1)[0])
    assert config["origins"] == list(result.trusted_origins) and config["names"] == list(result.cookie_names)
    assert Settings.from_json(result.to_json()) == result
    result.warnings()
    json.dumps(result.effective())


@fuzz
@given(st.dictionaries(st.sampled_from(SETTING_KEYS), setting_values, max_size=6))
@example({"port": math.inf})  # found by this test: OverflowError (TOML allows `port = inf`)
@example({"trusted_origins": ["https://a.example *"]})  # found by hand: a CSP-rewriting origin was accepted
def test_settings_from_flags_are_valid_or_one_line_config_errors(flags: dict[str, Any]) -> None:
    try:
        result = load_settings(environ={}, flags=flags)
    except ConfigError as error:
        assert "\n" not in str(error) and str(error)
        return
    check_settings(result)


@fuzz
@given(st.dictionaries(st.sampled_from(SETTING_KEYS).map(lambda key: "COOKIEBRIDGE_" + key.upper()),
                       st.one_of(any_text, URLISH), max_size=5))
def test_settings_from_the_environment_are_valid_or_config_errors(environ: dict[str, str]) -> None:
    assume(all("\x00" not in name + value for name, value in environ.items()))  # impossible in a real environment
    try:
        result = load_settings(environ=environ)
    except ConfigError as error:
        assert "\n" not in str(error)
        return
    check_settings(result)


toml_documents = st.one_of(
    any_text,
    st.dictionaries(st.sampled_from(SETTING_KEYS), st.one_of(any_text, URLISH, st.integers(), st.booleans(),
                                                             st.lists(URLISH, max_size=3)), max_size=5).map(
        lambda table: "[cookiebridge]\n" + "\n".join(f"{key} = {json.dumps(value)}" for key, value in table.items())),
)


@fuzz
@given(toml_documents)
@example("")  # found by this test: KeyError 'trusted_origins'
@example("port = inf")
def test_config_files_are_valid_or_config_errors(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("toml") / "bridge.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        result = load_settings(config_file=path, environ={})
    except ConfigError as error:  # one line that begins with what is wrong: the file, an unknown key or a setting
        assert "\n" not in str(error)
        assert str(error).startswith(("config file", "unknown")) or str(error).split()[0].rstrip(":") in BY_NAME
        return
    check_settings(result)


# --- origins --------------------------------------------------------------------------------------------------


@fuzz
@given(st.one_of(URLISH, any_text))
def test_origins_normalise_to_what_browsers_send_or_are_refused(value: str) -> None:
    try:
        origin = normalise_origin(value)
    except OriginError as error:
        assert "\n" not in str(error) and str(error).startswith("origin ")
        return
    assert ORIGIN.match(origin), origin
    assert normalise_origin(origin) == origin  # idempotent: what the bridge stores is what it compares


# --- handoff codes --------------------------------------------------------------------------------------------

codes = HandoffCodes([SECRET], ttl=60)
REAL_CODE, REAL_ID = codes.issue(B, A)


@fuzz
@given(st.one_of(any_text, json_values, st.text(string.ascii_letters + string.digits + "-_.", max_size=600)))
def test_arbitrary_codes_are_refused_with_a_documented_error(code: Any) -> None:
    with pytest.raises(BridgeError) as caught:
        codes.open(code, B, A + "/")
    assert caught.value.code in CODE_ERRORS


@fuzz
@given(st.integers(0, len(REAL_CODE) - 1), st.sampled_from(["flip", "cut", "insert", "swap"]),
       st.one_of(st.sampled_from(string.ascii_letters + string.digits + "-_."), st.characters(exclude_categories=())))
def test_mutated_real_codes_never_open_for_another_id(position: int, how: str, char: str) -> None:
    mutated = {
        "flip": REAL_CODE[:position] + char + REAL_CODE[position + 1:],
        "cut": REAL_CODE[:position],
        "insert": REAL_CODE[:position] + char + REAL_CODE[position:],
        "swap": REAL_CODE[position:] + REAL_CODE[:position],
    }[how]
    try:
        ident = codes.open(mutated, B, A + "/")
    except BridgeError as error:
        assert error.code in CODE_ERRORS - {WRONG_DESTINATION.code}
        return
    assert mutated == REAL_CODE and ident == REAL_ID  # one spelling per code (issue 17: padding bits, extra bytes)


# --- identity tokens ------------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header: Any, claims: Any, key: str = IDENTITY_KEY) -> str:
    head = b64(json.dumps(header).encode("utf-8", "surrogatepass"))
    body = b64(json.dumps(claims).encode("utf-8", "surrogatepass"))
    return f"{head}.{body}." + b64(hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())


claims = st.fixed_dictionaries(
    {}, optional={"sub": st.one_of(any_text, json_values), "aud": st.one_of(st.just("cookiebridge"), json_values),
                  "exp": st.one_of(st.integers(), st.floats(), json_values), "nbf": st.one_of(st.integers(), json_values),
                  "iat": json_values},
)
headers = st.one_of(st.just({"alg": "HS256", "typ": "JWT"}), st.dictionaries(any_text, json_values, max_size=3),
                    st.fixed_dictionaries({"alg": st.one_of(any_text, json_values)}), json_values)
B64URL = string.ascii_letters + string.digits + "-_"
# A part of a token: base64url, near-base64url (padding, +/, spaces, NUL) or any character at all (non-ASCII,
# surrogates, controls): issue 17 found `eyJhbGciOiJIUzI1NiJ9.☃.AAAA` answering 500, a case the old alphabet missed.
token_parts = st.one_of(st.text(B64URL, max_size=50), st.text(B64URL + "=+/! \x00", max_size=50), any_text,
                        st.sampled_from(["eyJhbGciOiJIUzI1NiJ9", "e30", "AAAA", ""]))
tokens = st.one_of(
    any_text,
    json_values,
    st.builds(signed, headers, st.one_of(claims, json_values)),
    st.lists(token_parts, min_size=1, max_size=5).map(".".join),
    st.tuples(token_parts, token_parts, token_parts).map(".".join),  # three parts: past the first shape check
)


@fuzz
@given(tokens)
@example("eyJhbGciOiJIUzI1NiJ9.e30.A")  # found by hand: binascii.Error escaped
@example("eyJhbGciOiJIUzI1NiJ9.\u2603.AAAA")  # issue 17: UnicodeEncodeError escaped (500 on the API)
@example(signed({"alg": "HS256"}, {"sub": "x", "aud": "cookiebridge", "exp": math.nan}))
def test_tokens_verify_to_a_subject_or_a_documented_identity_error(token: Any) -> None:
    try:
        subject = verify_identity(token, [IDENTITY_KEY], audience="cookiebridge")
    except IdentityError as error:
        assert error.code in IDENTITY_ERRORS and str(error)
        return
    assert isinstance(subject, str) and 0 < len(subject) <= 256
    subject.encode("utf-8")  # usable as a session key


# --- every API request ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    settings_ = load_settings(environ={}, flags={
        "trusted_origins": [A, B], "secret_key": SECRET, "identity_secret": IDENTITY_KEY, "rate_limit": "1000000",
        "store": f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'bridge.db'}"})
    return create_app(settings_)


async def asgi(app: Starlette, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
               ) -> tuple[int, dict[str, str], bytes]:
    """One request straight through ASGI, so header bytes no HTTP client would send can be tried too."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "https",
             "path": path, "raw_path": path.encode("utf-8", "surrogatepass"), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("192.0.2.10", 50000), "server": ("bridge.example", 443)}
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    answer = {name.decode("latin-1"): value.decode("latin-1") for name, value in start["headers"]}
    return start["status"], answer, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def check_answer(status: int, headers: dict[str, str], body: bytes, origin: bytes | None) -> dict[str, Any]:
    assert status in STATUSES, (status, body)
    assert b"Traceback" not in body
    data = json.loads(body)
    if status != 200:
        assert set(data) == {"error", "message"} and data["error"] in ERRORS and data["message"], data
    if headers.get("access-control-allow-origin"):
        assert origin is not None and headers["access-control-allow-origin"].encode("latin-1") == origin
        assert headers["access-control-allow-origin"] in (A, B)
    return data


ENDPOINTS = ["handoff", "handoff/redeem", "identity/save", "identity/load", "identity/delete"]
untrusted = st.one_of(st.sampled_from([b"null", b"https://domain-a.example.evil.test", b"HTTPS://DOMAIN-A.EXAMPLE",
                                       A.encode() + b"/"]), st.binary(max_size=40), st.none())
# Seven in ten examples come from a trusted origin, so most get past the origin check and reach the handlers.
origins = st.integers(0, 9).flatmap(lambda n: st.sampled_from([A.encode(), B.encode()]) if n < 7 else untrusted)
fields = st.fixed_dictionaries({}, optional={
    "name": st.one_of(st.just(NAME), json_values),
    "value": st.one_of(any_text, st.text(max_size=5000), json_values),
    "destination": st.one_of(st.sampled_from([A, B]), json_values),
    "code": st.one_of(st.just(REAL_CODE), st.text(max_size=600), json_values),
    "token": st.one_of(st.builds(lambda who: sign_identity(who, IDENTITY_KEY), any_text.filter(bool)), tokens),
    "__proto__": json_values,
})
# Requests that pass every check but carry odd values: they reach the store and the success paths.
well_formed = st.fixed_dictionaries({
    "name": st.just(NAME), "value": st.one_of(any_text.filter(bool), st.text(min_size=1, max_size=4096)),
    "destination": st.sampled_from([A, B]), "code": st.just(REAL_CODE),
    "token": st.builds(lambda who: sign_identity(who, IDENTITY_KEY), st.text(min_size=1, max_size=256))})
bodies = st.one_of(
    well_formed.map(lambda data: json.dumps(data).encode("utf-8", "surrogatepass")),
    fields.map(lambda data: json.dumps(data).encode("utf-8", "surrogatepass")),
    json_values.map(lambda data: json.dumps(data).encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
    st.integers(1, 9000).map(lambda depth: b"[" * depth + b"]" * depth),
)
extra_headers = st.lists(st.tuples(st.sampled_from([b"content-length", b"content-type", b"x-forwarded-for", b"origin"]),
                                   st.binary(max_size=24)), max_size=2)


@fuzz
@given(st.sampled_from(ENDPOINTS), origins, bodies, extra_headers)
# Found while building this catalogue, each a 500 before its fix:
@example(endpoint="handoff", origin=A.encode(), body=b"[" * 5000 + b"]" * 5000, extra=[])
@example(endpoint="handoff", origin=A.encode(), body=f'{{"name":"{NAME}","value":"v","destination":[]}}'.encode(), extra=[])
@example(endpoint="handoff", origin=A.encode(), body=f'{{"name":"{NAME}","value":"\\ud800","destination":"{B}"}}'.encode(),
         extra=[])
@example(endpoint="handoff/redeem", origin=A.encode(), body=b"{}", extra=[(b"content-length", b"\xb2")])
def test_every_api_request_gets_a_documented_json_answer(app: Starlette, endpoint: str, origin: bytes | None,
                                                         body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"text/plain;charset=UTF-8")] + ([(b"origin", origin)] if origin is not None else [])
    headers += extra
    sent_origins = [value for name, value in headers if name == b"origin"]
    status, answer, raw = asyncio.run(asgi(app, "POST", "/api/v1/" + endpoint, headers, body))
    data = check_answer(status, answer, raw, sent_origins[0] if sent_origins else None)
    event(f"{status} {data.get('error', '')}")  # pytest --hypothesis-show-statistics: how deep the examples got
    if status == 200:
        assert sent_origins and sent_origins[0] in (A.encode(), B.encode())
        expected = {"handoff": {"code", "expiresIn"}, "handoff/redeem": {"name", "value", "from"},
                    "identity/save": {"saved"}, "identity/load": {"value"}, "identity/delete": {"deleted"}}[endpoint]
        assert set(data) == expected


@fuzz
@given(st.sampled_from(["GET", "HEAD", "POST", "PUT", "OPTIONS", "DELETE"]),
       st.one_of(st.sampled_from(["/iframe.html", "/healthz", "/api/v1/handoff", "/cookie-provider.min.js",
                                  "/api/v1/", "/../etc/passwd"]),
                 # As uvicorn delivers paths: percent-decoded with errors="replace", so never a lone surrogate.
                 any_text.map(lambda text: "/" + text.encode("utf-8", "replace").decode("utf-8"))),
       origins)
def test_any_method_and_path_gets_a_documented_answer(app: Starlette, method: str, path: str, origin: bytes | None) -> None:
    headers = [(b"origin", origin)] if origin is not None else []
    status, answer, body = asyncio.run(asgi(app, method, path, headers, b""))
    assert status in STATUSES | {204, 304}
    if status >= 400 and method != "HEAD" and body:
        assert json.loads(body)["error"] in ERRORS
