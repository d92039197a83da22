"""The ``emotion_recognition`` lifecycle node: camera images in; emotions, detections, an annotated
image and diagnostics out.

The node turns messages into calls to :class:`emotion_recognition.core.pipeline.EmotionPipeline` and
results into messages; the algorithm lives in the core. Threading: the image callback (executor thread)
only stores the newest message in a one-slot mailbox, counting the message it replaces as dropped; a
worker thread converts, processes and publishes. Memory is therefore bounded by one pending and one
in-flight frame whatever the input rate.

Lifecycle (the convention of ros2/demos ``lifecycle_py``): ``__init__`` declares the parameters
(:mod:`emotion_recognition.ros.parameters`), ``on_configure`` validates them, loads the model and the
Haar cascade (a failure fails the transition with a readable message, the process stays up) and
creates the outputs as lifecycle publishers: their topics exist while inactive, and they publish only
while active. ``on_activate`` starts the worker and the image subscription, ``on_deactivate`` stops
them and publishes an empty ``emotions`` message (subscribers drop the faces they show),
``on_cleanup`` removes the publishers and the model. Every transition also runs the parent class's
(which switches the lifecycle publishers). With ``autostart`` (default) the node configures and
activates itself on start.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import QoSMessageLostInfo, SubscriptionEventCallbacks
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
)
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from emotion_msgs.msg import FaceEmotionArray
from emotion_recognition.core.classifier import ModelOutputError
from emotion_recognition.core.image import ImageLimits, InvalidImageError
from emotion_recognition.core.pipeline import EmotionPipeline
from emotion_recognition.ros import parameters as params
from emotion_recognition.ros.image_conversion import (
    ImageConversionError,
    bgr_array_to_image_msg,
    compressed_msg_to_array,
    image_msg_to_array,
)
from emotion_recognition.ros.messages import to_detection_array, to_face_emotion_array
from emotion_recognition.ros.throttle import CauseThrottle
from emotion_recognition.spec import EMOTION_LABELS

NODE_NAME = "emotion_recognition"

DIAGNOSTICS_PERIOD_S = 1.0
# A bad-input cause is logged at its first occurrence, then at most once per this many seconds.
BAD_INPUT_LOG_PERIOD_S = 10.0
# Output queue depth: results are small, and a slow consumer should get recent ones.
OUTPUT_QUEUE_DEPTH = 10
WORKER_JOIN_TIMEOUT_S = 5.0
# A logged problem is cut to this many characters (hostile input must not make huge log lines).
MAX_LOG_CHARS = 500


@dataclass
class _Counters:
    """Frame counters shared by the callback, the worker and the diagnostics timer (under a lock)."""

    received: int = 0
    dropped: int = 0
    processed: int = 0
    rejected: int = 0
    lost: int = 0  # lost inside DDS before the node saw them (QoS "message lost" events)
    processing_ms_sum: float = 0.0
    processing_ms_max: float = 0.0
    pipeline_ms_sum: float = 0.0
    latency_ms_sum: float = 0.0
    faces_last: int = 0
    annotated: int = 0
    rejected_causes: dict[str, int] = field(default_factory=dict)


class EmotionRecognitionNode(LifecycleNode):
    """Lifecycle node that finds faces in camera images and publishes their emotions."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._declaration_problems: list[str] = []
        for spec in params.PARAMETERS:
            self._declare(spec)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._lock = threading.Lock()
        self._frame_ready = threading.Condition(self._lock)
        self._pending: tuple[Any, float] | None = None  # (message, monotonic receive time)
        self._stop_worker = False
        self._worker: threading.Thread | None = None
        self._counters = _Counters()
        self._totals = _Counters()
        self._last_image_time: float | None = None
        self._activated_time: float | None = None
        self._last_report_time = time.monotonic()
        self._log_throttle = CauseThrottle(BAD_INPUT_LOG_PERIOD_S)
        self._first_frame_logged = False

        self._configured = False
        self._active = False
        self._configure_error = ""
        self._pipeline: EmotionPipeline | None = None
        self._limits = ImageLimits()
        self._pending_detector = None
        self._pending_tracker = None
        self._model_path: Path | None = None
        self._use_compressed = False
        self._reliability = ReliabilityPolicy.BEST_EFFORT
        self._publish_detections = True
        self._publish_annotated = True
        self._stale_timeout_s = float(params.PARAMETERS_BY_NAME["stale_image_timeout_s"].default)
        self._subscription = None
        self._emotions_pub = None
        self._detections_pub = None
        self._annotated_pub = None
        self._last_frame_id = ""

        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)

    # ----------------------------------------------------------------------------------- parameters
    def _declare(self, spec: params.ParameterSpec) -> None:
        """Declare one parameter; a bad override (wrong type, out of range) is remembered so that
        configure fails with a readable message, instead of the constructor raising."""
        descriptor = params.descriptor_for(spec)
        try:
            self.declare_parameter(spec.name, spec.default, descriptor)
        except (InvalidParameterValueException, InvalidParameterTypeException) as error:
            self._declaration_problems.append(f"{spec.name}: {error}")
            self.declare_parameter(spec.name, spec.default, descriptor, ignore_override=True)

    def _parameter_values(self) -> dict[str, Any]:
        return {spec.name: self.get_parameter(spec.name).value for spec in params.PARAMETERS}

    def _on_set_parameters(self, changed: list[Parameter]) -> SetParametersResult:
        """Validate parameter changes; apply detector/tracker changes to the running pipeline."""
        updates: dict[str, Any] = {}
        for parameter in changed:
            spec = params.PARAMETERS_BY_NAME.get(parameter.name)
            if spec is None:
                continue  # use_sim_time and other parameters rclpy manages itself
            problem = spec.check(parameter.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            if spec.when == params.CONFIGURE and self._configured:
                return SetParametersResult(
                    successful=False,
                    reason=f"{spec.name} is read on configure: deactivate and clean up the node, "
                    "change it, then configure again",
                )
            updates[spec.name] = parameter.value
        if not updates:
            return SetParametersResult(successful=True)
        values = {**self._parameter_values(), **updates}
        groups = {params.PARAMETERS_BY_NAME[name].group for name in updates}
        try:
            detector = params.detector_settings(values) if params.DETECTOR in groups else None
        except ValueError as error:
            return SetParametersResult(successful=False, reason=f"detector: {error}")
        try:
            tracker = params.tracker_settings(values) if params.TRACKER in groups else None
        except ValueError as error:
            return SetParametersResult(successful=False, reason=f"tracker: {error}")
        with self._lock:
            if detector is not None:
                self._pending_detector = detector
            if tracker is not None:
                self._pending_tracker = tracker
        if "stale_image_timeout_s" in updates:
            self._stale_timeout_s = float(updates["stale_image_timeout_s"])
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate every parameter and load the model; fail with a readable message otherwise."""
        values = self._parameter_values()
        problems = list(self._declaration_problems)
        if values["publish_detections"]:
            try:
                import vision_msgs.msg  # noqa: F401  (only needed for `detections`)
            except ImportError:
                problems.append(
                    "publish_detections is true but vision_msgs is not installed "
                    "(install ros-<distro>-vision-msgs or set publish_detections false)"
                )
        try:
            setup = params.build_pipeline(values, problems)
        except params.SetupError as error:
            return self._fail_configure(str(error))
        self._pipeline, self._model_path, self._limits = setup.pipeline, setup.model_path, setup.limits
        self._use_compressed = bool(values["use_compressed"])
        self._reliability = (
            ReliabilityPolicy.RELIABLE
            if values["image_reliability"] == "reliable"
            else ReliabilityPolicy.BEST_EFFORT
        )
        self._publish_detections = bool(values["publish_detections"])
        self._publish_annotated = bool(values["publish_annotated_image"])
        self._stale_timeout_s = float(values["stale_image_timeout_s"])
        with self._lock:
            self._pending_detector = self._pending_tracker = None
        self._create_publishers()
        self._configured = True
        self._configure_error = ""
        self.get_logger().info(
            f"configured: model {setup.model_path} ({len(EMOTION_LABELS)} labels), "
            f"{'tensorflow loaded' if 'tensorflow' in sys.modules else 'no tensorflow'}, "
            f"Haar cascade {setup.pipeline.cascade_path}"
        )
        return super().on_configure(state)

    def _fail_configure(self, message: str) -> TransitionCallbackReturn:
        self._configure_error = message
        self.get_logger().error(f"configure failed: {message}")
        return TransitionCallbackReturn.FAILURE

    def _create_publishers(self) -> None:
        """The outputs, as lifecycle publishers: visible from configure on, publishing while active."""
        self._emotions_pub = self.create_lifecycle_publisher(FaceEmotionArray, "emotions", OUTPUT_QUEUE_DEPTH)
        if self._publish_detections:
            from vision_msgs.msg import Detection2DArray

            self._detections_pub = self.create_lifecycle_publisher(
                Detection2DArray, "detections", OUTPUT_QUEUE_DEPTH
            )
        if self._publish_annotated:
            annotated_qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE
            )
            self._annotated_pub = self.create_lifecycle_publisher(Image, "image_annotated", annotated_qos)

    def _destroy_publishers(self) -> None:
        for publisher in (self._emotions_pub, self._detections_pub, self._annotated_pub):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._emotions_pub = self._detections_pub = self._annotated_pub = None

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the publishers, start the worker thread and subscribe to the images."""
        result = super().on_activate(state)
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        with self._lock:
            self._pending = None
            self._stop_worker = False
            self._counters = _Counters()
        self._first_frame_logged = False
        self._worker = threading.Thread(target=self._worker_loop, name="emotion_worker", daemon=True)
        self._worker.start()
        image_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=self._reliability)
        events = SubscriptionEventCallbacks(message_lost=self._on_message_lost)
        if self._use_compressed:
            self._subscription = self.create_subscription(
                CompressedImage, "image/compressed", self._on_image, image_qos, event_callbacks=events
            )
        else:
            self._subscription = self.create_subscription(
                Image, "image", self._on_image, image_qos, event_callbacks=events
            )
        self._active = True
        self._activated_time = time.monotonic()
        self.get_logger().info(
            f"active: subscribed to {self._subscription.topic_name} "
            f"({'reliable' if self._reliability == ReliabilityPolicy.RELIABLE else 'best effort'}, depth 1)"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop taking images, publish an empty ``emotions`` (no faces any more), disable the outputs."""
        self._stop_input()
        if self._emotions_pub is not None:
            header = Header(frame_id=self._last_frame_id)
            header.stamp = self.get_clock().now().to_msg()
            self._emotions_pub.publish(FaceEmotionArray(header=header, labels=list(EMOTION_LABELS), faces=[]))
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Remove the publishers and release the model."""
        self._unconfigure()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything (from any state)."""
        self._unconfigure()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Recover to unconfigured after an unexpected exception in a transition."""
        self.get_logger().error(f"error in lifecycle state {state.label}; cleaning up")
        self._unconfigure()
        super().on_error(state)
        return TransitionCallbackReturn.SUCCESS

    def _unconfigure(self) -> None:
        """Stop taking images, remove the publishers, drop the pipeline, mark unconfigured."""
        self._stop_input()
        self._destroy_publishers()
        self._pipeline = None
        self._configured = False

    def _stop_input(self) -> None:
        self._active = False
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        self.stop_worker()

    def stop_worker(self) -> None:
        """Stop the processing thread and wait until it has ended: it finishes the frame in progress
        first (one frame at most), so a re-activation never runs two workers."""
        with self._frame_ready:
            self._stop_worker = True
            self._pending = None
            self._frame_ready.notify_all()
        worker, self._worker = self._worker, None
        while worker is not None and worker.is_alive():
            worker.join(WORKER_JOIN_TIMEOUT_S)
            if worker.is_alive():
                self.get_logger().warn("stopping: still waiting for the frame in progress to finish")

    def autostart(self) -> None:
        """Configure and activate when the ``autostart`` parameter is true (for a plain ``ros2 run``)."""
        if not self.get_parameter("autostart").value:
            self.get_logger().info("autostart is false: waiting in 'unconfigured' for a lifecycle manager")
            return
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error(
                "autostart: configure failed (see above); the node stays unconfigured. Fix the "
                "parameters, then configure it through its lifecycle services."
            )
            return
        self.trigger_activate()

    # --------------------------------------------------------------------------------- image input
    def _on_image(self, msg: Any) -> None:
        """Executor thread: keep only the newest message; the one it replaces counts as dropped."""
        now = time.monotonic()
        with self._frame_ready:
            if self._pending is not None:
                self._counters.dropped += 1
                self._totals.dropped += 1
            self._pending = (msg, now)
            self._counters.received += 1
            self._totals.received += 1
            self._last_image_time = now
            self._frame_ready.notify()

    def _on_message_lost(self, info: QoSMessageLostInfo) -> None:
        """Executor thread: DDS reports images lost before they reached the node (e.g. fragments of a
        large best-effort sample that never arrived); counted for /diagnostics."""
        with self._lock:
            self._counters.lost += int(info.total_count_change)
            self._totals.lost += int(info.total_count_change)

    def _worker_loop(self) -> None:
        while True:
            with self._frame_ready:
                while self._pending is None and not self._stop_worker:
                    self._frame_ready.wait()
                if self._stop_worker:
                    return
                msg, received = self._pending
                self._pending = None
                detector, tracker = self._pending_detector, self._pending_tracker
                self._pending_detector = self._pending_tracker = None
            try:
                self._process(msg, received, detector, tracker)
            except Exception as error:  # noqa: BLE001
                # Last line of defence: an unexpected failure on one frame must not kill the worker
                # (the node would go silent while looking alive). Known bad input is handled in
                # _process; anything reaching here is a bug, logged with its type, throttled.
                self._reject(f"internal_{type(error).__name__}", f"processing failed: {error!r}", error=True)

    def _process(self, msg: Any, received: float, detector: Any, tracker: Any) -> None:
        """Worker thread: convert, run the pipeline, publish the results with the input's header."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        if detector is not None:
            pipeline.update_detector_settings(detector)
        if tracker is not None:
            pipeline.update_tracker_settings(tracker)
        start = time.perf_counter()
        try:
            if isinstance(msg, CompressedImage):
                image, channel_order = compressed_msg_to_array(msg, self._limits)
            else:
                image, channel_order = image_msg_to_array(msg, self._limits)
        except ImageConversionError as error:
            self._reject(error.cause, str(error))
            return
        stamp = msg.header.stamp
        timestamp_s = stamp.sec + stamp.nanosec * 1e-9 if (stamp.sec or stamp.nanosec) else received
        annotated_pub = self._annotated_pub
        annotate = annotated_pub is not None and annotated_pub.get_subscription_count() > 0
        try:
            result, annotated = pipeline.process(
                image, timestamp_s, channel_order=channel_order, annotate=annotate
            )
        except InvalidImageError as error:
            self._reject("invalid_image", str(error))
            return
        except ModelOutputError as error:
            self._reject("invalid_model_output", str(error))
            return

        emotions_pub, detections_pub = self._emotions_pub, self._detections_pub
        if emotions_pub is None:
            return  # cleaned up meanwhile
        self._last_frame_id = msg.header.frame_id
        emotions_pub.publish(to_face_emotion_array(result, msg.header))
        if detections_pub is not None:
            detections_pub.publish(to_detection_array(result, msg.header))
        drawn = annotate and annotated is not None and annotated_pub is not None
        if drawn:
            annotated_pub.publish(bgr_array_to_image_msg(annotated, msg.header))
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        latency_ms = (time.monotonic() - received) * 1000.0
        if not self._first_frame_logged:
            self._first_frame_logged = True
            self.get_logger().info(
                f"first image processed: {image.shape[1]}x{image.shape[0]} "
                f"{getattr(msg, 'encoding', '') or 'compressed'}, "
                f"{len(result.faces)} face(s), {elapsed_ms:.1f} ms"
            )
        with self._lock:
            for counters in (self._counters, self._totals):
                counters.processed += 1
                counters.processing_ms_sum += elapsed_ms
                counters.processing_ms_max = max(counters.processing_ms_max, elapsed_ms)
                counters.pipeline_ms_sum += result.timings.total_ms
                counters.latency_ms_sum += latency_ms
                counters.faces_last = len(result.faces)
                counters.annotated += int(drawn)

    def _reject(self, cause: str, message: str, error: bool = False) -> None:
        """Count a skipped frame and log its cause, throttled per cause."""
        with self._lock:
            for counters in (self._counters, self._totals):
                counters.rejected += 1
                counters.rejected_causes[cause] = counters.rejected_causes.get(cause, 0) + 1
            log_it, suppressed = self._log_throttle.should_log(cause, time.monotonic())
        if not log_it:
            return
        if len(message) > MAX_LOG_CHARS:
            message = f"{message[:MAX_LOG_CHARS]}... ({len(message)} characters)"
        text = f"skipping an image ({cause}): {message}"
        if suppressed:
            text += f" [{suppressed} more with this cause since the last report]"
        if error:
            self.get_logger().error(text)
        else:
            self.get_logger().warn(text)

    # ---------------------------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        with self._lock:
            period = self._counters
            self._counters = _Counters(faces_last=period.faces_last)
            totals = _Counters(
                received=self._totals.received,
                dropped=self._totals.dropped,
                processed=self._totals.processed,
                rejected=self._totals.rejected,
                lost=self._totals.lost,
                annotated=self._totals.annotated,
                rejected_causes=dict(self._totals.rejected_causes),
            )
            last_image = self._last_image_time
        elapsed = max(now - self._last_report_time, 1e-6)
        self._last_report_time = now

        status = DiagnosticStatus()
        status.name = f"{self.get_fully_qualified_name()}: emotion recognition"
        status.hardware_id = str(self._model_path) if self._model_path else "none"
        level, message = self._health(period, last_image, now)
        status.level, status.message = level, message
        input_rate = period.received / elapsed
        processed_rate = period.processed / elapsed
        mean_ms = period.processing_ms_sum / period.processed if period.processed else 0.0
        mean_latency = period.latency_ms_sum / period.processed if period.processed else 0.0
        mean_pipeline = period.pipeline_ms_sum / period.processed if period.processed else 0.0
        values = {
            "state": "active" if self._active else ("inactive" if self._configured else "unconfigured"),
            "input rate (Hz)": f"{input_rate:.2f}",
            "processed rate (Hz)": f"{processed_rate:.2f}",
            "dropped frames (last period)": str(period.dropped),
            "dropped frames (total)": str(totals.dropped),
            "lost in transport (last period)": str(period.lost),
            "lost in transport (total)": str(totals.lost),
            "received frames (total)": str(totals.received),
            "processed frames (total)": str(totals.processed),
            "rejected frames (total)": str(totals.rejected),
            "annotated images (total)": str(totals.annotated),
            "processing time mean (ms)": f"{mean_ms:.2f}",
            "processing time max (ms)": f"{period.processing_ms_max:.2f}",
            "pipeline time mean (ms)": f"{mean_pipeline:.2f}",
            "receive to publish latency mean (ms)": f"{mean_latency:.2f}",
            "faces in last frame": str(period.faces_last),
            "model": str(self._model_path) if self._model_path else "none",
            "tensorflow loaded": str("tensorflow" in sys.modules).lower(),
            "seconds since last image": f"{now - last_image:.2f}" if last_image is not None else "never",
        }
        for cause, count in sorted(totals.rejected_causes.items()):
            values[f"rejected frames ({cause})"] = str(count)
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self._diagnostics_pub.publish(array)

    def _health(self, period: _Counters, last_image: float | None, now: float) -> tuple[bytes, str]:
        if not self._configured:
            if self._configure_error:
                return DiagnosticStatus.ERROR, f"not configured: {self._configure_error}"
            return DiagnosticStatus.WARN, "not configured"
        if not self._active:
            return DiagnosticStatus.OK, "inactive"
        since = last_image if last_image is not None else self._activated_time
        if since is not None and now - since > self._stale_timeout_s:
            return DiagnosticStatus.WARN, f"no image for {now - since:.1f} s"
        if period.dropped:
            return (
                DiagnosticStatus.WARN,
                f"cannot keep up: dropped {period.dropped} frame(s) in the last period",
            )
        if period.lost:
            return DiagnosticStatus.WARN, f"lost {period.lost} image(s) in transport (DDS) in the last period"
        return DiagnosticStatus.OK, "processing"


def main(args: list[str] | None = None) -> None:
    """Entry point of ``ros2 run emotion_recognition emotion_recognition_node``."""
    rclpy.init(args=args)
    node: EmotionRecognitionNode | None = None
    try:
        node = EmotionRecognitionNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        node.autostart()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.stop_worker()
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
