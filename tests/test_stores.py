"""The storage layer: one suite run against SQLite (with and without DELETE ... RETURNING) and a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import math
import os
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path
from typing import Awaitable, Callable, Iterator

import pytest

from cookiebridge.stores import RedisStore, SQLiteStore, Store, StoreError, StoreUnavailable, open_store
from testsupport import INSTALL_HINT, RedisServer, find_redis_server
from testsupport.files import read_only


def run(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test with plain asyncio.run (no plugin); the `store` fixture is closed on the same loop."""

    @functools.wraps(test)
    def wrapper(*args: object, **kwargs: object) -> None:
        async def main() -> None:
            try:
                await test(*args, **kwargs)
            finally:
                store = kwargs.get("store")
                if isinstance(store, (SQLiteStore, RedisStore)):
                    await store.aclose()

        asyncio.run(main())

    return wrapper


@pytest.fixture(scope="session")
def redis_executable() -> str:
    executable = find_redis_server()
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return executable


@pytest.fixture(scope="session")
def redis_server(redis_executable: str) -> Iterator[RedisServer]:
    with RedisServer(redis_executable) as server:
        yield server


@pytest.fixture(params=["sqlite", "sqlite-no-returning", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Opens a new Store instance on this test's database: several calls are several bridge processes."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        url = server.url
    else:
        url = f"sqlite:///{tmp_path}/store.db"

    def make() -> Store:
        store = open_store(url)
        if request.param == "sqlite-no-returning":
            store._returning = False  # the BEGIN IMMEDIATE path used with SQLite < 3.35
        return store

    return make


@pytest.fixture
def store(make_store: Callable[[], Store]) -> Store:
    return make_store()


# --- behaviour, on every backend ------------------------------------------------------------------------------


@run
async def test_put_get_overwrite_delete(store: Store) -> None:
    assert isinstance(store, Store)
    assert await store.get("k") is None
    await store.put("k", b"one", 60)
    assert await store.get("k") == b"one"
    await store.put("k", b"two", 60)
    assert await store.get("k") == b"two"
    assert await store.delete("k") is True
    assert await store.get("k") is None
    assert await store.delete("k") is False


@run
async def test_values_are_kept_byte_for_byte(store: Store) -> None:
    values = [b"", b"\x00", bytes(range(256)), "é€".encode(), bytes(200_000)]
    for index, value in enumerate(values):
        await store.put(f"v{index}", value, 60)
    assert [await store.get(f"v{index}") for index in range(len(values))] == values


@run
async def test_take_is_single_use(store: Store) -> None:
    await store.put("code", b"secret", 60)
    assert await store.take("code") == b"secret"
    assert await store.take("code") is None
    assert await store.get("code") is None
    assert await store.take("never-put") is None


@run
async def test_expired_entries_are_gone(store: Store) -> None:
    for key in ("a", "b", "c"):
        await store.put(key, b"old", 0.2)
    await store.put("kept", b"v", 60)
    await asyncio.sleep(0.3)
    assert await store.get("a") is None
    assert await store.take("b") is None
    assert await store.delete("c") is False
    if isinstance(store, SQLiteStore):
        assert await store.purge_expired() == 3  # expired rows stay until purged; reads never see them
        with contextlib.closing(sqlite3.connect(store.path)) as conn:
            assert [row[0] for row in conn.execute("SELECT key FROM kv")] == ["kept"]
    else:
        assert await store.purge_expired() == 0
    assert await store.get("kept") == b"v"


@run
async def test_hit_counts_in_a_fixed_window(store: Store) -> None:
    assert [await store.hit("rl", 0.6) for _ in range(3)] == [1, 2, 3]
    assert await store.get("rl") == b"3"  # counters read the same on both backends
    await asyncio.sleep(0.3)
    assert await store.hit("rl", 0.6) == 4  # later hits do not extend the window...
    await asyncio.sleep(0.4)
    assert await store.hit("rl", 0.6) == 1  # ...so it ends 0.6 s after the first hit
    counts = await asyncio.gather(*(store.hit("burst", 10) for _ in range(50)))
    assert sorted(counts) == list(range(1, 51))


@run
async def test_concurrent_takes_have_exactly_one_winner(store: Store) -> None:
    for round_ in range(5):
        await store.put(f"code{round_}", b"secret", 60)
        results = await asyncio.gather(*(store.take(f"code{round_}") for _ in range(50)))
        assert [value for value in results if value is not None] == [b"secret"]


def test_takes_from_several_instances_and_threads_have_exactly_one_winner(make_store: Callable[[], Store]) -> None:
    rounds, threads, per_thread = 10, 5, 10

    async def seed() -> None:
        async with aclosing(make_store()) as store:
            for round_ in range(rounds):
                await store.put(f"code{round_}", b"secret", 60)

    asyncio.run(seed())
    barrier = threading.Barrier(threads)
    winners: list[int] = []

    async def race() -> None:
        async with aclosing(make_store()) as store:  # its own connection, as another bridge process has
            await store.get("warm-up")  # connected before the race starts
            barrier.wait(timeout=10)
            for round_ in range(rounds):
                results = await asyncio.gather(*(store.take(f"code{round_}") for _ in range(per_thread)))
                winners.extend(round_ for value in results if value is not None)

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(asyncio.run, race()) for _ in range(threads)]:
            future.result()
    assert Counter(winners) == {round_: 1 for round_ in range(rounds)}


@run
async def test_two_instances_see_each_others_data(store: Store, make_store: Callable[[], Store]) -> None:
    async with aclosing(make_store()) as other:
        await store.put("shared", b"v", 60)
        assert await other.get("shared") == b"v"
        assert await other.take("shared") == b"v"
        assert await store.take("shared") is None
        assert await store.hit("rl", 10) == 1
        assert await other.hit("rl", 10) == 2


# A Redis client left behind on a finished loop cannot be closed from another one; its connections warn when freed.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_one_store_serves_successive_event_loops(store: Store) -> None:
    """Starlette's TestClient (without `with`) runs each request on a new loop; the store must follow."""
    asyncio.run(store.put("k", b"v", 60))
    assert asyncio.run(store.get("k")) == b"v"
    asyncio.run(store.aclose())
    assert asyncio.run(store.take("k")) == b"v"  # and it reopens after aclose
    asyncio.run(store.aclose())
    gc.collect()  # free the abandoned client while the warning filter above applies


@run
async def test_bad_arguments_are_rejected_before_any_io(store: Store) -> None:
    for key in ("", "k" * 201, "clé", None):
        with pytest.raises(ValueError, match="ASCII strings of 1 to 200"):
            await store.get(key)  # type: ignore[arg-type]
    for ttl in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match="positive seconds"):
            await store.put("k", b"v", ttl)
        with pytest.raises(ValueError, match="positive seconds"):
            await store.hit("k", ttl)
    with pytest.raises(TypeError, match="bytes, not str"):
        await store.put("k", "text", 60)  # type: ignore[arg-type]
    await store.put("k" * 200, b"v", 60)
    assert await store.take("k" * 200) == b"v"


