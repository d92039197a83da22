"""Model outputs are checked: a model that does not return probabilities is refused at load time (the
node's configure fails with the reason), a model that returns NaN for a frame at run time gets that
frame skipped with a warning while the node keeps answering, and every published probability vector
sums to 1."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from emotion_recognition.core.classifier import EmotionClassifier, ModelLoadError, ModelOutputError
from emotion_recognition.core.preprocessing import crop_faces
from emotion_recognition.ros.node import BAD_INPUT_LOG_PERIOD_S
from test.conftest import next_ros_domain_id
from test.support.bad_models import write_bad_models
from test.support.images import FACE_NAMES, face_box, photo_gray
from test.support.models import ModelFiles
from test.support.node_rig import FACE_FRAME, FACE_FREE_FRAME, NodeRig
from test.support.ros_graph import GraphClient, NodeProcess

REFUSED = {
    "nan_output": "non-finite values (NaN or infinity) on probe inputs",
    "no_softmax": "model output is not probabilities: values from 50 to 815",
}


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_bad_models(tmp_path_factory.mktemp("bad_models"))


def _real_faces() -> np.ndarray:
    return np.stack([crop_faces(photo_gray(name), [face_box(name)])[0] for name in FACE_NAMES])


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_model_without_probabilities_is_refused_at_load(bad_models: dict[str, Path], name: str) -> None:
    with pytest.raises(ModelLoadError) as caught:
        EmotionClassifier.load(bad_models[name])
    assert REFUSED[name] in str(caught.value)


def test_a_run_time_nan_raises_for_that_batch_only(bad_models: dict[str, Path]) -> None:
    classifier = EmotionClassifier.load(bad_models["nan_on_texture"])  # passes the load-time probe
    with pytest.raises(ModelOutputError, match="non-finite"):
        classifier.predict(_real_faces())
    flat = np.full((1, 48, 48, 1), 100.0, np.float32)
    assert np.isfinite(classifier.predict(flat)).all()


def test_the_shipped_model_probabilities_are_normalised(emotion_models: ModelFiles) -> None:
    classifier = EmotionClassifier.load(emotion_models.tflite)
    probabilities = classifier.predict(_real_faces())
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert (probabilities >= 0).all()


@pytest.mark.slow  # starts the node
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_node_fails_configure_with_the_reason_and_stays_up(
    tmp_path: Path, bad_models: dict[str, Path], name: str
) -> None:
    node = NodeProcess(next_ros_domain_id(), ["-p", f"model_path:={bad_models[name]}"], tmp_path / "node.log")
    try:
        log = node.wait_for_log("configure failed")
        line = next(line for line in log.splitlines() if "configure failed" in line)
        assert REFUSED[name] in line and str(bad_models[name]) in line
        assert node.alive
    finally:
        node.stop()


@pytest.mark.slow  # starts the node
def test_the_node_skips_a_frame_with_a_nan_output_and_keeps_answering(
    tmp_path: Path, bad_models: dict[str, Path], emotion_models: ModelFiles
) -> None:
    domain_id = next_ros_domain_id()
    node = NodeProcess(
        domain_id,
        ["-r", "__ns:=/nan", "-p", f"model_path:={bad_models['nan_on_texture']}"],
        tmp_path / "node.log",
    )
    client = GraphClient(domain_id)
    try:
        node.wait_for_log("active: subscribed to")
        rig = NodeRig(node, client, emotion_models, "/nan", "/nan/image", subscribe_annotated=False)
        rig.wait_until_connected()
        started = time.monotonic()
        for _ in range(2):
            bad = rig.stamp()
            rejected = rig.rejected_count("invalid_model_output")
            rig.send_bgr(FACE_FRAME, bad)  # a face: the model returns NaN for it
            rig.wait_for_rejected("invalid_model_output", rejected + 1)
            good = rig.stamp()
            rig.send_bgr(FACE_FREE_FRAME, good)  # no face, no model call: answered
            assert rig.answer(good).faces == []
            assert rig.emotions.matching(lambda m, s=bad: m.header.stamp.sec == s) == []
        log = node.log()
        # Throttled: one line (one more per 10 s period, should a busy machine stretch the test).
        allowed = 1 + int((time.monotonic() - started) // BAD_INPUT_LOG_PERIOD_S)
        assert 1 <= log.count("skipping an image (invalid_model_output)") <= allowed
        assert "non-finite" in log and node.alive
    finally:
        client.close()
        node.stop()
