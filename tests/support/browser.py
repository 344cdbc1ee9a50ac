"""Debian's headless ``chromium`` driven by Selenium, for the web page's tests.

``Browser`` wraps one Chrome session: it records console messages (``goog:loggingPrefs``) and every
Content-Security-Policy violation (a ``securitypolicyviolation`` listener installed through the
DevTools protocol before any script of the page runs, so the page's CSP does not apply to it), and
fails a test on either unless the message was expected. It also switches the colour scheme
(``prefers-color-scheme``) and writes screenshots.

Chromium is required when ``WEBHOOKFAST_TEST_REQUIRE_SERVICES=1`` (scripts/test.sh installs it),
else the tests that need it are skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[2]
# Kept out of git (/.tmp is ignored): the screenshots of the last run, for people to look at.
SCREENSHOT_DIR = ROOT / ".tmp" / "screenshots"

_RECORD_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
});
"""


def require_chromium() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        message = f"missing for the browser tests: {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("WEBHOOKFAST_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


class Browser:
    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            f"--window-size={width},{height}",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _RECORD_CSP})
        self.expected: list[re.Pattern[str]] = []

    def close(self) -> None:
        self.driver.quit()

    # -- navigation and waiting -----------------------------------------------------------------

    def get(self, url: str) -> None:
        self.driver.get(url)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
        )

        deadline = time.monotonic() + timeout
        while True:
            try:
                value = predicate()
            except (StaleElementReferenceException, NoSuchElementException):  # re-rendered meanwhile
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                console = [e["message"][:300] for e in self.console()]
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; console: {console}")
            time.sleep(0.05)

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait_css(self, selector: str, timeout: float = 20.0) -> Any:
        return self.wait(lambda: self.css(selector), timeout, selector)[0]

    # -- what went wrong ------------------------------------------------------------------------

    def expect_console(self, *patterns: str) -> None:
        """Console errors matching these patterns are expected in this test (e.g. a 400 or 401
        answer, which Chrome logs as a failed resource load)."""
        self.expected.extend(re.compile(p) for p in patterns)

    def console(self) -> list[dict[str, Any]]:
        return list(self.driver.get_log("browser"))

    def assert_clean(self) -> None:
        """No unexpected console error and no CSP violation since the last check (on this page)."""
        severe = [
            e["message"][:300]
            for e in self.console()
            if e["level"] == "SEVERE" and not any(p.search(e["message"]) for p in self.expected)
        ]
        violations = self.js("return window.__cspViolations || []")
        assert not severe, f"console errors: {severe}"
        assert not violations, f"CSP violations: {violations}"

    # -- looks ----------------------------------------------------------------------------------

    def color_scheme(self, scheme: str) -> None:
        self.driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
        )

    def screenshot(self, directory: Path, name: str) -> Path:
        """A full-page PNG in ``directory`` and a copy in SCREENSHOT_DIR; checked non-empty."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.png"
        path.write_bytes(self.driver.get_screenshot_as_png())
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, f"{path}: {len(data)} bytes"
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOT_DIR / path.name)
        return path

    def set_size(self, width: int, height: int) -> None:
        self.driver.set_window_size(width, height)


def texts(elements: Iterable[Any]) -> list[str]:
    return [e.text for e in elements]
