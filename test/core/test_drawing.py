"""Annotated images: a coloured box and a readable caption per face, at 640x480 and 1920x1080."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_recognition.core.drawing import EMOTION_COLORS, draw_faces, label_text
from emotion_recognition.core.types import Box, FaceEmotion
from emotion_recognition.spec import EMOTION_LABELS, NUM_EMOTIONS
from test.support.images import background_bgr, multi_face_frame

SIZES = [(640, 480), (1920, 1080)]


def face(box: Box, label: str, track_id: int = 7, confidence: float = 0.8) -> FaceEmotion:
    p = np.full(NUM_EMOTIONS, (1.0 - confidence) / (NUM_EMOTIONS - 1), np.float32)
    p[EMOTION_LABELS.index(label)] = confidence
    return FaceEmotion(box, track_id, p, p.copy())


def caption_height(image: np.ndarray, color: tuple[int, int, int], box: Box) -> int:
    """Rows above the box (or at its top) that hold the caption's filled background."""
    mask = np.all(image == np.array(color, np.uint8), axis=2)
    rows = np.nonzero(mask[:, box.x + box.width // 3])[0]  # a column that crosses the caption
    return int(rows.max() - rows.min() + 1) if len(rows) else 0


@pytest.mark.parametrize("size", SIZES)
def test_box_and_caption_are_drawn_in_the_emotions_colour(size: tuple[int, int]) -> None:
    frame, boxes = multi_face_frame(*size, 2)
    faces = [face(boxes[0], "happy", 1), face(boxes[1], "angry", 2)]
    out = draw_faces(frame, faces)
    assert out.shape == frame.shape and out.dtype == np.uint8 and out is not frame
    for f in faces:
        b, color = f.box, EMOTION_COLORS[f.label]
        left_edge = out[b.y + b.height // 2, b.x]
        assert tuple(left_edge) == color
        inside = (slice(b.y, b.y + b.height), slice(b.x, b.x + b.width))
        assert (out[inside] != frame[inside]).any()
    # Far from the faces nothing changed.
    np.testing.assert_array_equal(out[-5:, :5], frame[-5:, :5])


def test_the_input_image_is_not_changed() -> None:
    frame, boxes = multi_face_frame(640, 480, 1)
    before = frame.copy()
    draw_faces(frame, [face(boxes[0], "sad")])
    np.testing.assert_array_equal(frame, before)


def test_no_faces_gives_an_unchanged_copy() -> None:
    frame = background_bgr(640, 480)
    out = draw_faces(frame, [])
    assert out is not frame
    np.testing.assert_array_equal(out, frame)


def test_caption_grows_with_the_image_and_is_readable_at_640x480() -> None:
    heights = {}
    for width, height in SIZES:
        frame = background_bgr(width, height, "brick")
        scale = width / 640
        box = Box(int(200 * scale), int(200 * scale), int(150 * scale), int(150 * scale))
        out = draw_faces(frame, [face(box, "surprise")])
        heights[width] = caption_height(out, EMOTION_COLORS["surprise"], box)
    assert heights[640] >= 16  # text about 14 px high plus padding: readable on a 640x480 screen
    assert heights[1920] >= 2.0 * heights[640]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("corner", ["top_left", "top_right", "bottom_right"])
def test_captions_stay_inside_the_frame(size: tuple[int, int], corner: str) -> None:
    width, height = size
    side = height // 5
    x = 0 if corner == "top_left" else width - side
    y = 0 if corner.startswith("top") else height - side
    box = Box(x, y, side, side)
    frame = background_bgr(width, height, "rocket")
    out = draw_faces(frame, [face(box, "fear", track_id=123456)])
    mask = np.all(out == np.array(EMOTION_COLORS["fear"], np.uint8), axis=2)
    # The caption is wider than the box near the right edge: it was shifted left, so the caption's
    # filled background reaches past the box's left side instead of being cut at the frame border.
    cols = np.nonzero(mask.any(axis=0))[0]
    if corner != "top_left":
        assert cols.min() < box.x
    assert mask[:, -1].any() or corner == "top_left"


def test_every_emotion_has_its_own_colour() -> None:
    assert tuple(EMOTION_COLORS) == EMOTION_LABELS
    assert len(set(EMOTION_COLORS.values())) == NUM_EMOTIONS


def test_caption_text_names_track_label_and_confidence() -> None:
    assert label_text(face(Box(0, 0, 10, 10), "happy", track_id=3, confidence=0.87)) == "#3 happy 87%"


def test_a_non_bgr_image_is_refused() -> None:
    with pytest.raises(ValueError, match="BGR"):
        draw_faces(np.zeros((480, 640), np.uint8), [])
