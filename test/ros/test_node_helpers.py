"""The node's small pure helpers: per-cause log throttling (ros/throttle.py), model path resolution
(resources.py), parameter descriptors (ros/parameters.py)."""

from __future__ import annotations

from pathlib import Path

from emotion_recognition.resources import SHIPPED_MODEL_FILE, model_search_paths, resolve_model_path
from emotion_recognition.ros import parameters as params
from emotion_recognition.ros.throttle import CauseThrottle

REPO = Path(__file__).resolve().parents[2]


def test_each_cause_is_logged_first_then_once_per_period_with_the_suppressed_count() -> None:
    throttle = CauseThrottle(period_s=10.0)
    assert throttle.should_log("length_mismatch", now=100.0) == (True, 0)
    assert throttle.should_log("length_mismatch", now=101.0) == (False, 0)
    assert throttle.should_log("length_mismatch", now=105.0) == (False, 0)
    # Another cause is not held back by the first one.
    assert throttle.should_log("decode_failed", now=105.0) == (True, 0)
    # After the period: logged again, reporting the two that were not.
    assert throttle.should_log("length_mismatch", now=110.5) == (True, 2)
    assert throttle.should_log("length_mismatch", now=111.0) == (False, 0)


def test_explicit_model_path_must_exist(tmp_path: Path) -> None:
    model = tmp_path / "model.tflite"
    path, reason = resolve_model_path(str(model))
    assert path is None and str(model) in reason and "model_path" in reason
    model.write_bytes(b"x")
    assert resolve_model_path(str(model)) == (model, "")


def test_empty_model_path_means_the_shipped_model_in_share_or_the_source_checkout() -> None:
    candidates = model_search_paths()
    assert candidates[-1] == REPO / "models" / SHIPPED_MODEL_FILE
    assert all(c.name == SHIPPED_MODEL_FILE for c in candidates)
    path, reason = resolve_model_path("")
    existing = [c for c in candidates if c.is_file()]
    if existing:
        assert path == existing[0]
    else:
        assert path is None and SHIPPED_MODEL_FILE in reason and "model_path" in reason


def test_descriptors_carry_description_and_range() -> None:
    scale = params.descriptor_for(params.PARAMETERS_BY_NAME["detector.scale_factor"])
    assert scale.description.startswith("Step between Haar cascade scales")
    assert (scale.floating_point_range[0].from_value, scale.floating_point_range[0].to_value) == (1.01, 2.0)
    assert "changeable at run time" in scale.additional_constraints
    neighbours = params.descriptor_for(params.PARAMETERS_BY_NAME["detector.min_neighbors"])
    assert (neighbours.integer_range[0].from_value, neighbours.integer_range[0].to_value) == (0, 100)
    reliability = params.descriptor_for(params.PARAMETERS_BY_NAME["image_reliability"])
    assert "best_effort, reliable" in reliability.additional_constraints
    assert "read on configure" in reliability.additional_constraints
    assert not reliability.integer_range and not reliability.floating_point_range
