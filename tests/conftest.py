from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from cookiebridge.app import create_app
from cookiebridge.config import Settings
from testsupport import make_settings

ORIGINS = ["https://domain-a.example", "https://domain-b.example:8443"]


@pytest.fixture
def settings() -> Settings:
    return make_settings(trusted_origins=ORIGINS)


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))
