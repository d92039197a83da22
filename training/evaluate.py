"""Evaluation of a ``.keras`` or ``.tflite`` model on one split: accuracy, per-class precision, recall
and F1, macro-F1, confusion matrix (JSON and PNG) and calibration (expected calibration error and a
reliability plot).

Models run through :class:`emotion_recognition.core.classifier.EmotionClassifier`, the very code the
node uses, so the numbers describe what the robot runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from emotion_recognition.spec import EMOTION_LABELS, INPUT_SHAPE, NUM_EMOTIONS
from training.data import (
    SPLIT_NAMES,
    DatasetError,
    FerDataset,
    ferplus_majority_labels,
    load_aligned_ferplus_votes,
    load_dataset,
    parse_split,
)

CALIBRATION_BINS = 15


def predict_probabilities(
    model_path: str | os.PathLike, images: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Run ``images`` (uint8 (N, 48, 48)) through the model in batches; returns (N, 7) probabilities."""
    from emotion_recognition.core.classifier import EmotionClassifier

    classifier = EmotionClassifier.load(model_path, num_threads=os.cpu_count() or 1)
    outputs = [
        classifier.predict(images[i : i + batch_size].astype(np.float32).reshape((-1, *INPUT_SHAPE)))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, NUM_EMOTIONS), np.float32)


def compute_metrics(labels: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """Classification and calibration metrics for true ``labels`` (N,) and ``probabilities`` (N, 7)."""
    if len(labels) != len(probabilities) or len(labels) == 0:
        raise ValueError(
            "need equal, non-zero numbers of labels and predictions, "
            f"got {len(labels)} and {len(probabilities)}"
        )
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((NUM_EMOTIONS, NUM_EMOTIONS), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {}
    for i, name in enumerate(EMOTION_LABELS):
        true_positive = confusion[i, i]
        precision = true_positive / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = true_positive / confusion[i, :].sum() if confusion[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(confusion[i, :].sum()),
        }

    confidence = probabilities.max(axis=1)
    correct = predicted == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    reliability = []
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        count = int(in_bin.sum())
        accuracy = float(correct[in_bin].mean()) if count else 0.0
        mean_confidence = float(confidence[in_bin].mean()) if count else 0.0
        ece += count / len(labels) * abs(accuracy - mean_confidence)
        reliability.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": count,
                "accuracy": accuracy,
                "mean_confidence": mean_confidence,
            }
        )
    return {
        "num_images": int(len(labels)),
        "accuracy": float(correct.mean()),
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])),
        "per_class": per_class,
        "labels": list(EMOTION_LABELS),
        "confusion_matrix": confusion.tolist(),
        "expected_calibration_error": float(ece),
        "mean_confidence": float(confidence.mean()),
        "reliability": reliability,
    }


