"""The bag tools against hostile bags and outputs: undecodable records are skipped, counted and
listed; an output that is, lies inside or contains the input is refused (even with --overwrite); a
bit-rotted sqlite bag, a read-only output file system and a full disk end with one ``error:`` line and
no traceback; and every encoding the node takes, mono and 4-channel included, works in the bag tool."""

from __future__ import annotations

import hashlib
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotion_recognition.ros.image_conversion import SUPPORTED_ENCODINGS
from emotion_recognition.tools import bag_process, bagio
from emotion_recognition.tools.sample import sample_frames
from test.conftest import next_ros_domain_id
from test.support.bags import IMAGE_TOPIC, read_bag, write_photo_bag
from test.support.models import ModelFiles
from test.support.ros_graph import ros_environment

# These tests start processes (the node, the tools, training): see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

# Frames of the built-in sample with one face or two (640x480 real photos).
FACE_FRAME_INDICES = (10, 25, 55)


@pytest.fixture(scope="module")
def model(emotion_models: ModelFiles) -> Path:
    return emotion_models.tflite


def run_cli(model: Path, *args: str) -> int:
    return bag_process.main([*args, "--model", str(model), "--no-progress"])


def run_tool(module: str, *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()):
    """A bag tool as its own process (the real command line), output captured."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", f"emotion_recognition.tools.{module}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def assert_one_error_line(result: subprocess.CompletedProcess, prog: str, *expected: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith(f"{prog}: error: "), result.stderr
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def tree_digest(path: Path) -> dict[str, str]:
    """Every file under ``path`` (or ``path`` itself) with the SHA-256 of its bytes."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


# --------------------------------------------------------------------------- undecodable records
def _bad_records(good: bytes) -> dict[str, bytes]:
    """Records a broken recorder or a damaged file could hold, built from a real serialized image."""
    data_length = struct.pack("<I", 480 * 640 * 3)
    at = good.find(data_length)
    huge = bytearray(good)
    struct.pack_into("<I", huge, at, 0xFFFFFFF0)
    return {
        "random_bytes": np.random.default_rng(7).integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "truncated_cdr": good[: len(good) // 2],
        "huge_length": bytes(huge),
        "zero_length": b"",
        "bad_encapsulation": b"\x07\x07\x00\x00" + good[4:],
        "header_only": good[:40],
    }


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_undecodable_records_are_skipped_counted_and_listed(
    tmp_path: Path, capsys, model: Path, storage: str
) -> None:
    store = bagio.typestore()
    frames = list(sample_frames(60))
    good = [
        bytes(
            store.serialize_cdr(
                bagio.image_message(frames[i].image, frames[i].stamp_ns, "cam"), bagio.IMAGE_TYPE
            )
        )
        for i in FACE_FRAME_INDICES[:2]
    ]
    bad = _bad_records(good[0])
    bag = tmp_path / "bag"
    writer = bagio.open_writer(bag, storage)
    connection = writer.add_connection(IMAGE_TOPIC, bagio.IMAGE_TYPE, typestore=store)
    stamp = 10**9
    writer.write(connection, stamp, good[0])
    bad_times = {}
    for name, raw in bad.items():
        stamp += 10**8
        bad_times[stamp] = name
        writer.write(connection, stamp, raw)
    writer.write(connection, stamp + 10**8, good[1])
    writer.close()

    assert run_cli(model, str(bag), "-o", str(tmp_path / "out")) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert f"2 processed, {len(bad)} skipped" in captured.out
    summary = json.loads((tmp_path / "out" / bag_process.SUMMARY_NAME).read_text())
    assert summary["frames"] == 2 and summary["skipped_frames"] == len(bad)
    assert [entry["bag_time_ns"] for entry in summary["skipped"]] == sorted(bad_times)
    assert all(entry["reason"] for entry in summary["skipped"])
    for stamp in bad_times:
        assert f"skipped: bag time {stamp} ns" in captured.out
    assert len(read_bag(tmp_path / "out" / bag_process.BAG_DIR)[bag_process.EMOTIONS_TOPIC]) == 2


# ----------------------------------------------------------------------- outputs that destroy data
@pytest.fixture
def photo_bag(tmp_path: Path) -> Path:
    bag = tmp_path / "recordings" / "lab_run"
    write_photo_bag(bag, "sqlite3", compressed=True)
    return bag


@pytest.mark.parametrize("where", ["equal", "inside", "containing", "db3_file"])
@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_an_output_that_would_destroy_the_input_is_refused(
    photo_bag: Path, capsys, model: Path, where: str, overwrite: bool
) -> None:
    before = tree_digest(photo_bag.parent)
    bag_arg = str(next(photo_bag.glob("*.db3"))) if where == "db3_file" else str(photo_bag)
    output = {
        "equal": Path(bag_arg),
        "inside": photo_bag / "out",
        "containing": photo_bag.parent,
        "db3_file": photo_bag,
    }[where]
    status = run_cli(model, bag_arg, "-o", str(output), *(["--overwrite"] if overwrite else []))
    err = capsys.readouterr().err
    assert status != 0
    assert "emotion_bag_process: error: output folder" in err and "the input" in err, err
    assert tree_digest(photo_bag.parent) == before  # not one byte of the recording changed
    assert not any(p.name.startswith(".") for p in photo_bag.parent.rglob("*"))  # no staging left


def test_the_demo_refuses_to_replace_its_input_bag_or_a_folder_of_user_data(
    photo_bag: Path, tmp_path: Path
) -> None:
    before = tree_digest(photo_bag.parent)
    result = run_tool("demo", "--bag", str(photo_bag), "-o", str(photo_bag.parent))
    assert_one_error_line(result, "emotion_demo", "contains the input")
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "thesis.txt").write_text("years of work")
    result = run_tool("demo", "--bag", str(photo_bag), "-o", str(documents))
    assert_one_error_line(result, "emotion_demo", "not an earlier output")
    assert (documents / "thesis.txt").read_text() == "years of work"
    assert tree_digest(photo_bag.parent) == before


