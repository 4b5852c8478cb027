"""Attack catalogue, server side: what a hostile client tries against the bridge's HTTP surface and what it gets.

Every test names the attack in its docstring and asserts what a customer or operator would notice: no session
value in the answer, no CORS grant, no change to stored sessions, a documented JSON error instead of a crash.
Cases that tests/test_api.py, test_identity.py, test_app.py and test_origins.py already cover are listed in
SECURITY.md, not repeated here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Iterator

import pytest
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cookiebridge.app import create_app
from cookiebridge.config import ConfigError, Settings, secret_weakness
from cookiebridge.handoff import SALT
from cookiebridge.identity import sign_identity
from cookiebridge.stores import open_store
from testsupport import make_settings, sqlite_url
from testsupport.api import cookiebridge, issue, post, token
from testsupport.settings import IDENTITY_KEY, NAME, VALUE, A, B, C

SECRET = "attack-test-key-Xq7P2mZ9vL4rT8wK3nB6"
ENDPOINTS = ["handoff", "handoff/redeem", "identity/save", "identity/load", "identity/delete"]


def bridge_settings(tmp_path: Path, **flags: object) -> Settings:
    defaults = {"secret_key": SECRET, "identity_secret": IDENTITY_KEY, "store": sqlite_url(tmp_path)}
    return make_settings(**{**defaults, **flags})


@pytest.fixture
def app(tmp_path: Path) -> Starlette:
    return create_app(bridge_settings(tmp_path))


@pytest.fixture
def api(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def body_for(endpoint: str) -> dict[str, object]:
    """A request that a trusted origin would get a 200 for."""
    return {
        "handoff": {"name": NAME, "value": VALUE, "destination": B},
        "handoff/redeem": {"referrer": A + "/", "code": "x"},
        "identity/save": {"token": token(), "name": NAME, "value": "attacker-value"},
        "identity/load": {"token": token(), "name": NAME},
        "identity/delete": {"token": token(), "name": NAME},
    }[endpoint]


# --- untrusted origins ----------------------------------------------------------------------------------------

UNTRUSTED = {
    "same host, other port": "https://domain-a.example:8443",
    "http downgrade": "http://domain-a.example",
    "look-alike suffix": "https://domain-a.example.evil.test",
    "look-alike prefix": "https://evil-domain-a.example",
    "upper case": "https://DOMAIN-A.example",
    "trailing dot": "https://domain-a.example.",
    "null (sandboxed frame, data: URL)": "null",
    "with a path": "https://domain-a.example/",
    "two origins": f"{A} {B}",
    "wildcard": "*",
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("origin", UNTRUSTED.values(), ids=UNTRUSTED.keys())
def test_untrusted_origin_forms_get_nothing_from_any_endpoint(api: TestClient, origin: str, endpoint: str) -> None:
    """Attacker: calls every API endpoint with an Origin that resembles a trusted one (other port, http, look-alike
    host, case or trailing-dot variant, `null`). Seen: 403 untrusted-origin, no CORS grant (a browser page could not
    read even that), and the victim's saved session is neither read, replaced nor deleted."""
    assert post(api, "identity/save", A, {"token": token(), "name": NAME, "value": VALUE})[0] == 200
    status, body, headers = post(api, endpoint, origin, body_for(endpoint))
    assert (status, body["error"]) == (403, "untrusted-origin")
    assert "access-control-allow-origin" not in headers and VALUE not in json.dumps(body)
    preflight = api.options("/api/v1/" + endpoint, headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    assert post(api, "identity/load", B, {"token": token(), "name": NAME})[1] == {"value": VALUE}


# --- hostile bodies -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "[" * 8000 + "]" * 8000,
        '{"name":' + "{\"a\":" * 2500 + "1" + "}" * 2500 + "}",
    ],
    ids=["nested arrays", "nested objects"],
)
def test_deeply_nested_json_is_refused_not_crashed_on(api: TestClient, body: str) -> None:
    """Attacker: a body under the 16 KiB limit nested thousands of levels deep, which overflows Python's JSON
    decoder. Seen before the fix: 500 and a traceback in the log. Now: 400 bad-json, and the bridge keeps serving."""
    status, got, _ = post(api, "handoff", A, body)
    assert (status, got["error"]) == (400, "bad-json")
    assert post(api, "handoff/redeem", B, {"referrer": A + "/", "code": issue(api)})[1]["value"] == VALUE


