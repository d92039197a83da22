"""Face crops are exactly the model input the spec defines: square, 48x48 gray, raw 0-255 float32."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emotion_recognition.core.detection import FaceDetector
from emotion_recognition.core.preprocessing import crop_faces, square_region
from emotion_recognition.core.types import Box
from emotion_recognition.spec import INPUT_SHAPE
from test.support.images import ASTRONAUT, GRACE_HOPPER, face_box, photo_gray


def test_shape_dtype_and_range_are_the_model_input() -> None:
    gray = photo_gray(ASTRONAUT)
    faces = crop_faces(gray, [face_box(ASTRONAUT), Box(10, 10, 60, 60)])
    assert faces.shape == (2, *INPUT_SHAPE)
    assert faces.dtype == np.float32
    assert faces.min() >= 0.0 and faces.max() <= 255.0
    assert faces.max() > 200.0  # raw pixel values, not scaled to 0-1
    assert crop_faces(gray, []).shape == (0, *INPUT_SHAPE)


def test_a_square_box_is_cropped_and_resized_with_inter_area() -> None:
    gray = photo_gray(GRACE_HOPPER)
    (box,) = FaceDetector().detect(gray)
    assert box.width == box.height
    expected = cv2.resize(
        gray[box.y : box.y + box.height, box.x : box.x + box.width], (48, 48), interpolation=cv2.INTER_AREA
    )
    np.testing.assert_array_equal(crop_faces(gray, [box])[0, :, :, 0], expected.astype(np.float32))


def test_a_non_square_box_is_widened_to_a_square_not_stretched() -> None:
    gray = photo_gray(ASTRONAUT)
    tall = Box(190, 70, 70, 104)  # narrower than the face
    square = square_region(tall)
    assert square.width == square.height == 104
    assert square.center == pytest.approx(tall.center, abs=0.5)
    np.testing.assert_array_equal(crop_faces(gray, [tall]), crop_faces(gray, [square]))


def test_margin_widens_the_crop() -> None:
    box = face_box(ASTRONAUT)
    wide = square_region(box, margin=0.25)
    assert wide.width == round(max(box.width, box.height) * 1.5)
    gray = photo_gray(ASTRONAUT)
    assert not np.array_equal(crop_faces(gray, [box], margin=0.25), crop_faces(gray, [box]))


def test_a_face_at_the_border_is_padded_by_replication() -> None:
    gray = photo_gray(ASTRONAUT)
    box = Box(-40, 100, 120, 120)  # a third of it lies left of the image
    face = crop_faces(gray, [box])[0, :, :, 0]
    assert face.shape == (48, 48)
    # The missing third repeats column 0 of the image, so each row is constant there.
    left = face[:, :14]
    np.testing.assert_allclose(left, np.repeat(left[:, :1], left.shape[1], axis=1), atol=1.0)


def test_crops_follow_the_frame_not_a_cached_buffer() -> None:
    gray = photo_gray(ASTRONAUT)
    a = crop_faces(gray, [face_box(ASTRONAUT)])
    b = crop_faces(255 - gray, [face_box(ASTRONAUT)])
    np.testing.assert_allclose(a + b, 255.0, atol=1.0)


@pytest.mark.parametrize(
    "box", [Box(600, 600, 50, 50), Box(-100, 10, 50, 50), Box(10, 10, 0, 40), Box(10, 10, 40, -5)]
)
def test_boxes_outside_the_image_or_empty_are_refused(box: Box) -> None:
    with pytest.raises(ValueError, match="outside|empty"):
        crop_faces(photo_gray(ASTRONAUT), [box])


def test_colour_images_and_negative_margins_are_refused() -> None:
    gray = photo_gray(ASTRONAUT)
    with pytest.raises(ValueError, match="grayscale"):
        crop_faces(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), [face_box(ASTRONAUT)])
    with pytest.raises(ValueError, match="margin"):
        crop_faces(gray, [face_box(ASTRONAUT)], margin=-0.1)
