"""Per-frame results as JSON-ready dictionaries: the API's answer and the events' payload."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emotion_recognition.core.types import Box, FaceEmotion, FrameResult, StageTimings

# Digits kept for probabilities and milliseconds (enough for people and programs, short on the wire).
PROBABILITY_DIGITS = 4
MS_DIGITS = 2


def box_json(box: Box) -> dict[str, int]:
    """A box as ``{x, y, width, height}`` in image pixels."""
    return {"x": int(box.x), "y": int(box.y), "width": int(box.width), "height": int(box.height)}


def face_json(face: FaceEmotion, with_track: bool) -> dict[str, Any]:
    """One face: box, label, confidence, probabilities (in the order of ``labels``) and its track id
    when ``with_track`` (live results; the API's independent images have no tracks)."""
    entry: dict[str, Any] = {
        "box": box_json(face.box),
        "label": face.label,
        "confidence": round(face.confidence, PROBABILITY_DIGITS),
        "probabilities": [round(float(p), PROBABILITY_DIGITS) for p in face.probabilities],
    }
    if with_track:
        entry["track_id"] = int(face.track_id)
    return entry


def timings_json(timings: StageTimings, **extra_ms: float) -> dict[str, float]:
    """Stage timings in milliseconds, with ``extra_ms`` stages (e.g. ``decode``) and the total."""
    stages = {
        **{name: value for name, value in extra_ms.items()},
        "detect": timings.detect_ms,
        "preprocess": timings.preprocess_ms,
        "classify": timings.classify_ms,
        "track": timings.track_ms,
        "draw": timings.draw_ms,
    }
    stages["total"] = sum(stages.values())
    return {name: round(value, MS_DIGITS) for name, value in stages.items()}


def frame_json(
    result: FrameResult, labels: Sequence[str], with_tracks: bool, **extra_ms: float
) -> dict[str, Any]:
    """A frame's result: ``labels``, ``faces``, ``image`` {width, height} and ``timings_ms``."""
    return {
        "labels": list(labels),
        "faces": [face_json(face, with_tracks) for face in result.faces],
        "image": {"width": result.image_width, "height": result.image_height},
        "timings_ms": timings_json(result.timings, **extra_ms),
    }


def emotions_msg_json(msg: Any, image_size: tuple[int, int] | None) -> dict[str, Any]:
    """An ``emotion_msgs/FaceEmotionArray`` in the same shape as :func:`frame_json` (with track ids and
    the header stamp; ``image`` is the size of the last annotated image seen, when there was one)."""
    width, height = image_size or (0, 0)
    return {
        "labels": list(msg.labels),
        "faces": [
            {
                "box": {
                    "x": face.box.x_offset,
                    "y": face.box.y_offset,
                    "width": face.box.width,
                    "height": face.box.height,
                },
                "label": face.label,
                "confidence": round(float(face.confidence), PROBABILITY_DIGITS),
                "probabilities": [round(float(p), PROBABILITY_DIGITS) for p in face.probabilities],
                "track_id": int(face.track_id),
            }
            for face in msg.faces
        ],
        "image": {"width": width, "height": height},
        "stamp": msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9,
        "timings_ms": {},
    }