def test_deeply_nested_identity_token_header_is_malformed(api: TestClient) -> None:
    """Attacker: an identity token whose header is 1,400 nested JSON arrays (decoded before any signature check).
    Seen before the fix: 500. Now: 403 malformed."""
    header = base64.urlsafe_b64encode(("[" * 1400 + "]" * 1400).encode()).rstrip(b"=").decode()
    status, body, _ = post(api, "identity/load", A, {"token": f"{header}.e30.AAAA", "name": NAME})
    assert (status, body["error"]) == (403, "malformed")


@pytest.mark.parametrize("signature", ["A", "AAAAA", "A" * 41])
def test_identity_token_with_impossible_base64_length_is_malformed(api: TestClient, signature: str) -> None:
    """Attacker: a token whose signature part has 4n+1 characters, which is not base64 at all. Seen before the fix:
    500 (binascii.Error escaped). Now: 403 malformed."""
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    status, body, _ = post(api, "identity/load", A, {"token": f"{header}.e30.{signature}", "name": NAME})
    assert (status, body["error"]) == (403, "malformed")


@pytest.mark.parametrize("destination", [[], {}, [B], {"origin": B}], ids=["list", "object", "list of B", "object"])
def test_non_string_destination_is_refused(api: TestClient, destination: object) -> None:
    """Attacker: a JSON list or object as the handoff destination (unhashable in Python). Seen before the fix:
    500. Now: 403 bad-destination and no code."""
    status, body, _ = post(api, "handoff", A, {"name": NAME, "value": VALUE, "destination": destination})
    assert (status, body["error"]) == (403, "bad-destination") and "code" not in body


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"Content-Length": "999999999999"}, b"{}"),
        ({}, (b"{" + b" " * 4096 for _ in range(8))),  # chunked: no length declared, 32 KiB streamed
    ],
    ids=["declared length", "chunked stream"],
)
def test_bodies_over_the_limit_are_refused_without_reading_them_all(app: Starlette, headers: dict, content: object) -> None:
    """Attacker: declares a terabyte body, or streams an undeclared one past 16 KiB. Seen: 413 too-large."""
    with TestClient(app) as client:
        response = client.post("/api/v1/handoff", headers={"Origin": A, **headers}, content=content)
    assert (response.status_code, response.json()["error"]) == (413, "too-large")


@pytest.mark.parametrize(
    "body", [b"", b"\xff\xfe\x00{", b"\x00" * 10, b'{"name": NaN}' + b"\xc3"],
    ids=["empty", "utf-16 bom", "nul bytes", "broken utf-8"],
)
def test_non_json_and_broken_encodings_are_bad_json(api: TestClient, body: bytes) -> None:
    """Attacker: empty, binary or mis-encoded bodies. Seen: 400 bad-json with a message, never a 500."""
    status, got, _ = post(api, "handoff", A, body)
    assert (status, got["error"]) == (400, "bad-json") and got["message"]


@pytest.mark.parametrize(
    "body",
    [('{"name": "%s", "value": "\\ud800", "destination": "%s"}' % (NAME, B)).encode(),
     ('{"name": "%s", "value": "\ud800", "destination": "%s"}' % (NAME, B)).encode("utf-8", "surrogatepass")],
    ids=["escaped", "raw bytes"],
)
def test_lone_surrogates_in_a_value_are_bad_value(api: TestClient, body: bytes) -> None:
    """Attacker: a session value holding a lone UTF-16 surrogate, as a JSON escape or as raw bytes (Python's JSON
    decoder lets both through). Seen before the fix: 500 when the bridge measured the value. Now: 400 bad-value."""
    status, got, _ = post(api, "handoff", A, body)
    assert (status, got["error"]) == (400, "bad-value")


def test_lone_surrogate_subject_is_malformed(api: TestClient) -> None:
    """Attacker (with a backend that signs whatever id it is given): a `sub` of one lone surrogate. Seen before the
    fix: 500 when the bridge hashed the session key. Now: 403 malformed."""
    status, body, _ = post(api, "identity/save", A, {"token": token("\ud800"), "name": NAME, "value": VALUE})
    assert (status, body["error"]) == (403, "malformed")


