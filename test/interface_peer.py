"""The other process of the interface tests: a real rclpy node in its own process.

    python test/interface_peer.py publish-face-emotions TOPIC SPEC_JSON
        Build an emotion_msgs/FaceEmotionArray from SPEC_JSON (the layout of ``face_emotion_spec``
        in test_emotion_msgs_dds.py) and publish it (reliable, transient local) until stopped.
    python test/interface_peer.py echo PACKAGE/msg/TYPE IN_TOPIC OUT_TOPIC
        Republish every message received on IN_TOPIC unchanged on OUT_TOPIC (a decode and an
        encode in a second process), until stopped.

Prints "ready" once its publisher and subscription exist. Stops cleanly on SIGINT.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

RELIABLE_LATCHED = QoSProfile(
    depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def face_emotion_array_from_spec(spec: dict[str, Any]) -> Any:
    """Return the emotion_msgs/FaceEmotionArray described by ``spec`` (plain JSON values)."""
    from emotion_msgs.msg import FaceEmotion, FaceEmotionArray

    message = FaceEmotionArray()
    message.header.stamp.sec = spec["stamp_sec"]
    message.header.stamp.nanosec = spec["stamp_nanosec"]
    message.header.frame_id = spec["frame_id"]
    # The label order is taken from this process's copy of the constants, so the receiver checks
    # that both sides agree on them.
    message.labels = [getattr(FaceEmotion, name) for name in spec["label_constants"]]
    for face_spec in spec["faces"]:
        face = FaceEmotion()
        face.box.x_offset, face.box.y_offset, face.box.width, face.box.height = face_spec["box"]
        face.box.do_rectify = face_spec["do_rectify"]
        face.track_id = face_spec["track_id"]
        face.label = getattr(FaceEmotion, face_spec["label_constant"])
        face.confidence = face_spec["confidence"]
        face.probabilities = face_spec["probabilities"]
        message.faces.append(face)
    return message


def message_type(name: str) -> type:
    """Import a message class from its ROS name, e.g. ``vision_msgs/msg/Detection2DArray``."""
    package, kind, type_name = name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), type_name)


def main(argv: list[str]) -> int:
    """Run the peer given by ``argv`` (see the module docstring)."""
    rclpy.init()
    node = Node("interface_peer")
    command = argv[0]
    if command == "publish-face-emotions":
        topic, spec_json = argv[1], argv[2]
        from emotion_msgs.msg import FaceEmotionArray

        publisher = node.create_publisher(FaceEmotionArray, topic, RELIABLE_LATCHED)
        publisher.publish(face_emotion_array_from_spec(json.loads(spec_json)))
    elif command == "echo":
        msg_class = message_type(argv[1])
        publisher = node.create_publisher(msg_class, argv[3], RELIABLE)
        node.create_subscription(msg_class, argv[2], publisher.publish, RELIABLE)
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    print("ready", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
