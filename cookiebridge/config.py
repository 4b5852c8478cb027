"""One typed settings object, built from defaults < TOML file < COOKIEBRIDGE_* environment < command-line flags."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import os
import re
import secrets
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

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


class ConfigError(ValueError):
    """Bad configuration; the message is one line naming the key, the value and the fix."""


class Secret(str):
    """A string that never shows itself in repr() or the effective settings."""

    def __repr__(self) -> str:
        return "Secret('********')"


@dataclass(frozen=True)
class Settings:
    trusted_origins: tuple[str, ...]
    secret_key: Secret
    host: str = "127.0.0.1"
    port: int = 8000
    cookie_names: tuple[str, ...] = (DEFAULT_COOKIE_NAME,)
    cookie_max_age: int = 30 * 24 * 3600
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    workers: int = 1
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"
    log_level: str = "info"
    # "text": uvicorn's lines; "json": one JSON object per line, a request line each (cookiebridge/logs.py).
    log_format: str = "text"
    # /metrics (Prometheus text format), answered only to metrics_allow_ips (addresses or networks).
    metrics: bool = False
    metrics_allow_ips: str = "127.0.0.1,::1"
    store: str = "sqlite:cookiebridge.db"
    handoff_ttl: int = 60
    # Redeem a handoff code only on a page whose referrer is the site that issued it (planted links restore nothing).
    handoff_referrer_gate: bool = True
    identity_secret: Secret | None = None
    identity_audience: str = "cookiebridge"
    rate_limit: int = 600
    # Live handoff bytes (records issued within handoff_ttl), over all origins and per issuing origin.
    handoff_budget: int = 64 * 1024 * 1024
    handoff_budget_per_origin: int = 16 * 1024 * 1024
    # The longest an identity token may be valid for (exp - now), however far its `exp` lies.
    identity_max_ttl: int = 24 * 3600
    # HTTP limits of `serve`, per worker process (cookiebridge/limits.py).
    max_header_bytes: int = 32 * 1024
    header_timeout: int = 10
    body_timeout: int = 10
    max_connections: int = 1000
    # Requests answered at once per worker; beyond it new ones get an immediate 503 (cookiebridge/limits.py).
    max_concurrent_requests: int = 128
    # Rotation: keys still accepted for verification (never used to sign), until the operator removes them.
    previous_secret_keys: tuple[Secret, ...] = ()
    previous_identity_secrets: tuple[Secret, ...] = ()
    # How the settings came about, for the start-up log line; not configurable.
    embedded_default: bool = field(default=False, compare=False)
    generated_secret: bool = field(default=False, compare=False)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Settings":
        data = json.loads(text)
        data["trusted_origins"] = tuple(data["trusted_origins"])
        data["cookie_names"] = tuple(data["cookie_names"])
        data["secret_key"] = Secret(data["secret_key"])
        if data["identity_secret"] is not None:
            data["identity_secret"] = Secret(data["identity_secret"])
        for key in ("previous_secret_keys", "previous_identity_secrets"):
            data[key] = tuple(Secret(value) for value in data.get(key, ()))
        return cls(**data)

    def effective(self) -> dict[str, Any]:
        """The settings as `check` prints them, secrets masked."""
        shown = dataclasses.asdict(self)
        shown["secret_key"] = "(generated for this process)" if self.generated_secret else "********"
        shown["identity_secret"] = "********" if self.identity_secret else None
        for key in ("previous_secret_keys", "previous_identity_secrets"):
            shown[key] = ["********"] * len(getattr(self, key))
        del shown["embedded_default"], shown["generated_secret"]
        return shown

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


_KEYS = {f.name for f in dataclasses.fields(Settings)} - {"embedded_default", "generated_secret"}
_LIST_KEYS = {"trusted_origins", "cookie_names", "previous_secret_keys", "previous_identity_secrets"}
_INT_KEYS = {
    "port": (1, 65535),
    "workers": (1, 64),
    "cookie_max_age": (60, 400 * 24 * 3600),
    "handoff_ttl": (5, 600),
    "rate_limit": (1, 1_000_000),
    "handoff_budget": (64 * 1024, 1 << 40),
    "handoff_budget_per_origin": (64 * 1024, 1 << 40),
    "identity_max_ttl": (60, 400 * 24 * 3600),
    "max_header_bytes": (1024, 1024 * 1024),
    "header_timeout": (1, 300),
    "body_timeout": (1, 300),
    "max_connections": (10, 1_000_000),
    "max_concurrent_requests": (1, 100_000),
}
_BOOL_KEYS = {"proxy_headers", "handoff_referrer_gate", "metrics"}
_LOG_FORMATS = ("text", "json")
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _as_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [item for item in (part.strip() for part in value.split(",")) if item]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ConfigError(f"{key} = {value!r} must be a list of strings, e.g. {key} = [\"https://domain-a.com\"]")


def _as_int(key: str, value: Any) -> int:
    low, high = _INT_KEYS[key]
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: TOML's inf
        number = None
    if number is None or not low <= number <= high or (isinstance(value, float) and not value.is_integer()):
        raise ConfigError(f"{key} = {value!r} must be a whole number from {low} to {high}")
    return number


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise ConfigError(f"{key} = {value!r} must be true or false")


def _coerce(key: str, value: Any) -> Any:
    if key in _LIST_KEYS:
        return _as_list(key, value)
    if key in _INT_KEYS:
        return _as_int(key, value)
    if key in _BOOL_KEYS:
        return _as_bool(key, value)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{key} = {value!r} must be a string")
    return value


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
        if key not in _KEYS:
            raise ConfigError(f"unknown key {key!r} in '{file}': valid keys are {', '.join(sorted(_KEYS))}")
    return data


def read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name.startswith(ENV_PREFIX + "_") or name == ENV_PREFIX + "CONFIG":
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key not in _KEYS:
            raise ConfigError(f"unknown environment variable {name}: valid ones are COOKIEBRIDGE_<KEY> for keys "
                              f"{', '.join(sorted(_KEYS))}")
        found[key] = value
    return found


def _origin_list(values: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        try:
            seen[normalise_origin(value)] = None
        except OriginError as exc:
            raise ConfigError(f"trusted_origins: {exc}") from None
    return tuple(seen)


def _networks(text: str) -> str:
    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"metrics_allow_ips: {item!r} is not an IP address or network; list the scrapers' "
                              "addresses, e.g. 127.0.0.1,10.0.0.0/8") from None
    if not items:
        raise ConfigError("metrics_allow_ips is empty: list the scrapers' addresses, e.g. 127.0.0.1, or set "
                          "metrics = false")
    return ",".join(items)


def _cookie_names(values: list[str]) -> tuple[str, ...]:
    if not values:
        raise ConfigError(f"cookie_names is empty: list the session cookie names, e.g. [\"{DEFAULT_COOKIE_NAME}\"]")
    for name in values:
        if not _COOKIE_NAME.match(name) or name.startswith("__cookiebridge"):
            raise ConfigError(
                f"cookie_names: {name!r} is not a usable cookie name: use 1-128 letters, digits and !#$&'*+.^_`|~- "
                "(names starting with __cookiebridge are reserved)"
            )
    return tuple(dict.fromkeys(values))


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
            if key not in _KEYS:
                raise ConfigError(f"unknown setting {key!r}: valid keys are {', '.join(sorted(_KEYS))}")
            merged[key] = _coerce(key, value)

    embedded = "trusted_origins" not in merged and not config_file
    if embedded:
        merged["trusted_origins"] = list(DEMO_ORIGINS)
    origins = _origin_list(merged.pop("trusted_origins", []))  # a config file may forget them
    if not origins:
        raise ConfigError("trusted_origins is empty: add each site, e.g. --trusted-origin https://domain-a.com")

    secret = merged.pop("secret_key", None) or None
    generated = secret is None
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"secret_key is too short ({len(secret)} characters): use at least {MIN_SECRET_LENGTH}, e.g. the output "
            "of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    identity_secret = merged.pop("identity_secret", None) or None
    if identity_secret is not None:
        if len(identity_secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"identity_secret is too short ({len(identity_secret)} characters): use at least "
                              f"{MIN_SECRET_LENGTH}; your sites' backends sign identity tokens with it")
        merged["identity_secret"] = Secret(identity_secret)
    for key, current in (("previous_secret_keys", secret), ("previous_identity_secrets", identity_secret)):
        if key not in merged:
            continue
        if merged[key] and current is None:
            raise ConfigError(f"{key} is set but {key.removeprefix('previous_').removesuffix('s')} is not: "
                              "set the new key there and keep the old ones here while they are still in use")
        for old in merged[key]:
            if len(old) < MIN_SECRET_LENGTH:
                raise ConfigError(f"{key}: a key of {len(old)} characters is too short, use at least {MIN_SECRET_LENGTH}")
        merged[key] = tuple(Secret(old) for old in dict.fromkeys(merged[key]) if old != current)
    if "cookie_names" in merged:
        merged["cookie_names"] = _cookie_names(merged["cookie_names"])
    if "store" in merged:
        try:
            open_store(merged["store"])  # parses only; nothing is opened yet
        except ValueError as exc:
            raise ConfigError(f"store: {exc}") from None
    level = merged.get("log_level", "info")
    if str(level).lower() not in _LOG_LEVELS:
        raise ConfigError(f"log_level = {level!r} must be one of {', '.join(_LOG_LEVELS)}")
    if "log_level" in merged:
        merged["log_level"] = level.lower()
    if "log_format" in merged:
        if str(merged["log_format"]).lower() not in _LOG_FORMATS:
            raise ConfigError(f"log_format = {merged['log_format']!r} must be text (uvicorn's lines) or json (one "
                              "object per line)")
        merged["log_format"] = merged["log_format"].lower()
    if "metrics_allow_ips" in merged:
        merged["metrics_allow_ips"] = _networks(merged["metrics_allow_ips"])
    if bool(merged.get("ssl_certfile")) != bool(merged.get("ssl_keyfile")):
        raise ConfigError("ssl_certfile and ssl_keyfile go together: give both, or neither when a proxy terminates TLS")
    for key in ("ssl_certfile", "ssl_keyfile"):
        if merged.get(key) and not Path(merged[key]).is_file():
            raise ConfigError(f"{key} = {merged[key]!r} is not a readable file: check the path")
    return Settings(
        trusted_origins=origins,
        secret_key=Secret(secret or secrets.token_urlsafe(32)),
        embedded_default=embedded,
        generated_secret=generated,
        **merged,
    )
