"""The whole pipeline on real photographs: faces, ids, emotions, timings and the annotated image."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from emotion_recognition.core.classifier import EmotionClassifier
from emotion_recognition.core.detection import DetectorSettings
from emotion_recognition.core.image import InvalidImageError, to_gray
from emotion_recognition.core.pipeline import EmotionPipeline
from emotion_recognition.core.preprocessing import crop_faces
from emotion_recognition.core.tracking import TrackerSettings
from emotion_recognition.spec import NUM_EMOTIONS
from test.support.images import (
    ASTRONAUT,
    FACE_FREE_NAMES,
    FACE_MATCH_IOU,
    GRACE_HOPPER,
    FacePlacement,
    compose_frame,
    face_box,
    match_faces,
    moving_face_sequence,
    multi_face_frame,
    photo_bgr,
)
from test.support.models import ModelFiles


@pytest.fixture(scope="module")
def classifier(emotion_models: ModelFiles) -> EmotionClassifier:
    return EmotionClassifier.load(emotion_models.tflite)


@pytest.fixture
def pipeline(classifier: EmotionClassifier) -> EmotionPipeline:
    return EmotionPipeline(classifier)


def test_the_astronaut_is_found_and_classified_from_an_rgb_frame(pipeline: EmotionPipeline) -> None:
    rgb = cv2.cvtColor(photo_bgr(ASTRONAUT), cv2.COLOR_BGR2RGB)
    result, annotated = pipeline.process(rgb, 1.0, channel_order="rgb")
    assert annotated is None
    assert (result.image_width, result.image_height) == (512, 512)
    (face,) = result.faces
    assert face.box.iou(face_box(ASTRONAUT)) >= FACE_MATCH_IOU
    assert face.probabilities.shape == (NUM_EMOTIONS,)
    assert face.track_id >= 1
    t = result.timings
    assert t.detect_ms > 0 and t.preprocess_ms > 0 and t.classify_ms > 0 and t.track_ms > 0
    assert t.draw_ms == 0.0


@pytest.mark.parametrize("layout", ["bgr", "rgb", "gray", "gray3d", "bgra", "uint16"])
def test_every_input_layout_gives_the_same_faces(classifier: EmotionClassifier, layout: str) -> None:
    bgr = photo_bgr(GRACE_HOPPER)
    images = {
        "bgr": (bgr, "bgr"),
        "rgb": (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "rgb"),
        "gray": (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), "bgr"),
        "gray3d": (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:, :, None], "bgr"),
        "bgra": (cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), "bgr"),
        "uint16": (bgr.astype(np.uint16) * 257, "bgr"),
    }
    image, order = images[layout]
    reference, _ = EmotionPipeline(classifier).process(bgr, 0.0)
    result, annotated = EmotionPipeline(classifier).process(image, 0.0, channel_order=order, annotate=True)
    assert [f.box for f in result.faces] == [f.box for f in reference.faces]
    np.testing.assert_allclose(result.faces[0].probabilities, reference.faces[0].probabilities, atol=1e-5)
    assert annotated is not None and annotated.shape == bgr.shape


def test_all_faces_of_a_frame_are_classified_in_one_batch(
    pipeline: EmotionPipeline, classifier: EmotionClassifier
) -> None:
    frame, expected = multi_face_frame(1280, 720, 4, background="rocket")
    result, annotated = pipeline.process(frame, 0.0, annotate=True)
    boxes = [f.box for f in result.faces]
    assert match_faces(expected, boxes) == 4 and len(boxes) == 4
    assert len({f.track_id for f in result.faces}) == 4
    direct = classifier.predict(crop_faces(to_gray(frame), boxes))
    np.testing.assert_allclose(np.stack([f.raw_probabilities for f in result.faces]), direct, atol=1e-5)
    assert annotated is not None and annotated.shape == frame.shape
    assert (annotated != frame).any() and result.timings.draw_ms > 0


@pytest.mark.parametrize("name", FACE_FREE_NAMES)
def test_face_free_photos_give_an_empty_result(pipeline: EmotionPipeline, name: str) -> None:
    result, annotated = pipeline.process(photo_bgr(name), 0.0, annotate=True)
    assert result.faces == []
    np.testing.assert_array_equal(annotated, photo_bgr(name))


def test_ids_follow_a_moving_face_and_a_newcomer_gets_a_new_one(pipeline: EmotionPipeline) -> None:
    ids = []
    for i, (frame, _) in enumerate(moving_face_sequence(n_frames=10, step=(22, 3), background="rocket")):
        result, _ = pipeline.process(frame, i / 15.0)
        assert len(result.faces) == 1
        ids.append(result.faces[0].track_id)
    assert set(ids) == {ids[0]}
    placements = [
        FacePlacement(ASTRONAUT, 120 + 22 * 10, 150 + 30, 110),
        FacePlacement(GRACE_HOPPER, 40, 140, 100),
    ]
    frame, expected = compose_frame(640, 480, placements, background="rocket")
    # A face that appears beside a known one is found by the next full scan, within
    # full_scan_interval frames.
    interval = pipeline.detector_settings.full_scan_interval
    for k in range(interval):
        result, _ = pipeline.process(frame, (11 + k) / 15.0)
        if len(result.faces) == 2:
            break
    assert len(result.faces) == 2 and result.full_scan
    by_id = {f.track_id: f for f in result.faces}
    assert ids[0] in by_id and by_id[ids[0]].box.iou(expected[0]) >= FACE_MATCH_IOU
    (newcomer,) = [f for f in result.faces if f.track_id != ids[0]]
    assert newcomer.box.iou(expected[1]) >= FACE_MATCH_IOU and newcomer.track_id > ids[0]


def test_bad_images_raise_invalid_image_error(pipeline: EmotionPipeline) -> None:
    for image in (
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((1, 1, 3), np.uint8),
        np.zeros((480, 640, 3), np.float64),
    ):
        with pytest.raises(InvalidImageError):
            pipeline.process(image, 0.0)
    # The pipeline still works afterwards.
    result, _ = pipeline.process(photo_bgr(ASTRONAUT), 1.0)
    assert len(result.faces) == 1


def test_settings_changes_apply_and_invalid_ones_are_refused(pipeline: EmotionPipeline) -> None:
    frame, _ = multi_face_frame(640, 480, 4)
    assert len(pipeline.process(frame, 0.0)[0].faces) == 4
    pipeline.update_detector_settings(DetectorSettings(max_faces=2))
    assert len(pipeline.process(frame, 0.1)[0].faces) == 2
    with pytest.raises(ValueError, match="scale_factor"):
        pipeline.update_detector_settings(DetectorSettings(scale_factor=0.5))
    assert pipeline.detector_settings.max_faces == 2
    pipeline.update_tracker_settings(TrackerSettings(smoothing=0.0))
    result, _ = pipeline.process(frame, 0.2)
    for f in result.faces:
        np.testing.assert_array_equal(f.probabilities, f.raw_probabilities)
    with pytest.raises(ValueError, match="smoothing"):
        pipeline.update_tracker_settings(TrackerSettings(smoothing=1.0))
    assert pipeline.tracker_settings.smoothing == 0.0


def test_settings_can_change_from_another_thread_while_frames_are_processed(
    pipeline: EmotionPipeline,
) -> None:
    frame, expected = multi_face_frame(640, 480, 4)
    stop = threading.Event()
    errors: list[BaseException] = []

    def toggle() -> None:
        try:
            k = 0
            while not stop.is_set():
                k += 1
                pipeline.update_detector_settings(DetectorSettings(max_faces=2 if k % 2 else 10))
                pipeline.update_tracker_settings(TrackerSettings(smoothing=0.3 if k % 2 else 0.0))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    thread = threading.Thread(target=toggle)
    thread.start()
    try:
        counts = set()
        for i in range(15):
            result, _ = pipeline.process(frame, i * 0.03)
            counts.add(len(result.faces))
            assert match_faces(expected, [f.box for f in result.faces]) == len(result.faces)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert counts <= {2, 4}


def test_reset_tracking_gives_new_ids(pipeline: EmotionPipeline) -> None:
    (first,) = pipeline.process(photo_bgr(ASTRONAUT), 0.0)[0].faces
    pipeline.reset_tracking()
    (second,) = pipeline.process(photo_bgr(ASTRONAUT), 0.1)[0].faces
    assert second.track_id != first.track_id


def test_between_full_scans_only_known_faces_are_followed_and_found_alike(
    classifier: EmotionClassifier,
) -> None:
    sequence = moving_face_sequence(n_frames=9, step=(18, 4), background="brick")
    tracked = EmotionPipeline(classifier, DetectorSettings(full_scan_interval=3))
    every = EmotionPipeline(classifier, DetectorSettings(full_scan_interval=1))
    scans, ids = [], []
    for i, (frame, expected) in enumerate(sequence):
        a, _ = tracked.process(frame, i / 30.0)
        b, _ = every.process(frame, i / 30.0)
        scans.append(a.full_scan)
        ids.append(a.faces[0].track_id if a.faces else None)
        assert b.full_scan
        assert len(a.faces) == len(b.faces) == 1
        assert a.faces[0].box.iou(expected) >= FACE_MATCH_IOU
        assert a.faces[0].box.iou(b.faces[0].box) >= 0.7
    assert scans == [True, False, False] * 3
    assert set(ids) == {ids[0]}


def test_a_scene_change_is_scanned_whole_at_once(pipeline: EmotionPipeline) -> None:
    result, _ = pipeline.process(photo_bgr(ASTRONAUT), 0.0)
    assert result.full_scan and len(result.faces) == 1
    # Same size, the face elsewhere: the known face is not found again, so the frame is scanned whole.
    frame, expected = compose_frame(
        512, 512, [FacePlacement(GRACE_HOPPER, 300, 300, 100)], background="rocket"
    )
    result, _ = pipeline.process(frame, 0.1)
    assert result.full_scan
    assert match_faces(expected, [f.box for f in result.faces]) == 1
    # A face-free frame right after: nothing reported.
    result, _ = pipeline.process(photo_bgr("coffee")[:512, :512].copy(), 0.2)
    assert result.faces == [] and result.full_scan
