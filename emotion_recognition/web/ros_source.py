"""``--source ros``: show what a running emotion_recognition node publishes.

Subscribes to the node's ``emotions`` (always; small messages, turned into JSON only while a client
watches) and ``image_annotated`` (only while a stream client watches: the node draws that image only
while someone subscribes, so with nobody watching neither side decodes, draws or encodes an image).
Topic names are relative, so ``--ros-args -r __ns:=/front_camera`` or ``-r emotions:=/x/emotions``
remap them as for any ROS node. This is the only module of the web server that imports rclpy.
"""

from __future__ import annotations

import threading
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image

from emotion_msgs.msg import FaceEmotionArray
from emotion_recognition.core.image import InvalidImageError, to_bgr
from emotion_recognition.ros.image_conversion import (
    ORDER_RGB,
    ORDER_RGBA,
    ImageConversionError,
    image_msg_to_array,
)
from emotion_recognition.web.hub import STREAM, FrameHub
from emotion_recognition.web.results import emotions_msg_json

NODE_NAME = "emotion_web"
EMOTIONS_TOPIC = "emotions"
ANNOTATED_TOPIC = "image_annotated"
# The node publishes both reliably. One pending image is enough (the newest is what a viewer wants);
# reliable, because a 640x480 image travels in UDP fragments that best effort loses (README).
ANNOTATED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
EMOTIONS_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)


class RosSource:
    """A node of its own (``emotion_web``) in a context of its own, spun in a background thread."""

    def __init__(self, hub: FrameHub, ros_args: list[str]) -> None:
        self.hub = hub
        self._context = Context()
        rclpy.init(
            args=["emotion_web", "--ros-args", *ros_args],
            context=self._context,
            signal_handler_options=SignalHandlerOptions.NO,
        )
        self.node = rclpy.create_node(NODE_NAME, context=self._context)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)
        self._image_size: tuple[int, int] | None = None
        self._image_sub: Any = None
        self.node.create_subscription(FaceEmotionArray, EMOTIONS_TOPIC, self._on_emotions, EMOTIONS_QOS)
        # Watchers change in the server's threads; the subscription is made or removed in the executor's.
        self._guard = self.node.create_guard_condition(self._sync_image_subscription)
        self._stopped = False
        hub.add_listener(self._on_watchers_changed)
        self._thread = threading.Thread(target=self._spin, name="emotion_web ros", daemon=True)
        self.description = (
            f"ROS topics {self.node.resolve_topic_name(EMOTIONS_TOPIC)} and "
            f"{self.node.resolve_topic_name(ANNOTATED_TOPIC)}"
        )

    def start(self) -> None:
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def _on_watchers_changed(self) -> None:
        """Wake the executor to (un)subscribe; a client leaving during shutdown changes nothing."""
        if not self._stopped:
            self._guard.trigger()

    def _sync_image_subscription(self) -> None:
        """Subscribe to the annotated image while a stream client watches, unsubscribe otherwise."""
        wanted = self.hub.watchers(STREAM) > 0
        if wanted and self._image_sub is None:
            self._image_sub = self.node.create_subscription(
                Image, ANNOTATED_TOPIC, self._on_image, ANNOTATED_QOS
            )
        elif not wanted and self._image_sub is not None:
            self.node.destroy_subscription(self._image_sub)
            self._image_sub = None

    def _on_emotions(self, msg: FaceEmotionArray) -> None:
        if self.hub.watchers() > 0:
            self.hub.publish_result(emotions_msg_json(msg, self._image_size))

    def _on_image(self, msg: Image) -> None:
        try:
            array, order = image_msg_to_array(msg)
            image = to_bgr(array, "rgb" if order in (ORDER_RGB, ORDER_RGBA) else "bgr")
        except (ImageConversionError, InvalidImageError) as exc:
            self.node.get_logger().warning(f"skipping an annotated image: {exc}", throttle_duration_sec=10.0)
            return
        self._image_size = (image.shape[1], image.shape[0])
        self.hub.publish_image(image)  # a view keeps the message's buffer alive: no copy

    def stop(self) -> None:
        """Ask the executor to stop (returns at once; :meth:`join` waits and cleans up)."""
        self._stopped = True
        self._executor.shutdown(timeout_sec=0.0)

    def join(self, timeout_s: float = 5.0) -> None:
        self._thread.join(timeout_s)
        self.node.destroy_node()
        self._context.try_shutdown()
