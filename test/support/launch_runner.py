"""Run a launch file the way ``ros2 launch`` does, for tests on machines without the ``ros2`` CLI:

    python -m test.support.launch_runner FILE [name:=value ...]

It calls ``ros2launch.api.launch_a_launch_file`` (the function behind ``ros2 launch``, non-interactive)
and exits with its return code. A process started in the background by a non-interactive shell
inherits SIGINT as ignored, and Python then installs no KeyboardInterrupt handler; the default
handler is restored first, so that Ctrl-C (SIGINT) reaches launch as in a terminal.
"""

from __future__ import annotations

import signal
import sys


def main(argv: list[str]) -> int:
    """Launch ``argv[0]`` with the launch arguments ``argv[1:]``; return launch's exit status."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from ros2launch.api import launch_a_launch_file

    return launch_a_launch_file(launch_file_path=argv[0], launch_file_arguments=argv[1:], noninteractive=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
