"""Decompression bombs and other hostile images, made in the test from real photographs.

* :func:`jpeg_claiming`: a real JPEG of the astronaut photo whose SOF0 header is edited to claim another
  size (65500x16384: libjpeg would allocate gigabytes for it). The data stays a few tens of KB.
* :func:`png_bomb`: a valid PNG of N x N gray pixels, all zero, compressed with zlib at level 9: a
  30000x30000 image (900 MB decoded) is under 1 MB of data.
* :func:`process_memory`: the ``VmRSS`` / ``VmHWM`` (peak) of a process, from ``/proc/<pid>/status``.
"""

from __future__ import annotations

import functools
import struct
import zlib
from pathlib import Path

import cv2

from test.support.images import ASTRONAUT, photo_bgr

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SOF0 = b"\xff\xc0"


@functools.cache
def real_jpeg(quality: int = 95) -> bytes:
    """The astronaut photograph (512x512) as a JPEG encoded by OpenCV."""
    ok, encoded = cv2.imencode(".jpg", photo_bgr(ASTRONAUT), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return encoded.tobytes()


def jpeg_claiming(width: int, height: int, source: bytes | None = None) -> bytes:
    """``source`` (default :func:`real_jpeg`) with the width and height of its SOF0 segment replaced.

    SOF0 is ``FF C0``, a 2-byte length, the sample precision (1 byte), then height and width (2 bytes
    each, big-endian).
    """
    data = bytearray(source if source is not None else real_jpeg())
    at = data.find(_SOF0)
    assert at > 0, "no SOF0 (baseline) segment in the JPEG"
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


@functools.cache
def png_bomb(side: int) -> bytes:
    """A valid ``side`` x ``side`` 8-bit gray PNG of zeros (each row: filter byte 0, then zeros).

    One block of rows is deflated with a full flush (which makes its output independent of what came
    before) and that output repeated, so a 900 MB image is made in a fraction of a second.
    """
    rows_per_block = next(
        n for n in range(min(side, max(1, (16 << 20) // (side + 1))), 0, -1) if side % n == 0
    )
    block = bytes((side + 1) * rows_per_block)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(side // rows_per_block):
        checksum = zlib.adler32(block, checksum)
    stream = (
        b"\x78\xda"
        + piece * (side // rows_per_block)
        + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
        + struct.pack(">I", checksum)
    )
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return PNG_MAGIC + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def process_memory(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak resident set) of process ``pid`` in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024  # reported in kB
    return values
