"""/metrics: the Prometheus text format from prometheus-client, off by default, only for metrics_allow_ips, the
counters the issue asks for, correct totals over `serve --workers N`, and never a secret in a label."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from cookiebridge import __version__, metrics
from cookiebridge.app import create_app
from cookiebridge.identity import sign_identity
from cookiebridge.stores import Store, open_store
from testsupport import BridgeProcess, make_settings, sqlite_url

A, B = "https://domain-a.example", "https://domain-b.example"
NAME = "customer-defined-session-cookie"
SECRET = "metrics-test-key-Hj8kL2mN5pQ9rS3tV6wXy"
IDENTITY_KEY = "metrics-identity-Qm4vT9xK2pL7wZ3nR8bYz"
SCRAPER = ("127.0.0.1", 40000)


def make_client(tmp_path: Path, client: tuple[str, int] = SCRAPER, store: Store | None = None,
                **flags: object) -> TestClient:
    settings = make_settings(**{"trusted_origins": [A, B], "secret_key": SECRET, "identity_secret": IDENTITY_KEY,
                                "metrics": True, "store": sqlite_url(tmp_path), **flags})
    return TestClient(create_app(settings, store), client=client)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, for every sample of the exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def post(client: TestClient, path: str, body: dict, origin: str = A, **headers: str):
    return client.post("/api/v1/" + path, content=json.dumps(body), headers={"Origin": origin, **headers})


def test_metrics_are_off_by_default(tmp_path: Path) -> None:
    client = make_client(tmp_path, metrics=False)
    response = client.get("/metrics")
    assert response.status_code == 404 and response.json()["error"] == "not-found"


def test_only_allowed_addresses_read_metrics_and_others_get_the_plain_404(tmp_path: Path) -> None:
    stranger = make_client(tmp_path, client=("203.0.113.7", 5000))
    response = stranger.get("/metrics")
    assert response.status_code == 404 and response.json() == {"error": "not-found",
                                                               "message": "no such resource: /metrics"}
    inside = make_client(tmp_path, client=("10.1.2.3", 5000), metrics_allow_ips="10.0.0.0/8")
    answer = inside.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=")
    assert answer.headers["cache-control"] == "no-store"
    assert make_client(tmp_path, client=("::ffff:127.0.0.1", 1)).get("/metrics").status_code == 200


def test_counters_for_handoffs_identity_store_errors_rate_limit_and_latency(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(sqlite_url(tmp_path))  # the test makes it fail for a moment
    client = make_client(tmp_path, rate_limit=50, store=store)
    before = samples(client.get("/metrics").text)
    code = post(client, "handoff", {"name": NAME, "value": "v", "destination": B}).json()["code"]
    redeem = {"code": code, "referrer": A + "/"}
    assert post(client, "handoff/redeem", redeem, origin=B).status_code == 200
    assert post(client, "handoff/redeem", redeem, origin=B).json()["error"] == "used"
    assert post(client, "handoff/redeem", {"code": code[:-3] + "AAA", "referrer": A + "/"}, origin=B).status_code == 403
    assert post(client, "handoff/redeem", {"code": code}, origin=B).json()["error"] in ("untrusted-referrer", "used")
    assert post(client, "handoff", {"name": NAME, "value": "v", "destination": A}).json()["error"] == "bad-destination"
    token = sign_identity("customer-7", IDENTITY_KEY)
    assert post(client, "identity/load", {"token": token, "name": NAME}).json() == {"value": None}
    assert post(client, "identity/save", {"token": token, "name": NAME, "value": "s"}).status_code == 200
    assert post(client, "identity/load", {"token": token, "name": NAME}).json() == {"value": "s"}
    assert post(client, "identity/delete", {"token": token, "name": NAME}).json() == {"deleted": True}
    assert post(client, "identity/load", {"token": token + "x", "name": NAME}).status_code == 403

    async def down(*args: object) -> None:
        from cookiebridge.stores import StoreUnavailable
        raise StoreUnavailable("simulated outage")

    monkeypatch.setattr(store, "get", down)
    assert post(client, "identity/load", {"token": token, "name": NAME}).status_code == 503
    monkeypatch.undo()
    statuses = [post(client, "identity/load", {"token": token, "name": NAME}).status_code for _ in range(49)]
    assert statuses == [200] * 44 + [429] * 5  # 6 identity calls above, 50 a minute (one bucket for identity)
    after = samples(client.get("/metrics").text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("cookiebridge_handoff_issued_total") == 1
    assert delta("cookiebridge_handoff_redeemed_total") == 1
    assert delta("cookiebridge_handoff_refused_total", operation="redeem", reason="used") == 1
    assert delta("cookiebridge_handoff_refused_total", operation="redeem", reason="forged") == 1
    assert delta("cookiebridge_handoff_refused_total", operation="issue", reason="bad-destination") == 1
    assert delta("cookiebridge_identity_operations_total", operation="load", result="missing") == 1 + 44
    assert delta("cookiebridge_identity_operations_total", operation="load", result="found") == 1
    assert delta("cookiebridge_identity_operations_total", operation="save", result="saved") == 1
    assert delta("cookiebridge_identity_operations_total", operation="delete", result="deleted") == 1
    assert delta("cookiebridge_identity_operations_total", operation="load", result="bad-signature") == 1
    assert delta("cookiebridge_identity_operations_total", operation="load", result="unavailable") == 1
    assert delta("cookiebridge_identity_operations_total", operation="load", result="rate-limited") == 5
    assert delta("cookiebridge_store_errors_total", operation="get", kind="unavailable") == 1
    assert delta("cookiebridge_rate_limited_total", bucket="identity") == 5
    assert delta("cookiebridge_api_request_duration_seconds_count", endpoint="handoff") == 2
    assert delta("cookiebridge_api_request_duration_seconds_count", endpoint="handoff_redeem") == 4
    assert delta("cookiebridge_api_responses_total", endpoint="identity_load", status="429") == 5
    assert value(after, "cookiebridge_build_info", version=__version__,
                 python=__import__("platform").python_version()) == 1


def test_no_session_value_code_token_or_customer_id_ever_reaches_a_label(tmp_path: Path) -> None:
    """Requests full of distinctive secrets, in every field and header the API reads, some valid, some not: none
    of them appears anywhere in /metrics, and every label value is from the fixed sets in cookiebridge/metrics.py."""
    client = make_client(tmp_path)
    value_secret, customer = "SESSIONVALUE-7f3a9c", "CUSTOMERID-51d2e8"
    token = sign_identity(customer, IDENTITY_KEY)
    code = post(client, "handoff", {"name": NAME, "value": value_secret, "destination": B}).json()["code"]
    post(client, "handoff/redeem", {"code": code, "referrer": A + "/"}, origin=B)
    post(client, "handoff/redeem", {"code": code + "FORGEDCODE", "referrer": "https://REFERRER-x.example/"}, origin=B)
    post(client, "identity/save", {"token": token, "name": NAME, "value": value_secret})
    post(client, "identity/load", {"token": token, "name": "NAME-NOT-ALLOWED"})
    post(client, "handoff", {"name": NAME, "value": value_secret, "destination": "https://DEST-x.example"},
         origin="https://ORIGIN-x.example")
    client.post("/api/v1/handoff", content=b"{not json SESSIONVALUE", headers={"Origin": A})
    text = client.get("/metrics").text
    for secret in (value_secret, customer, token, token[-20:], code, code[:20], "FORGEDCODE", "REFERRER", "DEST-x",
                   "ORIGIN-x", "NAME-NOT-ALLOWED", SECRET, IDENTITY_KEY):
        assert secret not in text
    known = {"operation": {"issue", "redeem", *metrics.STORE_OPERATIONS, *metrics.RESUME_OPERATIONS},
             "reason": metrics.ERROR_CODES | {"other"}, "endpoint": set(metrics.ENDPOINTS),
             "bucket": {"issue", "redeem", "identity", "resume"}, "kind": {"unavailable", "error", *metrics.SHED_KINDS},
             "status": {str(code) for code in range(100, 600)},
             "result": metrics.RESUME_RESULTS | {"other"},
             "version": {__version__}, "python": {__import__("platform").python_version()}, "le": None}
    for (name, labels), _ in samples(text).items():
        for label, content in labels:
            assert label in known, (name, label)
            assert known[label] is None or content in known[label], (name, label, content)


def scrape(bridge: BridgeProcess) -> dict:
    with urllib.request.urlopen(bridge.url + "/metrics", timeout=10) as response:
        return samples(response.read().decode())


def issue(bridge: BridgeProcess) -> None:
    request = urllib.request.Request(bridge.url + "/api/v1/handoff", method="POST", headers={"Origin": A},
                                     data=json.dumps({"name": NAME, "value": "v", "destination": B}).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def per_worker(directory: Path) -> dict[str, float]:
    """Handoff codes issued by each worker process, from the library's per-process files."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        counts[path.stem] = sum(found for key, found, *_ in MmapedDict.read_all_values_from_file(str(path))
                                if json.loads(key)[0] == "cookiebridge_handoff_issued")
    return counts


