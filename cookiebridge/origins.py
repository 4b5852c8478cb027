"""Parse and normalise web origins (scheme, host, port) the way browsers report them in `event.origin`."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# What a host may be in a CSP source expression (frame-ancestors) and in DNS: letters, digits and hyphens.
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


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
    """The host as browsers serialise it, or OriginError. Anything but LDH labels is refused: such a value could
    never equal a browser's `event.origin`, and spaces or ';' in it would rewrite the CSP header it goes into."""
    try:
        host = host.encode("idna").decode("ascii").lower() if not host.isascii() else host
    except UnicodeError:
        raise OriginError(f"origin {value!r} has a host that is not a valid domain name") from None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise OriginError(f"origin {value!r} has a host that is not a domain name or IP address: use letters, digits, "
                          "hyphens and dots, e.g. 'https://domain-a.com'")
    if labels[-1].isdigit():  # browsers parse a host ending in a number as IPv4 and rewrite it
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise OriginError(f"origin {value!r} is not a valid IPv4 address: write four numbers 0-255, "
                              "e.g. 'https://192.0.2.10'") from None
    return host


def _ipv6_host(host: str) -> str:
    try:
        return str(ipaddress.IPv6Address(host)) if "%" not in host else ""
    except ValueError:
        return ""


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
    try:
        parts = urlsplit(raw)
    except ValueError:  # e.g. a bracketed host that is not an IPv6 address
        raise OriginError(f"origin {value!r} is not a valid URL: write e.g. 'https://domain-a.com'") from None
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
        raise OriginError(f"origin {value!r} has a path, query or fragment: an origin is scheme://host[:port], "
                          f"write {bare!r}")
    if host.endswith("."):
        raise OriginError(f"origin {value!r} has a trailing dot: browsers treat it as another site, write it without")
    if port == 0:
        raise OriginError(f"origin {value!r} has an invalid port: use a number from 1 to 65535")
    ip_host = ":" in host  # urlsplit strips the brackets of IPv6 literals
    host = _ipv6_host(host) if ip_host else _ascii_host(host, value)
    if not host:
        raise OriginError(f"origin {value!r} has an invalid IPv6 address: write it in brackets, e.g. 'https://[2001:db8::1]'")
    if scheme == "http" and not _is_loopback(host):
        raise OriginError(
            f"origin {value!r} uses plain http: cookies marked Secure need https, write {'https://' + bare[7:]!r}"
        )
    shown_host = f"[{host}]" if ip_host else host
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{shown_host}"
    return f"{scheme}://{shown_host}:{port}"

