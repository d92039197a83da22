"""Emotion models for tests: the shipped, trained ones when ``models/`` has them, otherwise an
UNTRAINED stand-in of the same architecture written by a session fixture.

Use the ``emotion_models`` fixture (register it in a conftest with
``from test.support.models import emotion_models  # noqa: F401``). Tests that assert what a face
feels (the astronaut smiles: "happy") need the trained model: check ``emotion_models.trained``.

Building the stand-in imports TensorFlow into the test process (a few seconds, once per session).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
SHIPPED_INT8_TFLITE = MODELS_DIR / "emotion_model_int8.tflite"
SHIPPED_FLOAT_TFLITE = MODELS_DIR / "emotion_model.tflite"
SHIPPED_KERAS = MODELS_DIR / "emotion_model.keras"

STANDIN_ARCHITECTURE = "vgg_fer"
STANDIN_SEED = 1234


@dataclass(frozen=True)
class ModelFiles:
    """Paths of one model in its formats.

    Attributes:
        tflite: the model the node runs (the int8 one when shipped, else float32).
        keras: the Keras source of the same weights.
        float_tflite: a float32 .tflite of the same weights, when there is one.
        trained: True for the shipped model, False for the untrained stand-in.
        description: what this is, for messages and benchmark headers.
    """

    tflite: Path
    keras: Path
    float_tflite: Path | None
    trained: bool
    description: str


def shipped_models() -> ModelFiles | None:
    """The trained models in ``models/``, or None while they are not there yet."""
    tflite = SHIPPED_INT8_TFLITE if SHIPPED_INT8_TFLITE.is_file() else SHIPPED_FLOAT_TFLITE
    if not (tflite.is_file() and SHIPPED_KERAS.is_file()):
        return None
    float_tflite = SHIPPED_FLOAT_TFLITE if SHIPPED_FLOAT_TFLITE.is_file() else None
    return ModelFiles(tflite, SHIPPED_KERAS, float_tflite, True, f"trained model {tflite.name} (models/)")


def calibration_faces(count: int = 64) -> np.ndarray:
    """Real 48x48 face crops (astronaut and Grace Hopper, mirrored, shifted, brightness-varied) in
    model input layout, for int8 calibration."""
    import cv2

    from emotion_recognition.core.preprocessing import crop_faces
    from emotion_recognition.core.types import Box
    from test.support.images import FACE_NAMES, face_box, photo_gray

    rng = np.random.default_rng(STANDIN_SEED)
    faces = []
    for i in range(count):
        name = FACE_NAMES[i % len(FACE_NAMES)]
        gray = photo_gray(name)
        if i % 4 >= 2:
            gray = np.ascontiguousarray(gray[:, ::-1])
        box = face_box(name)
        if i % 4 >= 2:
            box = Box(gray.shape[1] - box.x - box.width, box.y, box.width, box.height)
        jitter = rng.integers(-box.width // 8, box.width // 8 + 1, size=2)
        box = Box(box.x + int(jitter[0]), box.y + int(jitter[1]), box.width, box.height)
        gain = rng.uniform(0.6, 1.3)
        gray = cv2.convertScaleAbs(gray, alpha=gain)
        faces.append(crop_faces(gray, [box])[0])
    return np.stack(faces)


def export_tflite(model: object, path: Path, int8: bool = False, int8_io: bool = False) -> Path:
    """Convert a Keras model to .tflite: float32, or int8 weights/activations calibrated on real face
    crops (``int8_io`` also makes the input and output tensors int8).

    Float and int8 go through the project's exporter (``training.export.convert_to_tflite``, what
    ships); int8 input/output tensors, which it does not make, through the TFLite converter here.
    """
    if not int8_io:
        try:
            from training.export import convert_to_tflite
        except ImportError:
            convert_to_tflite = None
        if convert_to_tflite is not None:
            calibration = calibration_faces()[..., 0].astype(np.uint8) if int8 else None
            path.write_bytes(convert_to_tflite(model, calibration))
            return path

    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8 or int8_io:
        samples = calibration_faces()

        def representative() -> Iterator[list[np.ndarray]]:
            for face in samples:
                yield [face[np.newaxis]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def build_standin_models(directory: Path) -> ModelFiles:
    """Write an untrained (seeded) ``vgg_fer`` as .keras and float32 .tflite into ``directory``."""
    import keras

    from training.models import build_model

    keras.utils.set_random_seed(STANDIN_SEED)
    model = build_model(STANDIN_ARCHITECTURE)
    keras_path = directory / "untrained_vgg_fer.keras"
    model.save(keras_path)
    tflite_path = export_tflite(model, directory / "untrained_vgg_fer.tflite")
    return ModelFiles(
        tflite_path,
        keras_path,
        tflite_path,
        False,
        f"UNTRAINED stand-in ({STANDIN_ARCHITECTURE}, random weights, seed {STANDIN_SEED}); "
        "the trained model is not in models/ yet",
    )


def write_wrong_shape_models(directory: Path) -> dict[str, Path]:
    """Small models that break the spec, as .keras and .tflite: ``input_32`` takes 32x32 faces,
    ``output_5`` returns 5 classes, ``rgb_input`` takes 48x48x3."""
    import keras
    from keras import layers

    specs = {
        "input_32": ((32, 32, 1), 7),
        "output_5": ((48, 48, 1), 5),
        "rgb_input": ((48, 48, 3), 7),
    }
    paths: dict[str, Path] = {}
    for name, (shape, classes) in specs.items():
        inputs = keras.Input(shape=shape)
        x = layers.GlobalAveragePooling2D()(inputs)
        outputs = layers.Dense(classes, activation="softmax")(x)
        model = keras.Model(inputs, outputs)
        paths[f"{name}.keras"] = directory / f"{name}.keras"
        model.save(paths[f"{name}.keras"])
        paths[f"{name}.tflite"] = export_tflite(model, directory / f"{name}.tflite")
    return paths


@pytest.fixture(scope="session")
def emotion_models(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    """The shipped trained models if present, else an untrained stand-in (see :class:`ModelFiles`)."""
    shipped = shipped_models()
    if shipped is not None:
        return shipped
    return build_standin_models(tmp_path_factory.mktemp("untrained_models"))