def plot_confusion(metrics: dict, path: str | os.PathLike, title: str) -> None:
    """Row-normalised confusion matrix with counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(metrics["confusion_matrix"])
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(NUM_EMOTIONS), EMOTION_LABELS, rotation=45, ha="right")
    ax.set_yticks(range(NUM_EMOTIONS), EMOTION_LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(NUM_EMOTIONS):
        for j in range(NUM_EMOTIONS):
            ax.text(
                j,
                i,
                f"{rates[i, j]:.2f}\n({counts[i, j]})",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if rates[i, j] > 0.5 else "black",
            )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_reliability(metrics: dict, path: str | os.PathLike, title: str) -> None:
    """Reliability diagram: accuracy against confidence per bin, with the diagonal of perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = metrics["reliability"]
    centers = [(b["lower"] + b["upper"]) / 2 for b in bins]
    width = bins[0]["upper"] - bins[0]["lower"]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.bar(centers, [b["accuracy"] for b in bins], width=width * 0.95, edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.plot(
        centers, [b["mean_confidence"] if b["count"] else np.nan for b in bins], "r.", label="mean confidence"
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE {metrics['expected_calibration_error']:.3f}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def paired_comparison(labels: np.ndarray, probabilities: np.ndarray, baseline: np.ndarray) -> dict:
    """Compare two models' predictions on the same images: each one's accuracy, the images that only one
    of them gets right, and the two-sided p-value of McNemar's exact test (a binomial test on those
    discordant images: how likely a split at least this uneven is if both models were equally good).

    Args:
        labels: (N,) true labels.
        probabilities: (N, 7) output of the model under test.
        baseline: (N, 7) output of the model it is compared with.
    """
    from scipy.stats import binomtest

    if not len(labels) == len(probabilities) == len(baseline) or len(labels) == 0:
        raise ValueError(
            "need equal, non-zero numbers of labels and of both models' predictions, "
            f"got {len(labels)}, {len(probabilities)} and {len(baseline)}"
        )
    correct = probabilities.argmax(axis=1) == labels
    baseline_correct = baseline.argmax(axis=1) == labels
    only_model = int((correct & ~baseline_correct).sum())
    only_baseline = int((baseline_correct & ~correct).sum())
    discordant = only_model + only_baseline
    return {
        "num_images": int(len(labels)),
        "accuracy": float(correct.mean()),
        "baseline_accuracy": float(baseline_correct.mean()),
        "only_model_correct": only_model,
        "only_baseline_correct": only_baseline,
        "mcnemar_exact_p": float(binomtest(only_model, discordant).pvalue) if discordant else 1.0,
    }


def ferplus_majority_metrics(
    votes_path: str | os.PathLike,
    data: FerDataset,
    rows: np.ndarray,
    probabilities: np.ndarray,
    skip_bad_rows: bool = False,
    baseline: np.ndarray | None = None,
) -> dict:
    """Metrics against the FER+ majority vote, on the rows of one split that have such a label.

    Args:
        votes_path: FER+ ``fer2013new.csv``, row-aligned with the full FER2013 data set ``data``.
        rows: bool mask over ``data`` selecting the split that ``probabilities`` belong to.
        probabilities: (rows.sum(), 7) model output for those rows.
        baseline: (rows.sum(), 7) output of a second model: adds ``comparison`` (:func:`paired_comparison`).
    """
    votes, valid = load_aligned_ferplus_votes(votes_path, data, skip_bad_rows)
    labels, has_label = ferplus_majority_labels(votes)
    keep = (has_label & valid)[rows]
    if not keep.any():
        raise DatasetError(
            f"{votes_path}: no row of this split has a unique FER+ majority among the 7 emotions"
        )
    metrics = compute_metrics(labels[rows][keep], probabilities[keep])
    metrics["rows"] = "unique FER+ majority vote that is one of the 7 FER2013 emotions"
    if baseline is not None:
        metrics["comparison"] = paired_comparison(labels[rows][keep], probabilities[keep], baseline[keep])
    return metrics


def _card_summary(metrics: dict) -> dict:
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "expected_calibration_error": metrics["expected_calibration_error"],
        "recall": {name: c["recall"] for name, c in metrics["per_class"].items()},
        "num_images": metrics["num_images"],
    }


def _update_card(card_path: Path, split_name: str, metrics: dict) -> None:
    card = json.loads(card_path.read_text())
    summary = _card_summary(metrics)
    if "ferplus_majority" in metrics:
        summary["ferplus_majority"] = _card_summary(metrics["ferplus_majority"])
    card.setdefault("metrics", {})[split_name] = summary
    card_path.write_text(json.dumps(card, indent=2) + "\n")


def _write_reports(metrics: dict, out: Path, model_name: str, split_name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"metrics_{split_name}.json").write_text(json.dumps(metrics, indent=2) + "\n")
    title = f"{model_name} on FER2013 {split_name} ({metrics['num_images']} images)"
    plot_confusion(
        metrics, out / f"confusion_{split_name}.png", f"{title}\naccuracy {metrics['accuracy']:.3f}"
    )
    plot_reliability(metrics, out / f"reliability_{split_name}.png", title)
    if "ferplus_majority" in metrics:
        plus = metrics["ferplus_majority"]
        title = f"{model_name} on {split_name}, FER+ majority labels ({plus['num_images']} images)"
        plot_confusion(
            plus, out / f"confusion_{split_name}_ferplus.png", f"{title}\naccuracy {plus['accuracy']:.3f}"
        )


def evaluate_to_folder(
    model_path: str | os.PathLike,
    data_path: str | os.PathLike,
    split: str,
    out_dir: str | os.PathLike,
    ferplus: str | None = None,
    skip_bad_rows: bool = False,
    update_card: bool = False,
    baseline: str | os.PathLike | None = None,
) -> dict:
    """Evaluate ``model_path`` on one split of the data; writes ``metrics_<split>.json``,
    ``confusion_<split>.png`` and ``reliability_<split>.png`` into ``out_dir`` and returns the metrics.

    The headline numbers use FER2013's own labels. With ``ferplus`` (``fer2013new.csv``) the metrics also
    hold ``ferplus_majority``: the same model against the FER+ majority vote, on the split's rows whose
    majority is unique and one of the seven emotions (plus ``confusion_<split>_ferplus.png``).
    With ``update_card`` the headline numbers are also recorded in the model's JSON card
    (``<model file>.json``, written by export) under ``metrics.<split>``. With ``baseline`` (a second
    model) the metrics also hold ``comparison`` (:func:`paired_comparison`), and so does
    ``ferplus_majority``: whether the model is better than the baseline on these very images.
    """
    split_id = parse_split(split)
    split_name = SPLIT_NAMES[split_id]
    card_path = Path(f"{model_path}.json")
    if update_card and not card_path.is_file():  # before the evaluation's minutes, not after them
        raise ValueError(f"{card_path}: no model card to update (export writes it)")
    data = load_dataset(data_path, skip_bad_rows=skip_bad_rows)
    rows = data.usage == split_id
    if not rows.any():
        raise ValueError(f"{data_path}: no {split_name} rows")
    probabilities = predict_probabilities(model_path, data.images[rows])
    baseline_probabilities = None if baseline is None else predict_probabilities(baseline, data.images[rows])
    metrics = compute_metrics(data.labels[rows], probabilities)
    if baseline_probabilities is not None:
        comparison = paired_comparison(data.labels[rows], probabilities, baseline_probabilities)
        metrics["comparison"] = {"baseline": str(baseline), **comparison}
    metrics.update(
        model=str(model_path),
        split=split_name,
        data=str(data_path),
        ferplus=ferplus,
        skipped_rows=data.skipped,
    )
    if ferplus is not None:
        metrics["ferplus_majority"] = ferplus_majority_metrics(
            ferplus, data, rows, probabilities, skip_bad_rows, baseline_probabilities
        )
    _write_reports(metrics, Path(out_dir), Path(model_path).name, split_name)
    if update_card:
        _update_card(card_path, split_name, metrics)
    return metrics
