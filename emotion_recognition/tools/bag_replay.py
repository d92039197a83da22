"""Replay a rosbag2's images over DDS (console script ``emotion_bag_replay``).

``ros2 bag play`` is not installable on machines without a ROS distribution; this publishes the image
messages of one topic of a bag exactly as recorded (the serialized bytes, so headers and stamps are the
recorded ones) at the recorded rate, a multiple of it (``--rate``) or a fixed frame rate (``--fps``),
optionally in a loop. It is also the path the demo uses to feed the node.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import rclpy
import rclpy.utilities
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image

from emotion_recognition.resources import shipped_file
from emotion_recognition.tools import bagio

# History depth of the replay publisher. Reliable delivery with some depth reaches both reliable and
# best-effort subscribers (a camera driver's usual "sensor data" profile is best effort).
PUBLISH_DEPTH = 10


LARGE_IMAGE_PROFILE = "fastdds_large_images.xml"


def large_image_profile() -> Path | None:
    """The shipped Fast DDS profile for publishers of large images (``config/fastdds_large_images.xml``
    in the installed share directory, else in the source checkout), or ``None``."""
    return shipped_file(f"config/{LARGE_IMAGE_PROFILE}")


def use_large_image_profile(environ: dict[str, str] | None = None) -> str | None:
    """Point ``FASTDDS_DEFAULT_PROFILES_FILE`` at the shipped large-image profile unless it is set, so
    that best-effort subscribers (the node's default) receive 640x480 ``bgr8`` frames (900 KB) whole
    (README "Large images over Fast DDS"). Call before ``rclpy.init``; returns the value in effect."""
    env = os.environ if environ is None else environ
    if not env.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        profile = large_image_profile()
        if profile is not None:
            env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    return env.get("FASTDDS_DEFAULT_PROFILES_FILE")


def message_class(msgtype: str) -> type:
    """The rclpy class of an image message type name (``sensor_msgs/msg/Image`` or ``CompressedImage``)."""
    classes = {bagio.IMAGE_TYPE: Image, bagio.COMPRESSED_IMAGE_TYPE: CompressedImage}
    if msgtype not in classes:
        raise bagio.BagError(f"unsupported message type {msgtype}; supported: {', '.join(classes)}")
    return classes[msgtype]


def bag_messages(
    bag: Path | str, topic: str | None = None
) -> tuple[bagio.ImageTopic, Iterator[tuple[int, bytes]]]:
    """Open ``bag``, pick its image topic and return it with an iterator of ``(bag time ns, bytes)``.

    The bag is checked (and :class:`bagio.BagError` raised) before this returns; it is closed when the
    iterator is exhausted or closed.
    """
    reader = bagio.open_reader(bag)
    try:
        image_topic = bagio.pick_image_topic(reader, topic)
    except bagio.BagError:
        reader.close()
        raise

    def generate() -> Iterator[tuple[int, bytes]]:
        try:
            for _, timestamp, raw in bagio.iter_topic_messages(reader, image_topic.name):
                yield timestamp, bytes(raw)
        finally:
            reader.close()

    return image_topic, generate()


def paced(
    items: Iterable[tuple[int, object]],
    rate: float | None = 1.0,
    fps: float | None = None,
    stop: threading.Event | None = None,
) -> Iterator[tuple[int, object]]:
    """Yield ``(timestamp ns, payload)`` items at the pace their timestamps give, sped up by ``rate``,
    or every ``1 / fps`` seconds when ``fps`` is given; ``rate=None`` and no ``fps`` yields at once.

    The schedule is absolute (no drift): a late item is yielded immediately and the next ones catch up.
    Stops early when ``stop`` is set.
    """
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    stop = stop or threading.Event()
    start_wall: float | None = None
    first_ts: int | None = None
    for index, (timestamp, payload) in enumerate(items):
        if stop.is_set():
            return
        now = time.monotonic()
        if start_wall is None:
            start_wall, first_ts = now, timestamp
        if fps is not None:
            due = start_wall + index / fps
        elif rate is not None:
            due = start_wall + (timestamp - first_ts) / 1e9 / rate
        else:
            due = now
        if due > now and stop.wait(due - now):
            return
        yield timestamp, payload


def wait_for_subscribers(
    publisher, timeout_s: float, count: int = 1, stop: threading.Event | None = None
) -> bool:
    """Wait until ``publisher`` has ``count`` subscribers (DDS discovery); return whether it happened."""
    deadline = time.monotonic() + timeout_s
    stop = stop or threading.Event()
    while publisher.get_subscription_count() < count:
        if time.monotonic() >= deadline or stop.wait(0.05):
            return False
    return True


def publisher_qos() -> QoSProfile:
    """QoS of the replay publisher (reliable, keep last :data:`PUBLISH_DEPTH`)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=PUBLISH_DEPTH, reliability=ReliabilityPolicy.RELIABLE
    )


