"""The built-in sample: a short camera-like sequence made from real public-domain photographs.

Nothing is downloaded and nothing big is committed: the frames are composed at run time, deterministically,
from photographs that installed packages ship (:mod:`emotion_recognition.tools.photos`):

* Faces: NASA's portrait of astronaut Eileen Collins (``skimage.data.astronaut()``, public domain, NASA)
  and the U.S. Navy's portrait of Commodore Grace Hopper (matplotlib's ``sample_data/grace_hopper.jpg``,
  public domain, U.S. Navy).
* Backgrounds from scikit-image, all CC0: a coffee cup (``skimage.data.coffee()``, Rachel Michetti), the
  cameraman (``skimage.data.camera()``, Lav Varshney; his face is in profile), a brick wall
  (``skimage.data.brick()``) and grass (``skimage.data.grass()``), both from CC0Textures. The node's
  default face detector finds no face in them.

The sequence (:data:`SAMPLE_FRAME_COUNT` frames of 640x480 at :data:`SAMPLE_FPS`) has one face moving and
growing, two faces together, a stretch with no face at all, and a face zooming in, like a person walking
past a robot's camera. Every frame carries the boxes where faces were pasted, so tests and the demo can
check what was found.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emotion_recognition.core.types import Box
from emotion_recognition.tools.photos import ASTRONAUT, GRACE_HOPPER, paste_head, photo_bgr

SAMPLE_WIDTH: int = 640
SAMPLE_HEIGHT: int = 480
SAMPLE_FPS: float = 15.0
SAMPLE_FRAME_ID: str = "sample_camera_optical_frame"
# Stamp of the first frame (2026-01-01T00:00:00Z): fixed, so that the sample bag is byte-identical.
SAMPLE_START_NS: int = 1_767_225_600_000_000_000


@dataclass(frozen=True)
class _Segment:
    """A run of frames: one background panned from ``pan[0]`` to ``pan[1]`` (fractions of the free
    travel) and faces moving linearly from their start to their end placement."""

    frames: int
    background: str
    pan: tuple[float, float]
    # (photo, mirrored, (x, y, face width) at start, (x, y, face width) at end); x, y = face box centre.
    faces: tuple[tuple[str, bool, tuple[float, float, float], tuple[float, float, float]], ...]


_SEGMENTS: tuple[_Segment, ...] = (
    # One person walks in from the left and comes closer.
    _Segment(18, "coffee", (0.0, 0.5), ((ASTRONAUT, False, (170, 230, 100), (400, 250, 140)),)),
    # Two people side by side.
    _Segment(
        18,
        "camera",
        (0.2, 0.8),
        (
            (ASTRONAUT, True, (180, 220, 110), (200, 230, 120)),
            (GRACE_HOPPER, False, (460, 230, 105), (440, 220, 115)),
        ),
    ),
    # Nobody in view.
    _Segment(8, "brick", (0.0, 1.0), ()),
    # Someone steps up to the camera.
    _Segment(16, "grass", (1.0, 0.6), ((GRACE_HOPPER, False, (330, 250, 90), (320, 240, 170)),)),
)

SAMPLE_FRAME_COUNT: int = sum(segment.frames for segment in _SEGMENTS)


@dataclass(frozen=True)
class SampleFrame:
    """One frame of the sample: the BGR image, its capture stamp and where faces were pasted."""

    index: int
    stamp_ns: int
    image: np.ndarray
    face_boxes: tuple[Box, ...]


@functools.cache
def _background(name: str) -> np.ndarray:
    """A background photograph scaled to cover a frame 25% larger than the sample (room to pan)."""
    image = photo_bgr(name)
    target_w, target_h = int(SAMPLE_WIDTH * 1.25), int(SAMPLE_HEIGHT * 1.25)
    scale = max(target_w / image.shape[1], target_h / image.shape[0])
    size = (max(target_w, round(image.shape[1] * scale)), max(target_h, round(image.shape[0] * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    resized.setflags(write=False)
    return resized


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def sample_frames(count: int | None = None) -> Iterator[SampleFrame]:
    """Yield the built-in sample's frames (640x480 BGR uint8), deterministically.

    Args:
        count: how many frames to yield; ``None`` gives the whole sequence (:data:`SAMPLE_FRAME_COUNT`),
            a larger number repeats it (with stamps that keep increasing).
    """
    return _frames(_SEGMENTS, SAMPLE_FRAME_COUNT if count is None else int(count))


# One person walking slowly across the view and back: the benchmark case "640x480, one face".
_ONE_FACE_SEGMENTS: tuple[_Segment, ...] = (
    _Segment(30, "coffee", (0.0, 1.0), ((ASTRONAUT, False, (160, 230, 110), (470, 250, 130)),)),
    _Segment(30, "coffee", (1.0, 0.0), ((ASTRONAUT, False, (470, 250, 130), (160, 230, 110)),)),
)


def one_face_frames(count: int) -> Iterator[SampleFrame]:
    """Yield ``count`` 640x480 frames with exactly one real face moving to and fro (for throughput
    measurements: the issue's "640x480 bag with one face")."""
    return _frames(_ONE_FACE_SEGMENTS, int(count))


def _frames(segments: tuple[_Segment, ...], total: int) -> Iterator[SampleFrame]:
    """Render ``total`` frames of ``segments``, repeating them as needed."""
    if total < 0:
        raise ValueError(f"frame count must not be negative, got {total}")
    period_ns = round(1e9 / SAMPLE_FPS)
    index = 0
    while index < total:
        for segment in segments:
            for i in range(segment.frames):
                if index >= total:
                    return
                t = i / max(segment.frames - 1, 1)
                background = _background(segment.background)
                free_x = background.shape[1] - SAMPLE_WIDTH
                free_y = background.shape[0] - SAMPLE_HEIGHT
                pan = _lerp(segment.pan[0], segment.pan[1], t)
                x0, y0 = round(free_x * pan), round(free_y * (0.5 + 0.3 * (pan - 0.5)))
                frame = background[y0 : y0 + SAMPLE_HEIGHT, x0 : x0 + SAMPLE_WIDTH].copy()
                boxes = tuple(
                    paste_head(
                        frame,
                        name,
                        mirror,
                        _lerp(start[0], end[0], t),
                        _lerp(start[1], end[1], t),
                        _lerp(start[2], end[2], t),
                    )
                    for name, mirror, start, end in segment.faces
                )
                yield SampleFrame(index, SAMPLE_START_NS + index * period_ns, frame, boxes)
                index += 1


def write_sample_bag(
    path: Path | str,
    storage: str = "sqlite3",
    compressed: bool = False,
    topic: str = "/camera/image_raw",
    count: int | None = None,
) -> Path:
    """Write the built-in sample as a rosbag2 directory (as ``ros2 bag record`` would) and return its path.

    Args:
        path: the bag directory to create (must not exist).
        storage: ``"sqlite3"`` or ``"mcap"``.
        compressed: write ``sensor_msgs/CompressedImage`` (JPEG) instead of ``sensor_msgs/Image`` (bgr8).
        topic: the image topic name.
        count: number of frames (see :func:`sample_frames`).
    """
    from emotion_recognition.tools.bagio import write_image_bag

    frames = ((frame.image, frame.stamp_ns) for frame in sample_frames(count))
    return write_image_bag(
        path, frames, topic=topic, storage=storage, compressed=compressed, frame_id=SAMPLE_FRAME_ID
    )
