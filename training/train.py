"""Training: augmentation, class weighting, warm-up + cosine learning rate, early stopping on
PublicTest, a checkpoint every epoch, ``--resume`` after an interruption, mixed precision, fixed seeds.

The epoch loop is Keras' own: ``BackupAndRestore`` (resume), ``ModelCheckpoint`` (best and last
network), ``EarlyStopping`` and ``CSVLogger``; this module adds only what Keras lacks: a wall-time
budget (``--max-minutes``) and ``state.json``, the run's progress as data.

A run directory holds::

    config.json     the TrainConfig of the run (a resumed run must use the same one)
    state.json      epoch, best PublicTest accuracy, early-stopping counter, wall time per epoch
    backup/         Keras' BackupAndRestore checkpoint (weights, optimizer, epoch): what --resume uses
    last.keras      the network with its optimizer state after the last epoch
    best.keras      the network with the best PublicTest accuracy so far
    history.csv     per epoch (Keras' numbering, from 0): loss, accuracy, val_*, learning rate, seconds
    tensorboard/    TensorBoard logs (when TensorFlow is available)

With ``--teacher``, ``teacher.json`` records the SHA-256 of each teacher file; a resumed run refuses
teachers that changed, since its targets would change with them.

A run directory written before ``backup/`` existed resumes from ``last.keras``; its ``history.csv`` is
rewritten once into the columns above (same values; epochs renumbered from 0).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emotion_recognition.spec import INPUT_SHAPE, NUM_EMOTIONS
from training.data import PUBLIC_TEST, TRAINING, FerDataset, load_dataset


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults are the recipe of the shipped model."""

    data: str
    run_dir: str
    ferplus: str | None = None
    # With --ferplus: the share of the FER+ vote distribution in each training target. 1 trains on the
    # votes alone; below 1 the rest is the row's FER2013 label (FER+ as an auxiliary soft target), every
    # row is kept, and the run selects on PublicTest's FER2013 labels.
    ferplus_weight: float = 1.0
    architecture: str = "compact_fer"
    epochs: int = 22
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum 0.9) or "adamw"
    learning_rate: float = 0.02
    weight_decay: float = 5e-4
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    # Class weight = (median class count / class count) ** power: 0 = off, 1 = full inverse frequency.
    # 0.5 lifts rare classes (disgust: 436 images) without paying much overall accuracy.
    class_weight_power: float = 0.5
    patience: int = 25  # epochs without a better PublicTest accuracy before stopping
    seed: int = 1337
    mixed_precision: str = "auto"  # "auto" (bfloat16 where the hardware has it), "bfloat16", "off"
    # Start from the weights of this .keras network (same architecture) instead of random ones: a warm
    # restart of the learning-rate schedule on a trained model.
    init_from: str | None = None
    # Polyak averaging: above 0, validation, best.keras and last.keras use the exponential moving average
    # of the weights (this momentum per step; 0.999 averages over about 1000 steps). 0 = off.
    ema_momentum: float = 0.0
    # Knowledge distillation: exported models (.tflite or .keras) whose mean probabilities, over the
    # members and each image's mirror, become this share of every training target (the rest is the
    # data's target: the label, or the FER+ votes). The teachers predict once, on the unaugmented
    # training images, before the first epoch.
    teacher: list[str] | None = None
    teacher_weight: float = 0.5
    skip_bad_rows: bool = False


def hardware_has_bfloat16() -> bool:
    """True when the accelerator or CPU in use computes bfloat16 natively."""
    import keras

    if keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            return bool(torch.cuda.is_bf16_supported())
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def class_weights(counts: np.ndarray, power: float) -> dict[int, float]:
    """Per-class loss weights (median count / count) ** power, normalised to a sample mean of 1."""
    counts = np.maximum(counts.astype(np.float64), 1.0)
    weights = (np.median(counts) / counts) ** power
    weights /= (weights * counts).sum() / counts.sum()
    return {i: float(w) for i, w in enumerate(weights)}


