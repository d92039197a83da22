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
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from emotion_recognition.resources import resolve_model_path, shipped_file
from emotion_recognition.spec import EMOTION_LABELS
from emotion_recognition.tools.node_client import ANSWER_TIMEOUT_S, NodeClient, NodeGoneError
from emotion_recognition.tools.optional import MissingDependencyError
from emotion_recognition.tools.process import LoggedProcess, node_command
from emotion_recognition.tools.reporting import CSV_NAME, Timeline, track_lines
from emotion_recognition.tools.sources import (
    DEFAULT_CAMERA_FRAMES,
    Source,
    SourceError,
    bag_source,
    capture_source,
    sample_source,
)

# Domain IDs the demo picks from when ROS_DOMAIN_ID is not set: valid on Linux, outside the ports of
# the ephemeral range and away from 0 (everyone's default) and the test suite's range.
DEMO_DOMAIN_RANGE = (215, 232)
NAMESPACE = "/emotion_demo"
DEFAULT_OUTPUT = Path("demo_output")
# Seconds to wait for the node to come up (import, model load, DDS discovery) before giving up.
NODE_START_TIMEOUT_S = 90.0
# Seconds to wait for the last answers after the last image was sent.
DRAIN_TIMEOUT_S = 5.0
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


def open_source(args: argparse.Namespace, workdir: Path) -> Source:
    """The image source the options ask for (the built-in sample by default).

    Raises:
        SourceError: a bag, video or camera that cannot be opened.
    """
    if args.video is not None or args.camera is not None:
        return capture_source(args.video, args.camera, args.frames)
    if args.bag is not None:
        return bag_source(args.bag, args.topic, args.frames)
    return sample_source(workdir, args.frames)


def start_node(
    params_file: Path | None, model: Path | None, compressed: bool, log_path: Path
) -> LoggedProcess:
    """The node, started as its own process (what ``ros2 run`` would start) in :data:`NAMESPACE`, with
    its log captured in ``log_path``."""
    ros_args = [
        "-r",
        f"__ns:={NAMESPACE}",
        "-p",
        "autostart:=true",
        "-p",
        f"use_compressed:={'true' if compressed else 'false'}",
    ]
    if model is not None:
        ros_args += ["-p", f"model_path:={model}"]
    return LoggedProcess(node_command(ros_args, params_file), log_path)


def feed_node(
    client: NodeClient, source: Source, args: argparse.Namespace, log: Callable[[str], None]
) -> list[int]:
    """Publish the source's images to the node (lockstep or paced, see ``--pace``); return the stamps
    sent, in order.

    Raises:
        NodeGoneError: the node exited.
        DemoError: the node answered none of the images.
    """
    from rclpy.serialization import deserialize_message

    from emotion_recognition.ros.messages import stamp_ns
    from emotion_recognition.tools.bag_replay import paced

    msgtype = client.publisher.msg_type
    lockstep = args.pace == "lockstep"
    rate = None if lockstep or not source.recorded_timing else args.rate
    sent: list[int] = []
    for _, raw in paced(source.messages, rate=rate):
        client.check_node()
        stamp = stamp_ns(deserialize_message(raw, msgtype).header)
        sent.append(stamp)
        if not lockstep:
            client.publisher.publish(raw)
        elif not client.send_and_wait(raw, stamp):
            log(
                f"emotion_demo: warning: no answer to the image stamped {stamp} "
                f"within {ANSWER_TIMEOUT_S:.0f} s"
            )
    client.drain(sent, DRAIN_TIMEOUT_S)
    if sent and not client.collected.emotions:
        raise DemoError(
            f"the node answered none of the {len(sent)} images sent:\n{client.process.log_tail()}"
        )
    return sent


