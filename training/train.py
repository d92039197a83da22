"""Training loop: augmentation, class weighting, warm-up + cosine learning rate, early stopping on
PublicTest, a checkpoint every epoch, ``--resume`` after an interruption, mixed precision, fixed seeds.

A run directory holds::

    config.json     the TrainConfig of the run (a resumed run must use the same one)
    state.json      epoch, best PublicTest accuracy, early-stopping counter, wall time per epoch
    last.keras      the network with its optimizer state after the last epoch
    best.keras      the network with the best PublicTest accuracy so far
    history.csv     per-epoch loss/accuracy/learning rate
    tensorboard/    TensorBoard logs (when TensorFlow is available)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotion_recognition.spec import INPUT_SHAPE, NUM_EMOTIONS
from training.data import PUBLIC_TEST, TRAINING, load_dataset


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults are the recipe of the shipped model."""

    data: str
    run_dir: str
    ferplus: str | None = None
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


def _training_batches(images: np.ndarray, targets: np.ndarray, sample_weights: np.ndarray | None,
                      batch_size: int, seed: int):
    """A Keras PyDataset of augmented, shuffled training batches (a new, seeded order every epoch)."""
    import keras

    from training.augmentation import augment_batch

    class FerBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch = 0
            self.order = np.random.default_rng((seed, 0)).permutation(len(images))

        def __len__(self) -> int:
            return math.ceil(len(images) / batch_size)

        def __getitem__(self, index: int):
            rows = self.order[index * batch_size:(index + 1) * batch_size]
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


