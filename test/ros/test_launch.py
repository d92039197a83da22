"""``launch/emotion_recognition.launch.py`` run by the real launch framework, the way ``ros2 launch``
runs it (``ros2launch.api.launch_a_launch_file``, see test/support/launch_runner.py), in its own
process group like a terminal's foreground job. Each case sends a real face photograph over Fast DDS
to the node the launch started and checks the answer.

The launch framework comes from the distribution on a robot and from ``../shared/ros2-launch`` here
(installed by scripts/setup-env, never copied into the repository).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from rcl_interfaces.srv import GetParameters

from emotion_msgs.msg import FaceEmotionArray
from emotion_recognition.tools.process import LoggedProcess
from test.support.ament_index import ament_prefix_path_without
from test.support.models import ModelFiles
from test.support.node_rig import FACE_BOX, FACE_FRAME, NodeRig
from test.support.ros_graph import GraphClient, ros_environment

# Each test starts processes (node, launch, DDS peers): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "emotion_recognition.launch.py"
STARTUP_TIMEOUT_S = 60.0


def _process_groups() -> dict[int, list[int]]:
    """Live (non-zombie) processes by process group id, from /proc."""
    groups: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            groups.setdefault(int(fields[2]), []).append(int(entry.name))
    return groups


class LaunchProcess(LoggedProcess):
    """A launch file running in its own session (process group), its output captured to a file."""

    def __init__(
        self,
        launch_file: Path,
        arguments: list[str],
        domain_id: int,
        log_path: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            [sys.executable, "-m", "test.support.launch_runner", str(launch_file), *arguments],
            log_path,
            env={**ros_environment(domain_id), **(env or {})},
            cwd=REPO,
            new_session=True,
        )
        self.group = self.process.pid

    def wait_for_log(self, text: str, timeout_s: float = STARTUP_TIMEOUT_S) -> str:
        return super().wait_for_log(text, timeout_s)

    def members(self) -> list[int]:
        """Processes left in the launch's process group (the launch itself and what it started)."""
        return _process_groups().get(self.group, [])

    def wait_until_gone(self, timeout_s: float = 20.0) -> list[int]:
        """Wait until no process of the group is left; return those still there at the timeout."""
        deadline = time.monotonic() + timeout_s
        while self.members() and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.members()

    def ctrl_c(self, timeout_s: float = 30.0) -> int:
        """SIGINT to the whole process group, as Ctrl-C in a terminal; the launch's exit status."""
        os.killpg(self.group, signal.SIGINT)
        return self.process.wait(timeout=timeout_s)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.ctrl_c(timeout_s=20.0)
            except subprocess.TimeoutExpired:
                pass
        if self.members():
            os.killpg(self.group, signal.SIGKILL)
        self.process.wait(timeout=10)
        super().close()


@pytest.fixture
def start_launch(ros_domain: int, tmp_path: Path, emotion_models: ModelFiles) -> Iterator:
    """Start a launch file (default: the package's) with arguments; closed at the end of the test."""
    started: list[tuple[LaunchProcess, GraphClient | None]] = []

    def start(
        *arguments: str,
        launch_file: Path = LAUNCH_FILE,
        model: bool = True,
        env: dict[str, str] | None = None,
    ) -> LaunchProcess:
        if model and not emotion_models.trained and launch_file == LAUNCH_FILE:
            arguments = (*arguments, f"model_path:={emotion_models.tflite}")
        launch = LaunchProcess(
            launch_file, list(arguments), ros_domain, tmp_path / f"launch{len(started)}.log", env
        )
        started.append((launch, None))
        return launch

    def client() -> GraphClient:
        graph = GraphClient(ros_domain)
        started.append((None, graph))  # type: ignore[arg-type]
        return graph

    start.client = client  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for launch, graph in reversed(started):
            if graph is not None:
                graph.close()
            if launch is not None:
                launch.close()


