"""Giving faces ids that stay stable while they are in view, and smoothing their emotions over time.

A face in one frame continues the track whose last box overlaps it most (greedy matching on IoU, best
pairs first). Faces that match no track start a new one with a fresh id; ids are never reused. A track
not seen for ``max_age_s`` seconds is dropped. With ``smoothing`` > 0 each track keeps an exponential
moving average of its probabilities, so a label does not flicker from one frame to the next.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emotion_recognition.core.types import Box, FaceEmotion
from emotion_recognition.spec import NUM_EMOTIONS


@dataclass
class TrackerSettings:
    """How faces are followed from frame to frame."""

    # Minimum box overlap (IoU) for a face to continue a track, in (0, 1]. A face moving half its
    # width between frames still overlaps its previous box by 1/3.
    iou_threshold: float = 0.3
    # A track not matched for longer than this many seconds expires (> 0).
    max_age_s: float = 1.0
    # Weight of the past in the exponential moving average of a track's probabilities, in [0, 1):
    # smoothed = smoothing * previous + (1 - smoothing) * current. 0 turns smoothing off.
    smoothing: float = 0.5

    def validate(self) -> None:
        """Raise ValueError, naming the field and the reason, if a value is out of range."""
        if not (0.0 < self.iou_threshold <= 1.0):
            raise ValueError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")
        if not (math.isfinite(self.max_age_s) and self.max_age_s > 0.0):
            raise ValueError(f"max_age_s must be a positive number of seconds, got {self.max_age_s}")
        if not (0.0 <= self.smoothing < 1.0):
            raise ValueError(f"smoothing must be in [0, 1) (0 = off), got {self.smoothing}")


@dataclass
class _Track:
    track_id: int
    box: Box
    probabilities: np.ndarray
    last_seen_s: float


class FaceTracker:
    """Assigns track ids to the faces of consecutive frames and smooths their probabilities.

    Not thread-safe: feed it from one thread (the pipeline holds a lock around it).
    """

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        settings = settings if settings is not None else TrackerSettings()
        settings.validate()
        self._settings = settings
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_timestamp_s: float | None = None

    @property
    def settings(self) -> TrackerSettings:
        """The settings in use (change them with :meth:`update_settings`)."""
        return self._settings

    def update_settings(self, settings: TrackerSettings) -> None:
        """Replace the settings after validating them (ValueError leaves the old ones in place).
        Existing tracks are kept."""
        settings.validate()
        self._settings = settings

    def _match(self, boxes: Sequence[Box]) -> dict[int, _Track]:
        """Greedy matching by IoU (highest first, at least ``iou_threshold``): box index -> its track."""
        pairs = sorted(
            (
                (box.iou(track.box), i, j)
                for i, box in enumerate(boxes)
                for j, track in enumerate(self._tracks)
            ),
            key=lambda p: p[0],
            reverse=True,
        )
        track_for_box: dict[int, _Track] = {}
        taken: set[int] = set()
        for iou, i, j in pairs:
            if iou < self._settings.iou_threshold:
                break
            if i in track_for_box or j in taken:
                continue
            track_for_box[i] = self._tracks[j]
            taken.add(j)
        return track_for_box

    def reset(self) -> None:
        """Forget all tracks (ids keep counting up, so an old id never comes back)."""
        self._tracks = []
        self._last_timestamp_s = None

    def update(
        self, boxes: Sequence[Box], probabilities: np.ndarray, timestamp_s: float
    ) -> list[FaceEmotion]:
        """Match this frame's faces to tracks and return them, in the order of ``boxes``.

        Args:
            boxes: face boxes of one frame.
            probabilities: ``(len(boxes), 7)`` model output for those faces.
            timestamp_s: the frame's time in seconds (e.g. its header stamp). If time runs backwards
                (a bag restarted, a clock reset) all tracks are dropped first.

        Raises:
            ValueError: if ``probabilities`` does not have one row of 7 per box, or the time is not finite.
        """
        probabilities = np.asarray(probabilities, dtype=np.float32)
        if probabilities.shape != (len(boxes), NUM_EMOTIONS):
            raise ValueError(
                f"probabilities must have shape ({len(boxes)}, {NUM_EMOTIONS}), got {probabilities.shape}"
            )
        if not math.isfinite(timestamp_s):
            raise ValueError(f"timestamp_s must be finite, got {timestamp_s}")
        if self._last_timestamp_s is not None and timestamp_s < self._last_timestamp_s:
            self.reset()
        self._last_timestamp_s = timestamp_s

        s = self._settings
        self._tracks = [t for t in self._tracks if timestamp_s - t.last_seen_s <= s.max_age_s]

        track_for_box = self._match(boxes)
        results = []
        for i, box in enumerate(boxes):
            raw = probabilities[i].copy()
            track = track_for_box.get(i)
            if track is None:
                track = _Track(self._next_id, box, raw.copy(), timestamp_s)
                self._next_id += 1
                self._tracks.append(track)
            else:
                if s.smoothing > 0.0:
                    track.probabilities = s.smoothing * track.probabilities + (1.0 - s.smoothing) * raw
                else:
                    track.probabilities = raw.copy()
                track.box = box
                track.last_seen_s = timestamp_s
            results.append(FaceEmotion(box, track.track_id, track.probabilities.copy(), raw))
        return results