def _atomic_save(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def train(config: TrainConfig, resume: bool = False, max_minutes: float | None = None) -> Path:
    """Train (or resume) a run; returns the path of ``best.keras``.

    Args:
        config: the recipe. With ``resume`` it must equal the run's saved config.
        resume: continue from ``last.keras`` / ``state.json`` in ``config.run_dir``.
        max_minutes: stop cleanly after the epoch during which this wall time is exceeded, leaving a
            resumable run (for time-boxed machines).

    Raises:
        ValueError: an unknown option, a resume that doesn't match, or a missing checkpoint.
    """
    import keras

    from training.models import build_model

    run_dir = Path(config.run_dir)
    config_path, state_path = run_dir / "config.json", run_dir / "state.json"
    last_path, best_path = run_dir / "last.keras", run_dir / "best.keras"
    if config.optimizer not in ("sgd", "adamw"):
        raise ValueError(f"unknown optimizer {config.optimizer!r}; use 'sgd' or 'adamw'")
    if config.mixed_precision not in ("auto", "bfloat16", "off"):
        raise ValueError(f"unknown mixed_precision {config.mixed_precision!r}; use auto, bfloat16 or off")

    if resume:
        if not (config_path.exists() and state_path.exists() and last_path.exists()):
            raise ValueError(f"{run_dir}: nothing to resume (needs config.json, state.json and last.keras)")
        saved = json.loads(config_path.read_text())
        if saved != dataclasses.asdict(config):
            diff = {k: (saved.get(k), v) for k, v in dataclasses.asdict(config).items() if saved.get(k) != v}
            raise ValueError(f"{run_dir}: resume with a different config (saved, given): {diff}")
        state = json.loads(state_path.read_text())
    else:
        if last_path.exists():
            raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --run-dir")
        run_dir.mkdir(parents=True, exist_ok=True)
        _atomic_json(config_path, dataclasses.asdict(config))
        state = {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "epochs_since_best": 0,
                 "epoch_seconds": [], "stopped_early": False, "finished": False}

    if state.get("finished"):
        print(f"{run_dir}: run already finished (best PublicTest accuracy {state['best_val_accuracy']:.4f})")
        return best_path

    use_bf16 = config.mixed_precision == "bfloat16" or (config.mixed_precision == "auto" and hardware_has_bfloat16())
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if use_bf16 else "float32")
    keras.utils.set_random_seed(config.seed + state["epoch"])  # a resumed run draws new, reproducible batches

    data = load_dataset(config.data, skip_bad_rows=config.skip_bad_rows, ferplus=config.ferplus)
    if data.skipped:
        print(f"warning: skipped {data.skipped} malformed rows in {data.source}", file=sys.stderr)
    train_set, val_set = data.split(TRAINING), data.split(PUBLIC_TEST)
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError(f"{config.data}: needs Training and PublicTest rows (got {len(train_set)} and {len(val_set)})")
    x_val, y_val = _as_model_input(val_set.images), val_set.targets()
    sample_weights = None
    if config.class_weight_power:
        per_class = class_weights(train_set.class_counts(), config.class_weight_power)
        sample_weights = np.array([per_class[c] for c in range(NUM_EMOTIONS)], dtype=np.float32)[train_set.labels]
    batches = _training_batches(train_set.images, train_set.targets(), sample_weights, config.batch_size, config.seed)
    batches.epoch = state["epoch"]
    batches.order = np.random.default_rng((config.seed, state["epoch"])).permutation(len(train_set))

    steps_per_epoch = len(batches)
    if resume:
        model = keras.models.load_model(last_path)
    else:
        model = build_model(config.architecture)
        if config.init_from:
            source = keras.models.load_model(config.init_from, compile=False)
            if source.name != model.name:
                raise ValueError(f"--init-from {config.init_from} is a {source.name!r} network, not {model.name!r}")
            model.set_weights(source.get_weights())
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate * 0.01,
            decay_steps=max(steps_per_epoch * (config.epochs - config.warmup_epochs), 1),
            warmup_target=config.learning_rate,
            warmup_steps=steps_per_epoch * config.warmup_epochs,
            alpha=0.001,
        )
        if config.optimizer == "sgd":
            optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
        else:
            optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
    started = time.monotonic()

    class Checkpoint(keras.callbacks.Callback):
        """Saves last/best every epoch, runs early stopping and the time budget, keeps state.json."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch_started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            if not math.isfinite(float(logs.get("loss", float("nan")))):
                state["diverged_epoch"] = epoch + 1  # nothing of this epoch is saved
                self.model.stop_training = True
                return
            val_acc = float(logs.get("val_accuracy", float("nan")))
            state["epoch"] = epoch + 1
            state["epoch_seconds"].append(round(time.monotonic() - self.epoch_started, 2))
            if val_acc > state["best_val_accuracy"]:
                state.update(best_val_accuracy=val_acc, best_epoch=epoch + 1, epochs_since_best=0)
                _atomic_save(self.model, best_path)
            else:
                state["epochs_since_best"] += 1
            if state["epochs_since_best"] >= config.patience:
                state["stopped_early"] = True
                self.model.stop_training = True
            if state["epoch"] >= config.epochs or state["stopped_early"]:
                state["finished"] = True
            _atomic_save(self.model, last_path)
            _atomic_json(state_path, state)
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            with open(run_dir / "history.csv", "a") as history:
                if epoch == 0:
                    history.write("epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n")
                history.write(f"{epoch + 1},{logs.get('loss', float('nan')):.5f},{logs.get('accuracy', float('nan')):.5f},"
                              f"{logs.get('val_loss', float('nan')):.5f},{val_acc:.5f},{lr:.6f},{state['epoch_seconds'][-1]}\n")
            print(f"epoch {epoch + 1}/{config.epochs}: PublicTest accuracy {val_acc:.4f} "
                  f"(best {state['best_val_accuracy']:.4f} at epoch {state['best_epoch']}), "
                  f"{state['epoch_seconds'][-1]:.1f} s", flush=True)
            if max_minutes is not None and (time.monotonic() - started) / 60.0 > max_minutes and not state["finished"]:
                print(f"time budget of {max_minutes} min reached after epoch {epoch + 1}; resume with --resume", flush=True)
                self.model.stop_training = True

    callbacks: list = [Checkpoint()]
    try:
        import tensorboard  # noqa: F401  (the TensorBoard writer needs it, and TensorFlow)
        import tensorflow  # noqa: F401

        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), update_freq="epoch"))
    except ImportError:
        print("note: TensorFlow or TensorBoard is not installed; no TensorBoard logs for this run (history.csv has the curves)")

    print(f"training {config.architecture} on {len(train_set)} images, validating on {len(x_val)} (PublicTest); "
          f"policy {keras.mixed_precision.global_policy().name}, backend {keras.backend.backend()}, "
          f"epochs {state['epoch'] + 1}..{config.epochs}", flush=True)
    model.fit(
        batches,
        epochs=config.epochs,
        initial_epoch=state["epoch"],
        validation_data=(x_val, y_val),
        callbacks=callbacks,
        verbose="auto" if sys.stdout.isatty() else 2,
    )
    if state.get("diverged_epoch"):
        raise ValueError(f"training diverged: the loss became NaN or infinite in epoch "
                         f"{state['diverged_epoch']}; that epoch's weights were not saved "
                         "(lower --learning-rate)")
    if not best_path.is_file():
        raise ValueError(f"no model was written to {best_path}")
    return best_path
