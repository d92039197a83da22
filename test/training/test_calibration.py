"""Post-hoc adjustments: the fitted temperature undoes a known over-confidence, the class offsets restore
the recall of a class the model under-predicts, and applying either to the network's softmax layer
changes its logits as fitted."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import (
    CalibrationError,
    apply_class_offsets,
    apply_temperature,
    decisions,
    fit_class_offsets,
    fit_temperature,
    recalls,
    tempered_probabilities,
)


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
        with pytest.raises(CalibrationError, match="positive"):
            apply_temperature(network, bad)


def _labelled_logits(seed: int, rows: int = 7000) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a fairly good model: the true class gets a bonus of 2 over Gaussian noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % 7
    logits = rng.normal(size=(rows, 7))
    logits[np.arange(rows), labels] += 2.0
    return logits, labels


def test_class_offsets_restore_the_recall_of_an_under_predicted_class() -> None:
    logits, labels = _labelled_logits(5)
    biased = logits.copy()
    biased[:, 2] -= 2.5  # the model rarely says 'fear'
    views = [biased, biased + np.random.default_rng(6).normal(scale=0.3, size=biased.shape)]
    zero = np.zeros(7)
    assert recalls(labels, decisions(views, zero))[2] < 0.3

    offsets = fit_class_offsets(views, labels, recall_floor=0.6)

    after = decisions(views, offsets)
    assert np.nanmin(recalls(labels, after)) >= 0.6
    assert (after == labels).mean() > (decisions(views, zero) == labels).mean()  # the bias cost accuracy
    assert offsets[2] == offsets.max() and abs(float(offsets.mean())) < 1e-6
    # Fitted on one sample, the offsets hold on another drawn the same way.
    fresh, fresh_labels = _labelled_logits(9)
    fresh[:, 2] -= 2.5
    assert recalls(fresh_labels, decisions([fresh], offsets))[2] >= 0.55


def test_class_offsets_leave_a_model_that_meets_the_floor_alone() -> None:
    logits, labels = _labelled_logits(7)
    offsets = fit_class_offsets([logits], labels, recall_floor=0.3)
    assert (decisions([logits], offsets) == labels).mean() >= (logits.argmax(axis=1) == labels).mean()
    assert np.abs(offsets).max() <= 0.25
    with pytest.raises(CalibrationError, match="recall floor"):
        fit_class_offsets([logits], labels, recall_floor=1.2)


def test_apply_class_offsets_adds_them_to_the_logits() -> None:
    import keras

    inputs = keras.Input(shape=(3,))
    outputs = keras.layers.Dense(7, activation="softmax", name="probabilities")(inputs)
    network = keras.Model(inputs, outputs)
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    kernel, bias = network.get_layer("probabilities").get_weights()
    offsets = np.linspace(-1.0, 1.0, 7).astype(np.float32)

    apply_class_offsets(network, offsets)

    logits = x @ kernel + bias + offsets
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(network.predict(x, verbose=0), expected, rtol=1e-5)
    for bad in (np.zeros(6), np.full(7, np.nan)):
        with pytest.raises(CalibrationError, match="7 finite"):
            apply_class_offsets(network, bad)