@pytest.mark.parametrize(
    "body",
    [
        {"__proto__": {"name": NAME}, "value": VALUE, "destination": B},
        {"constructor": {"prototype": {"name": NAME}}, "value": VALUE, "destination": B},
        {"name": "__proto__", "value": VALUE, "destination": B},
        {"name": "constructor", "value": VALUE, "destination": B},
        {"name": NAME, "value": VALUE, "destination": "__proto__"},
    ],
    ids=["__proto__ object", "constructor.prototype", "__proto__ name", "constructor name", "__proto__ destination"],
)
def test_prototype_polluting_keys_are_plain_data(api: TestClient, body: dict) -> None:
    """Attacker: JSON keys and values that pollute prototypes in JavaScript servers (`__proto__`, `constructor`),
    hoping an inherited `name` passes the cookie-name check. Seen: they are ordinary keys; 403 with the documented
    code, no code issued; a normal handoff right after still works."""
    status, got, _ = post(api, "handoff", A, json.dumps(body))
    assert status == 403 and got["error"] in ("name-not-allowed", "bad-destination") and "code" not in got
    assert post(api, "handoff/redeem", B, {"referrer": A + "/", "code": issue(api)})[1]["value"] == VALUE


def test_identity_claims_cannot_be_inherited_through_proto(api: TestClient) -> None:
    """Attacker (with a valid signature, e.g. a backend bug): puts `aud` inside `__proto__`, which a JavaScript
    verifier would read through the prototype chain. Seen: 403 wrong-audience."""
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    claims = {"sub": "c-1", "exp": int(time.time()) + 60, "__proto__": {"aud": "cookiebridge"}}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    signature = hmac.new(IDENTITY_KEY.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    status, body, _ = post(api, "identity/load", A, {"token": forged, "name": NAME})
    assert (status, body["error"]) == (403, "wrong-audience")


@pytest.mark.parametrize("exp", ["NaN", "Infinity", '"9999999999"', "true"])
def test_identity_token_that_would_never_expire_is_malformed(api: TestClient, exp: str) -> None:
    """Attacker (or a careless backend): an `exp` of NaN or Infinity (Python's json writes both), a string or a
    boolean. Before the fix NaN and Infinity passed every expiry check: a token valid forever. Now: 403 malformed."""
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(f'{{"sub":"c-1","aud":"cookiebridge","exp":{exp}}}'.encode()).rstrip(b"=").decode()
    signature = hmac.new(IDENTITY_KEY.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    signed = f"{header}.{payload}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    status, body, _ = post(api, "identity/load", A, {"token": signed, "name": NAME})
    assert (status, body["error"]) == (403, "malformed")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "hs256", "HS256 ", "HS384", "RS256", None])
