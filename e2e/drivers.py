"""One small synchronous driver interface over the real browsers of this machine.

Chromium and Firefox ESR run through Playwright (Firefox over WebDriver BiDi), WebKitGTK through Selenium's
WebKitGTK driver. Each `Session` is a fresh profile or context (no cookies, no storage) with one tab, so a
scenario is written once and runs on every (engine, policy) pair from `policies_for`.

Browser processes are cached per (engine, policy) where sessions can safely share them (Playwright contexts
are isolated); everything is closed by `shutdown()`, which also runs at interpreter exit. Use this module
from one thread: Playwright's sync objects belong to the thread that created them.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import itertools
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

ENGINES: tuple[str, ...] = ("chromium", "firefox", "webkit")
POLICIES: tuple[str, ...] = ("third-party-allowed", "default")  # default = the engine as shipped

# The test hostnames and the loopback address each one resolves to (the roles of 127.0.0.1/.2/.3). All three
# engines resolve them through the system's /etc/hosts, which scripts/test-all.sh fills (`hosts_lines`); every
# engine is also told to connect directly, so no inherited proxy setting can resolve (or fail) them instead.
HOSTNAMES: dict[str, str] = {
    "bridge.test": "127.0.0.1",
    "www.domain-a.test": "127.0.0.2",
    "www.domain-b.test": "127.0.0.3",
}
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")  # and their upper-case forms

PAGE_LOAD_TIMEOUT = 30.0  # seconds, for goto/click navigations
NEW_SESSION_TIMEOUT = 30.0  # seconds for WebKitWebDriver to open a session, before one more try
SCRIPT_TIMEOUT = 30.0  # seconds, for one evaluate call
POLL_INTERVAL = 0.05  # seconds between wait_for polls


@dataclass(frozen=True)
class Binary:
    path: str
    package: str  # the Debian package that installs it


CHROMIUM = Binary("/usr/bin/chromium", "chromium")
FIREFOX = Binary("/usr/bin/firefox-esr", "firefox-esr")
WEBKIT_DRIVER = Binary("/usr/bin/WebKitWebDriver", "webkit2gtk-driver")
MINIBROWSER = Binary("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser", "webkit2gtk-driver")
XVFB = Binary("/usr/bin/Xvfb", "xvfb")

CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    # Without these Chromium floods the closed network with refused connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-proxy-server",  # direct connections: the browser itself resolves every name (see HOSTNAMES)
    # Chromium honours only the last --disable-features, so this list replaces Playwright's, which also
    # disables ThirdPartyStoragePartitioning (playwright#32701). Real Chrome partitions third-party storage;
    # the rest is Playwright 1.64's list.
    "--disable-features=" + ",".join((
        "AvoidUnnecessaryBeforeUnloadCheckSync",
        "DestroyProfileOnBrowserClose",
        "DialMediaRouteProvider",
        "GlobalMediaControls",
        "HttpsUpgrades",
        "LensOverlay",
        "MediaRouter",
        "PaintHolding",
        "BlockOriginHeaderModificationOnRedirect",
        "AvoidCorsURLLoaderRestartOnRedirect",
        "Translate",
        "OptimizationHints",
        "NetworkTimeServiceQuerying",
        "AimEnabled",
    )),
)
# cookie_controls_mode 0 is what regular Chrome users have: third-party cookies allowed.
CHROMIUM_ALLOW_THIRD_PARTY_PREFS: dict[str, Any] = {"profile": {"cookie_controls_mode": 0}}
FIREFOX_ALLOW_THIRD_PARTY_PREFS: dict[str, Any] = {"network.cookie.cookieBehavior": 0}
# Every Firefox: direct connections (the default, 5, follows the environment's proxy variables) and the native
# resolver, which reads /etc/hosts (DNS over HTTPS, should a rollout turn it on, would not: 5 = off by choice).
FIREFOX_NETWORK_PREFS: dict[str, Any] = {"network.proxy.type": 0, "network.trr.mode": 5}
PLAYWRIGHT_FIREFOX_BREAKS_AT = (1, 65)  # new_page() fails over BiDi from 1.65 (see docs/browsers.md)

_POLICIES_BY_ENGINE: dict[str, tuple[str, ...]] = {
    "chromium": POLICIES,
    "firefox": POLICIES,
    "webkit": ("default",),  # WebKitGTK has no switch that allows third-party cookies
}


class BrowserUnavailable(RuntimeError):
    """The browser (or its driver) is not installed; the message names what to install."""


class HostnamesUnavailable(BrowserUnavailable):
    """A test hostname does not resolve to its loopback address; the message names the /etc/hosts lines."""


class JavaScriptError(RuntimeError):
    """A script run by `Session.evaluate` threw or rejected; the message is the JS error's."""


