"""Shared by every test (owned by the foundation; add your own helpers to test/support/).

Run the tests inside the development environment (``scripts/test`` or
``scripts/dev-env python -m pytest test/...``): rclpy, the built emotion_msgs / vision_msgs and the
package itself are on the paths there.

* :func:`next_ros_domain_id`: the one allocator of ROS_DOMAIN_IDs; every test (or test module) that
  talks DDS takes its own id from it, so DDS traffic of earlier tests and parallel runs never mixes.
  ``ros_domain_id`` is the module-scoped fixture for it.
* ``BackgroundProcess``: a command in the development environment, its output kept for failure
  messages (the package's :class:`~emotion_recognition.tools.process.LoggedProcess`).
* Markers (registered in ``pyproject.toml``): ``slow`` for tests that take more than a few seconds
  (training, the demo, workspace builds, node processes); ``scripts/test -m "not slow"`` runs the rest.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from emotion_recognition.tools.process import LoggedProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_ENV = REPO_ROOT / "scripts" / "dev-env"

# Domain ids handed out by next_ros_domain_id. 0 is everybody's default; 215-232 are the demo's
# (emotion_recognition.tools.demo). Valid ids on Linux go up to 232.
DOMAIN_ID_FIRST = 10
DOMAIN_ID_COUNT = 191  # 10..200
# Different pytest processes start at different offsets (pid based); within one process a counter
# gives each caller the next id, so sequential tests never reuse a domain that may still hold a
# participant of a previous test's leftover process.
_domain_counter = itertools.count((os.getpid() * 37) % DOMAIN_ID_COUNT)


def next_ros_domain_id() -> int:
    """Return the next ROS_DOMAIN_ID of this test process (in 10..200)."""
    return DOMAIN_ID_FIRST + next(_domain_counter) % DOMAIN_ID_COUNT


def configure_ros_domain(monkeypatch: pytest.MonkeyPatch, domain_id: int) -> None:
    """Point this process (and its future children) at ``domain_id`` with localhost-only discovery."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("ROS_STATIC_PEERS", raising=False)
    monkeypatch.delenv("ROS_LOCALHOST_ONLY", raising=False)  # deprecated, conflicts with the above


@pytest.fixture(scope="module")
def ros_domain_id() -> int:
    """A ROS_DOMAIN_ID for this test module alone (from :func:`next_ros_domain_id`)."""
    return next_ros_domain_id()


@pytest.fixture
def ros_domain() -> int:
    """A ROS_DOMAIN_ID for this test alone (from :func:`next_ros_domain_id`), for tests that start and
    stop their own processes."""
    return next_ros_domain_id()


class BackgroundProcess(LoggedProcess):
    """A command running in the development environment (through ``scripts/dev-env``, so it gets the
    environment even when pytest was not started by it), with its output kept in a temporary file."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            [str(DEV_ENV), *args],
            env=dict(os.environ if env is None else env),
            cwd=cwd or REPO_ROOT,
            stop_timeout_s=stop_timeout,
        )
        self.args = list(args)

    @classmethod
    def python(cls, script: Path | str, *script_args: str, **kwargs: object) -> BackgroundProcess:
        """Start ``python script args...`` with the environment's interpreter."""
        return cls(["python", str(script), *script_args], **kwargs)  # type: ignore[arg-type]

    def output(self) -> str:
        """Everything the process printed so far (the same as :meth:`log`)."""
        return self.log()
