"""Prometheus metrics, kept with the `prometheus-client` library.

Every label value comes from a fixed set written in this repository (endpoint names, error codes, store operation
names), never from a request: no session value, handoff code, token or customer id can reach a label. `label()`
folds anything outside the known set into "other".

With `serve --workers N` each worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (set, created and
cleaned by `serve` before the workers start: see cli.prepare_metrics_dir), and /metrics sums them over the workers
with the library's MultiProcessCollector. The library chooses its mode when it is first imported, so the variable
must be set before that: it is, since workers are started afterwards and import the app themselves.
"""

from __future__ import annotations

import os
import platform

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from . import __version__, errors

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# The error codes the API answers with (declared once, in errors.py): the only values a reason label takes.
ERROR_CODES = frozenset(errors.CODES)
ENDPOINTS = ("handoff", "handoff_redeem", "identity_save", "identity_load", "identity_delete", "resume_redeem",
             "resume_load", "resume_save", "resume_delete")
# Resume (docs/resume.md): the two pages (ask: GET /resume, choose: POST /resume) and the four API calls.
RESUME_OPERATIONS = ("ask", "choose", "redeem", "load", "save", "delete")
RESUME_RESULTS = ERROR_CODES | {"found", "missing", "continue", "new", "refused", "saved", "deleted"}
STORE_OPERATIONS = ("put", "get", "take", "delete", "hit", "purge_expired")
SHED_KINDS = ("refused", "evicted", "busy", "slow-header", "slow-body", "refused-431", "refused-414", "over-budget")

REGISTRY = CollectorRegistry(auto_describe=True)

HANDOFF_ISSUED = Counter("cookiebridge_handoff_issued", "Handoff codes issued.", registry=REGISTRY)
HANDOFF_REDEEMED = Counter("cookiebridge_handoff_redeemed", "Handoff codes redeemed (the session handed over).",
                           registry=REGISTRY)
HANDOFF_REFUSED = Counter("cookiebridge_handoff_refused", "Handoff requests refused, by operation (issue or "
                          "redeem) and reason (the API's error code).", ["operation", "reason"], registry=REGISTRY)
IDENTITY = Counter("cookiebridge_identity_operations", "Identity session loads, saves and deletes, by result "
                   "(found, missing, saved, deleted, or the API's error code).", ["operation", "result"],
                   registry=REGISTRY)
RESUME = Counter("cookiebridge_resume_operations", "Resume pages and API calls, by operation (ask, choose, redeem, "
                 "load, save, delete) and result (found, missing, continue, new, saved, deleted, refused: a page's "
                 "400/403/429/503, or the API's error code).", ["operation", "result"], registry=REGISTRY)
STORE_ERRORS = Counter("cookiebridge_store_errors", "Store operations that failed, by operation and kind "
                       "(unavailable: the API answers 503; error: any other failure).", ["operation", "kind"],
                       registry=REGISTRY)
RATE_LIMITED = Counter("cookiebridge_rate_limited", "API requests refused by the per-address rate limit, by bucket.",
                       ["bucket"], registry=REGISTRY)
RESPONSES = Counter("cookiebridge_api_responses", "API answers by endpoint and HTTP status.", ["endpoint", "status"],
                    registry=REGISTRY)
LATENCY = Histogram("cookiebridge_api_request_duration_seconds", "Time to answer an API request, by endpoint.",
                    ["endpoint"], registry=REGISTRY,
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
SHED = Counter("cookiebridge_shed", "Requests and connections shed, by kind (refused: 503 at max_connections; "
               "evicted: oldest idle connection closed; busy: 503 at max_concurrent_requests; slow-header/slow-body: "
               "read deadline; refused-431/414: head or URL too large; over-budget: 429 past a handoff budget).",
               ["kind"], registry=REGISTRY)
BUILD_INFO = Gauge("cookiebridge_build_info", "Always 1; the labels say which cookiebridge and Python run.",
                   ["version", "python"], registry=REGISTRY, multiprocess_mode="max")
BUILD_INFO.labels(__version__, platform.python_version()).set(1)


def label(value: str, known: frozenset[str] | tuple[str, ...]) -> str:
    """A label value from a fixed set: `value` when it is in `known`, else "other"."""
    return value if value in known else "other"


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_VARIABLE))


def exposition() -> bytes:
    """The Prometheus text format: this process's values, or the sum over every worker's files."""
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
