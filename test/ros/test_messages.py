"""FrameResult → emotion_msgs/FaceEmotionArray and vision_msgs/Detection2DArray."""

from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import Header

from emotion_recognition.core.types import Box, FaceEmotion, FrameResult
from emotion_recognition.ros.messages import to_detection_array, to_face_emotion_array
from emotion_recognition.spec import EMOTION_LABELS


def _header() -> Header:
    header = Header(frame_id="head_camera")
    header.stamp.sec, header.stamp.nanosec = 1700000000, 123456789
    return header


def _face(box: Box, track_id: int, winner: int) -> FaceEmotion:
    probabilities = np.full(len(EMOTION_LABELS), 0.05, np.float32)
    probabilities[winner] = 1.0 - 0.05 * (len(EMOTION_LABELS) - 1)
    return FaceEmotion(box, track_id, probabilities, probabilities.copy())


RESULT = FrameResult(
    faces=[_face(Box(100, 50, 80, 90), 7, 3), _face(Box(600, 440, 60, 60), 12, 6)],  # the 2nd sticks out
    image_width=640,
    image_height=480,
)


def test_face_emotion_array_carries_header_labels_boxes_ids_and_probabilities() -> None:
    msg = to_face_emotion_array(RESULT, _header())
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (
        1700000000,
        123456789,
        "head_camera",
    )
    assert list(msg.labels) == list(EMOTION_LABELS)
    assert len(msg.faces) == 2
    first, second = msg.faces
    assert (first.box.x_offset, first.box.y_offset, first.box.width, first.box.height) == (100, 50, 80, 90)
    assert first.box.do_rectify is False
    assert first.track_id == 7
    assert first.label == "happy" == first.HAPPY
    assert first.confidence == pytest.approx(0.7)
    np.testing.assert_allclose(first.probabilities, RESULT.faces[0].probabilities)
    # A box reaching past the image border is clipped to the image.
    assert (second.box.x_offset, second.box.y_offset, second.box.width, second.box.height) == (
        600,
        440,
        40,
        40,
    )
    assert second.label == second.NEUTRAL and second.track_id == 12


def test_detection_array_is_consistent_with_the_emotions() -> None:
    msg = to_detection_array(RESULT, _header())
    assert msg.header.frame_id == "head_camera" and msg.header.stamp.nanosec == 123456789
    assert len(msg.detections) == 2
    first = msg.detections[0]
    assert first.id == "7"
    assert first.header.frame_id == "head_camera"
    assert (first.bbox.center.position.x, first.bbox.center.position.y) == (140.0, 95.0)
    assert (first.bbox.size_x, first.bbox.size_y, first.bbox.center.theta) == (80.0, 90.0, 0.0)
    assert [r.hypothesis.class_id for r in first.results] == list(EMOTION_LABELS)
    np.testing.assert_allclose(
        [r.hypothesis.score for r in first.results], RESULT.faces[0].probabilities, rtol=1e-6
    )
    second = msg.detections[1]
    assert (second.bbox.center.position.x, second.bbox.size_x) == (620.0, 40.0)


def test_no_face_gives_empty_lists_with_the_header() -> None:
    empty = FrameResult(faces=[], image_width=640, image_height=480)
    emotions = to_face_emotion_array(empty, _header())
    detections = to_detection_array(empty, _header())
    assert emotions.faces == [] and list(emotions.labels) == list(EMOTION_LABELS)
    assert detections.detections == []
    assert emotions.header.stamp.sec == detections.header.stamp.sec == 1700000000
