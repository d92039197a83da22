"""A real headless browser for the page tests: Debian's chromium driven through its chromium-driver
with selenium. Nothing is downloaded: the binary and the driver are the apt packages' (``.ci/run``
installs them when missing; README "Web"), and Chromium's own background connections are switched off.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "install them with: sudo apt-get install chromium chromium-driver (README, 'Web')"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
)


def require_browser() -> None:
    """Fail (never skip) with what to install when Debian's chromium or chromium-driver is missing."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        raise AssertionError(f"the page tests need {', '.join(missing)}; {INSTALL_HINT}")


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900, mobile: bool = False) -> Iterator[Any]:
    """A selenium WebDriver for a fresh headless Chromium window of ``width`` x ``height`` CSS pixels
    (``mobile``: a phone's touch screen and device pixel ratio 3)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require_browser()
    profile = tempfile.mkdtemp(prefix="emotion-web-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    if mobile:
        options.add_experimental_option(
            "mobileEmulation",
            {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 3.0, "touch": True}},
        )
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_until(driver: Any, condition: Callable[[Any], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Wait for ``condition(driver)`` to be truthy (AssertionError naming ``what`` and the page's state)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(condition)
    except TimeoutException:
        state = driver.execute_script(
            "return {status: document.getElementById('status').textContent,"
            " frames: window.emotionWeb && window.emotionWeb.frames,"
            " series: window.emotionWeb && window.emotionWeb.chart.seriesSizes()}"
        )
        raise AssertionError(f"timed out waiting for {what}; page state: {state}") from None


# JavaScript helpers the tests run in the page.
STREAM_SIZE = "const s = document.getElementById('stream'); return [s.naturalWidth, s.naturalHeight];"
SERIES = "return window.emotionWeb.chart.seriesSizes();"
FACE_LABELS = (
    "return [...document.querySelectorAll('#faces li')].map(li =>"
    " [li.dataset.track, li.dataset.label, li.querySelector('.confidence').textContent]);"
)
LEGEND = "return [...document.querySelectorAll('#legend li')].map(li => li.textContent);"
OVERFLOW = "return document.documentElement.scrollWidth - window.innerWidth;"
