"""Conversion between ``sensor_msgs`` images and numpy arrays for the perception core.

cv_bridge is not available everywhere this package runs, so the conversion is done here with numpy and
OpenCV. ``rosbags-image`` was considered: it ignores ``step`` (row padding) and ``assert``s on a failed
decode, so it serves only as an independent reference in the tests.

Every rejected message raises :class:`ImageConversionError` with a stable ``cause`` key, so that the node
can log each kind of bad input once (throttled) instead of once per frame.
"""

from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from emotion_recognition.core.image import (
    DEFAULT_LIMITS,
    ImageDecodeError,
    ImageLimits,
    ImageTooLargeError,
    decode_compressed,
)

# Cause keys carried by ImageConversionError.cause.
CAUSE_UNSUPPORTED_ENCODING = "unsupported_encoding"
CAUSE_EMPTY_IMAGE = "empty_image"
CAUSE_BAD_STEP = "bad_step"
CAUSE_LENGTH_MISMATCH = "length_mismatch"
CAUSE_BAD_DIMENSIONS = "bad_dimensions"
CAUSE_UNSUPPORTED_FORMAT = "unsupported_compressed_format"
CAUSE_DECODE_FAILED = "decode_failed"
CAUSE_TOO_LARGE = "image_too_large"
_DECODE_CAUSES = {
    "empty": CAUSE_EMPTY_IMAGE,
    "unsupported_format": CAUSE_UNSUPPORTED_FORMAT,
    "decode_failed": CAUSE_DECODE_FAILED,
}

# Free-text fields of a message (encoding, format) are quoted in error messages up to this length: a
# hostile 100 KB encoding string must not become a 100 KB log line.
MAX_QUOTED_CHARS = 64

# Channel orders handed to the core (EmotionPipeline.process(channel_order=...)).
ORDER_BGR = "bgr"
ORDER_RGB = "rgb"
ORDER_GRAY = "gray"
ORDER_BGRA = "bgra"
ORDER_RGBA = "rgba"


class ImageConversionError(ValueError):
    """A message that cannot be turned into an image; ``cause`` names the kind of problem."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class _Encoding:
    """How one ``sensor_msgs/Image`` encoding is laid out in memory."""

    channels: int  # values per pixel in the message (2 for packed YUV 4:2:2)
    bytes_per_value: int
    channel_order: str  # order of the array handed to the core
    yuv_conversion: int | None = None  # cv2 code that turns the packed YUV into BGR


_ENCODINGS: dict[str, _Encoding] = {
    "rgb8": _Encoding(3, 1, ORDER_RGB),
    "bgr8": _Encoding(3, 1, ORDER_BGR),
    "rgba8": _Encoding(4, 1, ORDER_RGBA),
    "bgra8": _Encoding(4, 1, ORDER_BGRA),
    "mono8": _Encoding(1, 1, ORDER_GRAY),
    "mono16": _Encoding(1, 2, ORDER_GRAY),
    # ROS "yuv422" is UYVY (U0 Y0 V0 Y1); "yuv422_yuy2" is YUYV (Y0 U0 Y1 V0).
    "yuv422": _Encoding(2, 1, ORDER_BGR, cv2.COLOR_YUV2BGR_UYVY),
    "uyvy": _Encoding(2, 1, ORDER_BGR, cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": _Encoding(2, 1, ORDER_BGR, cv2.COLOR_YUV2BGR_YUY2),
    "yuyv": _Encoding(2, 1, ORDER_BGR, cv2.COLOR_YUV2BGR_YUY2),
    # OpenCV type names some drivers publish; 3 and 4 channels follow OpenCV's BGR convention.
    "8UC1": _Encoding(1, 1, ORDER_GRAY),
    "8UC3": _Encoding(3, 1, ORDER_BGR),
    "8UC4": _Encoding(4, 1, ORDER_BGRA),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)


def quoted(text: Any, limit: int = MAX_QUOTED_CHARS) -> str:
    """``repr`` of a message's free-text field, cut to ``limit`` characters (the length said)."""
    text = str(text)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def image_msg_to_array(msg: Any, limits: ImageLimits = DEFAULT_LIMITS) -> tuple[np.ndarray, str]:
    """Turn a ``sensor_msgs/Image`` into ``(array, channel_order)`` for the perception core.

    The array is ``uint8``, ``(height, width)`` for ``"gray"`` or ``(height, width, channels)``; for
    packed encodings without row padding it is a view on ``msg.data`` (no copy). ``mono16`` is scaled to
    8 bits like cv_bridge does (``value * 255 / 65535``), honouring ``is_bigendian``; YUV 4:2:2 is
    converted to BGR.

    Raises:
        ImageConversionError: unsupported encoding, empty image, more pixels than
            ``limits.max_image_pixels`` (checked before the data is touched), ``step`` smaller than a
            row, ``data`` length different from ``height * step``, or an odd width for YUV 4:2:2.
    """
    encoding_name = str(msg.encoding).strip()
    encoding = _ENCODINGS.get(encoding_name) or _ENCODINGS.get(encoding_name.lower())
    if encoding is None:
        raise ImageConversionError(
            CAUSE_UNSUPPORTED_ENCODING,
            f"unsupported image encoding {quoted(msg.encoding)}; supported: {', '.join(SUPPORTED_ENCODINGS)}",
        )
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = msg.data
    if height == 0 or width == 0:
        raise ImageConversionError(
            CAUSE_EMPTY_IMAGE, f"empty image ({width}x{height}, {len(data)} bytes of data)"
        )
    try:
        limits.check_size(width, height, f"raw {encoding_name} image")
    except ImageTooLargeError as error:
        raise ImageConversionError(CAUSE_TOO_LARGE, str(error)) from None
    row_bytes = width * encoding.channels * encoding.bytes_per_value
    if step < row_bytes:
        raise ImageConversionError(
            CAUSE_BAD_STEP,
            f"step {step} is smaller than width {width} x {encoding.channels * encoding.bytes_per_value} "
            f"bytes per pixel = {row_bytes} for encoding {quoted(encoding_name)}",
        )
    if len(data) != height * step:
        raise ImageConversionError(
            CAUSE_LENGTH_MISMATCH,
            f"data holds {len(data)} bytes but height {height} x step {step} = {height * step}",
        )
    if encoding.yuv_conversion is not None and width % 2:
        raise ImageConversionError(CAUSE_BAD_DIMENSIONS, f"YUV 4:2:2 image width must be even, got {width}")

    rows = np.frombuffer(data, dtype=np.uint8).reshape(height, step)
    if step != row_bytes:
        rows = np.ascontiguousarray(rows[:, :row_bytes])

    if encoding.bytes_per_value == 2:
        byte_order = ">" if msg.is_bigendian else "<"
        values = rows.view(np.dtype(f"{byte_order}u2")).reshape(height, width)
        if values.dtype != np.dtype(np.uint16):  # not the machine's native order
            values = values.astype(np.uint16)
        return cv2.convertScaleAbs(values, alpha=255.0 / 65535.0), encoding.channel_order

    if encoding.yuv_conversion is not None:
        packed = rows.reshape(height, width, 2)
        return cv2.cvtColor(packed, encoding.yuv_conversion), encoding.channel_order
    if encoding.channels == 1:
        return rows.reshape(height, width), encoding.channel_order
    return rows.reshape(height, width, encoding.channels), encoding.channel_order


