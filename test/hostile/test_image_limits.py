"""Decompression bombs and oversized frames are refused by the image layer the node and the bag tools
share, before any pixel buffer of their size exists; image conversion and the compressed-image size
check are fuzzed with bounded property-based tests (hypothesis)."""

from __future__ import annotations

import array
import resource

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage, Image

from emotion_recognition.core.image import (
    DEFAULT_MAX_IMAGE_PIXELS,
    ImageDecodeError,
    ImageLimits,
    ImageTooLargeError,
    InvalidImageError,
    compressed_image_size,
    decode_compressed,
    to_bgr,
    to_gray,
)
from emotion_recognition.ros.image_conversion import (
    CAUSE_TOO_LARGE,
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    compressed_msg_to_array,
    image_msg_to_array,
)
from test.support.bombs import jpeg_claiming, png_bomb, real_jpeg
from test.support.images import ASTRONAUT, photo_bgr

MB = 1 << 20
# Peak memory a refused bomb may add to this process.
BOMB_RSS_ALLOWANCE = 50 * MB


def _peak_rss() -> int:
    """This process's peak resident set size in bytes (ru_maxrss is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _compressed(data: bytes, fmt: str = "jpeg") -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = array.array("B", data)
    return msg


BOMBS = {
    "jpeg_65500x16384": lambda: jpeg_claiming(65500, 16384),
    "jpeg_30000x30000": lambda: jpeg_claiming(30000, 30000),
    "png_30000x30000": lambda: png_bomb(30000),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_decompression_bomb_is_refused_from_its_header_without_the_memory(name: str) -> None:
    data = BOMBS[name]()
    width, height = (int(n) for n in name.split("_")[1].split("x"))
    assert len(data) < 1 * MB  # small on the wire...
    assert compressed_image_size(data) == (width, height)  # ...gigapixels in its header
    before = _peak_rss()
    with pytest.raises(ImageConversionError) as caught:
        compressed_msg_to_array(_compressed(data))
    assert _peak_rss() - before < BOMB_RSS_ALLOWANCE
    assert caught.value.cause == CAUSE_TOO_LARGE
    message = str(caught.value)
    assert f"{width}x{height}" in message and str(DEFAULT_MAX_IMAGE_PIXELS) in message
    assert "max_image_pixels" in message


def test_an_image_just_over_the_limit_is_refused_and_one_at_the_limit_decodes() -> None:
    jpeg = real_jpeg()  # 512 x 512
    with pytest.raises(ImageTooLargeError, match="512x512 = 262144 pixels .* limit of 262143"):
        decode_compressed(jpeg, ImageLimits(max_image_pixels=512 * 512 - 1))
    image, order = decode_compressed(jpeg, ImageLimits(max_image_pixels=512 * 512))
    assert image.shape == (512, 512, 3) and order == "bgr"


def test_compressed_data_over_the_byte_limit_is_refused() -> None:
    jpeg = real_jpeg()
    with pytest.raises(ImageTooLargeError, match=f"{len(jpeg)} bytes .*max_compressed_bytes"):
        decode_compressed(jpeg, ImageLimits(max_compressed_bytes=len(jpeg) - 1))


def test_a_raw_frame_over_the_limit_is_refused_before_its_data_is_looked_at() -> None:
    """8000x6000 bgr8 claimed with 10 bytes of data: refused as too large, not as a length mismatch,
    so the check comes before the data is touched (no copy of a huge frame is ever made)."""
    msg = Image(height=6000, width=8000, encoding="bgr8", step=24000)
    msg.data = array.array("B", bytes(10))
    with pytest.raises(ImageConversionError) as caught:
        image_msg_to_array(msg)
    assert caught.value.cause == CAUSE_TOO_LARGE
    assert "8000x6000 = 48000000 pixels" in str(caught.value) and "max_image_pixels" in str(caught.value)
    # A real frame just over a lowered limit, with its data: refused too.
    frame = np.ascontiguousarray(photo_bgr(ASTRONAUT)[:200, :300])
    msg = Image(height=200, width=300, encoding="bgr8", step=900)
    msg.data = array.array("B", frame.tobytes())
    with pytest.raises(ImageConversionError, match="over the limit of 59999"):
        image_msg_to_array(msg, ImageLimits(max_image_pixels=59_999))
    assert image_msg_to_array(msg, ImageLimits(max_image_pixels=60_000))[0].shape == (200, 300, 3)


def test_a_huge_encoding_string_is_quoted_truncated() -> None:
    msg = Image(height=30, width=30, encoding="x" * 100_000, step=90)
    msg.data = array.array("B", bytes(2700))
    with pytest.raises(ImageConversionError) as caught:
        image_msg_to_array(msg)
    assert len(str(caught.value)) < 400
    assert "100000 characters" in str(caught.value)


@pytest.mark.parametrize(("order", "channels"), [("gray", 1), ("bgra", 4), ("rgba", 4)])
def test_the_core_takes_every_channel_order_image_conversion_returns(order: str, channels: int) -> None:
    bgr = np.ascontiguousarray(photo_bgr(ASTRONAUT)[:100, :120])
    image = {
        "gray": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        "bgra": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
        "rgba": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA),
    }[order]
    gray = to_gray(image, order)
    np.testing.assert_array_equal(gray, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    if channels == 4:
        np.testing.assert_array_equal(to_bgr(image, order), bgr)
    with pytest.raises(InvalidImageError, match="channel"):
        to_gray(bgr, "gray" if channels == 4 else "bgra")  # a layout that contradicts the array


# ----------------------------------------------------------------------------------------- fuzzing
# Bounded and reproducible: the same 120 examples every run, no example database written.
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    database=None,
)


@FUZZ
@given(
    encoding=st.one_of(st.sampled_from(SUPPORTED_ENCODINGS), st.text(max_size=40)),
    width=st.integers(0, 200),
    height=st.integers(0, 200),
    extra_step=st.integers(-8, 16),
    data_delta=st.integers(-4, 4),
    big_endian=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fuzz_raw_image_conversion_either_converts_or_refuses_with_a_cause(
    encoding: str, width: int, height: int, extra_step: int, data_delta: int, big_endian: bool, seed: int
) -> None:
    """Any header and data length: a conversion the core accepts, or ImageConversionError, nothing else."""
    bytes_per_pixel = {
        "mono16": 2,
        "rgb8": 3,
        "bgr8": 3,
        "8UC3": 3,
        "rgba8": 4,
        "bgra8": 4,
        "8UC4": 4,
        "yuv422": 2,
        "uyvy": 2,
        "yuv422_yuy2": 2,
        "yuyv": 2,
    }.get(encoding, 1)
    step = max(0, width * bytes_per_pixel + extra_step)
    length = max(0, height * step + (data_delta if seed % 2 else 0))
    msg = Image(height=height, width=width, encoding=encoding, step=step, is_bigendian=int(big_endian))
    msg.data = array.array(
        "B", np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    )
    limits = ImageLimits(max_image_pixels=150 * 150)
    try:
        image, order = image_msg_to_array(msg, limits)
    except ImageConversionError as error:
        assert error.cause and str(error)
        return
    assert image.dtype == np.uint8 and image.shape[:2] == (height, width)
    assert width * height <= limits.max_image_pixels
    try:
        gray = to_gray(image, order)
    except InvalidImageError:
        assert min(width, height) < 24  # the only refusal left: too small to hold a face
        return
    assert gray.shape == (height, width)


_SOURCES = {"jpeg": real_jpeg(), "png": cv2.imencode(".png", photo_bgr(ASTRONAUT)[:64, :80])[1].tobytes()}


@FUZZ
@given(
    source=st.sampled_from(sorted(_SOURCES)),
    claimed=st.one_of(st.none(), st.tuples(st.integers(1, 65535), st.integers(1, 65535))),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 5000)),
)
def test_fuzz_compressed_images_never_decode_beyond_the_limit(
    source: str, claimed: tuple[int, int] | None, flips: list[tuple[int, int]], cut: int | None
) -> None:
    """Real JPEG/PNG data with a forged size, flipped bytes and truncation: an image within the limit,
    or ImageTooLargeError / ImageDecodeError; a header that claims more than the limit is always
    refused, and no case costs more than a bounded amount of memory."""
    data = bytearray(_SOURCES[source])
    if claimed is not None:
        if source == "jpeg":
            data = bytearray(jpeg_claiming(claimed[0], claimed[1], bytes(data)))
        else:
            import struct
            import zlib

            data[16:24] = struct.pack(">II", *claimed)
            data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    for position, value in flips:
        if 16 <= position < len(data):  # keep the magic bytes: the format check is tested elsewhere
            data[position] = value
    if cut is not None:
        data = data[: max(cut, 16)]
    limits = ImageLimits(max_image_pixels=1_000_000)
    before = _peak_rss()
    try:
        image, _ = decode_compressed(bytes(data), limits)
    except (ImageTooLargeError, ImageDecodeError):
        assert _peak_rss() - before < BOMB_RSS_ALLOWANCE
        return
    assert image.shape[0] * image.shape[1] <= limits.max_image_pixels
    if claimed is not None and not flips and cut is None:
        assert claimed[0] * claimed[1] <= limits.max_image_pixels
    assert _peak_rss() - before < BOMB_RSS_ALLOWANCE
