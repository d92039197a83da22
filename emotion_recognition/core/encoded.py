"""Decoding JPEG and PNG files into BGR arrays, with a pixel limit checked before decoding.

A small compressed file can announce an enormous image (a "decompression bomb": a few kilobytes of PNG
that decode to gigabytes). :func:`decode_image` therefore reads the dimensions from the file's header
with Pillow (which reads only the header at ``Image.open``) and refuses an image of more than
``max_image_pixels`` pixels before any pixel is decoded; only then OpenCV decodes it.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np

from emotion_recognition.core.image import InvalidImageError

# Default of the ``max_image_pixels`` limit: 40 megapixels (e.g. 7680x5200), 120 MB as BGR.
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000

# Pillow's format names of what we decode, and the media types they travel under.
FORMATS: dict[str, str] = {"JPEG": "image/jpeg", "PNG": "image/png"}


class ImageTooLargeError(InvalidImageError):
    """The image has more pixels than the limit (the message gives both numbers)."""


def check_pixel_count(width: int, height: int, max_image_pixels: int) -> None:
    """Refuse an image of ``width`` x ``height`` when it has more than ``max_image_pixels`` pixels.

    Raises:
        ImageTooLargeError: naming the size and the limit (parameter ``max_image_pixels``).
    """
    if width * height > max_image_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels, more than the limit of "
            f"{max_image_pixels} (max_image_pixels)"
        )


def read_header(data: bytes) -> tuple[str, int, int]:
    """The format (``"JPEG"`` or ``"PNG"``), width and height of an encoded image, read from its header.

    Raises:
        InvalidImageError: empty data, or not a JPEG or PNG file.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InvalidImageError("no image data (empty)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=tuple(FORMATS)) as image:
                return image.format, image.width, image.height
    except Image.DecompressionBombError:  # beyond even Pillow's own limit, which hides the size
        raise ImageTooLargeError(f"image has more than {2 * Image.MAX_IMAGE_PIXELS} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InvalidImageError(f"not a JPEG or PNG image ({exc})") from None


def decode_image(data: bytes, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a JPEG or PNG file into a BGR uint8 array (EXIF orientation applied).

    Raises:
        ImageTooLargeError: more than ``max_image_pixels`` pixels (checked before decoding).
        InvalidImageError: empty, not a JPEG or PNG, or corrupt.
    """
    try:
        _, width, height = read_header(data)
    except ImageTooLargeError as exc:
        raise ImageTooLargeError(
            f"{exc}, more than the limit of {max_image_pixels} (max_image_pixels)"
        ) from None
    check_pixel_count(width, height, max_image_pixels)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InvalidImageError(f"the {width}x{height} image could not be decoded (corrupt data)")
    return image
