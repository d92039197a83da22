"""rosbag2 helpers for the bag tool tests: bags of real photographs written with ``rosbags`` (as
``ros2 bag record`` would store a camera), and a reader that trusts only what the bag itself holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emotion_recognition.core.types import Box
from emotion_recognition.tools import bagio
from emotion_recognition.tools.sample import SAMPLE_FRAME_ID, sample_frames

# Every third frame of the built-in sample: one face, two faces and face-free frames, 20 in all.
SAMPLE_STRIDE = 3
IMAGE_TOPIC = "/camera/image_raw"


@dataclass(frozen=True)
class BagFrame:
    stamp_ns: int
    face_boxes: tuple[Box, ...]


def write_photo_bag(path: Path, storage: str, compressed: bool, topic: str = IMAGE_TOPIC) -> list[BagFrame]:
    """Write every :data:`SAMPLE_STRIDE`-th frame of the built-in sample (real public-domain photos) as a
    bag with one image topic; return the frames' stamps and pasted face boxes."""
    frames = list(sample_frames())[::SAMPLE_STRIDE]
    bagio.write_image_bag(
        path,
        ((f.image, f.stamp_ns) for f in frames),
        topic=topic,
        storage=storage,
        compressed=compressed,
        frame_id=SAMPLE_FRAME_ID,
    )
    return [BagFrame(f.stamp_ns, f.face_boxes) for f in frames]


@dataclass(frozen=True)
class StoredMessage:
    timestamp: int
    msgtype: str
    raw: bytes
    msg: object  # deserialized by rosbags from the definition stored in the bag


def read_bag(path: Path) -> dict[str, list[StoredMessage]]:
    """Every message of a bag by topic, deserialized with a typestore built only from the message
    definitions stored in the bag (what a reader without our packages would have)."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    topics: dict[str, list[StoredMessage]] = {}
    with AnyReader([path], default_typestore=get_typestore(Stores.EMPTY)) as reader:
        for connection, timestamp, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            topics.setdefault(connection.topic, []).append(
                StoredMessage(timestamp, connection.msgtype, bytes(raw), msg)
            )
    return topics
