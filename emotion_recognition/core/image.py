"""Checking and converting input images to what the rest of the core works on.

Everything downstream works on contiguous uint8 arrays: BGR for drawing, single-channel gray for
detection and preprocessing. These functions accept the layouts a camera or a bag delivers and turn
anything else into an :class:`InvalidImageError` with a message a user can act on, before OpenCV
sees it. They copy only when a conversion is needed: a contiguous uint8 BGR image passes through
:func:`to_bgr` as the same array, and a contiguous uint8 gray image through :func:`to_gray`.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import JpegImagePlugin, PngImagePlugin

# Smallest side we accept: a Haar face needs at least 24x24 pixels, so smaller frames cannot hold one.
MIN_IMAGE_SIDE = 24

# Channel orders accepted. "bgr"/"rgb" say how a 3- or 4-channel image is ordered (a 4th channel is
# alpha); "gray", "bgra" and "rgba" name the layout exactly, as image decoders and ROS encodings do, and
# are checked against the channel count. This is the one place that maps them (the node, the bag tools
# and the web server hand over what image conversion returns).
CHANNEL_ORDERS: tuple[str, ...] = ("bgr", "rgb", "gray", "bgra", "rgba")
_CHANNELS_OF_ORDER = {"gray": 1, "bgra": 4, "rgba": 4}
_COLOUR_ORDER = {"bgr": "bgr", "rgb": "rgb", "gray": "bgr", "bgra": "bgr", "rgba": "rgb"}

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


# Default size limits (ImageLimits). 4096x4096 holds a 4K UHD frame (8.3 MP) twice; a 32 MiB JPEG or
# PNG is far beyond any camera's frame of that size.
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
DEFAULT_MAX_COMPRESSED_BYTES = 32 * 1024 * 1024

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class InvalidImageError(ValueError):
    """The array is not an image the pipeline can process (the message says why)."""


class ImageTooLargeError(InvalidImageError):
    """An image (raw, or as its compressed header claims) is over the size limits; it was refused
    before any pixel buffer of its size was allocated."""


class ImageDecodeError(InvalidImageError):
    """Compressed data that is empty, neither JPEG nor PNG, or does not decode; ``kind`` is one of
    ``"empty"``, ``"unsupported_format"``, ``"decode_failed"``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ImageLimits:
    """How large an input image may be. Decompression bombs (a small JPEG or PNG whose header claims
    gigapixels) and oversized raw frames are refused against these before they cost memory."""

    # Width x height of any image, raw or decoded (the header's claim is checked before decoding).
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    # Size of the compressed data (JPEG/PNG bytes).
    max_compressed_bytes: int = DEFAULT_MAX_COMPRESSED_BYTES

    def validate(self) -> None:
        """Raise ValueError naming the field when a limit is not a positive number."""
        for name in ("max_image_pixels", "max_compressed_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def check_size(self, width: int, height: int, what: str = "image") -> None:
        """Raise :class:`ImageTooLargeError`, naming the size and the limit, when ``width`` x ``height``
        is over :attr:`max_image_pixels`."""
        pixels = int(width) * int(height)
        if pixels > self.max_image_pixels:
            raise ImageTooLargeError(
                f"{what} of {int(width)}x{int(height)} = {pixels} pixels is over the limit of "
                f"{self.max_image_pixels} pixels (max_image_pixels); refused without decoding it"
            )


# The limits used when none are given (the node's and the bag tools' defaults).
DEFAULT_LIMITS = ImageLimits()


def _byte_view(data: bytes | bytearray | memoryview | np.ndarray) -> memoryview:
    """A flat byte view on ``data`` (no copy for bytes, array.array or a contiguous uint8 array)."""
    if isinstance(data, np.ndarray) and not (data.dtype == np.uint8 and data.flags.c_contiguous):
        data = np.ascontiguousarray(data, dtype=np.uint8)
    return memoryview(data).cast("B")


def compressed_image_size(data: bytes | bytearray | memoryview | np.ndarray) -> tuple[int, int]:
    """``(width, height)`` a JPEG or PNG declares in its header, read without decoding the pixels.

    Pillow's JPEG and PNG readers parse the header only (the pixels are read on demand, never here);
    they are used directly rather than through ``PIL.Image.open``, so that the size comes back for any
    claim and :meth:`ImageLimits.check_size` decides against the configured limit.

    Raises:
        ImageDecodeError: the data is neither JPEG nor PNG, or its header is unreadable.
    """
    view = _byte_view(data)
    head = bytes(view[:8])
    if head.startswith(JPEG_MAGIC):
        reader = JpegImagePlugin.JpegImageFile
    elif head.startswith(PNG_MAGIC):
        reader = PngImagePlugin.PngImageFile
    else:
        raise ImageDecodeError("unsupported_format", "compressed image is neither JPEG nor PNG")
    try:
        image = reader(io.BytesIO(view))
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, KeyError, IndexError) as error:
        raise ImageDecodeError("decode_failed", f"unreadable JPEG/PNG header ({error})") from None
    try:
        return int(image.size[0]), int(image.size[1])
    finally:
        image.close()