def replay_bag(
    node: Node,
    bag: Path | str,
    topic: str | None = None,
    publish_topic: str | None = None,
    rate: float = 1.0,
    fps: float | None = None,
    loop: bool = False,
    wait_subscribers_s: float = 0.0,
    stop: threading.Event | None = None,
    on_publish: Callable[[int], None] | None = None,
) -> int:
    """Publish the image messages of one topic of ``bag`` from ``node``; return how many were published.

    Args:
        node: the rclpy node that owns the publisher (no spinning needed).
        bag: rosbag2 folder or ``.db3``/``.mcap`` file.
        topic: image topic in the bag (``None``: the only one).
        publish_topic: topic to publish on (``None``: the recorded topic name).
        rate: speed factor on the recorded timing (2.0 = twice as fast).
        fps: publish at this fixed frame rate instead of the recorded timing.
        loop: start over at the end until ``stop`` is set.
        wait_subscribers_s: first wait up to this long for a subscriber to be discovered.
        stop: set it to stop early (from another thread or a signal handler).
        on_publish: called with the running count after each message.

    Raises:
        bagio.BagError: missing or corrupt bag, missing topic, unsupported message type.
    """
    stop = stop or threading.Event()
    image_topic, messages = bag_messages(bag, topic)
    publisher = node.create_publisher(
        message_class(image_topic.msgtype), publish_topic or image_topic.name, publisher_qos()
    )
    try:
        if wait_subscribers_s > 0 and not wait_for_subscribers(publisher, wait_subscribers_s, stop=stop):
            node.get_logger().warning(
                f"no subscriber on {publisher.topic_name} after {wait_subscribers_s:.1f} s; publishing anyway"
            )
        published = 0
        while not stop.is_set():
            for _, raw in paced(messages, rate=rate, fps=fps, stop=stop):
                publisher.publish(raw)
                published += 1
                if on_publish is not None:
                    on_publish(published)
            if not loop or published == 0:
                break
            _, messages = bag_messages(bag, image_topic.name)
        return published
    finally:
        messages.close()
        node.destroy_publisher(publisher)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``emotion_bag_replay``."""
    parser = argparse.ArgumentParser(
        prog="emotion_bag_replay",
        description="Publish the images of a rosbag2 over DDS with their recorded headers and timing.",
    )
    parser.add_argument("bag", type=Path, help="rosbag2 folder (or a single .db3/.mcap file)")
    parser.add_argument("-t", "--topic", help="image topic in the bag (default: the bag's only image topic)")
    parser.add_argument("--publish-topic", help="publish on this topic instead of the recorded name")
    timing = parser.add_mutually_exclusive_group()
    timing.add_argument("-r", "--rate", type=float, default=1.0, help="speed factor on the recorded timing")
    timing.add_argument("--fps", type=float, help="publish at this fixed frame rate instead")
    parser.add_argument("-l", "--loop", action="store_true", help="start over at the end (Ctrl-C stops)")
    parser.add_argument(
        "--wait-subscribers",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for a subscriber before the first message",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``emotion_bag_replay``; returns the exit status."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    ros_args = rclpy.utilities.remove_ros_args(["emotion_bag_replay", *args_in])[1:]
    args = build_parser().parse_args(ros_args)
    if args.rate <= 0 or (args.fps is not None and args.fps <= 0):
        print("emotion_bag_replay: error: --rate and --fps must be > 0", file=sys.stderr)
        return 2
    use_large_image_profile()
    # Ctrl-C and SIGTERM end the replay between two messages; rclpy's own handler would shut the
    # context down under a publish instead.
    rclpy.init(args=["emotion_bag_replay", *args_in], signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    node = Node("emotion_bag_replay")
    started = time.monotonic()
    published = [0]

    def count(n: int) -> None:
        published[0] = n

    try:
        replay_bag(
            node,
            args.bag,
            topic=args.topic,
            publish_topic=args.publish_topic,
            rate=args.rate,
            fps=args.fps,
            loop=args.loop,
            wait_subscribers_s=args.wait_subscribers,
            stop=stop,
            on_publish=count,
        )
    except bagio.BagError as exc:
        print(f"emotion_bag_replay: error: {exc}", file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print(f"emotion_bag_replay: published {published[0]} messages in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
