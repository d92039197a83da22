"""The API through Flask's test client: real photos, the real (shipped) model, every error case.

The same cases run against the real server over HTTP in test_server.py.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json

import cv2
import numpy as np
import pytest

from emotion_recognition.core.image import DEFAULT_MAX_IMAGE_PIXELS
from emotion_recognition.spec import EMOTION_LABELS
from emotion_recognition.web.analyzer import ImageAnalyzer
from emotion_recognition.web.app import WebContext, create_app
from emotion_recognition.web.hub import FrameHub
from emotion_recognition.web.server import build_pipeline, load_values
from test.support.images import ASTRONAUT, face_box
from test.support.models import ModelFiles
from test.support.web import TEST_UPLOAD_LIMIT_MB, astronaut_jpeg, encoded, hostile_uploads, multipart

ANALYZER_WORKERS = 2


@pytest.fixture(scope="module")
def client(emotion_models: ModelFiles):
    values = load_values(None)
    pipelines = [build_pipeline(emotion_models.tflite, values) for _ in range(ANALYZER_WORKERS)]
    analyzer = ImageAnalyzer(pipelines, DEFAULT_MAX_IMAGE_PIXELS)
    app = create_app(WebContext(analyzer, FrameHub(), "test"), max_upload_bytes=TEST_UPLOAD_LIMIT_MB * 2**20)
    return app.test_client()


def _iou(a: dict, box) -> float:
    ix = max(0, min(a["x"] + a["width"], box.x + box.width) - max(a["x"], box.x))
    iy = max(0, min(a["y"] + a["height"], box.y + box.height) - max(a["y"], box.y))
    inter = ix * iy
    return inter / (a["width"] * a["height"] + box.width * box.height - inter)


def check_astronaut(answer: dict, trained: bool) -> None:
    """One face, where the astronaut's face is, with seven probabilities; happy with the real model."""
    assert answer["labels"] == list(EMOTION_LABELS)
    assert answer["image"] == {"width": 512, "height": 512}
    assert len(answer["faces"]) == 1, answer
    face = answer["faces"][0]
    assert _iou(face["box"], face_box(ASTRONAUT)) > 0.5, face["box"]
    assert len(face["probabilities"]) == 7 and abs(sum(face["probabilities"]) - 1.0) < 0.01
    assert face["confidence"] == max(face["probabilities"])
    assert face["label"] == EMOTION_LABELS[int(np.argmax(face["probabilities"]))]
    if trained:
        assert face["label"] == "happy", face
    assert "track_id" not in face
    assert answer["timings_ms"]["total"] >= answer["timings_ms"]["classify"] > 0


def test_astronaut_raw_jpeg_gives_one_happy_face(client, emotion_models: ModelFiles) -> None:
    response = client.post("/api/v1/emotions", data=astronaut_jpeg(), content_type="image/jpeg")
    assert response.status_code == 200, response.json
    check_astronaut(response.json, emotion_models.trained)
    assert "annotated_image" not in response.json


def test_astronaut_png_as_multipart_field(client, emotion_models: ModelFiles) -> None:
    body, content_type = multipart("image", "astronaut.png", "image/png", encoded(ASTRONAUT, ".png"))
    response = client.post("/api/v1/emotions", data=body, content_type=content_type)
    assert response.status_code == 200, response.json
    check_astronaut(response.json, emotion_models.trained)


def test_face_free_photo_gives_an_empty_list(client) -> None:
    response = client.post("/api/v1/emotions", data=encoded("coffee"), content_type="image/jpeg")
    assert response.status_code == 200
    assert response.json["faces"] == []
    assert response.json["image"] == {"width": 600, "height": 400}


def test_annotate_returns_the_drawn_image(client) -> None:
    response = client.post("/api/v1/emotions?annotate=1", data=astronaut_jpeg(), content_type="image/jpeg")
    assert response.status_code == 200
    annotated = response.json["annotated_image"]
    assert annotated["content_type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(base64.b64decode(annotated["base64"]), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (512, 512, 3)
    original = cv2.imdecode(np.frombuffer(astronaut_jpeg(), np.uint8), cv2.IMREAD_COLOR)
    # The box and caption change pixels around the face, not elsewhere.
    box = response.json["faces"][0]["box"]
    changed = np.abs(image.astype(int) - original.astype(int)).max(axis=2) > 60
    assert changed[box["y"] : box["y"] + box["height"], box["x"] : box["x"] + box["width"]].any()
    assert not changed[450:, 450:].any()


def test_requests_are_independent(client) -> None:
    """The same photo gives the same answer however often and in whatever order it comes: no tracking
    or smoothing carries over between requests, even from concurrent ones."""
    photos = [astronaut_jpeg(), encoded("coffee")] * 4

    def post(data: bytes) -> dict:
        return client.post("/api/v1/emotions", data=data, content_type="image/jpeg").json

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, photos))
    for answer, again in zip(answers[:-2], answers[2:], strict=True):
        assert answer["faces"] == again["faces"]


@pytest.mark.parametrize(
    "case, body, content_type, status, message", hostile_uploads(), ids=[c[0] for c in hostile_uploads()]
)
def test_bad_uploads_get_their_status_and_message(client, case, body, content_type, status, message) -> None:
    response = client.post("/api/v1/emotions", data=body, content_type=content_type or None)
    assert response.status_code == status, (case, response.data[:300])
    assert response.mimetype == "application/json"
    assert message in response.json["error"], response.json


def test_health_names_the_model_and_labels(client, emotion_models: ModelFiles) -> None:
    health = client.get("/api/v1/health").json
    assert health["status"] == "ok"
    assert health["model"] == str(emotion_models.tflite)
    assert health["labels"] == list(EMOTION_LABELS)


def test_openapi_describes_every_route(client) -> None:
    document = json.loads(client.get("/api/v1/openapi.json").data)
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) >= {
        "/api/v1/emotions",
        "/api/v1/health",
        "/api/v1/events",
        "/stream.mjpg",
        "/",
    }
    responses = document["paths"]["/api/v1/emotions"]["post"]["responses"]
    assert set(responses) == {"200", "400", "413", "415"}


def test_unknown_route_and_method_answer_json(client) -> None:
    assert client.get("/api/v1/nothing").json["error"]
    response = client.get("/api/v1/emotions")
    assert response.status_code == 405 and response.json["error"]


def test_page_and_its_files_are_served(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and b"stream.mjpg" in page.data
    for name in ("app.js", "chart.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    # Nothing the page loads comes from elsewhere.
    assert b"http://" not in page.data and b"https://" not in page.data
