"""The demo (console script ``emotion_demo``): the real node, fed over DDS, on a machine without a camera.

What it does, in order:

1. picks a ROS domain of its own (``ROS_DOMAIN_ID`` from the environment, else a random one in
   215-232, a range no default setup uses) and keeps discovery on this machine
   (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` unless set), so it neither sees nor disturbs other
   ROS traffic;
2. starts the real node process (``emotion_recognition.ros.node``, the ``emotion_recognition_node``
   executable) with the shipped parameter file, in the namespace ``/emotion_demo``;
3. feeds it images over DDS, the path a camera driver takes: the built-in sample (real public-domain
   photographs, :mod:`emotion_recognition.tools.sample`, written as a rosbag2 and replayed with
   :mod:`emotion_recognition.tools.bag_replay`), or ``--bag``, ``--video`` or ``--camera``;
4. collects what the node publishes (``emotions`` and ``image_annotated``) and writes, into the output
   folder (default ``demo_output/``), the annotated frames (``frames/*.png``), a video
   (``annotated.mp4``), a CSV timeline and ``summary.json``, then prints a summary and the folder.

By default each image is sent once the node has answered the previous one (``--pace lockstep``), so that
every frame is processed whatever the CPU; ``--pace recorded`` keeps the recorded timing instead (the
node then drops frames it cannot keep up with, as it would with a live camera).
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from emotion_recognition.resources import shipped_file

# Domain IDs the demo picks from when ROS_DOMAIN_ID is not set: valid on Linux, outside the ports of
# the ephemeral range and away from 0 (everyone's default) and the test suites' ranges.
DEMO_DOMAIN_RANGE = (215, 232)
NAMESPACE = "/emotion_demo"
DEFAULT_OUTPUT = Path("demo_output")
# Seconds to wait for the node to come up (import, model load, DDS discovery) before giving up.
NODE_START_TIMEOUT_S = 90.0
# Seconds to wait for the node's answer to one image in lockstep mode before sending the next.
ANSWER_TIMEOUT_S = 10.0
# Seconds without an answer after which an image is sent again (lockstep mode).
RESEND_AFTER_S = 2.0
# Pause after discovery so that both sides have matched before the first image.
DISCOVERY_SETTLE_S = 0.3
# Seconds to wait for the last answers after the last image was sent.
DRAIN_TIMEOUT_S = 5.0
# Frames taken from a camera when --frames is not given.
DEFAULT_CAMERA_FRAMES = 150
VIDEO_NAME = "annotated.mp4"


class DemoError(RuntimeError):
    """The demo cannot run (the message says why and what to do)."""


def prepare_ros_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set ``ROS_DOMAIN_ID`` (kept when set, else random in :data:`DEMO_DOMAIN_RANGE`) and
    ``ROS_AUTOMATIC_DISCOVERY_RANGE`` (``LOCALHOST`` unless set) in ``environ`` (default ``os.environ``)
    and return it; call before ``rclpy.init`` so this process and the node share the domain."""
    env = os.environ if environ is None else environ
    if not env.get("ROS_DOMAIN_ID", "").strip():
        env["ROS_DOMAIN_ID"] = str(random.randint(*DEMO_DOMAIN_RANGE))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return env


def default_params_file() -> Path | None:
    """The shipped ``config/emotion_recognition.yaml``: installed share directory first, then the
    source checkout; ``None`` when neither exists."""
    return shipped_file("config/emotion_recognition.yaml")


@dataclass
class Source:
    """Where the demo's images come from: ``messages`` yields ``(timestamp ns, serialized message)``."""

    description: str
    compressed: bool
    messages: Iterator[tuple[int, bytes]]
    recorded_timing: bool = True  # False for a live camera: it paces itself


def _frames_as_messages(frames: Iterator[tuple[np.ndarray, int]], frame_id: str) -> Iterator[tuple[int, bytes]]:
    """Serialize ``(bgr, stamp ns)`` frames as ``sensor_msgs/Image`` (bgr8) with that stamp."""
    from builtin_interfaces.msg import Time
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from emotion_recognition.ros.image_conversion import bgr_array_to_image_msg

    for image, stamp_ns in frames:
        header = Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000),
                        frame_id=frame_id)
        yield stamp_ns, serialize_message(bgr_array_to_image_msg(image, header))


def _capture_frames(capture: cv2.VideoCapture, live: bool, max_frames: int | None) -> Iterator[tuple[np.ndarray, int]]:
    """Frames of an open ``cv2.VideoCapture``: stamped now for a camera, from the file's timing else."""
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    period_ns = int(1e9 / fps) if fps > 0 else int(1e9 / 30)
    start_ns = time.time_ns()
    count = 0
    try:
        while max_frames is None or count < max_frames:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            yield frame, (time.time_ns() if live else start_ns + count * period_ns)
            count += 1
    finally:
        capture.release()


