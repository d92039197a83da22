"""Loading the emotion model and running all faces of a frame through it in one call.

The backend follows the file: ``.tflite`` runs on LiteRT (``ai_edge_litert``, XNNPACK on the CPU),
which is what the node uses; ``.keras`` runs on Keras (and so imports TensorFlow) and is kept for
checking an exported model against its source. With a ``.tflite`` model neither TensorFlow nor Keras
is imported.

Both backends take :mod:`emotion_recognition.spec`'s input (N, 48, 48, 1) raw 0-255 float32 and
return (N, 7) probabilities in ``EMOTION_LABELS`` order. A model whose input or output does not fit
that is refused at load time with :class:`ModelLoadError`, and so is one whose output, on a few probe
inputs, is not probabilities (non-finite values, values outside 0-1 or rows that do not sum to about
1: a model without its softmax). At run time a non-finite output raises :class:`ModelOutputError` (the
frame is skipped), and every output row is normalised to sum to exactly 1 (quantisation leaves the
shipped int8 model's rows at about 1.008).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from emotion_recognition.spec import EMOTION_LABELS, INPUT_SHAPE, NUM_EMOTIONS

LITERT = "litert"
KERAS = "keras"
_BACKEND_BY_SUFFIX = {".tflite": LITERT, ".keras": KERAS}


# Load-time probe: how far a model's rows may stray from being probabilities (int8 quantisation moves
# them by about 0.01), and the inputs it is run on (black, mid-gray, white and a diagonal gradient).
PROBE_TOLERANCE = 0.05
_PROBE_VALUES = (0.0, 128.0, 255.0)


class ModelLoadError(RuntimeError):
    """The model file is missing, unreadable, or does not match the model spec (message says why)."""


class ModelOutputError(ValueError):
    """The model returned non-finite values for a batch (the caller skips that frame)."""


def _probe_faces() -> np.ndarray:
    """The probe inputs of :func:`_check_probabilities_at_load`, in model input layout."""
    flat = [np.full(INPUT_SHAPE, value, np.float32) for value in _PROBE_VALUES]
    rows, cols = np.indices(INPUT_SHAPE[:2])
    gradient = ((rows + cols) * (255.0 / (sum(INPUT_SHAPE[:2]) - 2))).astype(np.float32)[..., np.newaxis]
    return np.stack([*flat, gradient])


def _check_probabilities_at_load(output: np.ndarray, path: str) -> None:
    """Refuse a model whose output on the probe inputs is not a probability vector per row."""
    if not np.all(np.isfinite(output)):
        raise ModelLoadError(f"{path}: model returns non-finite values (NaN or infinity) on probe inputs")
    low, high = float(output.min()), float(output.max())
    sums = output.sum(axis=1)
    if low < -PROBE_TOLERANCE or high > 1.0 + PROBE_TOLERANCE:
        raise ModelLoadError(
            f"{path}: model output is not probabilities: values from {low:.4g} to {high:.4g} on probe "
            "inputs, expected 0-1 (does the model end in a softmax?)"
        )
    if np.any(np.abs(sums - 1.0) > PROBE_TOLERANCE):
        raise ModelLoadError(
            f"{path}: model output is not probabilities: rows sum to {float(sums.min()):.4g}-"
            f"{float(sums.max()):.4g} on probe inputs, expected 1 (does the model end in a softmax?)"
        )


def as_probabilities(output: np.ndarray) -> np.ndarray:
    """Each row of a model's output as probabilities: clipped at 0 and scaled to sum to 1.

    Raises:
        ModelOutputError: the output holds NaN or infinity, or a row is all zero.
    """
    output = np.asarray(output, dtype=np.float32)
    if not np.all(np.isfinite(output)):
        bad = int(np.count_nonzero(~np.isfinite(output)))
        raise ModelOutputError(f"the model returned {bad} non-finite value(s) (NaN or infinity)")
    output = np.clip(output, 0.0, None)
    sums = output.sum(axis=1, keepdims=True)
    if np.any(sums <= 0.0):
        raise ModelOutputError("the model returned an all-zero row")
    return output / sums


def _dims(shape: Any) -> tuple[int | None, ...]:
    """A shape as plain ints, with None for a dynamic (None or -1) dimension."""
    return tuple(None if d is None or int(d) < 0 else int(d) for d in shape)


def _shape_text(dims: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in dims) + ")"


def _check_input_shape(shape: Any, path: str) -> None:
    dims = _dims(shape)
    if len(dims) != 4 or dims[1:] != INPUT_SHAPE:
        raise ModelLoadError(
            f"{path}: model input shape is {_shape_text(dims)}, expected (N, "
            f"{', '.join(map(str, INPUT_SHAPE))}) (48x48 grayscale faces, see emotion_recognition.spec)"
        )


def _check_output_shape(shape: Any, path: str) -> None:
    dims = _dims(shape)
    if len(dims) != 2 or dims[-1] != NUM_EMOTIONS:
        raise ModelLoadError(
            f"{path}: model output shape is {_shape_text(dims)}, expected (N, {NUM_EMOTIONS}): one "
            f"probability per label of {', '.join(EMOTION_LABELS)}"
        )


class EmotionClassifier:
    """A loaded emotion model. Build it with :meth:`load`.

    Attributes:
        path: the model file.
        backend: ``"litert"`` or ``"keras"``.
        num_threads: CPU threads LiteRT uses (Keras/TensorFlow keeps its own thread pools).
        quantized_io: True when the LiteRT model takes and returns int8/uint8 tensors.

    Not thread-safe: one :meth:`predict` at a time (the pipeline holds a lock around it).
    """

    def __init__(self, path: str, backend: str, num_threads: int, runner: Any) -> None:
        self.path = path
        self.backend = backend
        self.num_threads = num_threads
        self._runner = runner
        self.quantized_io = bool(getattr(runner, "quantized_io", False))

    @classmethod
    def load(cls, path: str | os.PathLike[str], num_threads: int = 2) -> EmotionClassifier:
        """Load a ``.tflite`` (LiteRT) or ``.keras`` (Keras) model and check it against the spec.

        Raises:
            ModelLoadError: for a missing or unreadable file, an unknown suffix, or an input/output
                shape that does not match ``emotion_recognition.spec``.
            ValueError: for ``num_threads`` < 1.
        """
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        path = os.fspath(path)
        suffix = Path(path).suffix.lower()
        backend = _BACKEND_BY_SUFFIX.get(suffix)
        if backend is None:
            raise ModelLoadError(
                f"{path}: unknown model type {suffix!r}; expected a .tflite (LiteRT) or .keras (Keras) file"
            )
        if not os.path.isfile(path):
            raise ModelLoadError(f"model file not found: {path}")
        if backend == LITERT:
            runner: Any = _LiteRtRunner(path, num_threads)
        else:
            runner = _KerasRunner(path)
        probe = _probe_faces()
        output = np.asarray(runner(probe), dtype=np.float32).reshape(len(probe), NUM_EMOTIONS)
        _check_probabilities_at_load(output, path)
        return cls(path, backend, num_threads, runner)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Classify a batch of faces in one model call (LiteRT's input is resized to the batch; a
        model exported with a fixed batch size gets one call per chunk of that size).

        Args:
            faces: ``(N, 48, 48, 1)`` raw 0-255 pixels (see :func:`core.preprocessing.crop_faces`).

        Returns:
            ``(N, 7)`` float32 probabilities, each row summing to 1 (:func:`as_probabilities`);
            ``(0, 7)`` for an empty batch.

        Raises:
            ValueError: if ``faces`` does not have shape (N, 48, 48, 1).
            ModelOutputError: the model returned NaN or infinity.
        """
        faces = np.asarray(faces)
        if faces.ndim != 4 or faces.shape[1:] != INPUT_SHAPE:
            raise ValueError(
                f"faces must have shape (N, {', '.join(map(str, INPUT_SHAPE))}), got {faces.shape}"
            )
        if len(faces) == 0:
            return np.zeros((0, NUM_EMOTIONS), dtype=np.float32)
        faces = np.ascontiguousarray(faces, dtype=np.float32)
        output = np.asarray(self._runner(faces), dtype=np.float32).reshape(len(faces), NUM_EMOTIONS)
        return as_probabilities(output)

    def __repr__(self) -> str:
        return (
            f"EmotionClassifier(path={self.path!r}, backend={self.backend!r}, num_threads={self.num_threads})"
        )


