"""Input images: every layout a camera or bag delivers is converted; anything else is a clear error."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emotion_recognition.core.image import InvalidImageError, to_bgr, to_gray
from test.support.images import ASTRONAUT, photo_bgr


@pytest.fixture
def bgr() -> np.ndarray:
    return photo_bgr(ASTRONAUT).copy()


def test_contiguous_bgr_and_gray_pass_through_without_copy(bgr: np.ndarray) -> None:
    assert to_bgr(bgr) is bgr
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert to_gray(gray) is gray


def test_rgb_is_swapped_to_bgr(bgr: np.ndarray) -> None:
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(to_bgr(rgb, channel_order="rgb"), bgr)
    np.testing.assert_array_equal(to_gray(rgb, channel_order="rgb"), to_gray(bgr))


def test_alpha_is_dropped(bgr: np.ndarray) -> None:
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    rgba = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA)
    np.testing.assert_array_equal(to_bgr(bgra), bgr)
    np.testing.assert_array_equal(to_bgr(rgba, channel_order="rgb"), bgr)
    np.testing.assert_array_equal(to_gray(bgra), to_gray(bgr))
    np.testing.assert_array_equal(to_gray(rgba, channel_order="rgb"), to_gray(bgr))


def test_gray_with_and_without_channel_axis(bgr: np.ndarray) -> None:
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    for image in (gray, gray[:, :, np.newaxis]):
        out = to_bgr(image)
        assert out.shape == bgr.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out[:, :, 0], gray)
        np.testing.assert_array_equal(out[:, :, 2], gray)
        np.testing.assert_array_equal(to_gray(image), gray)


def test_uint16_is_scaled_to_uint8(bgr: np.ndarray) -> None:
    wide = bgr.astype(np.uint16) * 257  # 0-255 spread over 0-65535, as a 16-bit camera would
    np.testing.assert_array_equal(to_bgr(wide), bgr)
    gray16 = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    np.testing.assert_array_equal(to_gray(gray16), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))


def test_strided_views_are_accepted(bgr: np.ndarray) -> None:
    mirrored = bgr[:, ::-1]
    np.testing.assert_array_equal(to_bgr(mirrored), np.ascontiguousarray(mirrored))
    cropped = bgr[100:300:2, 50:450:2]
    assert to_gray(cropped).shape == (100, 200)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((0, 640), np.uint8), "empty"),
        (np.zeros((1, 1, 3), np.uint8), "1x1"),
        (np.zeros((1, 1), np.uint8), "1x1"),
        (np.zeros((20, 640, 3), np.uint8), "640x20"),
        (np.zeros((480, 640, 3), np.float32), "float32"),
        (np.zeros((480, 640, 3), np.bool_), "bool"),
        (np.zeros((480, 640, 3), np.int16), "int16"),
        (np.zeros(640, np.uint8), "1 dimension"),
        (np.zeros((2, 480, 640, 3), np.uint8), "4 dimension"),
        (np.zeros((480, 640, 2), np.uint8), "2"),
        (np.zeros((480, 640, 5), np.uint8), "5"),
    ],
)
def test_unusable_images_raise_a_clear_error(image: np.ndarray, message: str) -> None:
    for convert in (to_bgr, to_gray):
        with pytest.raises(InvalidImageError, match=message):
            convert(image)


def test_invalid_image_error_is_a_value_error() -> None:
    assert issubclass(InvalidImageError, ValueError)


def test_non_arrays_and_unknown_channel_orders_are_rejected(bgr: np.ndarray) -> None:
    with pytest.raises(InvalidImageError, match="numpy array"):
        to_bgr(bgr.tolist())  # type: ignore[arg-type]
    with pytest.raises(InvalidImageError, match="channel_order"):
        to_gray(bgr, channel_order="yuv")
