"""One typed settings object, built from defaults < TOML file < COOKIEBRIDGE_* environment < command-line flags.

Each setting is declared once, as a field of `Settings`: its name, type and default, and in `setting(...)` its range
or choices, help text and CLI spelling (a `Secret` type marks a key, a tuple a list). Everything else is derived from
that: parsing from TOML, the environment and flags (here), `check`'s output (`effective_toml`), the Click options
(cli.py) and the table in docs/configuration.md (scripts/docs_tables.py, checked by tests/test_docs_tables.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import math
import os
import re
import secrets
import tomllib
import typing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .origins import OriginError, normalise_origin
from .stores import open_store

ENV_PREFIX = "COOKIEBRIDGE_"

DEFAULT_COOKIE_NAME = "customer-defined-session-cookie"
# The embedded default for local trial: the two demo sites that `cookiebridge demo` serves.
DEMO_ORIGINS = ("https://127.0.0.2:8443", "https://127.0.0.3:8443")
MIN_SECRET_LENGTH = 16
# `check` and `serve` warn about keys below these (a key from secrets.token_urlsafe(32) is far above both).
STRONG_SECRET_LENGTH = 32
STRONG_SECRET_BITS = 100
# Words that random keys practically never contain (5+ letters) but placeholders and copied examples do.
_PLACEHOLDER_WORDS = ("change", "example", "replace", "secret", "password", "default", "sample", "dummy", "insecure",
                      "placeholder")
SECRET_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# RFC 6265 cookie-name token characters, minus the ones js-cookie would escape.
_COOKIE_NAME = re.compile(r"^[A-Za-z0-9!#$&'*+.^_`|~-]{1,128}$")
MASK = "********"


class ConfigError(ValueError):
    """Bad configuration; the message is one line naming the key, the value and the fix."""


class Secret(str):
    """A string that never shows itself in repr() or the effective settings."""

    def __repr__(self) -> str:
        return "Secret('********')"


# --- checks beyond the type, named in the declarations below: (setting name, parsed value) -> value ------------


def _origin_list(name: str, values: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        try:
            seen[normalise_origin(value)] = None
        except OriginError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    if not seen:
        raise ConfigError(f"{name} is empty: add each site, e.g. --trusted-origin https://domain-a.com")
    return tuple(seen)


def _cookie_names(name: str, values: list[str]) -> tuple[str, ...]:
    if not values:
        raise ConfigError(f"{name} is empty: list the session cookie names, e.g. [\"{DEFAULT_COOKIE_NAME}\"]")
    for cookie in values:
        if not _COOKIE_NAME.match(cookie) or cookie.startswith("__cookiebridge"):
            raise ConfigError(
                f"{name}: {cookie!r} is not a usable cookie name: use 1-128 letters, digits and !#$&'*+.^_`|~- "
                "(names starting with __cookiebridge are reserved)"
            )
    return tuple(dict.fromkeys(values))


def _secret_key(name: str, key: str) -> str:
    if len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{name} is too short ({len(key)} characters): use at least {MIN_SECRET_LENGTH}, e.g. the "
                          f"output of: {SECRET_HINT}")
    return key


def _identity_secret(name: str, key: str) -> str:
    if len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{name} is too short ({len(key)} characters): use at least {MIN_SECRET_LENGTH}; your "
                          "sites' backends sign identity tokens with it")
    return key


def _old_keys(name: str, keys: list[str]) -> tuple[str, ...]:
    for old in keys:
        if len(old) < MIN_SECRET_LENGTH:
            raise ConfigError(f"{name}: a key of {len(old)} characters is too short, use at least {MIN_SECRET_LENGTH}")
    return tuple(dict.fromkeys(keys))


def _store_url(name: str, url: str) -> str:
    try:
        open_store(url)  # parses only; nothing is opened yet
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return url


def _networks(name: str, text: str) -> str:
    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not an IP address or network; list the scrapers' "
                              "addresses, e.g. 127.0.0.1,10.0.0.0/8") from None
    if not items:
        raise ConfigError(f"{name} is empty: list the scrapers' addresses, e.g. 127.0.0.1, or set metrics = false")
    return ",".join(items)


def _readable_file(name: str, path: str) -> str:
    if not Path(path).is_file():
        raise ConfigError(f"{name} = {path!r} is not a readable file: check the path")
    return path


# --- the declarations -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What a setting's field does not say by its name, type and default."""

    help: str  # for --help and the docs: a sentence or two
    range: tuple[int, int] | None = None  # whole numbers: the lowest and highest accepted
    choices: Mapping[str, str] | None = None  # words: each accepted one -> what it means ("" when plain)
    flag: str | None = None  # the CLI spelling, when not --the-name (lists: the singular, repeated)
    item: str = "value"  # lists: what one item is, for messages and the flag's metavar
    example: str = ""  # lists: one item, for messages
    default_text: str | None = None  # the default as --help and the docs say it, when not the value itself
    check: Callable[[str, Any], Any] | None = None  # validates and normalises the parsed value
    # The commands whose --help offers the flag (cli.py). A file or the environment may still set any setting
    # for any command: it is validated everywhere, and used only where it matters.
    commands: tuple[str, ...] = ("serve", "check")


