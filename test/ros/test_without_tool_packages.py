"""The node needs none of matplotlib, scikit-image and tqdm (only the tools do): it starts and answers a
face with all three missing, and a tool that misses one stops with one line naming the package and
its install commands.

"Missing" is made real inside the started process: ``sys.modules[name] = None`` makes every import of
the package fail as if it were not installed. In the distribution-like environment
(scripts/distro-env) the three are not installed at all, and the same tests run there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from emotion_recognition.tools.photos import PHOTO_DIR_VARIABLE
from emotion_recognition.tools.process import LoggedProcess
from test.support.models import ModelFiles
from test.support.node_rig import FACE_FRAME, NodeRig
from test.support.ros_graph import PARAMS_FILE, GraphClient, model_args, ros_environment

# Each test starts processes (node, launch, DDS peers): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

TOOL_PACKAGES = ("matplotlib", "skimage", "tqdm")


def _without(packages: tuple[str, ...], code: str) -> list[str]:
    """``python -c`` running ``code`` with ``packages`` impossible to import."""
    block = f"import sys; sys.modules.update(dict.fromkeys({packages!r}))"
    return [sys.executable, "-c", f"{block}\n{code}"]


def test_the_node_answers_a_face_without_matplotlib_scikit_image_and_tqdm(
    ros_domain: int, tmp_path: Path, emotion_models: ModelFiles
) -> None:
    code = (
        "from emotion_recognition.ros.node import main\n"
        "import sys\n"
        "main()\n"
        f"assert not any(sys.modules.get(name) for name in {TOOL_PACKAGES!r})\n"
    )
    command = _without(TOOL_PACKAGES, code) + [
        "--ros-args",
        "--params-file",
        str(PARAMS_FILE),
        *model_args(emotion_models),
    ]
    node = LoggedProcess(command, tmp_path / "node.log", env=ros_environment(ros_domain), cwd="/")
    client = GraphClient(ros_domain)
    try:
        rig = NodeRig(node, client, emotion_models, "", "/image")  # type: ignore[arg-type]
        rig.wait_until_connected()
        sec = rig.stamp()
        rig.send_bgr(FACE_FRAME, sec)
        assert len(rig.answer(sec).faces) == 1
    finally:
        client.close()
        status = node.stop()
    assert status == 0 and "Traceback" not in node.log(), node.log()


def _run_tool(module: str, arguments: list[str], missing: str, tmp_path: Path) -> subprocess.CompletedProcess:
    code = f"import sys\nfrom {module} import main\nsys.exit(main({arguments!r}))"
    # The photos as the tools find them on a robot: from the packages, not from the folder the test
    # environment may point at (tools/photos.py PHOTO_DIR_VARIABLE).
    env = {name: value for name, value in ros_environment(0).items() if name != PHOTO_DIR_VARIABLE}
    return subprocess.run(
        _without((missing,), code),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )


def test_emotion_bag_process_without_tqdm_names_the_package(tmp_path: Path) -> None:
    bag = str(tmp_path / "some_bag")
    result = _run_tool("emotion_recognition.tools.bag_process", [bag], "tqdm", tmp_path)
    assert result.returncode == 1, result
    assert result.stderr.strip() == (
        "emotion_bag_process: error: emotion_bag_process needs the Python package tqdm, which is not "
        "installed: sudo apt install python3-tqdm (with ROS from apt), or pip install tqdm (in a venv)"
    ), result.stderr


def test_emotion_bag_process_without_matplotlib_names_the_package(tmp_path: Path) -> None:
    result = _run_tool(
        "emotion_recognition.tools.bag_process", [str(tmp_path / "some_bag")], "matplotlib", tmp_path
    )
    assert result.returncode == 1, result
    assert "needs the Python package matplotlib" in result.stderr and "python3-matplotlib" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_demo_sample_without_scikit_image_names_the_package(tmp_path: Path) -> None:
    output = str(tmp_path / "out")
    result = _run_tool("emotion_recognition.tools.demo", ["--output", output], "skimage", tmp_path)
    assert result.returncode == 1, result
    assert "emotion_demo: error: the built-in sample needs the Python package scikit-image" in result.stderr
    assert "sudo apt install python3-skimage" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_package_xml_declares_rosbags_and_leaves_the_tool_only_packages_optional() -> None:
    """rosbags has a rosdep key (python3-rosbags-pip); tqdm, matplotlib and scikit-image are only
    named by the tools' messages, not pulled onto every robot that runs the node."""
    import xml.etree.ElementTree as ET

    from emotion_recognition.tools.optional import PACKAGES

    root = ET.parse(Path(__file__).resolve().parents[2] / "package.xml").getroot()
    declared = {element.text for element in root.iter() if element.tag in ("depend", "exec_depend")}
    assert "python3-rosbags-pip" in declared
    assert not declared & {apt for _, apt in PACKAGES.values()}, declared
    assert {"python3-opencv", "python3-numpy", "python3-yaml"} <= declared