def _training_batches(
    images: np.ndarray, targets: np.ndarray, sample_weights: np.ndarray | None, batch_size: int, seed: int
):
    """A Keras PyDataset of augmented, shuffled training batches (a new, seeded order every epoch)."""
    import keras

    from training.augmentation import augment_batch

    class FerBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.count = len(images)
            self.epoch = 0
            self.order = np.random.default_rng((seed, 0)).permutation(len(images))

        def __len__(self) -> int:
            return math.ceil(len(images) / batch_size)

        def __getitem__(self, index: int):
            rows = self.order[index * batch_size : (index + 1) * batch_size]
            rng = np.random.default_rng((seed, self.epoch, index))
            x = augment_batch(images[rows], rng)[..., np.newaxis]
            if sample_weights is None:
                return x, targets[rows]
            return x, targets[rows], sample_weights[rows]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = np.random.default_rng((seed, self.epoch)).permutation(len(images))

    return FerBatches()


def _as_model_input(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32).reshape((-1, *INPUT_SHAPE))


def _atomic_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


HISTORY_COLUMNS = ("epoch", "accuracy", "learning_rate", "loss", "seconds", "val_accuracy", "val_loss")
FRESH_STATE = {
    "epoch": 0,
    "best_val_accuracy": -1.0,
    "best_epoch": 0,
    "epochs_since_best": 0,
    "epoch_seconds": [],
    "stopped_early": False,
    "finished": False,
}


