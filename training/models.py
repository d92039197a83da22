"""Model architectures. Every builder returns an *inference* model: raw 48x48 grayscale pixels 0-255
(float32, shape (N, 48, 48, 1)) in, seven FER2013-ordered probabilities out. Preprocessing (scaling)
lives inside the model; augmentation does not (it is applied by the training wrapper, see train.py),
so the exported graph holds only inference ops.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from emotion_recognition.spec import INPUT_SHAPE, NUM_EMOTIONS

SEED_CNN = "seed_cnn"
VGG_FER = "vgg_fer"
COMPACT_FER = "compact_fer"


def _head(x, units: tuple[int, ...], dropout: float):
    for n in units:
        x = layers.Dense(n, use_bias=True)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Dropout(dropout)(x)
    # Softmax in float32 even under a mixed-precision policy: stable probabilities and loss.
    return layers.Dense(NUM_EMOTIONS, activation="softmax", dtype="float32", name="probabilities")(x)


def build_seed_cnn() -> keras.Model:
    """The seed project's CNN, layer for layer: 4,478,727 parameters."""
    inputs = keras.Input(shape=INPUT_SHAPE, name="face_pixels")
    x = layers.Rescaling(1.0 / 255.0, name="scale_to_unit")(inputs)
    for filters, kernel in ((64, 3), (128, 5), (512, 3), (512, 3)):
        x = layers.Conv2D(filters, kernel, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    outputs = _head(x, (256, 512), dropout=0.25)
    return keras.Model(inputs, outputs, name=SEED_CNN)


def _vgg_style(name: str, stage_filters: tuple[int, ...]) -> keras.Model:
    """Stages of two 3x3 convolutions (batch norm, ReLU), each followed by 2x2 max pooling and a
    dropout that grows with depth; then global average pooling and one hidden dense layer."""
    inputs = keras.Input(shape=INPUT_SHAPE, name="face_pixels")
    x = layers.Rescaling(1.0 / 255.0, name="scale_to_unit")(inputs)
    for stage, filters in enumerate(stage_filters):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.1 + 0.05 * stage)(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = _head(x, (256,), dropout=0.4)
    return keras.Model(inputs, outputs, name=name)


def build_vgg_fer() -> keras.Model:
    """A VGG-style network for 48x48 faces (64-128-256-512 filters): about 4.8 M parameters and
    0.47 GMAC per face; it trades the seed's large 5x5 and dense layers for depth, which is what the
    better published FER2013 single networks do."""
    return _vgg_style(VGG_FER, (64, 128, 256, 512))


def build_compact_fer() -> keras.Model:
    """The same design at half the width (32-64-128-256 filters), sized for training and running on a
    robot's CPU: about 1.2 M parameters and 0.12 GMAC per face (the seed CNN: 4.5 M and 0.29 GMAC).
    The shipped model."""
    return _vgg_style(COMPACT_FER, (32, 64, 128, 256))


MODEL_BUILDERS: dict[str, Callable[[], keras.Model]] = {
    SEED_CNN: build_seed_cnn,
    VGG_FER: build_vgg_fer,
    COMPACT_FER: build_compact_fer,
}


def build_model(name: str) -> keras.Model:
    """Build the named architecture (see :data:`MODEL_BUILDERS`).

    Raises:
        ValueError: for an unknown name.
    """
    try:
        builder = MODEL_BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(MODEL_BUILDERS)}") from None
    return builder()
