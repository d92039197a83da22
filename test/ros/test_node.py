"""The node as a robot runs it: its own process, the shipped parameter file, topics remapped, talked to
over Fast DDS from this process.

One node process serves the module (namespace /cam1, `image` remapped to /camera/image_raw). Each
frame carries its own header stamp; answers are matched by it. Frames that must not share a track are
stamped 10 s apart (more than tracker.max_age_s of image time), so each starts a fresh track and the
published probabilities are the model's own output for that frame.

Frames stay under 0.5 MB (see test/support/node_rig.py).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from rcl_interfaces.srv import ListParameters
from sensor_msgs.msg import Image

from emotion_recognition.core.classifier import EmotionClassifier
from emotion_recognition.core.pipeline import EmotionPipeline
from emotion_recognition.core.types import Box
from emotion_recognition.ros import parameters as params
from emotion_recognition.ros.image_conversion import array_to_image_msg
from emotion_recognition.spec import EMOTION_LABELS
from test.support.images import FACE_MATCH_IOU, bgr_to_yuv422
from test.support.models import ModelFiles
from test.support.node_rig import FACE_BOX, FACE_FRAME, FACE_FREE_FRAME, FRAME_ID
from test.support.node_rig import NodeRig as Rig
from test.support.ros_graph import GraphClient, NodeProcess, model_args, stamp_is

# Each test starts processes (node, DDS peers, builds): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

NAMESPACE = "/cam1"
NODE = f"{NAMESPACE}/emotion_recognition"
IMAGE_TOPIC = "/camera/image_raw"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, emotion_models: ModelFiles, ros_domain_id: int):
    log_path = tmp_path_factory.mktemp("node") / "node.log"
    node = NodeProcess(
        ros_domain_id,
        ["-r", f"__ns:={NAMESPACE}", "-r", f"image:={IMAGE_TOPIC}", *model_args(emotion_models)],
        log_path,
    )
    client = GraphClient(ros_domain_id)
    try:
        node.wait_for_log("active: subscribed to")
        rig = Rig(node, client, emotion_models, NAMESPACE, IMAGE_TOPIC)
        rig.wait_until_connected()
        yield rig
    finally:
        client.close()
        node.stop()


def _expected_faces(bgr: np.ndarray, models: ModelFiles):
    """What the core, run in this process on the same frame with the same model and the shipped
    settings, finds: the reference for the node's answer."""
    values = params.defaults()
    pipeline = EmotionPipeline(
        EmotionClassifier.load(str(models.tflite), num_threads=1),
        params.detector_settings(values),
        params.tracker_settings(values),
    )
    result, _ = pipeline.process(bgr, 0.0)
    return result.faces


def _box(face) -> Box:
    return Box(face.box.x_offset, face.box.y_offset, face.box.width, face.box.height)


def test_face_photo_gives_emotions_detections_and_annotated_image(rig: Rig) -> None:
    bgr = FACE_FRAME
    sec = rig.stamp()
    rig.send_bgr(bgr, sec)
    emotions = rig.answer(sec)

    assert emotions.header.frame_id == FRAME_ID
    assert list(emotions.labels) == list(EMOTION_LABELS)
    assert len(emotions.faces) == 1
    face = emotions.faces[0]
    assert _box(face).iou(FACE_BOX) >= FACE_MATCH_IOU
    # The label and probabilities are the model's for this face (same model, same settings, in-process).
    expected = _expected_faces(bgr, rig.models)
    assert len(expected) == 1
    assert _box(face) == expected[0].box
    assert face.label == expected[0].label
    np.testing.assert_allclose(face.probabilities, expected[0].probabilities, atol=1e-5)
    assert face.confidence == pytest.approx(max(face.probabilities), abs=1e-6)
    assert face.label == EMOTION_LABELS[int(np.argmax(face.probabilities))]
    if rig.models.trained:  # the shipped model sees her smile (an untrained stand-in says anything)
        assert face.label == face.HAPPY
    assert sum(face.probabilities) == pytest.approx(1.0, abs=0.03)  # int8 output: steps of 1/256

    detections = rig.detections.wait_for(stamp_is(sec))
    assert detections.header.frame_id == FRAME_ID
    assert len(detections.detections) == 1
    detection = detections.detections[0]
    assert detection.id == str(face.track_id)
    assert (detection.header.stamp.sec, detection.header.frame_id) == (sec, FRAME_ID)
    assert detection.bbox.center.position.x == pytest.approx(face.box.x_offset + face.box.width / 2)
    assert detection.bbox.center.position.y == pytest.approx(face.box.y_offset + face.box.height / 2)
    assert (detection.bbox.size_x, detection.bbox.size_y) == (face.box.width, face.box.height)
    assert [r.hypothesis.class_id for r in detection.results] == list(EMOTION_LABELS)
    np.testing.assert_allclose([r.hypothesis.score for r in detection.results], face.probabilities, atol=1e-6)

    annotated = rig.annotated.wait_for(stamp_is(sec))
    assert (annotated.width, annotated.height, annotated.encoding) == (bgr.shape[1], bgr.shape[0], "bgr8")
    assert annotated.header.frame_id == FRAME_ID
    drawn = np.frombuffer(annotated.data, np.uint8).reshape(bgr.shape)
    changed = np.any(drawn != bgr, axis=2)
    assert changed.any(), "nothing was drawn on the annotated image"
    box = _box(face)
    ys, xs = np.nonzero(changed)
    # The drawing (box and label) sits around the face, not somewhere else in the image.
    assert box.x - 40 <= np.median(xs) <= box.x + box.width + 40
    assert box.y - 60 <= np.median(ys) <= box.y + box.height + 60


