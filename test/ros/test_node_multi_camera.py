"""Several cameras = several node instances in their own namespaces, side by side on one ROS graph:
each answers its own camera only, reports its own status in /diagnostics, and draws the annotated
image only while somebody subscribes to it."""

from __future__ import annotations

import pytest

from test.support.models import ModelFiles
from test.support.node_rig import FACE_FRAME, FACE_FREE_FRAME, NodeRig
from test.support.ros_graph import GraphClient, NodeProcess, model_args

# Each test starts processes (node, DDS peers, builds): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cameras(tmp_path_factory: pytest.TempPathFactory, emotion_models: ModelFiles, ros_domain_id: int):
    logs = tmp_path_factory.mktemp("node_multi_camera")
    nodes = {
        name: NodeProcess(
            ros_domain_id,
            ["-r", f"__ns:=/{name}", "-r", f"image:=/{name}/image_raw", *model_args(emotion_models)],
            logs / f"{name}.log",
        )
        for name in ("left", "right")
    }
    client = GraphClient(ros_domain_id)
    try:
        rigs = {}
        for name, node in nodes.items():
            node.wait_for_log("active: subscribed to")
            # Nobody looks at the right camera's annotated image.
            rigs[name] = NodeRig(
                node,
                client,
                emotion_models,
                f"/{name}",
                f"/{name}/image_raw",
                subscribe_annotated=name == "left",
            )
        for rig in rigs.values():
            rig.wait_until_connected()
        yield rigs
    finally:
        client.close()
        for node in nodes.values():
            node.stop()


def test_each_instance_answers_its_own_camera(cameras: dict[str, NodeRig]) -> None:
    left, right = cameras["left"], cameras["right"]
    sec = left.stamp()
    # One frame at a time: this process's default 512 KiB shared-memory segment holds one such frame
    # (see test/support/node_rig.py). Same stamp on purpose: the answers must not mix.
    left.send_bgr(FACE_FRAME, sec)
    assert len(left.answer(sec).faces) == 1
    right.send_bgr(FACE_FREE_FRAME, sec)
    assert right.answer(sec).faces == []
    assert all(len(m.faces) == 1 for m in left.emotions.matching(lambda m: m.header.stamp.sec == sec))
    assert all(m.faces == [] for m in right.emotions.matching(lambda m: m.header.stamp.sec == sec))


def test_each_instance_reports_itself_and_draws_only_for_a_subscriber(cameras: dict[str, NodeRig]) -> None:
    left, right = cameras["left"], cameras["right"]
    for rig in (left, right):
        sec = rig.stamp()
        rig.send_bgr(FACE_FRAME, sec)
        rig.answer(sec)
    totals = {}
    for name, rig in cameras.items():
        first = len(rig.diagnostics.messages)
        report = rig.diagnostics.wait_for(
            lambda m, r=rig, f=first: (
                r.diagnostics.messages.index(m) >= f and r.diagnostic_value(m, "state") is not None
            )
        )
        totals[name] = {
            key: rig.diagnostic_value(report, key)
            for key in ("processed frames (total)", "annotated images (total)")
        }
    assert int(totals["left"]["processed frames (total)"]) >= 2
    assert int(totals["right"]["processed frames (total)"]) >= 2
    assert int(totals["left"]["annotated images (total)"]) >= 2
    assert totals["right"]["annotated images (total)"] == "0"
