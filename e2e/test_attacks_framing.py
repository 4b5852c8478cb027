"""Attacks by framing: pages that are not trusted (opaque origins, child frames, an evil top, look-alike
origins) message the real bridge iframe and must learn nothing.

The lab's map: e2e/lab/attacks/__init__.py; its pages and scripts are the files beside it. Each test is a row of the
compatibility matrix, on every engine and cookie policy.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from e2e.drivers import Session
from e2e.lab.attacks import TIMEOUT_MS, Lab, no_page_errors
from e2e.matrix import observe
from e2e.topology import COOKIE

# --- untrusted parents -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [pytest.param("sandboxed", marks=pytest.mark.scenario("null origin: sandboxed frame gets no answer")),
     pytest.param("data-url", marks=pytest.mark.scenario("null origin: data: URL frame gets no answer"))],
)
def test_null_origin_parents_get_no_answer(request, browser: Session, lab: Lab, kind: str) -> None:
    """Attacker: a frame with the opaque origin `null` (a sandboxed srcdoc, or a data: URL) inside a trusted page
    embeds the bridge iframe itself, once with its CSP and once without (probe), and sends hello/get/test/set/remove.
    Seen: no answer from either; the probe shows every message arrived, no error inside the iframe and no
    'attacker-session' cookie."""
    browser.goto(lab.harness(lab.site_a))
    config = {"own": [lab.bridge + "/iframe.html", lab.probe + "/iframe.html"], "report": [1], "name": COOKIE}
    html = (f'<!doctype html><script src="{lab.site_a}/lab.js"></script>'
            f"<script>lab.attack({json.dumps(config)});</script>")
    result = browser.evaluate("""
        const [kind, html] = args;
        if (kind === 'sandboxed') await lab.frame(null, { sandbox: 'allow-scripts', srcdoc: html });
        else await lab.frame('data:text/html;charset=utf-8,' + encodeURIComponent(html));
        return await lab.childResult(12000);
    """, kind, html)
    assert result is not None, "the attacker frame did not run"
    assert result["origin"] == "null"
    assert result["replies"] == [] and result["errors"] == []
    probe = result["reports"][0]
    # Each of the 5 attack messages is posted twice: plain, and as a hello with a port (the request follows on it).
    assert probe["received"] >= 10 and probe["errors"] == [] and "attacker" not in probe["cookie"]
    no_page_errors(browser)
    # A frame inside a sandboxed one inherits the sandbox: the bridge there has an opaque origin and no cookies.
    jar = "no cookie jar" if probe["cookie"].startswith("no cookie jar") else "cookie untouched"
    observe(request.node, f"{probe['received']} messages delivered, 0 answered; {jar}")


@pytest.mark.parametrize(
    "child",
    [pytest.param("same-origin", marks=pytest.mark.scenario("child frame of a trusted page (same origin) gets no answer")),
     pytest.param("cross-origin", marks=pytest.mark.scenario("child frame of a trusted page (other site) gets no answer"))],
)
def test_child_frames_of_a_trusted_page_get_no_answer(request, browser: Session, lab: Lab, child: str) -> None:
    """Attacker: a frame inside a trusted page (an ad, a widget, a same-origin srcdoc an injected script wrote)
    messages its sibling, the page's bridge iframe. The same-origin child even has a trusted `event.origin`; only
    the `event.source === parent` check stops it. Seen: no answer to the child, its set/remove had no effect, and
    the iframe still answers the page itself."""
    browser.goto(lab.harness(lab.site_a))
    config = {"siblings": [0], "name": COOKIE}
    result = browser.evaluate("""
        const [child, config, probeUrl, evil] = args;
        const bridge = (await lab.frame(probeUrl + '/iframe.html')).contentWindow;
        const attacker = '<!doctype html><script src="/lab.js"></scr' + 'ipt><script>lab.attack(' + JSON.stringify(config) + ');</scr' + 'ipt>';
        if (child === 'same-origin') await lab.frame(null, { srcdoc: attacker });
        else await lab.frame(evil + '/attacker#' + encodeURIComponent(JSON.stringify(config)));
        const attack = await lab.childResult(10000);
        lab.ask(bridge, { cookiebridge: 1, id: 'mine', op: 'get', name: args[4] }, new URL(probeUrl).origin);
        await lab.sleep(500);
        return { attack, own: lab.replies(bridge).filter(m => m.origin === 'port').map(m => m.data),
                 probe: await lab.report(bridge) };
    """, child, config, lab.probe, lab.evil, COOKIE)
    attack = result["attack"]
    assert attack is not None and attack["replies"] == [] and attack["errors"] == []
    assert attack["origin"] == (lab.site_a if child == "same-origin" else lab.evil)
    # The page's own request is answered, once, on its reply port.
    assert [reply["id"] for reply in result["own"]] == ["mine"] and result["own"][0]["ok"] is True
    probe = result["probe"]
    # 5 attack messages and the page's own, each posted plain and as a hello with a port.
    assert probe["received"] >= 12 and probe["errors"] == [] and "attacker" not in probe["cookie"]
    no_page_errors(browser)
    observe(request.node, f"child at {'trusted' if child == 'same-origin' else 'evil'} origin: 0 answers")


@pytest.mark.scenario("trusted page framed inside an untrusted one")
def test_trusted_page_framed_by_an_untrusted_page(request, browser: Session, lab: Lab) -> None:
    """Attacker: an evil page frames a trusted page (clickjacking style) and messages the bridge iframes nested in
    it. Seen: the bridge's CSP (frame-ancestors checks every ancestor) keeps the real bridge from loading there, so
    the trusted page's provider settles with nothing within its timeout; the evil top gets no answer from any
    bridge frame, even from the CSP-stripped one that does answer its trusted parent."""
    browser.goto(lab.harness(lab.evil))
    config = {"name": COOKIE, "bridge": lab.bridge, "probe": lab.probe, "probeOrigin": lab.probe, "timeout": TIMEOUT_MS}
    result = browser.evaluate("""
        const [victimUrl, name] = args;
        const victim = (await lab.frame(victimUrl)).contentWindow;
        const deadline = Date.now() + 8000;
        let outcome = null;
        while (!outcome && Date.now() < deadline) {
          for (let i = 0; i < victim.frames.length; i++) {
            lab.attackMessages(name).forEach(m => lab.ask(victim.frames[i], m, '*'));
          }
          outcome = await lab.waitFor(m => m.data && m.data.victimResult, 300);
        }
        await lab.sleep(300);
        return { victim: outcome && outcome.victimResult, replies: lab.allReplies(), frames: victim.frames.length };
    """, f"{lab.site_a}/victim#{quote(json.dumps(config))}", COOKIE)
    victim = result["victim"]
    assert victim is not None, "the framed trusted page did not report"
    assert victim["loaded"] is None and victim["tested"] is False
    assert victim["waited"] < 3 * TIMEOUT_MS + 1500
    assert victim["probeAnswered"] is True  # without CSP the iframe serves its trusted parent...
    assert result["replies"] == []  # ...and never the page that frames it
    no_page_errors(browser)
    observe(request.node, f"bridge blocked by CSP, provider settled in {victim['waited'] / 1000:.1f} s, evil top: 0 answers")


@pytest.mark.parametrize(
    "where",
    [pytest.param("look_alike_host", marks=pytest.mark.scenario("look-alike host (trusted host as prefix) learns nothing")),
     pytest.param("look_alike_port", marks=pytest.mark.scenario("look-alike port (trusted port as prefix) learns nothing"))],
)
def test_look_alike_origins_learn_nothing(request, browser: Session, lab: Lab, where: str) -> None:
    """Attacker: a page whose origin starts with a trusted one (`https://127.0.0.22:T` for `https://127.0.0.2:T`,
    `https://127.0.0.2:T1` for `...:T`), which a prefix or unanchored check would accept, runs the provider and
    raw protocol messages (plain, and a hello with a port followed by requests on it) against the bridge without
    its CSP (the probe). Seen: nothing loaded, cookieTest false, no answer, the probe's cookie untouched."""
    origin = getattr(lab, where)
    browser.goto(f"{origin}/?iframe={quote(lab.probe + '/iframe.html', safe='')}")
    learned = browser.evaluate("return await window.__attack;")
    # Then the same attack through lab.ask (plain, and hello + request on ports) at one more probe frame, whose
    # report shows what arrived inside the iframe: every message, no error, the cookie untouched.
    ported = browser.evaluate("""
        const [labJs, probeUrl, name] = args;
        await new Promise((resolve, reject) => document.head.appendChild(
          Object.assign(document.createElement('script'), { src: labJs, onload: resolve, onerror: reject })));
        const bridge = (await lab.frame(probeUrl + '/iframe.html')).contentWindow;
        lab.attackMessages(name).forEach(m => lab.ask(bridge, m, new URL(probeUrl).origin));
        await lab.sleep(800);
        return { replies: lab.allReplies(), probe: await lab.report(bridge), errors: window.__errors };
    """, f"{lab.site_a}/lab.js", lab.probe, COOKIE)
    assert learned["loaded"] is None and learned["tested"] is False and learned["replies"] == []
    assert ported["replies"] == [] and ported["errors"] == []
    probe = ported["probe"]
    assert probe["received"] >= 10 and probe["errors"] == [] and "attacker" not in probe["cookie"]
    observe(request.node, "no reply, no data")