def run_demo(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo as described in the module docstring; return the summary (also in summary.json).

    Raises:
        DemoError, SourceError, NodeGoneError: the node does not start or no image source could be opened.
    """
    from emotion_recognition.tools import bagio
    from emotion_recognition.tools.bag_replay import use_large_image_profile

    prepare_ros_environment()
    use_large_image_profile()  # this process and the node publish 900 KB images
    model, reason = resolve_model_path(str(args.model) if args.model else "")
    if model is None:
        raise DemoError(reason)
    started = time.monotonic()
    output = Path(args.output)
    replaced = bagio.staged_output_dir(output, overwrite=True, protected=_inputs(args), only_outputs=True)
    with tempfile.TemporaryDirectory(prefix="emotion_demo-") as workdir, replaced as staging:
        source = open_source(args, Path(workdir))
        log(f"emotion_demo: ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, source: {source.description}")
        node = start_node(
            args.params_file or default_params_file(),
            Path(args.model) if args.model else None,
            source.compressed,
            staging / "node.log",
        )
        sent, collected = _talk_to_node(node, source, args, started, log)
        summary = write_outputs(staging, sent, collected, source)
        summary.update(
            {
                "ros_domain_id": int(os.environ["ROS_DOMAIN_ID"]),
                "node_command": node.command,
                "node_exit_status": node.returncode,
                "pace": args.pace,
                "wall_s": round(time.monotonic() - started, 2),
                "output": str(output.resolve()),
            }
        )
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _talk_to_node(
    node: LoggedProcess, source: Source, args: argparse.Namespace, started: float, log: Callable[[str], None]
) -> tuple[list[int], Any]:
    """Connect to the started node, feed it the source and stop it; return the stamps sent and what was
    collected."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CompressedImage, Image

    # No rclpy signal handler: Ctrl-C raises KeyboardInterrupt here, and the finally blocks stop the
    # node and remove the half-written output.
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    client = None
    try:
        client = NodeClient(NAMESPACE, CompressedImage if source.compressed else Image, node)
        client.wait_until_connected(NODE_START_TIMEOUT_S)
        log(f"emotion_demo: node up after {time.monotonic() - started:.1f} s; sending images")
        return feed_node(client, source, args, log), client.collected
    finally:
        if client is not None:
            client.close()
        rclpy.try_shutdown()
        node.stop()


def write_outputs(folder: Path, sent: Sequence[int], collected: Any, source: Source) -> dict[str, Any]:
    """Write the annotated frames, the video and the CSV timeline; return the summary data."""
    frames_dir = folder / "frames"
    frames_dir.mkdir()
    stamps = [s for s in sent if s in collected.emotions]
    writer = None
    with (folder / CSV_NAME).open("w", newline="") as handle:
        timeline = Timeline(handle, EMOTION_LABELS)
        for index, stamp in enumerate(stamps):
            timeline.add(collected.emotions[stamp])
            image = collected.annotated.get(stamp)
            if image is None:
                continue
            cv2.imwrite(str(frames_dir / f"frame_{index:05d}.png"), image)
            if writer is None:
                writer = cv2.VideoWriter(
                    str(folder / VIDEO_NAME),
                    cv2.VideoWriter_fourcc(*"mp4v"),
                    _frame_rate(stamps),
                    (image.shape[1], image.shape[0]),
                )
            writer.write(image)
    if writer is not None:
        writer.release()
    return {
        "source": source.description,
        "frames_sent": len(sent),
        "frames_answered": len(stamps),
        "annotated_frames": sum(1 for s in stamps if s in collected.annotated),
        "frames_with_faces": timeline.frames_with_faces,
        "faces": timeline.faces,
        "labels": list(collected.emotions[stamps[0]].labels) if stamps else [],
        "tracks": {str(t): c for t, c in timeline.track_labels.items()},
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
        *track_lines(summary["tracks"]),
        f"took {summary['wall_s']} s (ROS_DOMAIN_ID {summary['ros_domain_id']})",
        f"output: {summary['output']} (frames/*.png, {summary['video'] or 'no video'}, "
        "timeline.csv, summary.json, node.log)",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``emotion_demo``."""
    parser = argparse.ArgumentParser(
        prog="emotion_demo",
        description="Start the emotion_recognition node, feed it images over DDS (the built-in sample by "
        "default) and save what it publishes.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--bag", type=Path, help="replay this rosbag2 (sqlite3 or MCAP) instead of the sample"
    )
    source.add_argument("--video", type=Path, help="use this video file instead of the sample")
    source.add_argument("--camera", type=int, metavar="N", help="use camera device N (/dev/videoN)")
    parser.add_argument("--topic", help="image topic of --bag (default: its only image topic)")
    parser.add_argument(
        "--frames", type=int, help=f"stop after this many frames (camera default: {DEFAULT_CAMERA_FRAMES})"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"output folder, replaced if it exists (default: {DEFAULT_OUTPUT}/)",
    )
    parser.add_argument(
        "--pace",
        choices=("lockstep", "recorded"),
        default="lockstep",
        help="lockstep: send each image once the node answered the previous one (every frame "
        "processed); recorded: the recorded timing (the node may drop frames)",
    )
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
    except (
        DemoError,
        SourceError,
        NodeGoneError,
        MissingDependencyError,
        bagio.OutputError,
        FileExistsError,
    ) as exc:
        print(f"emotion_demo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("emotion_demo: interrupted; no output written", file=sys.stderr)
        return 130
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
