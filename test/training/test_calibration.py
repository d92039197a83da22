"""Temperature scaling: the fitted temperature undoes a known over-confidence, and applying it to the
network's softmax layer divides the network's logits by it."""

from __future__ import annotations

import numpy as np
import pytest

from training.export import ExportError, apply_temperature, fit_temperature, tempered_probabilities


def test_fit_temperature_recovers_a_known_overconfidence() -> None:
    rng = np.random.default_rng(3)
    true_logits = rng.normal(scale=2.0, size=(20000, 7))
    true_probabilities = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(7, p=p) for p in true_probabilities])
    # A model that reports logits 2.5 times too large is over-confident; the right temperature is 2.5.
    overconfident = [true_logits * 2.5]
    assert fit_temperature(overconfident, labels) == pytest.approx(2.5, rel=0.05)
    # A well-calibrated model keeps a temperature near 1.
    assert fit_temperature([true_logits], labels) == pytest.approx(1.0, rel=0.05)
    # Two views (image and mirror) are averaged after the temperature, as the exported model does.
    mirrored = tempered_probabilities([true_logits, true_logits], 1.0)
    np.testing.assert_allclose(mirrored, true_probabilities, atol=1e-12)


def test_apply_temperature_divides_the_logits() -> None:
    import keras

    inputs = keras.Input(shape=(3,))
    outputs = keras.layers.Dense(7, activation="softmax", name="probabilities")(inputs)
    network = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    kernel, bias = network.get_layer("probabilities").get_weights()
    logits = x @ kernel + bias

    apply_temperature(network, 3.0)

    expected = np.exp(logits / 3.0) / np.exp(logits / 3.0).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(network.predict(x, verbose=0), expected, rtol=1e-5)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ExportError, match="positive"):
            apply_temperature(network, bad)
