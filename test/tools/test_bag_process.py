"""Offline processing of real rosbag2 files (sqlite3 and MCAP, raw and compressed images of real
photographs) with ``emotion_bag_process``, and its errors on bad bags."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import pytest
from rclpy.serialization import deserialize_message

from emotion_msgs.msg import FaceEmotionArray
from emotion_recognition.ros.messages import stamp_ns
from emotion_recognition.spec import EMOTION_LABELS
from emotion_recognition.tools import bag_process, bagio, reporting
from test.support.bags import IMAGE_TOPIC, read_bag, write_photo_bag
from test.support.models import ModelFiles

# Each test runs the perception core over whole bags: see the `slow` marker in pyproject.toml.
pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A pasted face counts as found when a published box overlaps it this much (Haar frames faces a bit
# differently than the pasted head).
FOUND_IOU = 0.4


@pytest.fixture(scope="module")
def model(emotion_models: ModelFiles) -> Path:
    """The model file the node runs (shipped, else the untrained stand-in)."""
    return emotion_models.tflite


def run_cli(model: Path, *args: str) -> int:
    """``emotion_bag_process ARGS`` in this process, with the test model."""
    return bag_process.main([*args, "--model", str(model), "--no-progress"])


def leftovers(parent: Path, name: str) -> list[str]:
    """Entries next to an output folder that belong to it (itself or a staging folder)."""
    return sorted(p.name for p in parent.iterdir() if p.name == name or p.name.startswith(f".{name}."))


@pytest.fixture(
    scope="module",
    params=[("sqlite3", False), ("sqlite3", True), ("mcap", False), ("mcap", True)],
    ids=["sqlite3-raw", "sqlite3-compressed", "mcap-raw", "mcap-compressed"],
)
def processed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model: Path):
    """A bag of real photos in one storage/image kind, processed once for the tests below."""
    storage, compressed = request.param
    folder = tmp_path_factory.mktemp(f"{storage}-{'jpeg' if compressed else 'raw'}")
    bag = folder / "input_bag"
    frames = write_photo_bag(bag, storage, compressed)
    output = folder / "out"
    status = run_cli(model, str(bag), "--output", str(output))
    return {
        "storage": storage,
        "compressed": compressed,
        "bag": bag,
        "frames": frames,
        "output": output,
        "status": status,
    }


def test_output_bag_has_one_result_per_input_image_with_matching_stamps(processed: dict) -> None:
    assert processed["status"] == 0
    output_bag = processed["output"] / bag_process.BAG_DIR
    files = [p.suffix for p in output_bag.iterdir()]
    assert (".mcap" in files) == (processed["storage"] == "mcap"), files  # same storage as the input
    topics = read_bag(output_bag)
    inputs = read_bag(processed["bag"])[IMAGE_TOPIC]
    expected_stamps = [f.stamp_ns for f in processed["frames"]]
    annotated_topic = (
        bag_process.ANNOTATED_COMPRESSED_TOPIC if processed["compressed"] else bag_process.ANNOTATED_TOPIC
    )
    assert sorted(topics) == sorted(
        [IMAGE_TOPIC, bag_process.EMOTIONS_TOPIC, bag_process.DETECTIONS_TOPIC, annotated_topic]
    )

    # The input images are copied unchanged, at their recorded bag times.
    assert [(m.timestamp, m.raw) for m in topics[IMAGE_TOPIC]] == [(m.timestamp, m.raw) for m in inputs]
    for topic in (bag_process.EMOTIONS_TOPIC, bag_process.DETECTIONS_TOPIC, annotated_topic):
        stored = topics[topic]
        assert [stamp_ns(m.msg.header) for m in stored] == expected_stamps, topic
        assert [m.timestamp for m in stored] == [m.timestamp for m in inputs], topic
        assert all(m.msg.header.frame_id == inputs[0].msg.header.frame_id for m in stored)

    # The bytes are what rclpy (and so `ros2 bag play` on a robot) reads back.
    for stored in topics[bag_process.EMOTIONS_TOPIC]:
        msg = deserialize_message(stored.raw, FaceEmotionArray)
        assert list(msg.labels) == list(EMOTION_LABELS)
        assert len(msg.faces) == len(stored.msg.faces)

    # The annotated images decode to full-size pictures.
    annotated = topics[annotated_topic][0].msg
    if processed["compressed"]:
        picture = cv2.imdecode(annotated.data, cv2.IMREAD_COLOR)
    else:
        picture = annotated.data.reshape(annotated.height, annotated.width, 3)
    assert picture.shape == (480, 640, 3)


def test_faces_of_the_photos_are_found_and_labelled(processed: dict) -> None:
    assert processed["status"] == 0
    emotions = read_bag(processed["output"] / bag_process.BAG_DIR)[bag_process.EMOTIONS_TOPIC]
    found = expected = 0
    for frame, stored in zip(processed["frames"], emotions):
        boxes = [(f.box.x_offset, f.box.y_offset, f.box.width, f.box.height) for f in stored.msg.faces]
        for face in frame.face_boxes:
            expected += 1
            found += any(_iou(face, box) >= FOUND_IOU for box in boxes)
        if not frame.face_boxes:
            assert not stored.msg.faces, "a face was reported in a face-free frame"
        for face in stored.msg.faces:
            assert face.label in EMOTION_LABELS
            assert face.label == EMOTION_LABELS[max(range(7), key=lambda i: face.probabilities[i])]
    assert expected > 20
    assert found >= 0.9 * expected, f"found {found} of {expected} pasted faces"


def _iou(face, box: tuple[int, int, int, int]) -> float:
    from emotion_recognition.core.types import Box

    return face.iou(Box(*box))


def test_csv_rows_match_the_messages(processed: dict) -> None:
    assert processed["status"] == 0
    emotions = read_bag(processed["output"] / bag_process.BAG_DIR)[bag_process.EMOTIONS_TOPIC]
    with (processed["output"] / bag_process.CSV_NAME).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == reporting.csv_header(EMOTION_LABELS)
    expected = []
    first = stamp_ns(emotions[0].msg.header)
    for index, stored in enumerate(emotions):
        for face in stored.msg.faces:
            expected.append((index, stamp_ns(stored.msg.header), face))
    assert len(rows) == len(expected) > 0
    for row, (index, stamp, face) in zip(rows, expected):
        assert int(row["frame"]) == index
        assert int(row["stamp_ns"]) == stamp
        assert float(row["time_s"]) == pytest.approx((stamp - first) / 1e9, abs=1e-6)
        assert int(row["track_id"]) == face.track_id
        assert (int(row["x"]), int(row["y"]), int(row["width"]), int(row["height"])) == (
            face.box.x_offset,
            face.box.y_offset,
            face.box.width,
            face.box.height,
        )
        assert row["label"] == face.label
        assert float(row["confidence"]) == pytest.approx(face.confidence, abs=1e-6)
        assert [float(row[f"p_{label}"]) for label in EMOTION_LABELS] == pytest.approx(
            list(face.probabilities), abs=1e-6
        )


def test_plot_is_a_png_and_summary_counts_frames(processed: dict) -> None:
    assert processed["status"] == 0
    plot = processed["output"] / bag_process.PLOT_NAME
    assert plot.read_bytes()[:8] == PNG_MAGIC
    image = cv2.imread(str(plot))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    import json

    summary = json.loads((processed["output"] / bag_process.SUMMARY_NAME).read_text())
    assert summary["frames"] == len(processed["frames"])
    assert summary["faces"] == sum(
        1 for _ in csv.DictReader((processed["output"] / bag_process.CSV_NAME).open())
    )
    assert summary["fps"] > 0
    assert leftovers(processed["output"].parent, "out") == ["out"]


def test_summary_is_printed_with_throughput(
    tmp_path: Path, capsys: pytest.CaptureFixture, model: Path
) -> None:
    bag = tmp_path / "bag"
    frames = write_photo_bag(bag, "sqlite3", compressed=False)
    assert run_cli(model, str(bag), "-o", str(tmp_path / "result")) == 0
    printed = capsys.readouterr().out
    assert f"frames: {len(frames)} processed" in printed
    assert "offline throughput:" in printed and "frames/s" in printed and "ms per frame" in printed
    assert "track 1:" in printed
    assert str(tmp_path / "result") in printed


def test_missing_topic_fails_with_its_name_and_leaves_no_output(tmp_path: Path, capsys, model: Path) -> None:
    bag = tmp_path / "bag"
    write_photo_bag(bag, "mcap", compressed=True)
    output = tmp_path / "out"
    assert run_cli(model, str(bag), "--topic", "/front_camera/image_raw", "-o", str(output)) != 0
    error = capsys.readouterr().err
    assert "/front_camera/image_raw" in error and "not in bag" in error and IMAGE_TOPIC in error
    assert leftovers(tmp_path, "out") == []


def test_bag_without_image_topic_and_unsupported_type_fail_clearly(
    tmp_path: Path, capsys, model: Path
) -> None:
    store = bagio.typestore()
    bag = tmp_path / "strings"
    writer = bagio.open_writer(bag, "sqlite3")
    connection = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
    message = store.types["std_msgs/msg/String"](data="hello")
    writer.write(connection, 1, store.serialize_cdr(message, "std_msgs/msg/String"))
    writer.close()

    assert run_cli(model, str(bag), "-o", str(tmp_path / "out")) != 0
    error = capsys.readouterr().err
    assert "no image topic" in error and "/chatter (std_msgs/msg/String)" in error

    assert run_cli(model, str(bag), "--topic", "/chatter", "-o", str(tmp_path / "out")) != 0
    error = capsys.readouterr().err
    assert "unsupported message type std_msgs/msg/String" in error
    assert leftovers(tmp_path, "out") == []


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_truncated_bag_fails_clearly_and_leaves_no_output(
    tmp_path: Path, capsys, storage: str, model: Path
) -> None:
    bag = tmp_path / "bag"
    write_photo_bag(bag, storage, compressed=False)
    (data_file,) = [p for p in bag.iterdir() if p.suffix in (".db3", ".mcap")]
    size = data_file.stat().st_size
    with data_file.open("r+b") as handle:  # a recording cut off mid-write
        handle.truncate(size // 2)
    output = tmp_path / "out"
    assert run_cli(model, str(bag), "-o", str(output)) != 0
    error = capsys.readouterr().err
    assert "error:" in error and ("corrupt" in error or "truncated" in error), error
    assert str(bag) in error
    assert leftovers(tmp_path, "out") == []


def test_garbage_file_and_missing_path_fail_clearly(tmp_path: Path, capsys, model: Path) -> None:
    garbage = tmp_path / "recording.db3"
    garbage.write_bytes(os.urandom(4096))
    assert run_cli(model, str(garbage), "-o", str(tmp_path / "out")) != 0
    assert "corrupt" in capsys.readouterr().err
    assert run_cli(model, str(tmp_path / "no_such_bag"), "-o", str(tmp_path / "out")) != 0
    assert "bag not found" in capsys.readouterr().err
    assert leftovers(tmp_path, "out") == []


def test_existing_output_is_kept_unless_overwrite(tmp_path: Path, capsys, model: Path) -> None:
    bag = tmp_path / "bag"
    write_photo_bag(bag, "sqlite3", compressed=True)
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    assert run_cli(model, str(bag), "-o", str(output)) != 0
    assert "already exists" in capsys.readouterr().err
    assert (output / "keep.txt").read_text() == "mine"
    assert run_cli(model, str(bag), "-o", str(output), "--overwrite", "--storage", "mcap") == 0
    assert not (output / "keep.txt").exists()
    assert any(p.suffix == ".mcap" for p in (output / bag_process.BAG_DIR).iterdir())
    assert leftovers(tmp_path, "out") == ["out"]


def test_interrupted_run_leaves_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: Path
) -> None:
    """Ctrl-C in the middle of the frames: the staging folder is removed, nothing appears."""
    bag = tmp_path / "bag"
    write_photo_bag(bag, "sqlite3", compressed=True)
    calls = {"n": 0}
    original = reporting.csv_rows

    def interrupt_at_frame_5(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(reporting, "csv_rows", interrupt_at_frame_5)
    assert run_cli(model, str(bag), "-o", str(tmp_path / "out")) == 130
    assert leftovers(tmp_path, "out") == []


def test_undecodable_images_are_skipped_with_a_warning(tmp_path: Path, capsys, model: Path) -> None:
    store = bagio.typestore()
    bag = tmp_path / "bag"
    frames = []
    writer = bagio.open_writer(bag, "mcap")
    connection = writer.add_connection(IMAGE_TOPIC, bagio.COMPRESSED_IMAGE_TYPE, typestore=store)
    from emotion_recognition.tools.sample import sample_frames

    for index, frame in enumerate(sample_frames(4)):
        message = bagio.image_message(frame.image, frame.stamp_ns, "camera", compressed=True)
        if index == 1:  # a JPEG cut short: the camera's encoder was interrupted
            message = store.types[bagio.COMPRESSED_IMAGE_TYPE](
                header=message.header, format="jpeg", data=message.data[:200]
            )
        writer.write(connection, frame.stamp_ns, store.serialize_cdr(message, bagio.COMPRESSED_IMAGE_TYPE))
        frames.append(frame.stamp_ns)
    writer.close()
    assert run_cli(model, str(bag), "-o", str(tmp_path / "out")) == 0
    captured = capsys.readouterr()
    assert "skipped the image" in captured.err
    assert "3 processed, 1 skipped" in captured.out
    emotions = read_bag(tmp_path / "out" / bag_process.BAG_DIR)[bag_process.EMOTIONS_TOPIC]
    assert [stamp_ns(m.msg.header) for m in emotions] == [frames[0], frames[2], frames[3]]


def test_a_single_storage_file_is_accepted(tmp_path: Path, model: Path) -> None:
    """``ros2 bag`` users sometimes point at the .mcap/.db3 file itself."""
    bag = tmp_path / "bag"
    frames = write_photo_bag(bag, "mcap", compressed=True)
    (mcap,) = bag.glob("*.mcap")
    assert run_cli(model, str(mcap), "-o", str(tmp_path / "out")) == 0
    emotions = read_bag(tmp_path / "out" / bag_process.BAG_DIR)[bag_process.EMOTIONS_TOPIC]
    assert len(emotions) == len(frames)


def test_output_bag_records_the_type_hashes_rosidl_generates(processed: dict) -> None:
    """``ros2 bag`` matches a topic's type by its RIHS01 type-description hash: the bag must carry the
    hash that the built interface packages (rosidl) computed, and the full message definition."""
    import json

    from ament_index_python.packages import get_package_share_directory
    from rosbags.rosbag2 import Reader

    assert processed["status"] == 0
    with Reader(processed["output"] / bag_process.BAG_DIR) as reader:
        connections = {c.msgtype: c for c in reader.connections}
    for msgtype in (bag_process.EMOTIONS_TYPE, bag_process.DETECTIONS_TYPE):
        package, _, name = msgtype.split("/")
        described = json.loads(
            (Path(get_package_share_directory(package)) / "msg" / f"{name}.json").read_text()
        )
        (generated,) = [h["hash_string"] for h in described["type_hashes"] if h["type_name"] == msgtype]
        assert connections[msgtype].digest == generated, msgtype
        # The full definition, nested types included (FaceEmotion, Detection2D, ...).
        assert f"MSG: {package}/" in connections[msgtype].msgdef.data
