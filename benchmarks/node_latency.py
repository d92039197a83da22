"""Latency of the emotion_recognition node over Fast DDS, as a camera would drive it.

    scripts/dev-env python benchmarks/node_latency.py                    # 30 s at 30 FPS, then 30 s at 60 FPS
    scripts/dev-env python benchmarks/node_latency.py --duration 10 --model /path/model.tflite

It starts the node as its own process (``python -m emotion_recognition.ros.node`` with the shipped
parameter file, ``image`` remapped), then publishes 640x480 bgr8 frames with one real face (the
astronaut photo pasted on a face-free photo, moving a few pixels per frame) at 30 FPS and then at 60
FPS, each frame with its own header stamp. For each rate it prints the median and p95 latency from
publishing a frame to receiving its ``emotions`` message (matched by stamp), frames published,
answered and dropped (unanswered; and what the node's /diagnostics counted), the node's RSS; at the
end the node's peak RSS (VmHWM), the time from starting the process to the first ``emotions`` message,
and whether TensorFlow is loaded in the node process (it must not be with a .tflite model).

Frames of 900 KB need a larger Fast DDS shared-memory segment on the publisher's side than the
default (README "Node"): this script uses config/fastdds_large_images.xml for itself (and the node)
unless FASTDDS_DEFAULT_PROFILES_FILE is already set.

Not a test: it asserts nothing; the numbers depend on the machine and its load (printed with them).
"""

from __future__ import annotations

import argparse
import array
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Before rclpy creates its first DDS participant in this process.
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO_ROOT / "config" / "fastdds_large_images.xml"))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from emotion_msgs.msg import FaceEmotionArray  # noqa: E402
from emotion_recognition.tools.process import LoggedProcess, node_command  # noqa: E402
from test.support.images import ASTRONAUT, FacePlacement, compose_frame  # noqa: E402

PARAMS_FILE = REPO_ROOT / "config" / "emotion_recognition.yaml"
SHIPPED_MODEL = REPO_ROOT / "models" / "emotion_model_int8.tflite"
IMAGE_TOPIC = "/bench/camera/image_raw"
WIDTH, HEIGHT = 640, 480


