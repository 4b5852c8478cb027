"""Drive the chat widget through its DOM, the same way for the real Genesys Widgets and for the test double.

Both render the real widget's classes: the panel `.cx-webchat`, the pre-chat form (`#cx_webchat_form_firstname`,
`…lastname`, `…email`, `.cx-submit`), the transcript `.cx-transcript .cx-message` (text in `.cx-message-text`),
the message input `.cx-message-input` (Enter sends: the real `.cx-send` is hidden on desktop layouts), the title
bar's `.cx-button-close` and the "end this chat?" confirm `.cx-end-confirm`. Nothing here reads the double's
`window.__widgetDouble`: what a test needs beyond the DOM comes from the bus (`WebChatService.getSessionData`).

    chat = ChatWidget(browser)
    browser.goto(site + "/")
    assert chat.arrive() == "form"
    session_id = chat.start()
    chat.send("hello")
    chat.end()
"""

from __future__ import annotations

import json
import time
from typing import Any

from e2e.drivers import Session

FORM = "form"  # the pre-chat form is shown: no chat
TRANSCRIPT = "transcript"  # a chat's transcript is shown: a new or a restored chat
SETTLE_TIMEOUT = 20.0  # seconds from the page's load event: the plugins load, a restore takes a few requests
MESSAGE_TIMEOUT = 15.0  # the real widget polls every 3 s, and shows the customer's own text only from a poll
QUIET = 1.0  # seconds a view must stay unchanged to count as settled (a failed restore shows its error late)

# Shared by every expression below: which of the two views is shown, and the visible error, if any.
_VIEW = """(() => {
  const shown = e => !!e && (e.checkVisibility ? e.checkVisibility({visibilityProperty: true})
    : e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden');
  const panel = document.querySelector('.cx-webchat');
  if (!shown(panel)) return null;
  if (shown(panel.querySelector('#cx_webchat_form_firstname'))) return 'form';
  const messages = [...panel.querySelectorAll('.cx-transcript .cx-message')].filter(m => !m.classList.contains('cx-date'));
  return shown(panel.querySelector('.cx-transcript')) && messages.some(shown) ? 'transcript' : null;
})()"""
# The real widget shows a lost session as a yes/no alert (`.cx-alert.cx-general`, `.cx-error-button`); the double
# writes it into its notice line (`.cx-notice`).
_ERROR = """(() => {
  const shown = e => !!e && (e.checkVisibility ? e.checkVisibility({visibilityProperty: true})
    : e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden');
  const found = [...document.querySelectorAll('.cx-webchat .cx-alert.cx-general, .cx-webchat .cx-notice')]
    .filter(e => shown(e) && e.textContent.trim());
  return found.length ? found.map(e => e.textContent.trim().replace(/\\s+/g, ' ')).join(' | ') : null;
})()"""
# Records every view the panel shows from now on, with the time it came up, so a test can tell whether (and how
# long) the form was shown. The real 9.0.018 flashes its pre-chat form for a few tens of ms before a restored
# transcript; a 50 ms sampling may or may not catch that.
_WATCH = f"""
if (!window.__cbWidgetViews) {{
  window.__cbWidgetViews = [];
  setInterval(() => {{
    const view = {_VIEW}, seen = window.__cbWidgetViews;
    if (view && (!seen.length || seen[seen.length - 1][0] !== view)) seen.push([view, performance.now()]);
  }}, 50);
}}
return true;"""
_TRANSCRIPT = """
return [...document.querySelectorAll('.cx-webchat .cx-transcript .cx-message')]
  .filter(m => !m.classList.contains('cx-date'))
  .map(m => (m.querySelector('.cx-message-text') || m).textContent.trim());"""
_FILL = """
for (const [selector, value] of Object.entries(args[0])) {
  const input = document.querySelector(selector);
  if (!input) throw new Error(`no ${selector} in the pre-chat form`);
  input.focus();
  input.value = value;
  input.dispatchEvent(new Event('input', {bubbles: true}));
  input.dispatchEvent(new Event('change', {bubbles: true}));
}
return true;"""
# A customer's Enter: jQuery handlers (the real widget) read `which`, the double reads `key`.
_ENTER = """
const input = document.querySelector('.cx-webchat .cx-message-input');
if (!input) throw new Error('no .cx-message-input: is a chat open?');
input.focus();
input.value = args[0];
input.dispatchEvent(new Event('input', {bubbles: true}));
const enter = new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', bubbles: true, cancelable: true});
for (const name of ['keyCode', 'which']) Object.defineProperty(enter, name, {get: () => 13});
input.dispatchEvent(enter);
return true;"""
_SESSION_DATA = """
const data = await CXBus.command('WebChatService.getSessionData');
return data && typeof data === 'object' ? JSON.parse(JSON.stringify(data)) : null;"""
# `d` is the session data, or null where the command rejects. The real widget's command answers a jQuery promise
# whose .then() loses the value: only `await` reads it.
_ON_SESSION_DATA = """(async () => {
  let d = null;
  try { d = await CXBus.command('WebChatService.getSessionData'); } catch (rejected) { /* no chat service */ }
  return %s;
})()"""
_CONTROL = """
const reply = await fetch(args[0], {method: 'POST', headers: {'Content-Type': 'application/json'},
                                    body: JSON.stringify(args[1])});
if (!reply.ok) throw new Error(`the chat server's control route answered ${reply.status}: ${await reply.text()}`);
return true;"""