def test_algorithm_spellings_other_than_hs256_are_refused(api: TestClient, alg: object) -> None:
    """Attacker: `alg` variants that sloppy JWT libraries normalise (case, spaces, none) or confuse (RS256 verified
    with the HMAC key), each signed with the real identity key. Seen: 403 unsupported-algorithm."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": alg, "typ": "JWT"}).encode()).rstrip(b"=").decode()
    claims = {"sub": "c-1", "aud": "cookiebridge", "exp": int(time.time()) + 60}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    signature = hmac.new(IDENTITY_KEY.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    signed = f"{header}.{payload}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    status, body, _ = post(api, "identity/load", A, {"token": signed, "name": NAME})
    assert (status, body["error"]) == (403, "unsupported-algorithm")


@pytest.mark.parametrize("endpoint", ["identity/save", "identity/load", "identity/delete"])
@pytest.mark.parametrize("name", ["other-cookie", "__cookiebridge_test", NAME.upper(), ["x"], None])
def test_cookie_names_outside_the_set_cannot_touch_identity_sessions(api: TestClient, endpoint: str, name: object) -> None:
    """Attacker: a valid identity token with a cookie name the bridge was not configured for (another cookie of
    the site, the bridge's own test cookie, a case variant, a list). Seen: 403 name-not-allowed, and the real
    session under the configured name is untouched."""
    assert post(api, "identity/save", A, {"token": token(), "name": NAME, "value": VALUE})[0] == 200
    status, body, _ = post(api, endpoint, A, {"token": token(), "name": name, "value": "x"})
    assert (status, body["error"]) == (403, "name-not-allowed")
    assert post(api, "identity/load", B, {"token": token(), "name": NAME})[1] == {"value": VALUE}


# --- handoff codes --------------------------------------------------------------------------------------------


def test_code_signed_with_another_key_is_forged(api: TestClient) -> None:
    """Attacker: runs their own cookiebridge (or itsdangerous) and signs a well-formed code for domain-b with a key
    of their own. Seen: 403 forged; the victim's store is not consulted."""
    code = URLSafeTimedSerializer("attacker-key-0123456789abcdef", salt=SALT).dumps(["guessed-id", B])
    status, body, _ = post(api, "handoff/redeem", B, {"referrer": A + "/", "code": code})
    assert (status, body["error"]) == (403, "forged")


def test_code_with_a_rewritten_destination_is_forged(api: TestClient) -> None:
    """Attacker: takes a real code issued for domain-b and rewrites its readable payload to name domain-c, where
    the attacker controls a page. Seen: 403 forged at domain-c, and the code still works once at domain-b."""
    code = issue(api)
    encoding = URLSafeSerializer("any key")  # the payload part is only encoded (maybe zlib-compressed), not secret
    compressed = code.startswith(".")
    payload, rest = code.lstrip(".").split(".", 1)
    decoded = encoding.load_payload(("." if compressed else "").encode() + payload.encode())
    decoded[1] = C
    rewritten = encoding.dump_payload(decoded).decode()
    status, body, _ = post(api, "handoff/redeem", C, {"referrer": A + "/", "code": f"{rewritten}.{rest}"})
    assert (status, body["error"]) == (403, "forged")
    assert post(api, "handoff/redeem", B, {"referrer": A + "/", "code": code})[1]["value"] == VALUE


def test_brute_force_is_throttled_per_address_and_never_hits(tmp_path: Path) -> None:
    """Attacker: guesses codes from one address (the code carries 128 random bits and a signature, so guessing is
    hopeless, but it costs the store a write per request). Seen: no guess accepted, 429 rate-limited after the
    limit, and a customer at another address still redeems their code."""
    app = create_app(bridge_settings(tmp_path, rate_limit="20"))
    with TestClient(app, client=("203.0.113.66", 40000)) as attacker, TestClient(app, client=("198.51.100.7", 40001)) as customer:
        code = issue(customer)
        guesses = [post(attacker, "handoff/redeem", B, {"referrer": A + "/", "code": code[:-8] + f"{n:08d}"}) for n in range(30)]
        assert [status for status, _, _ in guesses] == [403] * 20 + [429] * 10
        assert all("value" not in body for _, body, _ in guesses)
        assert guesses[-1][1]["error"] == "rate-limited"
        assert post(customer, "handoff/redeem", B, {"referrer": A + "/", "code": code})[1]["value"] == VALUE


@pytest.mark.parametrize("address", ["x" * 300, "kunde-ü", "::ffff:192.0.2.1%eth0\x00"], ids=["300 chars", "non-ascii", "nul"])
def test_forged_client_address_cannot_crash_the_rate_limit(app: Starlette, address: str) -> None:
    """Attacker: behind a proxy trusted with `--proxy-headers` (worst case `--forwarded-allow-ips '*'`), sends an
    X-Forwarded-For that is no address: 300 characters, non-ASCII, a NUL. Seen before the fix: 500 on every API
    call (the rate-limit key broke the store's key rules). Now: normal answers, still counted per address."""
    with TestClient(app, client=(address, 1)) as client:
        code = issue(client)
        assert post(client, "handoff/redeem", B, {"referrer": A + "/", "code": code})[1]["value"] == VALUE


def test_minted_link_is_bounded_to_one_use_one_destination_and_its_lifetime(tmp_path: Path) -> None:
    """Residual risk (session fixation, see SECURITY.md): anyone can send `Origin: https://domain-a` from a script
    and mint a code for a session value they choose, then mail the link to a victim. Seen: the code works at its
    destination only, once, and not after handoff_ttl; what it carries is only the attacker's own value."""
    with TestClient(create_app(bridge_settings(tmp_path, handoff_ttl="5"))) as client:
        minted = issue(client, origin=A, destination=B, value="attackers-own-session")
        assert post(client, "handoff/redeem", C, {"referrer": A + "/", "code": minted})[1]["error"] == "wrong-destination"
        assert post(client, "handoff/redeem", B, {"referrer": A + "/", "code": minted})[1]["value"] == "attackers-own-session"
        assert post(client, "handoff/redeem", B, {"referrer": A + "/", "code": minted})[1]["error"] == "used"
        late = issue(client, origin=A, destination=B, value="attackers-own-session")
        time.sleep(6.1)
        assert post(client, "handoff/redeem", B, {"referrer": A + "/", "code": late})[1]["error"] == "expired"


# --- other HTTP surface ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/../cookiebridge/config.py", "/%2e%2e/%2e%2e/etc/passwd", "/static/../pyproject.toml", "/iframe.html/..%2f",
             "/templates/iframe.html", "/cookiebridge.db"],
)
def test_path_traversal_finds_nothing_but_the_served_files(api: TestClient, path: str) -> None:
    """Attacker: walks out of the served files to read source, templates, the SQLite store or system files.
    Seen: 404 with a JSON error; only the fixed routes exist."""
    response = api.get(path)
    assert response.status_code == 404 and response.json()["error"] == "not-found"
    assert "secret" not in response.text.lower() and "root:" not in response.text


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_the_api_get_a_json_405(api: TestClient, method: str) -> None:
    """Attacker: GET (e.g. an <img> or a link prefetch) or other methods on the API, hoping for a side effect or a
    cached answer. Seen: 405 with a JSON error and an Allow header, nothing issued. (Was a text/plain 405.)"""
    response = api.request(method, "/api/v1/handoff", headers={"Origin": A})
    assert response.status_code == 405 and response.json()["error"] == "method-not-allowed"
    assert response.headers["allow"] == "POST"