def test_face_free_photo_gives_an_empty_list(rig: Rig) -> None:
    bgr = FACE_FREE_FRAME
    sec = rig.stamp()
    rig.send_bgr(bgr, sec)
    emotions = rig.answer(sec)
    assert emotions.faces == []
    assert emotions.header.frame_id == FRAME_ID
    assert rig.detections.wait_for(stamp_is(sec)).detections == []


@pytest.mark.parametrize("encoding", ["rgb8", "bgra8", "rgba8", "mono8", "mono16", "yuv422", "yuv422_yuy2"])
def test_every_camera_encoding_finds_the_face(rig: Rig, encoding: str) -> None:
    bgr = FACE_FRAME
    raw = {
        "rgb8": lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
        "bgra8": lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
        "rgba8": lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA),
        "mono8": lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        "mono16": lambda: cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257,
        "yuv422": lambda: bgr_to_yuv422(bgr, "uyvy"),
        "yuv422_yuy2": lambda: bgr_to_yuv422(bgr, "yuy2"),
    }[encoding]()
    sec = rig.stamp()
    rig.send(array_to_image_msg(raw, encoding, rig.header(sec), big_endian=encoding == "mono16"))
    emotions = rig.answer(sec)
    assert len(emotions.faces) == 1
    assert _box(emotions.faces[0]).iou(FACE_BOX) >= FACE_MATCH_IOU


def test_track_id_stays_while_the_face_stays(rig: Rig) -> None:
    bgr = FACE_FRAME
    sec = rig.stamp()
    ids = []
    for i in range(3):  # 0.1 s apart in image time: one track
        header = rig.header(sec, i * 100_000_000)
        rig.send(array_to_image_msg(bgr, "bgr8", header))
        ids.append(rig.answer(sec, i * 100_000_000).faces[0].track_id)
    assert len(set(ids)) == 1
    later = rig.stamp()
    rig.send_bgr(bgr, later)  # 10 s later in image time: the track expired, a new id
    assert rig.answer(later).faces[0].track_id not in ids


def test_runtime_parameter_change_changes_the_behaviour(rig: Rig) -> None:
    bgr = FACE_FRAME
    results = rig.set_parameters(detector__min_face_size=400)  # the face is ~100 px wide
    assert results[0].successful, results[0].reason
    try:
        sec = rig.stamp()
        rig.send_bgr(bgr, sec)
        assert rig.answer(sec).faces == []
    finally:
        results = rig.set_parameters(detector__min_face_size=params.defaults()["detector.min_face_size"])
        assert results[0].successful, results[0].reason
    sec = rig.stamp()
    rig.send_bgr(bgr, sec)
    assert len(rig.answer(sec).faces) == 1


@pytest.mark.parametrize(
    ("values", "reason_mentions"),
    [
        ({"detector__scale_factor": 0.9}, "scale_factor"),
        ({"detector__max_face_size": 20}, "max_face_size"),  # below min_face_size (40)
        ({"detector__detection_width": 30}, "detection_width"),
        ({"tracker__smoothing": 1.5}, "smoothing"),
        ({"detector__min_neighbors": "many"}, ""),
        ({"model_path": "/tmp/other.tflite"}, "configure"),
        ({"image_reliability": "reliable"}, "configure"),
    ],
    ids=[
        "scale_below_1",
        "max_below_min",
        "tiny_detection_width",
        "smoothing_above_1",
        "wrong_type",
        "model_while_active",
        "reliability_while_active",
    ],
)
def test_bad_parameter_values_are_refused_with_a_reason(rig: Rig, values: dict, reason_mentions: str) -> None:
    results = rig.set_parameters(**values)
    assert len(results) == 1
    assert not results[0].successful
    assert results[0].reason
    assert reason_mentions in results[0].reason
    # The node still works with its previous settings.
    sec = rig.stamp()
    rig.send_bgr(FACE_FRAME, sec)
    assert len(rig.answer(sec).faces) == 1