def compressed_msg_to_array(msg: Any, limits: ImageLimits = DEFAULT_LIMITS) -> tuple[np.ndarray, str]:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG or PNG) into ``(array, channel_order)``.

    The format is recognised from the data itself (the ``format`` string is free text and drivers fill it
    inconsistently); grayscale images decode to ``"gray"``, colour to ``"bgr"`` (``"bgra"`` with alpha),
    16-bit PNGs to 8 bits. The byte size and the dimensions in the JPEG/PNG header are checked against
    ``limits`` before decoding (:func:`emotion_recognition.core.image.decode_compressed`).

    Raises:
        ImageConversionError: empty data, a format other than JPEG/PNG (for example ``compressedDepth``),
            an image over ``limits`` (cause ``image_too_large``), or data that does not decode.
    """
    try:
        return decode_compressed(msg.data, limits)
    except ImageTooLargeError as error:
        raise ImageConversionError(CAUSE_TOO_LARGE, str(error)) from None
    except ImageDecodeError as error:
        raise ImageConversionError(
            _DECODE_CAUSES[error.kind], f"{error} (format {quoted(msg.format)}, {len(msg.data)} bytes)"
        ) from None


def bgr_array_to_image_msg(image: np.ndarray, header: Any) -> Any:
    """Build a ``sensor_msgs/Image`` (``bgr8``) from a ``uint8`` BGR array, with ``header`` copied in.

    Raises:
        ValueError: if ``image`` is not a ``(height, width, 3)`` ``uint8`` array.
    """
    from sensor_msgs.msg import Image  # imported here so that the module stays usable without ROS

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected a (height, width, 3) uint8 BGR array, got shape {image.shape} dtype {image.dtype}"
        )
    contiguous = np.ascontiguousarray(image)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(contiguous.shape[0]), int(contiguous.shape[1])
    msg.encoding = "bgr8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    data = array.array("B")
    data.frombytes(memoryview(contiguous).cast("B"))
    msg.data = data  # an array.array skips the generated setter's per-byte check
    return msg


def array_to_image_msg(
    image: np.ndarray, encoding: str, header: Any = None, step_padding: int = 0, big_endian: bool = False
) -> Any:
    """Pack a numpy array into a ``sensor_msgs/Image`` with the given encoding (raw bytes, no colour
    conversion): the inverse of :func:`image_msg_to_array`, used by tests, tools and benchmarks.

    ``image`` must already hold the encoding's layout: ``(h, w)`` for mono, ``(h, w, c)`` for colour,
    ``(h, w, 2)`` for packed YUV 4:2:2, ``uint16`` for ``mono16``. ``step_padding`` appends that many
    bytes to every row.
    """
    from sensor_msgs.msg import Image

    height, width = int(image.shape[0]), int(image.shape[1])
    values = np.ascontiguousarray(image)
    if values.dtype == np.uint16:
        values = values.astype(">u2" if big_endian else "<u2")
    rows = values.view(np.uint8).reshape(height, -1)
    if step_padding:
        rows = np.concatenate([rows, np.zeros((height, step_padding), np.uint8)], axis=1)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = height, width
    msg.encoding = encoding
    msg.is_bigendian = 1 if big_endian else 0
    msg.step = int(rows.shape[1])
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(rows).tobytes())
    msg.data = data
    return msg
