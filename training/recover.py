"""Rebuild a trainable float32 Keras network from a ``.tflite`` file that ``training export`` wrote.

An export keeps the trained ``.keras`` network only where the model card says so; a shipped int8 file
still holds every weight. TFLite folds each batch normalisation into the convolution or dense layer
before it, and the input scaling into the first convolution, so the rebuilt network carries the folded
weights and identity batch normalisations: at inference it computes what the file computes, without
the int8 rounding of activations. It is meant as a member of an ensemble export (``export --model``)
or as a starting point for evaluation; the int8 file's mirror averaging, temperature and class offsets
are in it as they were exported (the last layer holds the temperature and offsets).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from training.export import ExportError


def _dequantized(interpreter, details: dict, index: int) -> np.ndarray:
    """A constant tensor of the file as float64: int8 or int32 values times their (per-channel) scales."""
    quantization = details[index]["quantization_parameters"]
    values = interpreter.get_tensor(index).astype(np.float64)
    scales = quantization["scales"]
    if len(scales) == 0:
        return values
    zero_points = quantization["zero_points"]
    if len(scales) == 1:
        return (values - zero_points[0]) * scales[0]
    shape = [1] * values.ndim
    shape[quantization["quantized_dimension"]] = -1
    return (values - zero_points.reshape(shape)) * scales.reshape(shape)


def _branches(operations: list[dict]) -> list[list[tuple[int, int]]]:
    """The weighted layers of each softmax branch, in order: (weight tensor, bias tensor or -1 for none,
    which the converter writes for an all-zero bias). A branch ends at a SOFTMAX."""
    branches, current = [], []
    for op in operations:
        name = op["op_name"]
        if name == "SOFTMAX":
            branches.append(current)
            current = []
        elif name in ("CONV_2D", "FULLY_CONNECTED"):
            inputs = [int(i) for i in op["inputs"]]
            current.append((inputs[1], inputs[2] if len(inputs) > 2 else -1))
    return branches


def _is_mirror(kernel: np.ndarray, bias_index: int) -> bool:
    """Whether a layer is the mirror of a mirror-averaged export: a dense layer without bias whose
    kernel swaps columns end for end (a scaled exchange matrix), not part of any network."""
    if bias_index >= 0 or kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
        return False
    return bool(np.allclose(kernel, kernel.max() * np.eye(len(kernel))[::-1], atol=1e-6))


def read_folded_layers(tflite_path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (kernel, bias) pairs of the one network in an exported ``.tflite``, dequantised, in TFLite's
    layout: convolution kernels (out, height, width, in), dense kernels (out, in).

    Raises:
        ExportError: the file cannot be read, holds no network, or holds an ensemble of networks.
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(tflite_path))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ExportError(f"{tflite_path}: not a readable TFLite model ({exc})") from exc
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    # The interpreter's only listing of the graph's operators (stable across TF and LiteRT releases).
    branches = _branches(interpreter._get_ops_details())
    branches = [
        [(w, b) for w, b in branch if not _is_mirror(_dequantized(interpreter, details, w), b)]
        for branch in branches
    ]
    branches = [branch for branch in branches if branch]
    if not branches:
        raise ExportError(f"{tflite_path}: no convolution or dense layer ending in a softmax")
    # The views of a mirror-averaged network share its kernels (each has its own requantised biases);
    # an ensemble's members do not.
    networks = {tuple(w for w, _ in branch) for branch in branches}
    if len(networks) > 1:
        raise ExportError(
            f"{tflite_path}: an ensemble of {len(networks)} networks; recover rebuilds one network"
        )
    layers = []
    for weight, bias in branches[0]:
        kernel = _dequantized(interpreter, details, weight)
        zeros = np.zeros(kernel.shape[0])
        layers.append((kernel, _dequantized(interpreter, details, bias) if bias >= 0 else zeros))
    return layers


def _weighted_layers(network) -> list[tuple[object, object | None]]:
    """(Conv2D or Dense layer, the BatchNormalization right after it or None), in graph order."""
    import keras

    layers = network.layers
    pairs = []
    for position, layer in enumerate(layers):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            following = layers[position + 1] if position + 1 < len(layers) else None
            is_norm = isinstance(following, keras.layers.BatchNormalization)
            pairs.append((layer, following if is_norm else None))
    return pairs


def _keras_kernel(layer, kernel: np.ndarray) -> np.ndarray:
    import keras

    if isinstance(layer, keras.layers.Conv2D):
        return np.transpose(kernel, (1, 2, 3, 0))  # (out, h, w, in) -> (h, w, in, out)
    return kernel.T


def _input_scale(network) -> float:
    """The factor that the network's Rescaling layer applies to raw pixels (1 without one)."""
    import keras

    for layer in network.layers:
        if isinstance(layer, keras.layers.Rescaling):
            if np.any(np.asarray(layer.offset) != 0):
                raise ExportError(f"{network.name}: a Rescaling offset is not supported")
            return float(np.asarray(layer.scale))
    return 1.0


def _matches(network, folded: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    pairs = _weighted_layers(network)
    return len(pairs) == len(folded) and all(
        tuple(layer.kernel.shape) == _keras_kernel(layer, kernel).shape
        for (layer, _), (kernel, _) in zip(pairs, folded, strict=True)
    )


def _load_folded(network, folded: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Give ``network`` the folded weights: each kernel as it is (the first divided by the input scale,
    which TFLite folded into it), each bias in the layer or in its batch normalisation's offset, and
    batch normalisations that pass their input through unchanged."""
    pairs = zip(_weighted_layers(network), folded, strict=True)
    for index, ((layer, norm), (kernel, bias)) in enumerate(pairs):
        kernel = _keras_kernel(layer, kernel)
        if index == 0:
            kernel = kernel / _input_scale(network)
        bias = bias.astype(np.float32)
        layer_bias = bias if layer.use_bias else None
        layer.set_weights([kernel.astype(np.float32)] + ([layer_bias] if layer.use_bias else []))
        if norm is not None:
            beta = np.zeros_like(bias) if layer.use_bias else bias
            ones = np.ones_like(bias)
            norm.set_weights([ones, beta, np.zeros_like(bias), ones - norm.epsilon])


def recover_network(tflite_path: str | os.PathLike):
    """The float32 Keras network inside an exported ``.tflite`` (see the module's description).

    Raises:
        ExportError: the file is unreadable, an ensemble, or no known architecture matches its layers.
    """
    import keras

    from training.models import MODEL_BUILDERS

    folded = read_folded_layers(tflite_path)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        for builder in MODEL_BUILDERS.values():
            network = builder()
            if _matches(network, folded):
                _load_folded(network, folded)
                return network
    finally:
        keras.mixed_precision.set_global_policy(previous)
    raise ExportError(
        f"{tflite_path}: its {len(folded)} layers match no known architecture ({', '.join(MODEL_BUILDERS)})"
    )


def recover_to_file(tflite_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write the recovered network to ``out_path`` (``.keras``); an existing file is never replaced.

    Raises:
        ExportError: as :func:`recover_network`, or when ``out_path`` exists or is not ``.keras``.
    """
    out = Path(out_path)
    if out.suffix != ".keras":
        raise ExportError(f"{out}: the recovered network is written as a .keras file")
    if out.exists():
        raise ExportError(f"{out}: exists; choose a new path (recover never overwrites)")
    network = recover_network(tflite_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    network.save(out)
    return out