def _rig(
    start_launch,
    launch: LaunchProcess,
    models: ModelFiles,
    namespace: str,
    image_topic: str,
    compressed: bool = False,
) -> NodeRig:
    client = start_launch.client()
    return NodeRig(launch, client, models, namespace, image_topic, compressed)  # type: ignore[arg-type]


def _assert_answers_the_face(rig: NodeRig) -> None:
    rig.wait_until_connected()
    sec = rig.stamp()
    rig.send_bgr(FACE_FRAME, sec)
    (face,) = rig.answer(sec).faces
    box = face.box
    found = type(FACE_BOX)(box.x_offset, box.y_offset, box.width, box.height)
    assert found.iou(FACE_BOX) > 0.4, (found, FACE_BOX)


def test_defaults_with_the_shipped_parameter_file_answer_a_face(start_launch, emotion_models) -> None:
    launch = start_launch()
    rig = _rig(start_launch, launch, emotion_models, "", "/image_raw")
    _assert_answers_the_face(rig)
    assert rig.lifecycle_state() == "active"
    log = launch.log()
    assert "emotion_recognition_node" in log and "process started" in log
    assert "active: subscribed to /image_raw" in log


def test_namespace_and_a_relative_image_topic_are_remapped(start_launch, emotion_models) -> None:
    launch = start_launch("namespace:=lab", "image_topic:=camera/image_raw", "use_sim_time:=true")
    rig = _rig(start_launch, launch, emotion_models, "/lab", "/lab/camera/image_raw")
    _assert_answers_the_face(rig)
    request = GetParameters.Request(names=["use_sim_time", "use_compressed"])
    values = rig.client.call(GetParameters, "/lab/emotion_recognition/get_parameters", request).values
    assert values[0].bool_value is True and values[1].bool_value is False


def test_use_compressed_reads_image_topic_compressed(start_launch, emotion_models) -> None:
    launch = start_launch("use_compressed:=true", "image_topic:=/cam/image_raw")
    rig = _rig(start_launch, launch, emotion_models, "", "/cam/image_raw/compressed", compressed=True)
    _assert_answers_the_face(rig)
    assert "active: subscribed to /cam/image_raw/compressed" in launch.log()


def test_autostart_false_waits_for_a_lifecycle_manager(start_launch, emotion_models) -> None:
    launch = start_launch("autostart:=false")
    launch.wait_for_log("waiting in 'unconfigured'")
    rig = _rig(start_launch, launch, emotion_models, "", "/image_raw")
    assert rig.lifecycle_state() == "unconfigured"
    assert rig.change_state(Transition.TRANSITION_CONFIGURE) is True
    # Lifecycle publishers: the outputs exist from configure on, before activate.
    rig.client.wait_until(lambda: rig.emotions.subscription.get_publisher_count() == 1, "inactive emotions")
    assert rig.images.get_subscription_count() == 0 and rig.emotions.messages == []
    assert rig.change_state(Transition.TRANSITION_ACTIVATE) is True
    _assert_answers_the_face(rig)


def test_a_missing_model_path_fails_configure_and_a_corrected_one_answers(start_launch, emotion_models):
    missing = "/nonexistent/emotion_model_int8.tflite"
    launch = start_launch(f"model_path:={missing}", model=False)
    log = launch.wait_for_log("configure failed")
    assert f"model file '{missing}' (parameter model_path) does not exist" in log
    assert launch.process.poll() is None  # the node and the launch keep running
    rig = _rig(start_launch, launch, emotion_models, "", "/image_raw")
    assert rig.lifecycle_state() == "unconfigured"
    assert rig.set_parameters(model_path=str(emotion_models.tflite))[0].successful
    assert rig.change_state(Transition.TRANSITION_CONFIGURE) is True
    assert rig.change_state(Transition.TRANSITION_ACTIVATE) is True
    _assert_answers_the_face(rig)


def _readme_two_camera_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```python\n(# my_cameras\.launch\.py\n.*?)```", readme, re.DOTALL)
    assert match, "the README's two-camera example (# my_cameras.launch.py) is missing"
    return match.group(1)