def setting(default: Any = dataclasses.MISSING, **spec: Any) -> Any:
    """A `Settings` field that is a setting: the default, and the rest of its declaration (see Spec)."""
    return field(default=default, metadata={"setting": Spec(**spec)})


_LOG_LEVELS = {level: "" for level in ("critical", "error", "warning", "info", "debug", "trace")}
_LOG_FORMATS = {"text": "uvicorn's lines", "json": "one object per line"}
_DAY = 24 * 3600
# The settings `build` reads (the iframe page's configuration) take this; the rest are serve's and check's.
ALL = ("serve", "check", "build")
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    trusted_origins: tuple[str, ...] = setting(
        help="The sites that may use the bridge: exact origins https://host[:port], normalised as browsers send "
             "them.", flag="--trusted-origin", item="origin", example="https://domain-a.com",
        default_text="the two demo sites, when nothing at all is configured", check=_origin_list, commands=ALL)
    secret_key: Secret = setting(
        help="Signs handoff codes; every instance and restart must share it (prefer COOKIEBRIDGE_SECRET_KEY: flags "
             "show in ps).", default_text="generated per process, with a warning", check=_secret_key)
    cookie_names: tuple[str, ...] = setting(
        (DEFAULT_COOKIE_NAME,), help="The session cookie names the sites may store.", flag="--cookie-name",
        item="cookie name", example=DEFAULT_COOKIE_NAME, check=_cookie_names, commands=ALL)
    cookie_max_age: int = setting(
        30 * _DAY, range=(60, 400 * _DAY), help="Lifetime in seconds of the cookies the bridge writes, and of "
        "identity sessions (30 days).", commands=ALL)
    store: str = setting(
        "sqlite:cookiebridge.db", help="Where codes and sessions live: sqlite:///path/file.db (one host), or for "
        "several instances redis://host:6379/0, redis+sentinel://host:26379,host2:26379/mymaster/0 or "
        "redis+cluster://host:7000,host2:7000 (Redis: set maxmemory-policy volatile-ttl).", check=_store_url)
    handoff_ttl: int = setting(60, range=(5, 600), help="Seconds a link handoff code stays valid.")
    handoff_referrer_gate: bool = setting(
        True, help="Redeem a handoff code only on a page whose referrer is the site that issued it (planted links "
        "restore nothing).")
    handoff_budget: int = setting(
        64 * _MIB, range=(64 * 1024, 1 << 40), help="Bytes of handoff records live at once, all sites together "
        "(429 over-budget beyond).")
    handoff_budget_per_origin: int = setting(
        16 * _MIB, range=(64 * 1024, 1 << 40), help="Bytes of handoff records live at once per issuing site (429 "
        "over-budget beyond).")
    identity_secret: Secret | None = setting(
        None, help="Key your sites' backends sign identity tokens with; unset, signed identity is off (prefer "
        "COOKIEBRIDGE_IDENTITY_SECRET).", check=_identity_secret)
    identity_audience: str = setting("cookiebridge", help="The aud claim identity tokens must name.")
    identity_max_ttl: int = setting(
        _DAY, range=(60, 400 * _DAY), help="Longest validity in seconds accepted for an identity token, whatever "
        "its exp.")
    # Rotation: keys still accepted for verification (never used to sign), until the operator removes them.
    previous_secret_keys: tuple[Secret, ...] = setting(
        (), help="A retired secret_key still accepted for handoff codes during a rotation (prefer "
        "COOKIEBRIDGE_PREVIOUS_SECRET_KEYS).", flag="--previous-secret-key", item="key", check=_old_keys)
    previous_identity_secrets: tuple[Secret, ...] = setting(
        (), help="A retired identity_secret still accepted for identity tokens during a rotation (prefer "
        "COOKIEBRIDGE_PREVIOUS_IDENTITY_SECRETS).", flag="--previous-identity-secret", item="key", check=_old_keys)
    resume: bool = setting(
        False, help="Let a customer resume an anonymous chat on a typed URL through a confirmation page on the bridge "
        "(/resume); the provider needs resume: true too.")
    resume_max_age: int = setting(
        30 * _DAY, range=(3600, 400 * _DAY), help="Lifetime in seconds of the bridge's browser-id cookie and of resume "
        "tokens (30 days).")
    rate_limit: int = setting(
        600, range=(1, 1_000_000), help="API requests a minute per client address (IPv6: per /64).")
    # HTTP limits of `serve`, per worker process (cookiebridge/limits.py).
    max_header_bytes: int = setting(
        32 * 1024, range=(1024, _MIB), help="Largest request head (request line and headers) in bytes: 431 beyond "
        "(URLs over 8 KiB: 414).")
    header_timeout: int = setting(10, range=(1, 300), help="Seconds a client has to send a request's head (408).")
    body_timeout: int = setting(10, range=(1, 300), help="Seconds a client has to send a request's body (408).")
    max_connections: int = setting(
        1000, range=(10, 1_000_000), help="Open connections per worker; beyond it the oldest still waiting for its "
        "head is closed.")
    max_concurrent_requests: int = setting(
        128, range=(1, 100_000), help="Requests answered at once per worker; beyond it new ones get an immediate "
        "503.")
    host: str = setting("127.0.0.1", help="Interface to listen on.")
    port: int = setting(8000, range=(1, 65535), help="Port to listen on.")
    ssl_certfile: str | None = setting(
        None, help="TLS certificate chain (PEM), to serve HTTPS directly; goes with ssl_keyfile.",
        check=_readable_file)
    ssl_keyfile: str | None = setting(None, help="TLS private key (PEM); goes with ssl_certfile.", check=_readable_file)
    workers: int = setting(1, range=(1, 64), help="Worker processes.")
    proxy_headers: bool = setting(
        False, help="Trust X-Forwarded-For/Proto from forwarded_allow_ips (behind a TLS-terminating proxy).")
    forwarded_allow_ips: str = setting("127.0.0.1", help="Proxy addresses whose forwarded headers are trusted.")
    log_level: str = setting("info", choices=_LOG_LEVELS, help="uvicorn's log level.")
    # "json": one JSON object per line, a request line each (cookiebridge/logs.py).
    log_format: str = setting("text", choices=_LOG_FORMATS, help="Log lines as text, or as JSON objects with one "
                              "per request.")
    metrics: bool = setting(False, help="Answer /metrics in the Prometheus text format, to metrics_allow_ips only.")
    metrics_allow_ips: str = setting(
        "127.0.0.1,::1", help="Addresses or networks that may read /metrics.", check=_networks)
    # How the settings came about, for the start-up log line; not configurable.
    embedded_default: bool = field(default=False, compare=False)
    generated_secret: bool = field(default=False, compare=False)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Settings":
        data = json.loads(text)
        for declared in SETTINGS:
            value = data.get(declared.name)
            if declared.kind == "list" and value is not None:
                data[declared.name] = tuple(Secret(item) if declared.secret else item for item in value)
            elif declared.secret and value is not None:
                data[declared.name] = Secret(value)
        return cls(**data)

    def effective(self) -> dict[str, Any]:
        """The settings as `check` prints them, secrets masked (a generated secret_key said so)."""
        shown: dict[str, Any] = {}
        for declared in SETTINGS:
            value = getattr(self, declared.name)
            if declared.secret and value is not None:
                value = [MASK] * len(value) if declared.kind == "list" else MASK
            shown[declared.name] = list(value) if isinstance(value, tuple) else value
        if self.generated_secret:
            shown["secret_key"] = "(generated for this process)"
        return shown

    def effective_toml(self) -> list[str]:
        """`check`'s output: the effective settings as TOML lines a config file could hold; unset ones and a
        generated secret_key as comments, so no placeholder can pass for a value."""
        lines = []
        for name, value in self.effective().items():
            if value is None:
                lines.append(f"# {name}: not set")
            elif name == "secret_key" and self.generated_secret:
                lines.append(f"# {name}: not set, generated for this process; set {ENV_PREFIX}SECRET_KEY")
            else:
                lines.append(f"{name} = {toml_value(value)}")
        return lines
    def warnings(self) -> list[str]:
        notes = []
        if self.generated_secret:
            notes.append(
                "secret_key is not set: a random one was generated for this process; "
                "set COOKIEBRIDGE_SECRET_KEY so every instance and restart shares it"
            )
        keys = [("secret_key", self.secret_key)] if not self.generated_secret else []
        keys += [("identity_secret", self.identity_secret)] if self.identity_secret else []
        for name, key in keys:
            reason = secret_weakness(key)
            if reason:
                notes.append(f"{name} looks weak ({reason}): anyone who guesses it can forge what it signs; "
                             f"generate one with: {SECRET_HINT}")
        if self.identity_secret and self.identity_secret in (self.secret_key, *self.previous_secret_keys):
            notes.append("identity_secret is the same as secret_key: use two keys, so the sites' backends, which "
                         "hold the identity key, cannot also sign handoff codes")
        if self.previous_secret_keys:
            notes.append(f"previous_secret_keys: {len(self.previous_secret_keys)} old key(s) still accepted; remove "
                         f"them once {self.handoff_ttl} s (handoff_ttl) have passed since the rotation")
        if self.previous_identity_secrets:
            notes.append(f"previous_identity_secrets: {len(self.previous_identity_secrets)} old key(s) still accepted; "
                         "remove them once the tokens your backends signed with them have expired")
        for origin in self.trusted_origins:
            if origin.startswith("http://"):
                notes.append(f"trusted origin {origin!r} uses plain http (allowed on loopback only, for testing)")
        if self.handoff_budget_per_origin > self.handoff_budget:
            notes.append(f"handoff_budget_per_origin ({self.handoff_budget_per_origin}) is above handoff_budget "
                         f"({self.handoff_budget}): the global budget is reached first")
        if self.host not in ("127.0.0.1", "::1", "localhost") and not self.ssl_certfile and not self.proxy_headers:
            notes.append(f"host {self.host!r} listens beyond loopback with neither TLS (ssl_certfile) nor "
                         "proxy_headers: put the bridge behind a TLS-terminating proxy, or give it a certificate")
        if self.max_connections > 10_000 or self.header_timeout > 60 or self.body_timeout > 60:
            notes.append(f"max_connections {self.max_connections}, header_timeout {self.header_timeout} s, "
                         f"body_timeout {self.body_timeout} s: limits this loose let slow clients hold the worker; "
                         "the defaults are 1000, 10 s and 10 s")
        if self.metrics and any(ipaddress.ip_network(item, strict=False).prefixlen == 0
                                for item in self.metrics_allow_ips.split(",")):
            notes.append(f"metrics_allow_ips = {self.metrics_allow_ips!r} lets every address read /metrics (traffic "
                         "and refusal figures): list your Prometheus servers instead")
        if self.proxy_headers and self.forwarded_allow_ips.strip() == "*":
            notes.append("forwarded_allow_ips = '*' trusts X-Forwarded-For from anyone: a client can pick the address "
                         "the rate limit counts; list your proxies' addresses instead")
        return notes


