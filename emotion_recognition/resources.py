"""Where the package's shipped data files (models/, config/) are found, and which model file to load.

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


SHIPPED_MODEL_FILE = "emotion_model_int8.tflite"


def model_search_paths() -> list[Path]:
    """Where the shipped model is looked for, in order: the installed package's share directory (found
    through the ament index), then ``models/`` of the source checkout this module belongs to."""
    return search_paths(f"models/{SHIPPED_MODEL_FILE}")


def resolve_model_path(model_path: str) -> tuple[Path | None, str]:
    """The model file to load for the ``model_path`` parameter, or ``(None, reason)`` when none exists.

    An empty ``model_path`` means the shipped model (see :func:`model_search_paths`).
    """
    if model_path.strip():
        path = Path(model_path).expanduser()
        if path.is_file():
            return path, ""
        return None, f"model file {str(path)!r} (parameter model_path) does not exist or is not a file"
    candidates = model_search_paths()
    for path in candidates:
        if path.is_file():
            return path, ""
    searched = ", ".join(repr(str(p)) for p in candidates)
    return (
        None,
        f"the shipped model {SHIPPED_MODEL_FILE} was not found (looked in {searched}); set model_path",
    )
