"""Command-line interface: ``python -m training {train,evaluate,export,recover} ...``."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from typing import Any

from training.train import TrainConfig

# Allowed range of every numeric option: (lowest, highest, whether the lowest itself is allowed); None is
# no bound. A value outside ends the command with one error line (exit status 2) before any work.
NUMERIC_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "epochs": (1, None, True),
    "batch_size": (1, None, True),
    "learning_rate": (0.0, None, True),  # 0 freezes the weights (only batch-norm statistics move)
    "weight_decay": (0.0, None, True),
    "warmup_epochs": (0, None, True),
    "label_smoothing": (0.0, 1.0, True),
    "ema_momentum": (0.0, 1.0, True),  # [0, 1): 1 would never move the average
    "ferplus_weight": (0.0, 1.0, True),  # 1: the votes alone
    "teacher_weight": (0.0, 1.0, True),
    "class_weight_power": (0.0, None, True),
    "patience": (1, None, True),
    "seed": (0, 2**32 - 1, True),
    "max_minutes": (0.0, None, True),  # 0: stop after the first epoch
    "calibration_images": (1, None, True),
    "max_int8_drop": (None, 100.0, True),
    "recall_floor": (0.0, 1.0, True),  # negative: int8 must beat float (a gate no model meets)
}


def check_numeric_options(args: argparse.Namespace) -> None:
    """Raise ValueError naming the option when a numeric option is not finite or out of its range
    (:data:`NUMERIC_RANGES`)."""
    for name, (low, high, low_allowed) in NUMERIC_RANGES.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        option = "--" + name.replace("_", "-")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{option} must be a finite number, got {value}")
        if low is not None and (value < low or (value == low and not low_allowed)):
            raise ValueError(f"{option} must be {'>=' if low_allowed else '>'} {low}, got {value}")
        high_excluded = name in ("label_smoothing", "ema_momentum")
        if high is not None and (value > high or (high_excluded and value >= high)):
            raise ValueError(f"{option} must be {'<' if high_excluded else '<='} {high}, got {value}")


def _add_data_arguments(
    parser: argparse.ArgumentParser, ferplus_help: str = "FER+ fer2013new.csv: use its votes as (soft) labels"
) -> None:
    parser.add_argument(
        "--data", required=True, help="fer2013.csv(.gz), a prepared .npz, or a <split>/<emotion>/*.png folder"
    )
    parser.add_argument("--ferplus", default=None, help=ferplus_help)
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="count and skip malformed rows instead of stopping at the first one",
    )


def _add_train_command(commands: Any) -> None:
    defaults = TrainConfig(data="", run_dir="")
    train = commands.add_parser("train", help="train a model; checkpoints every epoch, resumable")
    _add_data_arguments(train)
    train.add_argument("--run-dir", required=True, help="folder for checkpoints, logs and the best model")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    train.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop cleanly after the epoch that passes this wall time (resume later)",
    )
    train.add_argument(
        "--teacher",
        nargs="+",
        default=None,
        help="distil from these exported models (.tflite or .keras): see --teacher-weight",
    )
    for field in dataclasses.fields(TrainConfig):
        if field.name in ("data", "run_dir", "ferplus", "skip_bad_rows", "teacher"):
            continue
        default = getattr(defaults, field.name)
        kind = type(default) if default is not None else str
        train.add_argument(
            f"--{field.name.replace('_', '-')}", type=kind, default=default, help=f"default: {default}"
        )


def _add_evaluate_command(commands: Any) -> None:
    evaluate = commands.add_parser("evaluate", help="metrics, confusion matrix and calibration on a split")
    evaluate.add_argument("--model", required=True, help=".keras or .tflite model")
    _add_data_arguments(
        evaluate,
        ferplus_help="FER+ fer2013new.csv: also score against the FER+ majority vote "
        "(rows whose majority is unique and one of the 7 emotions)",
    )
    evaluate.add_argument("--split", default="PrivateTest", help="Training, PublicTest or PrivateTest")
    evaluate.add_argument("--out", required=True, help="folder for metrics JSON and plots")
    evaluate.add_argument(
        "--update-card",
        action="store_true",
        help="also record the numbers in the model's JSON card (<model>.json)",
    )
    evaluate.add_argument(
        "--baseline",
        default=None,
        help="a second model to compare with on the same images (McNemar's exact test)",
    )


def _add_export_command(commands: Any) -> None:
    export = commands.add_parser("export", help=".keras, float .tflite and checked int8 .tflite")
    export.add_argument(
        "--model",
        required=True,
        nargs="+",
        help="the trained network (a run's best.keras); several: export their average (an ensemble)",
    )
    _add_data_arguments(export)
    export.add_argument("--out", required=True, help="output folder (e.g. models/)")
    export.add_argument("--name", default="emotion_model", help="file stem of the exported models")
    export.add_argument(
        "--calibration-images",
        type=int,
        default=2000,
        help="training images used to calibrate int8 quantisation",
    )
    export.add_argument(
        "--mirror-average",
        action="store_true",
        help="average each face's prediction with its mirror image's, inside the model",
    )
    export.add_argument(
        "--temperature-scaling",
        action="store_true",
        help="fit a softmax temperature on PublicTest (minimum NLL) and build it into the model",
    )
    export.add_argument(
        "--recall-floor",
        type=float,
        default=None,
        help="fit per-class logit offsets on PublicTest so that every class reaches this recall",
    )
    export.add_argument(
        "--max-int8-drop",
        type=float,
        default=0.5,
        help="fail when int8 PublicTest accuracy is this many points below float",
    )


def _add_recover_command(commands: Any) -> None:
    recover = commands.add_parser(
        "recover", help="rebuild the float .keras network inside an exported .tflite (e.g. to ensemble it)"
    )
    recover.add_argument("--model", required=True, help="a .tflite written by export (int8 or float)")
    recover.add_argument("--out", required=True, help="the new .keras file (never overwritten)")


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``train``, ``evaluate``, ``export`` and ``recover``."""
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train_command(commands)
    _add_evaluate_command(commands)
    _add_export_command(commands)
    _add_recover_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a problem with the user's input (data, paths, options) ends it with a one-line
    ``error:`` message and exit status 2 instead of a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from emotion_recognition.core.classifier import ModelLoadError
    from training.export import ExportError

    try:
        check_numeric_options(args)
        _run(args)
    except (ValueError, ExportError, ModelLoadError, OSError) as exc:  # DatasetError is a ValueError
        message = " ".join(str(exc).split())
        parser.exit(2, f"{parser.prog} {args.command}: error: {message}\n")
    return 0


