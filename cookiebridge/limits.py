"""HTTP-level limits for `serve`: uvicorn's httptools protocol with a cap on the request head, read deadlines for the
head and the body, and a cap on open connections that sheds the slowest ones first.

Why a subclass and not h11: httptools is what makes `serve` fast (bench/RESULTS.md), but neither it nor uvicorn's
protocol bounds the head, and httptools joins the pieces of one long header value by repeated concatenation, so a
single connection could hold the event loop for seconds. Here the bytes of a request head are counted *before* they
reach the parser: at most `max_header_bytes` of one head are ever parsed. Everything after the head (routing, the
body, the response) is uvicorn's code, unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

logger = logging.getLogger("cookiebridge")

# Nothing the bridge serves has a URL near this; it bounds the URL within the head.
MAX_URL_BYTES = 8192
# How often, at most, each kind of shedding is logged (seconds); the line says how many happened meanwhile.
LOG_EVERY = 10.0


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 32 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    max_connections: int = 1000
    # Requests being answered at once in this worker (queued in the event loop or waiting for the store); beyond
    # it new requests get an immediate 503, so a saturated worker answers fast instead of late (bench/overload.py).
    max_concurrent_requests: int = 128


DEFAULT_LIMITS = Limits()


class _ShedLog:
    """One warning line per kind of shedding per LOG_EVERY seconds, with the count since the last line."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.last: dict[str, float] = {}

    def note(self, kind: str, message: str) -> None:
        from . import metrics  # imported late: `serve` sets up the metrics' multiprocess mode before the workers do

        if kind in metrics.SHED_KINDS:
            metrics.SHED.labels(kind).inc()
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = time.monotonic()
        if now - self.last.get(kind, -LOG_EVERY) >= LOG_EVERY:
            count, self.counts[kind], self.last[kind] = self.counts[kind], 0, now
            logger.warning("cookiebridge: shedding load: %s (%d in the last %.0f s)", message, count, LOG_EVERY)


SHED_LOG = _ShedLog()


def _simple_response(status: int, message: str, extra: bytes = b"") -> bytes:
    body = message.encode("ascii")
    return b"".join([STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n", extra,
                     b"content-length: ", str(len(body)).encode("ascii"), b"\r\nconnection: close\r\n\r\n", body])


_BUSY_BODY = (b'{"error":"unavailable","message":"this bridge worker is at max_concurrent_requests; try again '
              b'shortly"}')
