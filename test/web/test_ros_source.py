"""``emotion_web --source ros`` against the real node process over Fast DDS: the events and the page
show what the node publishes, and the annotated image is subscribed to (so drawn by the node) only
while a stream client watches.

Three processes: the node (namespace /webcam), the web server (remapped into the same namespace) and
this test, which feeds the node real photos (320x320, under Fast DDS's 0.5 MB shared-memory segment).
"""

from __future__ import annotations

import itertools
import threading

import pytest

from test.support.browser import FACE_LABELS, SERIES, STREAM_SIZE, chromium, wait_until
from test.support.models import ModelFiles
from test.support.node_rig import FACE_FRAME, NodeRig
from test.support.ros_graph import GraphClient, NodeProcess, model_args, ros_environment
from test.support.web import ARTIFACTS, WebServer

# Three processes (node, web server, browser) and DDS: see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

NAMESPACE = "/webcam"
ANNOTATED = f"{NAMESPACE}/image_annotated"
FRAME_PERIOD_S = 0.1
FIRST_STAMP_NS = 100_000 * 1_000_000_000


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, emotion_models: ModelFiles, ros_domain_id: int):
    log_path = tmp_path_factory.mktemp("node") / "node.log"
    node = NodeProcess(ros_domain_id, ["-r", f"__ns:={NAMESPACE}", *model_args(emotion_models)], log_path)
    client = GraphClient(ros_domain_id)
    try:
        node.wait_for_log("active: subscribed to")
        rig = NodeRig(
            node, client, emotion_models, NAMESPACE, f"{NAMESPACE}/image", subscribe_annotated=False
        )
        rig.wait_until_connected()
        yield rig
    finally:
        client.close()
        node.stop()


@pytest.fixture(scope="module")
def camera(rig: NodeRig):
    """Publishes the astronaut photo to the node at 10 frames per second while the tests run."""
    stop = threading.Event()

    def publish() -> None:
        for index in itertools.count():
            if stop.is_set():
                return
            stamp_ns = FIRST_STAMP_NS + index * int(FRAME_PERIOD_S * 1e9)  # image time = publishing pace
            rig.send_bgr(FACE_FRAME, stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000)
            stop.wait(FRAME_PERIOD_S)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def server(rig: NodeRig, camera, ros_domain_id: int):
    web = WebServer(
        "--source",
        "ros",
        "--api-threads",
        "1",
        "--ros-args",
        "-r",
        f"__ns:={NAMESPACE}",
        env=ros_environment(ros_domain_id),
    )
    yield web
    assert web.stop() == 0, web.output()


def _annotated_subscribers(rig: NodeRig) -> int:
    return rig.client.node.count_subscribers(ANNOTATED)


def test_events_are_what_the_node_publishes(
    server: WebServer, rig: NodeRig, emotion_models: ModelFiles
) -> None:
    events = server.events(timeout_s=60)
    result = next(r for r in events if r["faces"])
    events.close()
    published = rig.emotions.wait_for(
        lambda m: abs(m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 - result["stamp"]) < 1e-6
    )
    assert result["labels"] == list(published.labels)
    assert [f["track_id"] for f in result["faces"]] == [f.track_id for f in published.faces]
    face, sent = result["faces"][0], published.faces[0]
    assert (face["label"], face["box"]["x"], face["box"]["width"]) == (
        sent.label,
        sent.box.x_offset,
        sent.box.width,
    )
    assert face["confidence"] == pytest.approx(sent.confidence, abs=1e-4)
    if emotion_models.trained:
        assert face["label"] == "happy"


def test_annotated_image_is_subscribed_only_while_someone_watches(server: WebServer, rig: NodeRig) -> None:
    rig.client.wait_until(lambda: _annotated_subscribers(rig) == 0, "no annotated-image subscriber")
    frames = server.mjpeg_frames(timeout_s=60)
    frame = next(frames)
    assert frame.shape == FACE_FRAME.shape  # the node's annotated image, as published
    # The node matched the server's subscription (the frame came through it); this test's own view of the
    # graph learns of it by discovery, which can lag behind by a moment.
    rig.client.wait_until(lambda: _annotated_subscribers(rig) == 1, "the stream's subscription in the graph")
    frames.close()
    rig.client.wait_until(lambda: _annotated_subscribers(rig) == 0, "the subscription to end")


def test_page_shows_the_node_results(server: WebServer, emotion_models: ModelFiles) -> None:
    with chromium(1024, 800) as driver:
        driver.get(server.url)
        wait_until(
            driver, lambda d: d.execute_script(STREAM_SIZE) == [320, 320], "the node's annotated image"
        )
        rows = wait_until(driver, lambda d: d.execute_script(FACE_LABELS), "a face on the page")
        track, label, confidence = rows[0]
        assert track.isdigit() and confidence.endswith("%")
        if emotion_models.trained:
            assert label == "happy"
        wait_until(driver, lambda d: len(d.execute_script(SERIES)) >= 1, "chart points")
        assert (
            "source: ROS topics /webcam/emotions and /webcam/image_annotated"
            in driver.find_element("id", "status").text
        )
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "web_page_ros.png"))
