"""``POST /api/v1/emotions``: one encoded image in, its faces and emotions out.

Every image is processed on its own: the pipeline's tracks are reset first and the whole frame is
scanned (``full_scan_interval`` 1), so an answer never depends on earlier requests. A pool of
pipelines (each with its own model interpreter, which is not thread-safe) serves concurrent requests;
decoding happens while a pipeline is held, so at most ``workers`` decoded images exist at once.
"""

from __future__ import annotations

import base64
import dataclasses
import queue
import time
from pathlib import Path
from typing import Any

import cv2

from emotion_recognition.core.image import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_IMAGE_PIXELS,
    ImageLimits,
    decode_compressed,
)
from emotion_recognition.core.pipeline import EmotionPipeline
from emotion_recognition.spec import EMOTION_LABELS
from emotion_recognition.web.results import frame_json

ANNOTATED_JPEG_QUALITY = 90


class ImageAnalyzer:
    """A pool of independent pipelines for single images.

    Attributes:
        labels: the label order of every probability vector (``spec.EMOTION_LABELS``).
        model_path: the model file the pipelines run.
        max_image_pixels: images with more pixels are refused before decoding.
    """

    def __init__(
        self, pipelines: list[EmotionPipeline], max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    ) -> None:
        if not pipelines:
            raise ValueError("ImageAnalyzer needs at least one pipeline")
        self._pool: queue.Queue[EmotionPipeline] = queue.Queue()
        for pipeline in pipelines:
            pipeline.update_detector_settings(
                dataclasses.replace(pipeline.detector_settings, full_scan_interval=1)
            )
            self._pool.put(pipeline)
        self.workers = len(pipelines)
        self.labels: tuple[str, ...] = EMOTION_LABELS
        self.model_path = Path(pipelines[0].classifier.path)
        self.max_image_pixels = max_image_pixels
        self.limits = ImageLimits(max_image_pixels, DEFAULT_LIMITS.max_compressed_bytes)
        self.limits.validate()

    def analyze(self, data: bytes, annotate: bool = False) -> dict[str, Any]:
        """The emotions of one JPEG or PNG image, as the API's JSON answer.

        Raises:
            ImageTooLargeError: more than :attr:`max_image_pixels` pixels.
            InvalidImageError: empty, not JPEG/PNG, or corrupt data.
        """
        pipeline = self._pool.get()
        try:
            t0 = time.perf_counter()
            image, channel_order = decode_compressed(data, self.limits)
            decode_ms = (time.perf_counter() - t0) * 1e3
            pipeline.reset_tracking()
            result, annotated = pipeline.process(
                image, timestamp_s=0.0, channel_order=channel_order, annotate=annotate
            )
        finally:
            self._pool.put(pipeline)
        answer = frame_json(result, self.labels, with_tracks=False, decode=decode_ms)
        if annotated is not None:
            ok, jpeg = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, ANNOTATED_JPEG_QUALITY])
            if ok:
                answer["annotated_image"] = {
                    "content_type": "image/jpeg",
                    "base64": base64.b64encode(jpeg.tobytes()).decode("ascii"),
                }
        return answer