def test_the_readme_two_camera_include_example(start_launch, emotion_models, tmp_path) -> None:
    assert emotion_models.trained, "the example uses the shipped model"
    example = tmp_path / "my_cameras.launch.py"
    example.write_text(_readme_two_camera_example(), encoding="utf-8")
    launch = start_launch(launch_file=example)
    for name in ("front_camera", "rear_camera"):
        rig = _rig(start_launch, launch, emotion_models, f"/{name}", f"/{name}/image_raw")
        _assert_answers_the_face(rig)


def test_ctrl_c_ends_the_launch_with_status_0_and_leaves_no_process(start_launch, emotion_models) -> None:
    launch = start_launch("namespace:=ctrl_c")
    rig = _rig(start_launch, launch, emotion_models, "/ctrl_c", "/ctrl_c/image_raw")
    _assert_answers_the_face(rig)
    assert len(launch.members()) >= 2  # the launch and the node
    assert launch.ctrl_c() == 0, launch.log()
    assert launch.wait_until_gone() == [], launch.log()
    assert "Traceback" not in launch.log()


@pytest.mark.parametrize(
    ("arguments", "package"),
    [(["start_camera:=true"], "v4l2_camera"), (["start_rviz:=true", "namespace:=front"], "rviz2")],
    ids=["camera", "rviz"],
)
def test_a_missing_optional_package_fails_before_anything_starts(
    start_launch, tmp_path, arguments: list[str], package: str
) -> None:
    """Without v4l2_camera or rviz2 the launch exits with one message naming the package and its
    install command, starts no process and leaves no temporary file (the namespaced RViz
    configuration). Where the package is installed, the launch runs with an ament index that leaves it
    out (test/support/ament_index.py), so the case is the same on every machine."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    index = tmp_path / "index"
    index.mkdir()
    ament_prefix_path = ament_prefix_path_without([package], index)
    launch = start_launch(*arguments, env={"TMPDIR": str(temp), "AMENT_PREFIX_PATH": ament_prefix_path})
    status = launch.process.wait(timeout=STARTUP_TIMEOUT_S)
    log = launch.log()
    assert status != 0, log
    errors = [line for line in log.splitlines() if "needs the package" in line]
    assert len(errors) == 1, log
    assert package in errors[0] and f"ros-<distro>-{package.replace('_', '-')}" in errors[0], log
    assert "Nothing was started" in errors[0]
    assert "process started" not in log and "Traceback" not in log, log
    assert launch.wait_until_gone(timeout_s=5.0) == []
    assert list(temp.iterdir()) == []


# A stand-in for the v4l2_camera package (not installable here): an executable in an ament prefix of
# its own, found by launch as the real one would be. It reports the Fast DDS profile it was given and
# publishes 30 real 640x480 rgb8 frames (921,600 bytes each, more than Fast DDS's default 512 KiB
# shared-memory segment) on image_raw, which the launch file remaps to image_topic.
STAND_IN_CAMERA = """
import os, sys, time
import numpy as np
import rclpy
from sensor_msgs.msg import Image

rclpy.init(args=sys.argv)
node = rclpy.create_node("camera", automatically_declare_parameters_from_overrides=True)
print("stand-in camera profile:", os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "<none>"), flush=True)
frame = np.load(os.environ["STAND_IN_CAMERA_FRAME"])
publisher = node.create_publisher(Image, "image_raw", 10)
while publisher.get_subscription_count() == 0 or not os.path.exists(os.environ["STAND_IN_CAMERA_GO"]):
    time.sleep(0.05)  # the node's subscription, and the test's, are ready
time.sleep(1.0)
for sec in range(1, 31):
    msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="rgb8", step=frame.shape[1] * 3)
    msg.header.stamp.sec, msg.header.frame_id = sec, "camera"
    msg.data = frame.tobytes()
    publisher.publish(msg)
    time.sleep(0.2)
