"""Turning detected face boxes into the model's input, exactly as :mod:`emotion_recognition.spec` says.

FER2013 faces are 48x48 grayscale, tightly cropped, upright and not stretched. A face box from the
detector is cropped from the grayscale frame as a square (so the face keeps its aspect ratio),
optionally widened by ``margin``, resized to 48x48 with ``cv2.INTER_AREA`` (the right filter for
shrinking; enlarging a tiny face uses the same call) and kept as raw 0-255 values in float32: the
model scales its input itself.

Why no margin (``spec.FACE_CROP_MARGIN`` = 0): running this Haar cascade on FER2013's own faces
(600 random images, upscaled to 192 px inside a replicated border) found a face in 508, and its box
covered the FER2013 image almost exactly: median side 0.97 of the image (quartiles 0.89-1.04), top-left
corner within 1% of the image's. So the Haar box, cropped as it is, frames a face the way FER2013 does.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from emotion_recognition.core.types import Box
from emotion_recognition.spec import FACE_CROP_MARGIN, INPUT_CHANNELS, INPUT_HEIGHT, INPUT_WIDTH


def square_region(box: Box, margin: float = FACE_CROP_MARGIN) -> Box:
    """The square that :func:`crop_faces` cuts for ``box``: side ``max(width, height) * (1 + 2 *
    margin)``, centred on the box. It may extend beyond the image (see :func:`crop_faces`)."""
    side = max(1, int(round(max(box.width, box.height) * (1.0 + 2.0 * margin))))
    cx, cy = box.center
    return Box(int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side, side)


def crop_faces(gray: np.ndarray, boxes: Sequence[Box], margin: float = FACE_CROP_MARGIN) -> np.ndarray:
    """Cut each face out of a grayscale frame as model input.

    Each box becomes the square :func:`square_region` (the larger side of the box, plus ``margin`` of
    it on every side, centred on the box). Where that square reaches past the image border, the
    missing pixels repeat the border (``cv2.BORDER_REPLICATE``) instead of squeezing the face.

    Args:
        gray: 2-D uint8 grayscale frame (see :func:`emotion_recognition.core.image.to_gray`).
        boxes: face boxes in ``gray``'s pixels; each must overlap the image.
        margin: fraction of the box side added on each side (>= 0).

    Returns:
        ``(N, 48, 48, 1)`` float32 array of raw 0-255 pixels; ``(0, 48, 48, 1)`` for no boxes.

    Raises:
        ValueError: for a non-gray image, a negative margin or a box that lies outside the image.
    """
    if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("crop_faces() needs a 2-D uint8 grayscale image; convert with core.image.to_gray")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    height, width = gray.shape
    out = np.empty((len(boxes), INPUT_HEIGHT, INPUT_WIDTH, INPUT_CHANNELS), dtype=np.float32)
    face = np.empty((INPUT_HEIGHT, INPUT_WIDTH), dtype=np.uint8)
    for i, box in enumerate(boxes):
        if box.width <= 0 or box.height <= 0 or box.clamped(width, height).area == 0:
            raise ValueError(f"face box {box} is empty or outside the {width}x{height} image")
        region = square_region(box, margin)
        inside = region.clamped(width, height)
        crop = gray[inside.y : inside.y + inside.height, inside.x : inside.x + inside.width]
        if inside != region:
            crop = cv2.copyMakeBorder(
                crop,
                inside.y - region.y,
                region.y + region.height - inside.y - inside.height,
                inside.x - region.x,
                region.x + region.width - inside.x - inside.width,
                cv2.BORDER_REPLICATE,
            )
        cv2.resize(crop, (INPUT_WIDTH, INPUT_HEIGHT), dst=face, interpolation=cv2.INTER_AREA)
        out[i, :, :, 0] = face
    return out
