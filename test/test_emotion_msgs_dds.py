"""emotion_msgs between two real processes over Fast DDS: every field and constant round-trips.

A second process (test/interface_peer.py) builds or echoes the messages, so serialization,
discovery and type support are exercised exactly as between the node and a subscriber.
Domains 10-11, localhost discovery only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sensor_msgs.msg import RegionOfInterest

from emotion_msgs.msg import FaceEmotion, FaceEmotionArray
from emotion_recognition.spec import EMOTION_LABELS
from test.conftest import BackgroundProcess
from test.ros_exchange import RELIABLE, RELIABLE_LATCHED, RosDomain, receive_first

# Each test starts processes (node, DDS peers, builds): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

PEER = Path(__file__).resolve().parent / "interface_peer.py"
LABEL_CONSTANTS = ["ANGRY", "DISGUST", "FEAR", "HAPPY", "SAD", "SURPRISE", "NEUTRAL"]

# Every value is exactly representable in its field type (float32 fractions of two), so equality is
# exact; the extremes of the integer fields are included.
SPEC = {
    "stamp_sec": 1_764_000_123,
    "stamp_nanosec": 987_654_321,
    "frame_id": "head_camera_optical_frame",
    "label_constants": LABEL_CONSTANTS,
    "faces": [
        {
            "box": [12, 34, 56, 78],
            "do_rectify": False,
            "track_id": 4_294_967_295,
            "label_constant": "HAPPY",
            "confidence": 0.625,
            "probabilities": [0.0625, 0.03125, 0.0625, 0.625, 0.125, 0.03125, 0.0625],
        },
        {
            "box": [0, 0, 640, 480],
            "do_rectify": True,
            "track_id": 0,
            "label_constant": "SURPRISE",
            "confidence": 0.5,
            "probabilities": [0.0, 0.0, 0.25, 0.0, 0.0, 0.5, 0.25],
        },
    ],
}


def test_interface_fields_are_the_documented_ones() -> None:
    """The generated types carry exactly the fields this test round-trips (a new field fails here
    until the round-trip tests below cover it)."""
    assert FaceEmotionArray.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "labels": "sequence<string>",
        "faces": "sequence<emotion_msgs/FaceEmotion>",
    }
    assert FaceEmotion.get_fields_and_field_types() == {
        "box": "sensor_msgs/RegionOfInterest",
        "track_id": "uint32",
        "label": "string",
        "confidence": "float",
        "probabilities": "sequence<float>",
    }
    assert RegionOfInterest.get_fields_and_field_types() == {
        "x_offset": "uint32",
        "y_offset": "uint32",
        "height": "uint32",
        "width": "uint32",
        "do_rectify": "boolean",
    }


def test_label_constants_match_the_model_label_order() -> None:
    """FaceEmotion's constants, in declaration order, are the model's labels in FER2013 order."""
    assert [getattr(FaceEmotion, name) for name in LABEL_CONSTANTS] == list(EMOTION_LABELS)


def test_face_emotion_array_published_by_another_process_round_trips(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with RosDomain(monkeypatch) as domain:
        peer = BackgroundProcess.python(PEER, "publish-face-emotions", "face_emotions", json.dumps(SPEC))
        with peer:
            received = receive_first(domain, FaceEmotionArray, "face_emotions", RELIABLE_LATCHED, peer)

    assert received.header.stamp.sec == SPEC["stamp_sec"]
    assert received.header.stamp.nanosec == SPEC["stamp_nanosec"]
    assert received.header.frame_id == SPEC["frame_id"]
    # The publisher filled `labels` from its own copy of the constants.
    assert list(received.labels) == list(EMOTION_LABELS)
    assert len(received.faces) == len(SPEC["faces"])
    for face, expected in zip(received.faces, SPEC["faces"]):
        x, y, width, height = expected["box"]
        assert (face.box.x_offset, face.box.y_offset, face.box.width, face.box.height) == (
            x,
            y,
            width,
            height,
        )
        assert face.box.do_rectify is expected["do_rectify"]
        assert face.track_id == expected["track_id"]
        assert face.label == getattr(FaceEmotion, expected["label_constant"])
        assert face.confidence == expected["confidence"]
        assert list(face.probabilities) == expected["probabilities"]
        # The documented invariants hold for what we sent: label is the argmax, confidence its value.
        best = max(range(len(face.probabilities)), key=lambda i: face.probabilities[i])
        assert received.labels[best] == face.label
        assert face.probabilities[best] == face.confidence


def test_face_emotion_arrays_echoed_by_another_process_are_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """This process encodes, the peer decodes and re-encodes, this process decodes: equal messages,
    including a frame without faces (the 'no face' message) and non-ASCII strings."""
    no_face = FaceEmotionArray(labels=list(EMOTION_LABELS))
    no_face.header.stamp.sec = 7
    no_face.header.frame_id = "caméra_gauche"
    one_face = FaceEmotionArray(labels=list(EMOTION_LABELS))
    one_face.header.stamp.nanosec = 1
    one_face.faces.append(
        FaceEmotion(
            box=RegionOfInterest(x_offset=1, y_offset=2, width=3, height=4),
            track_id=42,
            label=FaceEmotion.NEUTRAL,
            confidence=1.0,
            probabilities=[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        )
    )
    with RosDomain(monkeypatch) as domain:
        peer = BackgroundProcess.python(
            PEER, "echo", "emotion_msgs/msg/FaceEmotionArray", "to_peer", "from_peer"
        )
        with peer:
            for sent in (no_face, one_face):
                echoed = receive_first(
                    domain,
                    FaceEmotionArray,
                    "from_peer",
                    RELIABLE,
                    peer,
                    publish=(FaceEmotionArray, "to_peer", sent),
                    accept=lambda msg, sent=sent: msg.header == sent.header,
                )
                assert echoed == sent