class _RunDir:
    """The files of a run directory (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config, self.state = root / "config.json", root / "state.json"
        self.last, self.best, self.backup = root / "last.keras", root / "best.keras", root / "backup"
        self.history, self.tensorboard = root / "history.csv", root / "tensorboard"
        self.teachers = root / "teacher.json"

    def start(self, config: TrainConfig, resume: bool) -> dict:
        """Check that the run can start or resume; return its state.

        Raises:
            ValueError: nothing to resume, a resume with another config, or a run already there.
        """
        if not resume:
            if self.last.exists():
                raise ValueError(
                    f"{self.root} already holds a run; pass --resume to continue it or choose "
                    "another --run-dir"
                )
            self.root.mkdir(parents=True, exist_ok=True)
            _atomic_json(self.config, dataclasses.asdict(config))
            return json.loads(json.dumps(FRESH_STATE))
        if not (self.config.exists() and self.state.exists() and self.last.exists()):
            raise ValueError(f"{self.root}: nothing to resume (needs config.json, state.json and last.keras)")
        # A field the run's code did not have yet takes its default (which was that code's behaviour).
        defaults = dataclasses.asdict(TrainConfig(data=config.data, run_dir=config.run_dir))
        saved = {**defaults, **json.loads(self.config.read_text())}
        if saved != dataclasses.asdict(config):
            diff = {k: (saved.get(k), v) for k, v in dataclasses.asdict(config).items() if saved.get(k) != v}
            raise ValueError(f"{self.root}: resume with a different config (saved, given): {diff}")
        return json.loads(self.state.read_text())

    def check_teachers(self, digests: dict[str, str], resume: bool) -> None:
        """Record the teachers' digests when the run starts (replacing those of a start that failed before
        its first epoch); when it resumes, refuse teachers that changed.

        Raises:
            ValueError: a teacher file differs from the one the run started with.
        """
        if not resume or not self.teachers.exists():
            _atomic_json(self.teachers, digests)
            return
        saved = json.loads(self.teachers.read_text())
        changed = sorted(path for path in digests if saved.get(path) != digests[path])
        if changed:
            raise ValueError(
                f"{self.root}: teacher file(s) changed since the run started: {', '.join(changed)}"
            )

    def upgrade_old_history(self) -> None:
        """Rewrite a history.csv of the training code before Keras' CSVLogger (epochs from 1, other column
        order) into :data:`HISTORY_COLUMNS`, so that the resumed run appends matching rows."""
        if not self.history.exists():
            return
        with self.history.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows and "seconds" in rows[0] and list(rows[0]) != list(HISTORY_COLUMNS):
            tmp = self.history.with_suffix(".tmp")
            with tmp.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS)
                writer.writeheader()
                writer.writerows({**row, "epoch": int(row["epoch"]) - 1} for row in rows)
            os.replace(tmp, self.history)


def _starting_network(path: str, architecture: str):
    """The network of ``architecture`` saved in ``path``: a training run's checkpoint, or a model that
    ``export`` wrote around one such network (its head keeps the exported temperature).

    Raises:
        ValueError: ``path`` holds a network of another architecture, or an ensemble.
    """
    import keras

    from training.export import averaged_members

    members = averaged_members(keras.models.load_model(path, compile=False))
    if len(members) == 1 and members[0].name == architecture:
        return members[0]
    held = ", ".join(repr(member.name) for member in members)
    raise ValueError(f"--init-from {path} holds {held}, not one {architecture!r} network")


def _compiled_model(config: TrainConfig, steps_per_epoch: int):
    """A new network of ``config.architecture`` (weights from ``config.init_from`` if given), compiled with
    the recipe's loss, optimizer and warm-up + cosine schedule.

    Raises:
        ValueError: ``init_from`` is not one network of this architecture (another one, or an ensemble).
    """
    import keras

    from training.models import build_model

    model = build_model(config.architecture)
    if config.init_from:
        model.set_weights(_starting_network(config.init_from, model.name).get_weights())
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.01,
        decay_steps=max(steps_per_epoch * (config.epochs - config.warmup_epochs), 1),
        warmup_target=config.learning_rate,
        warmup_steps=steps_per_epoch * config.warmup_epochs,
        alpha=0.001,
    )
    averaging = {"use_ema": config.ema_momentum > 0, "ema_momentum": config.ema_momentum}
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            schedule, momentum=0.9, nesterov=True, weight_decay=config.weight_decay, **averaging
        )
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **averaging)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model


def _divergence_guard() -> Any:
    """A callback for the head of the list: an epoch whose loss is NaN or infinite ends the run before
    any checkpoint of it is written (the callbacks after it do not run for that epoch)."""
    import keras

    class DivergenceGuard(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if not math.isfinite(float((logs or {}).get("loss", float("nan")))):
                raise ValueError(
                    f"training diverged: the loss became NaN or infinite in epoch {epoch + 1}; "
                    "that epoch's weights were not saved (lower --learning-rate)"
                )

    return DivergenceGuard()


def _callbacks(config: TrainConfig, run: _RunDir, state: dict, max_minutes: float | None) -> list:
    """Keras' callbacks for checkpoints, resume, early stopping and the CSV history, plus the two this
    module adds: the epoch clock (seconds and learning rate into the logs) and the run state (state.json,
    the progress line and the time budget)."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            logs["seconds"] = round(time.monotonic() - self.started, 2)
            logs.setdefault(
                "learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            )

    class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)  # resets the counter; a resumed run continues it
            self.wait = state["epochs_since_best"]
            self.best = state["best_val_accuracy"] if state["epoch"] else None

    initial_best = state["best_val_accuracy"] if state["epoch"] else None
    best = keras.callbacks.ModelCheckpoint(
        run.best,
        monitor="val_accuracy",
        mode="max",
        save_best_only=True,
        initial_value_threshold=initial_best,
    )
    stopper = ResumedEarlyStopping(monitor="val_accuracy", mode="max", patience=config.patience)
    # In list order at each epoch's end: the backup keeps the weights being trained (and their average in
    # the optimizer), then, with --ema-momentum, the average is swapped into the network for the two
    # checkpoints (validation already ran on it) and swapped out again when the next epoch begins.
    averaging = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema_momentum > 0 else []
    callbacks = [
        _divergence_guard(),
        EpochClock(),
        keras.callbacks.BackupAndRestore(str(run.backup), delete_checkpoint=False, double_checkpoint=True),
        *averaging,
        best,
        keras.callbacks.ModelCheckpoint(run.last),
        stopper,
        keras.callbacks.CSVLogger(str(run.history), append=True),
        _run_state_callback(config, run, state, best, stopper, max_minutes),
    ]
    try:
        import tensorboard  # noqa: F401  (the TensorBoard writer needs it, and TensorFlow)
        import tensorflow  # noqa: F401

        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run.tensorboard), update_freq="epoch"))
    except ImportError:
        print(
            "note: TensorFlow or TensorBoard is not installed; no TensorBoard logs for this run "
            "(history.csv has the curves)"
        )
    return callbacks


