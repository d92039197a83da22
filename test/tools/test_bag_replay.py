"""``emotion_bag_replay`` feeding the real node process over Fast DDS, and the replay pacing."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sensor_msgs.msg import CompressedImage

from emotion_msgs.msg import FaceEmotionArray
from emotion_recognition.core.types import Box
from emotion_recognition.ros.messages import stamp_ns
from emotion_recognition.spec import EMOTION_LABELS
from emotion_recognition.tools import bag_replay
from test.conftest import next_ros_domain_id
from test.support.bags import IMAGE_TOPIC, read_bag, write_photo_bag
from test.support.models import ModelFiles
from test.support.ros_graph import GraphClient, NodeProcess, model_args, ros_environment

NAMESPACE = "/replay_test"
FOUND_IOU = 0.4
# The node keeps up with this rate on the 2-core machine even while the rest of the suite runs beside
# it, so the test can expect an answer to every image (the node's depth-1 queue would otherwise drop
# frames by design). At 3 fps a full-suite run under a training job once lost one frame.
REPLAY_FPS = 1.5


@pytest.mark.slow
@pytest.mark.parametrize(
    "storage,compressed", [("mcap", True), ("sqlite3", False)], ids=["mcap-jpeg", "sqlite3-raw"]
)
def test_replayed_bag_reaches_the_node_which_answers_each_image(
    tmp_path: Path, storage: str, compressed: bool, emotion_models: ModelFiles
) -> None:
    bag = tmp_path / "bag"
    frames = write_photo_bag(bag, storage, compressed)[:8]
    domain_id = next_ros_domain_id()
    node = NodeProcess(
        domain_id,
        [
            "-r",
            f"__ns:={NAMESPACE}",
            "-p",
            f"use_compressed:={'true' if compressed else 'false'}",
            *model_args(emotion_models),
        ],
        tmp_path / "node.log",
    )
    client = GraphClient(domain_id)
    replay = None
    try:
        emotions = client.subscribe(FaceEmotionArray, f"{NAMESPACE}/emotions")
        node.wait_for_log("active: subscribed to")
        client.wait_until(lambda: emotions.subscription.get_publisher_count() > 0, "the emotions publisher")
        replay = subprocess.run(
            [
                sys.executable,
                "-m",
                "emotion_recognition.tools.bag_replay",
                str(bag),
                "--fps",
                str(REPLAY_FPS),
                "--publish-topic",
                f"{NAMESPACE}/image/compressed" if compressed else f"{NAMESPACE}/image",
                "--wait-subscribers",
                "30",
            ],
            env=ros_environment(domain_id),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert "published 20 messages" in replay.stdout
        # Every image of the first eight is answered, with its recorded header (stamp and frame id).
        for frame in frames:
            answer = emotions.wait_for(lambda m, s=frame.stamp_ns: stamp_ns(m.header) == s)
            assert answer.header.frame_id == "sample_camera_optical_frame"
            boxes = [Box(f.box.x_offset, f.box.y_offset, f.box.width, f.box.height) for f in answer.faces]
            for expected in frame.face_boxes:
                assert any(expected.iou(b) >= FOUND_IOU for b in boxes), (frame, boxes)
            assert all(f.label in EMOTION_LABELS for f in answer.faces)
    finally:
        client.close()
        status = node.stop()
    assert status == 0, node.log()


@pytest.mark.slow
def test_replay_publishes_the_recorded_bytes_on_the_recorded_topic(tmp_path: Path) -> None:
    """What a subscriber receives is what the bag holds: headers, sizes, encodings, in order."""
    bag = tmp_path / "bag"
    write_photo_bag(bag, "sqlite3", compressed=True)
    stored = read_bag(bag)[IMAGE_TOPIC]
    domain_id = next_ros_domain_id()
    client = GraphClient(domain_id, name="replay_echo")
    try:
        inbox = client.subscribe(CompressedImage, IMAGE_TOPIC, depth=100)
        stop = threading.Event()
        published = bag_replay.replay_bag(client.node, bag, rate=20.0, wait_subscribers_s=30.0, stop=stop)
        assert published == len(stored)
        for message in stored:
            sent = stamp_ns(message.msg.header)
            received = inbox.wait_for(lambda m, s=sent: stamp_ns(m.header) == s)
            assert bytes(received.data) == bytes(message.msg.data)
            assert received.format == message.msg.format
            assert received.header.frame_id == message.msg.header.frame_id
        order = [stamp_ns(m.header) for m in inbox.messages]
        assert order == sorted(order)
    finally:
        client.close()


def test_paced_follows_recorded_timing_scaled_by_rate() -> None:
    """The schedule comes from the stamps: 4 items 0.1 s apart at rate 2 are due at 0, 50, 100, 150 ms."""
    items = [(i * 100_000_000, i) for i in range(4)]
    due = []
    start = time.monotonic()
    for _, payload in bag_replay.paced(iter(items), rate=2.0):
        due.append((payload, time.monotonic() - start))
    assert [p for p, _ in due] == [0, 1, 2, 3]
    # Never early (a late item is yielded at once, so only a lower bound is checked).
    for payload, elapsed in due:
        assert elapsed >= payload * 0.05 - 0.002


def test_paced_stops_when_asked_and_rejects_bad_rates() -> None:
    stop = threading.Event()
    stop.set()
    assert list(bag_replay.paced(iter([(0, 0), (10**9, 1)]), stop=stop)) == []
    with pytest.raises(ValueError, match="rate must be > 0"):
        list(bag_replay.paced(iter([(0, 0)]), rate=0.0))
    with pytest.raises(ValueError, match="fps must be > 0"):
        list(bag_replay.paced(iter([(0, 0)]), fps=-1.0))


@pytest.mark.slow
def test_replay_cli_reports_a_missing_bag(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emotion_recognition.tools.bag_replay", str(tmp_path / "nothing")],
        env=ros_environment(next_ros_domain_id()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "bag not found" in result.stderr


@pytest.mark.slow
def test_looping_replay_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    write_photo_bag(bag, "mcap", compressed=True)
    domain_id = next_ros_domain_id()
    client = GraphClient(domain_id, name="loop_echo")
    try:
        inbox = client.subscribe(CompressedImage, IMAGE_TOPIC, depth=100)
        replay = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emotion_recognition.tools.bag_replay",
                str(bag),
                "--loop",
                "--rate",
                "5",
                "--wait-subscribers",
                "30",
            ],
            env=ros_environment(domain_id),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # More messages than the bag holds: it went round at least once.
            client.wait_until(lambda: len(inbox.messages) > 25, "a second pass over the bag", timeout_s=60)
        finally:
            replay.send_signal(signal.SIGINT)
            stdout, stderr = replay.communicate(timeout=30)
        assert replay.returncode == 0, stdout + stderr
        assert "published" in stdout and "Traceback" not in stderr
    finally:
        client.close()