def open_source(args: argparse.Namespace, workdir: Path) -> Source:
    """The image source the options ask for (the built-in sample by default).

    Raises:
        DemoError: a bag, video or camera that cannot be opened.
    """
    from emotion_recognition.tools import bag_replay, bagio
    from emotion_recognition.tools.sample import SAMPLE_FRAME_COUNT, write_sample_bag

    if args.video is not None or args.camera is not None:
        live = args.camera is not None
        capture = cv2.VideoCapture(args.camera if live else str(args.video))
        if not capture.isOpened():
            what = f"camera device {args.camera}" if live else f"video file {args.video}"
            raise DemoError(f"cannot open {what} with OpenCV")
        max_frames = args.frames if args.frames is not None else (DEFAULT_CAMERA_FRAMES if live else None)
        what = f"camera {args.camera}" if live else f"video {args.video}"
        frames = _capture_frames(capture, live, max_frames)
        return Source(what, False, _frames_as_messages(frames, "camera"), recorded_timing=not live)
    if args.bag is not None:
        try:
            image_topic, messages = bag_replay.bag_messages(args.bag, args.topic)
        except bagio.BagError as exc:
            raise DemoError(str(exc)) from None
        return Source(f"bag {args.bag} (topic {image_topic.name}, {image_topic.msgtype})",
                      image_topic.compressed, _limited(messages, args.frames))
    bag = write_sample_bag(workdir / "sample_bag", count=args.frames)
    image_topic, messages = bag_replay.bag_messages(bag)
    count = args.frames if args.frames is not None else SAMPLE_FRAME_COUNT
    return Source(f"built-in sample ({count} frames of real public-domain photos, 640x480)", False, messages)


def _limited(items: Iterator[Any], limit: int | None) -> Iterator[Any]:
    for index, item in enumerate(items):
        if limit is not None and index >= limit:
            return
        yield item


class NodeProcess:
    """The node, started as its own process (what ``ros2 run`` would start), with its log captured."""

    def __init__(self, params_file: Path | None, model: Path | None, compressed: bool, log_path: Path) -> None:
        command = [sys.executable, "-m", "emotion_recognition.ros.node", "--ros-args",
                   "-r", f"__ns:={NAMESPACE}"]
        if params_file is not None:
            command += ["--params-file", str(params_file)]
        command += ["-p", "autostart:=true", "-p", f"use_compressed:={'true' if compressed else 'false'}"]
        if model is not None:
            command += ["-p", f"model_path:={model}"]
        self.command = command
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=os.environ.copy())

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """Stop the node as Ctrl-C would (SIGINT), then harder if it does not exit; return its status."""
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(5.0)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        self._log.close()
        return self.process.returncode


