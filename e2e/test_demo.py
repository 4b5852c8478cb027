"""`cookiebridge demo`, as a newcomer runs it: start a chat on domain-a, follow the link, see it go on at domain-b."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Iterator

import pytest

from e2e.topology import RESULTS
from e2e.drivers import Session
from e2e.matrix import observe
from e2e.widget import FORM, TRANSCRIPT, ChatWidget
from testsupport import free_port, wait_until_healthy


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "cookiebridge", "demo", "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            wait_until_healthy(f"https://127.0.0.1:{port}", process)
        except RuntimeError as exited:
            raise RuntimeError(f"{exited}; its output: {log.read_text()[-2000:]}") from None
        assert "domain-b: https://127.0.0.3:" in log.read_text()
        yield f"{port}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)


@pytest.mark.scenario("cookiebridge demo: chat started on domain-a continues on domain-b")
def test_demo_chat_continues_on_domain_b(request, browser: Session, demo: str) -> None:
    question = "Where is my order #1234?"
    chat = ChatWidget(browser)
    browser.goto(f"https://127.0.0.2:{demo}/")
    assert chat.arrive() == FORM
    session_id = chat.start(first_name="Ann", last_name="Newcomer")
    chat.send(question)
    chat.wait_for_text(f"you said \u201c{question}\u201d")  # the simulated agent answers
    RESULTS.mkdir(parents=True, exist_ok=True)
    browser.screenshot(RESULTS / f"demo-domain-a-{browser.engine}-{browser.policy}.png")
    browser.click("#to-other-site")
    browser.wait_for(f"location.host === '127.0.0.3:{demo}' && document.readyState === 'complete'")
    assert chat.arrive() == TRANSCRIPT, f"domain-b shows the pre-chat form (views: {chat.views()})"
    assert FORM not in chat.views() and chat.error() is None
    chat.wait_for_text(question)
    assert chat.session_id() == session_id
    assert browser.evaluate("return cookieProvider.restoredFrom;") == "handoff"
    assert browser.evaluate("return window.__cbErrors;") == []
    browser.screenshot(RESULTS / f"demo-domain-b-{browser.engine}-{browser.policy}.png")
    observe(request.node, "continued; screenshot in e2e/results")
