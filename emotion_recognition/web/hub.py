"""The meeting point of a source (sample, video, camera or ROS) and the clients watching it.

A source publishes per-frame results and annotated images; streaming clients wait for the next one.
The hub keeps only the newest image (encoded to JPEG at most once, and only when a client asks) and the
last :data:`RESULT_HISTORY` results, so memory stays bounded whatever the number of clients. It counts
the clients watching each kind of stream, so that a source can skip work nobody would see, and caps
them (:class:`TooManyWatchers`), so that streams can never occupy every server thread.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

# Results kept for event clients that fall behind (about 4 s at 15 frames per second).
RESULT_HISTORY = 64
JPEG_QUALITY = 80

STREAM = "stream"  # clients of the MJPEG stream (annotated images)
EVENTS = "events"  # clients of the Server-Sent Events (results)


class TooManyWatchers(RuntimeError):
    """Every streaming slot is taken (the message says how many there are)."""


@dataclass
class ImageFrame:
    """The newest annotated image, with its JPEG encoding made on first request."""

    seq: int
    image: np.ndarray
    _jpeg: bytes | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def jpeg(self) -> bytes:
        """The image as JPEG, encoded once however many clients ask."""
        with self._lock:
            if self._jpeg is None:
                ok, data = cv2.imencode(".jpg", self.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise RuntimeError("OpenCV could not encode the annotated image as JPEG")
                self._jpeg = data.tobytes()
            return self._jpeg


class Watch:
    """One client's slot; :meth:`close` gives it back (idempotent)."""

    def __init__(self, hub: FrameHub, kind: str) -> None:
        self._hub, self.kind, self._open = hub, kind, True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._hub._release(self.kind)


class FrameHub:
    """Latest images and recent results of one source, shared by all streaming clients."""

    def __init__(self, max_watchers: int = 8) -> None:
        self.max_watchers = max_watchers
        self._condition = threading.Condition()
        self._image: ImageFrame | None = None
        self._image_seq = 0
        self._results: collections.deque[tuple[int, dict[str, Any]]] = collections.deque(
            maxlen=RESULT_HISTORY
        )
        self._result_seq = 0
        self._watchers = {STREAM: 0, EVENTS: 0}
        self._listeners: list[Callable[[], None]] = []
        self.closed = False
        self.frames_published = 0

    # --- the source's side ---
    def publish_result(self, result: dict[str, Any]) -> None:
        """Add one frame's result (JSON-ready) and wake the event clients."""
        with self._condition:
            self._result_seq += 1
            self._results.append((self._result_seq, result))
            self.frames_published += 1
            self._condition.notify_all()

    def publish_image(self, image: np.ndarray) -> None:
        """Replace the newest annotated image (BGR) and wake the stream clients."""
        with self._condition:
            self._image_seq += 1
            self._image = ImageFrame(self._image_seq, image)
            self._condition.notify_all()

    def watchers(self, kind: str | None = None) -> int:
        """Clients watching ``kind`` (:data:`STREAM` or :data:`EVENTS`), or all of them."""
        with self._condition:
            return sum(self._watchers.values()) if kind is None else self._watchers[kind]

    def wait_for_watchers(self, timeout_s: float) -> bool:
        """Wait until some client watches (or the hub closes); True when one does."""
        with self._condition:
            self._condition.wait_for(lambda: self.closed or sum(self._watchers.values()) > 0, timeout_s)
            return sum(self._watchers.values()) > 0 and not self.closed

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the client's thread) whenever the number of watchers changes."""
        self._listeners.append(callback)

    # --- the clients' side ---
    def watch(self, kind: str) -> Watch:
        """Take a streaming slot of ``kind``; close the returned :class:`Watch` when done.

        Raises:
            TooManyWatchers: all :attr:`max_watchers` slots are taken.
        """
        with self._condition:
            if sum(self._watchers.values()) >= self.max_watchers:
                raise TooManyWatchers(f"all {self.max_watchers} streaming slots are taken; try again later")
            self._watchers[kind] += 1
        self._notify_listeners()
        return Watch(self, kind)

    def _release(self, kind: str) -> None:
        with self._condition:
            self._watchers[kind] -= 1
            self._condition.notify_all()
        self._notify_listeners()

    def _notify_listeners(self) -> None:
        for callback in self._listeners:
            callback()

    def next_image(self, after_seq: int, timeout_s: float) -> ImageFrame | None:
        """The newest image if it is newer than ``after_seq``, waiting up to ``timeout_s`` for one;
        None on timeout or when the hub closes."""
        with self._condition:
            self._condition.wait_for(
                lambda: self.closed or (self._image is not None and self._image.seq > after_seq), timeout_s
            )
            if self.closed or self._image is None or self._image.seq <= after_seq:
                return None
            return self._image

    def latest_image(self) -> ImageFrame | None:
        with self._condition:
            return self._image

    def next_results(self, after_seq: int, timeout_s: float) -> list[tuple[int, dict[str, Any]]]:
        """The kept results newer than ``after_seq`` (oldest first), waiting up to ``timeout_s`` for
        one; empty on timeout or when the hub closes."""
        with self._condition:
            self._condition.wait_for(lambda: self.closed or self._result_seq > after_seq, timeout_s)
            if self.closed:
                return []
            return [(seq, result) for seq, result in self._results if seq > after_seq]

    def latest_result_seq(self) -> int:
        with self._condition:
            return self._result_seq

    def close(self) -> None:
        """Wake and end every waiting client (server shutdown)."""
        with self._condition:
            self.closed = True
            self._condition.notify_all()
