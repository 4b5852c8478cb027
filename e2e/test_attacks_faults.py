"""Faults, browser side: the bridge slow, failing, unavailable or killed mid-session; the provider settles within
its timeout and the page keeps working.

The lab's map: e2e/lab/attacks/__init__.py; its pages and scripts are the files beside it. Each test is a row of the
compatibility matrix, on every engine and cookie policy.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from e2e.drivers import Session
from e2e.lab.attacks import TIMEOUT_MS, Lab, no_page_errors, script
from e2e.matrix import observe
from e2e.topology import COOKIE, SECRET, bridge_args
from testsupport import BridgeProcess, free_port


@pytest.mark.parametrize(
    "mode",
    [pytest.param("slow", marks=pytest.mark.scenario("bridge slow (answers after 4 s): provider settles within its timeout")),
     pytest.param("error", marks=pytest.mark.scenario("bridge answers 5xx HTML: provider settles, page works")),
     pytest.param("unavailable", marks=pytest.mark.scenario("bridge answers 503 JSON: provider settles, page works"))],
)
def test_provider_falls_back_when_the_bridge_misbehaves(request, browser: Session, lab: Lab, mode: str) -> None:
    """Fault: the bridge origin is slow (every answer after 4 s), answers HTML 500/502, or answers the API's own
    503 JSON (its scripts load: the provider's API script meets the 503s). Seen: loadCookie, saveCookie, cookieTest and link decoration each settle (null / false / the plain
    link) within the 1 s timeout plus scheduling slack, the site's own cookie and scripts are untouched, onError
    names each failure, and nothing throws."""
    browser.goto(lab.harness(lab.site_a))
    token = "any-identity-token"  # so the identity mechanism is tried too
    outcome = browser.evaluate(script("fallback.js"), COOKIE, f"{lab.faulty}/{mode}/iframe.html", [lab.site_a, lab.site_b],
                               TIMEOUT_MS, token)
    result = outcome["result"]
    assert result["load"]["value"] is None and result["save"]["value"] is False and result["test"]["value"] is False
    assert result["link"]["value"] == lab.site_b + "/next"
    # loadCookie starts identity and the iframe at once: the whole call settles within one timeout too.
    for step in ("load", "save", "test", "link"):
        assert result[step]["ms"] < TIMEOUT_MS + 700, (step, result[step])
    assert outcome["cookie"] is True and outcome["ticks"] > 10
    failures = outcome["failures"]
    assert any(failure.startswith("handoff:") for failure in failures)
    assert "iframe:timeout" in failures  # loadCookie's iframe request: no bridge script ever takes the hello
    if mode == "unavailable":
        # The API script loaded (served like the real bridge does); the API itself answered 503.
        assert "handoff:unavailable" in failures and "identity:unavailable" in failures, failures
    else:
        # The API script never arrives (late, or a 5xx): the API mechanisms are skipped, links stay plain.
        assert "handoff:unreachable" in failures, failures
    no_page_errors(browser)
    slowest = max(result[step]["ms"] for step in result)
    observe(request.node, f"settled; slowest call {slowest / 1000:.1f} s (timeout {TIMEOUT_MS / 1000:.0f} s)")


@pytest.mark.scenario("bridge killed mid-session: links fall back, then recover without reload")
def test_bridge_killed_mid_session(request, browser: Session, lab: Lab) -> None:
    """Fault: the bridge process is killed (SIGKILL) while a customer is on a page, then restarted. Seen: while it
    is down, a link to the other site resolves to the plain link within the timeout and the already-loaded iframe
    still answers; after the restart the same page gets handoff codes again without a reload."""
    port = free_port()
    args = bridge_args(lab.certs, [lab.site_a, lab.site_b], f"sqlite:///{lab.work / 'mortal.db'}")
    env = {"COOKIEBRIDGE_SECRET_KEY": SECRET}
    mortal = BridgeProcess(args, lab.work / f"mortal-{time.monotonic_ns()}.log", port=port, env=env, tls=True)
    browser.goto(lab.harness(lab.site_a))
    with mortal:
        before = browser.evaluate("""
            const [name, iframeUrl, origins, timeout] = args;
            document.cookie = name + '=live-session; Path=/; Secure; SameSite=Lax';
            window.provider = new CookieProvider(name, iframeUrl, { timeout, origins });
            return { link: await provider.decorate(origins[1] + '/'), hello: (await provider.request({ op: 'hello' })).ok };
        """, COOKIE, mortal.url + "/iframe.html", [lab.site_a, lab.site_b], TIMEOUT_MS)
        assert "#cb-handoff=" in before["link"] and before["hello"] is True
        os.killpg(mortal.process.pid, signal.SIGKILL)
        mortal.process.wait(timeout=10)
    during = browser.evaluate("""
        const began = performance.now();
        const link = await provider.decorate(args[0] + '/');
        return { link, ms: performance.now() - began, hello: (await provider.request({ op: 'hello' })).ok };
    """, lab.site_b)
    assert during["link"] == lab.site_b + "/" and during["ms"] < TIMEOUT_MS + 700
    assert during["hello"] is True  # the iframe document lives in the browser, not on the server
    with BridgeProcess(args, lab.work / f"mortal-{time.monotonic_ns()}.log", port=port, env=env, tls=True):
        after = browser.evaluate("return await provider.decorate(args[0] + '/');", lab.site_b)
    assert "#cb-handoff=" in after
    no_page_errors(browser)
    observe(request.node, f"down: plain link in {during['ms'] / 1000:.1f} s; restarted: codes again")
