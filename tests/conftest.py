from __future__ import annotations

import os
from typing import Iterator

import pytest
from starlette.testclient import TestClient

from cookiebridge.app import create_app
from cookiebridge.config import Settings
from testsupport import make_settings
from testsupport.redis_server import INSTALL_HINT, RedisServer, find_redis_server

ORIGINS = ["https://domain-a.example", "https://domain-b.example:8443"]


@pytest.fixture
def settings() -> Settings:
    return make_settings(trusted_origins=ORIGINS)


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A throw-away redis-server on loopback, for one test. Missing Debian's redis-server fails in CI, skips
    elsewhere."""
    executable = find_redis_server()
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    with RedisServer(executable) as server:
        yield server