def _truncated_jpeg(buffer: np.ndarray) -> bool:
    """A JPEG whose end-of-image marker (FF D9) is missing from its last KiB was cut short. OpenCV 4.6
    with the distribution's libjpeg decodes such data, filling the missing part with gray (newer OpenCV
    wheels refuse it); it is refused here with every OpenCV."""
    return buffer[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in buffer[-1024:].tobytes()


def decode_compressed(
    data: bytes | bytearray | memoryview | np.ndarray, limits: ImageLimits = DEFAULT_LIMITS
) -> tuple[np.ndarray, str]:
    """Decode a JPEG or PNG into ``(array, channel_order)`` (``"gray"``, ``"bgr"`` or ``"bgra"``, uint8;
    16-bit PNGs are scaled to 8 bits), after checking its byte size and the dimensions its header declares
    against ``limits``: a decompression bomb is refused before OpenCV allocates its pixels.

    Raises:
        ImageTooLargeError: over ``limits`` (the message names the size and the limit).
        ImageDecodeError: empty data, neither JPEG nor PNG, or data that does not decode.
    """
    view = _byte_view(data)
    if view.nbytes == 0:
        raise ImageDecodeError("empty", "compressed image with no data")
    if view.nbytes > limits.max_compressed_bytes:
        raise ImageTooLargeError(
            f"compressed image of {view.nbytes} bytes is over the limit of {limits.max_compressed_bytes} "
            "bytes (max_compressed_bytes); refused without decoding it"
        )
    width, height = compressed_image_size(view)
    limits.check_size(width, height, "compressed image")
    buffer = np.frombuffer(view, dtype=np.uint8)
    image = None if _truncated_jpeg(buffer) else cv2.imdecode(buffer, cv2.IMREAD_ANYCOLOR)
    if image is None or image.size == 0:
        raise ImageDecodeError(
            "decode_failed", f"compressed image ({view.nbytes} bytes) could not be decoded"
        )
    if image.ndim == 2:
        return image, "gray"
    return image, "bgra" if image.shape[2] == 4 else "bgr"


def _checked(image: np.ndarray, channel_order: str) -> tuple[np.ndarray, int, str]:
    """Validate ``image``; return it as uint8, its channel count (1, 3 or 4) and its colour order
    ("bgr" or "rgb")."""
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
    expected = _CHANNELS_OF_ORDER.get(channel_order)
    if expected is not None and channels != expected:
        raise InvalidImageError(
            f"channel_order {channel_order!r} needs {expected} channel(s), got {channels} "
            f"(shape {image.shape})"
        )
    if image.dtype == np.uint8:
        pass
    elif image.dtype == np.uint16:
        # 16-bit cameras: keep the top byte (full 16-bit range mapped to 0-255).
        image = (image >> 8).astype(np.uint8)
    else:
        raise InvalidImageError(f"expected uint8 or uint16 pixels, got {image.dtype}")
    # OpenCV needs C-contiguous memory (a flipped or strided view is copied once, here).
    return np.ascontiguousarray(image), channels, _COLOUR_ORDER[channel_order]


def to_bgr(image: np.ndarray, channel_order: str = "bgr") -> np.ndarray:
    """Return ``image`` as a contiguous 3-channel uint8 BGR array.

    Accepts gray (H, W) or (H, W, 1), 3-channel BGR or RGB, 4-channel BGRA or RGBA, uint8 or uint16
    (scaled to uint8). ``channel_order`` says whether colour input is "bgr" or "rgb" (ignored for
    gray), or names the layout: "gray", "bgra", "rgba" (see :data:`CHANNEL_ORDERS`). A contiguous
    uint8 BGR input is returned as is, without a copy.

    Raises:
        InvalidImageError: for anything else (empty, smaller than 24x24, wrong dtype or shape).
    """
    image, channels, order = _checked(image, channel_order)
    if channels == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    code = _TO_BGR.get((order, channels))
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
    image, channels, order = _checked(image, channel_order)
    if channels == 1:
        return image if image.ndim == 2 else image.reshape(image.shape[:2])
    return cv2.cvtColor(image, _TO_GRAY[(order, channels)])
