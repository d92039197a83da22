"""Decoding uploaded JPEG/PNG files with the pixel limit checked from the header."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest

from emotion_recognition.core.encoded import (
    ImageTooLargeError,
    check_pixel_count,
    decode_image,
    read_header,
)
from emotion_recognition.core.image import InvalidImageError
from test.support.images import ASTRONAUT, photo_bgr
from test.support.web import encoded, pixel_bomb_png


@pytest.mark.parametrize("extension, name", [(".jpg", "JPEG"), (".png", "PNG")])
def test_decodes_jpeg_and_png_to_bgr(extension: str, name: str) -> None:
    data = encoded(ASTRONAUT, extension)
    assert read_header(data) == (name, 512, 512)
    image = decode_image(data)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    if extension == ".png":  # lossless: exactly the photo
        assert np.array_equal(image, photo_bgr(ASTRONAUT))


@pytest.mark.parametrize(
    "side, message",
    [
        (12_000, r"12000x12000 = 144000000 pixels, more than the limit of 40000000 \(max_image_pixels\)"),
        # Beyond Pillow's own limit (2 x 89 megapixels) Pillow refuses it first, without telling the size.
        (60_000, r"more than 178956970 pixels, more than the limit of 40000000 \(max_image_pixels\)"),
    ],
)
def test_pixel_bomb_is_refused_from_the_header_without_decoding(side: int, message: str) -> None:
    bomb = pixel_bomb_png(side, side)  # 0.4 GB or 10 GB of BGR announced in 100 bytes
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLargeError, match=message):
            decode_image(bomb, max_image_pixels=40_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_the_limit_counts_pixels() -> None:
    data = encoded(ASTRONAUT, ".jpg")
    assert decode_image(data, max_image_pixels=512 * 512).shape[:2] == (512, 512)
    with pytest.raises(ImageTooLargeError, match="262144 pixels, more than the limit of 262143"):
        decode_image(data, max_image_pixels=512 * 512 - 1)
    check_pixel_count(100, 100, 10_000)
    with pytest.raises(ImageTooLargeError):
        check_pixel_count(100, 101, 10_000)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"not an image at all", "not a JPEG or PNG"),
        (b"GIF89a" + bytes(64), "not a JPEG or PNG"),
    ],
)
def test_undecodable_data_is_an_invalid_image(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        decode_image(data)


def test_jpeg_without_image_data_is_corrupt() -> None:
    jpeg = encoded(ASTRONAUT, ".jpg")
    headers_only = jpeg[: jpeg.index(b"\xff\xda")] + b"\xff\xd9"
    with pytest.raises(InvalidImageError, match="512x512 image could not be decoded"):
        decode_image(headers_only)


def test_gray_png_comes_out_as_bgr() -> None:
    ok, data = cv2.imencode(".png", cv2.cvtColor(photo_bgr(ASTRONAUT), cv2.COLOR_BGR2GRAY))
    assert ok
    assert decode_image(data.tobytes()).shape == (512, 512, 3)
