"""The node's parameters, declared once: the node declares every entry of :data:`PARAMETERS` (with its
description and range), the tests compare this table with ``config/emotion_recognition.yaml``, and the
detector / tracker groups map one-to-one onto the core's settings dataclasses.

:func:`build_pipeline` turns a full set of values into a loaded pipeline (the node's configure and
the bag tools use it; :func:`values_from_file` reads a parameter YAML as the node would).

Nothing here imports rclpy: :func:`descriptor_for` imports the ``rcl_interfaces`` message when called.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotion_recognition.core.detection import DetectorSettings
from emotion_recognition.core.image import ImageLimits
from emotion_recognition.core.pipeline import EmotionPipeline
from emotion_recognition.core.tracking import TrackerSettings

ParameterValue = bool | int | float | str

# When a parameter takes effect.
CONFIGURE = "configure"  # read in on_configure; may only change while the node is unconfigured
RUNTIME = "runtime"  # may change at any time; validated and applied to the running pipeline

# Groups that map onto the core's settings dataclasses; the parameter name is "<group>.<field>".
NODE = "node"
DETECTOR = "detector"
TRACKER = "tracker"

RELIABILITY_CHOICES: tuple[str, ...] = ("best_effort", "reliable")


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter: its name, default (which fixes the ROS type), documentation and range."""

    name: str
    default: ParameterValue
    description: str
    when: str = CONFIGURE
    minimum: float | int | None = None  # inclusive; numbers only
    maximum: float | int | None = None  # inclusive; numbers only
    choices: tuple[str, ...] = ()  # strings only; empty = any string

    @property
    def group(self) -> str:
        """``detector`` / ``tracker`` for core settings, ``node`` for the node's own parameters."""
        head, _, _ = self.name.partition(".")
        return head if head in (DETECTOR, TRACKER) else NODE

    @property
    def field(self) -> str:
        """The core settings field a detector/tracker parameter maps onto (the part after the dot)."""
        return self.name.partition(".")[2] if self.group != NODE else self.name

    @property
    def type_name(self) -> str:
        return type(self.default).__name__

    @property
    def range_text(self) -> str:
        """The range in words, for descriptions and error messages ("" when unrestricted)."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f">= {self.minimum}"
        return ""

    def check(self, value: Any) -> str | None:
        """Return why ``value`` is not acceptable for this parameter, or None when it is."""
        expected = type(self.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not expected:
            return f"{self.name} must be of type {expected.__name__}, got {type(value).__name__} {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{self.name} must be a finite number, got {value}"
        if self.minimum is not None and value < self.minimum:
            return f"{self.name} must be >= {self.minimum}, got {value}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name} must be <= {self.maximum}, got {value}"
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}"
        return None


_DETECTOR = DetectorSettings()
_TRACKER = TrackerSettings()
_LIMITS = ImageLimits()
# Highest max_image_pixels accepted (a 12,000 x 12,000 image; 430 MB as BGR).
MAX_IMAGE_PIXELS_CEILING = 144_000_000

PARAMETERS: tuple[ParameterSpec, ...] = (
    # --- the node ---
    ParameterSpec(
        "autostart",
        True,
        "Configure and activate the node on start, so that a plain `ros2 run` works. False leaves it "
        "unconfigured for a lifecycle manager to bring up.",
    ),
    ParameterSpec(
        "model_path",
        "",
        "Emotion model file (.tflite through LiteRT, .keras through Keras). Empty: the shipped "
        "models/emotion_model_int8.tflite in the package's share directory.",
    ),
    ParameterSpec(
        "num_threads",
        2,
        "Threads the classifier may use.",
        minimum=1,
        maximum=64,
    ),
    ParameterSpec(
        "use_compressed",
        False,
        "Subscribe to `image/compressed` (sensor_msgs/CompressedImage, JPEG or PNG) instead of `image` "
        "(sensor_msgs/Image).",
    ),
    ParameterSpec(
        "image_reliability",
        "best_effort",
        "Reliability of the image subscription (KEEP_LAST, depth 1). best_effort matches every camera "
        "driver; reliable only matches reliable publishers.",
        choices=RELIABILITY_CHOICES,
    ),
    ParameterSpec(
        "publish_detections",
        True,
        "Publish `detections` (vision_msgs/Detection2DArray) besides `emotions`.",
    ),
    ParameterSpec(
        "publish_annotated_image",
        True,
        "Offer `image_annotated` (sensor_msgs/Image, bgr8); it is only drawn while someone subscribes.",
    ),
    ParameterSpec(
        "max_image_pixels",
        _LIMITS.max_image_pixels,
        "Largest image accepted, in pixels (width x height), raw or compressed; a JPEG/PNG is measured "
        "from its header before decoding, so a decompression bomb costs no memory. Larger images are "
        "skipped with a warning (cause image_too_large).",
        minimum=24 * 24,
        maximum=MAX_IMAGE_PIXELS_CEILING,
    ),
    ParameterSpec(
        "max_compressed_bytes",
        _LIMITS.max_compressed_bytes,
        "Largest compressed image (JPEG/PNG data) accepted, in bytes; larger ones are skipped with a "
        "warning (cause image_too_large).",
        minimum=1024,
        maximum=1 << 30,
    ),
    ParameterSpec(
        "stale_image_timeout_s",
        5.0,
        "Diagnostics turn WARN when no image arrived for this many seconds while active.",
        when=RUNTIME,
        minimum=0.1,
        maximum=3600.0,
    ),
    # --- the face detector (core DetectorSettings) ---
    ParameterSpec(
        "detector.cascade_path",
        _DETECTOR.cascade_path,
        "Haar cascade file (haarcascade_frontalface_default.xml). Empty: found automatically, in "
        "cv2.data (PyPI OpenCV), then /usr/share/opencv4/haarcascades (apt's opencv-data).",
    ),
    ParameterSpec(
        "detector.scale_factor",
        _DETECTOR.scale_factor,
        "Step between Haar cascade scales; larger is faster but may miss faces between two scales.",
        when=RUNTIME,
        minimum=1.01,
        maximum=2.0,
    ),
    ParameterSpec(
        "detector.min_neighbors",
        _DETECTOR.min_neighbors,
        "Overlapping raw hits needed to report a face; higher means fewer false positives.",
        when=RUNTIME,
        minimum=0,
        maximum=100,
    ),
    ParameterSpec(
        "detector.min_face_size",
        _DETECTOR.min_face_size,
        "Smallest face reported (box side, in image pixels).",
        when=RUNTIME,
        minimum=1,
        maximum=10000,
    ),
    ParameterSpec(
        "detector.max_face_size",
        _DETECTOR.max_face_size,
        "Largest face reported (box side, in image pixels); 0 = no limit, else >= min_face_size.",
        when=RUNTIME,
        minimum=0,
        maximum=10000,
    ),
    ParameterSpec(
        "detector.detection_width",
        _DETECTOR.detection_width,
        "Width of the downscaled copy the cascade scans (boxes are mapped back to full resolution); "
        "0 = full resolution, else >= 48.",
        when=RUNTIME,
        minimum=0,
        maximum=10000,
    ),
    ParameterSpec(
        "detector.equalize_histogram",
        _DETECTOR.equalize_histogram,
        "Equalise the histogram of the scanned image first (helps in dim or flat light).",
        when=RUNTIME,
    ),
    ParameterSpec(
        "detector.max_faces",
        _DETECTOR.max_faces,
        "Report at most this many faces per frame (the largest).",
        when=RUNTIME,
        minimum=1,
        maximum=100,
    ),
    ParameterSpec(
        "detector.full_scan_interval",
        _DETECTOR.full_scan_interval,
        "Scan the whole frame only every this many frames (1 = every frame); in between only the "
        "surroundings of known faces are scanned, and a frame that loses a known face is scanned whole.",
        when=RUNTIME,
        minimum=1,
        maximum=1000,
    ),
    # --- tracking and smoothing (core TrackerSettings) ---
    ParameterSpec(
        "tracker.iou_threshold",
        _TRACKER.iou_threshold,
        "Minimum box overlap (IoU) for a face to continue a track (keep its id).",
        when=RUNTIME,
        minimum=0.01,
        maximum=1.0,
    ),
    ParameterSpec(
        "tracker.max_age_s",
        _TRACKER.max_age_s,
        "A track not seen for this many seconds (of image time) expires; its face gets a new id.",
        when=RUNTIME,
        minimum=0.01,
        maximum=3600.0,
    ),
    ParameterSpec(
        "tracker.smoothing",
        _TRACKER.smoothing,
        "Weight of the past in each track's moving average of probabilities; 0 = no smoothing.",
        when=RUNTIME,
        minimum=0.0,
        maximum=0.99,
    ),
)

PARAMETERS_BY_NAME: dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETERS}


def defaults() -> dict[str, ParameterValue]:
    """Every parameter's default value, by name."""
    return {spec.name: spec.default for spec in PARAMETERS}


