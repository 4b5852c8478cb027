"""Is the bridge able to work: the store probe that `serve`, `check` and /readyz share, the store wrapper that counts
store errors, and the incident log that says once, not per request, why the API answers 503."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from typing import Any, Awaitable, Callable

from .stores import SQLiteStore, Store, StoreError, StoreUnavailable

logger = logging.getLogger("cookiebridge")

PROBE_TIMEOUT = 2.0  # seconds; a Redis timeout is 1 s, SQLite waits up to 5 s for a lock
READY_CACHE = 1.0  # seconds a readiness answer is reused: probes from many load balancers cost one store round trip
# An incident ends at the first success this long after the last failure: a store that fails some operations and
# not others (a full Redis refuses writes, serves reads) stays one incident instead of flapping per request.
RECOVERY_QUIET = 2.0


class Incidents:
    """One warning when a part (the store) starts failing, one info line when it works again, with how long it
    failed and how many operations failed meanwhile; nothing per request in between. Per worker process."""

    def __init__(self) -> None:
        self.failing: dict[str, tuple[float, float, int]] = {}  # part -> (since, last failure, failures)

    def failed(self, part: str, error: BaseException) -> None:
        now = time.monotonic()
        since, _, count = self.failing.get(part, (now, now, 0))
        if not count:
            logger.warning("cookiebridge: %s unavailable, the API answers 503 until it recovers: %s", part,
                           _one_line(error), extra={"event": f"{part}-unavailable", "outcome": "unavailable"})
        self.failing[part] = (since, now, count + 1)

    def succeeded(self, part: str) -> None:
        if part not in self.failing:
            return
        since, last, count = self.failing[part]
        now = time.monotonic()
        if now - last >= RECOVERY_QUIET:
            del self.failing[part]
            logger.info("cookiebridge: %s recovered after %.1f s (%d operations failed meanwhile)", part,
                        last - since, count, extra={"event": f"{part}-recovered", "outcome": "ok"})


def _one_line(error: BaseException) -> str:
    return str(error).encode("unicode_escape").decode("ascii")[:300]


class MeteredStore:
    """A Store that counts failed operations (cookiebridge_store_errors) and reports incidents. Methods are looked
    up on the wrapped store at each call, so a test that replaces one of its methods still reaches it."""

    def __init__(self, store: Store, incidents: Incidents) -> None:
        # Imported here, not at the top: `serve` probes the store (this module) before it sets up the metrics'
        # multiprocess mode, which prometheus-client fixes when first imported.
        from . import metrics

        self.errors = metrics.STORE_ERRORS
        self.inner = store
        self.incidents = incidents

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        await self._call("put", key, value, ttl)

    async def get(self, key: str) -> bytes | None:
        result: bytes | None = await self._call("get", key)
        return result

    async def take(self, key: str) -> bytes | None:
        result: bytes | None = await self._call("take", key)
        return result

    async def delete(self, key: str) -> bool:
        return bool(await self._call("delete", key))

    async def hit(self, key: str, window: float, amount: int = 1) -> int:
        return int(await self._call("hit", key, window, amount))

    async def purge_expired(self) -> int:
        return int(await self._call("purge_expired"))

    def __repr__(self) -> str:
        return repr(self.inner)

    async def _call(self, operation: str, *args: Any) -> Any:
        method: Callable[..., Awaitable[Any]] = getattr(self.inner, operation)
        try:
            result = await method(*args)
        except StoreError as error:
            unavailable = isinstance(error, StoreUnavailable)
            self.errors.labels(operation, "unavailable" if unavailable else "error").inc()
            if unavailable:
                self.incidents.failed("store", error)
            raise
        if self.incidents.failing:
            self.incidents.succeeded("store")
        return result

    async def aclose(self) -> None:
        await self.inner.aclose()


async def probe(store: Store, timeout: float = PROBE_TIMEOUT) -> None:
    """Write, read back and delete a probe key; raise StoreError naming the store and what failed."""
    key = f"cookiebridge:probe:{os.getpid()}:{secrets.token_hex(4)}"
    value = secrets.token_bytes(8)
    try:
        await asyncio.wait_for(store.put(key, value, 30), timeout)
        read = await asyncio.wait_for(store.get(key), timeout)
        await asyncio.wait_for(store.delete(key), timeout)
    except asyncio.TimeoutError:
        raise StoreUnavailable(f"{store!r}: no answer within {timeout:g} s") from None
    if read != value:
        got = "nothing" if read is None else "another"
        raise StoreError(f"{store!r}: a value written was not read back (got {got})")


def probe_at_start(store: Store) -> str | None:
    """For `serve` and `check`, outside any event loop: None if the store can be written and read, else why not."""

    async def attempt() -> None:
        try:
            await probe(store)
        finally:
            await store.aclose()

    try:
        asyncio.run(attempt())
    except (StoreError, ValueError, OSError) as error:
        return _one_line(error)
    return None


def sqlite_would_be_created(store: Store) -> str | None:
    """For `check`, which creates nothing: the directory a SQLite file that does not exist yet would be made in, if
    that file does not exist (None when the file exists or the store is not SQLite)."""
    if not isinstance(store, SQLiteStore) or store.path == ":memory:" or os.path.exists(store.path):
        return None
    return os.path.dirname(store.path) or "."


class Readiness:
    """/readyz: 200 when the store can be written and read, else 503 naming the failing part. A probe's
    answer is reused for READY_CACHE seconds."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.checked = -READY_CACHE
        self.failure: str | None = None

    async def check(self) -> str | None:
        """None when ready, else what fails."""
        if time.monotonic() - self.checked >= READY_CACHE:
            self.checked = time.monotonic()  # before the probe: requests meanwhile reuse the last answer
            try:
                await probe(self.store)
                self.failure = None
            except StoreError as error:
                self.failure = _one_line(error)
            self.checked = time.monotonic()
        return self.failure
