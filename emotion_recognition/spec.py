"""The one definition of what the emotion model consumes and produces.

Training (``training/``), export, the perception core and the node all import these constants, so the
model the node runs can never drift from the model that was trained.
"""

from __future__ import annotations

# FER2013 label order: index i of every probability vector is EMOTION_LABELS[i].
EMOTION_LABELS: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
)
NUM_EMOTIONS: int = len(EMOTION_LABELS)

# Model input: a batch of 48x48 single-channel (grayscale) faces, raw pixel values 0-255 as float32,
# shape (N, INPUT_HEIGHT, INPUT_WIDTH, INPUT_CHANNELS). Scaling to the network's range happens inside
# the model, so callers never normalise.
INPUT_HEIGHT: int = 48
INPUT_WIDTH: int = 48
INPUT_CHANNELS: int = 1
INPUT_SHAPE: tuple[int, int, int] = (INPUT_HEIGHT, INPUT_WIDTH, INPUT_CHANNELS)
INPUT_DTYPE: str = "float32"
INPUT_VALUE_RANGE: tuple[float, float] = (0.0, 255.0)

# Fraction of the detected face box added on each side before cropping. FER2013 faces are tightly
# cropped and Haar boxes are already close to that framing, so no margin is the matching default.
FACE_CROP_MARGIN: float = 0.0