_BUSY = b"".join([STATUS_LINE[503], b"content-type: application/json\r\nretry-after: 1\r\ncache-control: no-store\r\n",
                  b"content-length: ", str(len(_BUSY_BODY)).encode(), b"\r\nconnection: close\r\n\r\n", _BUSY_BODY])


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of `config.cookiebridge_limits` (or the defaults).

    Deadlines are not one timer per request (creating and cancelling two more timers per request cost a fifth of
    the requests per second): each connection waiting for a head or receiving a body sits in a table with its
    deadline, and one sweep per process, a few times a second, closes the expired ones. The sweep also times
    keep-alive idling, which uvicorn did with a timer per request."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: Limits = getattr(config, "cookiebridge_limits", DEFAULT_LIMITS)
        tables = getattr(server_state, "cookiebridge_tables", None)
        if tables is None:
            tables = server_state.cookiebridge_tables = ({}, {})
            interval = min(1.0, self.limits.header_timeout / 4, self.limits.body_timeout / 4)
            self.loop.call_later(interval, _sweep, self.loop, tables, interval)
        # Connections waiting for (or receiving) a request head, and those receiving a body: -> deadline, oldest first.
        self.waiting: dict[LimitedHttpToolsProtocol, float] = tables[0]
        self.receiving: dict[LimitedHttpToolsProtocol, float] = tables[1]
        self.head_bytes = 0
        self.refusal: tuple[int, str] | None = None

    # --- connection cap --------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            victim = next(iter(self.waiting), None)
            if victim is None:  # every connection is inside a request: refuse the newcomer
                SHED_LOG.note("refused", f"{len(self.connections)} connections open, all busy (max_connections "
                              f"{self.limits.max_connections}): refused new ones with 503")
                transport.write(_simple_response(503, "Service Unavailable", b"retry-after: 5\r\n"))
                transport.close()
                return
            SHED_LOG.note("evicted", f"{len(self.connections)} connections open (max_connections "
                          f"{self.limits.max_connections}): closed the oldest one still waiting for its request head")
            victim.close_now()
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def close_now(self) -> None:
        self._forget()
        self.connections.discard(self)  # gone at once, so the newcomer has its slot
        self.transport.close()

    # --- deadlines -------------------------------------------------------------------------------------------
    def _await_head(self, idle: float | None = None) -> None:
        """Wait for a request head: `header_timeout` from now, or `idle` seconds while not a byte of it came."""
        self.receiving.pop(self, None)
        self.waiting[self] = self.loop.time() + (self.limits.header_timeout if idle is None else idle)
        self.head_bytes = 0

    def _forget(self) -> None:
        self.waiting.pop(self, None)
        self.receiving.pop(self, None)

    def too_slow(self, phase: str) -> None:
        """Called by the sweep once this connection's deadline for its head ("header") or body has passed."""
        self._forget()
        if self.transport.is_closing():
            return
        seconds = self.limits.header_timeout if phase == "header" else self.limits.body_timeout
        started = phase == "body" or self.head_bytes > 0
        if started:  # a client that never sent a byte (or an idle keep-alive one) is just closed
            SHED_LOG.note(f"slow-{phase}", f"closed connections still sending their request {phase} after "
                          f"{seconds:g} s ({phase}_timeout)")
        if started and (phase == "header" or self.cycle is None or not self.cycle.response_started):
            self.transport.write(_simple_response(408, "Request Timeout"))
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()

    # --- head size -------------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self not in self.waiting:  # head complete: body and pipelined data go to the parser as they come
            super().data_received(data)
            return
        if not self.head_bytes:  # the first bytes of a head after keep-alive idling: its own deadline starts now
            self.waiting[self] = self.loop.time() + self.limits.header_timeout
        room = self.limits.max_header_bytes - self.head_bytes
        if len(data) <= room:
            self.head_bytes += len(data)
            super().data_received(data)
            self._refuse_if_needed()
            return
        # Parse only what fits; whatever follows the head, if it completes in there, goes on as usual.
        self.head_bytes += room
        super().data_received(data[:room])
        if self.transport.is_closing() or self._refuse_if_needed():
            return
        if self in self.waiting and self.head_bytes >= self.limits.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large")
        else:  # the head completed (and perhaps a pipelined one began, its count restarted) inside the slice
            self.data_received(data[room:])

    def _refuse_if_needed(self) -> bool:
        if self.refusal is None or self.transport.is_closing():
            return False
        self._refuse(*self.refusal)
        return True

    def _refuse(self, status: int, message: str) -> None:
        if status == 503:
            SHED_LOG.note("busy", f"{len(self.tasks)} requests in progress (max_concurrent_requests "
                          f"{self.limits.max_concurrent_requests}): answered new ones 503 at once")
        else:
            SHED_LOG.note(f"refused-{status}", f"answered {status} to request heads over the limit (max_header_bytes "
                          f"{self.limits.max_header_bytes}, URL {MAX_URL_BYTES} bytes)")
        self._forget()
        self.transport.write(_BUSY if status == 503 else _simple_response(status, message))
        self.transport.close()

    # --- parser callbacks ------------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.refusal = None
        if self not in self.waiting:  # a pipelined request right after the previous one
            self._await_head()

    def on_headers_complete(self) -> None:
        if len(self.url) > MAX_URL_BYTES:  # within the head cap, so uvicorn's joining of its pieces stayed cheap
            self.refusal = (414, "URI Too Long")
            return  # answered in data_received, the app never sees it
        # self.tasks: this worker's requests in progress, queued in the event loop or waiting for the store. Past the
        # limit a request is answered a constant 503 here, before any task, and its connection closed: a client
        # that retries at once pays a new connection each time (keeping it open let such clients flood the worker
        # with 503s and starve the requests let in: bench/overload.py). /healthz is never shed.
        if len(self.tasks) >= self.limits.max_concurrent_requests and self.url.partition(b"?")[0] != b"/healthz":
            self.refusal = (503, "busy")
            return  # answered in data_received
        self.waiting.pop(self, None)
        self.receiving[self] = self.loop.time() + self.limits.body_timeout
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self.refusal is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.refusal is not None:
            return
        self.receiving.pop(self, None)
        super().on_message_complete()
        if self.cycle.response_complete and not self.transport.is_closing():
            self._await_head()  # the answer went out before the body was in (e.g. 413): wait for the next head

    def on_response_complete(self) -> None:
        # uvicorn's, except that keep-alive idling is timed by the sweep (the idle deadline in `waiting`) instead of
        # a timer created and cancelled per request.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif not self.cycle.more_body and self not in self.waiting:
            self._await_head(idle=min(self.config.timeout_keep_alive, self.limits.header_timeout))


def _sweep(loop: asyncio.AbstractEventLoop, tables: tuple[dict, dict], interval: float) -> None:
    now = loop.time()
    for table, phase in zip(tables, ("header", "body")):
        expired = []
        for connection, deadline in table.items():  # all of them: idle and head deadlines differ
            if deadline <= now:
                expired.append(connection)
        for connection in expired:
            connection.too_slow(phase)
    loop.call_later(interval, _sweep, loop, tables, interval)