def _comparison_line(comparison: dict) -> str:
    difference = 100 * (comparison["accuracy"] - comparison["baseline_accuracy"])
    return (
        f"  against the baseline {comparison['baseline_accuracy']:.4f} ({difference:+.2f} points): "
        f"{comparison['only_model_correct']} images only this model gets right, "
        f"{comparison['only_baseline_correct']} only the baseline; "
        f"McNemar exact p = {comparison['mcnemar_exact_p']:.3g}"
    )


def _print_evaluation(args: argparse.Namespace, metrics: dict) -> None:
    print(
        f"{args.split}: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
        f"ECE {metrics['expected_calibration_error']:.4f} -> {args.out}"
    )
    if "comparison" in metrics:
        print(_comparison_line(metrics["comparison"]))
    if "ferplus_majority" in metrics:
        plus = metrics["ferplus_majority"]
        print(
            f"{args.split}, FER+ majority labels ({plus['num_images']} images): accuracy "
            f"{plus['accuracy']:.4f}, macro-F1 {plus['macro_f1']:.4f}"
        )
        if "comparison" in plus:
            print(_comparison_line(plus["comparison"]))


def _run(args: argparse.Namespace) -> None:
    if args.command == "train":
        from training.train import train

        config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
        best = train(config, resume=args.resume, max_minutes=args.max_minutes)
        print(f"best model: {best}")
    elif args.command == "evaluate":
        from training.evaluate import evaluate_to_folder

        metrics = evaluate_to_folder(
            args.model,
            args.data,
            args.split,
            args.out,
            ferplus=args.ferplus,
            skip_bad_rows=args.skip_bad_rows,
            update_card=args.update_card,
            baseline=args.baseline,
        )
        _print_evaluation(args, metrics)
    elif args.command == "recover":
        from training.recover import recover_to_file

        print(f"recovered network: {recover_to_file(args.model, args.out)}")
    elif args.command == "export":
        from training.export import export_all

        export_all(
            args.model,
            args.data,
            args.out,
            name=args.name,
            ferplus=args.ferplus,
            skip_bad_rows=args.skip_bad_rows,
            calibration_images=args.calibration_images,
            max_int8_drop=args.max_int8_drop,
            mirror_average=args.mirror_average,
            temperature_scaling=args.temperature_scaling,
            recall_floor=args.recall_floor,
        )


if __name__ == "__main__":
    sys.exit(main())
