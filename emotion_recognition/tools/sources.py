"""Image sources for feeding a node: the built-in sample, a rosbag2, a video file or a camera, each as
a stream of ``(timestamp ns, serialized sensor_msgs message)`` ready to publish."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# Frames taken from a camera when no frame count is given.
DEFAULT_CAMERA_FRAMES = 150
# Frame rate assumed for a video file that does not say.
FALLBACK_FPS = 30.0


class SourceError(RuntimeError):
    """The source cannot be opened (the message says why)."""


@dataclass
class Source:
    """Where images come from: ``messages`` yields ``(timestamp ns, serialized message)``."""

    description: str
    compressed: bool
    messages: Iterator[tuple[int, bytes]]
    recorded_timing: bool = True  # False for a live camera: it paces itself


def frames_as_messages(
    frames: Iterator[tuple[np.ndarray, int]], frame_id: str
) -> Iterator[tuple[int, bytes]]:
    """Serialize ``(bgr, stamp ns)`` frames as ``sensor_msgs/Image`` (bgr8) with that stamp."""
    from builtin_interfaces.msg import Time
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from emotion_recognition.ros.image_conversion import bgr_array_to_image_msg
    from emotion_recognition.ros.messages import stamp_parts

    for image, stamp in frames:
        sec, nanosec = stamp_parts(stamp)
        header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)
        yield stamp, serialize_message(bgr_array_to_image_msg(image, header))


def capture_frames(
    capture: cv2.VideoCapture, live: bool, max_frames: int | None
) -> Iterator[tuple[np.ndarray, int]]:
    """Frames of an open ``cv2.VideoCapture``: stamped now for a camera, from the file's timing else."""
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    period_ns = int(1e9 / (fps if fps > 0 else FALLBACK_FPS))
    start_ns = time.time_ns()
    try:
        for count in itertools.count():
            if max_frames is not None and count >= max_frames:
                break
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            yield frame, (time.time_ns() if live else start_ns + count * period_ns)
    finally:
        capture.release()


def capture_source(video: Path | None = None, camera: int | None = None, frames: int | None = None) -> Source:
    """A video file or a camera device (``camera``: N of /dev/videoN) as a source.

    Raises:
        SourceError: OpenCV cannot open it.
    """
    live = camera is not None
    capture = cv2.VideoCapture(camera if live else str(video))
    if not capture.isOpened():
        raise SourceError(
            f"cannot open {f'camera device {camera}' if live else f'video file {video}'} with OpenCV"
        )
    max_frames = frames if frames is not None else (DEFAULT_CAMERA_FRAMES if live else None)
    description = f"camera {camera}" if live else f"video {video}"
    messages = frames_as_messages(capture_frames(capture, live, max_frames), "camera")
    return Source(description, False, messages, recorded_timing=not live)


def bag_source(bag: Path, topic: str | None = None, frames: int | None = None) -> Source:
    """The image messages of one topic of a rosbag2, as recorded.

    Raises:
        SourceError: the bag cannot be read or has no such image topic.
    """
    from emotion_recognition.tools import bag_replay, bagio

    try:
        image_topic, messages = bag_replay.bag_messages(bag, topic)
    except bagio.BagError as exc:
        raise SourceError(str(exc)) from None
    return Source(
        f"bag {bag} (topic {image_topic.name}, {image_topic.msgtype})",
        image_topic.compressed,
        itertools.islice(messages, frames),
    )


def sample_source(workdir: Path, frames: int | None = None) -> Source:
    """The built-in sample (:mod:`emotion_recognition.tools.sample`), written as a bag in ``workdir``."""
    from emotion_recognition.tools import bag_replay
    from emotion_recognition.tools.sample import SAMPLE_FRAME_COUNT, write_sample_bag

    _, messages = bag_replay.bag_messages(write_sample_bag(workdir / "sample_bag", count=frames))
    count = frames if frames is not None else SAMPLE_FRAME_COUNT
    return Source(f"built-in sample ({count} frames of real public-domain photos, 640x480)", False, messages)