# --- configuration an attacker might slip in ------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    ["https://a.example *", "https://a.example;script-src *", "https://a.example; frame-ancestors *",
     "https://a.example\x00", 'https://a.example"', "https://a_b.example", "https://[zz::1]"],
    ids=["space wildcard", "semicolon directive", "second frame-ancestors", "nul", "quote", "underscore", "bad ipv6"],
)
def test_trusted_origin_values_cannot_inject_into_the_csp_header(origin: str) -> None:
    """Attacker (a pasted or templated config value): an origin carrying a space and `*`, a `;` and a new
    directive, a NUL or a quote. Before the fix `https://a.example *` was accepted and became
    `frame-ancestors https://a.example *`: any site could frame the bridge. Now: one-line ConfigError."""
    with pytest.raises(ConfigError, match="trusted_origins: origin") as caught:
        make_settings(trusted_origins=[origin], secret_key=SECRET)
    assert "\n" not in str(caught.value)


def test_odd_spellings_of_trusted_origins_become_the_form_browsers_send(tmp_path: Path) -> None:
    """Upper-case, default-port, trailing-slash and IDN spellings in the configuration. Seen: the CSP header has
    its six directives, frame-ancestors is exactly the normalised list, and the API grants CORS to the browser's
    spelling of the origin only (`https://DOMAIN-A.example` from a script stays untrusted)."""
    configured = ["HTTPS://Domain-A.example:443/", "https://BÜCHER.example", "https://[2001:DB8::1]:8443"]
    expected = ["https://domain-a.example", "https://xn--bcher-kva.example", "https://[2001:db8::1]:8443"]
    settings = make_settings(trusted_origins=configured, secret_key=SECRET, store=sqlite_url(tmp_path))
    with TestClient(create_app(settings)) as client:
        directives = [part.strip() for part in client.get("/iframe.html").headers["content-security-policy"].split(";")]
        assert len(directives) == 6 and directives[-1] == "frame-ancestors " + " ".join(expected)
        body = {"name": NAME, "value": VALUE, "destination": expected[1]}
        assert post(client, "handoff", expected[0], body)[2]["access-control-allow-origin"] == expected[0]
        assert post(client, "handoff", "https://DOMAIN-A.example", body)[1]["error"] == "untrusted-origin"


# --- keys: weak, default and rotated --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("change-me-change-me-change-me-1234", "contains the word 'change'"),
        ("your-secret-key-here-0123456789ab", "contains the word 'secret'"),
        ("k" * 32, "repeated or sequential"),
        ("0123456789abcdef0123456789abcdef", "repeated or sequential"),
        ("Zx9#kQ2!mW7$pL4@", "only 16 characters"),
    ],
)
def test_check_warns_about_weak_and_example_secrets(secret: str, reason: str) -> None:
    """Attacker: guesses a placeholder, short or patterned secret_key and forges handoff codes offline. Seen: `check`
    and `serve` print a warning naming the weakness (never the key) and how to generate a strong one."""
    assert reason in (secret_weakness(secret) or "")
    notes = make_settings(trusted_origins=[A], secret_key=secret, identity_secret=secret[::-1]).warnings()
    weak = [note for note in notes if note.startswith("secret_key looks weak")]
    assert len(weak) == 1 and secret not in " ".join(notes) and "token_urlsafe(32)" in weak[0]