# --- URLs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "target"),
    [
        ("sqlite:///abs/dir/bridge.db", SQLiteStore, "/abs/dir/bridge.db"),
        ("sqlite:////abs/dir/bridge.db", SQLiteStore, "/abs/dir/bridge.db"),
        ("sqlite:relative.db", SQLiteStore, os.path.abspath("relative.db")),
        ("data/bridge.sqlite3", SQLiteStore, os.path.abspath("data/bridge.sqlite3")),
        ("bridge.db", SQLiteStore, os.path.abspath("bridge.db")),
        ("memory:", SQLiteStore, ":memory:"),
        ("redis://localhost:6379/0", RedisStore, "redis://localhost:6379/0"),
        ("rediss://cache.example:6380/1", RedisStore, "rediss://cache.example:6380/1"),
    ],
)
def test_store_urls(url: str, kind: type, target: str) -> None:
    store = open_store(url)
    assert type(store) is kind
    assert (store.path if isinstance(store, SQLiteStore) else store.url) == target


@pytest.mark.parametrize(
    "url", ["mysql://x", "", "sqlite:", "sqlite://", "memory", "/var/lib/bridge.txt", "http://x.db", "redis://host:port/0"]
)
def test_bad_store_urls_name_the_value_and_the_accepted_forms(url: str) -> None:
    with pytest.raises(ValueError) as info:
        open_store(url)
    message = str(info.value)
    assert "\n" not in message
    assert repr(url) in message
    assert "sqlite:///path/to/file.db" in message and "redis://host:port/0" in message


