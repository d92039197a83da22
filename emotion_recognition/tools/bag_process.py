"""Offline emotion analysis of a rosbag2 (console script ``emotion_bag_process``).

Reads one image topic (``sensor_msgs/Image`` or ``CompressedImage``) of a bag recorded with
``ros2 bag record`` (sqlite3 or MCAP), runs the perception core on every frame as fast as the CPU
allows, and writes into an output folder:

* ``bag/``: a rosbag2 (same storage as the input unless ``--storage``) with the input images and, per
  image, the messages the node would publish for it: ``emotions`` (``emotion_msgs/FaceEmotionArray``),
  ``detections`` (``vision_msgs/Detection2DArray``) and the annotated image, each with the input
  image's header and bag timestamp;
* ``timeline.csv``: one row per face per frame (time, track id, box, label, every probability);
* ``emotions.png``: each track's emotion probabilities over time;
* ``summary.json``: the printed summary as data.

The folder is written under a temporary name next to the output and renamed when complete, so an
error (a missing topic, a corrupt or truncated bag, Ctrl-C) never leaves a half-written output behind.

Why two message libraries: images are large, results are small.

* Input images are deserialised with ``rosbags``, whose ``uint8[]`` fields are numpy views on the raw
  bytes (rclpy would copy every pixel into a Python ``array``), and the raw bytes are written to the
  output bag unchanged.
* The result messages (``emotions``, ``detections``) are built by the node's own functions
  (:mod:`emotion_recognition.ros.messages`, rclpy message classes) and serialised with rclpy, so the
  bag holds byte for byte what the node would publish. Those functions take an rclpy ``Header``, so
  the input's header is rebuilt as one (two integers and a string).
* The annotated image is built and serialised with ``rosbags`` (one copy of the pixels instead of the
  three of an rclpy ``Image``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import json
import queue
import sqlite3
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from emotion_recognition.core.classifier import ModelOutputError
from emotion_recognition.core.image import ImageLimits, InvalidImageError
from emotion_recognition.ros import parameters
from emotion_recognition.ros.image_conversion import (
    ImageConversionError,
    compressed_msg_to_array,
    image_msg_to_array,
)
from emotion_recognition.ros.messages import stamp_ns, to_detection_array, to_face_emotion_array
from emotion_recognition.spec import EMOTION_LABELS
from emotion_recognition.tools import bagio, optional
from emotion_recognition.tools.reporting import CSV_NAME, Timeline, track_lines

# Topic names in the output bag: the node's output topic names (see emotion_recognition/ros/).
EMOTIONS_TOPIC = "/emotions"
DETECTIONS_TOPIC = "/detections"
ANNOTATED_TOPIC = "/image_annotated"
# For compressed input the annotated image is JPEG too, under image_transport's name for it.
ANNOTATED_COMPRESSED_TOPIC = "/image_annotated/compressed"
EMOTIONS_TYPE = "emotion_msgs/msg/FaceEmotionArray"
DETECTIONS_TYPE = "vision_msgs/msg/Detection2DArray"

BAG_DIR = "bag"
PLOT_NAME = "emotions.png"
SUMMARY_NAME = "summary.json"

# Tracks drawn in the plot at most (the ones seen in most frames); the CSV holds all of them.
MAX_PLOTTED_TRACKS = 8
# Bad frames (undecodable images) reported individually before the warnings are summarised.
MAX_FRAME_WARNINGS = 5
# Skipped records listed in summary.json (all are counted), and in the printed summary.
MAX_LISTED_SKIPS = 1000
MAX_PRINTED_SKIPS = 10
# A skip reason is cut to this many characters (a hostile record must not make huge lines).
MAX_REASON_CHARS = 300


def _record_errors() -> tuple[type[BaseException], ...]:
    """What reading one record as an image may raise: rosbags' deserialisation errors for undecodable
    CDR (random bytes, truncation, huge or zero lengths, bad encapsulation), the image checks' errors,
    and the low-level errors a malformed buffer causes."""
    from rosbags.serde import SerdeError

    return (
        SerdeError,
        ImageConversionError,
        InvalidImageError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        struct.error,
        OverflowError,
        MemoryError,
    )


@dataclass
class ProcessSummary:
    """What one offline run found and how fast it went."""

    bag: str
    topic: str
    msgtype: str
    storage: str
    output: str = ""
    frames: int = 0
    skipped_frames: int = 0
    # (bag time ns, reason) of the first MAX_LISTED_SKIPS skipped records
    skipped: list[tuple[int, str]] = field(default_factory=list)
    frames_with_faces: int = 0
    faces: int = 0
    wall_s: float = 0.0
    # CPU seconds this process used for the frames (all threads): unlike wall time, not inflated by
    # other programs competing for the cores.
    cpu_s: float = 0.0
    perception_ms: float = 0.0
    detect_ms: float = 0.0
    classify_ms: float = 0.0
    # track id -> label -> number of frames the track had that label
    track_labels: dict[int, dict[str, int]] = field(default_factory=dict)

    @property
    def ms_per_frame(self) -> float:
        """End-to-end milliseconds per frame: reading, decoding, perception, drawing and writing."""
        return 1000.0 * self.wall_s / self.frames if self.frames else 0.0

    @property
    def fps(self) -> float:
        """End-to-end frames per second (offline throughput)."""
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "bag": self.bag,
            "topic": self.topic,
            "msgtype": self.msgtype,
            "storage": self.storage,
            "output": self.output,
            "frames": self.frames,
            "skipped_frames": self.skipped_frames,
            "skipped": [{"bag_time_ns": t, "reason": reason} for t, reason in self.skipped],
            "frames_with_faces": self.frames_with_faces,
            "faces": self.faces,
            "tracks": len(self.track_labels),
            "wall_s": round(self.wall_s, 4),
            "ms_per_frame": round(self.ms_per_frame, 3),
            "fps": round(self.fps, 2),
            "cpu_ms_per_frame": round(1000.0 * self.cpu_s / max(self.frames, 1), 3),
            "perception_ms_per_frame": round(self.perception_ms / max(self.frames, 1), 3),
            "detect_ms_per_frame": round(self.detect_ms / max(self.frames, 1), 3),
            "classify_ms_per_frame": round(self.classify_ms / max(self.frames, 1), 3),
            "track_labels": {str(k): v for k, v in sorted(self.track_labels.items())},
        }

    def format(self) -> str:
        """The human-readable summary printed at the end of a run."""
        n = max(self.frames, 1)
        lines = [
            f"bag: {self.bag} (topic {self.topic}, {self.msgtype}, {self.storage})",
            f"frames: {self.frames} processed, {self.skipped_frames} skipped, "
            f"{self.frames_with_faces} with faces; faces: {self.faces}; tracks: {len(self.track_labels)}",
            f"offline throughput: {self.fps:.1f} frames/s, {self.ms_per_frame:.2f} ms per frame end to end "
            f"(perception {self.perception_ms / n:.2f} ms: detection {self.detect_ms / n:.2f}, "
            f"classification {self.classify_ms / n:.2f}); "
            f"CPU time {1000.0 * self.cpu_s / n:.2f} ms per frame",
        ]
        for timestamp, reason in self.skipped[:MAX_PRINTED_SKIPS]:
            lines.append(f"skipped: bag time {timestamp} ns: {reason}")
        if self.skipped_frames > MAX_PRINTED_SKIPS:
            lines.append(
                f"skipped: ... {self.skipped_frames - MAX_PRINTED_SKIPS} more (summary.json lists "
                f"up to {MAX_LISTED_SKIPS})"
            )
        lines += track_lines(dict(sorted(self.track_labels.items())))
        if self.output:
            lines.append(f"output: {self.output}")
        return "\n".join(lines)


def write_plot(path: Path, csv_path: Path, labels: Sequence[str]) -> None:
    """Plot each track's emotion probabilities over time into a PNG: one panel per track, a line per
    emotion, and a strip of squares on top coloured by each frame's dominant emotion."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracks: dict[int, list[tuple[float, list[float], str]]] = collections.defaultdict(list)
    with csv_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            probabilities = [float(row[f"p_{label}"]) for label in labels]
            tracks[int(row["track_id"])].append((float(row["time_s"]), probabilities, row["label"]))
    shown = sorted(tracks, key=lambda t: (-len(tracks[t]), t))[:MAX_PLOTTED_TRACKS]
    shown.sort()
    colours = plt.get_cmap("tab10")
    panels = max(len(shown), 1)
    figure, axes = plt.subplots(panels, 1, figsize=(10, 2.2 * panels + 0.8), sharex=True, squeeze=False)
    if not shown:
        axes[0][0].text(0.5, 0.5, "no faces found", ha="center", va="center", transform=axes[0][0].transAxes)
        axes[0][0].set_axis_off()
    for axis, track_id in zip(axes[:, 0], shown):
        points = tracks[track_id]
        times = np.array([p[0] for p in points])
        probabilities = np.array([p[1] for p in points])
        for i, label in enumerate(labels):
            axis.plot(times, probabilities[:, i], ".-", ms=3, lw=1.2, color=colours(i % 10), label=label)
        # A strip above the curves: each frame's dominant emotion, in that emotion's colour.
        index = {label: i for i, label in enumerate(labels)}
        axis.scatter(
            times,
            np.full(len(times), 1.07),
            s=14,
            marker="s",
            color=[colours(index.get(p[2], 0) % 10) for p in points],
        )
        dominant = collections.Counter(p[2] for p in points).most_common(1)[0]
        axis.set_title(
            f"track {track_id}: {len(points)} frames, mostly {dominant[0]} ({dominant[1]})", fontsize=10
        )
        axis.set_ylim(-0.02, 1.12)
        axis.set_yticks([0.0, 0.25, 0.5, 0.75, 1.0])
        axis.set_ylabel("probability")
        axis.grid(alpha=0.3)
    if shown:
        axes[0][0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        axes[-1][0].set_xlabel("time since first frame [s]")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


def pipeline_setup(
    model_path: Path | str | None = None, params_file: Path | str | None = None
) -> parameters.PipelineSetup:
    """The perception pipeline and image size limits exactly as the node builds them
    (:func:`parameters.build_pipeline`): the node's parameter values (defaults or ``params_file``) and
    its model (``model_path``, else the parameter file's, else the shipped one).

    Raises:
        parameters.SetupError: bad parameter values, no model file or an unusable model.
    """
    values = parameters.values_from_file(params_file) if params_file is not None else parameters.defaults()
    if model_path is not None:
        values["model_path"] = str(model_path)
    return parameters.build_pipeline(values)


class _Decoded:
    """An input image: its header (an rclpy ``std_msgs/Header``, for the output messages) and, for the
    core, the pixels and their channel order."""

    __slots__ = ("header", "image", "channel_order")

    def __init__(self, header: Header, image: np.ndarray, channel_order: str) -> None:
        self.header, self.image, self.channel_order = header, image, channel_order


def _decode(raw: bytes, msgtype: str, limits: ImageLimits) -> _Decoded:
    """Deserialize one image message (with rosbags: the pixels stay a view on ``raw``, no copy) and
    convert it for the core with the node's own conversion and size limits.

    Raises:
        any of :func:`_record_errors`: for records that cannot be read as images.
    """
    msg = bagio.typestore().deserialize_cdr(raw, msgtype)
    if msgtype == bagio.COMPRESSED_IMAGE_TYPE:
        image, channel_order = compressed_msg_to_array(msg, limits)
    else:
        image, channel_order = image_msg_to_array(msg, limits)
    stamp = msg.header.stamp
    header = Header(
        stamp=Time(sec=int(stamp.sec), nanosec=int(stamp.nanosec)), frame_id=str(msg.header.frame_id)
    )
    return _Decoded(header, image, channel_order)


def _annotated_bytes(annotated: np.ndarray, header: Header, compressed: bool) -> bytes:
    """The serialized annotated image in the input's kind: JPEG ``CompressedImage`` or ``bgr8`` ``Image``
    (built with rosbags: one copy of the pixels instead of three)."""
    message = bagio.image_message(annotated, stamp_ns(header), header.frame_id, compressed=compressed)
    msgtype = bagio.COMPRESSED_IMAGE_TYPE if compressed else bagio.IMAGE_TYPE
    return bytes(bagio.typestore().serialize_cdr(message, msgtype))


def process_bag(
    bag: Path | str,
    output: Path | str,
    topic: str | None = None,
    storage: str | None = None,
    model: Path | str | None = None,
    params_file: Path | str | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> ProcessSummary:
    """Process one image topic of ``bag`` into the output folder ``output`` (see the module docstring).

    Args:
        bag: rosbag2 directory, or a single ``.db3`` / ``.mcap`` file.
        output: output folder; must not exist unless ``overwrite``.
        topic: image topic; ``None`` picks the bag's only image topic.
        storage: ``"sqlite3"`` or ``"mcap"`` for the output bag; ``None`` keeps the input's.
        model: emotion model file; ``None`` uses the node's default model.
        params_file: the node's parameter YAML, for the same detector and tracker settings as a node
            started with it (``None``: the node's defaults).
        overwrite: replace an existing output folder (only once the new one is complete).
        progress: show a progress bar (``None``: only on a terminal).
        log: where warnings go (one string per call).

    Raises:
        bagio.BagError: missing, corrupt or truncated bag; missing topic; unsupported message type.
        FileExistsError: the output exists and ``overwrite`` is false.
        parameters.SetupError: bad parameter values, no model file or an unusable model.
        bagio.OutputError: the output is, lies inside or contains the bag; it exists and is not an
            earlier output; or it cannot be written (read-only file system, full disk).
    """
    bag, output = Path(bag), Path(output)
    bagio.refuse_overlap(output, [bag])
    setup = pipeline_setup(model, params_file)
    bagio.require_types(EMOTIONS_TYPE, DETECTIONS_TYPE)
    with bagio.open_image_topic(bag, topic) as (reader, image_topic):
        connection = next(c for c in reader.connections if c.topic == image_topic.name)
        definition = (connection.msgdef.data or None, connection.digest or None)
    summary = ProcessSummary(
        str(bag), image_topic.name, image_topic.msgtype, storage or image_topic.storage_id
    )
    with (
        bagio.staged_output_dir(output, overwrite=overwrite, protected=[bag]) as staging,
        bagio.output_errors(output),
    ):
        _BagRun(bag, image_topic, definition, setup, staging, summary, log).run(progress)
        write_plot(staging / PLOT_NAME, staging / CSV_NAME, EMOTION_LABELS)
        summary.output = str(output.resolve())
        (staging / SUMMARY_NAME).write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    return summary


# Frames buffered between the reading, perception and writing stages (bounds memory: ~2 MB a frame).
STAGE_QUEUE_DEPTH = 8
_END = object()  # marks the end of a stage's stream


class _Stage(threading.Thread):
    """A worker thread fed through a bounded queue; its first exception is kept for the main thread."""

    def __init__(self, name: str, target: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self._stop_event = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises it
            self.error = exc
            self._stop_event.set()


def _put(queue_: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first; returns whether it was put."""
    while not stop.is_set():
        try:
            queue_.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class _BagRun:
    """The frame loop of one :func:`process_bag` call; fills its summary.

    Three stages overlap: a reader thread reads and decodes the images (sqlite, MCAP and JPEG decoding
    release the GIL), the calling thread runs the perception core in bag order (tracking needs the
    order), a writer thread serialises and writes the results and the CSV. Any stage's error stops all
    three and is raised.
    """

    def __init__(
        self,
        bag: Path,
        image_topic: Any,
        input_definition: tuple[Any, Any],
        setup: parameters.PipelineSetup,
        staging: Path,
        summary: ProcessSummary,
        log: Callable[[str], None],
    ) -> None:
        self.bag, self.topic, self.input_definition = bag, image_topic, input_definition
        self.pipeline, self.limits = setup.pipeline, setup.limits
        self.staging, self.summary, self.log = staging, summary, log
        self.decoded: queue.Queue = queue.Queue(STAGE_QUEUE_DEPTH)
        self.results: queue.Queue = queue.Queue(STAGE_QUEUE_DEPTH)
        self.stop = threading.Event()

    def run(self, progress: bool | None) -> None:
        """Process every frame (a progress bar when ``progress``; ``None``: only on a terminal)."""
        reader, writer = (
            _Stage("bag_reader", self._read, self.stop),
            _Stage("bag_writer", self._write, self.stop),
        )
        tqdm = optional.require("tqdm", "emotion_bag_process").tqdm
        bar = tqdm(
            total=self.topic.message_count,
            unit="frame",
            desc="processing",
            leave=False,
            disable=None if progress is None else not progress,
        )
        started, started_cpu = time.perf_counter(), time.process_time()
        reader.start()
        writer.start()
        finished = False
        try:
            self._perceive(bar)
            finished = True
        finally:
            self._shut_down(reader, writer, stop_reader=not finished)
            self.summary.wall_s = time.perf_counter() - started
            self.summary.cpu_s = time.process_time() - started_cpu
            bar.close()
        for stage in (reader, writer):
            if stage.error is not None:
                raise stage.error
        if self.summary.skipped_frames > MAX_FRAME_WARNINGS:
            self.log(
                f"warning: {self.summary.skipped_frames} records could not be used as images and were skipped"
            )

    def _perceive(self, bar: Any) -> None:
        """The calling thread: run the core on each decoded frame, in order."""
        while True:
            item = self.decoded.get()
            if item is _END or self.stop.is_set():
                return
            bar.update(1)
            timestamp, raw, frame = item
            if isinstance(frame, BaseException):
                self._skip(timestamp, frame)
                continue
            try:
                result, annotated = self.pipeline.process(
                    frame.image,
                    stamp_ns(frame.header) / 1e9,
                    channel_order=frame.channel_order,
                    annotate=True,
                )
            except (InvalidImageError, ModelOutputError) as exc:
                self._skip(timestamp, exc)
                continue
            if not _put(self.results, (timestamp, raw, frame.header, result, annotated), self.stop):
                return
            self.summary.frames += 1
            self.summary.perception_ms += result.timings.total_ms
            self.summary.detect_ms += result.timings.detect_ms
            self.summary.classify_ms += result.timings.classify_ms

    def _skip(self, timestamp: int, exc: BaseException) -> None:
        self.summary.skipped_frames += 1
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        if len(reason) > MAX_REASON_CHARS:
            reason = f"{reason[:MAX_REASON_CHARS]}... ({len(reason)} characters)"
        if len(self.summary.skipped) < MAX_LISTED_SKIPS:
            self.summary.skipped.append((int(timestamp), reason))
        if self.summary.skipped_frames <= MAX_FRAME_WARNINGS:
            self.log(f"warning: skipped the image at bag time {timestamp} ns: {reason}")

    def _read(self) -> None:
        """Reader thread: ``(bag time, raw bytes, decoded frame or the exception)`` per image."""
        record_errors = _record_errors()
        try:
            with bagio.open_image_topic(self.bag, self.topic.name) as (reader, _):
                for _, timestamp, raw in bagio.iter_topic_messages(reader, self.topic.name):
                    try:
                        item: tuple = (timestamp, raw, _decode(raw, self.topic.msgtype, self.limits))
                    except record_errors as exc:
                        item = (timestamp, raw, exc)
                    if not _put(self.decoded, item, self.stop):
                        return
        finally:
            _put(self.decoded, _END, self.stop)

    def _write(self) -> None:
        """Writer thread (sqlite objects stay in the thread that made them): the output bag and the CSV."""
        store = bagio.typestore()
        writer = bagio.open_writer(self.staging / BAG_DIR, self.summary.storage)
        try:
            definition, digest = self.input_definition
            connections = (
                writer.add_connection(
                    self.topic.name, self.topic.msgtype, msgdef=definition, rihs01=digest, typestore=store
                ),
                writer.add_connection(EMOTIONS_TOPIC, EMOTIONS_TYPE, typestore=store),
                writer.add_connection(DETECTIONS_TOPIC, DETECTIONS_TYPE, typestore=store),
                writer.add_connection(
                    ANNOTATED_COMPRESSED_TOPIC if self.topic.compressed else ANNOTATED_TOPIC,
                    self.topic.msgtype,
                    typestore=store,
                ),
            )
            with (self.staging / CSV_NAME).open("w", newline="") as handle:
                timeline = Timeline(handle, EMOTION_LABELS)
                while (item := self.results.get()) is not _END:
                    self._write_frame(writer, connections, timeline, *item)
        finally:
            writer.close()
        self.summary.faces, self.summary.frames_with_faces = timeline.faces, timeline.frames_with_faces
        self.summary.track_labels = timeline.track_labels

    def _write_frame(
        self,
        writer: Any,
        connections: tuple,
        timeline: Timeline,
        timestamp: int,
        raw: bytes,
        header: Header,
        result: Any,
        annotated: np.ndarray,
    ) -> None:
        image_out, emotions_out, detections_out, annotated_out = connections
        emotions = to_face_emotion_array(result, header)
        writer.write(image_out, timestamp, raw)
        writer.write(emotions_out, timestamp, serialize_message(emotions))
        writer.write(detections_out, timestamp, serialize_message(to_detection_array(result, header)))
        writer.write(annotated_out, timestamp, _annotated_bytes(annotated, header, self.topic.compressed))
        timeline.add(emotions)

    def _shut_down(self, reader: _Stage, writer: _Stage, stop_reader: bool) -> None:
        """Let the writer finish what is queued, then stop the reader (at once after an exception)."""
        if stop_reader:
            self.stop.set()
        while writer.is_alive():
            try:
                self.results.put(_END, timeout=0.1)
                break
            except queue.Full:
                continue
        writer.join()
        self.stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                self.decoded.get_nowait()
            reader.join(0.05)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``emotion_bag_process``."""
    parser = argparse.ArgumentParser(
        prog="emotion_bag_process",
        description="Run emotion recognition offline over an image topic of a rosbag2 (sqlite3 or MCAP).",
    )
    parser.add_argument("bag", type=Path, help="rosbag2 folder (or a single .db3/.mcap file)")
    parser.add_argument(
        "-o", "--output", type=Path, help="output folder (default: <bag name>_emotions next to the bag)"
    )
    parser.add_argument("-t", "--topic", help="image topic (default: the bag's only image topic)")
    parser.add_argument(
        "--storage", choices=bagio.STORAGE_IDS, help="output bag storage (default: the input's)"
    )
    parser.add_argument(
        "--model", type=Path, help="emotion model (.tflite or .keras; default: the node's model)"
    )
    parser.add_argument(
        "--params-file",
        type=Path,
        help="the node's parameter YAML (detector/tracker settings; default: the node's defaults)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``emotion_bag_process``; returns the exit status (0 on success)."""
    args = build_parser().parse_args(argv)
    bag = args.bag
    output = args.output or bag.resolve().parent / f"{bag.resolve().name.split('.')[0]}_emotions"

    def warn(text: str) -> None:
        print(text, file=sys.stderr)

    try:
        optional.require_all(("tqdm", "matplotlib"), "emotion_bag_process")
        summary = process_bag(
            bag,
            output,
            topic=args.topic,
            storage=args.storage,
            model=args.model,
            params_file=args.params_file,
            overwrite=args.overwrite,
            progress=False if args.no_progress else None,
            log=warn,
        )
    except (
        bagio.BagError,
        bagio.OutputError,
        FileExistsError,
        FileNotFoundError,
        ValueError,
        optional.MissingDependencyError,
    ) as exc:
        print(f"emotion_bag_process: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as exc:  # writing the output: full disk, read-only file system
        print(
            f"emotion_bag_process: error: cannot write the output {output}: {_one_line(exc)}", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        print("emotion_bag_process: interrupted; no output written", file=sys.stderr)
        return 130
    print(summary.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
