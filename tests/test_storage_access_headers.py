"""Storage Access Headers on /iframe.html: a trusted embedder whose storage-access permission is granted gets its
unpartitioned cookies without a script round trip, and the prebuilt-file fast path (ETag, 304, precompressed
copies) keeps working for every request."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from cookiebridge.app import create_app
from testsupport.settings import A, B, make_settings

EVIL = "https://evil.example"


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(make_settings(store="memory:")), base_url="https://bridge.example")


def test_a_request_without_the_header_is_the_plain_fast_path(client: TestClient) -> None:
    response = client.get("/iframe.html", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and "activate-storage-access" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding, Sec-Fetch-Storage-Access"
    assert response.headers["content-encoding"] == "gzip"


def test_inactive_from_a_trusted_embedder_asks_for_a_retry_with_its_origin(client: TestClient) -> None:
    response = client.get("/iframe.html", headers={"Sec-Fetch-Storage-Access": "inactive", "Origin": A})
    assert response.status_code == 200
    assert response.headers["activate-storage-access"] == f'retry; allowed-origin="{A}"'
    assert response.headers["vary"] == "Accept-Encoding, Sec-Fetch-Storage-Access, Origin"


def test_active_from_a_trusted_embedder_keeps_access_for_the_page(client: TestClient) -> None:
    response = client.get("/iframe.html", headers={"Sec-Fetch-Storage-Access": "active", "Origin": B})
    assert response.headers["activate-storage-access"] == "load"
    assert response.headers["vary"] == "Accept-Encoding, Sec-Fetch-Storage-Access, Origin"


@pytest.mark.parametrize(("status", "origin"), [
    ("none", A), ("inactive", EVIL), ("active", EVIL), ("inactive", None), ("inactive", "null"),
    ("bogus", A), ("inactive", A + "/"), ("inactive", 'https://domain-a.example"; x="'),
])
def test_no_activation_for_other_states_or_embedders(client: TestClient, status: str, origin: str | None) -> None:
    headers = {"Sec-Fetch-Storage-Access": status, **({"Origin": origin} if origin else {})}
    response = client.get("/iframe.html", headers=headers)
    assert response.status_code == 200 and "activate-storage-access" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding, Sec-Fetch-Storage-Access, Origin"


def test_etag_304_and_encodings_are_unchanged_with_the_header(client: TestClient) -> None:
    plain = client.get("/iframe.html", headers={"Accept-Encoding": "identity"})
    asked = {"Sec-Fetch-Storage-Access": "inactive", "Origin": A}
    same = client.get("/iframe.html", headers={**asked, "Accept-Encoding": "identity"})
    assert same.content == plain.content and same.headers["etag"] == plain.headers["etag"]
    gz = client.get("/iframe.html", headers={**asked, "Accept-Encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and gz.headers["etag"] != plain.headers["etag"]
    again = client.get("/iframe.html", headers={**asked, "Accept-Encoding": "gzip", "If-None-Match": gz.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["activate-storage-access"] == f'retry; allowed-origin="{A}"'
    assert again.headers["vary"] == "Accept-Encoding, Sec-Fetch-Storage-Access, Origin"
    assert "content-encoding" not in again.headers and again.headers["cache-control"] == "public, max-age=300"
    head = client.head("/iframe.html", headers=asked)
    assert head.status_code == 200 and head.content == b"" and head.headers["activate-storage-access"]


def test_the_page_keeps_its_other_headers(client: TestClient) -> None:
    plain = client.get("/iframe.html").headers
    asked = client.get("/iframe.html", headers={"Sec-Fetch-Storage-Access": "inactive", "Origin": A}).headers
    for name in ("content-security-policy", "x-content-type-options", "referrer-policy", "cache-control",
                 "content-type", "etag"):
        assert asked[name] == plain[name], name


@pytest.mark.parametrize("path", ["/iframe.min.js", "/cookie-provider.min.js", "/"])
def test_other_files_neither_vary_nor_activate(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"Sec-Fetch-Storage-Access": "inactive", "Origin": A})
    assert "activate-storage-access" not in response.headers
    assert "Sec-Fetch-Storage-Access" not in response.headers.get("vary", "")