def test_cookiebridge_check_prints_the_weak_key_warning_without_the_key() -> None:
    """The operator's view: `cookiebridge check` with a placeholder key exits 0 (it is valid) but says on stderr
    that the key looks weak; the key itself appears nowhere."""
    placeholder = "please-change-me-before-production"
    result = cookiebridge("check", "--trusted-origin", A, env={"COOKIEBRIDGE_SECRET_KEY": placeholder})
    assert result.returncode == 0
    assert "cookiebridge: warning: secret_key looks weak (it contains the word 'change'" in result.stderr
    assert placeholder not in result.stdout + result.stderr


def test_strong_generated_secrets_get_no_warning() -> None:
    """No false alarm: 200 keys from secrets.token_urlsafe(32) and token_hex(32) pass the weak-key check."""
    import secrets

    keys = [secrets.token_urlsafe(32) for _ in range(100)] + [secrets.token_hex(32) for _ in range(100)]
    assert [key for key in keys if secret_weakness(key)] == []
    settings = make_settings(trusted_origins=[A], secret_key=keys[0], identity_secret=keys[1])
    assert settings.warnings() == []


def test_check_warns_about_shared_keys_and_a_proxy_trusting_everyone() -> None:
    """Operator mistakes an attacker profits from: the identity key (held by every site's backend) equal to the
    bridge's signing key, and X-Forwarded-For trusted from anyone. Seen: a warning for each."""
    key = "Qm4vT9xK2pL7wZ3nR8bY6cH1dF5gJ0sA"
    notes = make_settings(trusted_origins=[A], secret_key=key, identity_secret=key, proxy_headers="true",
                          forwarded_allow_ips="*").warnings()
    assert any(note.startswith("identity_secret is the same as secret_key") for note in notes)
    assert any(note.startswith("forwarded_allow_ips = '*'") for note in notes)


def test_rotated_secret_key_keeps_codes_in_flight_valid(tmp_path: Path) -> None:
    """Rotation: a code issued just before the operator changed secret_key is redeemed after the restart while the
    old key is listed in previous_secret_keys; a code signed with a key no longer listed is forged."""
    old, new = "old-Qm4vT9xK2pL7wZ3nR8bY6cH1dF5g", "new-Hj8kL2mN5pQ9rS3tV6wX1yZ4aB7c"
    flags = {"trusted_origins": [A, B], "store": sqlite_url(tmp_path)}
    with TestClient(create_app(make_settings(**flags, secret_key=old))) as before:
        in_flight, abandoned = issue(before), issue(before)
    rotated = make_settings(environ={"COOKIEBRIDGE_PREVIOUS_SECRET_KEYS": old}, **flags, secret_key=new)
    assert rotated.previous_secret_keys == (old,) and rotated.effective()["previous_secret_keys"] == ["********"]
    assert any("1 old key(s) still accepted" in note for note in rotated.warnings())
    with TestClient(create_app(rotated)) as after:
        assert post(after, "handoff/redeem", B, {"referrer": A + "/", "code": in_flight})[1]["value"] == VALUE
        fresh = issue(after)
    assert URLSafeTimedSerializer(new, salt=SALT).loads(fresh)  # new codes are signed with the new key
    with TestClient(create_app(make_settings(**flags, secret_key=new))) as retired:
        assert post(retired, "handoff/redeem", B, {"referrer": A + "/", "code": abandoned})[1]["error"] == "forged"


