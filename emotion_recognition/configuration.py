"""The node's parameter file and model, read without ROS: what the node, the bag tools and the web
server build their perception pipeline from.

Nothing here imports rclpy: the parameter table (:mod:`emotion_recognition.ros.parameters`) is plain
data, the YAML is read with PyYAML and the shipped files are found by :mod:`emotion_recognition.resources`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emotion_recognition.resources import search_paths, shipped_file

SHIPPED_MODEL_FILE = "emotion_model_int8.tflite"
PARAMS_FILE = "config/emotion_recognition.yaml"


def default_params_file() -> Path | None:
    """The shipped ``config/emotion_recognition.yaml`` (share directory, else the source checkout)."""
    return shipped_file(PARAMS_FILE)


def model_search_paths() -> list[Path]:
    """Where the shipped model is looked for, in order: the installed package's share directory (found
    through the ament index), then ``models/`` of the source checkout this module belongs to."""
    return search_paths(f"models/{SHIPPED_MODEL_FILE}")


def resolve_model_path(model_path: str) -> tuple[Path | None, str]:
    """The model file to load for the ``model_path`` parameter, or ``(None, reason)`` when none exists.

    An empty ``model_path`` means the shipped model (see :func:`model_search_paths`).
    """
    if model_path.strip():
        path = Path(model_path).expanduser()
        if path.is_file():
            return path, ""
        return None, f"model file {str(path)!r} (parameter model_path) does not exist or is not a file"
    candidates = model_search_paths()
    for path in candidates:
        if path.is_file():
            return path, ""
    searched = ", ".join(repr(str(p)) for p in candidates)
    return None, (
        f"the shipped model {SHIPPED_MODEL_FILE} was not found (looked in {searched}); set model_path"
    )


def _node_section(document: Any, params_file: Path | str) -> dict[str, Any]:
    """The first ``<node>: ros__parameters:`` mapping of a parameter file."""
    if isinstance(document, dict):
        for entry in document.values():
            if isinstance(entry, dict) and isinstance(entry.get("ros__parameters"), dict):
                return entry["ros__parameters"]
    raise ValueError(f"parameter file {params_file} has no '<node>: ros__parameters:' section")


def _flatten(prefix: str, tree: dict[str, Any], into: dict[str, Any]) -> None:
    """Nested YAML groups to dotted parameter names (``detector: {min_face_size: 60}`` ->
    ``detector.min_face_size``)."""
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(f"{name}.", value, into)
        else:
            into[name] = value


def load_parameter_values(params_file: Path | str | None = None) -> dict[str, Any]:
    """The node's parameter values: its defaults, overridden by a node parameter file (the YAML given to
    ``--ros-args --params-file``; the first node's ``ros__parameters`` are used).

    Raises:
        ValueError: unreadable file, or values the node would refuse (each problem named).
    """
    import yaml

    from emotion_recognition.ros import parameters

    values = parameters.defaults()
    if params_file is None:
        return values
    try:
        document = yaml.safe_load(Path(params_file).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read parameter file {params_file}: {exc}") from None
    _flatten("", _node_section(document, params_file), values)
    problems = parameters.check_values(values)
    if problems:
        raise ValueError(f"parameter file {params_file}: " + "; ".join(problems))
    return values


def load_classifier(values: dict[str, Any], model_path: Path | str | None = None):
    """Load the emotion model named by ``model_path``, else by the ``model_path`` parameter, else the
    shipped one. Returns an :class:`~emotion_recognition.core.classifier.EmotionClassifier`.

    Raises:
        FileNotFoundError: no model file; ValueError: an unusable model.
    """
    from emotion_recognition.core.classifier import EmotionClassifier, ModelLoadError

    wanted = str(model_path) if model_path is not None else str(values["model_path"])
    path, reason = resolve_model_path(wanted)
    if path is None:
        raise FileNotFoundError(reason)
    try:
        return EmotionClassifier.load(str(path), num_threads=int(values["num_threads"]))
    except ModelLoadError as exc:
        raise ValueError(f"cannot load the emotion model {path}: {exc}") from None


def build_pipeline(
    model_path: Path | str | None = None,
    params_file: Path | str | None = None,
    values: dict[str, Any] | None = None,
):
    """The perception pipeline exactly as the node builds it: the node's parameter values (``values``,
    else the defaults overridden by ``params_file``) and its model (see :func:`load_classifier`).
    Returns an :class:`~emotion_recognition.core.pipeline.EmotionPipeline`.

    Raises:
        FileNotFoundError: no model file; ValueError: bad parameter values or an unusable model.
    """
    from emotion_recognition.core.pipeline import EmotionPipeline
    from emotion_recognition.ros import parameters

    if values is None:
        values = load_parameter_values(params_file)
    return EmotionPipeline(
        load_classifier(values, model_path),
        parameters.detector_settings(values),
        parameters.tracker_settings(values),
    )
