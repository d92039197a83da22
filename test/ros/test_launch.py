"""What can be checked of the launch file without launch_ros (not installable here): it compiles,
declares the documented arguments, starts an executable that setup.py installs and that runs, with the
shipped parameter file and RViz configuration, which point at the node's real names."""

from __future__ import annotations

import ast
import os
import py_compile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from test.conftest import BackgroundProcess, next_ros_domain_id

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "emotion_recognition.launch.py"


def _constants(path: Path) -> dict[str, object]:
    """Module-level ``NAME = <literal>`` assignments of a Python file."""
    constants = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            try:
                constants[node.target.id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return constants


def _launch_arguments() -> set[str]:
    tree = ast.parse(LAUNCH_FILE.read_text(encoding="utf-8"))
    return {
        call.args[0].value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        and getattr(call.func, "id", None) == "DeclareLaunchArgument"
        and call.args
        and isinstance(call.args[0], ast.Constant)
    }


def test_launch_file_compiles(tmp_path: Path) -> None:
    py_compile.compile(str(LAUNCH_FILE), cfile=str(tmp_path / "launch.pyc"), doraise=True)
    assert "generate_launch_description" in {
        n.name for n in ast.parse(LAUNCH_FILE.read_text(encoding="utf-8")).body if isinstance(n, ast.FunctionDef)
    }


def test_launch_file_declares_the_documented_arguments() -> None:
    assert {"image_topic", "namespace", "params_file", "model_path", "start_camera", "start_rviz"} <= _launch_arguments()


def test_launched_executable_is_a_console_script_of_this_package() -> None:
    launch = _constants(LAUNCH_FILE)
    setup = _constants(REPO / "setup.py")
    scripts = dict(entry.replace(" ", "").split("=", 1) for entry in setup["CONSOLE_SCRIPTS"])
    assert scripts[launch["EXECUTABLE"]] == "emotion_recognition.ros.node:main"
    assert launch["PACKAGE"] == setup["PACKAGE_NAME"] == ET.parse(REPO / "package.xml").getroot().findtext("name")
    from emotion_recognition.ros import node

    assert callable(node.main)
    assert launch["NODE_NAME"] == node.NODE_NAME


def test_launch_defaults_are_installed_files() -> None:
    text = LAUNCH_FILE.read_text(encoding="utf-8")
    setup_text = (REPO / "setup.py").read_text(encoding="utf-8")
    for name in ("emotion_recognition.yaml", "emotion_recognition.rviz"):
        assert f'"{name}"' in text
        assert (REPO / "config" / name).is_file()
    assert 'share_files("config")' in setup_text and 'share_files("launch")' in setup_text


def test_rviz_config_shows_the_annotated_image_topic() -> None:
    launch = _constants(LAUNCH_FILE)
    config = yaml.safe_load((REPO / "config" / "emotion_recognition.rviz").read_text(encoding="utf-8"))
    images = [d for d in config["Visualization Manager"]["Displays"] if d["Class"] == "rviz_default_plugins/Image"]
    assert len(images) == 1
    assert images[0]["Topic"]["Value"] == launch["RVIZ_IMAGE_TOPIC"] == "/image_annotated"
    # The node publishes reliable images; an RViz subscription that is reliable or best effort matches.
    assert images[0]["Topic"]["Reliability Policy"] in ("Reliable", "Best Effort")


@pytest.mark.slow
def test_installed_executable_starts_and_stops_cleanly() -> None:
    """The console script the launch file starts (installed by the colcon build of scripts/setup-env)."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(next_ros_domain_id()), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", RCUTILS_LOGGING_BUFFERED_STREAM="0")
    with BackgroundProcess(["emotion_recognition_node", "--ros-args", "-p", "autostart:=false"], env=env) as process:
        deadline = time.monotonic() + 60
        while "waiting in 'unconfigured'" not in process.output():
            assert process.process.poll() is None, process.output()
            assert time.monotonic() < deadline, process.output()
            time.sleep(0.1)
        assert process.stop() == 0, process.output()


def _launch_helpers() -> dict:
    """The launch file's constants and pure helper functions, executed without launch/launch_ros."""
    tree = ast.parse(LAUNCH_FILE.read_text(encoding="utf-8"))
    keep = [
        n for n in tree.body
        if (isinstance(n, ast.FunctionDef) and n.name in ("_is_true", "_resolve", "_rviz_config_for"))
        or (isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant))
    ]
    namespace: dict = {"os": os, "tempfile": __import__("tempfile")}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(LAUNCH_FILE), "exec"), namespace)
    return namespace


def test_launch_helpers_point_rviz_at_the_namespaced_annotated_image() -> None:
    helpers = _launch_helpers()
    assert helpers["_resolve"]("image_annotated", "") == "/image_annotated"
    assert helpers["_resolve"]("image_annotated", "front_camera") == "/front_camera/image_annotated"
    assert helpers["_resolve"]("/abs/topic", "front_camera") == "/abs/topic"
    assert helpers["_is_true"]("True") and helpers["_is_true"]("1") and not helpers["_is_true"]("false")
    template = str(REPO / "config" / "emotion_recognition.rviz")
    assert helpers["_rviz_config_for"]("", template) == template
    rewritten = Path(helpers["_rviz_config_for"]("front_camera", template))
    try:
        config = yaml.safe_load(rewritten.read_text(encoding="utf-8"))
        (display,) = [d for d in config["Visualization Manager"]["Displays"] if d["Class"] == "rviz_default_plugins/Image"]
        assert display["Topic"]["Value"] == "/front_camera/image_annotated"
    finally:
        rewritten.unlink()
