"""Conversion of the core's :class:`FrameResult` into the messages the node publishes, and of header
stamps to and from integer nanoseconds.

Both message builders copy the source image's header into the output (stamp and frame_id), never
``now()``, so that subscribers can match results to images. Labels come from
:data:`emotion_recognition.spec.EMOTION_LABELS`, the same source as ``FaceEmotion.label`` of the core.
"""

from __future__ import annotations

from typing import Any

from emotion_recognition.core.types import Box, FrameResult
from emotion_recognition.spec import EMOTION_LABELS

NS_PER_S = 1_000_000_000


def stamp_ns(header: Any) -> int:
    """The stamp of a ``std_msgs/Header`` (an rclpy or a rosbags message) in integer nanoseconds."""
    return int(header.stamp.sec) * NS_PER_S + int(header.stamp.nanosec)


def stamp_parts(nanoseconds: int) -> tuple[int, int]:
    """``(sec, nanosec)`` of a time in integer nanoseconds, for a ``builtin_interfaces/Time``."""
    sec, nanosec = divmod(int(nanoseconds), NS_PER_S)
    return sec, nanosec


def _clamped(box: Box, result: FrameResult) -> Box:
    if result.image_width > 0 and result.image_height > 0:
        return box.clamped(result.image_width, result.image_height)
    return box


def to_face_emotion_array(result: FrameResult, header: Any) -> Any:
    """Build an ``emotion_msgs/FaceEmotionArray`` (one entry per face, possibly none) from ``result``;
    its ``labels`` (the order of every probability vector) are :data:`EMOTION_LABELS`."""
    from sensor_msgs.msg import RegionOfInterest

    from emotion_msgs.msg import FaceEmotion, FaceEmotionArray

    msg = FaceEmotionArray()
    msg.header = header
    msg.labels = list(EMOTION_LABELS)
    faces = []
    for face in result.faces:
        box = _clamped(face.box, result)
        entry = FaceEmotion()
        entry.box = RegionOfInterest(
            x_offset=int(box.x),
            y_offset=int(box.y),
            width=int(box.width),
            height=int(box.height),
            do_rectify=False,
        )
        entry.track_id = int(face.track_id)
        entry.label = face.label
        entry.confidence = float(face.confidence)
        entry.probabilities = [float(p) for p in face.probabilities]
        faces.append(entry)
    msg.faces = faces
    return msg


def to_detection_array(result: FrameResult, header: Any) -> Any:
    """Build a ``vision_msgs/Detection2DArray`` from ``result``.

    Per face: the box (centre and size in pixels), ``id`` = the track id as a string, and one
    ``ObjectHypothesisWithPose`` per emotion (``class_id`` = label, ``score`` = probability) in label
    order. The pose of each hypothesis is left at its default (the emotion has no pose).
    """
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    msg = Detection2DArray()
    msg.header = header
    detections = []
    for face in result.faces:
        box = _clamped(face.box, result)
        detection = Detection2D()
        detection.header = header
        detection.id = str(int(face.track_id))
        center_x, center_y = box.center
        detection.bbox.center.position.x = float(center_x)
        detection.bbox.center.position.y = float(center_y)
        detection.bbox.center.theta = 0.0
        detection.bbox.size_x = float(box.width)
        detection.bbox.size_y = float(box.height)
        hypotheses = []
        for label, probability in zip(EMOTION_LABELS, face.probabilities):
            hypothesis = ObjectHypothesisWithPose()
            hypothesis.hypothesis.class_id = str(label)
            hypothesis.hypothesis.score = float(probability)
            hypotheses.append(hypothesis)
        detection.results = hypotheses
        detections.append(detection)
    msg.detections = detections
    return msg
