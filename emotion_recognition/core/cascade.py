"""Where the frontal-face Haar cascade comes from, whatever OpenCV is installed.

The node, the bag tools and the benchmarks all find the cascade here (through
:class:`emotion_recognition.core.detection.FaceDetector`). In order:

1. an explicit path (the node's ``detector.cascade_path`` parameter), which must exist;
2. ``cv2.data.haarcascades``: the PyPI wheels (opencv-python, opencv-python-headless) ship the
   cascades inside the package;
3. the distribution's data package: a ROS 2 install gets OpenCV from apt (rosdep key
   ``python3-opencv``), whose ``cv2`` has no ``cv2.data``; Debian and Ubuntu ship the cascades in
   the separate ``opencv-data`` package, under :data:`SYSTEM_CASCADE_DIRS`.

When none exists, :class:`CascadeNotFoundError` says what to install for the OpenCV in use
(:func:`install_hint`): apt's ``opencv-data`` for a distribution's OpenCV, not a pip OpenCV on top
of it (that would also pull numpy 2 over the system numpy).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2

CASCADE_FILE = "haarcascade_frontalface_default.xml"
# Where Debian's and Ubuntu's opencv-data put the cascades (OpenCV 4; older releases: opencv/).
SYSTEM_CASCADE_DIRS: tuple[str, ...] = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades")
# Where a distribution installs its Python packages (Debian/Ubuntu: dist-packages; Fedora: lib64).
_SYSTEM_PYTHON_DIRS: tuple[str, ...] = ("/usr/lib/python3/", "/usr/lib64/python3", "/usr/lib/python3.")


class CascadeNotFoundError(FileNotFoundError):
    """No Haar cascade file: the message names the places searched and what to install."""


def cascade_dirs(cv2_module: object = cv2) -> list[Path]:
    """The directories searched for the cascade, in order: ``cv2.data.haarcascades`` (when this
    OpenCV has it), then :data:`SYSTEM_CASCADE_DIRS`."""
    dirs = []
    packaged = getattr(getattr(cv2_module, "data", None), "haarcascades", "")
    if packaged:
        dirs.append(Path(packaged))
    dirs.extend(Path(d) for d in SYSTEM_CASCADE_DIRS)
    return dirs


def _os_release(path: str = "/etc/os-release") -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as release:
            for line in release:
                key, _, value = line.strip().partition("=")
                values[key] = value.strip('"')
    except OSError:
        pass
    return values


def is_distribution_opencv(cv2_file: str) -> bool:
    """Whether the ``cv2`` module at ``cv2_file`` was installed by the system's package manager."""
    return cv2_file.startswith(_SYSTEM_PYTHON_DIRS)


def install_hint(cv2_file: str | None = None, os_release: dict[str, str] | None = None) -> str:
    """The command that provides the cascade for this OpenCV on this system.

    A distribution's OpenCV (``cv2`` under ``/usr/lib/python3...``) gets its data from the same
    package manager: ``sudo apt install opencv-data`` on Debian and Ubuntu. A pip OpenCV without
    ``cv2.data`` (a custom build, or OpenCV 5) is replaced by a 4.x wheel, which ships the cascades.
    """
    cv2_file = cv2_file if cv2_file is not None else str(getattr(cv2, "__file__", ""))
    release = os_release if os_release is not None else _os_release()
    family = f"{release.get('ID', '')} {release.get('ID_LIKE', '')}".split()
    if is_distribution_opencv(cv2_file):
        if {"debian", "ubuntu"} & set(family):
            return "sudo apt install opencv-data"
        return "install your distribution's OpenCV data package (Debian/Ubuntu: sudo apt install opencv-data)"
    return "pip install 'opencv-python-headless>=4,<5'"


def find_cascade(cascade_path: str = "", directories: Sequence[Path] | None = None) -> str:
    """Path of the frontal-face cascade: ``cascade_path`` when given, else the first of
    ``directories`` (default: :func:`cascade_dirs`) that holds :data:`CASCADE_FILE`.

    Raises:
        CascadeNotFoundError: ``cascade_path`` does not exist, or no directory holds the cascade (the
            message names the directories searched and the install command, see :func:`install_hint`).
    """
    if cascade_path:
        path = os.path.expanduser(cascade_path)
        if not os.path.isfile(path):
            raise CascadeNotFoundError(f"Haar cascade file {path!r} (detector.cascade_path) does not exist")
        return path
    searched = list(directories) if directories is not None else cascade_dirs()
    for directory in searched:
        candidate = directory / CASCADE_FILE
        if candidate.is_file():
            return str(candidate)
    where = ", ".join(str(d) for d in searched)
    raise CascadeNotFoundError(
        f"Haar cascade {CASCADE_FILE} not found (OpenCV {cv2.__version__} at "
        f"{getattr(cv2, '__file__', '?')}; looked in {where}). Install it: {install_hint()}; "
        "or set detector.cascade_path to the file."
    )
