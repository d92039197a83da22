"""sensor_msgs images ↔ numpy arrays: every supported encoding against OpenCV's own conversions, with and
without row padding, and every kind of bad input rejected with its cause key."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from rosbags.image import image_to_cvimage
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from emotion_recognition.ros.image_conversion import (
    CAUSE_BAD_DIMENSIONS,
    CAUSE_BAD_STEP,
    CAUSE_DECODE_FAILED,
    CAUSE_EMPTY_IMAGE,
    CAUSE_LENGTH_MISMATCH,
    CAUSE_UNSUPPORTED_ENCODING,
    CAUSE_UNSUPPORTED_FORMAT,
    ImageConversionError,
    array_to_image_msg,
    bgr_array_to_image_msg,
    compressed_msg_to_array,
    image_msg_to_array,
)
from test.support.images import ASTRONAUT, bgr_to_yuv422, photo_bgr

# An odd-sized crop of the real photograph so that sizes cannot hide behind symmetric shapes.
BGR = np.ascontiguousarray(photo_bgr(ASTRONAUT)[40:280, 100:420])  # 240 x 320
HEIGHT, WIDTH = BGR.shape[:2]


def _raw_for(encoding: str) -> np.ndarray:
    """The image in the memory layout of ``encoding`` (built with OpenCV)."""
    if encoding in ("bgr8", "8UC3"):
        return BGR
    if encoding == "rgb8":
        return cv2.cvtColor(BGR, cv2.COLOR_BGR2RGB)
    if encoding in ("bgra8", "8UC4"):
        return cv2.cvtColor(BGR, cv2.COLOR_BGR2BGRA)
    if encoding == "rgba8":
        return cv2.cvtColor(BGR, cv2.COLOR_BGR2RGBA)
    if encoding in ("mono8", "8UC1"):
        return cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY)
    if encoding == "mono16":
        return cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    if encoding == "yuv422":
        return bgr_to_yuv422(BGR, "uyvy")
    if encoding == "yuv422_yuy2":
        return bgr_to_yuv422(BGR, "yuy2")
    raise AssertionError(encoding)


# encoding -> (channel order handed to the core, expected array computed with OpenCV)
EXPECTED = {
    "bgr8": ("bgr", lambda: BGR),
    "8UC3": ("bgr", lambda: BGR),
    "rgb8": ("rgb", lambda: cv2.cvtColor(BGR, cv2.COLOR_BGR2RGB)),
    "bgra8": ("bgra", lambda: cv2.cvtColor(BGR, cv2.COLOR_BGR2BGRA)),
    "8UC4": ("bgra", lambda: cv2.cvtColor(BGR, cv2.COLOR_BGR2BGRA)),
    "rgba8": ("rgba", lambda: cv2.cvtColor(BGR, cv2.COLOR_BGR2RGBA)),
    "mono8": ("gray", lambda: cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY)),
    "8UC1": ("gray", lambda: cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY)),
    "mono16": ("gray", lambda: cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY)),  # x257 scaled back exactly
    "yuv422": ("bgr", lambda: cv2.cvtColor(_raw_for("yuv422"), cv2.COLOR_YUV2BGR_UYVY)),
    "yuv422_yuy2": ("bgr", lambda: cv2.cvtColor(_raw_for("yuv422_yuy2"), cv2.COLOR_YUV2BGR_YUY2)),
}


@pytest.mark.parametrize("padding", [0, 13], ids=["packed", "padded_rows"])
@pytest.mark.parametrize("encoding", sorted(EXPECTED))
def test_every_encoding_matches_opencv(encoding: str, padding: int) -> None:
    order, expected = EXPECTED[encoding]
    msg = array_to_image_msg(_raw_for(encoding), encoding, step_padding=padding)
    array, channel_order = image_msg_to_array(msg)
    assert channel_order == order
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, expected())


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "rgba8", "mono8", "mono16", "yuv422", "yuv422_yuy2"])
def test_packed_images_agree_with_rosbags_image(encoding: str) -> None:
    """An independent implementation (rosbags-image, packed rows only) gives the same pixels."""
    msg = array_to_image_msg(_raw_for(encoding), encoding)
    array, order = image_msg_to_array(msg)
    reference = image_to_cvimage(msg, "mono8" if order == "gray" else f"{order}8")
    np.testing.assert_array_equal(array, reference)


def test_yuv_byte_orders_give_the_right_colours() -> None:
    """UYVY and YUYV are not swapped: a red square stays red in both."""
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 2] = 255
    for encoding, packing in (("yuv422", "uyvy"), ("yuv422_yuy2", "yuy2")):
        array, order = image_msg_to_array(array_to_image_msg(bgr_to_yuv422(red, packing), encoding))
        assert order == "bgr"
        blue, green, r = array[4, 4].astype(int)
        assert r > 200 and blue < 60 and green < 60, (encoding, array[4, 4])


@pytest.mark.parametrize("big_endian", [False, True])
def test_mono16_byte_order_is_honoured(big_endian: bool) -> None:
    values = np.array([[0, 257, 65535, 32896]], np.uint16)  # -> 0, 1, 255, 128
    msg = array_to_image_msg(values, "mono16", big_endian=big_endian)
    assert msg.is_bigendian == int(big_endian)
    array, order = image_msg_to_array(msg)
    assert order == "gray"
    np.testing.assert_array_equal(array, [[0, 1, 255, 128]])


def test_packed_conversion_is_a_view_on_the_message_data() -> None:
    msg = array_to_image_msg(BGR, "bgr8")
    array, _ = image_msg_to_array(msg)
    assert np.shares_memory(array, np.frombuffer(msg.data, np.uint8))


def _image(
    encoding: str = "bgr8",
    height: int = 4,
    width: int = 6,
    step: int | None = None,
    length: int | None = None,
) -> Image:
    msg = Image()
    msg.encoding = encoding
    msg.height, msg.width = height, width
    msg.step = width * 3 if step is None else step
    msg.data = bytes(msg.height * msg.step if length is None else length)
    return msg


@pytest.mark.parametrize(
    ("msg", "cause"),
    [
        (_image(encoding="32FC1"), CAUSE_UNSUPPORTED_ENCODING),
        (_image(encoding="bayer_rggb8"), CAUSE_UNSUPPORTED_ENCODING),
        (_image(encoding=""), CAUSE_UNSUPPORTED_ENCODING),
        (_image(height=0, width=0, step=0), CAUSE_EMPTY_IMAGE),
        (_image(height=4, width=0, step=0), CAUSE_EMPTY_IMAGE),
        (_image(step=17), CAUSE_BAD_STEP),
        (_image(length=4 * 18 - 1), CAUSE_LENGTH_MISMATCH),
        (_image(length=4 * 18 + 5), CAUSE_LENGTH_MISMATCH),
        (_image(length=0), CAUSE_LENGTH_MISMATCH),
        (_image(encoding="yuv422", width=5, step=10), CAUSE_BAD_DIMENSIONS),
        (_image(encoding="mono16", width=6, step=6), CAUSE_BAD_STEP),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_images_are_rejected_with_their_cause(msg: Image, cause: str) -> None:
    with pytest.raises(ImageConversionError) as error:
        image_msg_to_array(msg)
    assert error.value.cause == cause
    assert isinstance(error.value, ValueError)
    assert str(error.value)  # a readable message for the log


def _compressed(data: bytes, fmt: str = "jpeg") -> CompressedImage:
    msg = CompressedImage()
    msg.format = fmt
    msg.data = data
    return msg


def test_jpeg_decodes_to_bgr_close_to_the_original() -> None:
    ok, encoded = cv2.imencode(".jpg", BGR, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    array, order = compressed_msg_to_array(_compressed(encoded.tobytes(), "bgr8; jpeg compressed bgr8"))
    assert order == "bgr"
    assert array.shape == BGR.shape
    assert np.abs(array.astype(int) - BGR.astype(int)).mean() < 3.0


def test_png_decodes_losslessly_in_colour_and_gray() -> None:
    ok, encoded = cv2.imencode(".png", BGR)
    assert ok
    array, order = compressed_msg_to_array(_compressed(encoded.tobytes(), "png"))
    assert order == "bgr"
    np.testing.assert_array_equal(array, BGR)
    gray = cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY)
    ok, encoded = cv2.imencode(".png", gray)
    array, order = compressed_msg_to_array(_compressed(encoded.tobytes(), "mono8; png compressed mono8"))
    assert order == "gray"
    np.testing.assert_array_equal(array, gray)


def test_bad_compressed_images_are_rejected_with_their_cause() -> None:
    ok, jpeg = cv2.imencode(".jpg", BGR)
    jpeg = jpeg.tobytes()
    ok, png = cv2.imencode(".png", BGR)
    png = png.tobytes()
    corrupt_header = jpeg[:3] + bytes(300) + jpeg[303:]
    cases = [
        (b"", CAUSE_EMPTY_IMAGE),
        (b"GIF89a" + bytes(100), CAUSE_UNSUPPORTED_FORMAT),
        (b"\x00\x00\x00\x0cjP  " + bytes(100), CAUSE_UNSUPPORTED_FORMAT),
        (jpeg[: len(jpeg) // 2], CAUSE_DECODE_FAILED),
        (corrupt_header, CAUSE_DECODE_FAILED),
        (png[: len(png) // 2], CAUSE_DECODE_FAILED),
    ]
    for data, cause in cases:
        with pytest.raises(ImageConversionError) as error:
            compressed_msg_to_array(_compressed(data))
        assert error.value.cause == cause, data[:16]


def test_bgr_array_to_image_msg_round_trips_with_header() -> None:
    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = bgr_array_to_image_msg(BGR[:, 10:200], header)  # a non-contiguous view
    assert (msg.encoding, msg.width, msg.height, msg.step) == ("bgr8", 190, HEIGHT, 190 * 3)
    assert msg.header.frame_id == "camera_optical"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)
    array, order = image_msg_to_array(msg)
    assert order == "bgr"
    np.testing.assert_array_equal(array, BGR[:, 10:200])


def test_bgr_array_to_image_msg_refuses_other_layouts() -> None:
    with pytest.raises(ValueError):
        bgr_array_to_image_msg(np.zeros((4, 4), np.uint8), Header())
    with pytest.raises(ValueError):
        bgr_array_to_image_msg(np.zeros((4, 4, 3), np.float32), Header())
