"""The classifier: both backends, one batched call per frame, and clear errors for bad model files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from emotion_recognition.core.classifier import EmotionClassifier, ModelLoadError
from emotion_recognition.core.image import to_gray
from emotion_recognition.core.preprocessing import crop_faces
from emotion_recognition.spec import EMOTION_LABELS, INPUT_SHAPE, NUM_EMOTIONS
from test.support.images import ASTRONAUT, FACE_NAMES, face_box, multi_face_frame, photo_gray
from test.support.models import (
    REPO_ROOT,
    SHIPPED_INT8_TFLITE,
    ModelFiles,
    export_tflite,
    shipped_models,
    write_wrong_shape_models,
)

# Tests that need Keras (hence TensorFlow). TensorFlow 2.21 requires numpy >= 1.26, so they cannot
# run in the distribution-like environment (Debian 12's numpy 1.24.2), which deselects them with
# `-m "not keras"`; test_a_keras_model_without_keras_is_a_clear_error covers that case there.
KERAS = pytest.mark.keras


@pytest.fixture(scope="module")
def real_faces() -> np.ndarray:
    """Six real faces: the two photographs and the four faces of a composed frame."""
    singles = [crop_faces(photo_gray(name), [face_box(name)]) for name in FACE_NAMES]
    frame, boxes = multi_face_frame(640, 480, 4)
    return np.concatenate([*singles, crop_faces(to_gray(frame), boxes)])


@pytest.fixture(scope="module")
def litert(emotion_models: ModelFiles) -> EmotionClassifier:
    return EmotionClassifier.load(emotion_models.tflite)


@pytest.fixture(scope="module")
def keras_model(emotion_models: ModelFiles) -> EmotionClassifier:
    return EmotionClassifier.load(emotion_models.keras)


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_wrong_shape_models(tmp_path_factory.mktemp("wrong_shape_models"))


@KERAS
def test_backend_follows_the_file(
    litert: EmotionClassifier, keras_model: EmotionClassifier, emotion_models: ModelFiles
) -> None:
    assert litert.backend == "litert" and litert.path == str(emotion_models.tflite)
    assert keras_model.backend == "keras" and keras_model.path == str(emotion_models.keras)


@pytest.mark.parametrize("backend", ["litert", pytest.param("keras", marks=KERAS)])
def test_output_is_one_probability_vector_per_face(
    backend: str, request: pytest.FixtureRequest, real_faces: np.ndarray
) -> None:
    classifier: EmotionClassifier = request.getfixturevalue(
        "litert" if backend == "litert" else "keras_model"
    )
    out = classifier.predict(real_faces)
    assert out.shape == (len(real_faces), NUM_EMOTIONS) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=0.02)
    assert (out >= 0).all()


@pytest.mark.parametrize("backend", ["litert", pytest.param("keras", marks=KERAS)])
def test_batched_output_equals_per_face_calls(
    backend: str, request: pytest.FixtureRequest, real_faces: np.ndarray
) -> None:
    classifier: EmotionClassifier = request.getfixturevalue(
        "litert" if backend == "litert" else "keras_model"
    )
    batched = classifier.predict(real_faces)
    single = np.concatenate([classifier.predict(real_faces[i : i + 1]) for i in range(len(real_faces))])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    # Changing batch sizes back and forth (the LiteRT input is resized) changes nothing either.
    for n in (3, 1, 6, 2):
        np.testing.assert_allclose(classifier.predict(real_faces[:n]), batched[:n], atol=1e-5)


@KERAS
def test_empty_batch_gives_empty_output(litert: EmotionClassifier, keras_model: EmotionClassifier) -> None:
    for classifier in (litert, keras_model):
        out = classifier.predict(np.zeros((0, *INPUT_SHAPE), np.float32))
        assert out.shape == (0, NUM_EMOTIONS) and out.dtype == np.float32


@KERAS
def test_tflite_and_keras_agree_on_real_faces(
    emotion_models: ModelFiles, keras_model: EmotionClassifier, real_faces: np.ndarray
) -> None:
    reference = keras_model.predict(real_faces)
    float_path = emotion_models.float_tflite
    if float_path is not None:
        lite = EmotionClassifier.load(float_path).predict(real_faces)
        np.testing.assert_allclose(lite, reference, atol=1e-3)
        np.testing.assert_array_equal(lite.argmax(axis=1), reference.argmax(axis=1))
    if emotion_models.tflite != float_path:
        # The int8 model: same label on every real face the float model is clear about (top-1 ahead of
        # top-2 by 0.1 or more); quantisation moves probabilities a little.
        quantized = EmotionClassifier.load(emotion_models.tflite).predict(real_faces)
        top2 = np.sort(reference, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] >= 0.1
        assert clear.any(), reference
        np.testing.assert_array_equal(quantized.argmax(axis=1)[clear], reference.argmax(axis=1)[clear])
        np.testing.assert_allclose(quantized, reference, atol=0.1)


@pytest.mark.slow
@KERAS
def test_int8_input_and_output_tensors_are_quantised_and_dequantised(
    emotion_models: ModelFiles, keras_model: EmotionClassifier, real_faces: np.ndarray, tmp_path: Path
) -> None:
    import keras

    model = keras.saving.load_model(emotion_models.keras, compile=False)
    path = export_tflite(model, tmp_path / "int8_io.tflite", int8_io=True)
    classifier = EmotionClassifier.load(path)
    assert classifier.quantized_io
    out = classifier.predict(real_faces)
    assert out.dtype == np.float32 and out.shape == (len(real_faces), NUM_EMOTIONS)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=0.05)
    np.testing.assert_allclose(out, keras_model.predict(real_faces), atol=0.1)
    single = np.concatenate([classifier.predict(real_faces[i : i + 1]) for i in range(len(real_faces))])
    np.testing.assert_allclose(out, single, atol=1e-6)


def test_a_tflite_model_never_imports_tensorflow(emotion_models: ModelFiles) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from emotion_recognition.core.classifier import EmotionClassifier
        from emotion_recognition.core.pipeline import EmotionPipeline
        from test.support.images import multi_face_frame
        pipeline = EmotionPipeline(EmotionClassifier.load({str(emotion_models.tflite)!r}))
        frame, _ = multi_face_frame(640, 480, 2)
        result, annotated = pipeline.process(frame, 0.0, annotate=True)
        assert len(result.faces) == 2, result
        heavy = ("tensorflow", "keras", "tf_keras", "rclpy")
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
        print("LEAKED", leaked)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "LEAKED []" in run.stdout, run.stdout


def test_a_keras_model_without_keras_is_a_clear_error(emotion_models: ModelFiles) -> None:
    """Keras and TensorFlow made impossible to import (as in a ROS install from apt)."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules.update(dict.fromkeys(("keras", "tensorflow")))
        from emotion_recognition.core.classifier import EmotionClassifier, ModelLoadError
        try:
            EmotionClassifier.load({str(emotion_models.keras)!r})
        except ModelLoadError as error:
            print("ERROR", error)
    """)
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=dict(os.environ),
    )
    assert run.returncode == 0, run.stderr
    expected = f"ERROR {emotion_models.keras}: a .keras model needs Keras and TensorFlow"
    assert expected in run.stdout, run.stdout
    assert "use the .tflite model" in run.stdout


def test_a_missing_file_is_a_model_load_error(tmp_path: Path) -> None:
    for name in ("absent.tflite", "absent.keras"):
        with pytest.raises(ModelLoadError, match="not found"):
            EmotionClassifier.load(tmp_path / name)


def test_an_unknown_file_type_is_a_model_load_error(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x01")
    with pytest.raises(ModelLoadError, match=r"\.tflite.*\.keras"):
        EmotionClassifier.load(path)


@KERAS
def test_corrupt_files_are_model_load_errors(emotion_models: ModelFiles, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"this is not a flatbuffer" * 100)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(emotion_models.tflite.read_bytes()[:5000])
    broken_keras = tmp_path / "broken.keras"
    broken_keras.write_bytes(emotion_models.keras.read_bytes()[:3000])
    text_keras = tmp_path / "text.keras"
    text_keras.write_text("hello")
    for path in (garbage, truncated, broken_keras, text_keras):
        with pytest.raises(ModelLoadError, match="not a readable") as info:
            EmotionClassifier.load(path)
        assert str(path) in str(info.value)


@pytest.mark.slow  # converts and saves a model per shape
@KERAS
@pytest.mark.parametrize("suffix", [".tflite", ".keras"])
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("input_32", r"input shape .*32, 32, 1"),
        ("rgb_input", r"input shape .*48, 48, 3"),
        ("output_5", r"output shape .*5\)"),
    ],
)
def test_wrong_shapes_are_refused_at_load(
    bad_models: dict[str, Path], name: str, suffix: str, message: str
) -> None:
    with pytest.raises(ModelLoadError, match=message):
        EmotionClassifier.load(bad_models[name + suffix])


def test_bad_arguments_are_value_errors(litert: EmotionClassifier, emotion_models: ModelFiles) -> None:
    with pytest.raises(ValueError, match="num_threads"):
        EmotionClassifier.load(emotion_models.tflite, num_threads=0)
    with pytest.raises(ValueError, match="shape"):
        litert.predict(np.zeros((2, 48, 48), np.float32))
    with pytest.raises(ValueError, match="shape"):
        litert.predict(np.zeros((1, 64, 64, 1), np.float32))


def test_thread_count_is_configurable(
    emotion_models: ModelFiles, real_faces: np.ndarray, litert: EmotionClassifier
) -> None:
    one = EmotionClassifier.load(emotion_models.tflite, num_threads=1)
    assert one.num_threads == 1
    np.testing.assert_allclose(one.predict(real_faces), litert.predict(real_faces), atol=1e-5)


@pytest.mark.parametrize("model", ["tflite", pytest.param("keras", marks=KERAS)])
def test_the_trained_model_sees_the_astronaut_smile(model: str) -> None:
    """Needs the trained model in models/ (issue 3): the astronaut smiles, so she is 'happy'."""
    shipped = shipped_models()
    assert shipped is not None, (
        "the trained model (models/emotion_model_int8.tflite + .keras) is not shipped yet"
    )
    face = crop_faces(photo_gray(ASTRONAUT), [face_box(ASTRONAUT)])
    for path in (getattr(shipped, model),):
        probabilities = EmotionClassifier.load(path).predict(face)[0]
        assert EMOTION_LABELS[int(probabilities.argmax())] == "happy", (
            path,
            dict(zip(EMOTION_LABELS, probabilities)),
        )


@KERAS
def test_a_model_exported_with_a_fixed_batch_of_one_still_takes_whole_batches(
    real_faces: np.ndarray, tmp_path: Path
) -> None:
    """A fixed batch dimension (here a Flatten hard-codes batch 1) cannot be resized; such a model
    gets its faces one chunk at a time and gives the same answers."""
    import keras
    import tensorflow as tf
    from keras import layers

    keras.utils.set_random_seed(7)
    inputs = keras.Input(shape=INPUT_SHAPE, batch_size=1)
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    x = layers.Conv2D(4, 3, strides=4)(x)
    x = layers.Flatten()(x)
    model = keras.Model(inputs, layers.Dense(NUM_EMOTIONS, activation="softmax")(x))
    path = tmp_path / "fixed_batch.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    classifier = EmotionClassifier.load(path)
    expected = np.concatenate(
        [model.predict(real_faces[i : i + 1], verbose=0) for i in range(len(real_faces))]
    )
    np.testing.assert_allclose(classifier.predict(real_faces), expected, atol=1e-5)
    np.testing.assert_allclose(classifier.predict(real_faces[:1]), expected[:1], atol=1e-5)


def test_the_ferplus_model_keeps_the_contract_and_sees_the_astronaut_smile() -> None:
    """The second shipped model (trained on FER+ votes) is a drop-in for the default one: the same labels,
    input and output in its card, probabilities that sum to one, and the astronaut is 'happy'."""
    path = Path(SHIPPED_INT8_TFLITE).with_name("emotion_model_ferplus_int8.tflite")
    card = json.loads(path.with_name(path.name + ".json").read_text())
    default = json.loads(Path(f"{SHIPPED_INT8_TFLITE}.json").read_text())
    assert card["labels"] == list(EMOTION_LABELS)
    assert card["input"] == default["input"] and card["output"] == default["output"]
    assert (
        card["training_config"]["ferplus"]
        and card["metrics"]["PrivateTest"]["ferplus_majority"]["accuracy"] > 0.8
    )
    face = crop_faces(photo_gray(ASTRONAUT), [face_box(ASTRONAUT)])
    probabilities = EmotionClassifier.load(path).predict(face)[0]
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-3)
    assert EMOTION_LABELS[int(probabilities.argmax())] == "happy", dict(zip(EMOTION_LABELS, probabilities))
