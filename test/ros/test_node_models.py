"""The node runs either shipped model: ``model_path`` selects the one trained on FER+ votes, which keeps
the default model's contract (labels, input, probabilities), and the node answers a real face with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emotion_recognition.spec import EMOTION_LABELS
from test.support.models import SHIPPED_INT8_TFLITE, ModelFiles
from test.support.node_rig import FACE_FRAME, NodeRig
from test.support.ros_graph import GraphClient, NodeProcess

# Each test starts the node and a DDS peer: see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

FERPLUS_MODEL = Path(SHIPPED_INT8_TFLITE).with_name("emotion_model_ferplus_int8.tflite")


def test_model_path_selects_the_ferplus_model(
    ros_domain: int, tmp_path: Path, emotion_models: ModelFiles
) -> None:
    node = NodeProcess(ros_domain, ["-p", f"model_path:={FERPLUS_MODEL}"], tmp_path / "node.log")
    client = GraphClient(ros_domain)
    try:
        rig = NodeRig(node, client, emotion_models, "", "/image")
        assert f"configured: model {FERPLUS_MODEL}" in node.wait_for_log("configured: model")
        rig.wait_until_connected()
        sec = rig.stamp()
        rig.send_bgr(FACE_FRAME, sec)
        answer = rig.answer(sec)
        assert len(answer.faces) == 1
        face = answer.faces[0]
        assert list(answer.labels) == list(EMOTION_LABELS)
        assert face.label == "happy"  # the astronaut smiles
        assert float(np.sum(face.probabilities)) == pytest.approx(1.0, abs=1e-3)
    finally:
        client.close()
        assert node.stop() == 0
