"""Fixtures shared by every test (owned by the foundation; add your own helpers to test/support/).

Run the tests inside the development environment (``scripts/test`` or
``scripts/dev-env python -m pytest test/...``): rclpy, the built emotion_msgs / vision_msgs and the
package itself are on the paths there.

* ``ros_domain``: a ROS_DOMAIN_ID of this test's own, set (with localhost-only discovery) in this
  process's environment, so DDS traffic of parallel test runs never mixes.
* ``ros_context``: an initialised rclpy context on that domain, shut down after the test.
* ``BackgroundProcess``: a subprocess in the development environment (inherits ROS_DOMAIN_ID and
  discovery range from ``ros_domain``), stopped and its output collected for failure messages.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from rclpy.context import Context

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_ENV = REPO_ROOT / "scripts" / "dev-env"

# Domain ids handed out by ros_domain. 0-19 are left free: 0 is everybody's default and the
# foundation's own tests use fixed ids 10-19. Valid ids on Linux go up to 232.
DOMAIN_ID_FIRST = 20
DOMAIN_ID_COUNT = 181  # 20..200
# Different pytest processes start at different offsets (pid based); within one process a counter
# gives each test the next id, so sequential tests never reuse a domain that may still hold a
# participant of a previous test's leftover process.
_domain_counter = itertools.count((os.getpid() * 37) % DOMAIN_ID_COUNT)


def next_ros_domain_id() -> int:
    """Return the next ROS_DOMAIN_ID of this test process (in 20..200)."""
    return DOMAIN_ID_FIRST + next(_domain_counter) % DOMAIN_ID_COUNT


def configure_ros_domain(monkeypatch: pytest.MonkeyPatch, domain_id: int) -> None:
    """Point this process (and its future children) at ``domain_id`` with localhost-only discovery."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain_id))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("ROS_STATIC_PEERS", raising=False)
    monkeypatch.delenv("ROS_LOCALHOST_ONLY", raising=False)  # deprecated, conflicts with the above


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> int:
    """A ROS_DOMAIN_ID for this test alone, exported with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST."""
    domain_id = next_ros_domain_id()
    configure_ros_domain(monkeypatch, domain_id)
    return domain_id


@pytest.fixture
def ros_context(ros_domain: int) -> Iterator["Context"]:
    """An rclpy context initialised on this test's domain; pass it to nodes and executors."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context, domain_id=ros_domain)
    try:
        yield context
    finally:
        context.try_shutdown()


class BackgroundProcess:
    """A command running in the development environment, with its output kept in a file.

    Use as a context manager: the process is stopped (SIGINT, then SIGKILL after ``stop_timeout``
    seconds) on exit. ``output()`` returns what it printed so far, for assertion messages.
    """

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        self.args = list(args)
        self._log = tempfile.TemporaryFile(mode="w+b")
        # Through scripts/dev-env, so the command gets the environment even when pytest was not
        # started by it (dev-env is a no-op set-up when warm).
        self.process = subprocess.Popen(
            [str(DEV_ENV), *self.args],
            env=dict(os.environ if env is None else env),
            cwd=cwd or REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.stop_timeout = stop_timeout

    @classmethod
    def python(cls, script: Path | str, *script_args: str, **kwargs: object) -> "BackgroundProcess":
        """Start ``python script args...`` with the environment's interpreter."""
        return cls(["python", str(script), *script_args], **kwargs)  # type: ignore[arg-type]

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr interleaved)."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")

    def stop(self) -> int:
        """Stop the process (if still running) and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> "BackgroundProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self._log.close()

