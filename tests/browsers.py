"""Debian's chromium driven by Selenium through Debian's chromedriver (nothing fetched from a browser
vendor), headless, with the console kept (Content Security Policy violations show there)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from testenv import IN_CI

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
OUTPUT = Path(__file__).resolve().parent / "output"  # screenshots (ignored by git)


def chromium(size: str = "1280,1400", scripts: bool = True, phone: bool = False):  # -> webdriver.Chrome
    """A new headless browser with its own profile (its own cookies); skipped (failed in CI) without one.
    The caller sets SE_OFFLINE=true (monkeypatch.setenv): Selenium Manager must never download a browser
    or a driver."""
    if not (CHROMIUM and CHROMEDRIVER):
        message = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert os.environ.get("SE_OFFLINE") == "true"  # set by the caller: Selenium Manager never downloads
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={size}"):
        options.add_argument(flag)
    if phone:  # a phone's width (390 CSS pixels) and touch, as Chromium's device emulation makes it
        metrics = {"width": 390, "height": 844, "pixelRatio": 2.0, "touch": True}
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    if not scripts:
        options.add_argument("--blink-settings=scriptEnabled=false")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(120)
    return driver


def screenshot(driver, name: str) -> Path:
    """Saved under tests/output/ (the path is in the test's output)."""
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 5_000
    print(f"screenshot: {path}")
    return path


def csp_refusals(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def wait_until(driver, condition, timeout: float, poll_s: float = 0.1):
    """`WebDriverWait(...).until(condition)` where an element swapped out of the page under the reader (a
    fragment refreshed, a form posted) means "look again": Selenium's stale element, or Chrome's own
    "Node with given id does not belong to the document", which chromedriver reports as an unknown error."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def looked(d):
        try:
            return condition(d)
        except WebDriverException as exc:
            if isinstance(exc, StaleElementReferenceException) or "does not belong to the document" in str(exc.msg):
                return False
            raise

    return WebDriverWait(driver, timeout, poll_s).until(looked)
