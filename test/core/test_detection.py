"""Face detection on real photographs: faces are found where they are, and nowhere else."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from emotion_recognition.core.detection import DetectorSettings, FaceDetector
from emotion_recognition.core.image import to_gray
from test.support.images import (
    ASTRONAUT,
    BACKGROUND_NAMES,
    FACE_FREE_NAMES,
    FACE_MATCH_IOU,
    FACE_NAMES,
    GRACE_HOPPER,
    FacePlacement,
    background_bgr,
    compose_frame,
    face_box,
    match_faces,
    moving_face_sequence,
    multi_face_frame,
    photo_bgr,
    photo_gray,
)

# The seed's detector: full resolution, scale factor 1.1, 5 neighbours, faces from 30 px.
SEED_SETTINGS = DetectorSettings(
    scale_factor=1.1, min_neighbors=5, min_face_size=30, detection_width=0, equalize_histogram=False
)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.mark.parametrize("name", FACE_NAMES)
@pytest.mark.parametrize("settings", [DetectorSettings(), SEED_SETTINGS], ids=["default", "seed"])
def test_the_face_is_found_where_it_is(name: str, settings: DetectorSettings) -> None:
    boxes = FaceDetector(settings).detect(photo_gray(name))
    assert len(boxes) == 1, boxes
    assert boxes[0].iou(face_box(name)) >= FACE_MATCH_IOU, (boxes[0], face_box(name))


def test_astronaut_box_is_close_to_the_hand_checked_box(detector: FaceDetector) -> None:
    (box,) = detector.detect(photo_gray(ASTRONAUT))
    expected = face_box(ASTRONAUT)
    assert box.iou(expected) >= 0.7
    cx, cy = box.center
    ex, ey = expected.center
    assert abs(cx - ex) < 0.15 * expected.width and abs(cy - ey) < 0.2 * expected.height


@pytest.mark.parametrize("name", FACE_FREE_NAMES)
@pytest.mark.parametrize("settings", [DetectorSettings(), SEED_SETTINGS], ids=["default", "seed"])
def test_no_face_on_face_free_photos(name: str, settings: DetectorSettings) -> None:
    assert FaceDetector(settings).detect(photo_gray(name)) == []


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)])
@pytest.mark.parametrize("n_faces", [1, 2, 3, 4])
@pytest.mark.parametrize("background", BACKGROUND_NAMES)
def test_every_pasted_face_is_found_and_nothing_else(
    detector: FaceDetector, size: tuple[int, int], n_faces: int, background: str
) -> None:
    frame, expected = multi_face_frame(*size, n_faces, background=background)
    found = detector.detect(to_gray(frame))
    assert match_faces(expected, found) == n_faces, (expected, found)
    assert len(found) == n_faces, (expected, found)


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)])
def test_default_settings_find_the_faces_the_seed_detector_finds(size: tuple[int, int]) -> None:
    frame, expected = multi_face_frame(*size, 4)
    gray = to_gray(frame)
    seed = FaceDetector(SEED_SETTINGS).detect(gray)
    fast = FaceDetector().detect(gray)
    assert match_faces(expected, seed) == 4
    assert match_faces(seed, fast, threshold=0.5) == 4


def _sized_frame() -> tuple[np.ndarray, list]:
    placements = [
        FacePlacement(ASTRONAUT, 60, 120, 90),
        FacePlacement(GRACE_HOPPER, 260, 80, 150, mirror=True),
        FacePlacement(ASTRONAUT, 500, 250, 110, mirror=True),
    ]
    frame, boxes = compose_frame(720, 480, placements, background="rocket")
    return to_gray(frame), boxes


def test_faces_come_largest_first(detector: FaceDetector) -> None:
    gray, expected = _sized_frame()
    found = detector.detect(gray)
    assert match_faces(expected, found) == 3
    widths = [b.width for b in found]
    assert widths == sorted(widths, reverse=True)
    assert found[0].iou(expected[1]) >= FACE_MATCH_IOU  # the 150 px face
    assert found[2].iou(expected[0]) >= FACE_MATCH_IOU  # the 90 px face


def test_max_faces_keeps_the_largest(detector: FaceDetector) -> None:
    gray, expected = _sized_frame()
    capped = FaceDetector(dataclasses.replace(DetectorSettings(), max_faces=1)).detect(gray)
    assert len(capped) == 1 and capped[0].iou(expected[1]) >= FACE_MATCH_IOU


def test_min_and_max_face_size_filter_faces(detector: FaceDetector) -> None:
    gray, expected = _sized_frame()
    # Haar boxes are wider than the hand-drawn ones; split between the detected sizes.
    widths = sorted(b.width for b in detector.detect(gray))
    split = (widths[1] + widths[2]) // 2
    big_only = FaceDetector(DetectorSettings(min_face_size=split)).detect(gray)
    assert len(big_only) == 1 and big_only[0].iou(expected[1]) >= FACE_MATCH_IOU
    small_only = FaceDetector(DetectorSettings(max_face_size=split)).detect(gray)
    assert match_faces([expected[0], expected[2]], small_only) == 2 and len(small_only) == 2


def test_boxes_from_a_downscaled_scan_are_in_full_resolution_pixels() -> None:
    frame, expected = multi_face_frame(1280, 720, 2)
    gray = to_gray(frame)
    for width in (0, 384, 640):
        found = FaceDetector(DetectorSettings(detection_width=width)).detect(gray)
        assert match_faces(expected, found) == 2, (width, expected, found)


def test_a_frame_narrower_than_detection_width_is_scanned_as_is(detector: FaceDetector) -> None:
    assert detector.detection_scale(320) == 1.0
    assert detector.detection_scale(1280) == pytest.approx(384 / 1280)


def test_smallest_face_follows_the_downscaling(detector: FaceDetector) -> None:
    assert detector.smallest_face(640) == 60  # min_face_size (the 40 px the cascade could see is smaller)
    assert detector.smallest_face(1280) == 80
    assert detector.smallest_face(1920) == 120
    # And it is real: at 1920x1080 an 80 px face is below it, found only with a wider scan.
    frame, expected = compose_frame(1920, 1080, [FacePlacement(ASTRONAUT, 800, 400, 80)], background="coffee")
    gray = to_gray(frame)
    assert detector.detect(gray) == []
    wider = FaceDetector(DetectorSettings(detection_width=960))
    assert wider.smallest_face(1920) == 60
    assert match_faces(expected, wider.detect(gray)) == 1


def test_histogram_equalisation_still_finds_the_face() -> None:
    found = FaceDetector(DetectorSettings(equalize_histogram=True)).detect(photo_gray(ASTRONAUT))
    assert match_faces([face_box(ASTRONAUT)], found) == 1


def test_a_dark_photo_still_gives_the_face_with_equalisation() -> None:
    dark = cv2.convertScaleAbs(photo_gray(GRACE_HOPPER), alpha=0.25)
    found = FaceDetector(DetectorSettings(equalize_histogram=True)).detect(dark)
    assert match_faces([face_box(GRACE_HOPPER)], found) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"scale_factor": 1.0}, "scale_factor"),
        ({"scale_factor": 3.0}, "scale_factor"),
        ({"scale_factor": float("nan")}, "scale_factor"),
        ({"min_neighbors": -1}, "min_neighbors"),
        ({"min_face_size": 0}, "min_face_size"),
        ({"max_face_size": -5}, "max_face_size"),
        ({"max_face_size": 30, "min_face_size": 60}, "max_face_size"),
        ({"detection_width": 10}, "detection_width"),
        ({"detection_width": -1}, "detection_width"),
        ({"max_faces": 0}, "max_faces"),
        ({"full_scan_interval": 0}, "full_scan_interval"),
    ],
)
def test_invalid_settings_are_refused_with_the_field_named(changes: dict, field: str) -> None:
    settings = dataclasses.replace(DetectorSettings(), **changes)
    with pytest.raises(ValueError, match=field):
        settings.validate()
    with pytest.raises(ValueError, match=field):
        FaceDetector(settings)
    detector = FaceDetector()
    before = detector.settings
    with pytest.raises(ValueError, match=field):
        detector.update(settings)
    assert detector.settings is before


def test_update_applies_new_settings() -> None:
    detector = FaceDetector()
    gray, _ = _sized_frame()
    assert len(detector.detect(gray)) == 3
    detector.update(DetectorSettings(max_faces=2))
    assert detector.settings.max_faces == 2
    assert len(detector.detect(gray)) == 2


def test_detect_needs_a_gray_image(detector: FaceDetector) -> None:
    with pytest.raises(ValueError, match="grayscale"):
        detector.detect(photo_bgr(ASTRONAUT))
    with pytest.raises(ValueError, match="grayscale"):
        detector.detect(photo_gray(ASTRONAUT).astype(np.float32))


def test_a_missing_cascade_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="haarcascade_frontalface_default.xml"):
        FaceDetector(cascade_path=str(tmp_path / "haarcascade_frontalface_default.xml"))


def test_a_corrupt_cascade_file_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "broken.xml"
    bad.write_text("<opencv_storage><cascade>not a cascade</cascade></opencv_storage>")
    with pytest.raises(RuntimeError, match="broken.xml"):
        FaceDetector(cascade_path=str(bad))


def test_detect_near_finds_known_faces_again_and_gives_up_when_one_is_gone(detector: FaceDetector) -> None:
    frames = moving_face_sequence(n_frames=6, step=(20, 5), background="coffee")
    previous = detector.detect(to_gray(frames[0][0]))
    for frame, expected in frames[1:]:
        near = detector.detect_near(to_gray(frame), previous)
        assert near is not None and len(near) == 1 and near[0].iou(expected) >= FACE_MATCH_IOU
        previous = near
    empty = to_gray(background_bgr(640, 480, "coffee"))
    assert detector.detect_near(empty, previous) is None


def test_detect_near_reports_only_known_faces(detector: FaceDetector) -> None:
    frame, expected = multi_face_frame(640, 480, 4)
    gray = to_gray(frame)
    everything = detector.detect(gray)
    assert len(everything) == 4
    near = detector.detect_near(gray, everything[:2])
    assert near is not None and match_faces(everything[:2], near) == 2 and len(near) == 2
