"""One call from a camera frame to tracked faces with emotions (and, on request, an annotated image)."""

from __future__ import annotations

import threading
import time

import numpy as np

from emotion_recognition.core.classifier import EmotionClassifier
from emotion_recognition.core.detection import DetectorSettings, FaceDetector
from emotion_recognition.core.drawing import draw_faces
from emotion_recognition.core.image import to_bgr, to_gray
from emotion_recognition.core.preprocessing import crop_faces
from emotion_recognition.core.tracking import FaceTracker, TrackerSettings
from emotion_recognition.core.types import FrameResult, StageTimings
from emotion_recognition.spec import FACE_CROP_MARGIN


class EmotionPipeline:
    """Detect faces, crop them, classify all of them in one batched call, track them, draw them.

    Between full scans (every ``DetectorSettings.full_scan_interval`` frames) only the surroundings of
    the previous frame's faces are scanned; a frame where one of them is not found again, a frame of
    another size, time running backwards or a settings change brings a full scan at once.

    ``process`` and the ``update_*`` methods may be called from different threads: a settings change
    waits for the frame in progress and applies from the next frame on.

    Attributes:
        classifier: the loaded emotion model.
        crop_margin: margin passed to :func:`crop_faces` (the spec's value unless you know better).
    """

    def __init__(
        self,
        classifier: EmotionClassifier,
        detector_settings: DetectorSettings | None = None,
        tracker_settings: TrackerSettings | None = None,
        crop_margin: float = FACE_CROP_MARGIN,
    ) -> None:
        """Raises ValueError for invalid settings, and what :class:`FaceDetector` raises."""
        self.classifier = classifier
        self.crop_margin = crop_margin
        self._detector = FaceDetector(detector_settings)
        self._tracker = FaceTracker(tracker_settings)
        self._lock = threading.Lock()
        # What detect_near() needs: the previous frame's boxes, its size and time, and how many
        # frames ago the whole frame was last scanned.
        self._previous_boxes: list = []
        self._previous_shape: tuple[int, int] | None = None
        self._previous_timestamp_s: float | None = None
        self._frames_since_full_scan = 0

    @property
    def detector_settings(self) -> DetectorSettings:
        return self._detector.settings

    @property
    def cascade_path(self) -> str:
        """The Haar cascade file the detector loaded."""
        return self._detector.cascade_path

    @property
    def tracker_settings(self) -> TrackerSettings:
        return self._tracker.settings

    def update_detector_settings(self, settings: DetectorSettings) -> None:
        """Validate and apply new detector settings (ValueError keeps the old ones)."""
        settings.validate()
        with self._lock:
            self._detector.update(settings)
            self._previous_boxes = []  # the next frame is scanned whole with the new settings

    def update_tracker_settings(self, settings: TrackerSettings) -> None:
        """Validate and apply new tracker settings (ValueError keeps the old ones); tracks are kept."""
        settings.validate()
        with self._lock:
            self._tracker.update_settings(settings)

    def reset_tracking(self) -> None:
        """Forget all tracks, e.g. when the image source changes."""
        with self._lock:
            self._tracker.reset()
            self._previous_boxes = []

    def process(
        self, image: np.ndarray, timestamp_s: float, channel_order: str = "bgr", annotate: bool = False
    ) -> tuple[FrameResult, np.ndarray | None]:
        """Find and classify the faces of one frame.

        Args:
            image: the frame (gray, BGR/RGB or BGRA/RGBA, uint8 or uint16; see :mod:`core.image`).
            timestamp_s: the frame's time in seconds, for tracking.
            channel_order: "bgr" or "rgb", the order of a colour ``image``, or the layout ("gray",
                "bgra", "rgba") as image conversion returns it.
            annotate: also return a BGR copy of the frame with the faces drawn on it.

        Returns:
            The :class:`FrameResult` (faces largest first, stage timings in ms; converting to gray
            counts as detection, converting to BGR for drawing as drawing) and the annotated image,
            or None when ``annotate`` is False.

        Raises:
            InvalidImageError: for an image the pipeline cannot use (the message says why).
            ModelOutputError: the model returned NaN or infinity for this frame's faces.
        """
        timings = StageTimings()
        t0 = time.perf_counter()
        gray = to_gray(image, channel_order)
        with self._lock:
            boxes, full_scan = self._detect(gray, timestamp_s)
            t1 = time.perf_counter()
            faces = crop_faces(gray, boxes, self.crop_margin)
            t2 = time.perf_counter()
            probabilities = self.classifier.predict(faces)
            t3 = time.perf_counter()
            tracked = self._tracker.update(boxes, probabilities, timestamp_s)
            t4 = time.perf_counter()
        timings.detect_ms = (t1 - t0) * 1e3
        timings.preprocess_ms = (t2 - t1) * 1e3
        timings.classify_ms = (t3 - t2) * 1e3
        timings.track_ms = (t4 - t3) * 1e3
        annotated = None
        if annotate:
            annotated = draw_faces(to_bgr(image, channel_order), tracked)
            timings.draw_ms = (time.perf_counter() - t4) * 1e3
        result = FrameResult(
            faces=tracked,
            image_width=int(gray.shape[1]),
            image_height=int(gray.shape[0]),
            timings=timings,
            full_scan=full_scan,
        )
        return result, annotated

    def _detect(self, gray: np.ndarray, timestamp_s: float) -> tuple[list, bool]:
        """Scan around the previous frame's faces when the schedule allows and that finds them all
        again; otherwise scan the whole frame. Returns the boxes and whether the scan was full."""
        interval = self._detector.settings.full_scan_interval
        boxes = None
        if (
            self._previous_boxes
            and self._frames_since_full_scan + 1 < interval
            and self._previous_shape == gray.shape
            and self._previous_timestamp_s is not None
            and timestamp_s >= self._previous_timestamp_s
        ):
            boxes = self._detector.detect_near(gray, self._previous_boxes)
        full_scan = boxes is None
        if boxes is None:
            boxes = self._detector.detect(gray)
            self._frames_since_full_scan = 0
        else:
            self._frames_since_full_scan += 1
        self._previous_boxes = boxes
        self._previous_shape = gray.shape
        self._previous_timestamp_s = timestamp_s
        return boxes, full_scan