def check_values(values: Mapping[str, Any]) -> list[str]:
    """Check each value against its parameter's type and range; return the problems (empty = fine).

    Unknown names are reported too.
    """
    problems = []
    for name, value in values.items():
        spec = PARAMETERS_BY_NAME.get(name)
        if spec is None:
            problems.append(f"unknown parameter {name!r}")
            continue
        problem = spec.check(value)
        if problem:
            problems.append(problem)
    return problems


def image_limits(values: Mapping[str, Any]) -> ImageLimits:
    """The core's image size limits from parameter values (``max_image_pixels``,
    ``max_compressed_bytes``), shared by the node and the bag tools.

    Raises:
        ValueError: for a limit below 1.
    """
    limits = ImageLimits(int(values["max_image_pixels"]), int(values["max_compressed_bytes"]))
    limits.validate()
    return limits


def _settings(cls: type, group: str, values: Mapping[str, Any]) -> Any:
    kwargs = {}
    for spec in PARAMETERS:
        if spec.group == group:
            value = values[spec.name]
            kwargs[spec.field] = float(value) if isinstance(spec.default, float) else value
    settings = cls(**kwargs)
    settings.validate()
    return settings


def detector_settings(values: Mapping[str, Any]) -> DetectorSettings:
    """Build and validate the core's detector settings from parameter values (``detector.*``).

    Raises:
        ValueError: for values the detector refuses (the message names the field and the reason).
    """
    return _settings(DetectorSettings, DETECTOR, values)


