"""Key-value storage with expiry and atomic single-use take: SQLite (one host) or Redis (several instances)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sqlite3
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, TypeVar, runtime_checkable

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from .errors import UNAVAILABLE, BridgeError

T = TypeVar("T")

MAX_KEY_LENGTH = 200
ACCEPTED_URLS = ("use sqlite:///path/to/file.db, sqlite:relative.db, redis://host:port/0 (or rediss://), "
                 "redis+sentinel://host:26379,host2:26379/mymaster/0, redis+cluster://host:7000,host2:7000 or memory:")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


class StoreError(Exception):
    """A store operation failed."""


class StoreUnavailable(StoreError, BridgeError):
    """The backend is down, read-only or full; worth retrying later. The API answers 503 unavailable with a message
    of its own: `str()` of the error names the store (for the log), which clients are not told."""

    def __init__(self, detail: str) -> None:
        BridgeError.__init__(self, UNAVAILABLE, "the bridge's store is unavailable; try again shortly", retry_after=5)
        self.args = (detail,)


@runtime_checkable
class Store(Protocol):
    async def put(self, key: str, value: bytes, ttl: float) -> None: ...
    async def get(self, key: str) -> bytes | None: ...
    async def take(self, key: str) -> bytes | None: ...
    async def delete(self, key: str) -> bool: ...
    async def hit(self, key: str, window: float, amount: int = 1) -> int: ...
    async def purge_expired(self) -> int: ...
    async def aclose(self) -> None: ...


def open_store(url: str) -> Store:
    """The store for a URL; nothing is connected or created until first use."""
    if url.startswith(("redis://", "rediss://")):
        try:
            parse_url(url)
        except ValueError as error:
            raise ValueError(f"bad Redis store URL {url!r} ({error}): {ACCEPTED_URLS}") from None
        return RedisStore(url)
    if url.startswith(tuple(scheme + "://" for scheme in SENTINEL_SCHEMES + CLUSTER_SCHEMES)):
        return RedisStore(url, topology=parse_redis_topology(url))
    if url == "memory:":
        return SQLiteStore(":memory:")
    path = _sqlite_path(url)
    if path is None:
        raise ValueError(f"unsupported store URL {url!r}: {ACCEPTED_URLS}")
    return SQLiteStore(path if path == ":memory:" else os.path.abspath(os.path.expanduser(path)))


@dataclass(frozen=True)
class RedisTopology:
    """Where a Sentinel-managed or clustered Redis is: `redis+sentinel://[user:password@]host:port[,host:port...]/
    service[/db][?sentinel_password=...]` or `redis+cluster://[user:password@]host:port[,host:port...][/0]`
    (`rediss+...` for TLS). The password is the data nodes'; sentinels use `sentinel_password`, if any."""

    kind: str  # "sentinel" or "cluster"
    hosts: tuple[tuple[str, int], ...]
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    tls: bool = False

    def describe(self) -> str:
        where = ",".join(f"{host}:{port}" for host, port in self.hosts)
        return f"{self.kind} {where}" + (f" service {self.service} db {self.db}" if self.kind == "sentinel" else "")


def parse_redis_topology(url: str) -> RedisTopology:
    """Parse a redis+sentinel:// or redis+cluster:// URL; ValueError with the fix otherwise."""
    scheme, _, rest = url.partition("://")
    kind = "sentinel" if scheme in SENTINEL_SCHEMES else "cluster"
    example = ("redis+sentinel://host:26379,host2:26379/mymaster/0" if kind == "sentinel"
               else "redis+cluster://host:7000,host2:7000")
    bad = f"bad Redis {kind} store URL {_without_password(url)!r}"
    parts = urllib.parse.urlsplit("//" + rest)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    hosts = []
    for item in hostlist.split(","):
        host, _, port = item.strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{bad}: {item.strip() or 'an empty host'!r} is not host:port; write e.g. {example}")
        hosts.append((host, int(port)))
    path = [part for part in parts.path.split("/") if part]
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - ({"sentinel_password"} if kind == "sentinel" else set())
    if unknown or parts.fragment:
        raise ValueError(f"{bad}: unknown option {', '.join(sorted(unknown)) or '#' + parts.fragment!r}; write e.g. "
                         f"{example}")
    service, db = "", "0"
    if kind == "sentinel":
        if not 1 <= len(path) <= 2:
            raise ValueError(f"{bad}: give the service name Sentinel monitors, and optionally the database, as the "
                             f"path; write e.g. {example}")
        service, db = path[0], path[1] if len(path) == 2 else "0"
    elif path not in ([], ["0"]):
        raise ValueError(f"{bad}: a cluster has only database 0; write e.g. {example}")
    if not db.isdigit():
        raise ValueError(f"{bad}: database {db!r} is not a number; write e.g. {example}")
    sentinel_password = query.get("sentinel_password", [None])[0]
    return RedisTopology(kind, tuple(hosts), urllib.parse.unquote(service), int(db),
                         urllib.parse.unquote(username) or None, urllib.parse.unquote(password) or None,
                         sentinel_password, scheme.startswith("rediss"))


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    return scheme + sep + netloc.rpartition("@")[2] + slash + path.partition("?")[0]


