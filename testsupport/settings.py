"""Settings for in-process apps, built as `serve` builds them (`load_settings`), and the names tests share."""

from __future__ import annotations

import os
from typing import Any, Mapping

from cookiebridge.config import Settings, load_settings

A, B, C = "https://domain-a.example", "https://domain-b.example", "https://domain-c.example"
NAME = "customer-defined-session-cookie"
# A session cookie value as a real site sets it: URL-encoded JSON with non-ASCII, ';' and '='.
VALUE = 'j%3A%7B%22sessionId%22%3A%22s-1%22%2C%22note%22%3A%22%C3%BC%3B%3D%22%7D'
SECRET = "support-test-key-Hj8kL2mN5pQ9rS3tV6wX"  # long and unpatterned: no weak-key warning
IDENTITY_KEY = "identity-key-0123456789abcdef"


def make_settings(*, environ: Mapping[str, str] | None = None, **flags: Any) -> Settings:
    """Settings trusting A, B and C with SECRET, as if `flags` were given on the command line (they win; a None
    flag is left out) and `environ` were the environment (empty by default: the test's own environment is never
    read). Bad values raise ConfigError, as they do for `serve`."""
    return load_settings(environ=environ or {}, flags={"trusted_origins": [A, B, C], "secret_key": SECRET, **flags})


def sqlite_url(directory: str | os.PathLike[str], name: str = "bridge.db") -> str:
    """The store URL of a SQLite file `name` in `directory` (e.g. a test's tmp_path)."""
    return f"sqlite:///{os.path.join(directory, name)}"