@dataclass
class Collected:
    """What the demo received from the node, keyed by the image stamp (ns)."""

    emotions: dict[int, Any] = field(default_factory=dict)
    annotated: dict[int, np.ndarray] = field(default_factory=dict)
    condition: threading.Condition = field(default_factory=threading.Condition)


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class Collector:
    """A node in this process that subscribes to the demo node's outputs, spun in a thread."""

    def __init__(self, image_msgtype: type) -> None:
        import rclpy
        from emotion_msgs.msg import FaceEmotionArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from emotion_recognition.ros.image_conversion import image_msg_to_array
        from emotion_recognition.tools.bag_replay import publisher_qos

        self.collected = Collected()
        self._to_array = image_msg_to_array
        self.node = Node("emotion_demo", namespace=NAMESPACE)
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(FaceEmotionArray, "emotions", self._on_emotions, reliable)
        self.node.create_subscription(Image, "image_annotated", self._on_annotated, reliable)
        topic = "image/compressed" if image_msgtype.__name__ == "CompressedImage" else "image"
        self.publisher = self.node.create_publisher(image_msgtype, topic, publisher_qos())
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._rclpy = rclpy
        self._thread = threading.Thread(target=self._spin, name="demo_spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def _on_emotions(self, msg: Any) -> None:
        with self.collected.condition:
            self.collected.emotions[_stamp_ns(msg.header)] = msg
            self.collected.condition.notify_all()

    def _on_annotated(self, msg: Any) -> None:
        image, _ = self._to_array(msg)
        with self.collected.condition:
            self.collected.annotated[_stamp_ns(msg.header)] = np.array(image, copy=True)
            self.collected.condition.notify_all()

    def wait_for(self, predicate, timeout_s: float) -> bool:
        with self.collected.condition:
            return self.collected.condition.wait_for(predicate, timeout_s)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()


def _await_answer(collector: "Collector", node: NodeProcess, raw: bytes, stamp: int, log) -> None:
    """Wait for the node's answer to the image stamped ``stamp``, sending it again after
    :data:`RESEND_AFTER_S` (an image published while DDS discovery is still settling can be lost)."""
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while True:
        wait = min(RESEND_AFTER_S, deadline - time.monotonic())
        if collector.wait_for(lambda: stamp in collector.collected.emotions, max(wait, 0.0)):
            return
        if not node.alive():
            raise DemoError(f"the node exited with status {node.process.returncode}:\n{node.log_tail()}")
        if time.monotonic() >= deadline:
            log(f"emotion_demo: warning: no answer to the image stamped {stamp} within {ANSWER_TIMEOUT_S:.0f} s")
            return
        collector.publisher.publish(raw)


def run_demo(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """Run the demo as described in the module docstring; return the summary (also in summary.json).

    Raises:
        DemoError: the node does not start or no image source could be opened.
    """
    import rclpy
    from rclpy.serialization import deserialize_message
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CompressedImage, Image

    from emotion_recognition.ros.node import resolve_model_path
    from emotion_recognition.tools import bagio
    from emotion_recognition.tools.bag_process import csv_header, csv_rows
    from emotion_recognition.tools.bag_replay import paced, use_large_image_profile

    prepare_ros_environment()
    use_large_image_profile()  # this process and the node publish 900 KB images
    model, reason = resolve_model_path(str(args.model) if args.model else "")
    if model is None:
        raise DemoError(reason)
    params_file = args.params_file or default_params_file()
    started = time.monotonic()
    output = Path(args.output)
    replaced = bagio.staged_output_dir(output, overwrite=True, protected=_inputs(args), only_outputs=True)
    with tempfile.TemporaryDirectory(prefix="emotion_demo-") as workdir_name, replaced as staging:
        workdir = Path(workdir_name)
        source = open_source(args, workdir)
        msgtype = CompressedImage if source.compressed else Image
        log(f"emotion_demo: ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, source: {source.description}")
        node = NodeProcess(params_file, Path(args.model) if args.model else None, source.compressed,
                           staging / "node.log")
        # No rclpy signal handler: Ctrl-C raises KeyboardInterrupt here, and the finally blocks stop the
        # node and remove the half-written output.
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        collector = None
        sent: list[int] = []
        try:
            collector = Collector(msgtype)
            deadline = time.monotonic() + NODE_START_TIMEOUT_S
            while collector.publisher.get_subscription_count() < 1:
                if not node.alive():
                    raise DemoError(f"the node exited with status {node.process.returncode}:\n{node.log_tail()}")
                if time.monotonic() > deadline:
                    raise DemoError(f"the node did not subscribe within {NODE_START_TIMEOUT_S:.0f} s:\n"
                                    f"{node.log_tail()}")
                time.sleep(0.1)
            for topic in ("emotions", "image_annotated"):
                full = f"{NAMESPACE}/{topic}"
                while collector.node.count_publishers(full) < 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
            time.sleep(DISCOVERY_SETTLE_S)
            log(f"emotion_demo: node up after {time.monotonic() - started:.1f} s; sending images")
            lockstep = args.pace == "lockstep"
            rate = None if lockstep or not source.recorded_timing else args.rate
            for _, raw in paced(source.messages, rate=rate):
                if not node.alive():
                    raise DemoError(f"the node exited with status {node.process.returncode}:\n{node.log_tail()}")
                stamp = _stamp_ns(deserialize_message(raw, msgtype).header)
                sent.append(stamp)
                collector.publisher.publish(raw)
                if lockstep:
                    _await_answer(collector, node, raw, stamp, log)
            collector.wait_for(
                lambda: all(s in collector.collected.emotions for s in sent[-1:])
                and all(s in collector.collected.annotated for s in sent if s in collector.collected.emotions),
                DRAIN_TIMEOUT_S,
            )
            if sent and not collector.collected.emotions:
                raise DemoError(f"the node answered none of the {len(sent)} images sent:\n{node.log_tail()}")
        finally:
            if collector is not None:
                collector.close()
            rclpy.try_shutdown()
            node_status = node.stop()
        summary = write_outputs(staging, sent, collector.collected, source, csv_header, csv_rows)
        summary.update({
            "ros_domain_id": int(os.environ["ROS_DOMAIN_ID"]),
            "node_command": node.command,
            "node_exit_status": node_status,
            "pace": args.pace,
            "wall_s": round(time.monotonic() - started, 2),
            "output": str(output.resolve()),
        })
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def write_outputs(folder: Path, sent: Sequence[int], collected: Collected, source: Source,
                  csv_header, csv_rows) -> dict[str, Any]:
    """Write the annotated frames, the video and the CSV timeline; return the summary data."""
    frames_dir = folder / "frames"
    frames_dir.mkdir()
    stamps = [s for s in sent if s in collected.emotions]
    labels = list(collected.emotions[stamps[0]].labels) if stamps else []
    tracks: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    faces = frames_with_faces = 0
    writer = None
    video_path = folder / VIDEO_NAME
    with (folder / "timeline.csv").open("w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(csv_header(labels))
        for index, stamp in enumerate(stamps):
            msg = collected.emotions[stamp]
            table.writerows(csv_rows(index, msg, stamps[0]))
            faces += len(msg.faces)
            frames_with_faces += bool(msg.faces)
            for face in msg.faces:
                tracks[int(face.track_id)][face.label] += 1
            image = collected.annotated.get(stamp)
            if image is None:
                continue
            cv2.imwrite(str(frames_dir / f"frame_{index:05d}.png"), image)
            if writer is None:
                fps = _frame_rate(stamps)
                writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (image.shape[1], image.shape[0]))
            writer.write(image)
    if writer is not None:
        writer.release()
    return {
        "source": source.description,
        "frames_sent": len(sent),
        "frames_answered": len(stamps),
        "annotated_frames": sum(1 for s in stamps if s in collected.annotated),
        "frames_with_faces": frames_with_faces,
        "faces": faces,
        "labels": labels,
        "tracks": {str(t): dict(c) for t, c in sorted(tracks.items())},
        "video": VIDEO_NAME if writer is not None else None,
    }


def _frame_rate(stamps: Sequence[int], default: float = 15.0) -> float:
    """Frame rate of the video: from the median spacing of the image stamps, within 1-120 fps."""
    gaps = np.diff(np.asarray(stamps, dtype=np.int64))
    gaps = gaps[gaps > 0]
    if len(gaps) == 0:
        return default
    return float(np.clip(1e9 / float(np.median(gaps)), 1.0, 120.0))


def format_summary(summary: dict[str, Any]) -> str:
    """The summary printed at the end of the demo."""
    lines = [
        f"source: {summary['source']}",
        f"frames: {summary['frames_sent']} sent, {summary['frames_answered']} answered by the node "
        f"({summary['annotated_frames']} annotated), {summary['frames_with_faces']} with faces; "
        f"faces: {summary['faces']}; tracks: {len(summary['tracks'])}",
    ]
    for track_id, counts in summary["tracks"].items():
        text = ", ".join(f"{label} {n}" for label, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        lines.append(f"track {track_id}: {sum(counts.values())} frames: {text}")
    lines.append(f"took {summary['wall_s']} s (ROS_DOMAIN_ID {summary['ros_domain_id']})")
    lines.append(f"output: {summary['output']} (frames/*.png, {summary['video'] or 'no video'}, "
                 "timeline.csv, summary.json, node.log)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``emotion_demo``."""
    parser = argparse.ArgumentParser(
        prog="emotion_demo",
        description="Start the emotion_recognition node, feed it images over DDS (the built-in sample by "
                    "default) and save what it publishes.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--bag", type=Path, help="replay this rosbag2 (sqlite3 or MCAP) instead of the sample")
    source.add_argument("--video", type=Path, help="use this video file instead of the sample")
    source.add_argument("--camera", type=int, metavar="N", help="use camera device N (/dev/videoN)")
    parser.add_argument("--topic", help="image topic of --bag (default: its only image topic)")
    parser.add_argument("--frames", type=int,
                        help=f"stop after this many frames (camera default: {DEFAULT_CAMERA_FRAMES})")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"output folder, replaced if it exists (default: {DEFAULT_OUTPUT}/)")
    parser.add_argument("--pace", choices=("lockstep", "recorded"), default="lockstep",
                        help="lockstep: send each image once the node answered the previous one (every frame "
                             "processed); recorded: the recorded timing (the node may drop frames)")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor with --pace recorded")
    parser.add_argument("--model", type=Path, help="emotion model (default: the shipped model)")
    parser.add_argument("--params-file", type=Path, help="node parameter YAML (default: the shipped one)")
    return parser


def _inputs(args: argparse.Namespace) -> list[Path]:
    """The user's input files (bag, video), which the output folder must never replace."""
    return [path for path in (args.bag, args.video) if path is not None]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``emotion_demo``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.frames is not None and args.frames < 1:
        print("emotion_demo: error: --frames must be >= 1", file=sys.stderr)
        return 2
    if args.rate <= 0:
        print("emotion_demo: error: --rate must be > 0", file=sys.stderr)
        return 2
    from emotion_recognition.tools import bagio

    try:
        summary = run_demo(args)
    except (DemoError, bagio.OutputError, FileExistsError) as exc:
        print(f"emotion_demo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("emotion_demo: interrupted; no output written", file=sys.stderr)
        return 130
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