def test_several_workers_report_correct_totals_and_serve_cleans_the_directory_at_start(tmp_path: Path) -> None:
    """`serve --workers 2 --metrics`: each new connection may land on either worker, yet every scrape, whichever
    worker answers it, reports the total of both. PROMETHEUS_MULTIPROC_DIR given by the operator is emptied at
    start: a second run on the same directory starts from zero."""
    directory = tmp_path / "prometheus"
    args = ["--workers", "2", "--metrics", "--trusted-origin", A, "--trusted-origin", B,
            "--store", f"sqlite:///{tmp_path / 'bridge.db'}", "--rate-limit", "100000"]
    env = {"COOKIEBRIDGE_SECRET_KEY": SECRET, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    with BridgeProcess(args, tmp_path / "first.log", env=env) as bridge:
        issued = 0
        with ThreadPoolExecutor(8) as pool:  # concurrent connections, until both workers have issued some
            while issued < 400 and sorted(per_worker(directory).values(), reverse=True)[1:2] in ([], [0]):
                list(pool.map(lambda _: issue(bridge), range(20)))
                issued += 20
        counts = per_worker(directory)
        assert len(counts) == 2 and min(counts.values()) > 0, counts
        totals = [value(scrape(bridge), "cookiebridge_handoff_issued_total") for _ in range(6)]
        assert totals == [issued] * 6 and sum(counts.values()) == issued
    with BridgeProcess(args, tmp_path / "second.log", env=env) as bridge:
        for _ in range(4):
            issue(bridge)
        assert value(scrape(bridge), "cookiebridge_handoff_issued_total") == 4
        found = scrape(bridge)
        assert value(found, "cookiebridge_api_request_duration_seconds_count", endpoint="handoff") == 4
        assert value(found, "cookiebridge_build_info", version=__version__,
                     python=__import__("platform").python_version()) == 1


def test_one_worker_keeps_its_metrics_in_memory(tmp_path: Path) -> None:
    args = ["--metrics", "--trusted-origin", A, "--trusted-origin", B, "--store", f"sqlite:///{tmp_path / 'b.db'}"]
    env = {"COOKIEBRIDGE_SECRET_KEY": SECRET, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "unused")}
    with BridgeProcess(args, tmp_path / "serve.log", env=env) as bridge:
        issue(bridge)
        assert value(scrape(bridge), "cookiebridge_handoff_issued_total") == 1
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(bridge.url + "/metrics", method="POST"), timeout=10)
        assert refused.value.code == 405
    assert not (tmp_path / "unused").exists()
