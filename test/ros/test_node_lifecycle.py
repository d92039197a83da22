"""The node's lifecycle: a missing or broken model fails configure with a readable message and the
process stays up; fixing the parameter and configuring again works; deactivate stops the output;
Ctrl-C ends the process cleanly."""

from __future__ import annotations

import time

import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from lifecycle_msgs.msg import Transition

from emotion_recognition.ros import parameters as params
from test.conftest import next_ros_domain_id
from test.support.models import ModelFiles
from test.support.node_rig import FACE_FRAME, NodeRig
from test.support.ros_graph import PARAMS_FILE, GraphClient, NodeProcess

# Each test starts processes (node, DDS peers, builds): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

NAMESPACE = "/lab"
IMAGE_TOPIC = "/lab/camera/image_raw"
MISSING_MODEL = "/nonexistent/emotion_model_int8.tflite"


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, emotion_models: ModelFiles, ros_domain_id: int):
    log_path = tmp_path_factory.mktemp("node_lifecycle") / "node.log"
    node = NodeProcess(
        ros_domain_id,
        ["-r", f"__ns:={NAMESPACE}", "-r", f"image:={IMAGE_TOPIC}", "-p", f"model_path:={MISSING_MODEL}"],
        log_path,
    )
    client = GraphClient(ros_domain_id)
    try:
        yield NodeRig(node, client, emotion_models, NAMESPACE, IMAGE_TOPIC)
    finally:
        client.close()
        node.stop()


def test_missing_model_fails_configure_with_a_readable_message(rig: NodeRig) -> None:
    # autostart tried to configure and failed; the process is still running.
    log = rig.node.wait_for_log("configure failed")
    assert (
        f"cannot load the emotion model: model file '{MISSING_MODEL}' (parameter model_path) does not exist"
        in log
    )
    assert "Traceback" not in log
    assert rig.node.alive
    assert rig.lifecycle_state() == "unconfigured"
    # Asking again through the lifecycle service fails the same way.
    assert rig.change_state(Transition.TRANSITION_CONFIGURE) is False
    assert rig.lifecycle_state() == "unconfigured"
    # /diagnostics says why.
    report = rig.diagnostics.wait_for(
        lambda m: any(
            s.name.startswith(rig.node_name + ":") and s.level == DiagnosticStatus.ERROR for s in m.status
        )
    )
    status = next(s for s in report.status if s.name.startswith(rig.node_name + ":"))
    assert "not configured" in status.message and MISSING_MODEL in status.message


def test_broken_model_fails_configure_with_a_readable_message(rig: NodeRig, tmp_path) -> None:
    broken = tmp_path / "broken_model.tflite"
    broken.write_bytes(b"this is not a flatbuffer" * 10)
    assert rig.set_parameters(model_path=str(broken))[0].successful  # allowed while unconfigured
    assert rig.change_state(Transition.TRANSITION_CONFIGURE) is False
    log = rig.node.wait_for_log(f"cannot load the emotion model '{broken}'")
    assert "Traceback" not in log
    assert rig.node.alive
    assert rig.lifecycle_state() == "unconfigured"


def test_configure_after_fixing_the_model_path_then_activate_and_answer(rig: NodeRig) -> None:
    assert rig.set_parameters(model_path=str(rig.models.tflite))[0].successful
    assert rig.change_state(Transition.TRANSITION_CONFIGURE) is True
    assert rig.lifecycle_state() == "inactive"
    # Configure-time parameters are refused once configured.
    result = rig.set_parameters(model_path="/tmp/other.tflite")[0]
    assert not result.successful and "read on configure" in result.reason
    assert rig.change_state(Transition.TRANSITION_ACTIVATE) is True
    assert rig.lifecycle_state() == "active"
    rig.wait_until_connected()
    sec = rig.stamp()
    rig.send_bgr(FACE_FRAME, sec)
    assert len(rig.answer(sec).faces) == 1


def test_deactivate_clears_the_faces_stops_taking_images_and_activate_resumes(rig: NodeRig) -> None:
    """The lifecycle_py convention: the outputs are lifecycle publishers, created on configure, so
    their topics stay while inactive; deactivate first publishes an empty ``emotions``, so that
    subscribers drop the faces they show, then nothing more is published until activate."""
    before = len(rig.emotions.messages)
    assert rig.change_state(Transition.TRANSITION_DEACTIVATE) is True
    assert rig.lifecycle_state() == "inactive"
    cleared = rig.emotions.wait_for(lambda m: rig.emotions.messages.index(m) >= before)
    assert cleared.faces == [] and list(cleared.labels) == list(rig.emotions.messages[before - 1].labels)
    rig.client.wait_until(
        lambda: rig.images.get_subscription_count() == 0, "the image subscription to go away"
    )
    time.sleep(1.0)  # anything published while inactive would arrive meanwhile
    assert len(rig.emotions.messages) == before + 1
    for inbox in (rig.emotions, rig.detections, rig.annotated):  # the topics stay while inactive
        assert inbox.subscription.get_publisher_count() == 1
    assert rig.change_state(Transition.TRANSITION_ACTIVATE) is True
    rig.wait_until_connected()
    sec = rig.stamp()
    rig.send_bgr(FACE_FRAME, sec)
    assert len(rig.answer(sec).faces) == 1