def test_rotated_identity_secret_accepts_old_tokens_until_removed(tmp_path: Path) -> None:
    """Rotation: backends switch to a new identity key one by one. Tokens signed with the previous key still load
    the session while it is listed in previous_identity_secrets; once removed, they are refused (bad-signature)."""
    new_key = "new-identity-Hj8kL2mN5pQ9rS3tV6wX"
    old_token = sign_identity("customer-42", IDENTITY_KEY)
    rotating = bridge_settings(tmp_path, identity_secret=new_key, previous_identity_secrets=[IDENTITY_KEY])
    with TestClient(create_app(rotating)) as client:
        assert post(client, "identity/save", A, {"token": old_token, "name": NAME, "value": VALUE})[0] == 200
        new_token = sign_identity("customer-42", new_key)
        assert post(client, "identity/load", B, {"token": new_token, "name": NAME})[1] == {"value": VALUE}
    with TestClient(create_app(bridge_settings(tmp_path, identity_secret=new_key))) as client:
        assert post(client, "identity/load", B, {"token": old_token, "name": NAME})[1]["error"] == "bad-signature"
        assert post(client, "identity/load", B, {"token": new_token, "name": NAME})[1] == {"value": VALUE}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"previous_secret_keys": ["short"]}, "previous_secret_keys: a key of 5 characters is too short"),
        ({"previous_identity_secrets": ["x" * 32]}, "previous_identity_secrets is set but identity_secret is not"),
    ],
)
def test_rotation_settings_are_validated(flags: dict, message: str) -> None:
    """Operator error during rotation: a truncated old key, or old identity keys without a current one. Seen: one
    ConfigError line naming the setting, no key shown."""
    with pytest.raises(ConfigError, match=message):
        make_settings(trusted_origins=[A], secret_key=SECRET, **flags)


# --- issue 17: one request's 500, token and code edges, trailing slashes ----------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_token(claims: dict, header: dict | None = None, key: str = IDENTITY_KEY) -> str:
    head = _b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}." + _b64(hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())


@pytest.mark.parametrize("endpoint", ["identity/save", "identity/load", "identity/delete"])
def test_non_ascii_identity_token_is_malformed_not_a_500(api: TestClient, endpoint: str) -> None:
    """Attacker: an identity token whose payload part is a snowman (`eyJhbGciOiJIUzI1NiJ9.☃.AAAA`). Seen before the
    fix: a text/plain 500 without CORS and about 50 lines of traceback per request. Now: 403 malformed, readable by
    the calling site."""
    status, body, headers = post(api, endpoint, A, {"token": "eyJhbGciOiJIUzI1NiJ9.\u2603.AAAA", "name": NAME,
                                                    "value": "v"})
    assert (status, body["error"]) == (403, "malformed") and headers["access-control-allow-origin"] == A


def test_an_unexpected_exception_is_a_json_500_and_one_log_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """Any bug left (simulated: the store raises a plain RuntimeError, and so does /healthz). Seen before the fix:
    text/plain 500 without CORS and a traceback in the log. Now: JSON 500 `internal` with CORS and Cache-Control,
    and exactly one log line each, naming the file and line, with no traceback."""
    import cookiebridge.app as app_module

    async def broken(*args: object) -> None:
        raise RuntimeError("simulated bug\nwith a second line")

    monkeypatch.setattr(app_module, "healthz", broken)
    settings = bridge_settings(tmp_path)
    store = open_store(settings.store)
    app = create_app(settings, store)
    monkeypatch.setattr(store, "get", broken)
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level("ERROR"):
        status, body, headers = post(client, "identity/load", A, {"token": token(), "name": NAME})
        health = client.get("/healthz")
    assert (status, body["error"]) == (500, "internal") and headers["access-control-allow-origin"] == A
    assert headers["cache-control"] == "no-store"
    assert (health.status_code, health.json()["error"]) == (500, "internal")
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 2 and all(record.exc_info is None for record in errors)
    assert all("\n" not in record.getMessage() and "RuntimeError: simulated bug" in record.getMessage() for record in errors)


@pytest.mark.parametrize(
    ("exp_ahead", "expected"),
    [(1e308, "malformed"), (2 * 24 * 3600, "malformed"), (23 * 3600, None)],
    ids=["1e308", "two days", "23 hours"],
)
def test_identity_token_lifetime_is_capped(api: TestClient, exp_ahead: float, expected: str | None) -> None:
    """Attacker holding a leaked token signed with an `exp` of 1e308 (valid forever) or days ahead. Seen before the
    fix: accepted. Now: 403 malformed beyond identity_max_ttl (a day by default); a 23-hour token still works."""
    status, body, _ = post(api, "identity/load", A, {"token": signed_token(
        {"sub": "c-1", "aud": "cookiebridge", "exp": time.time() + exp_ahead}), "name": NAME})
    assert (status, body.get("error")) == ((200, None) if expected is None else (403, expected))


