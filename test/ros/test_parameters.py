"""The parameter table, the shipped YAML and the core's settings dataclasses agree."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from emotion_recognition.core.detection import DetectorSettings
from emotion_recognition.core.tracking import TrackerSettings
from emotion_recognition.ros import parameters as params

REPO = Path(__file__).resolve().parents[2]
YAML_PATH = REPO / "config" / "emotion_recognition.yaml"


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def test_shipped_yaml_is_the_rendered_table() -> None:
    assert YAML_PATH.read_text(encoding="utf-8") == params.render_yaml(), (
        "config/emotion_recognition.yaml is out of date: regenerate it with "
        "scripts/dev-env python -m emotion_recognition.ros.parameters > config/emotion_recognition.yaml"
    )


def test_yaml_holds_every_declared_parameter_at_its_default_and_nothing_else() -> None:
    document = yaml.safe_load(YAML_PATH.read_text(encoding="utf-8"))
    assert list(document) == ["/**"]
    values = _flatten(document["/**"]["ros__parameters"])
    assert values == params.defaults()
    for name, value in values.items():  # same YAML type as the declared one (1 vs 1.0 matters to ROS)
        assert type(value) is type(params.PARAMETERS_BY_NAME[name].default), name


@pytest.mark.parametrize(
    ("group", "cls"), [(params.DETECTOR, DetectorSettings), (params.TRACKER, TrackerSettings)]
)
def test_every_core_setting_is_a_parameter_with_the_core_default(group: str, cls: type) -> None:
    specs = [s for s in params.PARAMETERS if s.group == group]
    assert {s.field for s in specs} == {f.name for f in dataclasses.fields(cls)}
    core_defaults = cls()
    for spec in specs:
        # The cascade file is loaded on configure; every other setting changes at run time.
        expected = params.CONFIGURE if spec.name == "detector.cascade_path" else params.RUNTIME
        assert spec.when == expected, spec.name
        assert spec.default == getattr(core_defaults, spec.field), spec.name


def test_every_parameter_is_documented_and_defaults_pass_their_own_checks() -> None:
    for spec in params.PARAMETERS:
        assert len(spec.description) > 20, spec.name
        assert spec.check(spec.default) is None, spec.name
    params.detector_settings(params.defaults())
    params.tracker_settings(params.defaults())


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("detector.scale_factor", 2.5, "<= 2.0"),
        ("detector.min_neighbors", -1, ">= 0"),
        ("detector.min_neighbors", 2.0, "must be of type int"),
        ("detector.equalize_histogram", 1, "must be of type bool"),
        ("tracker.smoothing", float("nan"), "finite"),
        ("image_reliability", "sometimes", "one of best_effort, reliable"),
        ("num_threads", 0, ">= 1"),
    ],
)
def test_out_of_range_and_mistyped_values_are_refused(name: str, value: object, fragment: str) -> None:
    problem = params.PARAMETERS_BY_NAME[name].check(value)
    assert problem is not None and fragment in problem and name in problem


def test_cross_field_problems_come_from_the_core_settings() -> None:
    values = {**params.defaults(), "detector.min_face_size": 80, "detector.max_face_size": 50}
    with pytest.raises(ValueError, match="max_face_size"):
        params.detector_settings(values)
    assert params.check_values({"no_such_parameter": 1}) == ["unknown parameter 'no_such_parameter'"]


def test_an_integer_is_accepted_for_a_float_parameter() -> None:
    assert params.PARAMETERS_BY_NAME["detector.scale_factor"].check(2) is None
    settings = params.detector_settings({**params.defaults(), "detector.scale_factor": 2})
    assert isinstance(settings.scale_factor, float)
