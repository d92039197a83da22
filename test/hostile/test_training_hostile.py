"""The training command line against bad input: every numeric option is range-checked, pixel values
beyond 0-255 (even beyond 64 bits) are a DatasetError with file:line, a broken or wrong-shape model for
``evaluate`` is one error line, and a run whose loss becomes NaN writes no model and fails. Every one
of these exits with status 2 and one ``error:`` line, no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training import cli
from training.data import DatasetError, load_csv

# These tests start processes (the node, the tools, training): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

SPLITS = ("Training", "PublicTest", "PrivateTest")


def write_csv(path: Path, count: int = 42, bad_pixel: str | None = None, bad_row: int = 2) -> Path:
    """A FER2013-format CSV of random 48x48 images (rows in every split); ``bad_pixel`` replaces the
    first pixel of data row ``bad_row`` (file line ``bad_row + 1``)."""
    rng = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage"]
    for index in range(count):
        pixels = [str(v) for v in rng.integers(0, 256, 48 * 48)]
        if bad_pixel is not None and index + 1 == bad_row:
            pixels[0] = bad_pixel
        lines.append(f"{index % 7},{' '.join(pixels)},{SPLITS[index % 3]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run(capsys, *argv: str) -> tuple[int, str]:
    """``python -m training ARGV`` in this process; returns the exit status and stderr."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


def assert_one_error_line(status: int, err: str, *expected: str) -> None:
    assert status == 2, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    for text in expected:
        assert text in errors[0], errors[0]


@pytest.mark.parametrize("value", ["99999999999999999999", "256", "-1", "-99999999999999999999999"])
def test_a_pixel_outside_0_255_is_a_dataset_error_with_file_and_line(tmp_path: Path, value: str) -> None:
    path = write_csv(tmp_path / "fer.csv", bad_pixel=value, bad_row=3)
    with pytest.raises(DatasetError, match=r"fer\.csv:4: malformed row"):
        load_csv(path)
    assert len(load_csv(path, skip_bad_rows=True)) == 41


BAD_TRAIN_OPTIONS = [
    (("--batch-size", "0"), "--batch-size must be >= 1"),
    (("--epochs", "0"), "--epochs must be >= 1"),
    (("--learning-rate", "nan"), "--learning-rate must be a finite number"),
    (("--learning-rate", "inf"), "--learning-rate must be a finite number"),
    (("--learning-rate", "-1"), "--learning-rate must be >= 0.0"),
    (("--learning-rate", "-0.5"), "--learning-rate must be >= 0.0"),
    (("--label-smoothing", "2"), "--label-smoothing must be < 1.0"),
    (("--label-smoothing", "1"), "--label-smoothing must be < 1.0"),
    (("--label-smoothing", "-0.1"), "--label-smoothing must be >= 0.0"),
    (("--weight-decay", "-1"), "--weight-decay must be >= 0.0"),
    (("--ema-momentum", "1"), "--ema-momentum must be < 1.0"),
    (("--ema-momentum", "-0.5"), "--ema-momentum must be >= 0.0"),
    (("--ema-momentum", "nan"), "--ema-momentum must be a finite number"),
    (("--class-weight-power", "nan"), "--class-weight-power must be a finite number"),
    (("--patience", "0"), "--patience must be >= 1"),
    (("--seed", "-5"), "--seed must be >= 0"),
    (("--warmup-epochs", "-1"), "--warmup-epochs must be >= 0"),
    (("--epochs", "-3"), "--epochs must be >= 1"),
    (("--max-minutes", "-1"), "--max-minutes must be >= 0.0"),
    (("--data", "{missing}"), "no such file or folder"),
    (("--data", "{overflow}"), "fer.csv:3: malformed row"),
]


@pytest.mark.parametrize(
    ("option", "message"), BAD_TRAIN_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else None
)
def test_train_refuses_bad_options_with_one_error_line(
    tmp_path: Path, capsys, option: tuple[str, str], message: str
) -> None:
    good = write_csv(tmp_path / "good.csv")
    overflow = write_csv(tmp_path / "fer.csv", bad_pixel="99999999999999999999", bad_row=2)
    # float32: a run that gets as far as choosing the precision must not leave mixed_bfloat16 as Keras's
    # global policy for later tests in this process.
    args = {"--data": str(good), "--run-dir": str(tmp_path / "run"), "--mixed-precision": "off"}
    name, value = option
    args[name] = value.format(missing=tmp_path / "missing.csv", overflow=overflow)
    status, err = run(capsys, "train", *[item for pair in args.items() for item in pair])
    assert_one_error_line(status, err, message)
    assert not (tmp_path / "run" / "best.keras").exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--calibration-images", "0"), "--calibration-images must be >= 1"),
        (("--max-int8-drop", "nan"), "--max-int8-drop must be a finite number"),
        (("--max-int8-drop", "inf"), "--max-int8-drop must be a finite number"),
    ],
)
def test_export_refuses_bad_options_with_one_error_line(
    tmp_path: Path, capsys, option: tuple[str, str], message: str
) -> None:
    data = write_csv(tmp_path / "good.csv")
    status, err = run(
        capsys,
        "export",
        "--model",
        str(tmp_path / "best.keras"),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "out"),
        *option,
    )
    assert_one_error_line(status, err, message)


@pytest.fixture(scope="module")
def wrong_shape_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import keras

    from test.support.models import write_wrong_shape_models

    keras.mixed_precision.set_global_policy("float32")  # a train run in this process may have set bfloat16
    return write_wrong_shape_models(tmp_path_factory.mktemp("wrong_shape"))


@pytest.mark.parametrize("model", ["text", "input_32.tflite", "output_5.tflite", "rgb_input.keras"])
def test_evaluate_with_a_broken_or_wrong_shape_model_is_one_error_line(
    tmp_path: Path, capsys, model: str, wrong_shape_models: dict[str, Path]
) -> None:
    if model == "text":
        path = tmp_path / "model.tflite"
        path.write_text("this is not a model\n")
    else:
        path = wrong_shape_models[model]
    data = write_csv(tmp_path / "good.csv")
    status, err = run(
        capsys, "evaluate", "--model", str(path), "--data", str(data), "--out", str(tmp_path / "eval")
    )
    assert_one_error_line(status, err, str(path))
    assert not (tmp_path / "eval").exists()


def test_a_run_whose_loss_becomes_nan_writes_no_model_and_fails(tmp_path: Path, capsys) -> None:
    data = write_csv(tmp_path / "good.csv", count=42)
    run_dir = tmp_path / "run"
    status, err = run(
        capsys,
        "train",
        "--data",
        str(data),
        "--run-dir",
        str(run_dir),
        "--epochs",
        "2",
        "--warmup-epochs",
        "0",
        "--batch-size",
        "7",
        "--learning-rate",
        "1e30",
        "--mixed-precision",
        "off",
        "--architecture",
        "compact_fer",
    )
    assert_one_error_line(status, err, "training diverged", "NaN")
    assert not (run_dir / "best.keras").exists()
    assert not (run_dir / "last.keras").exists()
