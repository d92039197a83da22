"""An ament index without some packages: what a machine where they are not installed looks like to
``ament_index_python`` (and so to ``ros2 launch``), on any machine.

Every prefix of ``AMENT_PREFIX_PATH`` that registers one of the packages is replaced by a mirror of
symbolic links that leaves out only those packages' index markers; every other package of that prefix
(rclpy, launch_ros, ...) is found exactly as before. Python imports do not go through the index and
are unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGES_INDEX = Path("share") / "ament_index" / "resource_index" / "packages"


def _mirror(prefix: Path, hidden: set[str], into: Path) -> Path:
    """``into`` made a copy of ``prefix`` in links, without the ``hidden`` packages' index markers."""
    into.mkdir(parents=True)
    for entry in prefix.iterdir():
        if entry.name != "share":
            (into / entry.name).symlink_to(entry)
    for entry in (prefix / "share").iterdir():
        if entry.name != "ament_index":
            (into / "share").mkdir(exist_ok=True)
            (into / "share" / entry.name).symlink_to(entry)
    resources = prefix / "share" / "ament_index" / "resource_index"
    for kind in resources.iterdir():
        target = into / "share" / "ament_index" / "resource_index" / kind.name
        target.mkdir(parents=True)
        for marker in kind.iterdir():
            if not (kind.name == "packages" and marker.name in hidden):
                (target / marker.name).symlink_to(marker)
    return into


def ament_prefix_path_without(packages: list[str], workdir: Path) -> str:
    """``AMENT_PREFIX_PATH`` of this process, with ``packages`` no longer registered in any prefix."""
    hidden = set(packages)
    prefixes = []
    for number, entry in enumerate(filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep))):
        prefix = Path(entry)
        if any((prefix / PACKAGES_INDEX / name).exists() for name in hidden):
            prefix = _mirror(prefix, hidden, workdir / f"prefix{number}")
        prefixes.append(str(prefix))
    return os.pathsep.join(prefixes)
