"""The ways a person follows a link, on a drivers.Session: presses of any button held for a while, with modifier
keys, keyboard Enter, a touch tap, and the tab such a gesture opens. drivers.Session only clicks; this reaches
under it, to Playwright's page (Chromium, Firefox) or Selenium's driver (WebKitGTK)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from e2e import drivers


class Unsupported(RuntimeError):
    """The engine or its driver cannot make this gesture; the message says what is missing."""


# Installed before a probe tap on a harmless element: whether the page sees a touch at all.
ARM_TOUCH = ("window.__labTouch = [];"
             "for (const t of ['touchstart', 'pointerdown']) addEventListener(t, e => __labTouch.push(t + ':' + "
             "(e.pointerType || 'touch')), { capture: true, once: true });")
TOUCHED = "window.__labTouch"
PROBE = "h1"  # every lab page has one, and tapping it does nothing


def check_touch(seen: list[str] | None, engine: str) -> None:
    if not seen or "touchstart:touch" not in seen:
        raise Unsupported(f"{engine}'s driver delivers no touch (a probe tap gave {seen or 'no events'})")


class Tab(Protocol):
    def wait_for(self, expression: str, timeout: float = 10.0) -> Any: ...

    def close(self) -> None: ...


@contextlib.contextmanager
def touch_capable(session: drivers.Session) -> Iterator[drivers.Session]:
    """`session`, or where touch input needs a touch-enabled context (Playwright's Firefox), a fresh session of the
    same engine and policy with one."""
    if session.engine != "firefox" or not isinstance(session, drivers.PlaywrightSession):
        yield session
        return
    browser = session._context.browser
    touch = drivers.PlaywrightSession(session.engine, session.policy, session.version,
                                      browser.new_context(ignore_https_errors=True, has_touch=True), cleanup=None)
    with touch:
        yield touch


def gestures(session: drivers.Session) -> "PlaywrightGestures | SeleniumGestures":
    if isinstance(session, drivers.PlaywrightSession):
        return PlaywrightGestures(session)
    if isinstance(session, drivers.WebKitSession):
        return SeleniumGestures(session)
    raise TypeError(f"no gestures for {session!r}: expected a drivers.PlaywrightSession or WebKitSession")


class _PageTab:
    def __init__(self, page: Any) -> None:
        self.page = page

    def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        return drivers._poll(lambda script: self.page.evaluate(f"async () => {{ {script} }}"), expression, timeout)

    def close(self) -> None:
        self.page.close()


class PlaywrightGestures:
    def __init__(self, session: drivers.PlaywrightSession) -> None:
        self.session, self.page = session, session._page

    def _centre(self, selector: str) -> tuple[float, float]:
        element = self.page.locator(selector).first
        element.scroll_into_view_if_needed()
        box = element.bounding_box()
        if box is None:
            raise Unsupported(f"{selector} has no box to press on")
        return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def press(self, selector: str, *, button: str = "left", modifiers: tuple[str, ...] = (), hold: float = 0.0) -> None:
        """Move the mouse onto the element, press `button` with `modifiers` down, hold it `hold` s, release."""
        x, y = self._centre(selector)
        self.page.mouse.move(x, y)
        for key in modifiers:
            self.page.keyboard.down(key)
        self.page.mouse.down(button=button)
        time.sleep(hold)
        self.page.mouse.up(button=button)
        for key in reversed(modifiers):
            self.page.keyboard.up(key)

    def enter(self, selector: str) -> None:
        """Focus the element (as Tab would) and press Enter."""
        self.page.focus(selector)
        self.page.keyboard.press("Enter")

    def tap(self, selector: str) -> None:
        """A finger's tap: touchstart, touchend, and the click the browser makes of them."""
        self.page.evaluate(f"() => {{ {ARM_TOUCH} }}")
        self._tap(PROBE)
        check_touch(self.page.evaluate(f"() => {TOUCHED}"), self.session.engine)
        self._tap(selector)

    def _tap(self, selector: str) -> None:
        x, y = self._centre(selector)
        if self.session.engine == "chromium":
            # What Playwright's touchscreen does in a hasTouch context, on this context as it is.
            cdp = self.page.context.new_cdp_session(self.page)
            cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
            cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
            return
        try:
            self.page.touchscreen.tap(x, y)
        except drivers._playwright_error() as error:
            raise Unsupported(f"{self.session.engine}: {drivers._first_line(str(error))}") from error

    def new_tab(self, action: Callable[[], None], timeout: float = 10.0) -> Tab:
        """Run `action`, which opens a tab or window, and return that tab once it has loaded."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        browser = self.page.context.browser
        if self.session.engine == "chromium" and browser is not None:
            # Playwright accepts the test certificate per tab, once the tab is attached: a tab that a click opens
            # can start loading first and get Chromium's certificate error page. Accept it browser-wide (every
            # session of these tests does anyway), as Puppeteer's ignoreHTTPSErrors does.
            browser.new_browser_cdp_session().send("Security.setIgnoreCertificateErrors", {"ignore": True})
        try:
            with self.page.context.expect_page(timeout=timeout * 1000) as opened:
                action()
        except PlaywrightTimeout as error:
            raise TimeoutError(f"no tab opened within {timeout:g}s") from error
        page = opened.value
        page.wait_for_load_state("load")
        return _PageTab(page)


class _WindowTab:
    def __init__(self, gestures: "SeleniumGestures", handle: str, back: str) -> None:
        self.gestures, self.handle, self.back = gestures, handle, back

    def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        self.gestures.driver.switch_to.window(self.handle)
        try:
            return self.gestures.session.wait_for(expression, timeout)
        finally:
            self.gestures.driver.switch_to.window(self.back)

    def close(self) -> None:
        self.gestures.driver.switch_to.window(self.handle)
        self.gestures.driver.close()
        self.gestures.driver.switch_to.window(self.back)


class SeleniumGestures:
    def __init__(self, session: drivers.WebKitSession) -> None:
        self.session, self.driver = session, session._driver

    def _element(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def press(self, selector: str, *, button: str = "left", modifiers: tuple[str, ...] = (), hold: float = 0.0) -> None:
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.actions.action_builder import ActionBuilder
        from selenium.webdriver.common.actions.mouse_button import MouseButton
        from selenium.webdriver.common.keys import Keys

        buttons = {"left": MouseButton.LEFT, "middle": MouseButton.MIDDLE, "right": MouseButton.RIGHT}
        keys = {"Control": Keys.CONTROL, "Shift": Keys.SHIFT, "Meta": Keys.META, "Alt": Keys.ALT}
        element = self._element(selector)
        builder = ActionBuilder(self.driver)
        mouse, keyboard = builder.pointer_action, builder.key_action

        def tick(pointer: Callable[[], object], key: Callable[[], object]) -> None:
            pointer()
            key()

        tick(lambda: mouse.move_to(element), lambda: keyboard.pause(0))
        for key in modifiers:
            tick(lambda: mouse.pause(0), lambda key=key: keyboard.key_down(keys[key]))
        tick(lambda: mouse.pointer_down(buttons[button]), lambda: keyboard.pause(0))
        tick(lambda: mouse.pause(hold), lambda: keyboard.pause(hold))
        tick(lambda: mouse.pointer_up(buttons[button]), lambda: keyboard.pause(0))
        for key in reversed(modifiers):
            tick(lambda: mouse.pause(0), lambda key=key: keyboard.key_up(keys[key]))
        try:
            builder.perform()
        except WebDriverException as error:
            raise Unsupported(f"WebKitGTK WebDriver: {error.msg}") from error

    def enter(self, selector: str) -> None:
        from selenium.webdriver.common.keys import Keys

        self._element(selector).send_keys(Keys.ENTER)

    def tap(self, selector: str) -> None:
        self.driver.execute_script(ARM_TOUCH)
        self._tap(PROBE)
        check_touch(self.driver.execute_script(f"return {TOUCHED};"), self.session.engine)
        self._tap(selector)

    def _tap(self, selector: str) -> None:
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.actions import interaction
        from selenium.webdriver.common.actions.action_builder import ActionBuilder
        from selenium.webdriver.common.actions.pointer_input import PointerInput

        builder = ActionBuilder(self.driver, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"))
        builder.pointer_action.move_to(self._element(selector)).pointer_down().pointer_up()
        try:
            builder.perform()
        except WebDriverException as error:
            raise Unsupported(f"WebKitGTK WebDriver: {error.msg}") from error

    def new_tab(self, action: Callable[[], None], timeout: float = 10.0) -> Tab | None:
        """As PlaywrightGestures.new_tab, except that None means the link was followed in this tab: WebKitGTK's
        MiniBrowser under WebDriver opens no tab for a middle-, Ctrl- or Shift-click."""
        back, before, here = self.driver.current_window_handle, set(self.driver.window_handles), self._origin()
        action()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            opened = set(self.driver.window_handles) - before
            if opened:
                return _WindowTab(self, opened.pop(), back)
            if self._origin() not in (here, None):
                return None
            time.sleep(drivers.POLL_INTERVAL)
        raise TimeoutError(f"no tab opened, and this one stayed, within {timeout:g}s")

    def _origin(self) -> str | None:
        try:
            return str(self.driver.execute_script("return location.origin;"))
        except Exception:  # between two documents
            return None
