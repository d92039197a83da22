"""Where the package's shipped data files (models/, config/) are found.

Installed (colcon, ``ros2 run``): in the package's share directory, found through the ament index.
Run from a source checkout: the same relative path under the repository root.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_NAME = "emotion_recognition"
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def search_paths(relative: str) -> list[Path]:
    """Candidate locations of ``relative`` (e.g. ``"config/emotion_recognition.yaml"``), in order."""
    candidates = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            candidates.append(Path(get_package_share_directory(PACKAGE_NAME)) / relative)
        except PackageNotFoundError:
            pass
    except ImportError:  # ament_index_python is part of every ROS install; tolerate its absence
        pass
    candidates.append(SOURCE_ROOT / relative)
    return candidates


def shipped_file(relative: str) -> Path | None:
    """The first existing location of ``relative`` (see :func:`search_paths`), or ``None``."""
    return next((path for path in search_paths(relative) if path.is_file()), None)
