"""The live page in a real headless browser (Debian's chromium through chromium-driver) against the real
server with the built-in sample: the stream shows frames, the chart fills with the sample's tracks, the
faces' labels are on the page, and the layout fits a phone. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import pytest

from emotion_recognition.spec import EMOTION_LABELS
from test.support.browser import FACE_LABELS, LEGEND, OVERFLOW, SERIES, STREAM_SIZE, chromium, wait_until
from test.support.models import ModelFiles
from test.support.web import ARTIFACTS, WebServer

# Each test starts the server and a browser: see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

# Tracks the sample shows in one pass (astronaut walking in; astronaut and Grace Hopper side by side;
# Grace Hopper stepping up); the chart must hold points of at least this many.
SAMPLE_TRACKS = 3
CHART_INK = """
const c = document.getElementById('chart');
const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let ink = 0; for (let i = 3; i < data.length; i += 4) if (data[i] > 0) ink++;
return ink;"""


@pytest.fixture(scope="module")
def server(emotion_models: ModelFiles):
    web = WebServer("--source", "sample", "--model", str(emotion_models.tflite), "--api-threads", "1")
    yield web
    assert web.stop() == 0, web.output()


def _tracks_with_points(driver) -> dict:
    series = driver.execute_script(SERIES)
    return series if len([n for n in series.values() if n >= 3]) >= SAMPLE_TRACKS else {}


def _labels_seen(driver, rounds: int = 30) -> set[str]:
    """Labels shown in the faces list over a few seconds; each row checked against the page's data."""
    seen: set[str] = set()
    for _ in range(rounds):
        for track, label, confidence in driver.execute_script(FACE_LABELS):
            assert label in EMOTION_LABELS and track.isdigit(), (track, label)
            assert re.fullmatch(r"\d{1,3}%", confidence), confidence
            seen.add(label)
        driver.execute_script("return new Promise(r => setTimeout(r, 150));")
    return seen


def test_page_shows_stream_faces_and_chart(server: WebServer, emotion_models: ModelFiles) -> None:
    with chromium(1280, 900) as driver:
        driver.get(server.url)
        wait_until(driver, lambda d: d.execute_script(STREAM_SIZE) == [640, 480], "the stream's first frame")
        series = wait_until(driver, _tracks_with_points, f"chart points of {SAMPLE_TRACKS} tracks")
        assert all(isinstance(n, int) and n > 0 for n in series.values())
        labels = _labels_seen(driver)
        assert labels, "no face label was ever shown"
        if emotion_models.trained:
            assert "happy" in labels  # the astronaut smiles
        legend = driver.execute_script(LEGEND)
        assert legend and all(re.fullmatch(r"#\d+ [a-z]+ \d{1,3}%", item) for item in legend), legend
        assert driver.execute_script(CHART_INK) > 2000
        assert re.search(
            r"source: the built-in sample · [\d.]+ frames/s", driver.find_element("id", "status").text
        )
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "web_page.png"))


def test_page_fits_a_phone_screen(server: WebServer) -> None:
    with chromium(390, 844, mobile=True) as driver:
        driver.get(server.url)
        wait_until(driver, lambda d: d.execute_script(STREAM_SIZE) == [640, 480], "the stream's first frame")
        wait_until(driver, lambda d: len(d.execute_script(SERIES)) >= 1, "chart points")
        assert driver.execute_script(OVERFLOW) <= 0  # nothing wider than the screen
        stream = driver.find_element("id", "stream").rect
        chart = driver.find_element("id", "chart").rect
        assert stream["width"] <= 390 and chart["width"] <= 390
        assert chart["y"] > stream["y"]  # one column: the chart below the stream
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "web_page_phone.png"))
