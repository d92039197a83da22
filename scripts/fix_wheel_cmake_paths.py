"""Point the ROS wheels' exported CMake files at this interpreter instead of the wheel build container.

The ROS 2 wheels on PyPI are built in a manylinux container, and their exported CMake targets name
include directories that exist only there (``/opt/python/cp311-cp311/include/python3.11`` and numpy's
include directory below it). CMake refuses to generate a project that uses such a target, so building
an interface package with ``rosidl_generate_interfaces`` fails. This script rewrites those paths, in the
virtual environment's own files only, to this interpreter's include directory and this numpy's include
directory. It is idempotent: files that no longer mention the container prefix are left untouched.

Run it with the virtual environment's interpreter: ``.venv/bin/python scripts/fix_wheel_cmake_paths.py``.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

# The build container's interpreter prefix, e.g. /opt/python/cp311-cp311.
CONTAINER_PREFIX = re.compile(r"/opt/python/cp3\d+-cp3\d+")
# Longest first: numpy's include directory sits below the container prefix.
CONTAINER_NUMPY_INCLUDE = re.compile(
    r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include"
)
CONTAINER_PYTHON_INCLUDE = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")


def rewrite_text(text: str, python_include: str, numpy_include: str) -> str:
    """Return ``text`` with the container's Python and numpy include directories replaced."""
    text = CONTAINER_NUMPY_INCLUDE.sub(numpy_include, text)
    return CONTAINER_PYTHON_INCLUDE.sub(python_include, text)


def fix_prefix(prefix: Path, python_include: str, numpy_include: str) -> list[Path]:
    """Rewrite every CMake file under ``prefix/share`` that names the container; return those changed.

    Raises:
        RuntimeError: if a file still names the container prefix after the rewrite (a path this
            script does not know how to map), so the build would fail later with a vaguer error.
    """
    changed: list[Path] = []
    for path in sorted((prefix / "share").glob("*/cmake/*.cmake")):
        text = path.read_text(encoding="utf-8")
        if not CONTAINER_PREFIX.search(text):
            continue
        new_text = rewrite_text(text, python_include, numpy_include)
        leftover = CONTAINER_PREFIX.search(new_text)
        if leftover:
            raise RuntimeError(f"{path}: unknown wheel build path {leftover.group(0)!r} left after rewrite")
        path.write_text(new_text, encoding="utf-8")
        changed.append(path)
    return changed


def main() -> int:
    """Fix the running interpreter's prefix (the virtual environment) and report what changed."""
    import numpy

    python_include = sysconfig.get_paths()["include"]
    if not (Path(python_include) / "Python.h").is_file():
        print(
            f"error: Python headers not found in {python_include} (Python.h); building ROS interface "
            "packages needs them (on Debian: apt-get install python3-dev)",
            file=sys.stderr,
        )
        return 1
    changed = fix_prefix(Path(sys.prefix), python_include, numpy.get_include())
    if changed:
        print(f"fix_wheel_cmake_paths: rewrote {len(changed)} CMake files in {sys.prefix}/share")
    return 0


if __name__ == "__main__":
    sys.exit(main())
