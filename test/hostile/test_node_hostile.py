"""The node process over Fast DDS against hostile input: decompression bombs and oversized raw frames
are refused with one warning naming the size and the limit while the node's memory stays flat (peak
RSS measured in /proc), a 100 KB encoding string is logged truncated, and images lost inside DDS show
in /diagnostics next to the node's own drops."""

from __future__ import annotations

import array
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from emotion_recognition.core.image import DEFAULT_MAX_IMAGE_PIXELS
from emotion_recognition.ros.image_conversion import (
    CAUSE_TOO_LARGE,
    CAUSE_UNSUPPORTED_ENCODING,
    array_to_image_msg,
)
from emotion_recognition.ros.node import BAD_INPUT_LOG_PERIOD_S
from test.conftest import next_ros_domain_id
from test.support.bombs import jpeg_claiming, png_bomb, process_memory
from test.support.images import ASTRONAUT, photo_bgr
from test.support.models import ModelFiles
from test.support.node_rig import FACE_FRAME, NodeRig, compressed_msg
from test.support.ros_graph import GraphClient, NodeProcess, model_args

# These tests start processes (the node, the tools, training): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

MB = 1 << 20
# How far the node's peak RSS may rise above its normal RSS while bombs are refused.
RSS_ALLOWANCE = 50 * MB
NAMESPACE = "/hostile"
IMAGE_TOPIC = "/hostile/camera/image_raw"
# The raw-input node runs with a lowered limit, so that frames over it still fit through DDS.
RAW_LIMIT = 100_000


def _start(
    tmp_path_factory: pytest.TempPathFactory,
    models: ModelFiles,
    name: str,
    extra: list[str],
    compressed: bool,
):
    domain_id = next_ros_domain_id()
    topic = f"{IMAGE_TOPIC}/compressed" if compressed else IMAGE_TOPIC
    node = NodeProcess(
        domain_id,
        [
            "-r",
            f"__ns:={NAMESPACE}",
            "-r",
            f"image:={IMAGE_TOPIC}",
            "-r",
            f"image/compressed:={IMAGE_TOPIC}/compressed",
            *extra,
            *model_args(models),
        ],
        tmp_path_factory.mktemp(name) / "node.log",
    )
    client = GraphClient(domain_id)
    node.wait_for_log("active: subscribed to")
    rig = NodeRig(node, client, models, NAMESPACE, topic, compressed=compressed, subscribe_annotated=False)
    rig.wait_until_connected()
    return node, client, rig


@pytest.fixture(scope="module")
def compressed_rig(tmp_path_factory: pytest.TempPathFactory, emotion_models: ModelFiles):
    # Reliable: the 875 KB PNG bomb is larger than Fast DDS's default shared-memory segment, and a
    # reliable subscription gets its fragments resent (README "Large images over Fast DDS").
    node, client, rig = _start(
        tmp_path_factory,
        emotion_models,
        "bombs",
        ["-p", "use_compressed:=true", "-p", "image_reliability:=reliable"],
        True,
    )
    try:
        yield rig
    finally:
        client.close()
        node.stop()


@pytest.fixture(scope="module")
def raw_rig(tmp_path_factory: pytest.TempPathFactory, emotion_models: ModelFiles):
    node, client, rig = _start(
        tmp_path_factory, emotion_models, "raw", ["-p", f"max_image_pixels:={RAW_LIMIT}"], False
    )
    try:
        yield rig
    finally:
        client.close()
        node.stop()


def _bomb_msg(data: bytes, rig: NodeRig, sec: int) -> CompressedImage:
    msg = CompressedImage(format="jpeg" if data[:2] == b"\xff\xd8" else "png")
    msg.header = rig.header(sec)
    msg.data = array.array("B", data)
    return msg


def _answer_face(rig: NodeRig, sec: int) -> None:
    rig.send(compressed_msg(FACE_FRAME, ".jpg", rig.header(sec)))
    assert len(rig.answer(sec).faces) == 1


