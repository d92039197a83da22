"""A client of a running emotion_recognition node over DDS: publishes images to it, collects what it
publishes (``emotions``, ``image_annotated``) keyed by the image stamp, and implements the lockstep
protocol (send an image, wait for its answer, send it again if discovery lost it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emotion_recognition.ros.messages import stamp_ns
from emotion_recognition.tools.process import LoggedProcess

# Seconds to wait for the node's answer to one image in lockstep mode before sending the next.
ANSWER_TIMEOUT_S = 10.0
# Seconds without an answer after which an image is sent again (lockstep mode).
RESEND_AFTER_S = 2.0
# Pause after discovery so that both sides have matched before the first image.
DISCOVERY_SETTLE_S = 0.3


class NodeGoneError(RuntimeError):
    """The node process exited or never came up (the message holds the end of its log)."""


@dataclass
class Collected:
    """What the client received from the node, keyed by the image stamp (ns)."""

    emotions: dict[int, Any] = field(default_factory=dict)
    annotated: dict[int, np.ndarray] = field(default_factory=dict)
    condition: threading.Condition = field(default_factory=threading.Condition)


class NodeClient:
    """A node in this process (rclpy must be initialised) in the node's namespace: an image publisher
    to its input and subscriptions to its outputs, spun in a background thread."""

    def __init__(self, namespace: str, image_msgtype: type, node: LoggedProcess) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from emotion_msgs.msg import FaceEmotionArray
        from emotion_recognition.tools.bag_replay import publisher_qos

        self.collected = Collected()
        self.namespace = namespace
        self.process = node
        self.node = Node("emotion_demo", namespace=namespace)
        reliable = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE
        )
        self.node.create_subscription(FaceEmotionArray, "emotions", self._on_emotions, reliable)
        self.node.create_subscription(Image, "image_annotated", self._on_annotated, reliable)
        topic = "image/compressed" if image_msgtype.__name__ == "CompressedImage" else "image"
        self.publisher = self.node.create_publisher(image_msgtype, topic, publisher_qos())
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="node_client_spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def _on_emotions(self, msg: Any) -> None:
        with self.collected.condition:
            self.collected.emotions[stamp_ns(msg.header)] = msg
            self.collected.condition.notify_all()

    def _on_annotated(self, msg: Any) -> None:
        from emotion_recognition.ros.image_conversion import image_msg_to_array

        image, _ = image_msg_to_array(msg)
        with self.collected.condition:
            self.collected.annotated[stamp_ns(msg.header)] = np.array(image, copy=True)
            self.collected.condition.notify_all()

    def check_node(self) -> None:
        """Raise :class:`NodeGoneError` when the node process has exited."""
        if not self.process.alive:
            raise NodeGoneError(
                f"the node exited with status {self.process.returncode}:\n{self.process.log_tail()}"
            )

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``predicate()`` (called under the lock of :attr:`collected`) holds."""
        with self.collected.condition:
            return self.collected.condition.wait_for(predicate, timeout_s)

    def wait_until_connected(self, timeout_s: float) -> None:
        """Wait until the node subscribes to the images and publishes its outputs.

        Raises:
            NodeGoneError: the node exited or did not subscribe within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while self.publisher.get_subscription_count() < 1:
            self.check_node()
            if time.monotonic() > deadline:
                raise NodeGoneError(
                    f"the node did not subscribe within {timeout_s:.0f} s:\n{self.process.log_tail()}"
                )
            time.sleep(0.1)
        for topic in ("emotions", "image_annotated"):
            while self.node.count_publishers(f"{self.namespace}/{topic}") < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(DISCOVERY_SETTLE_S)

    def send_and_wait(self, raw: bytes, stamp: int) -> bool:
        """Lockstep: publish the serialized image stamped ``stamp`` and wait for its answer, sending it
        again every :data:`RESEND_AFTER_S` (an image published while DDS discovery is still settling can
        be lost); ``False`` when no answer came within :data:`ANSWER_TIMEOUT_S`.

        Raises:
            NodeGoneError: the node exited.
        """
        self.publisher.publish(raw)
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while True:
            wait = min(RESEND_AFTER_S, deadline - time.monotonic())
            if self.wait_for(lambda: stamp in self.collected.emotions, max(wait, 0.0)):
                return True
            self.check_node()
            if time.monotonic() >= deadline:
                return False
            self.publisher.publish(raw)

    def drain(self, sent: list[int], timeout_s: float) -> None:
        """Wait for the answer to the last image and the annotated image of every answered one."""
        emotions, annotated = self.collected.emotions, self.collected.annotated
        self.wait_for(
            lambda: (
                all(s in emotions for s in sent[-1:]) and all(s in annotated for s in sent if s in emotions)
            ),
            timeout_s,
        )

    def close(self) -> None:
        """Stop spinning and destroy the client's node."""
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