def secret_weakness(secret: str) -> str | None:
    """Why a signing key looks guessable, or None. Heuristic, for warnings only; the value is never shown."""
    lowered = secret.lower()
    word = next((word for word in _PLACEHOLDER_WORDS if word in lowered), None)
    if word:
        return f"it contains the word {word!r}, like a placeholder or an example value"
    if len(secret) < STRONG_SECRET_LENGTH:
        return f"only {len(secret)} characters, use at least {STRONG_SECRET_LENGTH}"
    counts = Counter(secret)
    bits = -sum(n * math.log2(n / len(secret)) for n in counts.values())
    steps = sum(1 for a, b in zip(secret, secret[1:]) if abs(ord(b) - ord(a)) <= 1)
    if bits < STRONG_SECRET_BITS or steps * 2 > len(secret):
        return "repeated or sequential characters, not random ones"
    return None


@dataclass(frozen=True)
class Setting:
    """One declared setting, as the parsers, `check`, the CLI and the docs use it."""

    name: str
    kind: str  # "int", "bool", "str" or "list" (of strings)
    secret: bool  # a key: never shown, nor in an error message
    default: Any  # dataclasses.MISSING for trusted_origins and secret_key, which load_settings fills in
    spec: Spec

    @property
    def flag(self) -> str:
        return self.spec.flag or "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def describe_default(self, quote: Callable[[str], str] = str) -> str:
        """The default as `--help` and the docs table show it; `quote` marks up each value (e.g. as code)."""
        if self.spec.default_text is not None:
            return self.spec.default_text
        if self.kind == "bool":
            return "on" if self.default else "off"
        if self.default is None or self.default == ():
            return "not set"
        values = self.default if self.kind == "list" else (self.default,)
        return ", ".join(quote(str(value)) for value in values)