def _run_state_callback(
    config: TrainConfig, run: _RunDir, state: dict, best: Any, stopper: Any, max_minutes: float | None
) -> Any:
    """The callback that keeps ``state.json``, prints one line per epoch and stops the run cleanly once
    ``max_minutes`` of wall time are spent (what Keras has no callback for)."""
    import keras

    started = time.monotonic()

    class RunState(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            val_acc = float(logs.get("val_accuracy", float("nan")))
            if best.best is not None and float(best.best) > state["best_val_accuracy"]:
                state.update(best_val_accuracy=float(best.best), best_epoch=epoch + 1)
            state.update(
                epoch=epoch + 1,
                epochs_since_best=int(stopper.wait),
                stopped_early=bool(stopper.stopped_epoch),
            )
            state["epoch_seconds"].append(logs["seconds"])
            state["finished"] = state["epoch"] >= config.epochs or state["stopped_early"]
            _atomic_json(run.state, state)
            print(
                f"epoch {epoch + 1}/{config.epochs}: PublicTest accuracy {val_acc:.4f} "
                f"(best {state['best_val_accuracy']:.4f} at epoch {state['best_epoch']}), "
                f"{logs['seconds']:.1f} s",
                flush=True,
            )
            if (
                max_minutes is not None
                and (time.monotonic() - started) / 60.0 > max_minutes
                and not state["finished"]
            ):
                print(
                    f"time budget of {max_minutes} min reached after epoch {epoch + 1}; resume with --resume",
                    flush=True,
                )
                self.model.stop_training = True

    return RunState()


def train(config: TrainConfig, resume: bool = False, max_minutes: float | None = None) -> Path:
    """Train (or resume) a run; returns the path of ``best.keras``.

    Args:
        config: the recipe. With ``resume`` it must equal the run's saved config.
        resume: continue the run in ``config.run_dir`` from its last epoch.
        max_minutes: stop cleanly after the epoch during which this wall time is exceeded, leaving a
            resumable run (for time-boxed machines).

    Raises:
        ValueError: an unknown option, a resume that doesn't match, or a missing checkpoint.
    """
    import keras

    if config.optimizer not in ("sgd", "adamw"):
        raise ValueError(f"unknown optimizer {config.optimizer!r}; use 'sgd' or 'adamw'")
    if config.mixed_precision not in ("auto", "bfloat16", "off"):
        raise ValueError(f"unknown mixed_precision {config.mixed_precision!r}; use auto, bfloat16 or off")
    if config.ferplus_weight < 1.0 and not config.ferplus:
        raise ValueError("--ferplus-weight below 1 needs --ferplus (the FER+ vote file)")
    if config.teacher_weight != TrainConfig.teacher_weight and not config.teacher:
        raise ValueError("--teacher-weight needs --teacher (the teacher models)")
    run = _RunDir(Path(config.run_dir))
    state = run.start(config, resume)
    if config.teacher:
        run.check_teachers({path: _sha256(path) for path in config.teacher}, resume)
    if state.get("finished"):
        print(f"{run.root}: run already finished (best PublicTest accuracy {state['best_val_accuracy']:.4f})")
        return run.best
    use_bf16 = config.mixed_precision == "bfloat16" or (
        config.mixed_precision == "auto" and hardware_has_bfloat16()
    )
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if use_bf16 else "float32")
    keras.utils.set_random_seed(config.seed + state["epoch"])  # a resumed run draws new, reproducible batches
    batches, validation = _datasets(config, state["epoch"])
    if resume and not run.backup.exists():  # a run of the code before BackupAndRestore
        run.upgrade_old_history()
        model = keras.models.load_model(run.last)
    else:
        model = _compiled_model(config, len(batches))
    callbacks = _callbacks(config, run, state, max_minutes)
    print(
        f"training {config.architecture} on {batches.count} images, validating on {len(validation[0])} "
        f"(PublicTest); policy {keras.mixed_precision.global_policy().name}, "
        f"backend {keras.backend.backend()}, "
        f"epochs {state['epoch'] + 1}..{config.epochs}",
        flush=True,
    )
    model.fit(
        batches,
        epochs=config.epochs,
        initial_epoch=state["epoch"],
        validation_data=validation,
        callbacks=callbacks,
        verbose="auto" if sys.stdout.isatty() else 2,
    )
    if not run.best.is_file():
        raise ValueError(f"no model was written to {run.best}")
    return run.best