def test_cleanup_allows_changing_configure_time_parameters(rig: NodeRig) -> None:
    assert rig.change_state(Transition.TRANSITION_DEACTIVATE) is True
    assert rig.change_state(Transition.TRANSITION_CLEANUP) is True
    assert rig.lifecycle_state() == "unconfigured"
    assert rig.set_parameters(image_reliability="reliable")[0].successful
    assert rig.change_state(Transition.TRANSITION_CONFIGURE) is True
    assert rig.change_state(Transition.TRANSITION_ACTIVATE) is True
    assert "subscribed to /lab/camera/image_raw (reliable, depth 1)" in rig.node.wait_for_log(
        "(reliable, depth 1)"
    )
    rig.wait_until_connected()
    sec = rig.stamp()
    rig.send_bgr(FACE_FRAME, sec)
    assert len(rig.answer(sec).faces) == 1


def test_overload_skips_stale_frames_answers_the_newest_and_warns(
    tmp_path, emotion_models: ModelFiles
) -> None:
    """Frames sent faster than the node can take them (each frame costs much more than usual: the finest
    Haar scale step, the whole frame every time), over a reliable subscription (so the newest frame
    surely reaches the node): it skips stale frames (counted as dropped), answers the newest, and
    /diagnostics says it cannot keep up. A node of its own; frames are sent until /diagnostics reports a
    drop, so no sleep has to be long or short enough."""
    domain_id = next_ros_domain_id()
    node = NodeProcess(
        domain_id,
        [
            "-r",
            f"__ns:={NAMESPACE}",
            "-r",
            f"image:={IMAGE_TOPIC}",
            "-p",
            f"model_path:={emotion_models.tflite}",
            "-p",
            "image_reliability:=reliable",
            "-p",
            "detector.scale_factor:=1.01",
            "-p",
            "detector.full_scan_interval:=1",
        ],
        tmp_path / "node.log",
    )
    client = GraphClient(domain_id)
    try:
        node.wait_for_log("active: subscribed to")
        rig = NodeRig(node, client, emotion_models, NAMESPACE, IMAGE_TOPIC)
        rig.wait_until_connected()
        first_report = len(rig.diagnostics.messages)

        def cannot_keep_up(report) -> bool:
            return rig.diagnostics.messages.index(report) >= first_report and any(
                s.name.startswith(rig.node_name + ":")
                and s.level == DiagnosticStatus.WARN
                and "cannot keep up" in s.message
                for s in report.status
            )

        sec, sent = rig.stamp(), 0
        deadline = time.monotonic() + 120
        while not rig.diagnostics.matching(cannot_keep_up):
            assert time.monotonic() < deadline, f"no drop reported after {sent} frames:\n{node.log()}"
            rig.send_bgr(FACE_FRAME, sec, sent * 1000)
            sent += 1
            time.sleep(0.01)  # spares the CPU only: frames go out until a drop is reported, however long
        rig.send_bgr(FACE_FRAME, sec, sent * 1000)  # the newest frame
        newest = rig.answer(sec, sent * 1000)
        assert len(newest.faces) == 1
        answered = [
            m.header.stamp.nanosec for m in rig.emotions.matching(lambda m: m.header.stamp.sec == sec)
        ]
        assert answered == sorted(answered) and len(answered) < sent + 1
        warn = rig.diagnostics.matching(cannot_keep_up)[0]
        assert int(rig.diagnostic_value(warn, "dropped frames (last period)")) >= 1
    finally:
        client.close()
        assert node.stop() == 0


def test_ctrl_c_ends_the_node_cleanly(rig: NodeRig) -> None:
    assert rig.node.stop() == 0
    assert "Traceback" not in rig.node.log()


def test_out_of_range_and_mistyped_values_in_a_parameter_file_fail_configure_not_the_process(
    tmp_path, emotion_models: ModelFiles
) -> None:
    """A user's edited copy of the parameter file with a value out of range and one of the wrong type."""
    values = params.defaults()
    text = PARAMS_FILE.read_text(encoding="utf-8")
    text = text.replace(f"scale_factor: {values['detector.scale_factor']!r}", "scale_factor: 5.0")
    text = text.replace(f"min_neighbors: {values['detector.min_neighbors']}", "min_neighbors: 2.5")
    assert "scale_factor: 5.0" in text and "min_neighbors: 2.5" in text
    params_file = tmp_path / "my_params.yaml"
    params_file.write_text(text, encoding="utf-8")
    node = NodeProcess(
        next_ros_domain_id(),
        ["-p", f"model_path:={emotion_models.tflite}"],
        tmp_path / "node.log",
        params_file,
    )
    try:
        log = node.wait_for_log("autostart: configure failed")
        assert "configure failed: invalid parameters: detector.scale_factor" in log
        assert "out of range" in log and "detector.min_neighbors" in log and "INTEGER" in log, log
        assert "Traceback" not in log
        assert node.alive
    finally:
        assert node.stop() == 0