def describe_store_url(url: str) -> str:
    """The store URL as it may be shown: no credentials, no query."""
    return _without_password(url) if "://" in url else url


def _sqlite_path(url: str) -> str | None:
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:")
        path = path[2:] if path.startswith("//") else path  # sqlite:///abs/file.db -> /abs/file.db
        path = "/" + path.lstrip("/") if path.startswith("/") else path  # sqlite:////abs/file.db too
        return path if path.strip("/") else None
    if url.endswith((".db", ".sqlite3")) and "://" not in url:
        return url
    return None


def _check(key: str, ttl: float = 1.0) -> None:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH or not key.isascii():
        raise ValueError(f"store keys are ASCII strings of 1 to {MAX_KEY_LENGTH} characters, not {key!r:.60}")
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"ttl/window must be positive seconds, not {ttl!r}")


def _check_value(value: bytes) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"store values are bytes, not {type(value).__name__}")


# --- SQLite ---------------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires);
"""

# Counters are kept as ASCII digits, as Redis does, so get() on a counter key answers the same on both backends.
_HIT = """
INSERT INTO kv (key, value, expires) VALUES (:key, CAST(:amount AS BLOB), :expires)
ON CONFLICT (key) DO UPDATE SET
    value = CASE WHEN expires > :now THEN CAST(CAST(value AS INTEGER) + :amount AS BLOB) ELSE CAST(:amount AS BLOB) END,
    expires = CASE WHEN expires > :now THEN expires ELSE :expires END
"""

@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the write lock up front, so no other connection slips in between."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    conn.execute("COMMIT")


class SQLiteStore:
    """SQLite in WAL mode; all work runs on one worker thread that owns the connection.

    Expiry times are wall-clock seconds, so several processes sharing the file agree on them.
    """

    def __init__(self, path: str, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._returning = sqlite3.sqlite_version_info >= (3, 35, 0)  # DELETE ... RETURNING
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()  # .conn: the worker thread's own connection

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # The worker thread is independent of any event loop, so one store may serve several loops.
    def _worker(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="cookiebridge-sqlite")
            return self._executor

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker(), self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = self._local.conn = self._connect()
            return fn(conn)
        except sqlite3.Error as error:
            # Reopen on next use: a connection opened while the file was read-only stays read-only.
            if getattr(error, "sqlite_errorname", "") not in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                self._disconnect()
            kind = StoreUnavailable if isinstance(error, sqlite3.OperationalError) else StoreError
            raise kind(f"SQLite store {self.path}: {error}") from error

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        try:
            # Incremental auto-vacuum lets a purge give the pages of expired entries back to the file system: without
            # it a file that a flood of handoffs grew to 85 MB stayed that size. It must be set before the first
            # table exists, or be followed by one VACUUM (a file made by an older version: done once, here).
            if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    conn.execute("VACUUM")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _disconnect(self) -> None:
        conn, self._local.conn = getattr(self._local, "conn", None), None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    @staticmethod
    def _purge(conn: sqlite3.Connection) -> int:
        purged = conn.execute("DELETE FROM kv WHERE expires <= ?", (time.time(),)).rowcount
        if purged:
            # Free pages back to the file system. executescript steps the pragma to its end; execute() frees one page.
            conn.executescript("PRAGMA incremental_vacuum;")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # and the WAL, which the flood grew too
        return purged

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        _check(key, ttl)
        _check_value(value)

        def put(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                         (key, value, time.time() + ttl))

        await self._run(put)

    async def get(self, key: str) -> bytes | None:
        _check(key)

        def get(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT value FROM kv WHERE key = ? AND expires > ?", (key, time.time())).fetchone()
            return row[0] if row else None

        return await self._run(get)

    async def take(self, key: str) -> bytes | None:
        _check(key)

        def take(conn: sqlite3.Connection) -> bytes | None:
            now = time.time()
            if self._returning:
                # fetchall() steps the statement to its end, which ends the implicit transaction.
                rows = conn.execute("DELETE FROM kv WHERE key = ? AND expires > ? RETURNING value",
                                    (key, now)).fetchall()
            else:
                with _immediate(conn):
                    rows = conn.execute("SELECT value FROM kv WHERE key = ? AND expires > ?", (key, now)).fetchall()
                    if rows:
                        conn.execute("DELETE FROM kv WHERE key = ?", (key,))
            return rows[0][0] if rows else None

        return await self._run(take)

    async def delete(self, key: str) -> bool:
        _check(key)
        return await self._run(
            lambda conn: conn.execute("DELETE FROM kv WHERE key = ? AND expires > ?", (key, time.time())).rowcount > 0
        )

    async def hit(self, key: str, window: float, amount: int = 1) -> int:
        """Add `amount` to the counter at `key` (a fixed window of `window` seconds from its first hit); its total."""
        _check(key, window)

        def hit(conn: sqlite3.Connection) -> int:
            now = time.time()
            params = {"key": key, "now": now, "expires": now + window, "amount": int(amount)}
            if self._returning:
                count = conn.execute(_HIT + " RETURNING CAST(value AS INTEGER)", params).fetchall()[0][0]
            else:
                with _immediate(conn):
                    conn.execute(_HIT, params)
                    count = conn.execute("SELECT CAST(value AS INTEGER) FROM kv WHERE key = ?", (key,)).fetchone()[0]
            return count

        return await self._run(hit)

    async def purge_expired(self) -> int:
        """Delete expired entries and give their space back; the app calls it every PURGE_INTERVAL seconds."""
        return await self._run(self._purge)

    async def aclose(self) -> None:
        """Close the connection and stop the worker; a later call opens them again."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
            executor.shutdown(wait=False)


