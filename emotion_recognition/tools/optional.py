"""Python packages that only the tools need, not the node: tqdm (progress bar of emotion_bag_process),
matplotlib (its plot; the built-in sample's Grace Hopper photo) and scikit-image (the built-in
sample's other photos). The node starts and runs without any of them; a tool that misses one stops
with a message naming the package and how to install it, instead of a traceback."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType

# module name -> (PyPI name, Debian/Ubuntu package, which is also its rosdep key)
PACKAGES: dict[str, tuple[str, str]] = {
    "tqdm": ("tqdm", "python3-tqdm"),
    "matplotlib": ("matplotlib", "python3-matplotlib"),
    "skimage": ("scikit-image", "python3-skimage"),
}


class MissingDependencyError(ImportError):
    """A tool's optional Python package is not installed (the message says how to install it)."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` for ``purpose`` (e.g. "emotion_bag_process"), or raise
    :class:`MissingDependencyError` naming the apt and pip packages that provide it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        pip_name, apt_name = PACKAGES.get(top, (top, f"python3-{top}"))
        raise MissingDependencyError(
            f"{purpose} needs the Python package {pip_name}, which is not installed: "
            f"sudo apt install {apt_name} (with ROS from apt), or pip install {pip_name} (in a venv)"
        ) from error


def require_all(modules: Iterable[str], purpose: str) -> None:
    """:func:`require` each of ``modules``: a tool checks them all before it starts working."""
    for module in modules:
        require(module, purpose)
