"""Shared by the browser tests: Chromium from Debian's packages driven by selenium (nothing downloads a browser).

Without chromium/chromedriver a browser test skips with the reason; with SAGANET_REQUIRE_BROWSER=1 (CI) it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def need_browser() -> None:
    if CHROMIUM and DRIVER:
        return
    reason = ("Chromium / chromedriver not installed (apt-get install chromium chromium-driver; scripts/setup.sh "
              "does) - issue 13's browser test; CI sets SAGANET_REQUIRE_BROWSER=1 and fails instead")
    if os.environ.get("SAGANET_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chrome(height: int = 2400):
    """A headless Chromium driven through Debian's chromedriver."""
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size=1400,{height}"):
        opts.add_argument(a)
    return webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))


def wait_for(cond, timeout: float, what: str, driver=None, shot: Path | None = None):
    """Poll `cond()` until it is truthy (returned); on time-out save a screenshot and fail naming `what`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = cond()
            if v:
                return v
        except Exception:  # the DOM changes under us while Gradio re-renders
            pass
        time.sleep(0.25)
    if driver is not None and shot is not None:
        driver.save_screenshot(str(shot))
    raise AssertionError(f"timed out waiting for {what}")