def _kind(hint: Any) -> tuple[str, bool]:
    """(kind, secret) of a field's type: int, bool, str, Secret (optional or not), or a tuple of str or Secret."""
    if typing.get_origin(hint) is tuple:
        return "list", typing.get_args(hint)[0] is Secret
    if hint in (int, bool):
        return hint.__name__, False
    members = set(typing.get_args(hint)) or {hint}
    if not members <= {str, Secret, type(None)}:
        raise TypeError(f"setting type {hint} is not int, bool, str, Secret or a tuple of them")
    return "str", Secret in members


def _declared() -> tuple[Setting, ...]:
    hints = typing.get_type_hints(Settings)
    found = []
    for item in dataclasses.fields(Settings):
        if "setting" in item.metadata:
            kind, secret = _kind(hints[item.name])
            found.append(Setting(item.name, kind, secret, item.default, item.metadata["setting"]))
    return tuple(found)


SETTINGS = _declared()
BY_NAME = {declared.name: declared for declared in SETTINGS}


def _unknown(key: str) -> str:
    """The end of an unknown-key message: the closest valid key, and all of them."""
    close = difflib.get_close_matches(key.lower(), BY_NAME, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}valid keys are {', '.join(sorted(BY_NAME))}"


# --- parsing --------------------------------------------------------------------------------------------------


