"""In-process sources of the live page: the built-in sample (looping), a video file (looping) or a
camera, run through the perception core with tracking, as the node runs it.

A source only works while a client watches: with nobody watching, the sample and a video pause and a
camera's frames are grabbed (to stay current) but neither decoded nor processed. Images are annotated
only while a stream client watches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Protocol

import cv2
import numpy as np

from emotion_recognition.core.image import InvalidImageError
from emotion_recognition.core.pipeline import EmotionPipeline
from emotion_recognition.spec import EMOTION_LABELS
from emotion_recognition.web.hub import STREAM, FrameHub
from emotion_recognition.web.results import frame_json

# How often an idle source checks for watchers, and waits before reopening a failed camera.
IDLE_POLL_S = 0.5
REOPEN_DELAY_S = 1.0
DEFAULT_VIDEO_FPS = 30.0


class SourceError(RuntimeError):
    """A source cannot be opened (the message names it)."""


class FrameReader(Protocol):
    """Where frames come from: ``read`` the next BGR frame (None at the end), ``skip`` one cheaply."""

    fps: float | None  # pace of a file or the sample; None for a camera, which paces itself
    description: str

    def read(self) -> np.ndarray | None: ...

    def skip(self) -> None: ...

    def close(self) -> None: ...


class SampleReader:
    """The built-in sample (:mod:`emotion_recognition.tools.sample`), looping, at its frame rate."""

    def __init__(self) -> None:
        from emotion_recognition.tools.sample import SAMPLE_FPS

        self.fps: float | None = SAMPLE_FPS
        self.description = "the built-in sample"
        self._frames: Iterator = iter(())

    def read(self) -> np.ndarray | None:
        from emotion_recognition.tools.sample import sample_frames

        frame = next(self._frames, None)
        if frame is None:
            self._frames = sample_frames()
            frame = next(self._frames)
        return frame.image

    def skip(self) -> None:
        pass

    def close(self) -> None:
        pass


class CaptureReader:
    """A video file (looping, at the file's frame rate) or a camera (``cv2.VideoCapture``)."""

    def __init__(self, target: str | int) -> None:
        self._target = target
        self.live = isinstance(target, int)
        self.description = f"camera {target}" if self.live else f"video {target}"
        self._capture = self._open()
        fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0
        self.fps = None if self.live else (fps if 0 < fps <= 240 else DEFAULT_VIDEO_FPS)

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self._target)
        ok, _ = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            capture.release()
            raise SourceError(f"cannot open {self.description} (or it has no frames)")
        if not self.live:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        return capture

    def read(self) -> np.ndarray | None:
        ok, frame = self._capture.read()
        if not ok and not self.live:  # end of the file: start again
            self._capture.release()
            self._capture = self._open()
            ok, frame = self._capture.read()
        return frame if ok else None

    def skip(self) -> None:
        if self.live:
            self._capture.grab()

    def close(self) -> None:
        self._capture.release()


class LocalSource:
    """Reads frames in a thread, runs the pipeline on them and publishes to the hub."""

    def __init__(self, reader: FrameReader, pipeline: EmotionPipeline, hub: FrameHub) -> None:
        self.reader, self.pipeline, self.hub = reader, pipeline, hub
        self.description = reader.description
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emotion_web source", daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float = 5.0) -> None:
        self._thread.join(timeout_s)
        self.reader.close()

    def _run(self) -> None:
        next_due = time.monotonic()
        while not self._stop.is_set():
            if self.hub.watchers() == 0:
                self.reader.skip()
                if not self.hub.wait_for_watchers(IDLE_POLL_S if self.reader.fps else 0.03):
                    next_due = time.monotonic()
                    continue
            next_due = self._pace(next_due)
            image = self.reader.read()
            if image is None:
                self._stop.wait(REOPEN_DELAY_S)
                continue
            self._process(image)

    def _pace(self, next_due: float) -> float:
        """Sleep until the next frame is due (files and the sample); returns the following due time."""
        if not self.reader.fps:
            return next_due
        self._stop.wait(max(next_due - time.monotonic(), 0.0))
        return max(next_due + 1.0 / self.reader.fps, time.monotonic())  # late: no catching up in bursts

    def _process(self, image: np.ndarray) -> None:
        annotate = self.hub.watchers(STREAM) > 0
        try:
            result, annotated = self.pipeline.process(image, timestamp_s=time.time(), annotate=annotate)
        except InvalidImageError as exc:
            self.error = str(exc)
            return
        answer = frame_json(result, EMOTION_LABELS, with_tracks=True)
        answer["stamp"] = time.time()
        self.hub.publish_result(answer)
        if annotated is not None:
            self.hub.publish_image(annotated)
