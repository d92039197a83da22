"""Post-hoc adjustments of a trained network's final softmax layer, fitted on PublicTest and built into
its weights, so the exported model costs nothing more:

- temperature scaling (Guo et al. 2017): all logits divided by one temperature, for calibrated
  confidences; the decisions are unchanged;
- class offsets: one additive logit offset per class, chosen so that every class reaches a recall floor
  at the least cost in accuracy (a post-hoc prior correction for the rare or under-predicted classes).

``views`` below are per-view log-probabilities, (N, 7) each: one per member network and mirror image that
the exported model averages after its softmax.
"""

from __future__ import annotations

import numpy as np

from emotion_recognition.spec import NUM_EMOTIONS


class CalibrationError(ValueError):
    """An adjustment that cannot be applied (a bad value, or a network without a softmax head)."""


def tempered_probabilities(views: list[np.ndarray], temperature: float) -> np.ndarray:
    """The exported model's output for per-view ``views`` logits, each divided by ``temperature``."""
    probabilities = []
    for logits in views:
        shifted = np.exp(logits / temperature - (logits / temperature).max(axis=1, keepdims=True))
        probabilities.append(shifted / shifted.sum(axis=1, keepdims=True))
    return np.mean(probabilities, axis=0)


def fit_temperature(views: list[np.ndarray], labels: np.ndarray) -> float:
    """The softmax temperature that minimises the negative log-likelihood of ``labels`` (temperature
    scaling, Guo et al. 2017), searched on a fine logarithmic grid from 0.25 to 4."""
    rows = np.arange(len(labels))

    def nll(temperature: float) -> float:
        probabilities = tempered_probabilities(views, temperature)[rows, labels]
        return float(-np.log(np.clip(probabilities, 1e-12, 1.0)).mean())

    return float(min(np.exp(np.linspace(np.log(0.25), np.log(4.0), 401)), key=nll))


def recalls(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Per-class recall (NaN for a class with no images)."""
    hits = np.bincount(labels[predictions == labels], minlength=NUM_EMOTIONS).astype(np.float64)
    totals = np.bincount(labels, minlength=NUM_EMOTIONS).astype(np.float64)
    return np.divide(hits, totals, out=np.full(NUM_EMOTIONS, np.nan), where=totals > 0)


def decisions(views: list[np.ndarray], offsets: np.ndarray) -> np.ndarray:
    """The exported model's class for each row when ``offsets`` are added to every view's logits."""
    return tempered_probabilities([v + offsets for v in views], 1.0).argmax(axis=1)


def _score(views: list[np.ndarray], labels: np.ndarray, offsets: np.ndarray, floor: float) -> tuple:
    """What the offset search maximises: first the least total recall shortfall below ``floor``, then
    accuracy."""
    predictions = decisions(views, offsets)
    shortfall = np.nansum(np.maximum(floor - recalls(labels, predictions), 0.0))
    return (-round(float(shortfall), 9), float((predictions == labels).mean()))


def fit_class_offsets(
    views: list[np.ndarray], labels: np.ndarray, recall_floor: float, passes: int = 4
) -> np.ndarray:
    """Per-class logit offsets (float32 (7,), mean 0) under which every class present in ``labels``
    reaches ``recall_floor`` if any offsets on the search grid can do it, with the highest accuracy
    among those; coordinate ascent from zero offsets over a grid of +-1.5 in steps of 0.05.

    Raises:
        CalibrationError: ``recall_floor`` outside [0, 1].
    """
    if not 0.0 <= recall_floor <= 1.0:
        raise CalibrationError(f"the recall floor must be in [0, 1], got {recall_floor}")
    offsets = np.zeros(NUM_EMOTIONS)
    best = _score(views, labels, offsets, recall_floor)
    steps = np.round(np.arange(-1.5, 1.5001, 0.05), 2)
    for _ in range(passes):
        improved = False
        for c in range(NUM_EMOTIONS):
            for value in steps:
                trial = offsets.copy()
                trial[c] = value
                score = _score(views, labels, trial, recall_floor)
                if score > best:
                    best, offsets, improved = score, trial, True
        if not improved:
            break
    return (offsets - offsets.mean()).astype(np.float32)


def _softmax_head(network):
    try:
        return network.get_layer("probabilities")
    except ValueError:
        raise CalibrationError(f"{network.name}: no final 'probabilities' layer to adjust") from None


def apply_temperature(network, temperature: float) -> None:
    """Divide the logits of ``network``'s final softmax layer (named ``probabilities``) by ``temperature``,
    by scaling that layer's weights."""
    if not temperature > 0 or not np.isfinite(temperature):
        raise CalibrationError(f"temperature must be a positive number, got {temperature}")
    head = _softmax_head(network)
    head.set_weights([np.asarray(w, dtype=np.float32) / np.float32(temperature) for w in head.get_weights()])


def apply_class_offsets(network, offsets: np.ndarray) -> None:
    """Add ``offsets`` (one per class) to the logits of ``network``'s final softmax layer, through its
    bias."""
    offsets = np.asarray(offsets, dtype=np.float32)
    if offsets.shape != (NUM_EMOTIONS,) or not np.all(np.isfinite(offsets)):
        raise CalibrationError(f"class offsets must be {NUM_EMOTIONS} finite numbers, got {offsets}")
    head = _softmax_head(network)
    kernel, bias = head.get_weights()
    head.set_weights([kernel, np.asarray(bias, dtype=np.float32) + offsets])