def _shown(declared: Setting, value: Any) -> str:
    return "<hidden>" if declared.secret else repr(value)


def _as_list(declared: Setting, value: Any) -> list[str]:
    if isinstance(value, str):  # the environment: comma-separated
        return [item for item in (part.strip() for part in value.split(",")) if item]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    example = declared.spec.example or declared.spec.item
    raise ConfigError(f"{declared.name} = {_shown(declared, value)} must be a list of strings, e.g. "
                      f"{declared.name} = [\"{example}\"]")


def _as_int(declared: Setting, value: Any) -> int:
    low, high = declared.spec.range or (-math.inf, math.inf)
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: TOML's inf
        number = None
    if number is None or not low <= number <= high or (isinstance(value, float) and not value.is_integer()):
        raise ConfigError(f"{declared.name} = {value!r} must be a whole number from {low} to {high}")
    return number


def _as_bool(declared: Setting, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise ConfigError(f"{declared.name} = {value!r} must be true or false")


def _as_choice(declared: Setting, value: str) -> str:
    choices = declared.spec.choices or {}
    if value.lower() in choices:
        return value.lower()
    words = [f"{word} ({meaning})" if meaning else word for word, meaning in choices.items()]
    allowed = " or ".join(words) if len(words) == 2 else "one of " + ", ".join(words)
    raise ConfigError(f"{declared.name} = {value!r} must be {allowed}")


def parse(declared: Setting, value: Any) -> Any:
    """A value from TOML, the environment (text) or a flag, as the setting's type; ConfigError naming it if not."""
    if declared.kind == "list":
        return _as_list(declared, value)
    if declared.kind == "int":
        return _as_int(declared, value)
    if declared.kind == "bool":
        return _as_bool(declared, value)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{declared.name} = {_shown(declared, value)} must be a string")
    return _as_choice(declared, value) if declared.spec.choices and value is not None else value


def _finish(declared: Setting, value: Any) -> Any:
    """The setting's own check, then lists as tuples and keys as Secret."""
    if declared.spec.check is not None:
        value = declared.spec.check(declared.name, value)
    if declared.kind == "list":
        return tuple(Secret(item) if declared.secret else item for item in value)
    return Secret(value) if declared.secret else value


def toml_value(value: Any) -> str:
    """A TOML literal for a shown setting: bool, int, str or a list of str."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return _toml_string(str(value))


def _toml_string(text: str) -> str:
    escaped = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            escaped.append("\\" + char)
        elif code < 0x20 or code == 0x7F:
            escaped.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate (from the environment): TOML has no way to write it
            escaped.append("\ufffd")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file '{file}' does not exist: check the --config path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{file}' cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{file}' is not valid TOML: {exc}") from None
    data = data.get("cookiebridge", data)  # a [cookiebridge] table or top-level keys
    for key in data:
        if key not in BY_NAME:
            raise ConfigError(f"unknown key {key!r} in '{file}': {_unknown(key)}")
    return data


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name.startswith(ENV_PREFIX + "_") or name == ENV_PREFIX + "CONFIG":
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key not in BY_NAME:
            raise ConfigError(f"unknown environment variable {name}: valid ones are {ENV_PREFIX}<KEY> for keys "
                              f"{', '.join(sorted(BY_NAME))}")
        found[key] = value
    return found


def load_settings(
    *,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the sources (flags win) and validate; raise ConfigError with one line on bad input."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get(ENV_PREFIX + "CONFIG") or None
    layers = [read_toml(config_file) if config_file else {}, read_environment(environ)]
    layers.append({k: v for k, v in (flags or {}).items() if v is not None and v != ()})
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key not in BY_NAME:
                raise ConfigError(f"unknown setting {key!r}: {_unknown(key)}")
            merged[key] = parse(BY_NAME[key], value)
    for declared in SETTINGS:  # an empty text leaves a setting without a default unset
        if merged.get(declared.name) == "" and declared.default in (None, dataclasses.MISSING):
            del merged[declared.name]

    embedded = "trusted_origins" not in merged and not config_file
    merged.setdefault("trusted_origins", list(DEMO_ORIGINS) if embedded else [])  # a file may forget them: refused
    if bool(merged.get("ssl_certfile")) != bool(merged.get("ssl_keyfile")):
        raise ConfigError("ssl_certfile and ssl_keyfile go together: give both, or neither when a proxy terminates TLS")
    for declared in SETTINGS:
        if declared.name in merged:
            merged[declared.name] = _finish(declared, merged[declared.name])
    for key, current in (("previous_secret_keys", "secret_key"), ("previous_identity_secrets", "identity_secret")):
        if merged.get(key) and current not in merged:
            raise ConfigError(f"{key} is set but {current} is not: set the new key there and keep the old ones here "
                              "while they are still in use")
        if key in merged:
            merged[key] = tuple(old for old in merged[key] if old != merged[current])
    generated = "secret_key" not in merged
    if generated:
        merged["secret_key"] = Secret(secrets.token_urlsafe(32))
    return Settings(embedded_default=embedded, generated_secret=generated, **merged)
