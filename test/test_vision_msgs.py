"""vision_msgs/Detection2DArray works in the development environment: published by this process,
decoded and re-published by a second process over Fast DDS, received unchanged.

On development machines vision_msgs is the test-only copy of the 4.x definitions
(test/interfaces/vision_msgs); the field check pins that copy to the published layout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vision_msgs.msg import (
    BoundingBox2D,
    Detection2D,
    Detection2DArray,
    ObjectHypothesis,
    ObjectHypothesisWithPose,
    Point2D,
    Pose2D,
)

from test.conftest import BackgroundProcess
from test.ros_exchange import RELIABLE, RosDomain, receive_first

# Each test starts processes (node, DDS peers, builds): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

PEER = Path(__file__).resolve().parent / "interface_peer.py"


def test_definitions_match_vision_msgs_4() -> None:
    """Field names, types and order of the vision_msgs 4.x messages that Detection2DArray uses."""
    expected = {
        Detection2DArray: {"header": "std_msgs/Header", "detections": "sequence<vision_msgs/Detection2D>"},
        Detection2D: {
            "header": "std_msgs/Header",
            "results": "sequence<vision_msgs/ObjectHypothesisWithPose>",
            "bbox": "vision_msgs/BoundingBox2D",
            "id": "string",
        },
        ObjectHypothesisWithPose: {
            "hypothesis": "vision_msgs/ObjectHypothesis",
            "pose": "geometry_msgs/PoseWithCovariance",
        },
        ObjectHypothesis: {"class_id": "string", "score": "double"},
        BoundingBox2D: {"center": "vision_msgs/Pose2D", "size_x": "double", "size_y": "double"},
        Pose2D: {"position": "vision_msgs/Point2D", "theta": "double"},
        Point2D: {"x": "double", "y": "double"},
    }
    for msg_class, fields in expected.items():
        assert msg_class.get_fields_and_field_types() == fields, msg_class.__name__
        # Order matters on the wire, not only the set of names.
        assert list(msg_class.get_fields_and_field_types()) == list(fields), msg_class.__name__


def _detections() -> Detection2DArray:
    message = Detection2DArray()
    message.header.stamp.sec = 1_764_000_000
    message.header.stamp.nanosec = 500
    message.header.frame_id = "camera"
    for index, (label, score) in enumerate((("happy", 0.75), ("neutral", 0.5))):
        detection = Detection2D(id=str(index + 3))
        detection.header = message.header
        detection.bbox.center.position.x = 100.5 + index
        detection.bbox.center.position.y = 80.25
        detection.bbox.center.theta = 0.0
        detection.bbox.size_x = 48.0
        detection.bbox.size_y = 64.0
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = label
        hypothesis.hypothesis.score = score
        hypothesis.pose.pose.position.x = 1.5
        hypothesis.pose.covariance[0] = 0.01 * (index + 1)
        detection.results.append(hypothesis)
        message.detections.append(detection)
    return message


def test_detection2d_array_round_trips_through_another_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = _detections()
    with (
        RosDomain(monkeypatch) as domain,
        BackgroundProcess.python(
            PEER, "echo", "vision_msgs/msg/Detection2DArray", "detections_in", "detections_out"
        ) as peer,
    ):
        echoed = receive_first(
            domain,
            Detection2DArray,
            "detections_out",
            RELIABLE,
            peer,
            publish=(Detection2DArray, "detections_in", sent),
        )
    assert echoed == sent
    assert [d.results[0].hypothesis.class_id for d in echoed.detections] == ["happy", "neutral"]
    assert echoed.detections[1].bbox.center.position.x == 101.5
