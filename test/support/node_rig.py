"""The test side of a running emotion_recognition node: publishers for its input, inboxes for its
outputs and diagnostics, its parameter and lifecycle services (see :mod:`test.support.ros_graph`).

Frames for it stay under 0.5 MB: Fast DDS's default shared-memory segment (512 KiB) cannot carry a
larger best-effort sample from a publisher with the default configuration (README "Node"); 640x480
bgr8 frames are exercised by benchmarks/node_latency.py with config/fastdds_large_images.xml.
"""

from __future__ import annotations

import array
from typing import Any

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from emotion_msgs.msg import FaceEmotionArray
from emotion_recognition.core.types import Box
from emotion_recognition.ros.image_conversion import array_to_image_msg
from test.support.images import ASTRONAUT, face_box, photo_bgr
from test.support.models import ModelFiles
from test.support.ros_graph import GraphClient, NodeProcess, stamp_is

FRAME_ID = "camera_optical_frame"

# The astronaut photo cut to 320x320 around her face (307 KB as bgr8, 410 KB as bgra8).
_CROP = Box(70, 0, 320, 320)
FACE_FRAME = np.ascontiguousarray(
    photo_bgr(ASTRONAUT)[_CROP.y : _CROP.y + _CROP.height, _CROP.x : _CROP.x + _CROP.width]
)
FACE_FRAME.setflags(write=False)
_FACE = face_box(ASTRONAUT)
FACE_BOX = Box(_FACE.x - _CROP.x, _FACE.y - _CROP.y, _FACE.width, _FACE.height)
# A face-free real photo (coffee cup), 400x300.
FACE_FREE_FRAME = np.ascontiguousarray(photo_bgr("coffee")[50:350, 100:500])
FACE_FREE_FRAME.setflags(write=False)


def compressed_msg(bgr: np.ndarray, extension: str, header: Any = None, quality: int = 95) -> CompressedImage:
    """A ``sensor_msgs/CompressedImage`` of ``bgr`` encoded by OpenCV (".jpg" or ".png")."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if extension == ".jpg" else []
    ok, encoded = cv2.imencode(extension, bgr, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode {extension}")
    msg = CompressedImage(format="jpeg" if extension == ".jpg" else "png")
    if header is not None:
        msg.header = header
    msg.data = array.array("B", encoded.tobytes())  # array.array skips the per-byte check
    return msg


class NodeRig:
    """The running node plus the test's publishers and inboxes."""

    def __init__(
        self,
        node: NodeProcess,
        client: GraphClient,
        models: ModelFiles,
        namespace: str,
        image_topic: str,
        compressed: bool = False,
        subscribe_annotated: bool = True,
    ) -> None:
        self.node = node
        self.client = client
        self.models = models
        self.node_name = f"{namespace}/emotion_recognition"
        self.compressed = compressed
        self.images = client.publisher(CompressedImage if compressed else Image, image_topic)
        self.emotions = client.subscribe(FaceEmotionArray, f"{namespace}/emotions")
        self.detections = client.subscribe(Detection2DArray, f"{namespace}/detections")
        self.annotated = (
            client.subscribe(Image, f"{namespace}/image_annotated", depth=5) if subscribe_annotated else None
        )
        self.diagnostics = client.subscribe(DiagnosticArray, "/diagnostics")
        self._next_sec = 1000

    def wait_until_connected(self) -> None:
        """Wait for the node's image subscription and output publishers, then for a first answer."""
        self.client.wait_until(
            lambda: self.images.get_subscription_count() > 0, "the node's image subscription"
        )
        for inbox, what in (
            (self.emotions, "emotions"),
            (self.detections, "detections"),
            (self.annotated, "image_annotated"),
        ):
            if inbox is None:
                continue
            self.client.wait_until(
                lambda i=inbox: i.subscription.get_publisher_count() > 0, f"the {what} publisher"
            )
        self._handshake()

    def _handshake(self) -> None:
        """Publish a small probe until the node answers one: discovery is complete in both directions
        (a best-effort sample sent before the node's side has matched this publisher is lost)."""
        probe = np.ascontiguousarray(FACE_FREE_FRAME[:64, :64])
        for attempt in range(200):
            self.send_bgr(probe, 1, attempt)
            try:
                self.emotions.wait_for(lambda m: m.header.stamp.sec == 1, timeout_s=0.25)
                return
            except AssertionError:
                continue
        raise AssertionError(f"the node never answered a probe frame:\n{self.node.log()}")

    def stamp(self, spacing_s: int = 10) -> int:
        """A new, unique stamp (seconds), ``spacing_s`` after the previous one."""
        self._next_sec += spacing_s
        return self._next_sec

    def header(self, sec: int, nanosec: int = 0) -> Header:
        header = Header(frame_id=FRAME_ID)
        header.stamp.sec, header.stamp.nanosec = sec, nanosec
        return header

    def diagnostic_value(self, array: DiagnosticArray, key: str) -> str | None:
        """The value of ``key`` in the node's status of a /diagnostics message (None if absent)."""
        for status in array.status:
            if status.name.startswith(self.node_name + ":"):
                for kv in status.values:
                    if kv.key == key:
                        return kv.value
        return None

    def rejected_count(self, cause: str) -> int:
        """Frames refused for ``cause`` so far, as the latest /diagnostics report says (0 if none)."""
        for array_msg in reversed(self.diagnostics.messages):
            if any(s.name.startswith(self.node_name + ":") for s in array_msg.status):
                value = self.diagnostic_value(array_msg, f"rejected frames ({cause})")
                return int(value) if value is not None else 0
        return 0

    def wait_for_rejected(self, cause: str, count: int) -> None:
        """Wait until /diagnostics reports ``count`` frames refused for ``cause``: the node has taken and
        refused the bad frame (a good frame sent at once could otherwise replace it unseen)."""
        self.diagnostics.wait_for(
            lambda m: int(self.diagnostic_value(m, f"rejected frames ({cause})") or 0) >= count
        )

    def send(self, msg: Image | CompressedImage) -> None:
        self.images.publish(msg)

    def send_bgr(self, bgr: np.ndarray, sec: int, nanosec: int = 0) -> None:
        """Publish a BGR frame: as bgr8, or as a lossless PNG when the node takes compressed images."""
        header = self.header(sec, nanosec)
        if self.compressed:
            self.send(compressed_msg(bgr, ".png", header))
        else:
            self.send(array_to_image_msg(bgr, "bgr8", header))

    def answer(self, sec: int, nanosec: int = 0) -> FaceEmotionArray:
        return self.emotions.wait_for(stamp_is(sec, nanosec))

    def set_parameters(self, **values: object) -> list:
        """Set parameters through the node's set_parameters service; returns the per-parameter results."""
        request = SetParameters.Request()
        for name, value in values.items():
            name = name.replace("__", ".")
            msg = ParameterMsg(name=name)
            if isinstance(value, bool):
                msg.value = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
            elif isinstance(value, int):
                msg.value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
            elif isinstance(value, float):
                msg.value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
            else:
                msg.value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(value))
            request.parameters.append(msg)
        return self.client.call(SetParameters, f"{self.node_name}/set_parameters", request).results

    def lifecycle_state(self) -> str:
        return self.client.call(
            GetState, f"{self.node_name}/get_state", GetState.Request()
        ).current_state.label

    def change_state(self, transition_id: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        return self.client.call(ChangeState, f"{self.node_name}/change_state", request).success
