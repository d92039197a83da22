"""Plain result types shared by the core, the node, the bag tools and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emotion_recognition.spec import EMOTION_LABELS


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in image pixels: top-left corner (x, y), width and height."""

    x: int
    y: int
    width: int
    height: int

    def clamped(self, image_width: int, image_height: int) -> Box:
        """Return this box clipped to an image of the given size (may become empty)."""
        x0 = min(max(self.x, 0), image_width)
        y0 = min(max(self.y, 0), image_height)
        x1 = min(max(self.x + self.width, 0), image_width)
        y1 = min(max(self.y + self.height, 0), image_height)
        return Box(x0, y0, x1 - x0, y1 - y0)

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.width / 2.0, self.y + self.height / 2.0)

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0.0 when either box is empty)."""
        ix0, iy0 = max(self.x, other.x), max(self.y, other.y)
        ix1 = min(self.x + self.width, other.x + other.width)
        iy1 = min(self.y + self.height, other.y + other.height)
        inter = max(ix1 - ix0, 0) * max(iy1 - iy0, 0)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class FaceEmotion:
    """One face in one frame: where it is, which track it belongs to and how it seems to feel.

    ``probabilities`` holds one value per entry of :data:`emotion_recognition.spec.EMOTION_LABELS`, in
    that order; when temporal smoothing is on they are the track's smoothed probabilities, and
    ``raw_probabilities`` are this frame's unsmoothed model output.
    """

    box: Box
    track_id: int
    probabilities: np.ndarray
    raw_probabilities: np.ndarray

    @property
    def label_index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def label(self) -> str:
        return EMOTION_LABELS[self.label_index]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.label_index])


@dataclass
class StageTimings:
    """Milliseconds spent in each stage of one frame."""

    detect_ms: float = 0.0
    preprocess_ms: float = 0.0
    classify_ms: float = 0.0
    track_ms: float = 0.0
    draw_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.detect_ms + self.preprocess_ms + self.classify_ms + self.track_ms + self.draw_ms


@dataclass
class FrameResult:
    """Everything the pipeline found in one frame. ``faces`` is empty when no face was found."""

    faces: list[FaceEmotion] = field(default_factory=list)
    image_width: int = 0
    image_height: int = 0
    timings: StageTimings = field(default_factory=StageTimings)
    # True when the whole frame was scanned for faces, False when only the surroundings of the
    # previous frame's faces were (see DetectorSettings.full_scan_interval).
    full_scan: bool = True