def _bad_image(
    encoding: str = "bgr8",
    height: int = 120,
    width: int = 160,
    step: int | None = None,
    length: int | None = None,
) -> Image:
    msg = Image(encoding=encoding, height=height, width=width)
    msg.step = width * 3 if step is None else step
    msg.data = bytes(height * msg.step if length is None else length)
    return msg


@pytest.mark.parametrize(
    ("bad", "cause"),
    [
        (_bad_image(encoding="32FC1"), "unsupported_encoding"),
        (_bad_image(length=160 * 3 * 120 - 7), "length_mismatch"),
        (_bad_image(step=100), "bad_step"),
        (_bad_image(height=0, width=0, step=0), "empty_image"),
        (_bad_image(height=10, width=10), "invalid_image"),  # valid message, too small to hold a face
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_input_is_logged_once_and_the_next_good_frame_is_answered(
    rig: Rig, bad: Image, cause: str
) -> None:
    for count in range(1, 4):  # the same problem three times: logged once (throttled per cause)
        bad_sec = rig.stamp()
        bad.header = rig.header(bad_sec)
        rig.send(bad)
        rig.wait_for_rejected(cause, count)
        good = rig.stamp()
        rig.send_bgr(FACE_FRAME, good)
        assert len(rig.answer(good).faces) == 1
    assert rig.emotions.matching(stamp_is(bad_sec)) == []
    log = rig.node.log()
    assert log.count(f"skipping an image ({cause})") == 1, log
    assert rig.node.alive


def test_diagnostics_report_rates_drops_timing_and_model(rig: Rig) -> None:
    def fresh_report() -> dict[str, str]:
        first = len(rig.diagnostics.messages)
        report = rig.diagnostics.wait_for(
            lambda m: (
                rig.diagnostics.messages.index(m) >= first and rig.diagnostic_value(m, "model") is not None
            )
        )
        return {kv.key: kv.value for s in report.status if s.name.startswith(NODE + ":") for kv in s.values}

    before = fresh_report()
    for _ in range(3):  # one at a time: nothing may be dropped
        sec = rig.stamp()
        rig.send_bgr(FACE_FRAME, sec)
        rig.answer(sec)
    after = fresh_report()
    for key in (
        "input rate (Hz)",
        "processed rate (Hz)",
        "dropped frames (last period)",
        "processing time mean (ms)",
        "processing time max (ms)",
        "receive to publish latency mean (ms)",
    ):
        assert float(after[key]) >= 0.0, key
    assert int(after["processed frames (total)"]) - int(before["processed frames (total)"]) >= 3
    assert after["dropped frames (total)"] == before["dropped frames (total)"]
    assert Path(after["model"]).name == rig.models.tflite.name
    assert after["tensorflow loaded"] == "false"
    assert after["state"] == "active"


def test_stale_input_turns_diagnostics_to_warn(rig: Rig) -> None:
    results = rig.set_parameters(stale_image_timeout_s=0.1)
    assert results[0].successful, results[0].reason
    try:
        first = len(rig.diagnostics.messages)
        warn = rig.diagnostics.wait_for(
            lambda m: (
                rig.diagnostics.messages.index(m) >= first
                and any(
                    s.name.startswith(NODE + ":") and s.level == b"\x01" and "no image" in s.message
                    for s in m.status
                )
            )
        )
        assert warn
    finally:
        assert rig.set_parameters(stale_image_timeout_s=5.0)[0].successful


def test_every_declared_parameter_is_in_the_shipped_yaml_and_vice_versa(rig: Rig) -> None:
    response = rig.client.call(ListParameters, f"{NODE}/list_parameters", ListParameters.Request())
    declared = set(response.result.names)
    # rclpy declares these on every node; they are not ours to document.
    declared -= {"use_sim_time", "start_type_description_service"}
    assert declared == {spec.name for spec in params.PARAMETERS}


def test_node_is_a_lifecycle_node_in_state_active(rig: Rig) -> None:
    assert rig.lifecycle_state() == "active"
