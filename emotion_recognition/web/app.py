"""The Flask application: the API, the live page and its streams.

Routes (documented in ``openapi.json``, served at ``/api/v1/openapi.json``):

* ``POST /api/v1/emotions``: one JPEG or PNG (raw body or multipart field ``image``) -> emotions.
* ``GET /api/v1/health``: status, model file, labels, source.
* ``GET /api/v1/events``: Server-Sent Events, one ``data:`` JSON line per processed frame.
* ``GET /stream.mjpg``: the annotated frames as an MJPEG stream.
* ``GET /``: the live page (static files of this package; nothing is fetched from elsewhere).

Every error is JSON ``{"error": "..."}`` with its status code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from emotion_recognition.core.image import ImageTooLargeError, InvalidImageError
from emotion_recognition.web.analyzer import ImageAnalyzer
from emotion_recognition.web.hub import EVENTS, STREAM, FrameHub, TooManyWatchers

STATIC_DIR = Path(__file__).resolve().parent / "static"
OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.json"
# Seconds a stream waits for a new frame before it repeats the last one (MJPEG) or sends a comment
# (SSE): keeps proxies from closing an idle stream and notices clients that went away.
KEEPALIVE_S = 5.0
# While waiting, a stream checks this often whether its client went away (waitress tells), so that a
# closed page gives its slot back within about this time.
DISCONNECT_POLL_S = 0.5
MJPEG_BOUNDARY = "frame"
ACCEPTED_TYPES = ("image/jpeg", "image/png")
# Multipart parts without a useful type are sniffed (curl sends application/octet-stream for
# unknown extensions).
SNIFFED_TYPES = ("", "application/octet-stream")
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024


@dataclass
class WebContext:
    """What the routes need: the API's analyzer, the live source's hub and a description of both."""

    analyzer: ImageAnalyzer
    hub: FrameHub
    source: str


class ApiError(Exception):
    """An error answered as JSON ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(context: WebContext, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> Flask:
    """The Flask application serving ``context`` (uploads over ``max_upload_bytes`` get 413)."""
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = max_upload_bytes
    app.extensions["emotion_web"] = context
    _register_errors(app)
    _register_api(app, context)
    _register_page(app, context)
    return app


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return _error(exc.status, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if exc.code == 413:
            limit = app.config["MAX_CONTENT_LENGTH"]
            return _error(413, f"upload too large: the limit is {limit} bytes")
        return _error(exc.code or 500, exc.description or exc.name)


def read_upload() -> bytes:
    """The uploaded image's bytes: the raw body (``image/jpeg`` or ``image/png``) or the multipart
    field ``image``.

    Raises:
        ApiError: 415 for another content type, 400 for a missing field or an empty body.
    """
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        upload = request.files.get("image")
        if upload is None:
            raise ApiError(400, "multipart body has no field 'image'")
        if upload.mimetype not in ACCEPTED_TYPES + SNIFFED_TYPES:
            raise ApiError(415, f"unsupported image type {upload.mimetype!r}: send image/jpeg or image/png")
        data = upload.read()
    elif mimetype in ACCEPTED_TYPES:
        data = request.get_data(cache=False)
    else:
        shown = mimetype or "none"
        raise ApiError(
            415,
            f"unsupported content type {shown!r}: send image/jpeg or image/png as the body, "
            "or multipart/form-data with the field 'image'",
        )
    if not data:
        raise ApiError(400, "empty upload: send one JPEG or PNG image")
    return data


def _flag(name: str) -> bool:
    return request.args.get(name, "0").lower() in ("1", "true", "yes")


def _register_api(app: Flask, context: WebContext) -> None:
    @app.post("/api/v1/emotions")
    def emotions() -> Response:
        data = read_upload()
        try:
            return jsonify(context.analyzer.analyze(data, annotate=_flag("annotate")))
        except ImageTooLargeError as exc:
            raise ApiError(413, str(exc)) from None
        except InvalidImageError as exc:
            raise ApiError(400, f"cannot decode the image: {exc}") from None

    @app.get("/api/v1/health")
    def health() -> Response:
        analyzer = context.analyzer
        return jsonify(
            status="ok",
            model=str(analyzer.model_path),
            labels=list(analyzer.labels),
            source=context.source,
            frames=context.hub.frames_published,
            clients={kind: context.hub.watchers(kind) for kind in (STREAM, EVENTS)},
            max_image_pixels=analyzer.max_image_pixels,
            max_upload_bytes=app.config["MAX_CONTENT_LENGTH"],
        )

    @app.get("/api/v1/openapi.json")
    def openapi() -> Response:
        return Response(OPENAPI_FILE.read_bytes(), mimetype="application/json")

    @app.get("/api/v1/events")
    def events() -> Response:
        return _streaming(context.hub, EVENTS, _event_stream, "text/event-stream")


def _register_page(app: Flask, context: WebContext) -> None:
    @app.get("/")
    def page() -> Response:
        return send_from_directory(STATIC_DIR, "index.html", max_age=0)

    @app.get("/static/<path:name>")
    def static_file(name: str) -> Response:
        return send_from_directory(STATIC_DIR, name, max_age=0)

    @app.get("/stream.mjpg")
    def stream() -> Response:
        return _streaming(
            context.hub, STREAM, _mjpeg_stream, f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}"
        )


def _streaming(hub: FrameHub, kind: str, generator: Any, mimetype: str) -> Response:
    """A streaming response holding one of the hub's slots until the client goes away (503 when all
    slots are taken, so that streams never take the threads the API needs)."""
    try:
        watch = hub.watch(kind)
    except TooManyWatchers as exc:
        raise ApiError(503, str(exc)) from None
    gone = request.environ.get("waitress.client_disconnected", lambda: False)
    response = Response(generator(hub, gone), mimetype=mimetype)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # a reverse proxy must not buffer a live stream
    response.call_on_close(watch.close)
    return response


def _mjpeg_part(jpeg: bytes) -> bytes:
    head = f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode("ascii") + jpeg + b"\r\n"


def _waited(gone: Callable[[], bool], wait: Callable[[float], Any]) -> Any:
    """Call ``wait(timeout)`` in slices of :data:`DISCONNECT_POLL_S` until it returns something truthy,
    :data:`KEEPALIVE_S` have passed or the client is gone; returns the last answer."""
    answer = None
    for _ in range(int(KEEPALIVE_S / DISCONNECT_POLL_S)):
        answer = wait(DISCONNECT_POLL_S)
        if answer or gone():
            break
    return answer


def _mjpeg_stream(hub: FrameHub, gone: Callable[[], bool]) -> Iterator[bytes]:
    """Each new annotated image as one part; the last one again after :data:`KEEPALIVE_S` without."""
    seq = 0
    latest = hub.latest_image()
    if latest is not None:
        seq = latest.seq
        yield _mjpeg_part(latest.jpeg())
    while not hub.closed and not gone():
        frame = _waited(gone, lambda timeout, after=seq: hub.next_image(after, timeout)) or hub.latest_image()
        if frame is None or hub.closed or gone():
            continue
        seq = frame.seq
        yield _mjpeg_part(frame.jpeg())


def _event_stream(hub: FrameHub, gone: Callable[[], bool]) -> Iterator[bytes]:
    """One SSE message per frame result (``id`` = frame sequence number), comments as keep-alive."""
    yield b"retry: 1000\n\n"
    seq = hub.latest_result_seq()
    while not hub.closed and not gone():
        results = _waited(gone, lambda timeout, after=seq: hub.next_results(after, timeout))
        if not results:
            yield b": keep-alive\n\n"
            continue
        for seq, result in results:
            yield f"id: {seq}\ndata: {json.dumps(result, separators=(',', ':'))}\n\n".encode()
