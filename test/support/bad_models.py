"""Small .tflite models with the right shapes but outputs that are not probabilities, built in the test
with Keras and converted by the project's exporter (``test.support.models.export_tflite``):

* ``nan_output``: every output is NaN (a dense layer with NaN weights);
* ``no_softmax``: raw scores in the hundreds (a linear dense layer, no softmax);
* ``nan_on_texture``: proper softmax probabilities for flat or smooth input (the load-time probe's
  black, gray, white and gradient faces pass), NaN for a real, textured face: a model that breaks
  only at run time.

Building them imports TensorFlow into the test process (a few seconds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotion_recognition.spec import INPUT_SHAPE, NUM_EMOTIONS
from test.support.models import export_tflite

# Mean absolute difference between horizontal neighbours above which nan_on_texture returns NaN: the
# probe's gradient has 2.7, real 48x48 face crops have well above 5.
TEXTURE_THRESHOLD = 4.0


def _softmax_head(keras, inputs):
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.layers.Dense(NUM_EMOTIONS, activation="softmax")(x)


def write_bad_models(directory: Path) -> dict[str, Path]:
    """Write the three models into ``directory``; returns their paths by name."""
    import keras
    from keras import ops

    keras.mixed_precision.set_global_policy("float32")  # a training test may have set mixed_bfloat16
    keras.utils.set_random_seed(5)
    paths: dict[str, Path] = {}

    inputs = keras.Input(shape=INPUT_SHAPE)
    dense = keras.layers.Dense(NUM_EMOTIONS, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    dense.set_weights([np.full((1, NUM_EMOTIONS), np.nan, np.float32), np.zeros(NUM_EMOTIONS, np.float32)])
    paths["nan_output"] = export_tflite(model, directory / "nan_output.tflite")

    inputs = keras.Input(shape=INPUT_SHAPE)
    dense = keras.layers.Dense(NUM_EMOTIONS)  # no softmax
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    dense.set_weights(
        [
            np.linspace(1.0, 3.0, NUM_EMOTIONS, dtype=np.float32)[np.newaxis],
            np.full(NUM_EMOTIONS, 50.0, np.float32),
        ]
    )
    paths["no_softmax"] = export_tflite(model, directory / "no_softmax.tflite")

    inputs = keras.Input(shape=INPUT_SHAPE)
    probabilities = _softmax_head(keras, inputs)
    texture = keras.layers.Lambda(
        lambda x: ops.mean(ops.abs(x[:, :, 1:, :] - x[:, :, :-1, :]), axis=(1, 2, 3), keepdims=False)
    )(inputs)
    # sqrt(t0 - texture) / sqrt(t0 - texture): 1 for smooth input, NaN once the texture passes t0.
    factor = keras.layers.Lambda(
        lambda t: ops.expand_dims(ops.sqrt(TEXTURE_THRESHOLD - t) / ops.sqrt(TEXTURE_THRESHOLD - t), -1)
    )(texture)
    model = keras.Model(inputs, keras.layers.Multiply()([probabilities, factor]))
    paths["nan_on_texture"] = export_tflite(model, directory / "nan_on_texture.tflite")
    return paths
