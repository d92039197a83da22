"""What the demo and the bag processor write about the node's answers: the CSV timeline, the per-track
label tally and the summary lines about tracks.

Everything is read from ``emotion_msgs/FaceEmotionArray`` messages themselves (rclpy or rosbags), so
the CSV, the tally and the published or recorded messages cannot disagree. No rclpy import.
"""

from __future__ import annotations

import collections
import csv
from collections.abc import Mapping, Sequence
from typing import IO, Any

from emotion_recognition.ros.messages import NS_PER_S, stamp_ns

CSV_NAME = "timeline.csv"


def csv_header(labels: Sequence[str]) -> list[str]:
    """Columns of the timeline CSV: one probability column per label, in the model's order."""
    return [
        "frame",
        "stamp_ns",
        "time_s",
        "track_id",
        "x",
        "y",
        "width",
        "height",
        "label",
        "confidence",
        *[f"p_{label}" for label in labels],
    ]


def csv_rows(frame_index: int, emotions_msg: Any, start_ns: int) -> list[list[Any]]:
    """Timeline rows of one ``FaceEmotionArray`` message, one row per face; ``time_s`` counts from
    ``start_ns`` (the first frame's stamp)."""
    stamp = stamp_ns(emotions_msg.header)
    return [
        [
            frame_index,
            stamp,
            f"{(stamp - start_ns) / NS_PER_S:.6f}",
            face.track_id,
            face.box.x_offset,
            face.box.y_offset,
            face.box.width,
            face.box.height,
            face.label,
            f"{face.confidence:.6f}",
            *[f"{p:.6f}" for p in face.probabilities],
        ]
        for face in emotions_msg.faces
    ]


class Timeline:
    """Writes the timeline CSV, one ``FaceEmotionArray`` after the other, and tallies what it saw:
    frames, faces, frames with faces, and per track how many frames had each label."""

    def __init__(self, handle: IO[str], labels: Sequence[str]) -> None:
        self._table = csv.writer(handle)
        self._table.writerow(csv_header(labels))
        self._start_ns: int | None = None
        self.frames = 0
        self.faces = 0
        self.frames_with_faces = 0
        self._tracks: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)

    def add(self, emotions_msg: Any) -> None:
        """Write the rows of the next frame's message and count its faces."""
        if self._start_ns is None:
            self._start_ns = stamp_ns(emotions_msg.header)
        self._table.writerows(csv_rows(self.frames, emotions_msg, self._start_ns))
        self.frames += 1
        self.faces += len(emotions_msg.faces)
        self.frames_with_faces += bool(emotions_msg.faces)
        for face in emotions_msg.faces:
            self._tracks[int(face.track_id)][face.label] += 1

    @property
    def track_labels(self) -> dict[int, dict[str, int]]:
        """Track id -> label -> number of frames the track had that label, by track id."""
        return {track: dict(counts) for track, counts in sorted(self._tracks.items())}


def track_lines(track_labels: Mapping[Any, Mapping[str, int]]) -> list[str]:
    """One summary line per track: ``track 3: 12 frames: happy 9, neutral 3`` (most frequent first)."""
    lines = []
    for track_id, counts in track_labels.items():
        text = ", ".join(f"{label} {n}" for label, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        lines.append(f"track {track_id}: {sum(counts.values())} frames: {text}")
    return lines