# --------------------------------------------------------------------- corrupt bags, broken outputs
def _bit_rot(bag: Path, mode: str) -> None:
    db3 = next(bag.glob("*.db3"))
    data = bytearray(db3.read_bytes())
    rng = np.random.default_rng(3)
    if mode == "flipped_bits":
        for position in rng.integers(0, len(data), 200):
            data[position] ^= 1 << int(rng.integers(0, 8))
    else:  # a zeroed 4 KB page in the middle of the messages
        page = len(data) // 4096 // 2
        data[page * 4096 : (page + 1) * 4096] = bytes(4096)
    db3.write_bytes(bytes(data))


@pytest.mark.parametrize("mode", ["flipped_bits", "zeroed_page"])
def test_a_bit_rotted_sqlite_bag_gives_one_error_line_in_both_tools(
    tmp_path: Path, model: Path, mode: str
) -> None:
    bag = tmp_path / "bag"
    write_photo_bag(bag, "sqlite3", compressed=True)
    _bit_rot(bag, mode)
    result = run_tool(
        "bag_process", str(bag), "-o", str(tmp_path / "out"), "--model", str(model), "--no-progress"
    )
    assert_one_error_line(result, "emotion_bag_process", "corrupt")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    env = ros_environment(next_ros_domain_id())
    result = run_tool("bag_replay", str(bag), "--fps", "200", env=env)
    assert_one_error_line(result, "emotion_bag_replay", "corrupt")


