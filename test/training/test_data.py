"""Loaders on small data written by the tests: Kaggle CSV (plain and gzipped), folder layout, npz and
FER+ votes, with malformed rows and truncated files."""

from __future__ import annotations

import gzip
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotion_recognition.spec import EMOTION_LABELS
from training.data import (
    PRIVATE_TEST,
    PUBLIC_TEST,
    TRAINING,
    DatasetError,
    ferplus_majority_labels,
    load_csv,
    load_dataset,
    load_folder,
    load_npz,
)

SPLITS = ("Training", "PublicTest", "PrivateTest")


def synthetic_rows(count: int = 36, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 48, 48), dtype=np.uint8)
    labels = np.arange(count) % 7
    usage = np.arange(count) % 3
    return images, labels, usage


def csv_text(images: np.ndarray, labels: np.ndarray, usage: np.ndarray) -> str:
    lines = ["emotion,pixels,Usage"]
    for image, label, split in zip(images, labels, usage):
        lines.append(f"{label},{' '.join(map(str, image.ravel()))},{SPLITS[split]}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("gzipped", [False, True])
def test_csv_loads_every_row_exactly(tmp_path: Path, gzipped: bool) -> None:
    images, labels, usage = synthetic_rows()
    text = csv_text(images, labels, usage)
    path = tmp_path / ("fer2013.csv.gz" if gzipped else "fer2013.csv")
    path.write_bytes(gzip.compress(text.encode()) if gzipped else text.encode())

    data = load_dataset(path)

    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_array_equal(data.usage, usage)
    assert data.skipped == 0
    assert len(data.split(TRAINING)) == 12 and len(data.split(PUBLIC_TEST)) == 12


def test_malformed_row_names_file_and_line(tmp_path: Path) -> None:
    images, labels, usage = synthetic_rows(6)
    lines = csv_text(images, labels, usage).splitlines()
    lines[3] = "3," + " ".join(["7"] * 2000) + ",Training"  # 2,000 pixels instead of 2,304
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(DatasetError, match=r"fer2013\.csv:4: malformed row: expected 2304 pixels, got 2000"):
        load_csv(path)


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("9,{pixels},Training", "unknown label 9"),
        ("2,{pixels},Holdout", "unknown split 'Holdout'"),
        ("2,{pixels}", "expected 3 fields"),
        ("x,{pixels},Training", "invalid literal"),
        ("1,{bigpixels},Training", "outside 0-255"),
    ],
)
def test_each_kind_of_bad_row_is_reported_or_skipped(tmp_path: Path, bad_row: str, message: str) -> None:
    images, labels, usage = synthetic_rows(5)
    pixels = " ".join(["10"] * 2304)
    bigpixels = " ".join(["300"] * 2304)
    lines = csv_text(images, labels, usage).splitlines()
    lines.insert(2, bad_row.format(pixels=pixels, bigpixels=bigpixels))
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(DatasetError, match=rf"rows\.csv:3: malformed row: .*{message}"):
        load_dataset(path)
    data = load_dataset(path, skip_bad_rows=True)
    assert data.skipped == 1
    np.testing.assert_array_equal(data.images, images)


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    images, labels, usage = synthetic_rows(30)
    blob = gzip.compress(csv_text(images, labels, usage).encode())
    path = tmp_path / "fer2013.csv.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="unreadable or truncated"):
        load_dataset(path)


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "nope.csv")
    other = tmp_path / "faces.parquet"
    other.write_bytes(b"PAR1")
    with pytest.raises(DatasetError, match="unsupported data file"):
        load_dataset(other)


def test_npz_round_trip_and_truncation(tmp_path: Path) -> None:
    images, labels, usage = synthetic_rows()
    path = tmp_path / "fer.npz"
    np.savez_compressed(path, images=images, labels=labels.astype(np.int8), usage=usage.astype(np.int8))
    data = load_npz(path)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:4000])
    with pytest.raises(DatasetError, match="truncated"):
        load_npz(truncated)


def test_folder_layout_with_kaggle_test_folder(tmp_path: Path) -> None:
    images, labels, _ = synthetic_rows(21)
    expected = []
    for i, (image, label) in enumerate(zip(images, labels)):
        if i % 3 == 0:
            split_dir, name, split = "train", f"Training_{i}.png", TRAINING
        elif i % 3 == 1:
            split_dir, name, split = "test", f"PublicTest_{i}.png", PUBLIC_TEST
        else:
            split_dir, name, split = "test", f"PrivateTest_{i}.png", PRIVATE_TEST
        folder = tmp_path / split_dir / EMOTION_LABELS[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / name), image)  # PNG: lossless
        expected.append((image.tobytes(), int(label), split))

    data = load_folder(tmp_path)

    found = sorted(
        (img.tobytes(), int(lab), int(spl)) for img, lab, spl in zip(data.images, data.labels, data.usage)
    )
    assert found == sorted(expected)


def test_folder_layout_errors(tmp_path: Path) -> None:
    (tmp_path / "train" / "bored").mkdir(parents=True)
    with pytest.raises(DatasetError, match="unknown emotion folder"):
        load_folder(tmp_path)

    root = tmp_path / "second"
    (root / "train" / "happy").mkdir(parents=True)
    cv2.imwrite(str(root / "train" / "happy" / "good.png"), np.full((48, 48), 128, np.uint8))
    (root / "train" / "happy" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DatasetError, match="broken.jpg: unreadable image"):
        load_folder(root)
    data = load_folder(root, skip_bad_rows=True)
    assert len(data) == 1 and data.skipped == 1


FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def rows_with_votes(tmp_path: Path, vote_rows: list[str]) -> tuple[Path, Path, np.ndarray]:
    """A Kaggle CSV of ``len(vote_rows)`` synthetic rows and a FER+ vote file with ``vote_rows`` after
    its header: (data path, vote path, images)."""
    images, labels, usage = synthetic_rows(len(vote_rows))
    data_path = tmp_path / "fer2013.csv"
    data_path.write_text(csv_text(images, labels, usage))
    votes = tmp_path / "fer2013new.csv"
    votes.write_text("\n".join([FERPLUS_HEADER, *vote_rows]) + "\n")
    return data_path, votes, images


def test_ferplus_votes_become_soft_labels(tmp_path: Path) -> None:
    data_path, votes, images = rows_with_votes(
        tmp_path,
        [
            "Training,fer0000000.png,4,0,0,0,6,0,0,0,0,0",  # 60% anger, 40% neutral
            "PublicTest,fer0000001.png,0,10,0,0,0,0,0,0,0,0",  # all happiness
            "PrivateTest,,0,0,0,0,0,0,0,0,0,10",  # not a face: dropped
            "Training,fer0000003.png,0,0,2,0,0,0,0,0,8,0",  # surprise (unknown votes ignored)
        ],
    )

    data = load_dataset(data_path, ferplus=votes)

    assert len(data) == 3
    np.testing.assert_array_equal(data.images, images[[0, 1, 3]])
    np.testing.assert_allclose(data.soft_labels[0], [0.6, 0, 0, 0, 0, 0, 0.4])
    assert [EMOTION_LABELS[i] for i in data.labels] == ["angry", "happy", "surprise"]
    assert "dropped 1 rows" in data.notes[-1]


def test_ferplus_votes_as_an_auxiliary_target_blend_with_the_fer2013_label(tmp_path: Path) -> None:
    data_path, votes, images = rows_with_votes(
        tmp_path,
        [
            "Training,fer0000000.png,4,0,0,0,6,0,0,0,0,0",  # 60% anger, 40% neutral
            "PublicTest,fer0000001.png,0,10,0,0,0,0,0,0,0,0",  # all happiness; FER2013 says disgust
            "PrivateTest,,0,0,0,0,0,0,0,0,0,10",  # no emotion votes: kept, with its one-hot label
        ],
    )  # labels 0 (angry), 1 (disgust), 2 (fear)

    data = load_dataset(data_path, ferplus=votes, ferplus_weight=0.25)

    assert len(data) == 3 and list(data.labels) == [0, 1, 2]  # nothing dropped, FER2013's labels kept
    np.testing.assert_allclose(data.targets()[0], [0.25 * 0.6 + 0.75, 0, 0, 0, 0, 0, 0.25 * 0.4])
    np.testing.assert_allclose(data.targets()[1], [0, 0.75, 0, 0.25, 0, 0, 0])
    np.testing.assert_allclose(data.targets()[2], np.eye(7)[2])
    np.testing.assert_allclose(data.targets().sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(data.one_hot(), np.eye(7)[[0, 1, 2]])
    assert "1 rows without usable votes" in data.notes[-1]
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="FER\\+ weight"):
            load_dataset(data_path, ferplus=votes, ferplus_weight=bad)


def test_ferplus_malformed_and_misaligned(tmp_path: Path) -> None:
    images, labels, usage = synthetic_rows(2)
    data_path = tmp_path / "fer2013.csv"
    data_path.write_text(csv_text(images, labels, usage))
    votes = tmp_path / "fer2013new.csv"
    votes.write_text(
        f"{FERPLUS_HEADER}\nTraining,a.png,1,2,3,4,5,6,7,0,0,0\nTraining,b.png,1,two,3,4,5,6,7,0,0,0\n"
    )
    with pytest.raises(DatasetError, match=r"fer2013new\.csv:3: malformed FER\+ row"):
        load_dataset(data_path, ferplus=votes)

    votes.write_text(f"{FERPLUS_HEADER}\nTraining,a.png,1,2,3,4,5,6,7,0,0,0\n")
    with pytest.raises(DatasetError, match="row-aligned"):
        load_dataset(data_path, ferplus=votes)


def test_ferplus_majority_labels_keep_only_unique_emotion_majorities() -> None:
    # Columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
    votes = np.array(
        [
            [1, 8, 0, 0, 0, 0, 1, 0, 0, 0],  # happiness wins clearly -> happy
            [5, 0, 0, 5, 0, 0, 0, 0, 0, 0],  # neutral and sadness tie -> no label
            [2, 0, 0, 0, 0, 0, 0, 6, 2, 0],  # contempt wins -> not one of the 7 emotions
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # no votes at all
            [0, 0, 3, 0, 0, 0, 4, 0, 3, 0],  # fear beats surprise and unknown -> fear
            [3, 0, 0, 0, 0, 0, 0, 0, 4, 3],  # unknown wins over neutral -> no label
        ]
    )
    labels, has_label = ferplus_majority_labels(votes)
    assert has_label.tolist() == [True, False, False, False, False, True, False]
    assert [EMOTION_LABELS[i] for i in labels[has_label]] == ["happy", "fear"]
    assert (labels[~has_label] == -1).all()