class Session(Protocol):
    """One fresh browser profile or context (empty cookies and storage) with one tab."""

    engine: str
    policy: str
    version: str  # the real browser version, e.g. "156.0.8078.79"

    def goto(self, url: str) -> None:
        """Navigate the tab and return after the new page's load event (TimeoutError after PAGE_LOAD_TIMEOUT)."""
        ...

    def evaluate(self, script: str, *args: Any) -> Any:
        """Run `script` as the body of an async function with `args` in scope as `args[0]`, `args[1]`...

        Returns the awaited, JSON-able return value (None for undefined). A throw or rejection raises
        JavaScriptError with the JS message; so does a result that takes longer than SCRIPT_TIMEOUT.
        """
        ...

    def click(self, selector: str) -> None:
        """Click the first element matching the CSS selector.

        When the click follows a link or submits a form, return after the new page's load event. A
        navigation started by page script (location.href = ...) is not awaited everywhere: follow the
        click with wait_for.
        """
        ...

    def follow(self, selector: str, origin: str) -> None:
        """Click a link to another site and return once `origin`'s document has loaded.

        The page may hold the click (the provider waits for a handoff code, up to its timeout) and then navigate
        itself, so this waits for the other site's document, not for the click's own navigation.
        """
        ...

    def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll the JS expression until it is truthy and return its value.

        Errors while polling (a name not defined yet, a page in mid-navigation) count as falsy. Raises
        TimeoutError naming the expression after `timeout` seconds.
        """
        ...

    def url(self) -> str: ...

    def screenshot(self, path: Path) -> None:
        """Write a PNG of the viewport."""
        ...

    def close(self) -> None:
        """End the session and drop its profile or context; calling it again does nothing."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


def policies_for(engine: str) -> tuple[str, ...]:
    """The policies `open_session` accepts for `engine`."""
    _check_engine(engine)
    return _POLICIES_BY_ENGINE[engine]


def matrix() -> list[tuple[str, str]]:
    """Every (engine, policy) pair, in a stable order."""
    return [(engine, policy) for engine in ENGINES for policy in policies_for(engine)]


def open_session(engine: str, policy: str, *, workdir: Path) -> Session:
    """Start a fresh, isolated session; `workdir` receives profiles and driver logs."""
    if policy not in policies_for(engine):
        raise ValueError(
            f"{engine} has no policy {policy!r}; it supports {', '.join(policies_for(engine))}"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    if engine == "chromium":
        return _open_chromium(policy, workdir)
    if engine == "firefox":
        return _open_firefox(policy)
    return _open_webkit(workdir)


def engine_version(engine: str) -> str:
    """The browser version a session of `engine` reports, read without starting a session."""
    _check_engine(engine)
    if engine == "webkit":
        _require(WEBKIT_DRIVER, "WebKitGTK")
        raw = _run(["dpkg-query", "-W", "-f", "${Version}", "libwebkit2gtk-4.1-0"])
    else:
        binary = CHROMIUM if engine == "chromium" else FIREFOX
        _require(binary, engine)
        raw = _run([binary.path, "--version"])
    match = re.search(r"\d+(?:\.\d+)+", raw)
    return match.group(0) if match else raw.strip()


def hosts_lines() -> str:
    """The /etc/hosts lines that map every name of HOSTNAMES to its loopback address."""
    return "\n".join(f"{address} {name}" for name, address in HOSTNAMES.items())


def check_hostnames() -> None:
    """Raise HostnamesUnavailable unless every name of HOSTNAMES resolves to its address, and to it alone.

    The browsers resolve through the same system resolver (/etc/hosts) as this check.
    """
    wrong = []
    for name, address in HOSTNAMES.items():
        try:
            found = sorted({info[4][0] for info in socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP)})
        except socket.gaierror:
            found = []
        if found != [address]:
            wrong.append(f"{name} resolves to {', '.join(found) or 'nothing'}, not {address}")
    if wrong:
        lines = hosts_lines().replace("\n", "; ")
        raise HostnamesUnavailable(
            f"{'; '.join(wrong)}: run scripts/test-all.sh, or add these lines to /etc/hosts: {lines}"
        )


