"""Real public-domain photographs with faces, and pasting their heads into frames.

The one home of the photos, their hand-checked face boxes and the head pasting; the built-in sample
(:mod:`emotion_recognition.tools.sample`), the tests (``test/support/images.py``) and the benchmarks
compose their frames with it. Nothing is downloaded and nothing is committed: installed packages ship
the photographs.

* ``astronaut``: NASA portrait of astronaut Eileen Collins (``skimage.data.astronaut()``, public
  domain). She smiles (FER2013 "happy").
* ``grace_hopper``: U.S. Navy portrait of Commodore Grace Hopper (matplotlib's
  ``sample_data/grace_hopper.jpg``, public domain).
* Any other ``skimage.data`` name (``coffee``, ``camera``, ``brick``, ``grass``, ``rocket``, ...) for
  face-free backgrounds (CC0 or public domain).

Face boxes (:data:`FACE_BOXES`) were drawn by hand on a 2x zoom of each photo: forehead (hair line) to
chin, cheek to cheek.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np

from emotion_recognition.core.types import Box
from emotion_recognition.tools import optional

ASTRONAUT = "astronaut"
GRACE_HOPPER = "grace_hopper"

# Face boxes in the original photographs, in their pixels (see the module docstring).
FACE_BOXES: dict[str, Box] = {
    ASTRONAUT: Box(178, 70, 94, 104),
    GRACE_HOPPER: Box(162, 140, 206, 192),
}
# Head context cut out around the face, as a fraction of the face size on each side: hair, ears and
# chin stay attached so the face looks like a face to Haar.
HEAD_CONTEXT = 0.6
# Width of the soft edge of the pasted head, as a fraction of the patch's smaller side.
FEATHER = 0.12


# A folder holding the photographs as files (``astronaut.png``, ``grace_hopper.jpg``, ...), read instead
# of the packages that ship them: the distribution-like test environment (scripts/distro-env) has neither
# scikit-image nor matplotlib, and scripts/setup-env copies the files out of their pinned wheels.
PHOTO_DIR_VARIABLE = "EMOTION_TEST_PHOTO_DIR"


def _photo_from_folder(folder: Path, name: str) -> np.ndarray:
    path = next(
        (folder / f"{name}{suffix}" for suffix in (".png", ".jpg") if (folder / f"{name}{suffix}").is_file()),
        None,
    )
    if path is None:
        raise FileNotFoundError(
            f"photo {name!r} not in {folder} ({PHOTO_DIR_VARIABLE}): run scripts/setup-env"
        )
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # gray photos become 3-channel, as below
    if image is None:
        raise FileNotFoundError(f"photo {path} cannot be read")
    return image


def _photo_from_packages(name: str) -> np.ndarray:
    if name == GRACE_HOPPER:
        matplotlib_cbook = optional.require("matplotlib.cbook", "the built-in sample")
        path = matplotlib_cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"matplotlib's sample photograph is missing: {path}")
        return image
    skimage_data = optional.require("skimage.data", "the built-in sample")
    loader = getattr(skimage_data, name, None)
    if loader is None:
        raise ValueError(f"unknown photo {name!r}")
    image = np.asarray(loader())
    if image.dtype != np.uint8:
        raise ValueError(f"photo {name!r} is {image.dtype}, expected uint8")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR)


@functools.cache
def photo_bgr(name: str) -> np.ndarray:
    """A photograph (:data:`GRACE_HOPPER`, or a ``skimage.data`` name such as ``"astronaut"``) as a
    read-only BGR uint8 array (cached); from the folder named by ``EMOTION_TEST_PHOTO_DIR`` when set."""
    folder = os.environ.get(PHOTO_DIR_VARIABLE)
    image = _photo_from_folder(Path(folder), name) if folder else _photo_from_packages(name)
    image = np.ascontiguousarray(image)
    image.setflags(write=False)
    return image


@functools.cache
def _head(name: str) -> tuple[np.ndarray, np.ndarray, Box]:
    """The head cut out of a face photograph: BGR patch, float alpha mask (soft ellipse), face box."""
    image = photo_bgr(name)
    face = FACE_BOXES[name]
    mx, my = round(face.width * HEAD_CONTEXT), round(face.height * HEAD_CONTEXT)
    region = Box(face.x - mx, face.y - my, face.width + 2 * mx, face.height + 2 * my).clamped(
        image.shape[1], image.shape[0]
    )
    patch = image[region.y : region.y + region.height, region.x : region.x + region.width].copy()
    alpha = np.zeros(patch.shape[:2], np.float32)
    centre = (region.width // 2, region.height // 2)
    cv2.ellipse(alpha, centre, (region.width // 2 - 2, region.height // 2 - 2), 0, 0, 360, 1.0, -1)
    blur = max(3, int(min(region.width, region.height) * FEATHER) | 1)
    alpha = cv2.GaussianBlur(alpha, (blur, blur), 0)
    local = Box(face.x - region.x, face.y - region.y, face.width, face.height)
    return patch, alpha, local


def paste_head(frame: np.ndarray, name: str, mirror: bool, cx: float, cy: float, face_w: float) -> Box:
    """Blend the head of photo ``name`` into ``frame`` (in place) with its face box centred at
    (``cx``, ``cy``) and ``face_w`` pixels wide, optionally mirrored; returns the face box in frame
    pixels, clipped to the frame.

    Raises:
        ValueError: the head lies entirely outside the frame.
    """
    patch, alpha, local = _head(name)
    scale = face_w / local.width
    size = (max(1, round(patch.shape[1] * scale)), max(1, round(patch.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    patch = cv2.resize(patch, size, interpolation=interpolation)
    alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)
    fx, fy = local.x * scale, local.y * scale
    fw, fh = local.width * scale, local.height * scale
    if mirror:
        patch, alpha = patch[:, ::-1], alpha[:, ::-1]
        fx = size[0] - fx - fw
    ox, oy = round(cx - fw / 2 - fx), round(cy - fh / 2 - fy)
    height, width = frame.shape[:2]
    x0, y0 = max(ox, 0), max(oy, 0)
    x1, y1 = min(ox + size[0], width), min(oy + size[1], height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"a head at ({cx:.0f}, {cy:.0f}) lies outside a {width}x{height} frame")
    a = alpha[y0 - oy : y1 - oy, x0 - ox : x1 - ox, None]
    src = patch[y0 - oy : y1 - oy, x0 - ox : x1 - ox].astype(np.float32)
    dst = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(src * a + dst * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)
    return Box(round(ox + fx), round(oy + fy), round(fw), round(fh)).clamped(width, height)
