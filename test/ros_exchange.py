"""Helpers for tests that exchange ROS messages with another process over real DDS.

    with RosDomain(monkeypatch) as domain:
        with BackgroundProcess.python(peer_script, ...) as peer:
            message = receive_first(domain, MsgType, "topic", RELIABLE, peer)

``receive_first`` waits (a liveness bound, not a speed requirement) until a message arrives, and
fails with the peer's output when the peer dies or nothing arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from test.conftest import BackgroundProcess, configure_ros_domain, next_ros_domain_id

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
RELIABLE_LATCHED = QoSProfile(
    depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
# Discovery on localhost takes well under a second; this only bounds a hung test.
RECEIVE_TIMEOUT_S = 60.0
REPUBLISH_PERIOD_S = 0.2


class RosDomain:
    """An rclpy context, node and executor on ``domain_id`` (default: the next id of
    :func:`test.conftest.next_ros_domain_id`; localhost discovery), for one test.

    The environment variables are set through ``monkeypatch`` so that processes started inside the
    block join the same domain.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, domain_id: int | None = None) -> None:
        domain_id = next_ros_domain_id() if domain_id is None else domain_id
        configure_ros_domain(monkeypatch, domain_id)
        self.domain_id = domain_id
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("test_receiver", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def __enter__(self) -> RosDomain:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def receive_first(
    domain: RosDomain,
    msg_class: type,
    topic: str,
    qos: QoSProfile,
    peer: BackgroundProcess,
    publish: tuple[type, str, Any] | None = None,
    accept: Callable[[Any], bool] | None = None,
) -> Any:
    """Return the first message on ``topic`` that ``accept`` (default: any) accepts.

    With ``publish=(msg_class, topic, message)`` the message is (re)published every
    REPUBLISH_PERIOD_S until the answer arrives, which covers the time discovery takes.
    Fails the test with the peer's output if the peer exits or nothing arrives in time.
    """
    received: list[Any] = []

    def on_message(message: Any) -> None:
        if accept is None or accept(message):
            received.append(message)

    subscription = domain.node.create_subscription(msg_class, topic, on_message, qos)
    publisher = None
    if publish is not None:
        publisher = domain.node.create_publisher(publish[0], publish[1], RELIABLE)
    try:
        deadline = time.monotonic() + RECEIVE_TIMEOUT_S
        next_publish = 0.0
        while not received:
            now = time.monotonic()
            if not peer.alive:
                pytest.fail(f"peer {peer.args} exited with {peer.returncode}:\n{peer.output()}")
            if now > deadline:
                pytest.fail(
                    f"nothing received on {topic!r} in {RECEIVE_TIMEOUT_S:.0f} s "
                    f"(domain {domain.domain_id}); peer output:\n{peer.output()}"
                )
            if publisher is not None and now >= next_publish:
                publisher.publish(publish[2])  # type: ignore[index]
                next_publish = now + REPUBLISH_PERIOD_S
            domain.executor.spin_once(timeout_sec=0.05)
        return received[0]
    finally:
        domain.node.destroy_subscription(subscription)
        if publisher is not None:
            domain.node.destroy_publisher(publisher)