def shutdown() -> None:
    """Close every cached browser, Playwright and Xvfb. Open sessions become unusable."""
    for browser in _browsers.values():
        _quietly(browser.close)
    _browsers.clear()
    global _playwright, _xvfb
    if _playwright is not None:
        _quietly(_playwright.stop)
        _playwright = None
    if _xvfb is not None:
        _xvfb.stop()
        _xvfb = None


atexit.register(shutdown)


# --- shared helpers ---------------------------------------------------------------------------------------


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")


def _require(binary: Binary, what: str) -> None:
    if not os.access(binary.path, os.X_OK):
        raise BrowserUnavailable(
            f"{what} unavailable: {binary.path} not found (apt-get install {binary.package})"
        )


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return result.stdout


def _quietly(action: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):  # best-effort cleanup of something that may already be gone
        action()


def _wrapped_body(script: str) -> str:
    return f"async (args) => {{\n{script}\n}}"


def _poll(evaluate: Callable[[str], Any], expression: str, timeout: float) -> Any:
    # Own lines, so a trailing // comment in the expression cannot swallow the closing parenthesis.
    script = f"return (\n{expression.strip().rstrip(';')}\n);"
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            value = evaluate(script)
            if value:
                return value
            last = f"last value {value!r}"
        except Exception as error:  # mid-navigation and not-yet-defined names are expected
            last = f"last error {error}"
        if time.monotonic() >= deadline:
            raise TimeoutError(f"wait_for({expression!r}) not truthy after {timeout:g}s ({last})")
        time.sleep(POLL_INTERVAL)


# Installed before a click: records whether the click is about to replace the document. WebKitGTK's
# WebDriver click can return before a link's navigation starts, and it has no Navigation API, so the
# prediction comes from the default action of the click (a link) or of a resulting submit (a form).
_ARM_CLICK = """
const state = window.__cookiebridgeDriver || (window.__cookiebridgeDriver = {});
Object.assign(state, {mark: arg, click: null, submit: null, clicked: null});
if (!state.listening) {
  state.listening = true;
  addEventListener("click", (event) => { state.click = event; });
  addEventListener("click", (event) => { state.clicked = event.target; }, true);  // before any page listener
  addEventListener("submit", (event) => { state.submit = event; });
}
"""
# WebKit's click: where the element is now (null: not there), to wait until it holds still; the element is kept.
_RECT = """
const e = document.querySelector(arg), state = window.__cookiebridgeDriver;
if (state) state.intended = e;
const r = e && e.getBoundingClientRect();
return r ? [r.x, r.y, r.width, r.height].join() : null;
"""
# WebKit's click: whether the click that was just dispatched reached the element. True too when there is nothing
# left to tell (another document), and when the page changed the element (a click may re-render it): only a click
# that missed an element which is still there, unchanged, is made again.
_CLICK_LANDED = """
const state = window.__cookiebridgeDriver, e = state && state.intended;
return !e || !e.isConnected || document.querySelector(arg) !== e || !!(state.clicked && e.contains(state.clicked));
"""
# Read after the click has been dispatched, when every listener has had its say on defaultPrevented.
_CLICK_OUTCOME = """
const state = window.__cookiebridgeDriver;
if (!state || state.mark !== arg) return "replaced";
const selfTarget = (element) => !element.target || element.target === "_self";
const link = state.click && !state.click.defaultPrevented && state.click.target.closest
  && state.click.target.closest("a[href]");
if (link && selfTarget(link) && !link.hasAttribute("download")) {
  const url = new URL(link.href, location.href);
  const here = url.origin === location.origin && url.pathname === location.pathname
    && url.search === location.search;
  if (url.protocol !== "javascript:" && !(here && url.hash)) return "pending";
}
const submit = state.submit;
return submit && !submit.defaultPrevented && selfTarget(submit.target) ? "pending" : "stayed";
"""
_NEW_DOCUMENT_LOADED = """
const state = window.__cookiebridgeDriver;
return !(state && state.mark === arg) && document.readyState === "complete";
"""


