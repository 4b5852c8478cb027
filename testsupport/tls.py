"""TLS client contexts for talking to the test servers, which use the throwaway certificates of
`cookiebridge.demo.certs` and listen on loopback only."""

from __future__ import annotations

import os
import ssl


def loopback_client_context() -> ssl.SSLContext:
    """No certificate checks: for waiting on and calling servers on loopback with the test certificate."""
    return ssl._create_unverified_context()


def trusting(ca: str | os.PathLike[str]) -> ssl.SSLContext:
    """Verifies the server against the test CA `ca` (a PEM file), as a browser that imported it would."""
    return ssl.create_default_context(cafile=str(ca))
