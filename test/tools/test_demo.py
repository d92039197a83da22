"""The demo, run the way the README's first command runs it: ``scripts/dev-env emotion_demo``, in a
subprocess, against the real node process; and from a fresh copy of the repository."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import cv2
import pytest

from emotion_recognition.spec import EMOTION_LABELS
from emotion_recognition.tools import demo
from emotion_recognition.tools.sample import SAMPLE_FRAME_COUNT, sample_frames, write_sample_bag
from test.conftest import next_ros_domain_id
from test.support.models import ModelFiles

# Each test starts processes (node, DDS peers, builds): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
README_COMMAND = ["scripts/dev-env", "emotion_demo"]
# Faces pasted into the built-in sample (every one is found by the node's default detector).
SAMPLE_FACES = sum(len(f.face_boxes) for f in sample_frames())
DEMO_TIMEOUT_S = 300


def model_args(models: ModelFiles) -> list[str]:
    """No option for the trained, shipped model (the README command as is), else the stand-in model."""
    return [] if models.trained else ["--model", str(models.tflite)]


def run_demo(cwd: Path, domain_id: int, models: ModelFiles, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env.pop("ROS_LOCALHOST_ONLY", None)
    return subprocess.run(
        [*README_COMMAND, *args, *model_args(models)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
    )


def check_output(folder: Path, frames: int, min_faces: int) -> dict:
    """The demo's folder holds every answered frame annotated, a playable video, the CSV and a summary
    with faces and labels."""
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["frames_sent"] == frames
    assert summary["frames_answered"] == frames
    assert summary["annotated_frames"] == frames
    assert summary["faces"] >= min_faces
    assert summary["node_exit_status"] == 0
    assert summary["tracks"], "no tracks"
    for counts in summary["tracks"].values():
        assert set(counts) <= set(EMOTION_LABELS) and sum(counts.values()) > 0
    pngs = sorted((folder / "frames").glob("*.png"))
    assert len(pngs) == frames
    image = cv2.imread(str(pngs[0]))
    assert image is not None and image.ndim == 3
    video = cv2.VideoCapture(str(folder / demo.VIDEO_NAME))
    count = 0
    while video.read()[0]:
        count += 1
    assert count == frames
    with (folder / "timeline.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == summary["faces"]
    assert all(row["label"] in EMOTION_LABELS for row in rows)
    return summary


def test_readme_demo_command_writes_annotated_frames_with_labelled_faces(
    tmp_path: Path, emotion_models: ModelFiles
) -> None:
    output = tmp_path / "demo_output"
    domain_id = next_ros_domain_id()
    result = run_demo(REPO, domain_id, emotion_models, "--output", str(output))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"output: {output}" in result.stdout
    summary = check_output(output, SAMPLE_FRAME_COUNT, min_faces=int(0.95 * SAMPLE_FACES))
    assert summary["ros_domain_id"] == domain_id
    assert "built-in sample" in summary["source"]
    assert [p.name for p in tmp_path.iterdir()] == ["demo_output"]  # no staging folder left


def test_demo_from_a_fresh_copy_of_the_repository(tmp_path: Path, emotion_models: ModelFiles) -> None:
    """What a new user does: a checkout of the tracked files (the shared .venv stands in for the first
    set-up), then the README command; scripts/setup-env builds the workspace on the way."""
    checkout = tmp_path / "checkout"
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            target = checkout / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (checkout / ".venv").symlink_to(REPO / ".venv")
    result = run_demo(checkout, next_ros_domain_id(), emotion_models)
    assert result.returncode == 0, result.stdout + result.stderr
    check_output(checkout / "demo_output", SAMPLE_FRAME_COUNT, min_faces=int(0.95 * SAMPLE_FACES))


def test_demo_takes_a_users_bag_or_video(tmp_path: Path, emotion_models: ModelFiles) -> None:
    bag = write_sample_bag(tmp_path / "recording", storage="mcap", compressed=True, count=8)
    result = run_demo(
        REPO, next_ros_domain_id(), emotion_models, "--bag", str(bag), "--output", str(tmp_path / "from_bag")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bag " in check_output(tmp_path / "from_bag", 8, min_faces=8)["source"]

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    for frame in sample_frames(6):
        writer.write(frame.image)
    writer.release()
    result = run_demo(
        REPO,
        next_ros_domain_id(),
        emotion_models,
        "--video",
        str(video),
        "--output",
        str(tmp_path / "from_video"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "video" in check_output(tmp_path / "from_video", 6, min_faces=6)["source"]


def test_demo_errors_name_the_problem(tmp_path: Path, emotion_models: ModelFiles) -> None:
    result = run_demo(
        REPO,
        next_ros_domain_id(),
        emotion_models,
        "--bag",
        str(tmp_path / "missing"),
        "--output",
        str(tmp_path / "o"),
    )
    assert result.returncode == 1
    assert "bag not found" in result.stderr
    result = run_demo(
        REPO, next_ros_domain_id(), emotion_models, "--camera", "57", "--output", str(tmp_path / "o")
    )
    assert result.returncode == 1
    assert "cannot open camera device 57" in result.stderr
    assert not (tmp_path / "o").exists()


def test_demo_domain_defaults_to_a_private_random_one() -> None:
    env: dict[str, str] = {}
    demo.prepare_ros_environment(env)
    low, high = demo.DEMO_DOMAIN_RANGE
    assert low <= int(env["ROS_DOMAIN_ID"]) <= high
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    env = {"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    demo.prepare_ros_environment(env)
    assert env == {"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}


def test_ctrl_c_stops_the_demo_and_leaves_no_output(tmp_path: Path, emotion_models: ModelFiles) -> None:
    output = tmp_path / "demo_output"
    env = dict(os.environ, ROS_DOMAIN_ID=str(next_ros_domain_id()), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    log = (tmp_path / "demo.log").open("w+")
    demo_process = subprocess.Popen(
        [
            *README_COMMAND,
            "--pace",
            "recorded",
            "--rate",
            "0.1",
            "--output",
            str(output),
            *model_args(emotion_models),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    try:
        deadline = time.monotonic() + 120
        while "sending images" not in (tmp_path / "demo.log").read_text() and time.monotonic() < deadline:
            assert demo_process.poll() is None, (tmp_path / "demo.log").read_text()
            time.sleep(0.1)
    finally:
        os.killpg(demo_process.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        status = demo_process.wait(timeout=60)
    text = (tmp_path / "demo.log").read_text()
    assert status == 130, text
    assert "interrupted; no output written" in text
    assert not output.exists() and [p.name for p in tmp_path.iterdir()] == ["demo.log"]
