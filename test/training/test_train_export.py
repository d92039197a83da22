"""A two-epoch training run on a tiny data set that saves, is interrupted, resumes and exports, through
the command-line interface a researcher uses; and the metrics on a hand-made example."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emotion_recognition.core.classifier import EmotionClassifier
from emotion_recognition.spec import EMOTION_LABELS, INPUT_SHAPE
from test.support.training_cli import REPO_ROOT, run_cli
from training.evaluate import compute_metrics, paired_comparison
from training.export import source_commit


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """56 training and 28 PublicTest images whose class is visible (a bright band at a class-specific
    row), so that even two epochs learn something."""
    rng = np.random.default_rng(7)
    images, labels, usage = [], [], []
    for split, count in ((0, 56), (1, 28)):
        for i in range(count):
            label = i % 7
            image = rng.integers(0, 60, size=(48, 48)).astype(np.uint8)
            image[label * 6 : label * 6 + 6, :] = 230
            images.append(image)
            labels.append(label)
            usage.append(split)
    path = tmp_path_factory.mktemp("tiny") / "tiny.npz"
    np.savez(path, images=np.stack(images), labels=np.array(labels, np.int8), usage=np.array(usage, np.int8))
    return path


@pytest.mark.slow
def test_train_interrupt_resume_export(tiny_data: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    common = [
        "--data",
        tiny_data,
        "--run-dir",
        run_dir,
        "--architecture",
        "compact_fer",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--warmup-epochs",
        "1",
    ]

    # An interruption after the first epoch (the time budget is already spent).
    first = run_cli("train", *common, "--max-minutes", "0")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "resume with --resume" in first.stdout
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epoch"] == 1 and not state["finished"]
    assert (run_dir / "last.keras").is_file() and (run_dir / "best.keras").is_file()

    # Starting again without --resume refuses to overwrite the run; a different recipe cannot resume it.
    again = run_cli("train", *common)
    assert again.returncode == 2 and "pass --resume" in again.stderr and "Traceback" not in again.stderr
    other = run_cli("train", *common[:-2], "--warmup-epochs", "0", "--resume")
    assert other.returncode == 2 and "different config" in other.stderr

    resumed = run_cli("train", *common, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epoch"] == 2 and state["finished"]
    history = (run_dir / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["0", "1"]  # Keras' CSVLogger counts from 0
    assert (run_dir / "tensorboard").is_dir()

    out = tmp_path / "export"
    commit_before_export = source_commit()
    exported = run_cli(
        "export",
        "--model",
        run_dir / "best.keras",
        "--data",
        tiny_data,
        "--out",
        out,
        "--calibration-images",
        "40",
        "--max-int8-drop",
        "100",
        "--temperature-scaling",
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "temperature scaling: T =" in exported.stdout
    for name in ("emotion_model.keras", "emotion_model.tflite", "emotion_model_int8.tflite"):
        card = json.loads((out / f"{name}.json").read_text())
        assert card["labels"] == list(EMOTION_LABELS)
        assert card["input"]["shape"] == ["N", *INPUT_SHAPE]
        assert 0.0 <= card["metrics"]["PublicTest"]["accuracy"] <= 1.0
        assert card["commit"] == commit_before_export and commit_before_export != "unknown"
    int8_card = json.loads((out / "emotion_model_int8.tflite.json").read_text())
    assert int8_card["quantization"]["calibration_images"] == 40 and int8_card["mirror_averaging"] is False
    calibration = int8_card["calibration"]
    assert calibration["fitted_on"] == "PublicTest" and 0.25 <= calibration["temperature"] <= 4.0
    assert calibration["public_test_ece_after"] <= calibration["public_test_ece_before"] + 1e-3

    # The float .tflite computes what the .keras computes; int8 stays within quantisation error.
    images = np.load(tiny_data)["images"][:28].astype(np.float32).reshape((-1, *INPUT_SHAPE))
    keras_out = EmotionClassifier.load(out / "emotion_model.keras").predict(images)
    float_out = EmotionClassifier.load(out / "emotion_model.tflite").predict(images)
    int8_out = EmotionClassifier.load(out / "emotion_model_int8.tflite").predict(images)
    np.testing.assert_allclose(float_out, keras_out, atol=1e-4)
    np.testing.assert_allclose(int8_out, keras_out, atol=0.05)  # quantisation error only

    # Two networks of the run exported as one ensemble, with mirror averaging and a recall floor.
    ensemble_out = tmp_path / "ensemble"
    ensemble = run_cli(
        "export",
        "--model",
        run_dir / "best.keras",
        run_dir / "last.keras",
        "--data",
        tiny_data,
        "--out",
        ensemble_out,
        "--name",
        "ensemble",
        "--calibration-images",
        "40",
        "--max-int8-drop",
        "100",
        "--mirror-average",
        "--recall-floor",
        "0.3",
        "--temperature-scaling",
    )
    assert ensemble.returncode == 0, ensemble.stderr[-3000:]
    assert "class offsets for a recall floor of 0.3" in ensemble.stdout
    ensemble_card = json.loads((ensemble_out / "ensemble_int8.tflite.json").read_text())
    assert ensemble_card["ensemble"] == [str(run_dir / "best.keras"), str(run_dir / "last.keras")]
    assert [m["training_config"]["epochs"] for m in ensemble_card["members"]] == [2, 2]
    offsets = ensemble_card["class_offsets"]
    assert offsets["fitted_on"] == "PublicTest" and set(offsets["offsets"]) == set(EMOTION_LABELS)
    assert ensemble_card["mirror_averaging"] is True
    assert ensemble_card["calibration"]["fitted_on"] == "PublicTest"
    ensemble_keras = EmotionClassifier.load(ensemble_out / "ensemble.keras").predict(images)
    ensemble_float = EmotionClassifier.load(ensemble_out / "ensemble.tflite").predict(images)
    np.testing.assert_allclose(ensemble_float, ensemble_keras, atol=1e-4)
    np.testing.assert_allclose(ensemble_keras.sum(axis=1), 1.0, atol=1e-5)
    # Loading checks that rows sum to 1 on probe inputs, on which this 2-epoch ensemble is more confident
    # than on its calibration images (measured: 0.40 against 0.25). An int8 mean whose ranges came from the
    # calibration images clipped those rows (sums of 0.90) and failed here; the fixed ranges keep [0, 1].
    ensemble_int8 = EmotionClassifier.load(ensemble_out / "ensemble_int8.tflite")
    np.testing.assert_allclose(ensemble_int8.predict(images), ensemble_keras, atol=0.05)

    # FER+ votes for the 84 rows: the majority agrees with the FER2013 label, except in two PublicTest rows
    # (a tie, and 'contempt' winning), which the FER+ benchmark leaves out.
    labels = np.load(tiny_data)["labels"]
    columns = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    order = header.split(",")[2:]
    rows = []
    for row, label in enumerate(labels):
        votes = dict.fromkeys(order, 0)
        votes[columns[label]] = 7
        votes["unknown"] = 3
        if row == 60:
            votes["unknown"] = 7
        if row == 61:
            votes["contempt"] = 8
        rows.append(",".join(["x", f"fer{row}.png", *(str(votes[c]) for c in order)]))
    votes_path = tmp_path / "fer2013new.csv"
    votes_path.write_text("\n".join([header, *rows]) + "\n")

    evaluated = run_cli(
        "evaluate",
        "--model",
        out / "emotion_model_int8.tflite",
        "--data",
        tiny_data,
        "--split",
        "PublicTest",
        "--out",
        tmp_path / "eval",
        "--update-card",
        "--ferplus",
        votes_path,
        "--baseline",
        out / "emotion_model.tflite",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics_PublicTest.json").read_text())
    assert metrics["num_images"] == 28
    plus = metrics["ferplus_majority"]
    assert plus["num_images"] == 26
    # The comparison with the float model runs both models on the same images.
    float_model = EmotionClassifier.load(out / "emotion_model.tflite")
    public = np.load(tiny_data)["usage"] == 1
    float_predictions = float_model.predict(np.load(tiny_data)["images"][public].reshape((-1, *INPUT_SHAPE)))
    float_accuracy = (float_predictions.argmax(1) == labels[public]).mean()
    comparison = metrics["comparison"]
    assert comparison["baseline"] == str(out / "emotion_model.tflite")
    assert comparison["accuracy"] == pytest.approx(metrics["accuracy"])
    assert comparison["baseline_accuracy"] == pytest.approx(float_accuracy)
    assert comparison["only_model_correct"] - comparison["only_baseline_correct"] == round(
        28 * (metrics["accuracy"] - float_accuracy)
    )
    assert plus["comparison"]["num_images"] == 26
    assert plus["comparison"]["accuracy"] == pytest.approx(plus["accuracy"])
    assert "McNemar exact p" in evaluated.stdout
    # Same predictions on the 26 rows whose FER+ majority is the FER2013 label: the confusion matrices agree
    # except for the two rows the benchmark leaves out.
    left_out = np.asarray(metrics["confusion_matrix"]) - np.asarray(plus["confusion_matrix"])
    assert left_out.sum() == 2 and (left_out >= 0).all()
    assert "FER+" in evaluated.stdout and (tmp_path / "eval" / "confusion_PublicTest_ferplus.png").is_file()
    card = json.loads((out / "emotion_model_int8.tflite.json").read_text())
    assert card["metrics"]["PublicTest"]["accuracy"] == pytest.approx(metrics["accuracy"])
    assert set(card["metrics"]["PublicTest"]["recall"]) == set(EMOTION_LABELS)
    assert card["metrics"]["PublicTest"]["ferplus_majority"]["accuracy"] == pytest.approx(plus["accuracy"])
    assert card["training_config"]["architecture"] == "compact_fer" and card["training_run"]["epochs"] == 2
    for png in ("confusion_PublicTest.png", "reliability_PublicTest.png"):
        assert (tmp_path / "eval" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_export_fails_loudly_when_int8_loses_too_much(tiny_data: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    trained = run_cli(
        "train",
        "--data",
        tiny_data,
        "--run-dir",
        run_dir,
        "--architecture",
        "compact_fer",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--warmup-epochs",
        "0",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    # An allowance of -100 points can never be met (accuracy cannot rise by 100 points): the export
    # must stop and leave no int8 model behind.
    failed = run_cli(
        "export",
        "--model",
        run_dir / "best.keras",
        "--data",
        tiny_data,
        "--out",
        tmp_path / "out",
        "--calibration-images",
        "20",
        "--max-int8-drop",
        "-100",
    )
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "int8 model loses" in failed.stderr
    assert not (tmp_path / "out" / "emotion_model_int8.tflite").exists()


@pytest.mark.slow
def test_a_run_of_the_previous_training_code_resumes(tiny_data: Path, tmp_path: Path) -> None:
    """A run directory written before Keras' BackupAndRestore (no backup/; history.csv numbered from 1 in
    the old column order) continues from last.keras, and its history is kept in the new columns."""
    run_dir = tmp_path / "run"
    common = [
        "--data",
        tiny_data,
        "--run-dir",
        run_dir,
        "--architecture",
        "compact_fer",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--warmup-epochs",
        "1",
    ]
    first = run_cli("train", *common, "--max-minutes", "0")
    assert first.returncode == 0, first.stderr[-3000:]
    shutil.rmtree(run_dir / "backup")
    config = json.loads((run_dir / "config.json").read_text())
    del config["ema_momentum"]  # a field the old code did not have
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "history.csv").write_text(
        "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n1,1.93,0.2,1.81,0.25,0.0002,3.1\n"
    )
    resumed = run_cli("train", *common, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epoch"] == 2 and state["finished"] and len(state["epoch_seconds"]) == 2
    with (run_dir / "history.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert (rows[0]["val_accuracy"], rows[0]["seconds"], rows[0]["loss"]) == ("0.25", "3.1", "1.93")
    assert float(rows[1]["seconds"]) > 0 and 0.0 <= float(rows[1]["val_accuracy"]) <= 1.0
    assert (run_dir / "backup").is_dir()  # from now on resumed by Keras


def test_metrics_on_a_hand_made_example() -> None:
    labels = np.array([3, 3, 3, 6, 6, 0])
    probabilities = np.zeros((6, 7), np.float32)
    probabilities[[0, 1, 3, 4], [3, 3, 6, 6]] = 0.9  # four confident, correct answers
    probabilities[2, 6] = 0.6  # a happy face called neutral
    probabilities[5, 3] = 0.6  # an angry face called happy
    probabilities += (1 - probabilities.sum(1, keepdims=True)) / 7

    metrics = compute_metrics(labels, probabilities)

    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["confusion_matrix"][3][3] == 2 and metrics["confusion_matrix"][3][6] == 1
    assert metrics["per_class"]["happy"]["precision"] == pytest.approx(2 / 3)
    assert metrics["per_class"]["happy"]["recall"] == pytest.approx(2 / 3)
    assert metrics["per_class"]["angry"]["recall"] == 0.0
    confidence = probabilities.max(1)
    expected_ece = (
        abs(1.0 - confidence[[0, 1, 3, 4]].mean()) * 4 / 6 + abs(0.0 - confidence[[2, 5]].mean()) * 2 / 6
    )
    assert metrics["expected_calibration_error"] == pytest.approx(expected_ece, abs=1e-6)


def test_paired_comparison_is_mcnemars_exact_test_on_the_discordant_images() -> None:
    # 20 images: both right on 5, both wrong on 3, only the model right on 10, only the baseline on 2.
    labels = np.zeros(20, np.int64)
    model_right = np.array([1] * 5 + [0] * 3 + [1] * 10 + [0] * 2, bool)
    baseline_right = np.array([1] * 5 + [0] * 3 + [0] * 10 + [1] * 2, bool)

    def one_hot(right: np.ndarray, wrong_class: int) -> np.ndarray:
        return np.eye(7)[np.where(right, 0, wrong_class)]

    comparison = paired_comparison(labels, one_hot(model_right, 3), one_hot(baseline_right, 6))

    assert comparison["accuracy"] == pytest.approx(15 / 20)
    assert comparison["baseline_accuracy"] == pytest.approx(7 / 20)
    assert (comparison["only_model_correct"], comparison["only_baseline_correct"]) == (10, 2)
    # Two-sided exact binomial test of 2 of 12 at p = 1/2: 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12.
    assert comparison["mcnemar_exact_p"] == pytest.approx(2 * (1 + 12 + 66) / 4096)
    # Identical predictions: nothing discordant, no evidence either way.
    same = paired_comparison(labels, one_hot(model_right, 3), one_hot(model_right, 3))
    assert same["mcnemar_exact_p"] == 1.0 and same["only_model_correct"] == same["only_baseline_correct"] == 0
    with pytest.raises(ValueError, match="equal, non-zero"):
        paired_comparison(labels, one_hot(model_right, 3), one_hot(baseline_right[:5], 6))


def test_mirror_averaging_averages_a_face_and_its_mirror() -> None:
    import keras

    from training.export import with_mirror_averaging
    from training.models import build_model

    keras.utils.set_random_seed(3)
    network = build_model("compact_fer")
    wrapped = with_mirror_averaging(network)
    faces = np.random.default_rng(3).integers(0, 256, size=(4, *INPUT_SHAPE)).astype(np.float32)
    mirrored = faces[:, :, ::-1].copy()

    expected = (np.asarray(network(faces)) + np.asarray(network(mirrored))) / 2
    np.testing.assert_allclose(np.asarray(wrapped(faces)), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(wrapped(mirrored)), expected, atol=1e-6)


def test_an_ensemble_averages_its_members_on_each_face_and_its_mirror(tmp_path: Path) -> None:
    import keras

    from training.export import averaged_network, load_members
    from training.models import build_compact_fer

    faces = np.random.default_rng(4).uniform(0, 255, size=(3, *INPUT_SHAPE)).astype(np.float32)
    mirrored = faces[:, :, ::-1].copy()
    paths = [tmp_path / "first.keras", tmp_path / "second.keras"]
    for seed, path in enumerate(paths):
        keras.utils.set_random_seed(seed)
        build_compact_fer().save(path)

    members = load_members(paths)
    outputs = [np.asarray(m(view)) for m in members for view in (faces, mirrored)]
    ensemble = averaged_network(members, mirror_average=True)

    np.testing.assert_allclose(np.asarray(ensemble(faces)), np.mean(outputs, axis=0), atol=1e-6)
    assert not np.allclose(outputs[0], outputs[2])  # two different networks
    assert [m.name for m in members] == ["member_1", "member_2"]
    assert averaged_network(members[:1], mirror_average=False) is members[0]


@pytest.mark.slow
def test_warm_restart_needs_the_same_architecture(tiny_data: Path, tmp_path: Path) -> None:
    """--init-from takes a run's checkpoint or an exported (mirror-averaged) model of the same
    architecture, and refuses another architecture or an ensemble with a clear message."""
    import keras

    from training.export import averaged_network, load_members, with_mirror_averaging
    from training.models import build_model

    source = tmp_path / "seed.keras"
    build_model("seed_cnn").save(source)
    keras.utils.set_random_seed(11)
    start = build_model("compact_fer")
    start_path = tmp_path / "compact.keras"
    start.save(start_path)
    exported_path = tmp_path / "exported.keras"
    with_mirror_averaging(start).save(exported_path)
    ensemble_path = tmp_path / "ensemble.keras"
    averaged_network(load_members([start_path, start_path]), mirror_average=True).save(ensemble_path)

    recipe = ["--data", tiny_data, "--architecture", "compact_fer", "--epochs", "1", "--batch-size", "16"]
    recipe += ["--warmup-epochs", "1", "--learning-rate", "0", "--weight-decay", "0"]
    for path, held in ((source, "'seed_cnn'"), (ensemble_path, "'member_1', 'member_2'")):
        refused = run_cli("train", *recipe, "--run-dir", tmp_path / path.stem, "--init-from", path)
        assert refused.returncode == 2
        assert f"holds {held}, not one 'compact_fer' network" in refused.stderr

    # From a network of the right architecture, bare or exported, training starts from its weights.
    for name, path in (("warm", start_path), ("from_export", exported_path)):
        warm = run_cli("train", *recipe, "--run-dir", tmp_path / name, "--init-from", path)
        assert warm.returncode == 0, warm.stderr[-3000:]
        trained = keras.models.load_model(tmp_path / name / "best.keras", compile=False)
        # With a zero learning rate only the batch-norm statistics move: every kernel is the source's.
        for before, after in zip(start.get_weights(), trained.get_weights()):
            if before.ndim == 4:
                np.testing.assert_allclose(np.asarray(after, np.float32), before, rtol=1e-2, atol=1e-3)


@pytest.mark.slow
def test_weight_averaging_checkpoints_the_average_that_was_validated(tiny_data: Path, tmp_path: Path) -> None:
    """With --ema-momentum the checkpoints hold the moving average of the weights, and the PublicTest
    loss in the history is that average's loss. A momentum near 1 keeps the average next to the first
    steps' weights, so it stays much closer to the start than the weights the same run trains."""
    import keras

    from training.models import build_model

    keras.utils.set_random_seed(5)
    start_path = tmp_path / "start.keras"
    build_model("compact_fer").save(start_path)
    recipe = ["--data", tiny_data, "--architecture", "compact_fer", "--epochs", "1", "--batch-size", "16"]
    recipe += ["--warmup-epochs", "0", "--learning-rate", "0.05", "--mixed-precision", "off"]
    recipe += ["--init-from", start_path]
    for name, extra in (("plain", []), ("averaged", ["--ema-momentum", "0.999"])):
        done = run_cli("train", *recipe, "--run-dir", tmp_path / name, *extra)
        assert done.returncode == 0, done.stderr[-3000:]

    def kernels(path: Path) -> list[np.ndarray]:
        model = keras.models.load_model(path, compile=False)
        return [np.asarray(w, np.float64) for w in model.get_weights() if w.ndim == 4]

    def distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
        return float(sum(np.sum((x - y) ** 2) for x, y in zip(a, b)) ** 0.5)

    start = kernels(start_path)
    trained = distance(kernels(tmp_path / "plain" / "last.keras"), start)
    averaged = distance(kernels(tmp_path / "averaged" / "last.keras"), start)
    assert 0 < averaged < 0.5 * trained

    with (tmp_path / "averaged" / "history.csv").open(newline="") as handle:
        logged = float(next(csv.DictReader(handle))["val_loss"])
    data = np.load(tiny_data)
    public = data["usage"] == 1
    images = data["images"][public].astype(np.float32).reshape((-1, *INPUT_SHAPE))
    model = keras.models.load_model(tmp_path / "averaged" / "best.keras", compile=False)
    probabilities = np.asarray(model.predict(images, verbose=0), np.float64)
    targets = np.eye(7)[data["labels"][public]] * 0.9 + 0.1 / 7  # the recipe's label smoothing
    loss = float(np.mean(-np.sum(targets * np.log(np.clip(probabilities, 1e-7, 1.0)), axis=1)))
    assert loss == pytest.approx(logged, rel=1e-3)


