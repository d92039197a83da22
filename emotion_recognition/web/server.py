"""The command line of the web server (console script ``emotion_web``), served by waitress.

    emotion_web [--host 127.0.0.1] [--port 8080] [--source ros | sample | video PATH | camera N]
                [--params-file YAML] [--model FILE] [--ros-args ...]

Threads: waitress serves ``--api-threads`` plus ``--max-streams`` threads; each MJPEG or event client
holds one streaming slot for as long as it stays connected, and a client beyond ``--max-streams`` gets
503, so streams can never take the threads the API answers on. Ctrl-C (or SIGTERM) ends the streams,
stops the source and exits with status 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emotion_recognition.core.image import DEFAULT_MAX_IMAGE_PIXELS
from emotion_recognition.resources import shipped_file
from emotion_recognition.ros import parameters
from emotion_recognition.web.analyzer import ImageAnalyzer
from emotion_recognition.web.app import DEFAULT_MAX_UPLOAD_BYTES, WebContext, create_app
from emotion_recognition.web.hub import FrameHub

PROG = "emotion_web"
SOURCES = ("ros", "sample", "video", "camera")
DEFAULT_API_THREADS = 4
DEFAULT_MAX_STREAMS = 8  # e.g. four browsers, each with the stream and the events
# Waitress refuses bodies over this many times the upload limit itself (plain-text 413), before
# buffering them; up to it, the application answers with its JSON 413.
WAITRESS_BODY_FACTOR = 2


class UsageError(Exception):
    """A bad command line (the message says what is wrong)."""


def split_ros_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` at ``--ros-args``: (our arguments, ROS arguments after it, ``--ros-args`` dropped)."""
    argv = list(argv)
    if "--ros-args" not in argv:
        return argv, []
    index = argv.index("--ros-args")
    return argv[:index], [a for a in argv[index + 1 :] if a != "--ros-args"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Web API and live page for facial emotion recognition "
        "(POST /api/v1/emotions, GET / for the live page).",
        epilog="ROS arguments (with --source ros) follow --ros-args, e.g. --ros-args -r __ns:=/front_camera.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)",
    )
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    parser.add_argument(
        "--source",
        nargs="+",
        default=["sample"],
        metavar="SOURCE",
        help="what the live page shows: 'ros' (a running node's image_annotated and "
        "emotions), 'sample' (the built-in sample, looping; default), "
        "'video PATH' (looping) or 'camera N'",
    )
    parser.add_argument(
        "--params-file", help="node parameter YAML (default: the shipped config/emotion_recognition.yaml)"
    )
    parser.add_argument(
        "--model",
        help="emotion model file (default: the parameter file's model_path, else the shipped model)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_BYTES / 2**20,
        help="largest accepted upload in MiB (default %(default)s)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        help=f"largest accepted image in pixels, checked before decoding (default: the "
        f"parameter max_image_pixels, else {DEFAULT_MAX_IMAGE_PIXELS})",
    )
    parser.add_argument(
        "--api-threads",
        type=int,
        default=DEFAULT_API_THREADS,
        help="server threads for API requests; as many model instances (default %(default)s)",
    )
    parser.add_argument(
        "--max-streams",
        type=int,
        default=DEFAULT_MAX_STREAMS,
        help="concurrent stream and event clients (default %(default)s)",
    )
    return parser


def parse_source(words: Sequence[str]) -> tuple[str, str | int | None]:
    """``["video", "clip.mp4"]`` -> ``("video", "clip.mp4")``; ``["camera", "0"]`` -> ``("camera", 0)``.

    Raises:
        UsageError: an unknown source or a missing/extra argument.
    """
    kind, rest = words[0], list(words[1:])
    if kind not in SOURCES:
        raise UsageError(f"unknown source {kind!r}; choose one of {', '.join(SOURCES)}")
    if kind in ("ros", "sample"):
        if rest:
            raise UsageError(f"--source {kind} takes no argument, got {' '.join(rest)!r}")
        return kind, None
    if len(rest) != 1:
        raise UsageError(f"--source {kind} needs exactly one argument ({'PATH' if kind == 'video' else 'N'})")
    if kind == "video":
        if not os.path.isfile(rest[0]):
            raise UsageError(f"video file {rest[0]!r} does not exist")
        return kind, rest[0]
    if not rest[0].isdigit():
        raise UsageError(f"--source camera needs a camera number (0 for /dev/video0), got {rest[0]!r}")
    return kind, int(rest[0])


def _check_numbers(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0 to 65535, got {args.port}")
    for name in ("max_upload_mb", "api_threads", "max_streams"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.max_image_pixels is not None and args.max_image_pixels <= 0:
        raise UsageError(f"--max-image-pixels must be positive, got {args.max_image_pixels}")


def load_values(params_file: str | Path | None) -> dict[str, Any]:
    """The node's parameter values: its defaults, or those a node given ``params_file`` would have."""
    return parameters.values_from_file(params_file) if params_file else parameters.defaults()


def build_pipeline(model: str | Path | None, values: dict[str, Any]) -> Any:
    """The pipeline the node would build from ``values``, with ``model`` instead of ``model_path`` if given.

    Raises:
        parameters.SetupError: bad values, or no usable model or face detector.
    """
    if model is not None:
        values = {**values, "model_path": str(model)}
    return parameters.build_pipeline(values).pipeline


def build_analyzer(args: argparse.Namespace, values: dict[str, Any]) -> ImageAnalyzer:
    """The API's pool: one pipeline per API thread, each with its own model interpreter."""
    pipelines = [build_pipeline(args.model, values) for _ in range(args.api_threads)]
    max_pixels = args.max_image_pixels or int(values.get("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS))
    return ImageAnalyzer(pipelines, max_pixels)


def build_source(
    kind: str,
    target: str | int | None,
    args: argparse.Namespace,
    values: dict[str, Any],
    hub: FrameHub,
    ros_args: list[str],
) -> Any:
    """The live source; ``ros`` imports rclpy here, and only here.

    Raises:
        SourceError: a video or camera that cannot be opened.
    """
    if kind == "ros":
        try:
            from emotion_recognition.web.ros_source import RosSource
        except ImportError as exc:
            raise UsageError(f"--source ros needs ROS 2 (rclpy and emotion_msgs): {exc}") from None
        return RosSource(hub, ros_args)
    from emotion_recognition.web.sources import CaptureReader, LocalSource, SampleReader

    reader = SampleReader() if kind == "sample" else CaptureReader(target)  # type: ignore[arg-type]
    return LocalSource(reader, build_pipeline(args.model, values), hub)


def serve(app: Any, hub: FrameHub, source: Any, args: argparse.Namespace, max_upload: int) -> None:
    """Run waitress until Ctrl-C or SIGTERM, then end the streams and stop the source."""
    import waitress

    server = waitress.create_server(
        app,
        host=args.host,
        port=args.port,
        threads=args.api_threads + args.max_streams,
        max_request_body_size=WAITRESS_BODY_FACTOR * max_upload + 2**20,
        ident=PROG,
        clear_untrusted_proxy_headers=True,
        # Lets waitress notice a client that closed its stream while the response is still running.
        channel_request_lookahead=1,
        # Send each write at once: waitress otherwise holds up to 18000 bytes, which delays small
        # events by seconds.
        send_bytes=1,
    )

    def stop(signum: int, frame: Any) -> None:
        if hub.closed:  # a second signal while shutting down: let the shutdown finish
            return
        hub.close()  # every streaming response ends, so waitress's threads can finish
        source.stop()
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(
        f"{PROG}: serving on http://{args.host}:{server.effective_port}/ "
        f"(source: {source.description}; Ctrl-C stops)",
        flush=True,
    )
    source.start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        hub.close()
        source.stop()
        server.close()
        server.task_dispatcher.shutdown(timeout=5)
        source.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the web server; returns the exit status (0 after Ctrl-C, 2 for bad options or set-up)."""
    own, ros_args = split_ros_args(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    try:
        _check_numbers(args)
        kind, target = parse_source(args.source)
        values = load_values(args.params_file or shipped_file("config/emotion_recognition.yaml"))
        analyzer = build_analyzer(args, values)
        hub = FrameHub(max_watchers=args.max_streams)
        source = build_source(kind, target, args, values, hub, ros_args)
    except (UsageError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    max_upload = int(args.max_upload_mb * 2**20)
    app = create_app(WebContext(analyzer, hub, source.description), max_upload)
    serve(app, hub, source, args, max_upload)
    print(f"{PROG}: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
