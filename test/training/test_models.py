"""The architectures: the seed CNN exactly as the seed printed it, and every builder's I/O contract."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_recognition.spec import INPUT_SHAPE, NUM_EMOTIONS
from training.models import MODEL_BUILDERS, SEED_CNN, build_model


def test_seed_architecture_has_exactly_the_seed_parameter_count() -> None:
    model = build_model(SEED_CNN)
    assert model.count_params() == 4_478_727
    conv_layers = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [(c.filters, c.kernel_size) for c in conv_layers] == [
        (64, (3, 3)),
        (128, (5, 5)),
        (512, (3, 3)),
        (512, (3, 3)),
    ]
    dense_units = [layer.units for layer in model.layers if layer.__class__.__name__ == "Dense"]
    assert dense_units == [256, 512, NUM_EMOTIONS]


@pytest.mark.parametrize("name", sorted(MODEL_BUILDERS))
def test_every_architecture_takes_raw_pixels_and_returns_probabilities(name: str) -> None:
    model = build_model(name)
    assert tuple(model.input_shape[1:]) == INPUT_SHAPE
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, *INPUT_SHAPE)).astype(np.float32)
    probabilities = np.asarray(model(pixels, training=False))
    assert probabilities.shape == (3, NUM_EMOTIONS)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'resnet9000'"):
        build_model("resnet9000")