class _SessionBase:
    engine: str
    policy: str
    version: str
    _clicks = itertools.count(1)

    def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        return _poll(self.evaluate, expression, timeout)

    def follow(self, selector: str, origin: str) -> None:
        self.click(selector)
        try:
            self.wait_for(f"location.origin === {origin!r} && document.readyState === 'complete'", PAGE_LOAD_TIMEOUT)
        except TimeoutError:
            raise TimeoutError(f"clicking {selector!r} did not bring {origin} up: still at {self.url()}") from None

    def click(self, selector: str) -> None:
        mark = f"click-{next(self._clicks)}"
        self._script(_ARM_CLICK, mark)
        self._click_element(selector)
        try:
            outcome = self._script(_CLICK_OUTCOME, mark)
        except Exception:  # the old document is going away under us
            outcome = "pending"
        if outcome != "stayed":
            self._wait_for_new_document(selector, mark)

    def _wait_for_new_document(self, selector: str, mark: str) -> None:
        deadline = time.monotonic() + PAGE_LOAD_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self._script(_NEW_DOCUMENT_LOADED, mark):
                    return
            except Exception:  # between two documents
                pass
            time.sleep(POLL_INTERVAL)
        raise TimeoutError(
            f"click({selector!r}) started a navigation that did not load in {PAGE_LOAD_TIMEOUT:g}s"
        )

    def _script(self, body: str, arg: Any) -> Any:
        """Run a synchronous JS body with `arg` in scope (no wrapping, no timeout race)."""
        raise NotImplementedError

    def _click_element(self, selector: str) -> None:
        raise NotImplementedError

    def evaluate(self, script: str, *args: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.engine}/{self.policy} {self.version}>"


# --- Playwright: Chromium and Firefox ---------------------------------------------------------------------

_playwright: Any = None
_browsers: dict[tuple[str, str], Any] = {}  # (engine, policy) -> playwright Browser


def _playwright_instance() -> Any:
    global _playwright
    if _playwright is None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as error:
            raise BrowserUnavailable(
                "playwright is not installed (pip install 'playwright>=1.62,<1.65')"
            ) from error
        _playwright = sync_playwright().start()
    return _playwright


def _playwright_error() -> type[Exception]:
    from playwright.sync_api import Error

    return Error


def _home_for_firefox() -> str:
    """Firefox needs a HOME owned by the current user; fall back to the passwd entry, then a temp dir."""
    for candidate in (os.environ.get("HOME"), pwd.getpwuid(os.getuid()).pw_dir):
        if candidate and os.path.isdir(candidate) and os.stat(candidate).st_uid == os.getuid():
            return candidate
    return tempfile.mkdtemp(prefix="cookiebridge-firefox-home-")


def _check_playwright_for_firefox() -> None:
    version = importlib.metadata.version("playwright")
    parts = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if parts >= PLAYWRIGHT_FIREFOX_BREAKS_AT:
        raise BrowserUnavailable(
            f"playwright {version} cannot drive Firefox ESR over BiDi (pip install 'playwright>=1.62,<1.65')"
        )


