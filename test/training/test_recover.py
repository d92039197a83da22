"""``python -m training recover``: the float network rebuilt from a shipped int8 file computes what the
file computes, on real faces; ensembles, foreign files and existing outputs are refused in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from emotion_recognition.core.classifier import EmotionClassifier
from test.support.models import calibration_faces, export_tflite
from test.support.training_cli import REPO_ROOT, run_cli

SHIPPED = {
    "default": REPO_ROOT / "models" / "emotion_model_int8.tflite",
    "ferplus": REPO_ROOT / "models" / "emotion_model_ferplus_int8.tflite",
}


def assert_one_error_line(result: subprocess.CompletedProcess, message: str) -> None:
    """Exit status 2 and one ``error:`` line naming the problem (TensorFlow's own start-up log aside)."""
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "python -m training recover: error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def mirror_averaged(network, faces: np.ndarray) -> np.ndarray:
    """What an export with ``--mirror-average`` computes, from the bare network."""
    return (network.predict(faces, verbose=0) + network.predict(faces[:, :, ::-1], verbose=0)) / 2


@pytest.mark.parametrize("model", sorted(SHIPPED))
def test_the_recovered_network_computes_what_the_shipped_file_computes(model: str, tmp_path: Path) -> None:
    import keras

    out = tmp_path / "recovered.keras"
    result = run_cli("recover", "--model", SHIPPED[model], "--out", out)
    assert result.returncode == 0, result.stderr
    network = keras.models.load_model(out, compile=False)
    assert network.name == "compact_fer"

    faces = np.concatenate([calibration_faces(48), calibration_faces(48)[:, ::-1]])
    shipped = EmotionClassifier.load(SHIPPED[model], num_threads=1).predict(faces)
    recovered = mirror_averaged(network, faces)
    # The file rounds every activation to int8; the rebuilt network does not. Nothing else differs.
    assert np.abs(recovered - shipped).max() < 0.06
    assert (recovered.argmax(axis=1) == shipped.argmax(axis=1)).mean() >= 0.95
    # And it is a network that trains: its layers take gradients (the export's mirror is not in it).
    assert all(layer.trainable for layer in network.layers)


def test_the_default_network_is_recovered_close_to_its_float_source(tmp_path: Path) -> None:
    """The default model's float source ships beside it: the network recovered from the int8 file
    agrees with it as closely as the int8 file itself does."""
    import keras

    out = tmp_path / "recovered.keras"
    assert run_cli("recover", "--model", SHIPPED["default"], "--out", out).returncode == 0
    faces = calibration_faces(64)
    source = keras.models.load_model(REPO_ROOT / "models" / "emotion_model.keras", compile=False)
    expected = source.predict(faces, verbose=0)
    recovered = mirror_averaged(keras.models.load_model(out, compile=False), faces)
    shipped = EmotionClassifier.load(SHIPPED["default"], num_threads=1).predict(faces)
    assert np.abs(recovered - expected).max() <= np.abs(shipped - expected).max() + 0.02


def test_a_float_file_of_another_architecture_is_recovered(tmp_path: Path) -> None:
    import keras

    from training.models import build_model

    keras.utils.set_random_seed(5)
    network = build_model("seed_cnn")  # convolutions with their own bias, and two hidden dense layers
    rng = np.random.default_rng(5)
    for layer in network.layers:  # batch normalisations that do something, for the converter to fold
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            shape = gamma.shape
            layer.set_weights(
                [rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.2, shape), rng.normal(0, 0.2, shape), variance]
            )
    path = export_tflite(network, tmp_path / "seed.tflite")
    out = tmp_path / "seed.keras"
    assert run_cli("recover", "--model", path, "--out", out).returncode == 0
    recovered = keras.models.load_model(out, compile=False)
    assert recovered.name == "seed_cnn"
    faces = calibration_faces(16)
    expected = network.predict(faces, verbose=0)
    np.testing.assert_allclose(recovered.predict(faces, verbose=0), expected, atol=1e-4)


def test_an_ensemble_is_refused(tmp_path: Path) -> None:
    import keras

    from training.export import averaged_network
    from training.models import build_model

    keras.utils.set_random_seed(6)
    members = [build_model("compact_fer"), build_model("compact_fer")]
    for index, member in enumerate(members, start=1):
        member.name = f"member_{index}"
    path = export_tflite(averaged_network(members, mirror_average=False), tmp_path / "ensemble.tflite")
    result = run_cli("recover", "--model", path, "--out", tmp_path / "out.keras")
    assert result.returncode == 2
    assert_one_error_line(result, "an ensemble of 2 networks")
    assert not (tmp_path / "out.keras").exists()


def test_bad_input_and_an_existing_output_are_refused_in_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"TFL3" + bytes(range(256)) * 4)
    existing = tmp_path / "mine.keras"
    existing.write_bytes(b"the user's own file")
    cases = [
        (["--model", junk, "--out", tmp_path / "a.keras"], "not a readable TFLite model"),
        (["--model", tmp_path / "missing.tflite", "--out", tmp_path / "b.keras"], "missing.tflite"),
        (["--model", SHIPPED["default"], "--out", existing], "never overwrites"),
        (["--model", SHIPPED["default"], "--out", tmp_path / "c.h5"], "written as a .keras file"),
    ]
    for args, message in cases:
        assert_one_error_line(run_cli("recover", *args), message)
    assert existing.read_bytes() == b"the user's own file"