def test_decompression_bombs_are_refused_and_the_node_memory_stays_flat(compressed_rig: NodeRig) -> None:
    rig = compressed_rig
    pid = rig.node.process.pid
    for _ in range(5):  # warm up: the node's normal working set for these frames
        _answer_face(rig, rig.stamp())
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    normal = process_memory(pid)["VmRSS"]
    bombs = [jpeg_claiming(65500, 16384), jpeg_claiming(30000, 30000), png_bomb(30000)]
    rejected = rig.rejected_count(CAUSE_TOO_LARGE)
    started = time.monotonic()
    for count, bomb in enumerate(bombs, start=1):
        sec = rig.stamp()
        rig.send(_bomb_msg(bomb, rig, sec))
        rig.wait_for_rejected(CAUSE_TOO_LARGE, rejected + count)
        _answer_face(rig, rig.stamp())  # and the node answers the next good frame at once
        assert rig.emotions.matching(lambda m, s=sec: m.header.stamp.sec == s) == []
    peak = process_memory(pid)["VmHWM"]
    print(f"node RSS normal {normal / MB:.1f} MB, peak while refusing 3 bombs {peak / MB:.1f} MB")
    assert peak - normal <= RSS_ALLOWANCE, f"peak {peak / MB:.0f} MB vs normal {normal / MB:.0f} MB"
    log = rig.node.log()
    warning = next(line for line in log.splitlines() if f"skipping an image ({CAUSE_TOO_LARGE})" in line)
    assert "65500x16384" in warning and f"limit of {DEFAULT_MAX_IMAGE_PIXELS} pixels" in warning
    assert "max_image_pixels" in warning
    assert "[WARN]" in warning
    # Throttled: one line for the burst (one more per 10 s period, should a busy machine stretch it).
    allowed = 1 + int((time.monotonic() - started) // BAD_INPUT_LOG_PERIOD_S)
    assert 1 <= log.count(f"skipping an image ({CAUSE_TOO_LARGE})") <= allowed
    assert rig.node.alive


def test_a_raw_frame_over_the_limit_is_refused_with_a_warning(raw_rig: NodeRig) -> None:
    rig = raw_rig
    big = np.ascontiguousarray(np.tile(FACE_FRAME, (1, 2, 1))[:, :400])  # 400 x 320 = 128,000 pixels
    rejected = rig.rejected_count(CAUSE_TOO_LARGE)
    sec = rig.stamp()
    rig.send(array_to_image_msg(big, "bgr8", rig.header(sec)))
    rig.wait_for_rejected(CAUSE_TOO_LARGE, rejected + 1)
    good = rig.stamp()
    small = np.ascontiguousarray(FACE_FRAME[:300, :300])  # 90,000 pixels: within the limit
    rig.send(array_to_image_msg(small, "bgr8", rig.header(good)))
    rig.answer(good)
    log = rig.node.wait_for_log(f"skipping an image ({CAUSE_TOO_LARGE})")
    assert f"400x320 = 128000 pixels is over the limit of {RAW_LIMIT} pixels" in log


def test_a_100_kb_encoding_string_is_logged_truncated(raw_rig: NodeRig) -> None:
    rig = raw_rig
    rejected = rig.rejected_count(CAUSE_UNSUPPORTED_ENCODING)
    msg = array_to_image_msg(np.ascontiguousarray(FACE_FRAME[:100, :100]), "bgr8", rig.header(rig.stamp()))
    msg.encoding = "evil" * 25_000  # 100 KB
    rig.send(msg)
    rig.wait_for_rejected(CAUSE_UNSUPPORTED_ENCODING, rejected + 1)
    log = rig.node.wait_for_log(f"skipping an image ({CAUSE_UNSUPPORTED_ENCODING})")
    line = next(line for line in log.splitlines() if CAUSE_UNSUPPORTED_ENCODING in line)
    assert "100000 characters" in line
    assert len(line) < 1000, len(line)
    assert max(len(line) for line in log.splitlines()) < 2000


def test_images_lost_inside_dds_are_reported_in_diagnostics(raw_rig: NodeRig) -> None:
    """A best-effort publisher of 1.2 MB frames without the large-image profile: Fast DDS loses
    fragments, so whole images never reach the node; the node counts them from the QoS
    "message lost" event and reports them in /diagnostics (and turns WARN)."""
    rig = raw_rig
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
    publisher = rig.client.node.create_publisher(Image, IMAGE_TOPIC, qos)
    rig.client.wait_until(lambda: publisher.get_subscription_count() > 0, "the node's subscription")
    frame = np.ascontiguousarray(np.tile(FACE_FRAME, (2, 2, 1))[:, :, :])  # 640 x 640 bgr8, 1.2 MB
    key = "lost in transport (total)"
    deadline = time.monotonic() + 30
    lost = 0
    while time.monotonic() < deadline and lost == 0:
        for _ in range(20):
            publisher.publish(array_to_image_msg(frame, "bgr8", rig.header(rig.stamp())))
            time.sleep(0.01)
        latest = rig.diagnostics.messages[-1]
        time.sleep(1.2)
        lost = max(int(rig.diagnostic_value(m, key) or 0) for m in rig.diagnostics.messages[-3:])
        assert latest is not None
    rig.client.node.destroy_publisher(publisher)
    assert lost > 0, f"no loss reported in /diagnostics ({key})"


def test_published_probabilities_sum_to_one(raw_rig: NodeRig) -> None:
    """The shipped int8 model's raw rows sum to about 1.008; what the node publishes sums to 1."""
    rig = raw_rig
    sec = rig.stamp()
    rig.send(array_to_image_msg(np.ascontiguousarray(FACE_FRAME[:300, :300]), "bgr8", rig.header(sec)))
    faces = rig.answer(sec).faces
    assert len(faces) == 1
    assert abs(sum(faces[0].probabilities) - 1.0) < 1e-5
    assert faces[0].confidence == max(faces[0].probabilities)


def test_the_node_reports_a_face_at_the_size_floor_in_30_of_30_identical_frames(raw_rig: NodeRig) -> None:
    rig = raw_rig
    frame = cv2.resize(photo_bgr(ASTRONAUT), (256, 256), interpolation=cv2.INTER_AREA)
    counts = []
    sec = rig.stamp()
    for index in range(30):
        nanosec = index * 33_000_000
        rig.send(array_to_image_msg(frame, "bgr8", rig.header(sec, nanosec)))
        counts.append(len(rig.answer(sec, nanosec).faces))
    assert counts == [1] * 30, counts