@pytest.mark.slow
def test_cli_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    """A malformed dataset row and a model without a card end the command with a message, not a traceback."""
    bad_csv = tmp_path / "fer2013.csv"
    pixels = " ".join(["0"] * 2304)
    bad_csv.write_text(f"emotion,pixels,Usage\n3,{pixels},Training\n9,{pixels},PublicTest\n")
    bad = run_cli(
        "evaluate",
        "--model",
        REPO_ROOT / "models" / "emotion_model_int8.tflite",
        "--data",
        bad_csv,
        "--split",
        "PublicTest",
        "--out",
        tmp_path / "eval",
    )
    assert bad.returncode == 2, bad.stderr[-3000:]
    assert (
        f"python -m training evaluate: error: {bad_csv}:3" in bad.stderr and "unknown label 9" in bad.stderr
    )
    assert "Traceback" not in bad.stderr

    bare = tmp_path / "bare.tflite"
    bare.write_bytes((REPO_ROOT / "models" / "emotion_model_int8.tflite").read_bytes())
    no_card = run_cli(
        "evaluate",
        "--model",
        bare,
        "--data",
        bad_csv,
        "--split",
        "PublicTest",
        "--out",
        tmp_path / "eval",
        "--update-card",
    )
    assert no_card.returncode == 2 and f"{bare}.json: no model card to update" in no_card.stderr
    assert not (tmp_path / "eval").exists()  # refused before evaluating anything


