"""Checking and converting input images to what the rest of the core works on.

Everything downstream works on contiguous uint8 arrays: BGR for drawing, single-channel gray for
detection and preprocessing. These functions accept the layouts a camera or a bag delivers and turn
anything else into an :class:`InvalidImageError` with a message a user can act on, before OpenCV
sees it. They copy only when a conversion is needed: a contiguous uint8 BGR image passes through
:func:`to_bgr` as the same array, and a contiguous uint8 gray image through :func:`to_gray`.
"""

from __future__ import annotations

import cv2
import numpy as np

# Smallest side we accept: a Haar face needs at least 24x24 pixels, so smaller frames cannot hold one.
MIN_IMAGE_SIDE = 24

CHANNEL_ORDERS: tuple[str, ...] = ("bgr", "rgb")

_TO_BGR = {
    ("bgr", 4): cv2.COLOR_BGRA2BGR,
    ("rgb", 3): cv2.COLOR_RGB2BGR,
    ("rgb", 4): cv2.COLOR_RGBA2BGR,
}
_TO_GRAY = {
    ("bgr", 3): cv2.COLOR_BGR2GRAY,
    ("bgr", 4): cv2.COLOR_BGRA2GRAY,
    ("rgb", 3): cv2.COLOR_RGB2GRAY,
    ("rgb", 4): cv2.COLOR_RGBA2GRAY,
}


class InvalidImageError(ValueError):
    """The array is not an image the pipeline can process (the message says why)."""


def _checked(image: np.ndarray, channel_order: str) -> tuple[np.ndarray, int]:
    """Validate ``image`` and return it as uint8 together with its channel count (1, 3 or 4)."""
    if channel_order not in CHANNEL_ORDERS:
        raise InvalidImageError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3):
        raise InvalidImageError(
            f"expected an image of shape (H, W) or (H, W, C), got an array with {image.ndim} "
            f"dimension(s) {image.shape}"
        )
    if image.size == 0:
        raise InvalidImageError(f"image is empty (shape {image.shape})")
    height, width = image.shape[:2]
    if height < MIN_IMAGE_SIDE or width < MIN_IMAGE_SIDE:
        raise InvalidImageError(
            f"image is {width}x{height} pixels; at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} is needed "
            "to hold a face"
        )
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in (1, 3, 4):
        raise InvalidImageError(f"expected 1, 3 or 4 channels, got {channels} (shape {image.shape})")
    if image.dtype == np.uint8:
        pass
    elif image.dtype == np.uint16:
        # 16-bit cameras: keep the top byte (full 16-bit range mapped to 0-255).
        image = (image >> 8).astype(np.uint8)
    else:
        raise InvalidImageError(f"expected uint8 or uint16 pixels, got {image.dtype}")
    # OpenCV needs C-contiguous memory (a flipped or strided view is copied once, here).
    return np.ascontiguousarray(image), channels


def to_bgr(image: np.ndarray, channel_order: str = "bgr") -> np.ndarray:
    """Return ``image`` as a contiguous 3-channel uint8 BGR array.

    Accepts gray (H, W) or (H, W, 1), 3-channel BGR or RGB, 4-channel BGRA or RGBA, uint8 or uint16
    (scaled to uint8). ``channel_order`` says whether colour input is "bgr" or "rgb" (ignored for
    gray). A contiguous uint8 BGR input is returned as is, without a copy.

    Raises:
        InvalidImageError: for anything else (empty, smaller than 24x24, wrong dtype or shape).
    """
    image, channels = _checked(image, channel_order)
    if channels == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    code = _TO_BGR.get((channel_order, channels))
    if code is None:
        return image
    return cv2.cvtColor(image, code)


def to_gray(image: np.ndarray, channel_order: str = "bgr") -> np.ndarray:
    """Return ``image`` as a contiguous single-channel uint8 (H, W) array, what detection and
    preprocessing use.

    Accepts the same inputs as :func:`to_bgr`. A contiguous uint8 (H, W) input is returned as is.

    Raises:
        InvalidImageError: for input :func:`to_bgr` would reject.
    """
    image, channels = _checked(image, channel_order)
    if channels == 1:
        return image if image.ndim == 2 else image.reshape(image.shape[:2])
    return cv2.cvtColor(image, _TO_GRAY[(channel_order, channels)])
