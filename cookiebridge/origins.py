"""Parse and normalise web origins (scheme, host, port) the way browsers report them in `event.origin`."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class OriginError(ValueError):
    """A value that is not an exact origin; the message names the value and the fix."""


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ascii_host(host: str, value: str) -> str:
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise OriginError(f"origin {value!r} has a host that is not a valid domain name") from None


def normalise_origin(value: str) -> str:
    """Return `value` as a browser would serialise its origin, or raise OriginError saying how to fix it.

    Accepts `https://host[:port]` (a single trailing `/` is tolerated); `http://` only for loopback hosts.
    """
    if not isinstance(value, str):
        raise OriginError(f"origin {value!r} must be a string such as 'https://domain-a.com'")
    raw = value.strip()
    if raw in ("", "*"):
        raise OriginError(f"origin {value!r} is not allowed: list each site exactly, e.g. 'https://domain-a.com'")
    if raw.lower() == "null":
        raise OriginError(
            "origin 'null' is not allowed: sandboxed frames and data: URLs report it and anyone can produce it"
        )
    if "://" not in raw:
        if ":" in raw and raw.split(":", 1)[0].isalpha() and not raw.split(":", 1)[1].isdigit():
            raise OriginError(f"origin {value!r} has scheme {raw.split(':', 1)[0]!r}: only https (or http on loopback)")
        suggestion = "https://" + raw.rstrip("/")
        raise OriginError(f"origin {value!r} has no scheme: write {suggestion!r}")
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise OriginError(f"origin {value!r} has scheme {scheme!r}: only https (or http on loopback) is allowed")
    if "@" in parts.netloc:
        raise OriginError(f"origin {value!r} contains user info: remove everything before '@'")
    try:
        port = parts.port
    except ValueError:
        raise OriginError(f"origin {value!r} has an invalid port: use a number from 1 to 65535") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise OriginError(f"origin {value!r} has no host: write e.g. 'https://domain-a.com'")
    bare = f"{scheme}://{parts.netloc.lower()}"
    if parts.path not in ("", "/") or parts.query or parts.fragment or raw.endswith("?") or raw.endswith("#"):
        raise OriginError(f"origin {value!r} has a path, query or fragment: an origin is scheme://host[:port], write {bare!r}")
    if host.endswith("."):
        raise OriginError(f"origin {value!r} has a trailing dot: browsers treat it as another site, write it without")
    if port == 0:
        raise OriginError(f"origin {value!r} has an invalid port: use a number from 1 to 65535")
    ip_host = ":" in host  # urlsplit strips the brackets of IPv6 literals
    if not ip_host:
        host = _ascii_host(host, value)
    if scheme == "http" and not _is_loopback(host):
        raise OriginError(
            f"origin {value!r} uses plain http: cookies marked Secure need https, write {'https://' + bare[7:]!r}"
        )
    shown_host = f"[{host}]" if ip_host else host
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{shown_host}"
    return f"{scheme}://{shown_host}:{port}"

