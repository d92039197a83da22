"""Build script of the emotion_recognition ROS 2 package (ament_python)."""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE_NAME = "emotion_recognition"
HERE = Path(__file__).resolve().parent


def share_files(folder: str) -> list[tuple[str, list[str]]]:
    """Return data_files entries installing every file below ``folder`` into share/<package>/folder.

    Sub-folders keep their relative place; paths are relative to this file, as setuptools wants.
    """
    entries: dict[str, list[str]] = {}
    for path in sorted(HERE.glob(f"{folder}/**/*")):
        if path.is_file() and "__pycache__" not in path.parts:
            relative = path.relative_to(HERE)
            target = str(Path("share") / PACKAGE_NAME / relative.parent)
            entries.setdefault(target, []).append(str(relative))
    return sorted(entries.items())


# Console scripts, installed into lib/emotion_recognition (see setup.cfg) for `ros2 run`.
# Helpers add their executables here, one line each, keeping the list sorted:
#   node helper:  emotion_recognition_node
#   bag helper:   emotion_bag_process, emotion_bag_replay, emotion_demo
CONSOLE_SCRIPTS: list[str] = [
    "emotion_bag_process = emotion_recognition.tools.bag_process:main",
    "emotion_bag_replay = emotion_recognition.tools.bag_replay:main",
    "emotion_demo = emotion_recognition.tools.demo:main",
    "emotion_recognition_node = emotion_recognition.ros.node:main",
    "emotion_web = emotion_recognition.web.server:main",
]

setup(
    name=PACKAGE_NAME,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE_NAME, f"{PACKAGE_NAME}.*"]),
    # The web server's page and API description are served from the package itself.
    package_data={f"{PACKAGE_NAME}.web": ["static/*", "openapi.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE_NAME}"]),
        (f"share/{PACKAGE_NAME}", ["package.xml"]),
        *share_files("launch"),
        *share_files("config"),
        *share_files("models"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="emotion_recognition maintainers",
    maintainer_email="maintainers@users.noreply.b-seed-55b56df1.example",
    description="Facial emotion recognition for ROS 2 (OpenCV Haar faces, FER2013 CNN).",
    license="Apache-2.0",
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