class _LiteRtRunner:
    """A LiteRT interpreter whose input tensor is resized to the batch size when it changes."""

    def __init__(self, path: str, num_threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            interpreter = Interpreter(model_path=path, num_threads=num_threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelLoadError(f"{path}: not a readable TFLite model ({error})") from error
        inputs = interpreter.get_input_details()
        outputs = interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelLoadError(
                f"{path}: model has {len(inputs)} input(s) and {len(outputs)} output(s), expected one of each"
            )
        signature = inputs[0].get("shape_signature")
        _check_input_shape(
            signature if signature is not None and len(signature) else inputs[0]["shape"], path
        )
        _check_output_shape(outputs[0]["shape"], path)
        self._interpreter = interpreter
        self._input = inputs[0]
        self._output = outputs[0]
        self._input_index = inputs[0]["index"]
        self._output_index = outputs[0]["index"]
        self._batch = int(inputs[0]["shape"][0])
        # A model exported with a fixed batch size (e.g. a Flatten that hard-codes batch 1) cannot be
        # resized: its faces go through in chunks of that size instead, one invoke() per chunk.
        self._fixed_batch = (
            None if signature is None or not len(signature) or signature[0] < 0 else int(signature[0])
        )
        self._in_dtype = np.dtype(inputs[0]["dtype"])
        self._out_dtype = np.dtype(outputs[0]["dtype"])
        for name, dtype in (("input", self._in_dtype), ("output", self._out_dtype)):
            if dtype not in (np.float32, np.int8, np.uint8):
                raise ModelLoadError(
                    f"{path}: {name} tensor type {dtype} is not supported (float32, int8, uint8)"
                )
        self._in_scale, self._in_zero = inputs[0]["quantization"]
        self._out_scale, self._out_zero = outputs[0]["quantization"]
        self.quantized_io = self._in_dtype != np.float32 or self._out_dtype != np.float32
        if self._in_dtype != np.float32 and self._in_scale == 0:
            raise ModelLoadError(f"{path}: quantised input tensor has no scale")
        if self._out_dtype != np.float32 and self._out_scale == 0:
            raise ModelLoadError(f"{path}: quantised output tensor has no scale")

    def _quantize_input(self, faces: np.ndarray) -> np.ndarray:
        if self._in_dtype == np.float32:
            return faces
        info = np.iinfo(self._in_dtype)
        q = np.round(faces / self._in_scale + self._in_zero)
        return np.clip(q, info.min, info.max).astype(self._in_dtype)

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        if self._fixed_batch is not None:
            return self._run_fixed(faces, self._fixed_batch)
        n = len(faces)
        if n != self._batch:
            self._interpreter.resize_tensor_input(self._input_index, [n, *INPUT_SHAPE])
            self._interpreter.allocate_tensors()
            self._batch = n
        self._interpreter.set_tensor(self._input_index, self._quantize_input(faces))
        self._interpreter.invoke()
        return self._dequantize_output(self._interpreter.get_tensor(self._output_index))

    def _dequantize_output(self, out: np.ndarray) -> np.ndarray:
        if self._out_dtype != np.float32:
            return (out.astype(np.float32) - self._out_zero) * self._out_scale
        return out

    def _run_fixed(self, faces: np.ndarray, size: int) -> np.ndarray:
        """Run a fixed-batch model over ``faces`` in chunks of ``size`` (the last one zero-padded)."""
        results = []
        for start in range(0, len(faces), size):
            chunk = faces[start : start + size]
            if len(chunk) < size:
                chunk = np.concatenate([chunk, np.zeros((size - len(chunk), *INPUT_SHAPE), np.float32)])
            self._interpreter.set_tensor(self._input_index, self._quantize_input(chunk))
            self._interpreter.invoke()
            out = self._dequantize_output(self._interpreter.get_tensor(self._output_index))
            results.append(out[: min(size, len(faces) - start)].copy())
        return np.concatenate(results)


class _KerasRunner:
    """A Keras model run with ``predict_on_batch`` (one traced call, no per-call Dataset set-up)."""

    def __init__(self, path: str) -> None:
        try:
            import keras  # Imported here only: a .tflite model must never pull in TensorFlow.
        except ImportError as error:
            raise ModelLoadError(
                f"{path}: a .keras model needs Keras and TensorFlow, which are not installed "
                "(pip install tensorflow-cpu keras); or use the .tflite model, which needs only "
                "ai-edge-litert"
            ) from error
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:  # Keras raises many types for a bad archive; all mean "unreadable".
            raise ModelLoadError(
                f"{path}: not a readable Keras model ({type(error).__name__}: {error})"
            ) from error
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ModelLoadError(
                f"{path}: model has {len(model.inputs)} input(s) and {len(model.outputs)} output(s), "
                "expected one of each"
            )
        _check_input_shape(model.inputs[0].shape, path)
        _check_output_shape(model.outputs[0].shape, path)
        self._model = model

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.predict_on_batch(faces))