def _datasets(config: TrainConfig, epoch: int) -> tuple[Any, tuple[np.ndarray, np.ndarray]]:
    """The augmented, class-weighted training batches (positioned at ``epoch``) and the PublicTest
    validation arrays.

    Raises:
        ValueError: the data has no Training or no PublicTest rows.
    """
    data = load_dataset(
        config.data,
        skip_bad_rows=config.skip_bad_rows,
        ferplus=config.ferplus,
        ferplus_weight=config.ferplus_weight,
    )
    if data.skipped:
        print(f"warning: skipped {data.skipped} malformed rows in {data.source}", file=sys.stderr)
    train_set, val_set = data.split(TRAINING), data.split(PUBLIC_TEST)
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError(
            f"{config.data}: needs Training and PublicTest rows (got {len(train_set)} and {len(val_set)})"
        )
    sample_weights = None
    if config.class_weight_power:
        per_class = class_weights(train_set.class_counts(), config.class_weight_power)
        sample_weights = np.array([per_class[c] for c in range(NUM_EMOTIONS)], dtype=np.float32)[
            train_set.labels
        ]
    targets = _distilled(config, train_set) if config.teacher else train_set.targets()
    batches = _training_batches(train_set.images, targets, sample_weights, config.batch_size, config.seed)
    batches.epoch = epoch
    batches.order = np.random.default_rng((config.seed, epoch)).permutation(len(train_set))
    val_targets = val_set.targets() if config.ferplus_weight >= 1.0 else val_set.one_hot()
    return batches, (_as_model_input(val_set.images), val_targets)


def _distilled(config: TrainConfig, train_set: FerDataset) -> np.ndarray:
    """The training targets blended with the teachers' probabilities (``config.teacher_weight``)."""
    taught = teacher_probabilities(config.teacher, train_set.images)
    agreement = float((taught.argmax(axis=1) == train_set.labels).mean())
    print(
        f"teachers {', '.join(config.teacher)}: agree with {agreement:.1%} of the training labels; "
        f"targets are {config.teacher_weight:g} x their probabilities + {1 - config.teacher_weight:g} x "
        "the data's target",
        flush=True,
    )
    weight = config.teacher_weight
    return (weight * taught + (1.0 - weight) * train_set.targets()).astype(np.float32)


def _sha256(path: str) -> str:
    """The SHA-256 of a file, read in blocks.

    Raises:
        OSError: the file cannot be read.
    """
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def teacher_probabilities(paths: list[str], images: np.ndarray) -> np.ndarray:
    """The mean probabilities of the teacher models over ``images`` (uint8 (N, 48, 48)) and their mirror
    images: the distillation targets (float32 (N, 7), rows summing to 1).

    Raises:
        ModelLoadError: a teacher is not a usable model.
        ValueError: a teacher returns probabilities that are not finite or do not sum to 1.
    """
    from training.evaluate import predict_probabilities

    both_views = np.concatenate([images, images[:, :, ::-1]])  # each face, then its mirror
    total = np.zeros((len(images), NUM_EMOTIONS), np.float64)
    for path in paths:
        probabilities = predict_probabilities(path, both_views).astype(np.float64)
        sums = probabilities.sum(axis=1)
        if not np.isfinite(probabilities).all() or not np.allclose(sums, 1.0, atol=1e-2):
            raise ValueError(f"teacher {path} does not return probabilities (rows must sum to 1)")
        total += probabilities[: len(images)] + probabilities[len(images) :]
    total /= total.sum(axis=1, keepdims=True)
    return total.astype(np.float32)