@pytest.mark.parametrize(
    ("options", "storage", "expected"),
    [
        ("ro,size=4m", "sqlite3", "Read-only file system"),
        # sqlite says "database or disk is full" when it is the first writer to hit the limit, the
        # operating system "No space left on device" when the CSV or the plot is.
        ("size=160k", "sqlite3", r"full|No space left on device"),
        ("size=160k", "mcap", "No space left on device"),
    ],
    ids=["read_only", "full_disk_sqlite3", "full_disk_mcap"],
)
def test_an_unwritable_output_gives_one_error_line_and_leaves_nothing(
    tmp_path: Path, model: Path, options: str, storage: str, expected: str
) -> None:
    """A real read-only file system and a real full disk: a tmpfs mounted (read-only, or 160 KB) in a
    private mount namespace of the command, so nothing outside the test sees it."""
    bag = tmp_path / "bag"
    write_photo_bag(bag, "sqlite3", compressed=True)
    mount_point = tmp_path / "mnt"
    listing = f'; ls -A "{mount_point}" > "{tmp_path}/left.txt"'
    mount_point.mkdir()
    script = f'mount -t tmpfs -o {options} none "{mount_point}" && "$@"; status=$?{listing}; exit $status'
    result = subprocess.run(
        [
            "unshare",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
            sys.executable,
            "-m",
            "emotion_recognition.tools.bag_process",
            str(bag),
            "-o",
            str(mount_point / "out"),
            "--storage",
            storage,
            "--model",
            str(model),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = assert_one_error_line(result, "emotion_bag_process", str(mount_point / "out"))
    assert re.search(expected, line), line
    assert (tmp_path / "left.txt").read_text().split() == []  # no output, no staging folder left


# ------------------------------------------------------------------------- the node's encodings
def _layout(bgr: np.ndarray, encoding: str) -> tuple[np.ndarray, int]:
    """``bgr`` in the memory layout of a ``sensor_msgs/Image`` encoding, and its bytes per pixel."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    layouts = {
        "rgb8": (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 3),
        "bgr8": (bgr, 3),
        "8UC3": (bgr, 3),
        "rgba8": (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA), 4),
        "bgra8": (cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), 4),
        "8UC4": (cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), 4),
        "mono8": (gray, 1),
        "8UC1": (gray, 1),
        "mono16": ((gray.astype(np.uint16) * 257).astype("<u2").view(np.uint8), 2),
        "yuv422": (cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_UYVY), 2),
        "uyvy": (cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_UYVY), 2),
        "yuv422_yuy2": (cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_YUY2), 2),
        "yuyv": (cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_YUY2), 2),
    }
    return layouts[encoding]


COMPRESSED_KINDS = {
    "gray_jpeg": lambda bgr: cv2.imencode(".jpg", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))[1],
    "gray_png": lambda bgr: cv2.imencode(".png", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))[1],
    "bgra_png": lambda bgr: cv2.imencode(".png", cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))[1],
    "png_16bit": lambda bgr: cv2.imencode(".png", bgr.astype(np.uint16) * 257)[1],
    "colour_jpeg": lambda bgr: cv2.imencode(".jpg", bgr)[1],
}


def _write_bag(path: Path, kind: str) -> int:
    """A bag of three sample frames with faces in one encoding or compressed kind; returns the face count."""
    store = bagio.typestore()
    compressed = kind in COMPRESSED_KINDS
    msgtype = bagio.COMPRESSED_IMAGE_TYPE if compressed else bagio.IMAGE_TYPE
    frames = list(sample_frames(60))
    writer = bagio.open_writer(path, "mcap")
    connection = writer.add_connection(IMAGE_TOPIC, msgtype, typestore=store)
    faces = 0
    for index in FACE_FRAME_INDICES:
        frame = frames[index]
        faces += len(frame.face_boxes)
        header = store.types["std_msgs/msg/Header"](
            stamp=store.types["builtin_interfaces/msg/Time"](
                sec=frame.stamp_ns // 10**9, nanosec=frame.stamp_ns % 10**9
            ),
            frame_id="cam",
        )
        if compressed:
            data = np.ascontiguousarray(COMPRESSED_KINDS[kind](frame.image).reshape(-1))
            message = store.types[msgtype](
                header=header, format="png" if "png" in kind else "jpeg", data=data
            )
        else:
            pixels, bytes_per_pixel = _layout(frame.image, kind)
            height, width = frame.image.shape[:2]
            message = store.types[msgtype](
                header=header,
                height=height,
                width=width,
                encoding=kind,
                is_bigendian=0,
                step=width * bytes_per_pixel,
                data=np.ascontiguousarray(pixels).reshape(-1),
            )
        writer.write(connection, frame.stamp_ns, store.serialize_cdr(message, msgtype))
    writer.close()
    return faces


@pytest.mark.parametrize("kind", [*SUPPORTED_ENCODINGS, *COMPRESSED_KINDS])
def test_the_bag_tool_takes_every_encoding_the_node_takes(
    tmp_path: Path, capsys, model: Path, kind: str
) -> None:
    faces = _write_bag(tmp_path / "bag", kind)
    assert run_cli(model, str(tmp_path / "bag"), "-o", str(tmp_path / "out")) == 0
    summary = json.loads((tmp_path / "out" / bag_process.SUMMARY_NAME).read_text())
    assert (summary["frames"], summary["skipped_frames"]) == (3, 0), capsys.readouterr().err
    assert summary["faces"] >= faces - 1, summary  # Haar on real photos: allow one miss in the three frames


def test_a_decompression_bomb_in_a_bag_is_skipped_without_the_memory(
    tmp_path: Path, capsys, model: Path
) -> None:
    """The bag tool applies the node's size limits: a JPEG claiming 65500x16384 among real frames is
    skipped (listed with the size and the limit) and this process's peak RSS does not jump."""
    import resource

    from test.support.bombs import jpeg_claiming

    store = bagio.typestore()
    frames = list(sample_frames(60))
    bag = tmp_path / "bag"
    writer = bagio.open_writer(bag, "sqlite3")
    connection = writer.add_connection(IMAGE_TOPIC, bagio.COMPRESSED_IMAGE_TYPE, typestore=store)
    for index in FACE_FRAME_INDICES:
        message = bagio.image_message(frames[index].image, frames[index].stamp_ns, "cam", compressed=True)
        writer.write(
            connection, frames[index].stamp_ns, store.serialize_cdr(message, bagio.COMPRESSED_IMAGE_TYPE)
        )
    bomb = store.types[bagio.COMPRESSED_IMAGE_TYPE](
        header=message.header, format="jpeg", data=np.frombuffer(jpeg_claiming(65500, 16384), np.uint8)
    )
    bomb_time = frames[FACE_FRAME_INDICES[-1]].stamp_ns + 10**8
    writer.write(connection, bomb_time, store.serialize_cdr(bomb, bagio.COMPRESSED_IMAGE_TYPE))
    writer.close()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert run_cli(model, str(bag), "-o", str(tmp_path / "out")) == 0
    # Decoding the bomb would take 3.2 GB; the run itself (model, threads, plot) adds about 50 MB.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before < 300 * (1 << 20)
    summary = json.loads((tmp_path / "out" / bag_process.SUMMARY_NAME).read_text())
    assert (summary["frames"], summary["skipped_frames"]) == (3, 1)
    (skipped,) = summary["skipped"]
    assert skipped["bag_time_ns"] == bomb_time
    assert "65500x16384" in skipped["reason"] and "max_image_pixels" in skipped["reason"]
    assert "Traceback" not in capsys.readouterr().err
