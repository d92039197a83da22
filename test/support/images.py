"""Real photographs for tests and benchmarks, and frames composed from them.

Every picture here is a public-domain photograph that an installed package ships, so nothing is
downloaded and nothing is committed:

* ``astronaut``: NASA portrait of astronaut Eileen Collins, shipped by scikit-image
  (``skimage.data.astronaut()``), public domain (NASA). She smiles (FER2013 "happy").
* ``grace_hopper``: official U.S. Navy portrait of Commodore Grace Hopper, shipped by matplotlib
  (``mpl-data/sample_data/grace_hopper.jpg``), public domain (U.S. Navy).
* Face-free: ``coffee``, ``rocket``, ``brick``, ``grass``, ``gravel`` from ``skimage.data``. OpenCV's
  ``haarcascade_frontalface_default.xml`` finds no face in any of them at scaleFactor 1.1,
  minNeighbors 5, minSize 30x30 on the full-resolution image (checked with opencv-python-headless
  4.14), nor with the core's default :class:`DetectorSettings` (asserted in test/core/test_detection.py).
  Rescaled to 640x480 or 1280x720, ``grass`` and ``gravel`` do give Haar false positives at those
  settings, so frames are composed on :data:`BACKGROUND_NAMES` (coffee, rocket, brick) only.

Face boxes (:data:`FACE_BOXES`) were drawn by hand on a 2x zoom of each photo: forehead (hair line)
to chin, cheek to cheek. Haar boxes frame a face a little differently (brows to below the mouth), so
compare with an IoU threshold (:data:`FACE_MATCH_IOU`), not equality.

All images are BGR uint8 (OpenCV's order). Cached originals are read-only; every function that
builds a frame returns a new, writable array.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from emotion_recognition.core.types import Box
from emotion_recognition.tools import sample
from emotion_recognition.tools.sample import GRACE_HOPPER

# The distribution-like environment (scripts/distro-env) has neither scikit-image nor matplotlib:
# scripts/setup-env copies the photographs out of their pinned wheels into this folder instead.
PHOTO_DIR_VARIABLE = "EMOTION_TEST_PHOTO_DIR"

ASTRONAUT = "astronaut"
FACE_NAMES: tuple[str, ...] = (ASTRONAUT, GRACE_HOPPER)
FACE_FREE_NAMES: tuple[str, ...] = ("coffee", "rocket", "brick", "grass", "gravel")
BACKGROUND_NAMES: tuple[str, ...] = ("coffee", "rocket", "brick")

# Hand-checked face boxes in the original photographs (see module docstring).
FACE_BOXES: dict[str, Box] = {
    ASTRONAUT: Box(178, 70, 94, 104),
    GRACE_HOPPER: Box(162, 140, 206, 192),
}
ASTRONAUT_FACE_BOX = FACE_BOXES[ASTRONAUT]
GRACE_HOPPER_FACE_BOX = FACE_BOXES[GRACE_HOPPER]

# A detection "is" a face of the ground truth when their IoU reaches this (Haar framing differs).
FACE_MATCH_IOU = 0.5

# Context kept around the face when it is cut out for pasting, as a fraction of the face box size on
# each side: hair, ears and chin stay attached so the face looks like a face to Haar.
HEAD_CONTEXT = 0.6


@functools.lru_cache(maxsize=None)
def photo_bgr(name: str) -> np.ndarray:
    """The named photograph as a read-only BGR uint8 array: from the installed scikit-image /
    matplotlib (``emotion_recognition.tools.sample.photo_bgr``), or, when ``EMOTION_TEST_PHOTO_DIR``
    is set, from the same files copied out of their wheels (``<name>.png`` / ``.jpg``)."""
    folder = os.environ.get(PHOTO_DIR_VARIABLE)
    if not folder:
        return sample.photo_bgr(name)
    candidates = [Path(folder) / f"{name}{suffix}" for suffix in (".png", ".jpg")]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise FileNotFoundError(
            f"photo {name!r} not in {folder} ({PHOTO_DIR_VARIABLE}): run scripts/setup-env"
        )
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # gray photos become 3-channel, as in sample.py
    image = np.ascontiguousarray(image)
    image.setflags(write=False)
    return image


def photo_gray(name: str) -> np.ndarray:
    """The named photograph as a new grayscale uint8 array."""
    return cv2.cvtColor(photo_bgr(name), cv2.COLOR_BGR2GRAY)


def face_box(name: str) -> Box:
    """Hand-checked face box of a face photo (pixels of :func:`photo_bgr`)."""
    return FACE_BOXES[name]


def scale_box(box: Box, scale: float, dx: float = 0.0, dy: float = 0.0) -> Box:
    """Scale a box about the origin, then shift it by (dx, dy); coordinates rounded to pixels."""
    x0 = round(box.x * scale + dx)
    y0 = round(box.y * scale + dy)
    x1 = round((box.x + box.width) * scale + dx)
    y1 = round((box.y + box.height) * scale + dy)
    return Box(x0, y0, x1 - x0, y1 - y0)


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


def head_patch(name: str, face_width: int, mirror: bool = False) -> tuple[np.ndarray, Box]:
    """Cut the head (face plus :data:`HEAD_CONTEXT`) out of a face photo, scaled so that the face box
    is ``face_width`` pixels wide, optionally mirrored left-right.

    Returns the new BGR patch and the face box inside it.
    """
    image = photo_bgr(name)
    face = FACE_BOXES[name]
    mx, my = round(face.width * HEAD_CONTEXT), round(face.height * HEAD_CONTEXT)
    region = Box(face.x - mx, face.y - my, face.width + 2 * mx, face.height + 2 * my).clamped(
        image.shape[1], image.shape[0]
    )
    crop = image[region.y : region.y + region.height, region.x : region.x + region.width]
    scale = face_width / face.width
    size = (max(1, round(region.width * scale)), max(1, round(region.height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    patch = cv2.resize(crop, size, interpolation=interpolation)
    local = scale_box(face, scale, dx=-region.x * scale, dy=-region.y * scale)
    if mirror:
        patch = np.ascontiguousarray(patch[:, ::-1])
        local = Box(patch.shape[1] - local.x - local.width, local.y, local.width, local.height)
    return patch, local


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
    """Paste a head patch into ``frame`` (in place) and return the face box in frame pixels.

    The patch is clipped at the frame border; the returned box is clipped too.
    """
    patch, local = head_patch(placement.name, placement.face_width, placement.mirror)
    ox, oy = placement.x - local.x, placement.y - local.y
    height, width = frame.shape[:2]
    x0, y0 = max(ox, 0), max(oy, 0)
    x1, y1 = min(ox + patch.shape[1], width), min(oy + patch.shape[0], height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"{placement} lies outside a {width}x{height} frame")
    frame[y0:y1, x0:x1] = patch[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return Box(placement.x, placement.y, local.width, local.height).clamped(width, height)


def compose_frame(
    width: int, height: int, placements: Sequence[FacePlacement], background: str = "coffee"
) -> tuple[np.ndarray, list[Box]]:
    """A ``width`` x ``height`` BGR frame: a face-free photo with real faces pasted on it.

    Returns the frame and the expected face boxes, in the order of ``placements``.
    """
    frame = background_bgr(width, height, background)
    boxes = [paste_face(frame, p) for p in placements]
    return frame, boxes


def grid_placements(width: int, height: int, n_faces: int, face_width: int | None = None) -> list[FacePlacement]:
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
