"""Attacks by message: hostile, malformed and fuzzed protocol messages from a trusted page's scripts or an
untrusted parent, and forged handoff codes in links.

The lab's map: e2e/lab/attacks/__init__.py; its pages and scripts are the files beside it. Each test is a row of the
compatibility matrix, on every engine and cookie policy.
"""

from __future__ import annotations

import pytest

from e2e.drivers import Session
from e2e.lab.attacks import Lab, no_page_errors, script
from e2e.matrix import observe
from e2e.topology import COOKIE, Topology
from e2e.widget import FORM, ChatWidget

FUZZ_MESSAGES = 1000



# --- hostile messages from the trusted parent ------------------------------------------------------------------


@pytest.mark.scenario("oversized, nested, non-JSON, prototype-polluting and disallowed-name messages")
def test_hostile_messages_get_documented_errors_and_change_nothing(request, browser: Session, lab: Lab) -> None:
    """Attacker: a script on a trusted page (e.g. a compromised third-party tag) opens sessions with the iframe and
    sends on them a 1 MiB value, a 65-character id, 2,000-deep nesting, JSON as a string, non-objects (numbers,
    ArrayBuffer, Date, RegExp, Map), stray versions, `__proto__`/`constructor`/`toString` as operation, name or key,
    and cookie names outside the configured one; and it tries malformed hellos (wrong version, no port, a string).
    Every message also goes out as a plain window message. Seen: each request gets exactly the documented reply on
    its own reply port (none when it came without one); malformed hellos and plain messages get nothing; no exception
    and no prototype pollution inside the iframe; no cookie but the configured one is written."""
    browser.goto(lab.harness(lab.site_a))
    result = browser.evaluate("""
        const cases = (async () => {""" + script("hostile-messages.js") + """})();
        const probeOrigin = new URL(args[1]).origin;
        const bridge = (await lab.frame(args[1] + '/iframe.html')).contentWindow;
        const list = await cases, expected = [];
        for (const [i, [want, message, options]] of list.entries()) {
          const object = message !== null && typeof message === 'object';
          const id = i + ':' + (object && typeof message.id === 'string' ? message.id.slice(0, 24) : typeof message);
          const hello = !!(options && options.hello) || (object && message.op === 'hello');
          try {
            lab.ask(bridge, message, probeOrigin, Object.assign({ id }, options));
            expected.push([want, id, hello]);
          } catch (e) { /* this engine cannot clone it (e.g. too deep): nothing was sent */ }
        }
        await lab.sleep(1500);
        const replies = lab.replies(bridge);
        return { expected, tried: list.length,
                 answers: replies.filter(m => m.origin === 'port').map(m => m.data),
                 sessions: replies.filter(m => m.origin === 'session').map(m => m.data.id),
                 window: replies.filter(m => m.origin !== 'port' && m.origin !== 'session'),
                 probe: await lab.report(bridge) };
    """, COOKIE, lab.probe)
    got = {reply["id"]: reply for reply in result["answers"]}
    assert len(result["answers"]) == len(got), "a message was answered twice"
    assert result["window"] == []  # plain window messages, from the trusted parent too: never answered
    for want, ident, hello in result["expected"]:
        if want is None:
            assert ident not in got, (ident, got.get(ident))
        elif want is True:
            assert got[ident]["ok"] is True and set(got[ident]) == {"id", "ok", "value"}, (ident, got[ident])
            if hello:
                assert got[ident]["value"]["version"] == 1, got[ident]
        else:
            assert got[ident] == {"id": ident, "ok": False, "error": want}, (ident, got[ident])
        # A request's session opened with a valid hello: its info came once, and nothing else on that port.
        assert result["sessions"].count(ident) == (0 if hello else 1), (ident, result["sessions"].count(ident))
    answered = {ident for want, ident, hello in result["expected"] if want is not None}
    assert set(got) == answered
    probe = result["probe"]
    # Every message went out twice: plainly, and as the hello (or after the hello) of its own session.
    assert probe["errors"] == [] and probe["polluted"] == [] and probe["received"] >= 2 * len(result["expected"])
    assert "attacker" not in probe["cookie"] and "other-cookie" not in probe["cookie"]
    no_page_errors(browser)
    assert len(result["expected"]) >= result["tried"] - 3
    observe(request.node, f"{len(result['expected'])} messages: {len(answered)} answered as documented, rest ignored")


# --- fuzz ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parent",
    [pytest.param("trusted", marks=pytest.mark.scenario("fuzz: 1,000 random messages from a trusted parent")),
     pytest.param("untrusted", marks=pytest.mark.scenario("fuzz: 1,000 random messages from an untrusted parent"))],
)
def test_fuzzed_messages(request, browser: Session, lab: Lab, parent: str) -> None:
    """Attacker: 1,000 seeded random messages (random types, keys, versions, ids, operations, names and values,
    NaN, lone surrogates, typed arrays, Maps), each posted to the iframe (served without CSP) plainly and in a
    session of its own: as a request on the port a hello handed over, or, with op 'hello', as the hello itself.
    Seen from a trusted parent: no exception and no pollution inside the iframe, exactly one well-formed answer on
    its reply port to every request and to every valid hello, none to malformed hellos or plain messages. From an
    untrusted parent: the same messages, not one answer (the hello is refused, so nothing on the port either)."""
    seed = 20260107 + (1 if parent == "untrusted" else 0)
    browser.goto(lab.harness(lab.site_a if parent == "trusted" else lab.evil))
    result = browser.evaluate(script("fuzz.js"), COOKIE, lab.probe, FUZZ_MESSAGES, seed, parent == "trusted")
    probe = result["probe"]
    assert result["sent"] >= FUZZ_MESSAGES - 50  # a few (e.g. Symbols) cannot be cloned at all
    # Every message sent counts twice in the iframe: the plain one and the session's hello.
    assert probe["errors"] == [] and probe["polluted"] == [] and probe["received"] >= 2 * result["sent"]
    if parent == "trusted":
        assert result["mismatched"] == [] and result["malformed"] == [] and result["undocumented"] == 0, result
        assert result["answered"] == result["valid"] > 100 and result["valid"] >= result["requests"] > 100
        assert result["sessions"] == result["requests"] and result["window"] == 0
    else:
        assert result["total"] == 0 and result["answered"] == 0
    no_page_errors(browser)
    observe(request.node, f"{result['sent']} sent, {result['answered']} answered, 0 exceptions in the iframe")


# --- handoff links ---------------------------------------------------------------------------------------------


@pytest.mark.scenario("forged or garbled handoff code in a link restores nothing")
def test_forged_handoff_link_restores_nothing(request, browser: Session, topology: Topology) -> None:
    """Attacker: sends a link to domain-b with a made-up code, a code signed with another key, and a truncated
    real-looking one. Seen: the page works, the widget opens a fresh chat, the code leaves the address bar, no
    error on the page."""
    from itsdangerous import URLSafeTimedSerializer

    from cookiebridge.handoff import SALT

    forged = URLSafeTimedSerializer("attacker-key-0123456789abcdef", salt=SALT).dumps(["x", topology.site_b])
    for attempt, code in enumerate(("AAAA", forged, forged[:-10])):
        browser.goto(f"{topology.site_b}/?attempt={attempt}#cb-handoff={code}")  # a new document each time
        assert ChatWidget(browser).arrive() == FORM
        assert "cb-handoff" not in browser.url()
        assert browser.evaluate("return cookieProvider.restoredFrom;") is None
        assert browser.evaluate("return window.__cbErrors;") == []
    observe(request.node, "3 forged links: fresh chat each time")
