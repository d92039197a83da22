"""The built-in sample: real photographs, deterministic, with the faces where the frames say they are."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from emotion_recognition.core.detection import DetectorSettings, FaceDetector
from emotion_recognition.core.image import to_gray
from emotion_recognition.ros.messages import stamp_ns
from emotion_recognition.tools.sample import (
    SAMPLE_FPS,
    SAMPLE_FRAME_COUNT,
    SAMPLE_HEIGHT,
    SAMPLE_START_NS,
    SAMPLE_WIDTH,
    sample_frames,
    write_sample_bag,
)
from test.support.bags import IMAGE_TOPIC, read_bag

FOUND_IOU = 0.4


def _digest(frames) -> str:
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(frame.image.tobytes())
        digest.update(str((frame.stamp_ns, frame.face_boxes)).encode())
    return digest.hexdigest()


def test_sample_is_deterministic_and_camera_like() -> None:
    frames = list(sample_frames())
    assert len(frames) == SAMPLE_FRAME_COUNT
    assert _digest(frames) == _digest(sample_frames())
    assert all(
        f.image.shape == (SAMPLE_HEIGHT, SAMPLE_WIDTH, 3) and f.image.dtype == np.uint8 for f in frames
    )
    period = round(1e9 / SAMPLE_FPS)
    assert [f.stamp_ns for f in frames] == [SAMPLE_START_NS + i * period for i in range(len(frames))]
    counts = [len(f.face_boxes) for f in frames]
    assert {0, 1, 2} <= set(counts), "one face, two faces and face-free frames"
    # Faces move and change size from frame to frame.
    single = [f.face_boxes[0] for f in frames if len(f.face_boxes) == 1]
    assert len({(b.x, b.y) for b in single}) > len(single) // 2
    assert max(b.width for b in single) > 1.5 * min(b.width for b in single)
    # Consecutive frames differ (a moving scene, not a still picture).
    assert all(not np.array_equal(a.image, b.image) for a, b in zip(frames, frames[1:]))


def test_default_detector_finds_the_pasted_faces_and_nothing_else() -> None:
    detector = FaceDetector(DetectorSettings())
    expected = found = false_positives = 0
    for frame in sample_frames():
        boxes = detector.detect(to_gray(frame.image, "bgr"))
        expected += len(frame.face_boxes)
        found += sum(any(face.iou(b) >= FOUND_IOU for b in boxes) for face in frame.face_boxes)
        false_positives += sum(not any(face.iou(b) >= FOUND_IOU for face in frame.face_boxes) for b in boxes)
    assert found >= 0.95 * expected, f"{found} of {expected}"
    assert false_positives == 0


def test_longer_sequences_repeat_with_increasing_stamps() -> None:
    frames = list(sample_frames(SAMPLE_FRAME_COUNT + 5))
    assert np.array_equal(frames[SAMPLE_FRAME_COUNT].image, frames[0].image)
    stamps = [f.stamp_ns for f in frames]
    assert stamps == sorted(set(stamps))
    with pytest.raises(ValueError):
        list(sample_frames(-1))


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_sample_bag_reopens_with_every_frame(tmp_path: Path, storage: str) -> None:
    bag = write_sample_bag(tmp_path / "sample", storage=storage, count=12)
    messages = read_bag(bag)[IMAGE_TOPIC]
    frames = list(sample_frames(12))
    assert [m.timestamp for m in messages] == [f.stamp_ns for f in frames]
    assert [stamp_ns(m.msg.header) for m in messages] == [f.stamp_ns for f in frames]
    first = messages[0].msg
    assert (first.encoding, first.height, first.width, first.step) == ("bgr8", 480, 640, 1920)
    assert np.array_equal(first.data.reshape(480, 640, 3), frames[0].image)
