"""Tracks: ids stable while a face moves, new ids for new faces, expiry, smoothing on and off."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from emotion_recognition.core.detection import FaceDetector
from emotion_recognition.core.image import to_gray
from emotion_recognition.core.tracking import FaceTracker, TrackerSettings
from emotion_recognition.core.types import Box
from emotion_recognition.spec import NUM_EMOTIONS
from test.support.images import (
    ASTRONAUT,
    GRACE_HOPPER,
    FacePlacement,
    compose_frame,
    moving_face_sequence,
)


def one_hot(index: int, n: int = 1) -> np.ndarray:
    p = np.zeros((n, NUM_EMOTIONS), np.float32)
    p[:, index] = 1.0
    return p


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_id_is_stable_while_the_astronaut_moves_across_the_frame(detector: FaceDetector) -> None:
    tracker = FaceTracker()
    ids = []
    for i, (frame, expected) in enumerate(moving_face_sequence(n_frames=12, step=(25, 5))):
        boxes = detector.detect(to_gray(frame))
        assert len(boxes) == 1 and boxes[0].iou(expected) >= 0.5, (i, boxes, expected)
        (face,) = tracker.update(boxes, one_hot(3), timestamp_s=i / 30.0)
        ids.append(face.track_id)
    assert ids == [ids[0]] * len(ids)
    # Only one track was ever made: the next new face gets the next id.
    (newcomer,) = tracker.update([Box(10, 10, 60, 60)], one_hot(3), timestamp_s=12 / 30.0)
    assert newcomer.track_id == ids[0] + 1


def test_a_different_face_that_appears_gets_a_new_id(detector: FaceDetector) -> None:
    tracker = FaceTracker()
    astronaut_ids, hopper_ids = [], []
    for i in range(8):
        placements = [FacePlacement(ASTRONAUT, 80 + 10 * i, 150, 110)]
        if i >= 4:  # Grace Hopper walks in on frame 4
            placements.append(FacePlacement(GRACE_HOPPER, 420 - 10 * (i - 4), 140, 110))
        frame, expected = compose_frame(640, 480, placements, background="brick")
        boxes = detector.detect(to_gray(frame))
        faces = tracker.update(boxes, one_hot(6, len(boxes)), timestamp_s=i * 0.05)
        by_place = {min(range(len(expected)), key=lambda k: -f.box.iou(expected[k])): f for f in faces}
        assert len(faces) == len(expected)
        astronaut_ids.append(by_place[0].track_id)
        if i >= 4:
            hopper_ids.append(by_place[1].track_id)
    assert set(astronaut_ids) == {astronaut_ids[0]}
    assert set(hopper_ids) == {hopper_ids[0]}
    assert hopper_ids[0] != astronaut_ids[0]


def test_each_of_several_faces_keeps_its_own_track() -> None:
    tracker = FaceTracker()
    left, right = Box(100, 100, 80, 80), Box(400, 100, 80, 80)
    first = tracker.update([left, right], one_hot(0, 2), 0.0)
    # Next frame the detector reports them in the other order and slightly moved.
    second = tracker.update([Box(405, 104, 80, 80), Box(96, 102, 80, 80)], one_hot(0, 2), 0.1)
    assert [f.track_id for f in second] == [first[1].track_id, first[0].track_id]


def test_a_track_expires_after_max_age() -> None:
    tracker = FaceTracker(TrackerSettings(max_age_s=0.5))
    box = Box(100, 100, 80, 80)
    (a,) = tracker.update([box], one_hot(3), 0.0)
    assert tracker.update([], one_hot(3, 0), 0.3) == []
    (b,) = tracker.update([box], one_hot(3), 0.45)  # unseen for 0.45 s: same track
    assert b.track_id == a.track_id
    tracker.update([], one_hot(3, 0), 0.9)
    (c,) = tracker.update([box], one_hot(3), 0.94)  # unseen for 0.49 s: same track
    assert c.track_id == a.track_id
    tracker.update([], one_hot(3, 0), 1.0)
    (d,) = tracker.update([box], one_hot(3), 1.45)  # unseen for 0.51 s: gone, a new track
    assert d.track_id != a.track_id


def test_ids_are_never_reused() -> None:
    tracker = FaceTracker(TrackerSettings(max_age_s=0.1))
    seen = []
    for i in range(5):
        (face,) = tracker.update([Box(10 + 200 * (i % 2), 10, 50, 50)], one_hot(0), float(i))
        seen.append(face.track_id)
    tracker.reset()
    (face,) = tracker.update([Box(10, 10, 50, 50)], one_hot(0), 10.0)
    seen.append(face.track_id)
    assert len(set(seen)) == len(seen)


def test_time_running_backwards_starts_over_with_new_ids() -> None:
    tracker = FaceTracker()
    box = Box(100, 100, 80, 80)
    (a,) = tracker.update([box], one_hot(3), 100.0)
    (b,) = tracker.update([box], one_hot(3), 5.0)  # e.g. a bag played again from the start
    assert b.track_id != a.track_id


def test_smoothing_off_reports_this_frames_probabilities() -> None:
    tracker = FaceTracker(TrackerSettings(smoothing=0.0))
    box = Box(100, 100, 80, 80)
    tracker.update([box], one_hot(3), 0.0)
    (face,) = tracker.update([box], one_hot(4), 0.1)
    np.testing.assert_array_equal(face.probabilities, one_hot(4)[0])
    np.testing.assert_array_equal(face.raw_probabilities, one_hot(4)[0])
    assert face.label == "sad"


def test_smoothing_on_averages_over_frames_so_a_one_frame_blip_does_not_flip_the_label() -> None:
    tracker = FaceTracker(TrackerSettings(smoothing=0.7))
    box = Box(100, 100, 80, 80)
    (first,) = tracker.update([box], one_hot(3), 0.0)
    np.testing.assert_array_equal(first.probabilities, one_hot(3)[0])  # a new track starts from its frame
    (face,) = tracker.update([box], one_hot(4), 0.1)
    np.testing.assert_allclose(face.probabilities, 0.7 * one_hot(3)[0] + 0.3 * one_hot(4)[0], atol=1e-6)
    np.testing.assert_array_equal(face.raw_probabilities, one_hot(4)[0])
    assert face.label == "happy" and face.confidence == pytest.approx(0.7)
    for t in (0.2, 0.3, 0.4):  # a lasting change does come through
        (face,) = tracker.update([box], one_hot(4), t)
    assert face.label == "sad"


def test_settings_change_keeps_tracks() -> None:
    tracker = FaceTracker()
    box = Box(100, 100, 80, 80)
    (a,) = tracker.update([box], one_hot(0), 0.0)
    tracker.update_settings(TrackerSettings(smoothing=0.0, iou_threshold=0.5, max_age_s=2.0))
    assert tracker.settings.smoothing == 0.0
    (b,) = tracker.update([box], one_hot(1), 0.1)
    assert b.track_id == a.track_id and b.label == "disgust"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"iou_threshold": 0.0}, "iou_threshold"),
        ({"iou_threshold": 1.5}, "iou_threshold"),
        ({"max_age_s": 0.0}, "max_age_s"),
        ({"max_age_s": float("inf")}, "max_age_s"),
        ({"smoothing": 1.0}, "smoothing"),
        ({"smoothing": -0.1}, "smoothing"),
    ],
)
def test_invalid_settings_are_refused(changes: dict, field: str) -> None:
    bad = dataclasses.replace(TrackerSettings(), **changes)
    with pytest.raises(ValueError, match=field):
        FaceTracker(bad)
    tracker = FaceTracker()
    with pytest.raises(ValueError, match=field):
        tracker.update_settings(bad)
    assert tracker.settings == TrackerSettings()


def test_mismatched_inputs_are_refused() -> None:
    tracker = FaceTracker()
    with pytest.raises(ValueError, match="shape"):
        tracker.update([Box(0, 0, 10, 10)], one_hot(0, 2), 0.0)
    with pytest.raises(ValueError, match="finite"):
        tracker.update([], one_hot(0, 0), float("nan"))