def tracker_settings(values: Mapping[str, Any]) -> TrackerSettings:
    """Build and validate the core's tracker/smoothing settings from parameter values (``tracker.*``).

    Raises:
        ValueError: for values the tracker refuses.
    """
    return _settings(TrackerSettings, TRACKER, values)


class SetupError(ValueError):
    """The pipeline cannot be assembled from the parameter values; the message says why, in the words
    the node logs (``invalid parameters: ...``, ``cannot load the emotion model: ...``)."""


@dataclass(frozen=True)
class PipelineSetup:
    """A pipeline assembled from parameter values, and the model file it runs."""

    pipeline: EmotionPipeline
    model_path: Path
    limits: ImageLimits


def build_pipeline(values: Mapping[str, Any], problems: Sequence[str] = ()) -> PipelineSetup:
    """The perception pipeline for a full set of parameter values: checked, the model resolved
    (:func:`emotion_recognition.resources.resolve_model_path`) and loaded. The one assembly the node's
    configure and the bag tools share.

    Args:
        values: every parameter of :data:`PARAMETERS` by name.
        problems: problems the caller found already (reported first, with the values' own).

    Raises:
        SetupError: bad values, no model file, a model that does not load, or no face detector.
    """
    from emotion_recognition.core.classifier import EmotionClassifier, ModelLoadError
    from emotion_recognition.resources import resolve_model_path

    problems = [*problems, *check_values(values)]
    settings = []
    if not problems:
        for name, build in ((DETECTOR, detector_settings), (TRACKER, tracker_settings)):
            try:
                settings.append(build(values))
            except ValueError as error:
                problems.append(f"{name}: {error}")
        try:
            limits = image_limits(values)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise SetupError("invalid parameters: " + "; ".join(problems))
    model_path, reason = resolve_model_path(str(values["model_path"]))
    if model_path is None:
        raise SetupError(f"cannot load the emotion model: {reason}")
    try:
        classifier = EmotionClassifier.load(str(model_path), num_threads=int(values["num_threads"]))
    except ModelLoadError as error:
        raise SetupError(f"cannot load the emotion model {str(model_path)!r}: {error}") from None
    try:
        return PipelineSetup(EmotionPipeline(classifier, *settings), model_path, limits)
    except (ValueError, RuntimeError, OSError) as error:  # the Haar cascade missing or unreadable
        raise SetupError(f"cannot set up face detection: {error}") from None


