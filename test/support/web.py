"""The web server as a user runs it (``emotion_web`` in its own process), HTTP helpers for its API and
streams, and encoded real photos to upload.

Nothing here is a stand-in: requests go over TCP to the waitress server on 127.0.0.1, and the photos
are the public-domain ones of :mod:`test.support.images`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from emotion_recognition.tools.process import LoggedProcess
from test.support.images import ASTRONAUT, photo_bgr

REPO = Path(__file__).resolve().parents[2]
DEV_ENV = REPO / "scripts" / "dev-env"
ARTIFACTS = REPO / "test-artifacts"
START_TIMEOUT_S = 90.0
SERVING = re.compile(r"serving on http://([\d.]+):(\d+)/")


def encoded(name: str, extension: str = ".jpg", size: tuple[int, int] | None = None) -> bytes:
    """A public-domain photo (``astronaut``, ``coffee``, ...) encoded by OpenCV, optionally resized."""
    image = photo_bgr(name)
    if size is not None:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(extension, image)
    assert ok, f"OpenCV could not encode {name} as {extension}"
    return data.tobytes()


def astronaut_jpeg() -> bytes:
    return encoded(ASTRONAUT)


def pixel_bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid-looking PNG of a few hundred bytes whose header announces ``width`` x ``height``: a
    real 8x8 PNG with its IHDR size rewritten (and its checksum fixed)."""
    ok, data = cv2.imencode(".png", np.zeros((8, 8), np.uint8))
    assert ok
    png = bytearray(data.tobytes())
    # Signature (8) + IHDR length (4) + "IHDR" (4), then width, height, and 5 more bytes, then the CRC.
    struct.pack_into(">II", png, 16, width, height)
    struct.pack_into(">I", png, 29, zlib.crc32(bytes(png[12:29])) & 0xFFFFFFFF)
    return bytes(png)


def multipart(field: str, filename: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field; returns (body, Content-Type header)."""
    boundary = "emotion-web-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class WebServer:
    """``emotion_web`` running in the development environment on a free port of 127.0.0.1."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        # Through scripts/dev-env, so the server gets the environment even when pytest was not started by it.
        self.process = LoggedProcess(
            [str(DEV_ENV), "emotion_web", "--port", "0", *args],
            env=dict(os.environ if env is None else env),
            cwd=REPO,
            stop_timeout_s=20.0,
        )
        self.host, self.port = self._wait_for_address()

    def _wait_for_address(self) -> tuple[str, int]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            match = SERVING.search(self.process.log())
            if match:
                return match.group(1), int(match.group(2))
            if not self.process.alive:
                break
            time.sleep(0.1)
        self.process.stop()
        raise AssertionError(f"emotion_web did not start:\n{self.process.log()}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def connection(self, timeout_s: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, dict[str, Any] | bytes, str]:
        """One request on a new connection: (status, JSON or raw body, content type)."""
        connection = self.connection()
        try:
            headers = {"Content-Type": content_type} if content_type else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw, kind = response.read(), response.getheader("Content-Type", "")
            return response.status, (json.loads(raw) if kind.startswith("application/json") else raw), kind
        finally:
            connection.close()

    def events(self, timeout_s: float = 30.0) -> Iterator[dict[str, Any]]:
        """The results of ``GET /api/v1/events``, one per frame, as they come."""
        connection = self.connection(timeout_s)
        response = None
        try:
            connection.request("GET", "/api/v1/events")
            response = connection.getresponse()
            assert response.status == 200, response.read()
            assert response.getheader("Content-Type", "").startswith("text/event-stream")
            for line in response:
                if line.startswith(b"data: "):
                    yield json.loads(line[6:])
        finally:
            _close(connection, response)

    def mjpeg_frames(self, timeout_s: float = 30.0) -> Iterator[np.ndarray]:
        """The decoded JPEG frames of ``GET /stream.mjpg`` as they come."""
        connection = self.connection(timeout_s)
        response = None
        try:
            connection.request("GET", "/stream.mjpg")
            response = connection.getresponse()
            assert response.status == 200, response.read()
            assert response.getheader("Content-Type", "").startswith("multipart/x-mixed-replace")
            while True:
                length = _part_length(response)
                jpeg = response.read(length)
                response.read(2)  # CRLF after the part
                yield cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        finally:
            _close(connection, response)

    def stop(self) -> int:
        """Ctrl-C (SIGINT); returns the exit status."""
        return self.process.stop()

    def output(self) -> str:
        return self.process.log()


def _close(connection: http.client.HTTPConnection, response: http.client.HTTPResponse | None) -> None:
    """Close the socket for real (the response's file object would otherwise keep it open), as a
    browser does when a page closes."""
    if response is not None and response.fp is not None:
        response.fp.raw._sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        response.close()
    connection.close()


def _part_length(response: http.client.HTTPResponse) -> int:
    """Read one MJPEG part's headers; return its Content-Length."""
    length = None
    while True:
        line = response.readline()
        if not line:
            raise AssertionError("the MJPEG stream ended")
        line = line.strip()
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
        elif not line and length is not None:
            return length


# Upload limit the tests give the server (MiB), so that "over the limit" stays cheap to send.
TEST_UPLOAD_LIMIT_MB = 1


def hostile_uploads() -> list[tuple[str, bytes, str, int, str]]:
    """Bad uploads and what the API must answer: (case, body, Content-Type, status, text in the error)."""
    jpeg = astronaut_jpeg()
    gif = (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00"
        b"\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )
    over_limit = b"\xff\xd8\xff" + bytes(TEST_UPLOAD_LIMIT_MB * 2**20)
    gif_part, gif_part_type = multipart("image", "a.gif", "image/gif", gif)
    no_field, no_field_type = multipart("photo", "a.jpg", "image/jpeg", jpeg)
    return [
        ("empty", b"", "image/jpeg", 400, "empty upload"),
        ("random bytes", bytes(range(256)) * 8, "image/jpeg", 400, "neither JPEG nor PNG"),
        # A JPEG whose header is intact but whose image data (from the start-of-scan marker) is gone.
        (
            "corrupt jpeg",
            jpeg[: jpeg.index(b"\xff\xda")] + b"\xff\xd9",
            "image/jpeg",
            400,
            "could not be decoded",
        ),
        ("gif sent as png", gif, "image/png", 400, "neither JPEG nor PNG"),
        ("over the upload limit", over_limit, "image/jpeg", 413, "upload too large"),
        ("pixel bomb", pixel_bomb_png(), "image/png", 413, "max_image_pixels"),
        ("text", b"hello", "text/plain", 415, "unsupported content type"),
        ("gif", gif, "image/gif", 415, "unsupported content type"),
        ("no content type", jpeg, "", 415, "unsupported content type"),
        ("multipart gif", gif_part, gif_part_type, 415, "unsupported image type"),
        ("multipart without image field", no_field, no_field_type, 400, "no field 'image'"),
    ]
