"""The node's ``detector.cascade_path`` parameter, read on configure: a missing file fails configure
with a readable message (the process stays up); a corrected path configures, and the node answers a
face with that cascade."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lifecycle_msgs.msg import Transition

from emotion_recognition.core.cascade import find_cascade
from test.support.models import ModelFiles
from test.support.node_rig import FACE_FRAME, NodeRig
from test.support.ros_graph import GraphClient, NodeProcess, model_args

# Each test starts processes (node, launch, DDS peers): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow


def test_cascade_path_is_read_on_configure(
    ros_domain: int, tmp_path: Path, emotion_models: ModelFiles
) -> None:
    missing = tmp_path / "missing" / "haarcascade_frontalface_default.xml"
    copy = tmp_path / "my_cascade.xml"
    shutil.copy(find_cascade(), copy)
    node = NodeProcess(
        ros_domain,
        ["-p", f"detector.cascade_path:={missing}", *model_args(emotion_models)],
        tmp_path / "node.log",
    )
    client = GraphClient(ros_domain)
    try:
        rig = NodeRig(node, client, emotion_models, "", "/image")
        log = node.wait_for_log("configure failed")
        assert (
            f"configure failed: cannot set up face detection: Haar cascade file '{missing}' "
            "(detector.cascade_path) does not exist"
        ) in log
        assert "Traceback" not in log and node.alive
        assert rig.lifecycle_state() == "unconfigured"
        assert rig.set_parameters(detector__cascade_path=str(copy))[0].successful
        assert rig.change_state(Transition.TRANSITION_CONFIGURE) is True
        assert f"Haar cascade {copy}" in node.wait_for_log(f"Haar cascade {copy}")
        refused = rig.set_parameters(detector__cascade_path=str(missing))[0]
        assert not refused.successful and "read on configure" in refused.reason
        assert rig.change_state(Transition.TRANSITION_ACTIVATE) is True
        rig.wait_until_connected()
        sec = rig.stamp()
        rig.send_bgr(FACE_FRAME, sec)
        assert len(rig.answer(sec).faces) == 1
    finally:
        client.close()
        assert node.stop() == 0