# --- Redis ----------------------------------------------------------------------------------------------------

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.MasterDownError,
    redis_errors.SlotNotCoveredError,
    redis_errors.RedisClusterException,  # e.g. no startup node reachable
    OSError,
)


class RedisStore:
    """Redis with native expiry; short socket timeouts so a dead server fails requests fast. One server
    (`redis://`), a Sentinel-managed primary (`redis+sentinel://`, redis-py's Sentinel client finds the primary
    again after a failover) or a Redis Cluster (`redis+cluster://`, redis-py's cluster client). Every operation
    that must be atomic touches exactly one key, so in a cluster it lives in one hash slot."""

    def __init__(self, url: str, *, timeout: float = 1.0, topology: RedisTopology | None = None) -> None:
        self.url = url
        self.topology = topology
        self._timeout = timeout
        self._client: Any = None
        self._sentinel: Sentinel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        if self.topology is not None:
            return f"RedisStore({self.topology.describe()!r})"
        return f"RedisStore({self.url.split('@')[-1]!r})"  # no credentials

    def _redis(self) -> Any:
        # redis.asyncio connections belong to the loop that opened them; a store used from another loop
        # (e.g. Starlette's TestClient without `with`) gets its own client instead of "attached to a different loop".
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._connect()
            self._loop = loop
        return self._client

    def _connect(self) -> Any:
        timeouts: dict[str, Any] = {"socket_timeout": self._timeout, "socket_connect_timeout": self._timeout}
        # One immediate retry on a connection error, for pooled connections that died with a Redis restart or a
        # failover; none on timeouts, so a hung server costs one timeout.
        retry = Retry(NoBackoff(), 1, (redis_errors.ConnectionError,))
        topology = self.topology
        if topology is None:
            return aioredis.from_url(self.url, retry=retry, **timeouts)
        auth: dict[str, Any] = {"username": topology.username, "password": topology.password}
        if topology.kind == "sentinel":
            sentinel_kwargs: dict[str, Any] = {**timeouts, "password": topology.sentinel_password, "ssl": topology.tls}
            self._sentinel = Sentinel(list(topology.hosts), sentinel_kwargs=sentinel_kwargs)
            return self._sentinel.master_for(topology.service, db=topology.db, retry=retry, ssl=topology.tls,
                                             **auth, **timeouts)
        return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in topology.hosts],
                            ssl=topology.tls, **auth, **timeouts)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE as error:
            raise StoreUnavailable(f"Redis store {self!r}: {type(error).__name__}: {error}") from error
        except redis_errors.RedisError as error:
            kind = StoreUnavailable if str(error).startswith(("MISCONF", "LOADING", "MASTERDOWN")) else StoreError
            raise kind(f"Redis store {self!r}: {error}") from error

    @staticmethod
    def _ms(seconds: float) -> int:
        return max(1, math.ceil(seconds * 1000))

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        _check(key, ttl)
        _check_value(value)
        with self._errors():
            await self._redis().set(key, value, px=self._ms(ttl))

    async def get(self, key: str) -> bytes | None:
        _check(key)
        with self._errors():
            return await self._redis().get(key)

    async def take(self, key: str) -> bytes | None:
        _check(key)
        with self._errors():
            return await self._redis().getdel(key)

    async def delete(self, key: str) -> bool:
        _check(key)
        with self._errors():
            return await self._redis().delete(key) > 0

    async def hit(self, key: str, window: float, amount: int = 1) -> int:
        _check(key, window)
        with self._errors():
            # SET NX PX creates the counter with its expiry on the first hit only; INCRBY keeps the TTL.
            # MULTI makes it atomic.
            async with self._redis().pipeline(transaction=True) as pipe:
                pipe.set(key, 0, px=self._ms(window), nx=True)
                pipe.incrby(key, int(amount))
                _, count = await pipe.execute()
        return int(count)

    async def purge_expired(self) -> int:
        return 0  # Redis expires keys itself

    async def aclose(self) -> None:
        """Close the connections; a later call opens new ones."""
        client, loop, self._client, self._loop = self._client, self._loop, None, None
        sentinel, self._sentinel = self._sentinel, None
        if client is not None and loop is asyncio.get_running_loop():
            with contextlib.suppress(redis_errors.RedisError, OSError):
                await client.aclose()
            for node in sentinel.sentinels if sentinel is not None else ():
                with contextlib.suppress(redis_errors.RedisError, OSError):
                    await node.aclose()
