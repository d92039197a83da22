"""The repository builds as a robot would build it: a throw-away colcon workspace with the repository
in src/, the README's `colcon build` line, and both packages installed with everything a user runs.

The build uses the ROS packages of the development environment (the venv's ROS wheels), the same
colcon and CMake code paths as on a robot with ROS installed from apt.
"""

from __future__ import annotations

import ast
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test.conftest import REPO_ROOT

# Each test starts processes (node, DDS peers, builds): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

# The command under "On a robot" in the README, run verbatim in the workspace root.
README_BUILD_PREFIX = "colcon build "


def readme_robot_build_command() -> str:
    """The README's `colcon build` line from its "On a robot" section."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## On a robot", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in section.splitlines() if line.strip().startswith(README_BUILD_PREFIX)]
    assert len(commands) == 1, f"expected one `colcon build` line under 'On a robot', got {commands}"
    return commands[0]


def readme_rosdep_paths() -> list[str]:
    """The `--from-paths` arguments of the README's `rosdep install` line."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## On a robot", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("rosdep install ")]
    assert len(lines) == 1, f"expected one `rosdep install` line under 'On a robot', got {lines}"
    words = shlex.split(lines[0])
    paths = words[words.index("--from-paths") + 1 :]
    return paths[: next((i for i, w in enumerate(paths) if w.startswith("-")), len(paths))]


def repository_files() -> list[str]:
    """Files of the working tree a clone would have: tracked plus untracked-but-not-ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]


def declared_console_scripts() -> list[str]:
    """Executable names of setup.py's CONSOLE_SCRIPTS list."""
    tree = ast.parse((REPO_ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "CONSOLE_SCRIPTS" for t in targets):
                return [entry.split("=")[0].strip() for entry in ast.literal_eval(node.value)]
    raise AssertionError("setup.py has no CONSOLE_SCRIPTS list")


@pytest.fixture(scope="module")
def built_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace ws/src/emotion_recognition (a copy of the repository), built by the README line."""
    workspace = tmp_path_factory.mktemp("ws")
    source = workspace / "src" / "emotion_recognition"
    for name in repository_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the build must not see the repository's own sources
    result = subprocess.run(
        ["bash", "-c", readme_robot_build_command()],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"colcon build failed:\n{result.stdout}\n{result.stderr}"
    return workspace


def test_readme_build_finds_both_packages(built_workspace: Path) -> None:
    listed = subprocess.run(
        ["colcon", "list", "--names-only", *shlex.split(readme_robot_build_command())[2:]],
        cwd=built_workspace,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert sorted(listed) == ["emotion_msgs", "emotion_recognition"]


def test_emotion_msgs_is_installed(built_workspace: Path) -> None:
    prefix = built_workspace / "install" / "emotion_msgs"
    for name in ("FaceEmotion", "FaceEmotionArray"):
        assert (prefix / "share" / "emotion_msgs" / "msg" / f"{name}.msg").is_file()
    assert list(prefix.glob("lib/python3*/site-packages/emotion_msgs/msg/_face_emotion_array.py"))
    assert (prefix / "lib" / "libemotion_msgs__rosidl_typesupport_fastrtps_c.so").is_file()


def test_emotion_recognition_is_installed_with_executables_and_data(built_workspace: Path) -> None:
    prefix = built_workspace / "install" / "emotion_recognition"
    source = built_workspace / "src" / "emotion_recognition"
    share = prefix / "share" / "emotion_recognition"
    assert (
        prefix / "share" / "ament_index" / "resource_index" / "packages" / "emotion_recognition"
    ).is_file()
    assert (share / "package.xml").is_file()
    # Every launch/config/model file is installed into the share directory.
    data_files = [
        p for folder in ("launch", "config", "models") for p in (source / folder).rglob("*") if p.is_file()
    ]
    assert any(p.parts[-2] == "launch" for p in data_files), "no launch file in the repository"
    for path in data_files:
        assert (share / path.relative_to(source)).is_file(), f"{path.relative_to(source)} not installed"
    # Every executable declared in setup.py is where `ros2 run` looks for it.
    scripts = declared_console_scripts()
    assert "emotion_recognition_node" in scripts
    for name in scripts:
        executable = prefix / "lib" / "emotion_recognition" / name
        assert executable.is_file() and os.access(executable, os.X_OK), f"{name} not installed"
    # Every module of the package is installed (a sub-package without __init__.py would be missing).
    site_packages = next(prefix.glob("lib/python3*/site-packages"))
    for module in (source / "emotion_recognition").rglob("*.py"):
        installed = site_packages / module.relative_to(source)
        assert installed.is_file(), f"{module.relative_to(source)} not installed"
    assert not (site_packages / "training").exists(), "training/ must not be installed"


def test_installed_tools_start_after_sourcing_the_workspace(built_workspace: Path) -> None:
    """The installed executables run (their entry points resolve from the install space). The node
    is left out: it has no --help and would start spinning."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
    env["AMENT_PREFIX_PATH"] = sys.prefix
    for name in [n for n in declared_console_scripts() if not n.endswith("_node")]:
        executable = (
            built_workspace / "install" / "emotion_recognition" / "lib" / "emotion_recognition" / name
        )
        result = subprocess.run(
            ["bash", "-c", f". install/setup.bash && {shlex.quote(str(executable))} --help"],
            cwd=built_workspace,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, f"{name} --help failed:\n{result.stderr}"
        assert "usage:" in result.stdout, name


def test_installed_packages_import_after_sourcing_the_workspace(built_workspace: Path) -> None:
    """`source install/setup.bash` is enough to use both packages, from the install space."""
    probe = (
        "import emotion_msgs.msg, emotion_recognition.spec as spec\n"
        "from ament_index_python.packages import get_package_share_directory as share\n"
        "print(emotion_msgs.msg.FaceEmotion.HAPPY)\n"
        "print(spec.__file__)\n"
        "print(share('emotion_recognition'))\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH")
    }
    env["AMENT_PREFIX_PATH"] = sys.prefix  # the ROS "distribution": the venv's wheels
    result = subprocess.run(
        ["bash", "-c", f". install/setup.bash && {shlex.quote(sys.executable)} -c {shlex.quote(probe)}"],
        cwd=built_workspace,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    happy, spec_file, share_dir = result.stdout.split()
    assert happy == "happy"
    assert Path(spec_file).is_relative_to(built_workspace / "install" / "emotion_recognition")
    assert (
        Path(share_dir)
        == built_workspace / "install" / "emotion_recognition" / "share" / "emotion_recognition"
    )


def test_readme_rosdep_paths_find_both_packages_and_never_the_test_vision_msgs(built_workspace: Path) -> None:
    """rosdep crawls `--from-paths` with catkin_pkg: it must find both packages (emotion_msgs is a
    dependency of emotion_recognition, so `--ignore-src` needs it in the paths) and never the
    test-only vision_msgs, which would hide the distribution's package."""
    from catkin_pkg.packages import find_packages

    found: dict[str, str] = {}
    for path in readme_rosdep_paths():
        for relative, package in find_packages(str(built_workspace / path)).items():
            found[package.name] = str(Path(path) / relative)
    assert sorted(found) == ["emotion_msgs", "emotion_recognition"]
    test_folder = built_workspace / "src" / "emotion_recognition" / "test"
    assert (test_folder / "interfaces" / "vision_msgs" / "package.xml").is_file()
    assert find_packages(str(test_folder)) == {}
    listed = subprocess.run(
        ["colcon", "list", "--names-only", "--base-paths", str(test_folder)],
        cwd=built_workspace,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert listed == []