@pytest.mark.slow
def test_distillation_blends_the_teachers_probabilities_into_the_targets(
    tiny_data: Path, tmp_path: Path
) -> None:
    """--teacher: every training target is W x the teachers' mean probability (over the members and each
    image's mirror) + (1 - W) x the label; the run records its teachers and refuses to resume with a
    changed one; bad teacher options end in one line."""
    from training.train import TrainConfig, _datasets

    teachers = [
        REPO_ROOT / "models" / "emotion_model_int8.tflite",
        REPO_ROOT / "models" / "emotion_model.keras",
    ]
    copies = []
    for teacher in teachers:
        copies.append(tmp_path / teacher.name)
        shutil.copy(teacher, copies[-1])
    data = np.load(tiny_data)
    train_rows = data["usage"] == 0
    images, labels = data["images"][train_rows], data["labels"][train_rows]
    views = [images, images[:, :, ::-1]]
    expected = np.mean(
        [
            EmotionClassifier.load(path).predict(view.astype(np.float32).reshape((-1, *INPUT_SHAPE)))
            for path in copies
            for view in views
        ],
        axis=0,
    )
    expected = 0.7 * expected / expected.sum(axis=1, keepdims=True) + 0.3 * np.eye(7)[labels]

    config = TrainConfig(data=str(tiny_data), run_dir=str(tmp_path / "unused"), batch_size=16)
    config.teacher, config.teacher_weight, config.class_weight_power = [str(p) for p in copies], 0.7, 0.0
    batches, _ = _datasets(config, 0)
    _, targets = batches[0]
    np.testing.assert_allclose(targets, expected[batches.order[:16]], atol=1e-4)
    assert not np.allclose(targets, np.eye(7)[labels[batches.order[:16]]], atol=0.05)  # the teachers count

    base = ["--data", tiny_data, "--epochs", "1", "--batch-size", "16", "--warmup-epochs", "0"]
    recipe = [*base, "--run-dir", tmp_path / "run", "--teacher", *copies, "--teacher-weight", "0.7"]
    first = run_cli("train", *recipe, "--max-minutes", "0")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "agree with" in first.stdout
    recorded = json.loads((tmp_path / "run" / "teacher.json").read_text())
    assert sorted(recorded) == sorted(str(p) for p in copies) and all(len(d) == 64 for d in recorded.values())

    copies[1].write_bytes(copies[1].read_bytes()[:-1])  # the teacher changes under the run
    changed = run_cli("train", *recipe, "--resume")
    assert changed.returncode == 2 and "changed since the run started" in changed.stderr
    assert "Traceback" not in changed.stderr

    no_teacher = run_cli("train", *base, "--run-dir", tmp_path / "other", "--teacher-weight", "0.3")
    assert no_teacher.returncode == 2 and "--teacher-weight needs --teacher" in no_teacher.stderr
    (tmp_path / "junk.tflite").write_bytes(b"not a model")
    junk = run_cli("train", *base, "--run-dir", tmp_path / "junk", "--teacher", tmp_path / "junk.tflite")
    assert junk.returncode == 2 and "Traceback" not in junk.stderr and "junk.tflite" in junk.stderr
    mended = run_cli("train", *base, "--run-dir", tmp_path / "junk", "--teacher", copies[0])
    assert mended.returncode == 0, mended.stderr[-3000:]  # the failed start's teacher is forgotten
    assert list(json.loads((tmp_path / "junk" / "teacher.json").read_text())) == [str(copies[0])]
    weight = run_cli("train", *recipe, "--teacher-weight", "1.5")
    assert weight.returncode == 2 and "--teacher-weight must be <= 1.0" in weight.stderr
