"""The node on compressed input (`use_compressed: true`): JPEG and PNG frames over Fast DDS, and
compressed data that cannot be used is logged once per cause and skipped."""

from __future__ import annotations

import array

import cv2
import pytest
from sensor_msgs.msg import CompressedImage

from emotion_recognition.core.types import Box
from test.support.images import FACE_MATCH_IOU
from test.support.models import ModelFiles
from test.support.node_rig import FACE_BOX, FACE_FRAME, FACE_FREE_FRAME, FRAME_ID, NodeRig, compressed_msg
from test.support.ros_graph import GraphClient, NodeProcess, model_args

# Each test starts processes (node, DDS peers, builds): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

NAMESPACE = "/front"
IMAGE_TOPIC = "/front/camera/image_raw"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, emotion_models: ModelFiles, ros_domain_id: int):
    log_path = tmp_path_factory.mktemp("node_compressed") / "node.log"
    node = NodeProcess(
        ros_domain_id,
        [
            "-r",
            f"__ns:={NAMESPACE}",
            # image_transport naming, as the launch file remaps it
            "-r",
            f"image:={IMAGE_TOPIC}",
            "-r",
            f"image/compressed:={IMAGE_TOPIC}/compressed",
            "-p",
            "use_compressed:=true",
            *model_args(emotion_models),
        ],
        log_path,
    )
    client = GraphClient(ros_domain_id)
    try:
        node.wait_for_log("active: subscribed to")
        rig = NodeRig(node, client, emotion_models, NAMESPACE, f"{IMAGE_TOPIC}/compressed", compressed=True)
        rig.wait_until_connected()
        yield rig
    finally:
        client.close()
        node.stop()


def _box(face) -> Box:
    return Box(face.box.x_offset, face.box.y_offset, face.box.width, face.box.height)


def test_subscribes_to_the_compressed_topic(rig: NodeRig) -> None:
    assert f"subscribed to {IMAGE_TOPIC}/compressed" in rig.node.log()


@pytest.mark.parametrize(
    ("extension", "gray"),
    [(".jpg", False), (".png", False), (".jpg", True), (".png", True)],
    ids=["jpeg", "png", "gray_jpeg", "gray_png"],
)
def test_compressed_face_photo_is_answered(rig: NodeRig, extension: str, gray: bool) -> None:
    frame = cv2.cvtColor(FACE_FRAME, cv2.COLOR_BGR2GRAY) if gray else FACE_FRAME
    sec = rig.stamp()
    rig.send(compressed_msg(frame, extension, rig.header(sec)))
    emotions = rig.answer(sec)
    assert emotions.header.frame_id == FRAME_ID
    assert len(emotions.faces) == 1
    assert _box(emotions.faces[0]).iou(FACE_BOX) >= FACE_MATCH_IOU
    annotated = rig.annotated.wait_for(lambda m: m.header.stamp.sec == sec)
    assert (annotated.width, annotated.height, annotated.encoding) == (
        FACE_FRAME.shape[1],
        FACE_FRAME.shape[0],
        "bgr8",
    )


def test_compressed_face_free_photo_gives_an_empty_list(rig: NodeRig) -> None:
    sec = rig.stamp()
    rig.send(compressed_msg(FACE_FREE_FRAME, ".jpg", rig.header(sec)))
    assert rig.answer(sec).faces == []


def _raw(data: bytes, fmt: str) -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = array.array("B", data)
    return msg


_JPEG = cv2.imencode(".jpg", FACE_FRAME)[1].tobytes()
_PNG = cv2.imencode(".png", FACE_FRAME)[1].tobytes()


@pytest.mark.parametrize(
    ("bad", "cause"),
    [
        (lambda: _raw(_JPEG[: len(_JPEG) // 2], "jpeg"), "decode_failed"),  # truncated JPEG
        (lambda: _raw(_JPEG[:3] + bytes(400) + _JPEG[403:], "jpeg"), "decode_failed"),  # header zeroed
        (lambda: _raw(_PNG[: len(_PNG) // 3], "png"), "decode_failed"),
        (lambda: _raw(b"GIF89a" + bytes(64), "gif"), "unsupported_compressed_format"),
        (lambda: _raw(b"", "jpeg"), "empty_image"),
    ],
    ids=["truncated_jpeg", "corrupt_jpeg_header", "truncated_png", "gif", "empty"],
)
def test_bad_compressed_input_is_logged_throttled_and_the_next_frame_is_answered(
    rig: NodeRig, bad, cause: str
) -> None:
    logged_before = rig.node.log().count(f"skipping an image ({cause})")
    for _ in range(2):
        bad_msg = bad()
        bad_sec = rig.stamp()
        bad_msg.header = rig.header(bad_sec)
        rejected = rig.rejected_count(cause)
        rig.send(bad_msg)
        rig.wait_for_rejected(cause, rejected + 1)
        good = rig.stamp()
        rig.send(compressed_msg(FACE_FRAME, ".jpg", rig.header(good)))
        assert len(rig.answer(good).faces) == 1
        assert rig.emotions.matching(lambda m, s=bad_sec: m.header.stamp.sec == s) == []
    assert rig.node.alive
    logged = rig.node.log().count(f"skipping an image ({cause})")
    # Two occurrences, at most one log line (other tests with the same cause may have logged it
    # already within the throttle period).
    assert logged >= 1 and logged - logged_before <= 1
