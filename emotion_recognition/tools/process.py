"""A child process with its output captured in a log file, stopped as Ctrl-C would stop it.

The one process helper of the package and its tests: the demo runs the node with it, the node tests run
the node and their DDS peers with it (``test/support/ros_graph.py``, ``test/conftest.py``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

NODE_MODULE = "emotion_recognition.ros.node"
# Seconds a process gets to exit after SIGINT (Ctrl-C), then after SIGTERM, before SIGKILL.
STOP_TIMEOUT_S = 10.0
TERMINATE_TIMEOUT_S = 5.0


def node_command(ros_args: Sequence[str] = (), params_file: Path | str | None = None) -> list[str]:
    """The command line of the node process (what ``ros2 run`` starts): this interpreter running
    :mod:`emotion_recognition.ros.node` with ``--ros-args``, the parameter file first."""
    command = [sys.executable, "-m", NODE_MODULE, "--ros-args"]
    if params_file is not None:
        command += ["--params-file", str(params_file)]
    return [*command, *ros_args]


class LoggedProcess:
    """``command`` running with stdout and stderr going to ``log_path`` (a temporary file when ``None``).

    Use as a context manager, or call :meth:`stop`: SIGINT (what Ctrl-C sends), then SIGTERM, then
    SIGKILL, each after a timeout.

    ``new_session`` puts it in a session (and process group) of its own.
    """

    def __init__(
        self,
        command: Sequence[str],
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        new_session: bool = False,
    ) -> None:
        self.command = [str(part) for part in command]
        self.log_path = log_path
        self.stop_timeout_s = stop_timeout_s
        # Kept open for the life of the process (closed by stop() or close()).
        self._log: IO[bytes] = log_path.open("w+b") if log_path is not None else tempfile.TemporaryFile()  # noqa: SIM115
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            self.command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=new_session,  # its own process group, for a Ctrl-C to all it starts
        )

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status (``None`` while running)."""
        return self.process.poll()

    def log(self) -> str:
        """Everything the process printed so far (stdout and stderr interleaved)."""
        if self._log.closed:
            return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path else ""
        self._log.flush()
        position = self._log.tell()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", errors="replace")
        self._log.seek(position)
        return text

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log().strip().splitlines()[-lines:])

    def wait_for_log(self, text: str, timeout_s: float = 30.0) -> str:
        """Wait until ``text`` appears in the log and return the log.

        Raises:
            AssertionError: ``text`` did not appear within ``timeout_s`` or the process exited first.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            if not self.alive:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"{text!r} not in the log of {self.command[:4]} (alive={self.alive}):\n{self.log()}"
        )

    def stop(self) -> int:
        """Stop the process (if running) as Ctrl-C would, harder if it does not exit; return its status."""
        if self.alive:
            self.process.send_signal(signal.SIGINT)
            if not self._exited_within(self.stop_timeout_s):
                self.process.terminate()
                if not self._exited_within(TERMINATE_TIMEOUT_S):
                    self.process.kill()
                    self.process.wait()
        if not self._log.closed and self.log_path is not None:
            self._log.close()
        return self.process.returncode

    def _exited_within(self, timeout_s: float) -> bool:
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def close(self) -> None:
        """Stop the process and release its log (a temporary log is gone afterwards)."""
        self.stop()
        self._log.close()

    def __enter__(self) -> LoggedProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