def test_opening_creates_nothing(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path}/store.db")
    assert list(tmp_path.iterdir()) == []


@run
async def test_memory_stores_are_separate() -> None:
    async with aclosing(open_store("memory:")) as one, aclosing(open_store("memory:")) as two:
        await one.put("k", b"v", 60)
        assert await one.get("k") == b"v"
        assert await two.get("k") is None


# --- SQLite specifics -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["file", "file-and-directory"])
@run
async def test_sqlite_read_only_database_is_unavailable_until_fixed(tmp_path: Path, scope: str) -> None:
    db = tmp_path / "data" / "store.db"
    db.parent.mkdir()
    async with aclosing(open_store(f"sqlite:///{db}")) as first:
        await first.put("k", b"v", 60)  # closing the last connection folds the WAL back: only store.db remains
    store = open_store(f"sqlite:///{db}")
    async with aclosing(store):
        with read_only(db, *([db.parent] if scope == "file-and-directory" else [])):
            with pytest.raises(StoreUnavailable, match="readonly database|unable to open database file") as info:
                await store.put("k2", b"w", 60)
            assert str(db) in str(info.value) and isinstance(info.value, StoreError)
        await store.put("k2", b"w", 60)  # the same object works again once the file is writable
        assert await store.get("k") == b"v"


@run
async def test_sqlite_full_disk_is_unavailable_then_recovers(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    async with aclosing(store):
        await store.put("small", b"v", 60)
        # A full disk without a mount: SQLite's own size cap on the store's connection makes the next growth fail
        # with the real SQLITE_FULL. The store reopens its connection after such an error, which lifts the cap,
        # as freeing disk space would.
        await store._run(lambda conn: conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}"))
        with pytest.raises(StoreUnavailable, match="database or disk is full"):
            await store.put("big", bytes(256 * 1024), 60)
        await store.put("big", bytes(256 * 1024), 60)
        assert await store.get("small") == b"v"


@run
async def test_sqlite_missing_directory_is_unavailable_until_created(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/not-yet/store.db")
    async with aclosing(store):
        with pytest.raises(StoreUnavailable, match="unable to open database file"):
            await store.get("k")
        (tmp_path / "not-yet").mkdir()
        assert await store.get("k") is None


# --- Redis specifics ------------------------------------------------------------------------------------------


@run
async def test_redis_outage_is_unavailable_then_recovers(redis_executable: str) -> None:
    with RedisServer(redis_executable) as server:
        async with aclosing(open_store(server.url)) as store:
            await store.put("k", b"v", 60)
            server.stop()
            calls = [lambda: store.get("k"), lambda: store.put("k", b"w", 60), lambda: store.take("k"),
                     lambda: store.hit("rl", 1), lambda: store.delete("k")]
            for call in calls:
                with pytest.raises(StoreUnavailable, match="Redis store"):
                    await call()
            server.start()  # same port, empty data (no persistence)
            await store.put("k", b"w", 60)  # the same object reconnects by itself
            assert await store.get("k") == b"w"

            server.pause()  # a hung server: the socket timeout (1 s) answers, not the kernel's
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="Timeout"):
                await store.get("k")
            assert time.monotonic() - started < 3
            server.resume()
            assert await store.get("k") == b"w"
