"""Face detection with OpenCV's frontal-face Haar cascade (found by :mod:`emotion_recognition.core.cascade`).

The expensive part of the whole pipeline is the cascade scan, and its cost grows with the number of
pixels and the number of scales. :class:`DetectorSettings` therefore runs it, by default, on a copy
of the frame downscaled to ``detection_width`` pixels and maps the boxes back to full resolution,
with a coarser scale step than the seed's 1.1.

The defaults come from a sweep over composed frames of real faces (test/support/images.py) at
640x480 and 1280x720, timed on our 2-core machine: scanning at 384 px wide with scale step 1.2 and
faces from 60 px found every face of 93-180 px that the seed's full-resolution scan (scale factor
1.1, 5 neighbours) finds, in about a fifth of its time. Coarser choices missed faces: at 320 px
wide, 139 px faces of a 1280x720 frame (35 px after shrinking) were lost; at step 1.25 several more.
A face must measure at least CASCADE_WINDOW (24) pixels in the scanned copy, so the smallest face a
1280x720 frame can yield at the default width is 80 px; raise ``detection_width`` for smaller ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from emotion_recognition.core.cascade import CASCADE_FILE, find_cascade
from emotion_recognition.core.types import Box

__all__ = ["CASCADE_FILE", "CASCADE_WINDOW", "DetectorSettings", "FaceDetector", "default_cascade_path"]

# The frontal-face cascade's window: nothing smaller than this can be detected in the scanned image.
CASCADE_WINDOW = 24

# detect_near(): context scanned around a known face (fraction of its side, on each side: how far a
# face may move between two frames), the size the known face is shrunk to for the scan, the range of
# sizes accepted relative to the known face, and the (fine) scale step of that small scan. Measured on
# moving real faces of 80-160 px at 640x480 and 1280x720: as reliable as 48 px / 0.5 context, at
# about a third of the cost.
NEAR_CONTEXT = 0.35
NEAR_FACE_PX = 40
NEAR_SIZE_RANGE = (0.7, 1.4)
NEAR_SCALE_FACTOR = 1.1


def default_cascade_path() -> str:
    """Path of ``haarcascade_frontalface_default.xml`` as
    :func:`~emotion_recognition.core.cascade.find_cascade` finds it (cv2.data, then the distribution's
    opencv-data); CascadeNotFoundError when absent."""
    return find_cascade()


@dataclass
class DetectorSettings:
    """Every knob of the Haar face detector. Sizes are in full-resolution image pixels."""

    # Step between cascade scales; larger is faster but may miss faces between two scales (> 1.0).
    scale_factor: float = 1.2
    # Overlapping raw hits needed to report a face; higher means fewer false positives (>= 0).
    min_neighbors: int = 4
    # Smallest face reported, in pixels (side of the box). Faces smaller than
    # CASCADE_WINDOW / (detection scale) cannot be found on a downscaled frame either way.
    min_face_size: int = 60
    # Largest face reported, in pixels; 0 means no limit.
    max_face_size: int = 0
    # Width, in pixels, of the copy of the frame the cascade scans; boxes are mapped back to the full
    # frame. Frames narrower than this are scanned as they are. 0 scans at full resolution.
    detection_width: int = 384
    # Equalise the histogram of the scanned image first. Off by default: on our test frames it lost
    # faces (fewer hits per face) without removing any false positive; it may help in dim, flat light.
    equalize_histogram: bool = False
    # Report at most this many faces per frame, the largest ones (>= 1).
    max_faces: int = 10
    # Scan the whole frame only every this many frames (>= 1; 1 = every frame). In between, the
    # pipeline scans only the surroundings of the faces found in the previous frame
    # (FaceDetector.detect_near), which costs a fraction of a full scan. Whenever a known face is not
    # found again there (it left, or the scene changed) that frame is scanned whole at once; a face
    # that newly appears beside known ones is found within this many frames.
    full_scan_interval: int = 3
    # The Haar cascade file; empty: found automatically (cv2.data, then the distribution's opencv-data,
    # see emotion_recognition.core.cascade). Read when the detector is created.
    cascade_path: str = ""

    def validate(self) -> None:
        """Raise ValueError, naming the field and the reason, if a value is out of range."""
        if not np.isfinite(self.scale_factor) or self.scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1.0, got {self.scale_factor}")
        if self.scale_factor > 2.0:
            raise ValueError(
                f"scale_factor must be <= 2.0 (faces between scales are missed), got {self.scale_factor}"
            )
        if self.min_neighbors < 0:
            raise ValueError(f"min_neighbors must be >= 0, got {self.min_neighbors}")
        if self.min_face_size < 1:
            raise ValueError(f"min_face_size must be >= 1 pixel, got {self.min_face_size}")
        if self.max_face_size < 0:
            raise ValueError(f"max_face_size must be >= 0 (0 = no limit), got {self.max_face_size}")
        if self.max_face_size and self.max_face_size < self.min_face_size:
            raise ValueError(
                f"max_face_size ({self.max_face_size}) must be 0 or >= min_face_size ({self.min_face_size})"
            )
        if self.detection_width != 0 and self.detection_width < 2 * CASCADE_WINDOW:
            raise ValueError(
                f"detection_width must be 0 (full resolution) or >= {2 * CASCADE_WINDOW} pixels, "
                f"got {self.detection_width}"
            )
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {self.max_faces}")
        if self.full_scan_interval < 1:
            raise ValueError(
                f"full_scan_interval must be >= 1 (1 = scan every frame whole), got {self.full_scan_interval}"
            )


class FaceDetector:
    """Finds frontal faces in grayscale images with OpenCV's Haar cascade.

    Not thread-safe: use one detector per thread, or guard it (as :class:`EmotionPipeline` does).
    """

    def __init__(self, settings: DetectorSettings | None = None, cascade_path: str | None = None) -> None:
        """Load the cascade and check ``settings``.

        Raises:
            ValueError: for invalid settings.
            CascadeNotFoundError (a FileNotFoundError): if there is no cascade file; the message names
                the install command for this OpenCV (see :mod:`emotion_recognition.core.cascade`).
            RuntimeError: if OpenCV cannot parse the cascade file.
        """
        settings = settings if settings is not None else DetectorSettings()
        settings.validate()
        self.cascade_path = find_cascade(cascade_path or settings.cascade_path)
        self._cascade = self._load(self.cascade_path)
        self._settings = settings

    @staticmethod
    def _load(path: str) -> cv2.CascadeClassifier:
        """Load the cascade at ``path`` (RuntimeError when OpenCV cannot use it)."""
        if not hasattr(cv2, "CascadeClassifier"):
            raise RuntimeError(
                f"this OpenCV ({cv2.__version__}) has no CascadeClassifier; "
                "install opencv-python-headless 4.x"
            )
        try:
            cascade = cv2.CascadeClassifier(path)
        except (cv2.error, SystemError) as error:  # OpenCV's parse error surfaces as either
            raise RuntimeError(f"OpenCV could not parse the Haar cascade {path!r}: {error}") from error
        if cascade.empty():
            raise RuntimeError(f"OpenCV could not load the Haar cascade {path!r}")
        return cascade

    @property
    def settings(self) -> DetectorSettings:
        """The settings in use (a change takes effect through :meth:`update`)."""
        return self._settings

    def update(self, settings: DetectorSettings) -> None:
        """Replace the settings after validating them (ValueError leaves the old ones in place; a new
        ``cascade_path`` is loaded, CascadeNotFoundError/RuntimeError leave the old cascade)."""
        settings.validate()
        if settings.cascade_path != self._settings.cascade_path:
            path = find_cascade(settings.cascade_path)
            self._cascade, self.cascade_path = self._load(path), path
        self._settings = settings

    def smallest_face(self, image_width: int) -> int:
        """Side, in image pixels, of the smallest face a full scan can find in a frame this wide:
        ``min_face_size`` or the cascade window mapped back from the downscaled copy, whichever is
        larger (40 px at 640, 80 px at 1280, 120 px at 1920 wide with the defaults)."""
        return max(
            self._settings.min_face_size, int(np.ceil(CASCADE_WINDOW / self.detection_scale(image_width)))
        )

    def detection_scale(self, image_width: int) -> float:
        """Factor by which a frame ``image_width`` pixels wide is shrunk before scanning (<= 1)."""
        target = self._settings.detection_width
        if target <= 0 or image_width <= target:
            return 1.0
        return target / image_width

    @staticmethod
    def _check_gray(gray: np.ndarray) -> None:
        if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8 or gray.size == 0:
            raise ValueError(
                "detect() needs a non-empty 2-D uint8 grayscale image; convert with core.image.to_gray"
            )

    def _finish(self, boxes: list[Box]) -> list[Box]:
        """Largest first, capped at max_faces."""
        boxes.sort(key=lambda b: (-b.area, b.y, b.x))
        return boxes[: self._settings.max_faces]

    def detect_near(self, gray: np.ndarray, previous: Sequence[Box]) -> list[Box] | None:
        """Find the faces of the previous frame again, scanning only around each of them.

        Each known face's surroundings (:data:`NEAR_CONTEXT`) are shrunk so the face measures about
        :data:`NEAR_FACE_PX` pixels and scanned for faces of 0.7-1.4 times its size; the hit that
        overlaps the known box most is kept. Faces that are not among ``previous`` are not looked for.

        Returns:
            The boxes, largest first, or None when some known face was not found again, or was found
            outside the face size limits: then the caller should scan the whole frame (:meth:`detect`).

        Raises:
            ValueError: if ``gray`` is not a 2-D uint8 array.
        """
        self._check_gray(gray)
        s = self._settings
        found: list[Box] = []
        for known in previous:
            best = self._find_again(gray, known)
            if best is None:
                return None
            if all(best.iou(other) < 0.5 for other in found):  # two known boxes on one face: keep one
                found.append(best)
        kept = [
            b
            for b in found
            if b.width >= s.min_face_size and (not s.max_face_size or b.width <= s.max_face_size)
        ]
        if len(kept) < len(found):
            # A known face measured just under min_face_size (or over max_face_size) by this finer scan:
            # the full scan, which found it, decides, so a face at the size floor does not flicker.
            return None
        return self._finish(kept)

    def _find_again(self, gray: np.ndarray, known: Box) -> Box | None:
        """The hit around ``known`` (see :meth:`detect_near`) that overlaps it most; None when none does."""
        s = self._settings
        height, width = gray.shape
        side = max(known.width, known.height)
        if side <= 0:
            return None
        context = int(round(side * NEAR_CONTEXT))
        region = Box(
            known.x - context, known.y - context, known.width + 2 * context, known.height + 2 * context
        )
        region = region.clamped(width, height)
        scale = min(1.0, NEAR_FACE_PX / side)
        crop = gray[region.y : region.y + region.height, region.x : region.x + region.width]
        size = (max(1, round(region.width * scale)), max(1, round(region.height * scale)))
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else crop
        if s.equalize_histogram:
            small = cv2.equalizeHist(small)
        low = max(CASCADE_WINDOW, int(side * scale * NEAR_SIZE_RANGE[0]))
        high = max(low + 1, int(round(side * scale * NEAR_SIZE_RANGE[1])))
        if min(small.shape) < low:
            return None
        hits = self._cascade.detectMultiScale(
            small,
            scaleFactor=NEAR_SCALE_FACTOR,
            minNeighbors=s.min_neighbors,
            minSize=(low, low),
            maxSize=(high, high),
        )
        inv = 1.0 / scale
        candidates = [
            Box(
                region.x + int(round(x * inv)),
                region.y + int(round(y * inv)),
                int(round(w * inv)),
                int(round(h * inv)),
            ).clamped(width, height)
            for x, y, w, h in np.asarray(hits).reshape(-1, 4)
        ]
        best = max(candidates, key=known.iou, default=None)
        return best if best is not None and known.iou(best) > 0.0 else None

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Find faces in a 2-D uint8 grayscale image; boxes are in its pixels, largest first.

        Raises:
            ValueError: if ``gray`` is not a 2-D uint8 array (use :func:`core.image.to_gray`).
        """
        self._check_gray(gray)
        s = self._settings
        height, width = gray.shape
        scale = self.detection_scale(width)
        if scale < 1.0:
            small = cv2.resize(
                gray, (round(width * scale), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
            )
        else:
            small = gray
        if s.equalize_histogram:
            small = cv2.equalizeHist(small)
        min_side = max(CASCADE_WINDOW, int(round(s.min_face_size * scale)))
        max_side = int(round(s.max_face_size * scale)) if s.max_face_size else 0
        if max_side and max_side < min_side:
            return []
        if min(small.shape) < min_side:
            return []
        hits = self._cascade.detectMultiScale(
            small,
            scaleFactor=s.scale_factor,
            minNeighbors=s.min_neighbors,
            minSize=(min_side, min_side),
            maxSize=(max_side, max_side) if max_side else (0, 0),
        )
        if len(hits) == 0:
            return []
        inv = 1.0 / scale
        boxes = []
        for x, y, w, h in np.asarray(hits).reshape(-1, 4):
            # Map corner and size separately so that square Haar boxes stay square.
            box = Box(int(round(x * inv)), int(round(y * inv)), int(round(w * inv)), int(round(h * inv)))
            box = box.clamped(width, height)
            # Allow for the rounding of the mapping back (up to one scanned pixel).
            if box.width >= s.min_face_size - inv and (
                not s.max_face_size or box.width <= s.max_face_size + inv
            ):
                boxes.append(box)
        return self._finish(boxes)