@pytest.mark.parametrize(
    ("claims", "expected"),
    [({"nbf": "NaN"}, "malformed"), ({"nbf": float("nan")}, "malformed"), ({"nbf": "2030-01-01"}, "malformed"),
     ({"nbf": True}, "malformed"), ({"nbf": [1]}, "malformed"), ({"nbf": None}, "malformed"),
     ({"iat": 4102444800}, "not-yet-valid"), ({"iat": "yesterday"}, "malformed")],
    ids=["nbf NaN string", "nbf NaN", "nbf string", "nbf bool", "nbf list", "nbf null", "iat 2100", "iat string"],
)
def test_odd_nbf_and_iat_claims_are_refused(api: TestClient, claims: dict, expected: str) -> None:
    """Attacker (or a careless backend): `nbf` that is NaN, a string, a bool, a list or null, and `iat` far in the
    future. Seen before the fix: silently ignored, the token accepted. Now: 403 malformed / not-yet-valid."""
    token_ = signed_token({"sub": "c-1", "aud": "cookiebridge", "exp": int(time.time()) + 60, **claims})
    status, body, _ = post(api, "identity/load", A, {"token": token_, "name": NAME})
    assert (status, body["error"]) == (403, expected)


def test_identity_token_with_a_crit_header_is_refused(api: TestClient) -> None:
    """Attacker: a header listing `crit` extensions (RFC 7515 requires refusing unknown ones). Seen before the fix:
    accepted. Now: 403 malformed."""
    token_ = signed_token({"sub": "c-1", "aud": "cookiebridge", "exp": int(time.time()) + 60},
                          {"alg": "HS256", "typ": "JWT", "crit": ["exp"]})
    assert post(api, "identity/load", A, {"token": token_, "name": NAME})[1]["error"] == "malformed"


def _same_bytes_spellings(part: str) -> list[str]:
    """Every spelling of the last base64url character of `part` that decodes to the same bytes."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    decode = lambda text: base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))  # noqa: E731
    return [part[:-1] + c for c in alphabet if decode(part[:-1] + c) == decode(part)]


def test_only_the_canonical_spelling_of_a_token_signature_verifies(api: TestClient) -> None:
    """Attacker: rewrites the last character of a valid token's signature to another that decodes to the same bytes
    (four spellings verified before the fix). Now: only the one the signer wrote; the others are 403 malformed."""
    good = token()
    head, _, signature = good.rpartition(".")
    spellings = _same_bytes_spellings(signature)
    assert len(spellings) == 4
    answers = {spelling: post(api, "identity/load", A, {"token": f"{head}.{spelling}", "name": NAME})[0]
               for spelling in spellings}
    assert answers == {spelling: 200 if spelling == signature else 403 for spelling in spellings}


@pytest.mark.parametrize("how", ["extra bytes", "last character"])
def test_a_handoff_code_has_one_spelling(api: TestClient, how: str) -> None:
    """Attacker: adds bytes outside the base64 alphabet to a real code's signature (Python's decoder skipped them),
    or respells its last character. Seen before the fix: it verified, and after the real code was used it answered
    `410 used` (so the two were the same code). Now: 403 forged before and after, and the real code works once."""
    code = issue(api)
    payload, _, signature = code.rpartition(".")
    variant = (f"{payload}.{signature[:5]}!*{signature[5:]}" if how == "extra bytes"
               else f"{payload}." + next(s for s in _same_bytes_spellings(signature) if s != signature))
    assert post(api, "handoff/redeem", B, {"referrer": A + "/", "code": variant})[1]["error"] == "forged"
    assert post(api, "handoff/redeem", B, {"referrer": A + "/", "code": code})[1]["value"] == VALUE
    assert post(api, "handoff/redeem", B, {"referrer": A + "/", "code": variant})[1]["error"] == "forged"


@pytest.mark.parametrize(("method", "path"), [("GET", "/iframe.html/"), ("GET", "/healthz/"), ("POST", "/api/v1/handoff/"),
                                              ("POST", "/api/v1/identity/load/")])
def test_trailing_slash_urls_get_a_404_not_a_redirect(api: TestClient, method: str, path: str) -> None:
    """Attacker: `GET /iframe.html/` or `POST /api/v1/handoff/` with a Host header of their choice. Seen before the
    fix: 307 with a Location built from that Host (and `http://` behind a TLS proxy). Now: JSON 404, no Location."""
    response = api.request(method, path, headers={"Host": "evil.test", "Origin": A}, follow_redirects=False)
    assert response.status_code == 404 and "location" not in response.headers
    assert response.json()["error"] == "not-found"