def _cached_browser(key: tuple[str, str]) -> Any:
    browser = _browsers.get(key)
    if browser is not None and not browser.is_connected():  # crashed or closed: launch a new one
        del _browsers[key]
        browser = None
    return browser


def _chromium_browser() -> Any:
    key = ("chromium", "default")
    if _cached_browser(key) is None:
        _browsers[key] = _playwright_instance().chromium.launch(
            executable_path=CHROMIUM.path, args=list(CHROMIUM_ARGS)
        )
    return _browsers[key]


def _firefox_browser(policy: str) -> Any:
    key = ("firefox", policy)
    if _cached_browser(key) is None:
        _check_playwright_for_firefox()
        prefs = {**FIREFOX_NETWORK_PREFS,
                 **(FIREFOX_ALLOW_THIRD_PARTY_PREFS if policy == "third-party-allowed" else {})}
        # Prefs are per process, so each policy gets its own browser; contexts inside it are isolated.
        _browsers[key] = _playwright_instance().firefox.launch(
            executable_path=FIREFOX.path,
            channel="moz-firefox",
            firefox_user_prefs=dict(prefs),
            env={**os.environ, "HOME": _home_for_firefox()},
        )
    return _browsers[key]


_profile_numbers = itertools.count(1)


def _fresh_chromium_profile(workdir: Path) -> Path:
    profile = workdir / f"chromium-profile-{os.getpid()}-{next(_profile_numbers)}"
    shutil.rmtree(profile, ignore_errors=True)
    (profile / "Default").mkdir(parents=True)
    (profile / "Default" / "Preferences").write_text(json.dumps(CHROMIUM_ALLOW_THIRD_PARTY_PREFS))
    return profile


def _open_chromium(policy: str, workdir: Path) -> PlaywrightSession:
    _require(CHROMIUM, "Chromium")
    if policy == "default":
        browser = _chromium_browser()
        context = browser.new_context(ignore_https_errors=True)
        return PlaywrightSession("chromium", policy, browser.version, context, cleanup=None)
    # A profile preference cannot be set per context, so this policy gets a browser process per session.
    profile = _fresh_chromium_profile(workdir)
    context = _playwright_instance().chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM.path, args=list(CHROMIUM_ARGS), ignore_https_errors=True
    )
    version = context.browser.version if context.browser else engine_version("chromium")
    return PlaywrightSession("chromium", policy, version, context, cleanup=profile)


def _open_firefox(policy: str) -> PlaywrightSession:
    _require(FIREFOX, "Firefox ESR")
    browser = _firefox_browser(policy)
    # ignore_https_errors maps to BiDi acceptInsecureCerts on the user context: the trustme cert is accepted
    # for the page and its iframes; without it navigation fails with SEC_ERROR_UNKNOWN_ISSUER.
    context = browser.new_context(ignore_https_errors=True)
    return PlaywrightSession("firefox", policy, browser.version, context, cleanup=None)


class PlaywrightSession(_SessionBase):
    def __init__(self, engine: str, policy: str, version: str, context: Any, cleanup: Path | None) -> None:
        self.engine, self.policy, self.version = engine, policy, version
        self._context = context
        self._cleanup = cleanup
        self._closed = False
        context.set_default_navigation_timeout(PAGE_LOAD_TIMEOUT * 1000)
        context.set_default_timeout(PAGE_LOAD_TIMEOUT * 1000)
        self._page = context.pages[0] if context.pages else context.new_page()

    def goto(self, url: str) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self._page.goto(url, wait_until="load")
        except PlaywrightTimeout as error:
            raise TimeoutError(f"goto({url!r}): no load event within {PAGE_LOAD_TIMEOUT:g}s") from error

    def evaluate(self, script: str, *args: Any) -> Any:
        # Built as one source string (no in-page eval, so a page's CSP cannot block it); the race keeps a
        # never-settling promise from hanging the run.
        wrapper = f"""async ([args, ms]) => {{
  let timer;
  const late = new Promise((_, reject) => {{
    timer = setTimeout(() => reject(new Error(`evaluate: no result after ${{ms / 1000}}s`)), ms);
  }});
  try {{ return await Promise.race([({_wrapped_body(script)})(args), late]); }}
  finally {{ clearTimeout(timer); }}
}}"""
        try:
            return self._page.evaluate(wrapper, [list(args), SCRIPT_TIMEOUT * 1000])
        except _playwright_error() as error:
            raise JavaScriptError(_first_line(str(error)).removeprefix("Page.evaluate: ")) from error

    def _script(self, body: str, arg: Any) -> Any:
        return self._page.evaluate(f"(arg) => {{{body}}}", arg)

    def _click_element(self, selector: str) -> None:
        # Playwright itself waits for a navigation the click starts to commit, and then for its load.
        self._page.click(selector)
        self._page.wait_for_load_state("load")

    def url(self) -> str:
        return str(self._page.url)

    def screenshot(self, path: Path) -> None:
        self._page.screenshot(path=str(path))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _quietly(self._context.close)
        if self._cleanup is not None:
            shutil.rmtree(self._cleanup, ignore_errors=True)


