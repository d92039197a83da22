"""Drawing faces and their emotions on a copy of the frame, readable from 640x480 to 1920x1080."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from emotion_recognition.core.types import FaceEmotion
from emotion_recognition.spec import EMOTION_LABELS

# One BGR colour per emotion, in EMOTION_LABELS order, chosen to stay distinct from each other.
EMOTION_COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220),  # red
    "disgust": (40, 140, 40),  # dark green
    "fear": (160, 60, 150),  # purple
    "happy": (0, 210, 255),  # yellow
    "sad": (200, 120, 30),  # blue
    "surprise": (0, 140, 255),  # orange
    "neutral": (190, 190, 190),  # light grey
}
if tuple(EMOTION_COLORS) != EMOTION_LABELS:
    raise RuntimeError("EMOTION_COLORS must name every label of EMOTION_LABELS, in order")

FONT = cv2.FONT_HERSHEY_SIMPLEX
# Text height as a fraction of the image's shorter side: about 14 px at 480 and 32 px at 1080 lines.
TEXT_HEIGHT_FRACTION = 0.03


def label_text(face: FaceEmotion) -> str:
    """The caption drawn for a face, e.g. ``"#3 happy 87%"``."""
    return f"#{face.track_id} {face.label} {face.confidence * 100:.0f}%"


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    b, g, r = background
    return (0, 0, 0) if 0.114 * b + 0.587 * g + 0.299 * r > 128 else (255, 255, 255)


def draw_faces(bgr: np.ndarray, faces: Sequence[FaceEmotion]) -> np.ndarray:
    """Return a copy of ``bgr`` with each face's box and a caption (track id, label, confidence).

    Box and caption take the emotion's colour from :data:`EMOTION_COLORS`; line width and text size
    grow with the image; a caption sits above its box, or inside it when there is no room above, and
    is shifted to stay within the frame.

    Raises:
        ValueError: if ``bgr`` is not an (H, W, 3) uint8 image.
    """
    if not isinstance(bgr, np.ndarray) or bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ValueError("draw_faces() needs an (H, W, 3) uint8 BGR image; convert with core.image.to_bgr")
    out = bgr.copy()
    height, width = out.shape[:2]
    short_side = min(height, width)
    target_text_px = max(10.0, short_side * TEXT_HEIGHT_FRACTION)
    (_, unit_height), _ = cv2.getTextSize("Ag", FONT, 1.0, 1)
    font_scale = target_text_px / unit_height
    thickness = max(1, int(round(font_scale * 1.6)))
    line = max(2, int(round(short_side / 240)))
    pad = max(2, int(round(target_text_px * 0.3)))

    for face in faces:
        color = EMOTION_COLORS[face.label]
        box = face.box.clamped(width, height)
        if box.area == 0:
            continue
        cv2.rectangle(out, (box.x, box.y), (box.x + box.width - 1, box.y + box.height - 1), color, line)

        text = label_text(face)
        (text_w, text_h), baseline = cv2.getTextSize(text, FONT, font_scale, thickness)
        label_w, label_h = text_w + 2 * pad, text_h + baseline + 2 * pad
        x0 = min(max(box.x, 0), max(width - label_w, 0))
        y0 = box.y - label_h if box.y - label_h >= 0 else box.y  # above the box, else inside its top
        y0 = min(max(y0, 0), max(height - label_h, 0))
        cv2.rectangle(out, (x0, y0), (x0 + label_w - 1, y0 + label_h - 1), color, cv2.FILLED)
        cv2.putText(
            out,
            text,
            (x0 + pad, y0 + pad + text_h),
            FONT,
            font_scale,
            _text_color(color),
            thickness,
            cv2.LINE_AA,
        )
    return out
