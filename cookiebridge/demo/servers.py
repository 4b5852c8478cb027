"""uvicorn servers for the demo (and the tests that borrow them), on sockets bound before anything is printed."""

from __future__ import annotations

import errno
import socket
from typing import Literal, Protocol

import uvicorn
from starlette.types import ASGIApp

from . import DemoError


class CertificatePair(Protocol):
    """What a server needs of `certs.Certs`: the chain and its key, as PEM files."""

    @property
    def cert_chain(self) -> object: ...

    @property
    def key(self) -> object: ...


def https_server(app: ASGIApp, host: str, port: int, certs: CertificatePair | None, *, log_level: str = "warning",
                 lifespan: Literal["auto", "on", "off"] = "auto") -> uvicorn.Server:
    """A uvicorn server for `app`, over HTTPS with `certs` (plain HTTP without)."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan=lifespan,
                            ssl_certfile=str(certs.cert_chain) if certs else None,
                            ssl_keyfile=str(certs.key) if certs else None)
    return uvicorn.Server(config)


def bind(host: str, port: int, *, port_flag: str = "--port", host_flag: str = "--site-host") -> socket.socket:
    """A listening TCP socket on host:port, or DemoError in one line naming the address and the flag that changes
    it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT does not block
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise DemoError(f"port {port} on {host} is in use (another `cookiebridge demo`?): stop it, or pick "
                            f"another port with {port_flag} N") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise DemoError(f"address {host} is not on this machine (macOS has only 127.0.0.1 on loopback: "
                            f"`sudo ifconfig lo0 alias {host}`), or pick another with {host_flag}") from None
        if exc.errno == errno.EACCES:
            raise DemoError(f"port {port} on {host} needs privileges: pick a port above 1023 with {port_flag} N"
                            ) from None
        raise DemoError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another port with {port_flag} N"
                        ) from None
    return sock