def _flattened(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"detector": {"min_face_size": 30}}`` -> ``{"detector.min_face_size": 30}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        flat.update(_flattened(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return flat


def values_from_file(params_file: Path | str) -> dict[str, Any]:
    """The parameter values a node started with ``--ros-args --params-file params_file`` would have:
    the defaults, overridden by the file's first ``<node>: ros__parameters:`` section.

    Raises:
        SetupError: an unreadable file, no such section, or values the node would refuse.
    """
    import yaml

    try:
        document = yaml.safe_load(Path(params_file).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SetupError(f"cannot read parameter file {params_file}: {exc}") from None
    sections = [
        entry["ros__parameters"]
        for entry in (document.values() if isinstance(document, dict) else [])
        if isinstance(entry, dict) and isinstance(entry.get("ros__parameters"), dict)
    ]
    if not sections:
        raise SetupError(f"parameter file {params_file} has no '<node>: ros__parameters:' section")
    values = {**defaults(), **_flattened(sections[0])}
    problems = check_values(values)
    if problems:
        raise SetupError(f"parameter file {params_file}: " + "; ".join(problems))
    return values


YAML_HEADER = """\
# Parameters of the emotion_recognition node: every parameter it declares, set to its default.
# Generated from emotion_recognition/ros/parameters.py (the table the node declares from); after changing
# the table or a core default, regenerate with
#   scripts/dev-env python -m emotion_recognition.ros.parameters > config/emotion_recognition.yaml
# (a test fails while they differ). Copy this file to change values for your robot, then
#   ros2 run emotion_recognition emotion_recognition_node --ros-args --params-file <your copy>
# "/**" applies to the node whatever its name and namespace, so one file serves several cameras.
"""

_GROUP_TITLES = {
    DETECTOR: "Haar face detector (core DetectorSettings)",
    TRACKER: "Face tracking and temporal smoothing of probabilities (core TrackerSettings)",
}


def _yaml_scalar(value: ParameterValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a double-quoted string is valid YAML


def render_yaml() -> str:
    """The parameter file ``config/emotion_recognition.yaml``: every parameter at its default, each with
    its description, range and when it takes effect as a comment."""
    lines = [YAML_HEADER + "/**:", "  ros__parameters:"]
    group = NODE
    for spec in PARAMETERS:
        indent = "    "
        if spec.group != NODE:
            if spec.group != group:
                lines += ["", f"    # --- {_GROUP_TITLES[spec.group]} ---", f"    {spec.group}:"]
            indent = "      "
        group = spec.group
        notes = [spec.range_text] if spec.range_text else []
        notes.append("changeable at run time" if spec.when == RUNTIME else "read on configure")
        comment = f"{spec.description} [{'; '.join(notes)}]"
        lines += textwrap.wrap(
            comment, width=100, initial_indent=indent + "# ", subsequent_indent=indent + "# "
        )
        lines.append(f"{indent}{spec.field}: {_yaml_scalar(spec.default)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_yaml(), end="")


def descriptor_for(spec: ParameterSpec) -> Any:
    """The ROS parameter descriptor (``rcl_interfaces/ParameterDescriptor``: description, constraints,
    range) of a table entry."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    descriptor = ParameterDescriptor(name=spec.name, description=spec.description)
    constraints = [spec.range_text] if spec.range_text else []
    constraints.append("changeable at run time" if spec.when == RUNTIME else "read on configure")
    descriptor.additional_constraints = "; ".join(constraints)
    if spec.minimum is None or spec.maximum is None:
        return descriptor
    if isinstance(spec.default, float):
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(spec.minimum), to_value=float(spec.maximum), step=0.0)
        ]
    elif isinstance(spec.default, int) and not isinstance(spec.default, bool):
        descriptor.integer_range = [
            IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)
        ]
    return descriptor