def _first_line(message: str) -> str:
    # Playwright appends a multi-line call log; the first line holds the JS error.
    return message.strip().splitlines()[0] if message.strip() else message


# --- Selenium: WebKitGTK ----------------------------------------------------------------------------------


class _Xvfb:
    """A private X server on a free display number, for when the caller has no DISPLAY."""

    def __init__(self) -> None:
        _require(XVFB, "Xvfb (needed for WebKitGTK without a DISPLAY)")
        read_end, write_end = os.pipe()
        self._process = subprocess.Popen(
            [XVFB.path, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write_end,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write_end)
        with os.fdopen(read_end, "rb") as announced:
            number = announced.readline().strip()  # Xvfb writes the display number once it is ready
        if not number:
            self.stop()
            raise BrowserUnavailable("Xvfb did not start (apt-get install xvfb xauth)")
        self.display = f":{number.decode()}"

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


_xvfb: _Xvfb | None = None


def _display() -> str:
    global _xvfb
    if os.environ.get("DISPLAY"):
        return os.environ["DISPLAY"]
    if _xvfb is None:
        _xvfb = _Xvfb()
    return _xvfb.display


def _direct_environment() -> dict[str, str]:
    """os.environ without proxy variables: WebKitGTK then connects directly and resolves names itself."""
    return {key: value for key, value in os.environ.items() if key.lower() not in PROXY_VARIABLES}


_webkit_logs = itertools.count(1)


def _open_webkit(workdir: Path) -> WebKitSession:
    _require(WEBKIT_DRIVER, "WebKitGTK")
    _require(MINIBROWSER, "WebKitGTK MiniBrowser")
    try:
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service
    except ImportError as error:
        raise BrowserUnavailable("selenium is not installed (pip install 'selenium>=4.20')") from error
    options = Options()
    options.binary_location = MINIBROWSER.path
    options.add_argument("--automation")  # also gives the session an ephemeral data store
    options.set_capability("browserName", "MiniBrowser")  # without it the new-session request hangs
    options.set_capability("acceptInsecureCerts", True)
    # WebKitWebDriver never answers a new-session request whose browser did not start (CI met MiniBrowser's
    # "cannot open display" once, and the run hung): wait NEW_SESSION_TIMEOUT, stop that driver, try once more.
    logs, errors = [], []
    for _ in range(2):
        logs.append(workdir / f"webkitwebdriver-{os.getpid()}-{next(_webkit_logs)}.log")
        service = Service(executable_path=WEBKIT_DRIVER.path, log_output=str(logs[-1]),
                          env={**_direct_environment(), "DISPLAY": _display()})
        opened: list[Any] = []

        # Service and list come in as arguments: a thread of the first try that outlives it must not put its
        # driver into the second try's list (a closure would see the loop's newest ones).
        def open_session(service: Service, opened: list[Any]) -> None:
            with warnings.catch_warnings():
                # Selenium's own WebKitGTK constructor trips its RemoteConnection deprecation; nothing to fix here.
                warnings.filterwarnings("ignore", message="setting remote_server_addr", category=DeprecationWarning)
                try:
                    opened.append(webdriver.WebKitGTK(options=options, service=service))
                except Exception as error:  # a driver that refused, or the one stopped below
                    errors.append(_first_line(str(error)))

        opener = threading.Thread(target=open_session, args=(service, opened), daemon=True)
        opener.start()
        opener.join(NEW_SESSION_TIMEOUT)
        if opened:
            return WebKitSession(opened[0])
        with contextlib.suppress(Exception):
            service.stop()
        opener.join(5)
    raise BrowserUnavailable(f"WebKitWebDriver opened no session in two tries of {NEW_SESSION_TIMEOUT:g}s "
                             f"({'; '.join(errors) or 'no answer'}; logs: {', '.join(map(str, logs))})")


_EVALUATE_ASYNC = """
const done = arguments[arguments.length - 1];
const args = Array.prototype.slice.call(arguments, 0, -1);
(%s)(args).then(
  (value) => done({ok: true, value: value === undefined ? null : value}),
  (error) => done({ok: false, error: String(error && error.name ? `${error.name}: ${error.message}` : error)}),
);
"""

class WebKitSession(_SessionBase):
    def __init__(self, driver: Any) -> None:
        self.engine, self.policy = "webkit", "default"
        self.version = str(driver.capabilities.get("browserVersion") or engine_version("webkit"))
        self._driver = driver
        self._closed = False
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
        driver.set_script_timeout(SCRIPT_TIMEOUT)

    def goto(self, url: str) -> None:
        from selenium.common.exceptions import TimeoutException

        try:
            self._driver.get(url)  # page load strategy "normal": returns after the load event
        except TimeoutException as error:
            raise TimeoutError(f"goto({url!r}): no load event within {PAGE_LOAD_TIMEOUT:g}s") from error

    def evaluate(self, script: str, *args: Any) -> Any:
        from selenium.common.exceptions import JavascriptException, TimeoutException

        try:
            outcome = self._driver.execute_async_script(_EVALUATE_ASYNC % _wrapped_body(script), *args)
        except TimeoutException as error:
            raise JavaScriptError(f"evaluate: no result after {SCRIPT_TIMEOUT:g}s") from error
        except JavascriptException as error:  # a syntax error in the body lands here
            raise JavaScriptError(_first_line(error.msg or str(error))) from error
        if not isinstance(outcome, dict) or "ok" not in outcome:
            raise JavaScriptError(f"evaluate: unexpected reply {outcome!r}")
        if not outcome["ok"]:
            raise JavaScriptError(outcome["error"])
        return outcome["value"]

    def _script(self, body: str, arg: Any) -> Any:
        return self._driver.execute_script("const arg = arguments[0];\n" + body, arg)

    def _click_element(self, selector: str) -> None:
        from selenium.webdriver.common.by import By

        # WebKitWebDriver clicks at the element's centre as it was a moment before: when page script moves it in
        # between (a status box above it filled in), the click lands elsewhere. As Playwright does, wait until the
        # element holds still; and click once more if, a second later, the click has still reached something else
        # (the click event may come after WebDriver's answer: clicking again at once would click twice).
        for _ in range(2):
            deadline, last = time.monotonic() + 3, None
            while (rect := self._script(_RECT, selector)) != last and time.monotonic() < deadline:
                last = rect
                time.sleep(0.1)
            self._driver.find_element(By.CSS_SELECTOR, selector).click()
            deadline = time.monotonic() + 1
            try:
                while not self._script(_CLICK_LANDED, selector):
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(POLL_INTERVAL)
                else:
                    return
            except Exception:  # the click started a navigation: the old document is going away
                return

    def url(self) -> str:
        return str(self._driver.current_url)

    def screenshot(self, path: Path) -> None:
        if not self._driver.save_screenshot(str(path)):
            raise RuntimeError(f"WebKitGTK could not write a screenshot to {path}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _quietly(self._driver.quit)

