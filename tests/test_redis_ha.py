"""Redis as operators run it: Sentinel-managed (a primary, a replica, a sentinel, and a failover mid-run) and a
three-node Redis Cluster, each through redis-py's own client, against the real `cookiebridge serve` process."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import pytest
import redis as redis_py

from cookiebridge.identity import sign_identity
from cookiebridge.stores import RedisStore, RedisTopology, open_store, parse_redis_topology
from testsupport import (
    INSTALL_HINT,
    BridgeProcess,
    RedisSentinel,
    RedisServer,
    cluster_args,
    find_redis_server,
    free_port,
)

A, B = "https://domain-a.example", "https://domain-b.example"
NAME = "customer-defined-session-cookie"
SECRET = "redis-ha-test-key-Hj8kL2mN5pQ9rS3tV6wX"
IDENTITY_KEY = "redis-ha-identity-Qm4vT9xK2pL7wZ3nR8bY"
ENV = {"COOKIEBRIDGE_SECRET_KEY": SECRET, "COOKIEBRIDGE_IDENTITY_SECRET": IDENTITY_KEY}


def executable() -> str:
    found = find_redis_server()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return found


def until(condition, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(every)


def call(bridge: BridgeProcess, path: str, body: dict, origin: str = A) -> tuple[int, dict]:
    request = urllib.request.Request(bridge.url + "/api/v1/" + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Origin": origin})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def issue(bridge: BridgeProcess, value: str) -> tuple[int, dict]:
    return call(bridge, "handoff", {"name": NAME, "value": value, "destination": B})


def redeem(bridge: BridgeProcess, code: str) -> tuple[int, dict]:
    return call(bridge, "handoff/redeem", {"code": code, "referrer": A + "/"}, origin=B)


def bridge_args(store: str) -> list[str]:
    return ["--trusted-origin", A, "--trusted-origin", B, "--store", store, "--rate-limit", "100000"]


# --- URLs -----------------------------------------------------------------------------------------------------


def test_sentinel_and_cluster_urls_parse_and_bad_ones_say_how_to_write_them() -> None:
    assert parse_redis_topology("redis+sentinel://:s3cret@10.0.0.1:26379,[::1]:26380/mymaster/2?sentinel_password=x") \
        == RedisTopology("sentinel", (("10.0.0.1", 26379), ("::1", 26380)), "mymaster", 2, None, "s3cret", "x", False)
    assert parse_redis_topology("rediss+cluster://user:pw@node-1:7000,node-2:7001") \
        == RedisTopology("cluster", (("node-1", 7000), ("node-2", 7001)), "", 0, "user", "pw", None, True)
    store = open_store("redis+sentinel://:s3cret@h:26379/mymaster")
    assert isinstance(store, RedisStore) and "s3cret" not in repr(store)
    assert repr(store) == "RedisStore('sentinel h:26379 service mymaster db 0')"
    for url, message in [
        ("redis+sentinel://h:26379", "give the service name Sentinel monitors"),
        ("redis+sentinel://h/mymaster", "'h' is not host:port"),
        ("redis+sentinel://h:26379/mymaster/x", "database 'x' is not a number"),
        ("redis+cluster://h:7000/3", "a cluster has only database 0"),
        ("redis+cluster://h:7000?db=1", "unknown option 'db'"),
        ("redis+cluster://:pw@h:7000,,h2:7001", "an empty host"),
    ]:
        with pytest.raises(ValueError, match=message) as raised:
            open_store(url)
        assert "pw" not in str(raised.value) and "write e.g. redis+" in str(raised.value)


# --- Sentinel -------------------------------------------------------------------------------------------------


@pytest.fixture
def sentinel_set() -> Iterator[tuple[RedisServer, RedisServer, RedisSentinel]]:
    found = executable()
    with ExitStack() as stack:
        primary = stack.enter_context(RedisServer(found))
        replica = stack.enter_context(RedisServer(found, args=["--replicaof", "127.0.0.1", str(primary.port)]))
        until(lambda: redis_py.Redis(port=replica.port).info("replication").get("master_link_status") == "up",
              10, "the replica did not sync")
        sentinel = stack.enter_context(RedisSentinel(primary.port, executable=found))
        watcher = redis_py.Redis(port=sentinel.port, decode_responses=True)
        until(lambda: watcher.sentinel_slaves("mymaster"), 15, "the sentinel did not see the replica")
        yield primary, replica, sentinel


def test_sentinel_failover_loses_no_replicated_code_and_the_api_recovers_by_itself(sentinel_set, tmp_path: Path) -> None:
    """Codes issued through the Sentinel-managed primary and replicated (WAIT) survive the primary's death: the
    sentinel promotes the replica, redis-py's Sentinel client finds it, and the same `serve` process redeems every
    code. Meanwhile the API answers 503 (never 500, never a hang), and nothing is restarted."""
    primary, replica, sentinel = sentinel_set
    with BridgeProcess(bridge_args(sentinel.url), tmp_path / "bridge.log", env=ENV) as bridge:
        pid = bridge.process.pid
        codes = {}
        for n in range(20):
            status, body = issue(bridge, f"session-{n}")
            assert status == 200, body
            codes[body["code"]] = f"session-{n}"
        assert redis_py.Redis(port=primary.port).execute_command("WAIT", 1, 2000) == 1  # reached the replica
        primary.kill()
        began = time.monotonic()
        statuses = []

        def served() -> bool:
            status, _ = issue(bridge, "during-failover")
            statuses.append(status)
            return status == 200

        until(served, 30, "the API did not recover after the failover", every=0.2)
        recovered = time.monotonic() - began
        assert set(statuses[:-1]) <= {503} and statuses[-1] == 200, statuses
        assert redis_py.Redis(port=replica.port).info("replication")["role"] == "master"  # promoted
        answers = {code: redeem(bridge, code) for code in codes}
        assert {code: body.get("value") for code, (_, body) in answers.items()} == codes
        assert all(redeem(bridge, code)[1]["error"] == "used" for code in list(codes)[:3])
        assert bridge.process.pid == pid and bridge.process.poll() is None
    log = bridge.log()
    assert "Traceback" not in log and log.count("store unavailable, the API answers 503") <= 1, log
    print(f"failover: API back after {recovered:.1f} s, {len(statuses) - 1} answers 503 meanwhile")


# --- Cluster --------------------------------------------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[list[RedisServer]]:
    """Three primaries, slots split in three, met with CLUSTER MEET (what redis-cli --cluster create does). Tried
    up to three times: a bus port picked free may be taken by another process before its node binds it."""
    found = executable()
    for attempt in range(3):
        with ExitStack() as stack:
            try:
                nodes = form_cluster(stack, found)
            except (RuntimeError, TimeoutError, redis_py.RedisError):
                if attempt == 2:
                    raise
                continue
            yield nodes
            return


def form_cluster(stack: ExitStack, found: str) -> list[RedisServer]:
    buses = [free_port() for _ in range(3)]
    nodes = [stack.enter_context(RedisServer(found, args=cluster_args(bus))) for bus in buses]
    clients = [redis_py.Redis(port=node.port, socket_timeout=5) for node in nodes]
    for client, (first, last) in zip(clients, [(0, 5460), (5461, 10922), (10923, 16383)]):
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
    for node, bus in zip(nodes[1:], buses[1:]):
        clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus)
    until(lambda: all(client.cluster("info")["cluster_state"] == "ok" and
                      int(client.cluster("info")["cluster_known_nodes"]) == 3 for client in clients),
          20, "the cluster did not form")
    return nodes


def test_handoff_and_identity_work_across_the_slots_of_a_three_node_cluster(cluster, tmp_path: Path) -> None:
    nodes = cluster
    url = f"redis+cluster://127.0.0.1:{nodes[0].port},127.0.0.1:{nodes[1].port}"
    args = [*bridge_args(url)[:-1], "20"]  # a rate limit the test reaches
    with BridgeProcess(args, tmp_path / "bridge.log", env=ENV) as bridge:
        codes = {}
        for n in range(15):
            status, body = issue(bridge, f"session-{n}")
            assert status == 200, body
            codes[body["code"]] = f"session-{n}"
        holding = [redis_py.Redis(port=node.port).dbsize() for node in nodes]
        assert all(count > 0 for count in holding), holding  # handoff records spread over every node
        for code, value in codes.items():
            assert redeem(bridge, code) == (200, {"name": NAME, "value": value, "from": A})
        assert [redeem(bridge, code)[1]["error"] for code in list(codes)[:2]] == ["used", "used"]
        for n in range(6):
            token = sign_identity(f"customer-{n}", IDENTITY_KEY)
            assert call(bridge, "identity/save", {"token": token, "name": NAME, "value": f"chat-{n}"})[0] == 200
            assert call(bridge, "identity/load", {"token": token, "name": NAME}, origin=B)[1] == {"value": f"chat-{n}"}
        token = sign_identity("customer-0", IDENTITY_KEY)
        assert call(bridge, "identity/delete", {"token": token, "name": NAME}) == (200, {"deleted": True})
        # 13 identity calls so far: the counter (one key, one slot, MULTI on its node) refuses the 21st.
        statuses = [call(bridge, "identity/load", {"token": token, "name": NAME})[0] for _ in range(9)]
        assert statuses == [200] * 7 + [429] * 2
        ready = urllib.request.urlopen(bridge.url + "/readyz", timeout=10)
        assert ready.status == 200
    assert "Traceback" not in bridge.log()
