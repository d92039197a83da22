"""Running the emotion_recognition node as its own process and talking to it over Fast DDS.

:class:`NodeProcess` starts ``python -m emotion_recognition.ros.node --ros-args ...`` (the same
``main()`` the console script runs) with the shipped parameter file, its log captured to a file.
:class:`GraphClient` is the test side: its own rclpy context on the test's ROS_DOMAIN_ID, an executor
spinning in a background thread, inboxes that collect messages, and blocking service calls.

Discovery stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) and every test module takes
its own domain id from ``test.conftest.next_ros_domain_id`` (the ``ros_domain_id`` fixture), so tests
and parallel runs do not see each other.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from emotion_recognition.tools.process import LoggedProcess, node_command

REPO = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO / "config" / "emotion_recognition.yaml"

# Generous waits for a busy 2-core machine; a test fails only when the answer never comes.
DISCOVERY_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 30.0

M = TypeVar("M")


def ros_environment(domain_id: int) -> dict[str, str]:
    """The environment for a node process on ``domain_id``, localhost discovery, unbuffered logs."""
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONUNBUFFERED="1",
        RCUTILS_LOGGING_BUFFERED_STREAM="0",
        RCUTILS_COLORIZED_OUTPUT="0",
    )
    env.pop("ROS_LOCALHOST_ONLY", None)
    pythonpath = env.get("PYTHONPATH", "")
    if str(REPO) not in pythonpath.split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), pythonpath) if p)
    return env


class NodeProcess(LoggedProcess):
    """The node running as a separate process (``--ros-args`` with the shipped parameter file), run
    from ``/`` (the node must not depend on the working directory)."""

    def __init__(
        self, domain_id: int, ros_args: list[str], log_path: Path, params_file: Path = PARAMS_FILE
    ) -> None:
        super().__init__(
            node_command(ros_args, params_file), log_path, env=ros_environment(domain_id), cwd="/"
        )

    def wait_for_log(self, text: str, timeout_s: float = ANSWER_TIMEOUT_S) -> str:
        """Wait until ``text`` appears in the log; return the log (AssertionError on timeout)."""
        return super().wait_for_log(text, timeout_s)


class Inbox(Generic[M]):
    """Messages received on one topic, in arrival order, with a blocking wait."""

    def __init__(self) -> None:
        self.messages: list[M] = []
        self._condition = threading.Condition()

    def __call__(self, msg: M) -> None:
        with self._condition:
            self.messages.append(msg)
            self._condition.notify_all()

    def wait_for(self, predicate: Callable[[M], bool], timeout_s: float = ANSWER_TIMEOUT_S) -> M:
        """The first message (already received or arriving within ``timeout_s``) matching ``predicate``."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while True:
                for msg in self.messages:
                    if predicate(msg):
                        return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no matching message within {timeout_s} s ({len(self.messages)} received)"
                    )
                self._condition.wait(remaining)

    def matching(self, predicate: Callable[[M], bool]) -> list[M]:
        with self._condition:
            return [m for m in self.messages if predicate(m)]


def model_args(models: Any) -> list[str]:
    """``--ros-args`` selecting the model of the ``emotion_models`` fixture: none for the trained,
    shipped model (the node must find it by itself), ``model_path`` for the untrained stand-in."""
    if models.trained:
        return []
    return ["-p", f"model_path:={models.tflite}"]


def stamp_is(sec: int, nanosec: int = 0) -> Callable[[Any], bool]:
    """Predicate: the message's header stamp is exactly (sec, nanosec)."""
    return lambda msg: msg.header.stamp.sec == sec and msg.header.stamp.nanosec == nanosec


class GraphClient:
    """The test's side of the ROS graph: one rclpy context and node on ``domain_id``."""

    def __init__(self, domain_id: int, name: str = "test_client") -> None:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        os.environ.pop("ROS_LOCALHOST_ONLY", None)
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - the context is shut down under the executor at close()
            pass

    def subscribe(self, msg_type: type, topic: str, depth: int = 50, reliable: bool = True) -> Inbox:
        inbox: Inbox = Inbox()
        qos = QoSProfile(
            depth=depth,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        )
        inbox.subscription = self.node.create_subscription(msg_type, topic, inbox, qos)  # type: ignore[attr-defined]
        return inbox

    def publisher(self, msg_type: type, topic: str, depth: int = 5) -> Any:
        return self.node.create_publisher(msg_type, topic, QoSProfile(depth=depth))

    def call(self, srv_type: type, name: str, request: Any, timeout_s: float = ANSWER_TIMEOUT_S) -> Any:
        """Call a service and wait for the response (AssertionError when it does not come)."""
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout_s):
                raise AssertionError(f"service {name} not available")
            done = threading.Event()
            future = client.call_async(request)
            future.add_done_callback(lambda _: done.set())
            if not done.wait(timeout_s):
                raise AssertionError(f"service {name} did not answer within {timeout_s} s")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def wait_until(
        self, condition: Callable[[], bool], what: str, timeout_s: float = DISCOVERY_TIMEOUT_S
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5)