print("stand-in camera sent 30 frames", flush=True)
rclpy.spin(node)
"""


def _stand_in_camera(tmp_path: Path) -> dict[str, str]:
    """Install the stand-in camera into an ament prefix below ``tmp_path``; the environment for it."""
    import cv2

    from test.support.images import multi_face_frame

    prefix = tmp_path / "camera_prefix"
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    (index / "v4l2_camera").write_text("", encoding="utf-8")
    executable = prefix / "lib" / "v4l2_camera" / "v4l2_camera_node"
    executable.parent.mkdir(parents=True)
    executable.write_text(f"#!{sys.executable}\n{STAND_IN_CAMERA}", encoding="utf-8")
    executable.chmod(0o755)
    frame, _ = multi_face_frame(640, 480, 1)
    np.save(tmp_path / "frame.npy", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    return {
        "AMENT_PREFIX_PATH": os.pathsep.join([str(prefix), os.environ.get("AMENT_PREFIX_PATH", "")]),
        "STAND_IN_CAMERA_FRAME": str(tmp_path / "frame.npy"),
        "STAND_IN_CAMERA_GO": str(tmp_path / "go"),
    }


def test_the_camera_gets_the_large_image_profile_and_every_640x480_frame_is_answered(
    start_launch, emotion_models, tmp_path
) -> None:
    launch = start_launch("start_camera:=true", env=_stand_in_camera(tmp_path))
    client = start_launch.client()
    emotions = client.subscribe(FaceEmotionArray, "/emotions")
    client.wait_until(lambda: emotions.subscription.get_publisher_count() == 1, "the node's emotions")
    time.sleep(1.0)  # the node's side of the match
    (tmp_path / "go").touch()
    launch.wait_for_log("stand-in camera sent 30 frames", timeout_s=120)
    log = launch.log()
    given = log.split("stand-in camera profile: ")[1].split()[0] if "stand-in camera profile: " in log else ""
    assert given.endswith("share/emotion_recognition/config/fastdds_large_images.xml"), log
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len({m.header.stamp.sec for m in emotions.messages}) < 30:
        time.sleep(0.1)
    answered = sorted({m.header.stamp.sec for m in emotions.messages if 1 <= m.header.stamp.sec <= 30})
    assert answered == list(range(1, 31)), f"answered {len(answered)} of 30: {answered}\n{launch.log()}"
    assert all(len(m.faces) == 1 for m in emotions.messages if 1 <= m.header.stamp.sec <= 30)


def test_rviz_config_shows_the_annotated_image_topic() -> None:
    import yaml

    config = yaml.safe_load((REPO / "config" / "emotion_recognition.rviz").read_text(encoding="utf-8"))
    images = [
        d for d in config["Visualization Manager"]["Displays"] if d["Class"] == "rviz_default_plugins/Image"
    ]
    assert len(images) == 1
    assert images[0]["Topic"]["Value"] == "/image_annotated"
    # The node publishes reliable images; an RViz subscription that is reliable or best effort matches.
    assert images[0]["Topic"]["Reliability Policy"] in ("Reliable", "Best Effort")


def test_a_package_can_be_left_out_of_the_ament_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper behind the missing-package case: an installed package (the stand-in camera) is no
    longer found, and every other package of the same prefixes still is."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    monkeypatch.setenv("AMENT_PREFIX_PATH", _stand_in_camera(tmp_path)["AMENT_PREFIX_PATH"])
    assert get_package_prefix("v4l2_camera") == str(tmp_path / "camera_prefix")
    node_prefix = get_package_prefix("emotion_recognition")
    (tmp_path / "index").mkdir()
    monkeypatch.setenv("AMENT_PREFIX_PATH", ament_prefix_path_without(["v4l2_camera"], tmp_path / "index"))
    with pytest.raises(PackageNotFoundError):
        get_package_prefix("v4l2_camera")
    assert Path(get_package_prefix("emotion_recognition")).resolve() == Path(node_prefix).resolve()
    executable = Path(get_package_prefix("emotion_recognition")) / "lib" / "emotion_recognition"
    assert (executable / "emotion_recognition_node").is_file()
