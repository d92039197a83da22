"""The real server: ``emotion_web --source sample`` in its own process (waitress), talked to over HTTP
on 127.0.0.1: the API cases of test_api.py, the event and MJPEG streams, slots that keep the API free,
a source that idles while nobody watches, and Ctrl-C."""

from __future__ import annotations

import concurrent.futures
import re
import threading
import time

import pytest

from test.support.models import ModelFiles
from test.support.web import (
    TEST_UPLOAD_LIMIT_MB,
    WebServer,
    astronaut_jpeg,
    encoded,
    hostile_uploads,
    multipart,
)
from test.web.test_api import check_astronaut

# Each test starts the server in its own process: see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

MAX_STREAMS = 4


@pytest.fixture(scope="module")
def server(emotion_models: ModelFiles):
    web = WebServer(
        "--source",
        "sample",
        "--model",
        str(emotion_models.tflite),
        "--api-threads",
        "2",
        "--max-streams",
        str(MAX_STREAMS),
        "--max-upload-mb",
        str(TEST_UPLOAD_LIMIT_MB),
    )
    yield web
    assert web.stop() == 0, web.output()


def wait_for_no_clients(server: WebServer, timeout_s: float = 10.0) -> None:
    """Wait until the server has noticed that earlier stream clients went away."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        clients = server.request("GET", "/api/v1/health")[1]["clients"]
        if clients == {"stream": 0, "events": 0}:
            return
        time.sleep(0.1)
    raise AssertionError(f"stream clients still counted: {clients}")


def test_astronaut_gives_one_happy_face(server: WebServer, emotion_models: ModelFiles) -> None:
    status, answer, kind = server.request("POST", "/api/v1/emotions", astronaut_jpeg(), "image/jpeg")
    assert status == 200 and kind == "application/json", answer
    check_astronaut(answer, emotion_models.trained)


def test_multipart_upload_as_curl_sends_it(server: WebServer, emotion_models: ModelFiles) -> None:
    body, content_type = multipart("image", "astronaut.jpg", "application/octet-stream", astronaut_jpeg())
    status, answer, _ = server.request("POST", "/api/v1/emotions", body, content_type)
    assert status == 200, answer
    check_astronaut(answer, emotion_models.trained)


def test_face_free_photo_gives_an_empty_list(server: WebServer) -> None:
    status, answer, _ = server.request("POST", "/api/v1/emotions", encoded("coffee", ".png"), "image/png")
    assert status == 200 and answer["faces"] == []


@pytest.mark.parametrize(
    "case, body, content_type, status, message", hostile_uploads(), ids=[c[0] for c in hostile_uploads()]
)
def test_bad_uploads_get_their_status_and_message(
    server: WebServer, case, body, content_type, status, message
) -> None:
    got, answer, kind = server.request("POST", "/api/v1/emotions", body, content_type or None)
    assert got == status, (case, answer)
    assert kind == "application/json" and message in answer["error"], answer
    # The server is still fine afterwards.
    assert server.request("GET", "/api/v1/health")[0] == 200


def test_events_carry_each_frame_with_tracks(server: WebServer) -> None:
    results = []
    for result in server.events():
        results.append(result)
        if sum(len(r["faces"]) for r in results) >= 10:
            break
    assert all(r["image"] == {"width": 640, "height": 480} for r in results)
    stamps = [r["stamp"] for r in results]
    assert stamps == sorted(stamps)
    faces = [face for r in results for face in r["faces"]]
    assert all(isinstance(face["track_id"], int) and len(face["probabilities"]) == 7 for face in faces)


def test_stream_shows_annotated_sample_frames(server: WebServer) -> None:
    frames = server.mjpeg_frames()
    first, second = next(frames), next(frames)
    frames.close()
    assert first.shape == second.shape == (480, 640, 3)
    assert (first != second).any()  # a moving picture


def test_streams_never_block_the_api(server: WebServer, emotion_models: ModelFiles) -> None:
    """With every streaming slot taken (streams being read), API calls from several clients are answered
    at once, and one stream client more is refused with 503."""
    stop = threading.Event()
    received = [0] * MAX_STREAMS

    def watch(index: int) -> None:
        frames = server.mjpeg_frames() if index % 2 else server.events()
        for _ in frames:
            received[index] += 1
            if stop.is_set():
                break
        frames.close()

    wait_for_no_clients(server)
    watchers = [threading.Thread(target=watch, args=(i,), daemon=True) for i in range(MAX_STREAMS)]
    for thread in watchers:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while min(received) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert min(received) > 0, received
        status, answer, _ = server.request("GET", "/stream.mjpg")
        assert status == 503 and "streaming slots" in answer["error"]
        photo = astronaut_jpeg()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(lambda _: server.request("POST", "/api/v1/emotions", photo, "image/jpeg"), range(8))
            )
        for status, answer, _ in answers:
            assert status == 200
            check_astronaut(answer, emotion_models.trained)
    finally:
        stop.set()
        for thread in watchers:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in watchers)


def test_the_source_idles_while_nobody_watches(server: WebServer) -> None:
    wait_for_no_clients(server)
    # The frame that was being analysed when the last client left may still be published: wait until
    # the count stands still (a source that kept running would add about a frame per 0.1 s), then check
    # that it stays still.
    frames = server.request("GET", "/api/v1/health")[1]["frames"]
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = server.request("GET", "/api/v1/health")[1]["frames"]
        if now == frames:
            break
        frames = now
    before = frames
    time.sleep(1.5)
    assert server.request("GET", "/api/v1/health")[1]["frames"] == before
    events = server.events()
    next(events)
    events.close()
    assert server.request("GET", "/api/v1/health")[1]["frames"] > before


def test_ctrl_c_with_clients_connected_exits_cleanly(emotion_models: ModelFiles) -> None:
    web = WebServer("--source", "sample", "--model", str(emotion_models.tflite), "--api-threads", "1")
    frames, events = web.mjpeg_frames(), web.events()
    next(frames), next(events)
    started = time.monotonic()
    status = web.stop()
    assert status == 0, web.output()
    assert time.monotonic() - started < 15
    assert "emotion_web: stopped" in web.output()
    frames.close(), events.close()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "video", "/nonexistent/clip.mp4"], "video file '/nonexistent/clip.mp4' does not exist"),
        (["--source", "camera", "front"], "needs a camera number"),
        (["--source", "camera", "63"], "cannot open camera 63"),
        (["--source", "bag"], "unknown source 'bag'"),
        (["--port", "70000"], "--port must be 0 to 65535"),
    ],
)
def test_bad_options_end_with_one_error_line(args: list[str], message: str) -> None:
    with pytest.raises(AssertionError, match=f"emotion_web: error: .*{re.escape(message)}"):
        WebServer(*args)


def test_video_source_loops_through_the_file(tmp_path, emotion_models: ModelFiles) -> None:
    """``--source video PATH``: the frames of a real video file (the sample's one-face sequence, 12
    frames), analysed with tracking, and looped at the end."""
    import cv2

    from emotion_recognition.tools.sample import one_face_frames

    path = tmp_path / "one_face.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for frame in one_face_frames(12):
        writer.write(frame.image)
    writer.release()
    web = WebServer(
        "--source", "video", str(path), "--model", str(emotion_models.tflite), "--api-threads", "1"
    )
    try:
        results = []
        for result in web.events():
            results.append(result)
            if len(results) == 30:  # more than the file holds: it looped
                break
        assert all(r["image"] == {"width": 640, "height": 480} for r in results)
        assert sum(len(r["faces"]) == 1 for r in results) >= 25
        assert f"source: video {path}" in web.output()
    finally:
        assert web.stop() == 0, web.output()


def test_detector_settings_come_from_the_node_parameter_file(tmp_path, emotion_models: ModelFiles) -> None:
    """The node's parameter file sets the API's detector: faces smaller than detector.min_face_size
    (here larger than the astronaut's ~100 px face) are not reported; a bad value stops the start."""
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    detector:\n      min_face_size: 300\n")
    web = WebServer("--params-file", str(params), "--model", str(emotion_models.tflite), "--api-threads", "1")
    try:
        status, answer, _ = web.request("POST", "/api/v1/emotions", astronaut_jpeg(), "image/jpeg")
        assert status == 200 and answer["faces"] == []
    finally:
        assert web.stop() == 0, web.output()
    params.write_text("/**:\n  ros__parameters:\n    detector:\n      min_face_size: -5\n")
    with pytest.raises(AssertionError, match=r"error: parameter file .*min_face_size must be >= 1"):
        WebServer("--params-file", str(params))