class ChatWidget:
    """The chat widget on the page `browser` shows. Call `arrive()` after every navigation."""

    def __init__(self, browser: Session, data_url: str = "/genesys/chat/v3/customer-support") -> None:
        self.browser = browser
        self.data_url = data_url

    # -- reading ------------------------------------------------------------------------------------------------

    def view(self) -> str | None:
        """FORM, TRANSCRIPT, or None (the panel is not shown, or not yet)."""
        return self.browser.evaluate(f"return {_VIEW};")

    def arrive(self, timeout: float = SETTLE_TIMEOUT) -> str:
        """Right after a navigation: watch the panel, then wait until it has settled. Returns FORM or TRANSCRIPT."""
        self.browser.evaluate(_WATCH)
        return self.settle(timeout)

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> str:
        """Until the panel shows the pre-chat form or a transcript, unchanged for QUIET seconds."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.browser.wait_for(_VIEW, timeout=max(0.1, deadline - time.monotonic()))
            time.sleep(QUIET)
            if self.view() == view:
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(f"the chat widget did not settle in {timeout:g}s (last seen: {self.views()})")

    def views(self) -> list[str]:
        """Every view shown since `arrive()`, in order, e.g. ['form', 'transcript'] for a form that flashed up."""
        return [view for view, _ in self._timeline()]

    def shown_for(self, view: str) -> float:
        """How long (seconds, ±0.05) `view` has been shown since `arrive()`, all its spells together."""
        timeline = self._timeline() + [("", self.browser.evaluate("return performance.now();"))]
        return sum(end - begin for (name, begin), (_, end) in zip(timeline, timeline[1:]) if name == view) / 1000

    def _timeline(self) -> list[tuple[str, float]]:
        return [(view, at) for view, at in self.browser.evaluate("return window.__cbWidgetViews || [];")]

    def error(self) -> str | None:
        """The error the widget shows (e.g. the real one's "cannot find your previous chat session"), or None."""
        return self.browser.evaluate(f"return {_ERROR};")

    def transcript(self) -> list[str]:
        """The texts of the transcript's messages (date separators left out), oldest first."""
        return self.browser.evaluate(_TRANSCRIPT)

    def wait_for_text(self, text: str, timeout: float = MESSAGE_TIMEOUT) -> None:
        """Until a message of the transcript holds `text`."""
        probe = _TRANSCRIPT.replace("return ", "const texts = ", 1) + f"\nreturn texts.some(t => t.includes({json.dumps(text)}));"
        self.browser.wait_for(f"(() => {{{probe}}})()", timeout=timeout)

    def session_data(self) -> dict[str, Any] | None:
        """`WebChatService.getSessionData`: the session's data (sessionId, participantId, token, …); {} or None
        without a chat."""
        return self.browser.evaluate(_SESSION_DATA)

    def session_id(self) -> str | None:
        data = self.session_data() or {}
        return data.get("sessionId") or None

    # -- acting as the customer ---------------------------------------------------------------------------------

    def start(self, first_name: str = "Ann", last_name: str = "Customer", email: str = "") -> str:
        """Fill in the pre-chat form and submit it; returns the new chat's session id once its transcript shows."""
        fields = {"#cx_webchat_form_firstname": first_name, "#cx_webchat_form_lastname": last_name}
        if email:
            fields["#cx_webchat_form_email"] = email
        self.browser.evaluate(_FILL, fields)
        self.browser.click(".cx-webchat .cx-submit")
        try:
            self.browser.wait_for(f"{_VIEW} === 'transcript'", timeout=MESSAGE_TIMEOUT)
        except TimeoutError:
            # What the customer would see: still the form, an error, or nothing.
            raise TimeoutError(f"no transcript {MESSAGE_TIMEOUT:g}s after the pre-chat form was submitted; "
                               f"view now {self.browser.evaluate(f'return {_VIEW};')!r}, widget error "
                               f"{self.error()!r}, views since arrival {self.views()}") from None
        return str(self.browser.wait_for(_ON_SESSION_DATA % "d && d.sessionId", timeout=MESSAGE_TIMEOUT))

    def send(self, text: str) -> None:
        """Type `text` and press Enter; returns once the transcript shows it (the server has it then)."""
        self.browser.evaluate(_ENTER, text)
        self.wait_for_text(text)

    def end(self) -> None:
        """End the chat as a customer does: the title bar's close button, then "End chat" in the confirm. Returns
        once the widget holds no session any more."""
        self.browser.click(".cx-webchat .cx-button-close")
        self.browser.wait_for(_visible(".cx-webchat .cx-end-confirm"))
        self.browser.click(".cx-webchat .cx-end-confirm")
        self.browser.wait_for(_ON_SESSION_DATA % "!d || !d.sessionId", timeout=MESSAGE_TIMEOUT)

    # -- playing the agent (the chat server's control route) ----------------------------------------------------

    def agent(self, session_id: str, **body: Any) -> None:
        """POST {dataURL}/{sid}/agent with `body` (text=…, interactionState=…, end=True), from the page."""
        self.browser.evaluate(_CONTROL, f"{self.data_url}/{session_id}/agent", body)


def _visible(selector: str) -> str:
    return (f"(e => !!e && (e.checkVisibility ? e.checkVisibility({{visibilityProperty: true}}) "
            f": e.getClientRects().length > 0))(document.querySelector({json.dumps(selector)}))")
