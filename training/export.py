"""Export a trained network for the node: a float32 ``.keras``, a float ``.tflite`` and an int8 ``.tflite``
calibrated on training images, each with a JSON card beside it (labels, input spec, data, metrics, commit).

The int8 model keeps float32 input and output tensors (raw 0-255 pixels in, probabilities out), so the
node feeds every model the same way. Its PublicTest accuracy is checked against the float model and
the export fails when it drops by more than ``max_int8_drop`` points.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emotion_recognition.spec import EMOTION_LABELS, INPUT_DTYPE, INPUT_SHAPE, INPUT_VALUE_RANGE
from training.calibration import (
    apply_class_offsets,
    apply_temperature,
    decisions,
    fit_class_offsets,
    fit_temperature,
    recalls,
    tempered_probabilities,
)
from training.data import PUBLIC_TEST, TRAINING, load_dataset


class ExportError(RuntimeError):
    """The export cannot produce a model that meets its checks."""


def load_float32_network(path: str | os.PathLike):
    """Load a trained network as a float32 inference model.

    A network trained under ``mixed_bfloat16`` holds bfloat16 ops that TFLite cannot convert; it is
    rebuilt from its architecture under the float32 policy and given the trained weights.
    """
    import keras

    from training.models import MODEL_BUILDERS, build_model

    trained = keras.models.load_model(path, compile=False)
    policies = {layer.dtype_policy.name for layer in trained.layers}
    if policies <= {"float32"}:
        return trained
    if trained.name not in MODEL_BUILDERS:
        raise ExportError(
            f"{path}: mixed-precision model {trained.name!r} is not a known architecture to rebuild"
        )
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        network = build_model(trained.name)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    network.set_weights([np.asarray(w, dtype=np.float32) for w in trained.get_weights()])
    return network


def with_mirror_averaging(network):
    """Wrap ``network`` so that it averages its probabilities for each face and the face's mirror image
    (test-time augmentation inside the graph: the caller still makes one call per batch)."""
    return averaged_network([network], mirror_average=True)


def averaged_network(members: list, mirror_average: bool):
    """One model that averages the probabilities of ``members`` (an ensemble), each on the face and, with
    ``mirror_average``, on its mirror image; a single member without the mirror is returned as it is.

    The mirror is a fixed anti-identity matrix applied along the image width: exact, built from stock
    layers only, so the ``.keras`` file loads anywhere without custom code and converts to TFLite.
    """
    import keras
    from keras import layers

    if len(members) == 1 and not mirror_average:
        return members[0]
    height, width, _ = INPUT_SHAPE
    inputs = keras.Input(shape=INPUT_SHAPE, name="face_pixels")
    views = [inputs]
    if mirror_average:
        rows = layers.Reshape((height, width), name="rows")(inputs)
        mirror = layers.Dense(width, use_bias=False, trainable=False, name="mirror")
        views.append(layers.Reshape(INPUT_SHAPE, name="mirrored")(mirror(rows)))
        mirror.set_weights([np.eye(width, dtype=np.float32)[::-1]])
    outputs = layers.Average(name="probabilities")([member(view) for member in members for view in views])
    name = members[0].name if len(members) == 1 else f"ensemble_of_{len(members)}"
    return keras.Model(inputs, outputs, name=f"{name}_mirror_avg" if mirror_average else name)


def averaged_members(network) -> list:
    """The networks whose probabilities ``network`` averages (the inverse of :func:`averaged_network`);
    a bare network is its own one member."""
    import keras

    if not _averages_probabilities(network):
        return [network]
    return [layer for layer in network.layers if isinstance(layer, keras.Model)]


def view_logits(network, images: np.ndarray, mirror_average: bool) -> list[np.ndarray]:
    """Log-probabilities of ``network`` for uint8 (N, 48, 48) images: one array per view that the exported
    model averages (the image, and its mirror image with ``mirror_average``)."""
    views = [images, images[:, :, ::-1]] if mirror_average else [images]
    logits = []
    for view in views:
        x = view.astype(np.float32).reshape((-1, *INPUT_SHAPE))
        probabilities = np.asarray(network.predict(x, batch_size=256, verbose=0), dtype=np.float64)
        logits.append(np.log(np.clip(probabilities, 1e-12, 1.0)))
    return logits


def convert_to_tflite(network, representative_images: np.ndarray | None = None) -> bytes:
    """Convert a float32 Keras network to TFLite with a dynamic batch dimension.

    With ``representative_images`` (uint8 (N, 48, 48)) the weights and activations are quantised to
    int8 (full integer kernels), keeping float32 input and output.
    """
    import tempfile

    import tensorflow as tf

    # Through a SavedModel: converting a tf.function directly leaves the weights as resource
    # variables that the TFLite calibrator cannot read.
    with tempfile.TemporaryDirectory(prefix="emotion_export_") as saved_model:
        if representative_images is not None and _averages_probabilities(network):
            _export_with_probability_ranges(network, saved_model)
        else:
            network.export(saved_model, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        return _convert(converter, representative_images)


def _averages_probabilities(network) -> bool:
    """Whether ``network`` ends in the mean of :func:`averaged_network` (an ensemble or a mirror model)."""
    import keras

    return isinstance(network.layers[-1], keras.layers.Average)


def _export_with_probability_ranges(network, saved_model: str) -> None:
    """Write ``network`` as a SavedModel for int8 conversion, with the int8 range of each probability that
    it averages fixed in advance.

    The converter sets each activation's int8 range from the calibration images. A softmax output has a
    fixed range, but the mean that ``averaged_network`` takes of n probability vectors is a chain of sums
    whose ranges would come from the calibration images too: a face more confident than any of them would
    be clipped, and its probabilities would no longer sum to 1. Here each term p/n, each partial sum of k
    terms and the mean get the ranges they can reach: [0, 1/n], [0, k/n] and [0, 1].
    """
    import keras
    import tensorflow as tf

    terms_of = keras.Model(network.inputs, network.layers[-1].input, name=f"{network.name}_terms")

    def in_range(x, high: float):
        return tf.quantization.fake_quant_with_min_max_args(x, min=0.0, max=high, num_bits=8)

    def serve(images):
        terms = terms_of(images, training=False)
        count = len(terms)
        mean = in_range(terms[0] / count, 1.0 / count)
        for k, term in enumerate(terms[1:], start=2):
            mean = in_range(mean + in_range(term / count, 1.0 / count), k / count)
        return mean

    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint("serve", serve, input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)])
    archive.write_out(saved_model, verbose=False)


def _convert(converter, representative_images: np.ndarray | None) -> bytes:
    import tensorflow as tf

    if representative_images is not None:

        def representative():
            for image in representative_images:
                yield [image.astype(np.float32).reshape((1, *INPUT_SHAPE))]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def deflate_keras_file(path: Path) -> None:
    """Re-pack a ``.keras`` archive with zip deflate (Keras stores it uncompressed): about 10% smaller
    for a model that is committed to the repository; Keras reads either."""
    import zipfile

    packed = path.with_name(path.name + ".deflate")
    with (
        zipfile.ZipFile(path) as source,
        zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target,
    ):
        for item in source.infolist():
            target.writestr(
                item, source.read(item.filename), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9
            )
    os.replace(packed, path)


def calibration_sample(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Indices of ``count`` training images, stratified by class, drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    count = min(count, len(labels))
    picks = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        share = max(1, round(count * len(rows) / len(labels)))
        picks.append(rng.choice(rows, size=min(share, len(rows)), replace=False))
    return rng.permutation(np.concatenate(picks))[:count]


def source_commit() -> str:
    """The git commit of this checkout (with ``-dirty`` when it has uncommitted changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def model_card(
    model_file: Path,
    kind: str,
    sources: list[str],
    data: str,
    metrics: dict,
    commit: str,
    extra: dict | None = None,
) -> dict:
    """The JSON written beside every exported model; ``commit`` is the code's commit when the export began.
    ``sources`` are the trained networks: one, or an ensemble's members (each with its own run record)."""
    card = {
        "file": model_file.name,
        "format": kind,
        "labels": list(EMOTION_LABELS),
        "input": {
            "shape": ["N", *INPUT_SHAPE],
            "dtype": INPUT_DTYPE,
            "value_range": list(INPUT_VALUE_RANGE),
            "color": "grayscale",
            "preprocessing": "inside the model (scaled to 0-1)",
        },
        "output": {"shape": ["N", len(EMOTION_LABELS)], "meaning": "probabilities in label order"},
        "trained_network": " + ".join(sources),
        "training_data": data,
        "metrics": metrics,
        "commit": commit,
        "exported_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if len(sources) == 1:
        card.update(_run_record(sources[0]))
    else:
        card["members"] = [{"trained_network": source, **_run_record(source)} for source in sources]
    card.update(extra or {})
    return card


def _run_record(source: str) -> dict:
    """The training recipe and progress of the run that wrote ``source`` (its folder's config.json and
    state.json), where they are beside it."""
    record: dict = {}
    run_dir = Path(source).parent
    if (run_dir / "config.json").is_file():
        record["training_config"] = json.loads((run_dir / "config.json").read_text())
    if (run_dir / "state.json").is_file():
        state = json.loads((run_dir / "state.json").read_text())
        seconds = state.get("epoch_seconds", [])
        record["training_run"] = {
            "epochs": state.get("epoch"),
            "best_epoch": state.get("best_epoch"),
            "median_epoch_seconds": float(np.median(seconds)) if seconds else None,
        }
    return record


def _calibrate(members: list, val_set, views: list[np.ndarray]) -> dict:
    """Fit a temperature on PublicTest (``views``: the members' PublicTest logits), apply it to every
    member; returns the card's ``calibration`` entry."""
    from training.evaluate import compute_metrics

    temperature = fit_temperature(views, val_set.labels)
    before, after = (
        compute_metrics(val_set.labels, tempered_probabilities(views, t))["expected_calibration_error"]
        for t in (1.0, temperature)
    )
    for member in members:
        apply_temperature(member, temperature)
    print(f"temperature scaling: T = {temperature:.3f} (PublicTest ECE {before:.4f} -> {after:.4f})")
    return {
        "calibration": {
            "method": "temperature scaling (minimum NLL)",
            "temperature": round(temperature, 4),
            "fitted_on": "PublicTest",
            "public_test_ece_before": round(before, 4),
            "public_test_ece_after": round(after, 4),
        }
    }


def _fit_recall_floor(
    members: list, val_set, views: list[np.ndarray], recall_floor: float
) -> tuple[dict, list]:
    """Fit per-class logit offsets on PublicTest (``views``: the members' PublicTest logits) so that every
    class reaches ``recall_floor``, apply them to every member; returns the card's ``class_offsets``
    entry and the views with the offsets added (what the adjusted members compute)."""
    offsets = fit_class_offsets(views, val_set.labels, recall_floor)
    zero = np.zeros_like(offsets)
    before, after = (decisions(views, o) for o in (zero, offsets))
    for member in members:
        apply_class_offsets(member, offsets)
    summary = {
        f"public_test_{when}": {
            "accuracy": round(float((p == val_set.labels).mean()), 4),
            "lowest_recall": round(float(np.nanmin(recalls(val_set.labels, p))), 4),
        }
        for when, p in (("before", before), ("after", after))
    }
    before_text, after_text = (
        f"accuracy {summary[k]['accuracy']:.4f}, lowest recall {summary[k]['lowest_recall']:.4f}"
        for k in ("public_test_before", "public_test_after")
    )
    named = ", ".join(f"{label} {o:+.2f}" for label, o in zip(EMOTION_LABELS, offsets, strict=True))
    print(f"class offsets for a recall floor of {recall_floor}: {named}")
    print(f"PublicTest {before_text} -> {after_text}")
    if summary["public_test_after"]["lowest_recall"] < recall_floor:
        print(f"warning: no offsets on the grid give every class a PublicTest recall of {recall_floor}")
    return {
        "class_offsets": {
            "method": "per-class logit offsets for a recall floor (most accurate on the grid)",
            "recall_floor": recall_floor,
            "offsets": dict(zip(EMOTION_LABELS, (round(float(o), 3) for o in offsets), strict=True)),
            "fitted_on": "PublicTest",
            **summary,
        }
    }, [v + offsets for v in views]


def _export_int8(
    network, calibration: np.ndarray, val_set, float_metrics: dict, path: Path, max_int8_drop: float
) -> tuple[dict, float]:
    """Quantise ``network`` to int8 (calibrated on ``calibration``) and write it to ``path`` only if its
    PublicTest accuracy stays within ``max_int8_drop`` points of the float model's; return its metrics
    and the drop in points.

    Raises:
        ExportError: the int8 model loses more than ``max_int8_drop`` points (nothing is written).
    """
    from training.evaluate import compute_metrics, predict_probabilities

    candidate = path.with_name(f".{path.stem}.candidate.tflite")
    candidate.write_bytes(convert_to_tflite(network, representative_images=calibration))
    try:
        int8_metrics = compute_metrics(val_set.labels, predict_probabilities(candidate, val_set.images))
        drop = 100.0 * (float_metrics["accuracy"] - int8_metrics["accuracy"])
        if drop > max_int8_drop:
            raise ExportError(
                f"int8 model loses {drop:.2f} points of PublicTest accuracy "
                f"({float_metrics['accuracy']:.4f} -> {int8_metrics['accuracy']:.4f}), more than the allowed "
                f"{max_int8_drop}; calibrate on more images (--calibration-images) or ship the float model"
            )
        os.replace(candidate, path)
    finally:
        candidate.unlink(missing_ok=True)
    return int8_metrics, drop


CARD_FORMATS = {
    "keras": "keras (float32)",
    "tflite": "tflite (float32)",
    "int8": "tflite (int8 weights and activations, float32 input/output)",
}


def _write_cards(
    paths: dict[str, Path],
    metrics: dict[str, dict],
    sources: list[str],
    data_text: str,
    commit: str,
    int8_extra: dict,
    common_extra: dict,
) -> None:
    """Write each exported model's JSON card beside it (its PublicTest summary and ``common_extra``; the
    int8 card also ``int8_extra``)."""
    for key, path in paths.items():
        summary = {
            "PublicTest": {k: metrics[key][k] for k in ("accuracy", "macro_f1", "expected_calibration_error")}
        }
        extra = {**common_extra, **(int8_extra if key == "int8" else {})}
        card = model_card(path, CARD_FORMATS[key], sources, data_text, summary, commit, extra)
        path.with_name(path.name + ".json").write_text(json.dumps(card, indent=2) + "\n")


def _export_data(
    data_path: str | os.PathLike, ferplus: str | None, skip_bad_rows: bool
) -> tuple[Any, Any, str]:
    """The Training split (calibration), the PublicTest split (the checks) and a line describing them.

    Raises:
        ExportError: either split is empty.
    """
    data = load_dataset(data_path, skip_bad_rows=skip_bad_rows, ferplus=ferplus)
    train_set, val_set = data.split(TRAINING), data.split(PUBLIC_TEST)
    if len(train_set) == 0 or len(val_set) == 0:
        raise ExportError(
            f"{data_path}: export needs Training rows (calibration) and PublicTest rows (check)"
        )
    return (
        train_set,
        val_set,
        f"{data.source} ({len(train_set)} Training images; checked on {len(val_set)} PublicTest)",
    )


def load_members(model_paths: list[str | os.PathLike]) -> list:
    """The trained networks of an export, as float32 inference models; an ensemble's members get the
    names ``member_1``, ``member_2``... (one model cannot hold two layers of the same name)."""
    members = [load_float32_network(path) for path in model_paths]
    if len(members) > 1:
        for index, member in enumerate(members, start=1):
            member.name = f"member_{index}"
    return members


def _inference_network(
    model_paths: list[str | os.PathLike],
    val_set: Any,
    mirror_average: bool,
    temperature_scaling: bool,
    recall_floor: float | None,
) -> tuple[Any, dict]:
    """The network as exported (float32; the members' average, with class offsets, temperature and mirror
    averaging when asked) and the cards' entries for the adjustments (empty without any)."""
    members = load_members(model_paths)
    card: dict = {"ensemble": [str(p) for p in model_paths]} if len(members) > 1 else {}
    if recall_floor is not None or temperature_scaling:
        # PublicTest log-probabilities, computed once: softmax(log p + offsets) is what a member with the
        # offsets added to its logits computes, so both fits use them.
        views = [v for member in members for v in view_logits(member, val_set.images, mirror_average)]
    if recall_floor is not None:
        offsets_card, views = _fit_recall_floor(members, val_set, views, recall_floor)
        card.update(offsets_card)
    if temperature_scaling:
        card.update(_calibrate(members, val_set, views))
    return averaged_network(members, mirror_average), card


def export_all(
    model_paths: str | os.PathLike | list[str | os.PathLike],
    data_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str = "emotion_model",
    ferplus: str | None = None,
    skip_bad_rows: bool = False,
    calibration_images: int = 2000,
    max_int8_drop: float = 0.5,
    mirror_average: bool = False,
    temperature_scaling: bool = False,
    recall_floor: float | None = None,
) -> dict[str, Path]:
    """Write ``<name>.keras``, ``<name>.tflite`` and ``<name>_int8.tflite`` (each with a ``.json`` card)
    for one trained network, or for the average of several (``model_paths`` a list: an ensemble).

    Raises:
        ExportError: when the int8 model's PublicTest accuracy drops more than ``max_int8_drop`` points
            below the float model's (the int8 file is then not written).
    """
    from training.evaluate import compute_metrics, predict_probabilities

    commit = source_commit()  # before writing: exporting into the tracked models/ must not read as "dirty"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_set, val_set, data_text = _export_data(data_path, ferplus, skip_bad_rows)

    if isinstance(model_paths, (str, os.PathLike)):
        model_paths = [model_paths]
    network, calibration_card = _inference_network(
        model_paths, val_set, mirror_average, temperature_scaling, recall_floor
    )
    paths = {
        "keras": out / f"{name}.keras",
        "tflite": out / f"{name}.tflite",
        "int8": out / f"{name}_int8.tflite",
    }
    network.save(paths["keras"])
    deflate_keras_file(paths["keras"])
    paths["tflite"].write_bytes(convert_to_tflite(network))

    float_metrics = compute_metrics(val_set.labels, predict_probabilities(paths["keras"], val_set.images))
    tflite_metrics = compute_metrics(val_set.labels, predict_probabilities(paths["tflite"], val_set.images))

    calibration = train_set.images[calibration_sample(train_set.labels, calibration_images)]
    int8_metrics, drop = _export_int8(
        network, calibration, val_set, float_metrics, paths["int8"], max_int8_drop
    )

    quantization = {
        "calibration_images": int(len(calibration)),
        "calibration_split": "Training",
        "public_test_drop_points": round(drop, 3),
    }
    metrics = {"keras": float_metrics, "tflite": tflite_metrics, "int8": int8_metrics}
    _write_cards(
        paths,
        metrics,
        [str(p) for p in model_paths],
        data_text,
        commit,
        {"mirror_averaging": mirror_average, "quantization": quantization},
        calibration_card,
    )
    print(f"exported {', '.join(str(p) for p in paths.values())}")
    accuracies = ", ".join(f"{key} {m['accuracy']:.4f}" for key, m in metrics.items())
    print(f"PublicTest accuracy: {accuracies} (drop {drop:.2f} points)")
    return paths
