"""A face at the detector's size floor is reported in every frame, not every other one: the scan
around a known face measures it a little smaller than the full scan did, and such a measure must
bring a full scan, not an empty list."""

from __future__ import annotations

import cv2

from emotion_recognition.core.classifier import EmotionClassifier
from emotion_recognition.core.detection import DetectorSettings, FaceDetector
from emotion_recognition.core.pipeline import EmotionPipeline
from test.support.images import ASTRONAUT, photo_bgr
from test.support.models import ModelFiles

FRAMES = 30


def _floor_frame():
    """The 512x512 astronaut photo resized to 256x256: her face measures about the default
    min_face_size (60 px) there."""
    return cv2.resize(photo_bgr(ASTRONAUT), (256, 256), interpolation=cv2.INTER_AREA)


def test_the_frame_really_is_at_the_size_floor() -> None:
    settings = DetectorSettings()
    gray = cv2.cvtColor(_floor_frame(), cv2.COLOR_BGR2GRAY)
    boxes = FaceDetector(settings).detect(gray)
    assert len(boxes) == 1
    assert settings.min_face_size - 2 <= boxes[0].width <= settings.min_face_size + 10, boxes


def test_a_face_at_the_size_floor_is_found_in_every_identical_frame(emotion_models: ModelFiles) -> None:
    pipeline = EmotionPipeline(EmotionClassifier.load(emotion_models.tflite))
    frame = _floor_frame()
    counts = [len(pipeline.process(frame, index / 30.0)[0].faces) for index in range(FRAMES)]
    assert counts == [1] * FRAMES, counts


def test_a_face_at_the_floor_keeps_its_track_id(emotion_models: ModelFiles) -> None:
    pipeline = EmotionPipeline(EmotionClassifier.load(emotion_models.tflite))
    frame = _floor_frame()
    ids = {pipeline.process(frame, index / 30.0)[0].faces[0].track_id for index in range(FRAMES)}
    assert len(ids) == 1