def _frames(count: int = 24) -> list[np.ndarray]:
    """One face moving right and back (ping-pong), a few pixels per frame."""
    xs = [220 + 3 * i for i in range(count // 2)]
    xs += list(reversed(xs))
    return [compose_frame(WIDTH, HEIGHT, [FacePlacement(ASTRONAUT, x, 150, 110)])[0] for x in xs]


def _image_msg(bgr: np.ndarray) -> Image:
    msg = Image(height=HEIGHT, width=WIDTH, encoding="bgr8", is_bigendian=0, step=WIDTH * 3)
    msg.header.frame_id = "bench_camera"
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(bgr).tobytes())
    msg.data = data
    return msg


def _proc_status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            return dict(line.rstrip("\n").split(":\t", 1) for line in status if ":\t" in line)
    except FileNotFoundError:
        return {}


def _mb(kb_text: str | None) -> float:
    return int(kb_text.split()[0]) / 1024.0 if kb_text else float("nan")


def _tensorflow_mapped(pid: int) -> bool:
    """True when any TensorFlow library is mapped into the process."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8") as maps:
            return any("tensorflow" in line for line in maps)
    except FileNotFoundError:
        return False


class Collector:
    """Receive times of ``emotions`` messages by stamp, and the latest /diagnostics values."""

    def __init__(self) -> None:
        self.received: dict[tuple[int, int], float] = {}
        self.first_answer: float | None = None
        self.diagnostics: dict[str, str] = {}
        self.reports: list[tuple[float, dict[str, str]]] = []  # (receive time, values) of every report
        self.lock = threading.Lock()

    def on_emotions(self, msg: FaceEmotionArray) -> None:
        now = time.monotonic()
        with self.lock:
            self.received[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = now
            if self.first_answer is None:
                self.first_answer = now

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("/bench/emotion_recognition:"):
                with self.lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}
                    self.reports.append((time.monotonic(), self.diagnostics))


def _run_rate(
    publisher,
    frames: list[Image],
    collector: Collector,
    fps: float,
    duration_s: float,
    first_sec: int,
    pid: int,
) -> dict:
    """Publish at ``fps`` for ``duration_s``; return the published stamps with their publish times."""
    published: dict[tuple[int, int], float] = {}
    rss_samples = []
    period = 1.0 / fps
    count = int(round(fps * duration_s))
    start = time.monotonic()
    for i in range(count):
        target = start + i * period
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        msg = frames[i % len(frames)]
        stamp = (first_sec + i // int(fps), int((i % int(fps)) * 1e9 / fps))
        msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
        published[stamp] = time.monotonic()
        publisher.publish(msg)
        if i % int(fps) == 0:
            rss_samples.append(_mb(_proc_status(pid).get("VmRSS")))
    time.sleep(1.0)  # let the last answers arrive
    return {"published": published, "rss": rss_samples}


def _report(name: str, run: dict, collector: Collector, diag_before: dict, diag_after: dict) -> None:
    published = run["published"]
    start, end = min(published.values()), max(published.values()) + 1.5
    with collector.lock:
        reports = [values for t, values in collector.reports if start < t <= end]
    weights = [
        (float(r["processing time mean (ms)"]), float(r["processed rate (Hz)"]))
        for r in reports
        if "processing time mean (ms)" in r
    ]
    total_weight = sum(w for _, w in weights)
    processing_mean = sum(v * w for v, w in weights) / total_weight if total_weight else float("nan")
    pipeline_weights = [
        (float(r["pipeline time mean (ms)"]), float(r["processed rate (Hz)"]))
        for r in reports
        if "pipeline time mean (ms)" in r
    ]
    pipeline_mean = (sum(v * w for v, w in pipeline_weights) / total_weight) if total_weight else float("nan")
    processing_max = max(
        (float(r.get("processing time max (ms)", "nan")) for r in reports), default=float("nan")
    )
    with collector.lock:
        latencies = [
            (collector.received[stamp] - sent) * 1000.0
            for stamp, sent in published.items()
            if stamp in collector.received
        ]
    answered = len(latencies)
    dropped_node = int(diag_after.get("dropped frames (total)", "0")) - int(
        diag_before.get("dropped frames (total)", "0")
    )
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else float("nan")
    print(f"\n{name}")
    print(f"  frames published            {len(published)}")
    print(f"  frames answered (emotions)  {answered}")
    print(
        f"  frames unanswered           {len(published) - answered}  "
        f"(node's own count of dropped: {dropped_node})"
    )
    if latencies:
        print(f"  latency median / p95 (ms)   {statistics.median(latencies):.1f} / {p95:.1f}")
        print(f"  latency min / max (ms)      {latencies[0]:.1f} / {latencies[-1]:.1f}")
    print(
        f"  node processing mean / max (ms)  {processing_mean:.1f} / {processing_max:.1f} "
        "(conversion, pipeline, messages; node's /diagnostics)"
    )
    print(f"  of which core pipeline (ms) {pipeline_mean:.1f} (detect, crop, classify, track)")
    rss = run["rss"]
    if rss:
        print(f"  node RSS first / last / max (MB)  {rss[0]:.0f} / {rss[-1]:.0f} / {max(rss):.0f}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per rate (default 30)")
    parser.add_argument("--rates", type=float, nargs="+", default=[30.0, 60.0], help="frames per second")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--domain-id", type=int, default=61)
    return parser.parse_args()


def main() -> None:
    """Run the benchmark and print the numbers."""
    args = _parse_args()
    ros_args = ["-r", "__ns:=/bench", "-r", f"image:={IMAGE_TOPIC}"]
    model = args.model or SHIPPED_MODEL
    if args.model is not None:
        ros_args += ["-p", f"model_path:={args.model}"]
    env = dict(
        os.environ,
        ROS_DOMAIN_ID=str(args.domain_id),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    print(f"model: {model}{'' if model.is_file() else ' (MISSING: the node will fail to configure)'}")
    print(f"Fast DDS profile: {os.environ['FASTDDS_DEFAULT_PROFILES_FILE']}")

    frames = [_image_msg(f) for f in _frames()]
    context = rclpy.Context()
    rclpy.init(args=[], context=context, domain_id=args.domain_id)
    node = rclpy.create_node("node_latency_benchmark", context=context)
    collector = Collector()
    camera_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
    publisher = node.create_publisher(Image, IMAGE_TOPIC, camera_qos)
    node.create_subscription(FaceEmotionArray, "/bench/emotions", collector.on_emotions, 100)
    node.create_subscription(DiagnosticArray, "/diagnostics", collector.on_diagnostics, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    started, started_wall = time.monotonic(), time.time()
    process = LoggedProcess(node_command(ros_args, PARAMS_FILE), env=env, cwd="/")
    try:
        startup_s = _warm_up(process, publisher, frames[0], collector, started)
        if startup_s is None:
            return
        time.sleep(2.0)  # a couple of diagnostics reports
        _measure_rates(args, publisher, frames, collector, process.process.pid)
        _node_report(process, collector, startup_s, started_wall)
    finally:
        print(f"  node exit code              {process.stop()}")
        process.close()
        executor.shutdown(timeout_sec=1.0)
        spinner.join(timeout=5)
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def _measure_rates(args: argparse.Namespace, publisher, frames: list, collector: Collector, pid: int) -> None:
    """One run per ``--rates`` entry, each reported as soon as it is done."""
    first_sec = 100
    for fps in args.rates:
        before = dict(collector.diagnostics)
        run = _run_rate(publisher, frames, collector, fps, args.duration, first_sec, pid)
        time.sleep(1.2)  # the next diagnostics report covers the end of the run
        _report(
            f"{WIDTH}x{HEIGHT} bgr8, one face, {fps:g} FPS for {args.duration:g} s",
            run,
            collector,
            before,
            dict(collector.diagnostics),
        )
        first_sec += int(args.duration) + 10


def _warm_up(
    process: LoggedProcess, publisher, frame: Image, collector: Collector, started: float
) -> float | None:
    """Publish at 30 FPS until the node's first answer; return the seconds from start to it (``None``,
    with the node's log printed, when it does not answer within 60 s)."""
    warmup = 0
    while collector.first_answer is None:
        if not process.alive or time.monotonic() - started > 60:
            print("the node did not answer within 60 s:\n" + process.log())
            return None
        # Warm-up stamps (1 s + n ns) never collide with the measured runs' (from 100 s on).
        frame.header.stamp.sec, frame.header.stamp.nanosec = 1, warmup
        publisher.publish(frame)
        warmup += 1
        time.sleep(1 / 30)
    return collector.first_answer - started


def _node_report(process: LoggedProcess, collector: Collector, startup_s: float, started_wall: float) -> None:
    """Print the node's start-up milestones, memory, TensorFlow use and frame totals."""
    status = _proc_status(process.process.pid)
    print("\nnode process")
    print(f"  start to first emotions (s) {startup_s:.2f}")
    for line in process.log().splitlines():
        for marker in ("configured:", "active:", "first image processed:"):
            if marker in line and line.startswith("[INFO] ["):
                stamp = float(line.split("] [", 1)[1].split("]", 1)[0])
                detail = line.split(marker, 1)[1].strip()[:60]
                print(f"    {marker:<22} at {stamp - started_wall:5.2f} s   {detail}")
    print(f"  peak RSS, VmHWM (MB)        {_mb(status.get('VmHWM')):.0f}")
    print(
        f"  TensorFlow loaded           {collector.diagnostics.get('tensorflow loaded', '?')} (diagnostics), "
        f"{'yes' if _tensorflow_mapped(process.process.pid) else 'no'} (/proc/PID/maps)"
    )
    print(
        f"  node's totals               received {collector.diagnostics.get('received frames (total)')}, "
        f"processed {collector.diagnostics.get('processed frames (total)')}, "
        f"dropped {collector.diagnostics.get('dropped frames (total)')}"
    )


if __name__ == "__main__":
    main()
