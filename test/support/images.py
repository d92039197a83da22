"""Real photographs for tests and benchmarks, and frames composed from them.

The photographs, their hand-checked face boxes and the head pasting live in
:mod:`emotion_recognition.tools.photos` (shared with the built-in sample); this module composes test
frames from them.

* Faces: ``astronaut`` (Eileen Collins, NASA) and ``grace_hopper`` (U.S. Navy), both public domain.
* Face-free: ``coffee``, ``rocket``, ``brick``, ``grass``, ``gravel`` from ``skimage.data``. OpenCV's
  ``haarcascade_frontalface_default.xml`` finds no face in any of them at scaleFactor 1.1,
  minNeighbors 5, minSize 30x30 on the full-resolution image (checked with opencv-python-headless
  4.14), nor with the core's default :class:`DetectorSettings` (asserted in test/core/test_detection.py).
  Rescaled to 640x480 or 1280x720, ``grass`` and ``gravel`` do give Haar false positives at those
  settings, so frames are composed on :data:`BACKGROUND_NAMES` (coffee, rocket, brick) only.

Haar boxes frame a face a little differently from the hand-drawn :data:`FACE_BOXES` (brows to below
the mouth), so compare with an IoU threshold (:data:`FACE_MATCH_IOU`), not equality.

All images are BGR uint8 (OpenCV's order). Cached originals are read-only; every function that
builds a frame returns a new, writable array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from emotion_recognition.core.types import Box
from emotion_recognition.tools.photos import (
    ASTRONAUT,
    FACE_BOXES,
    GRACE_HOPPER,
    HEAD_CONTEXT,
    paste_head,
    photo_bgr,
)

FACE_NAMES: tuple[str, ...] = (ASTRONAUT, GRACE_HOPPER)
FACE_FREE_NAMES: tuple[str, ...] = ("coffee", "rocket", "brick", "grass", "gravel")
BACKGROUND_NAMES: tuple[str, ...] = ("coffee", "rocket", "brick")


# A detection "is" a face of the ground truth when their IoU reaches this (Haar framing differs).
FACE_MATCH_IOU = 0.5


def photo_gray(name: str) -> np.ndarray:
    """The named photograph as a new grayscale uint8 array."""
    return cv2.cvtColor(photo_bgr(name), cv2.COLOR_BGR2GRAY)


def face_box(name: str) -> Box:
    """Hand-checked face box of a face photo (pixels of :func:`photo_bgr`)."""
    return FACE_BOXES[name]


def best_iou(box: Box, candidates: Sequence[Box]) -> float:
    """The largest IoU between ``box`` and any of ``candidates`` (0.0 for none)."""
    return max((box.iou(c) for c in candidates), default=0.0)


def match_faces(expected: Sequence[Box], found: Sequence[Box], threshold: float = FACE_MATCH_IOU) -> int:
    """How many ``expected`` boxes have a distinct ``found`` box with IoU >= threshold (greedy)."""
    pairs = sorted(
        ((e.iou(f), i, j) for i, e in enumerate(expected) for j, f in enumerate(found)), reverse=True
    )
    used_e: set[int] = set()
    used_f: set[int] = set()
    for iou, i, j in pairs:
        if iou < threshold:
            break
        if i not in used_e and j not in used_f:
            used_e.add(i)
            used_f.add(j)
    return len(used_e)


def background_bgr(width: int, height: int, name: str = "coffee") -> np.ndarray:
    """A face-free photo scaled and centre-cropped to fill ``width`` x ``height`` (new array)."""
    image = photo_bgr(name)
    scale = max(width / image.shape[1], height / image.shape[0])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(image, size, interpolation=interpolation)
    x0 = (resized.shape[1] - width) // 2
    y0 = (resized.shape[0] - height) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])


@dataclass(frozen=True)
class FacePlacement:
    """Where a face goes in a composed frame: the top-left corner of its face box, its width in
    pixels and whether it is mirrored."""

    name: str
    x: int
    y: int
    face_width: int
    mirror: bool = False


def paste_face(frame: np.ndarray, placement: FacePlacement) -> Box:
    """Paste a head into ``frame`` (in place, :func:`~emotion_recognition.tools.photos.paste_head`) and
    return the face box in frame pixels, clipped to the frame."""
    face = FACE_BOXES[placement.name]
    face_height = face.height * placement.face_width / face.width
    return paste_head(
        frame,
        placement.name,
        placement.mirror,
        placement.x + placement.face_width / 2,
        placement.y + face_height / 2,
        placement.face_width,
    )


def compose_frame(
    width: int, height: int, placements: Sequence[FacePlacement], background: str = "coffee"
) -> tuple[np.ndarray, list[Box]]:
    """A ``width`` x ``height`` BGR frame: a face-free photo with real faces pasted on it.

    Returns the frame and the expected face boxes, in the order of ``placements``.
    """
    frame = background_bgr(width, height, background)
    boxes = [paste_face(frame, p) for p in placements]
    return frame, boxes


def grid_placements(
    width: int, height: int, n_faces: int, face_width: int | None = None
) -> list[FacePlacement]:
    """Lay ``n_faces`` faces out on a grid (one per cell, centred), alternating the astronaut and Grace
    Hopper, every second one mirrored. ``face_width`` defaults to a size that fits the cell with its
    head context, at most a quarter of the frame height (120 px for one face at 640x480, 93 px for
    four)."""
    if n_faces < 1:
        return []
    cols = int(np.ceil(np.sqrt(n_faces)))
    rows = int(np.ceil(n_faces / cols))
    cell_w, cell_h = width // cols, height // rows
    if face_width is None:
        # The head patch is about (1 + 2 * HEAD_CONTEXT) face sizes; leave some room in the cell.
        face_width = int(min(cell_w, cell_h * 0.9) / (1.0 + 2.0 * HEAD_CONTEXT) * 0.95)
        face_width = min(face_width, height // 4)
    placements = []
    for i in range(n_faces):
        name = FACE_NAMES[i % len(FACE_NAMES)]
        face = FACE_BOXES[name]
        face_height = round(face.height * face_width / face.width)
        row, col = divmod(i, cols)
        x = col * cell_w + (cell_w - face_width) // 2
        y = row * cell_h + (cell_h - face_height) // 2
        placements.append(FacePlacement(name, x, y, face_width, mirror=(i // 2) % 2 == 1))
    return placements


def multi_face_frame(
    width: int, height: int, n_faces: int, background: str = "coffee", face_width: int | None = None
) -> tuple[np.ndarray, list[Box]]:
    """A frame with ``n_faces`` real faces on a grid (see :func:`grid_placements`) and their boxes."""
    return compose_frame(width, height, grid_placements(width, height, n_faces, face_width), background)


def moving_face_sequence(
    width: int = 640,
    height: int = 480,
    n_frames: int = 10,
    name: str = ASTRONAUT,
    face_width: int = 110,
    start: tuple[int, int] = (120, 150),
    step: tuple[int, int] = (20, 4),
    background: str = "coffee",
) -> list[tuple[np.ndarray, Box]]:
    """Frames of one face translating across a background by ``step`` pixels per frame.

    Returns ``[(frame, face_box), ...]``.
    """
    frames = []
    for i in range(n_frames):
        placement = FacePlacement(name, start[0] + i * step[0], start[1] + i * step[1], face_width)
        frame, boxes = compose_frame(width, height, [placement], background)
        frames.append((frame, boxes[0]))
    return frames


def bgr_to_yuv422(bgr: np.ndarray, order: str) -> np.ndarray:
    """Packed 4:2:2 (2 channels) of an even-width BGR image: OpenCV's encoder where it has one (4.7+);
    the distribution's OpenCV 4.6 only decodes 4:2:2, so there it is packed here from BGR -> YUV."""
    code = getattr(cv2, "COLOR_BGR2YUV_UYVY" if order == "uyvy" else "COLOR_BGR2YUV_YUY2", None)
    if code is not None:
        return cv2.cvtColor(bgr, code)
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV).astype(np.uint16)
    y, u, v = yuv[..., 0], yuv[..., 1], yuv[..., 2]
    u_pair = ((u[:, 0::2] + u[:, 1::2] + 1) // 2).astype(np.uint8)
    v_pair = ((v[:, 0::2] + v[:, 1::2] + 1) // 2).astype(np.uint8)
    packed = np.empty(bgr.shape[:2] + (2,), np.uint8)
    chroma, luma = (0, 1) if order == "uyvy" else (1, 0)
    packed[:, 0::2, chroma], packed[:, 1::2, chroma] = u_pair, v_pair
    packed[..., luma] = y
    return packed
