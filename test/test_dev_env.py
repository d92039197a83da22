"""The development environment made by scripts/setup-env and entered with scripts/dev-env."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from test.conftest import DEV_ENV, REPO_ROOT
from test.test_workspace_build import declared_console_scripts

# Each test starts processes (node, DDS peers, builds): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

SETUP_ENV = REPO_ROOT / "scripts" / "setup-env"


def run_in_dev_env(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``args`` through scripts/dev-env from ``cwd`` with a clean PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(DEV_ENV), *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_setup_env_rerun_does_nothing_when_inputs_are_unchanged() -> None:
    subprocess.run([str(SETUP_ENV)], check=True, capture_output=True)
    stamps = [
        REPO_ROOT / ".venv" / ".setup-env-requirements.sha256",
        REPO_ROOT / ".ros_ws" / ".setup-env-workspace.sha256",
    ]
    before = [path.stat().st_mtime_ns for path in stamps]
    again = subprocess.run([str(SETUP_ENV)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "" and again.stderr == "", "a warm set-up must not install or build"
    assert [path.stat().st_mtime_ns for path in stamps] == before


def test_wheel_cmake_files_name_no_build_container_path() -> None:
    """The ROS wheels' CMake files point at this interpreter, not at /opt/python of their build."""
    offenders = [
        str(path)
        for path in (Path(sys.prefix) / "share").glob("*/cmake/*.cmake")
        if "/opt/python/" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
    python_include = sysconfig.get_paths()["include"]
    exported = (Path(sys.prefix) / "share" / "std_msgs" / "cmake").glob("*generator_py*Export.cmake")
    assert any(python_include in path.read_text(encoding="utf-8") for path in exported)


def test_rewrite_maps_container_paths_to_this_interpreter() -> None:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        from fix_wheel_cmake_paths import rewrite_text
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    text = (
        'INTERFACE_INCLUDE_DIRECTORIES "/opt/python/cp311-cp311/include/python3.11;'
        '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include"'
    )
    assert rewrite_text(text, "/py/include", "/np/include") == (
        'INTERFACE_INCLUDE_DIRECTORIES "/py/include;/np/include"'
    )


def test_dev_env_finds_repository_packages_from_any_directory(tmp_path: Path) -> None:
    probe = (
        "import training, emotion_recognition, emotion_msgs.msg, vision_msgs.msg\n"
        "from ament_index_python.packages import get_package_share_directory as share\n"
        "print(training.__file__); print(emotion_recognition.__file__); print(share('emotion_recognition'))"
    )
    result = run_in_dev_env("python", "-c", probe, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    training_file, package_file, share_dir = result.stdout.split()
    assert Path(training_file).parent == REPO_ROOT / "training"
    assert Path(package_file).parent == REPO_ROOT / "emotion_recognition"
    assert (Path(share_dir) / "package.xml").is_file()


def test_console_scripts_run_in_dev_env(tmp_path: Path) -> None:
    """Each executable (except nodes, which have no --help and would start spinning) runs from PATH."""
    tools = [name for name in declared_console_scripts() if not name.endswith("_node")]
    assert tools, "setup.py declares no console script besides the node"
    for name in tools:
        result = run_in_dev_env(name, "--help", cwd=tmp_path)
        assert result.returncode == 0, f"{name} --help failed:\n{result.stderr}"
        assert "usage:" in result.stdout, name
