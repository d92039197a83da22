"""FER2013 loaders: the Kaggle CSV (plain or gzipped), the ``<split>/<emotion>/*.png|jpg`` folder layout,
the prepared ``.npz`` archive, and FER+ vote files as an alternative label source.

Every loader returns a :class:`FerDataset` with FER2013's label order (``emotion_recognition.spec``).
A malformed row is an error naming the file and line, unless ``skip_bad_rows`` is set; then bad rows
are counted in :attr:`FerDataset.skipped` and reported by the caller.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emotion_recognition.spec import EMOTION_LABELS, INPUT_HEIGHT, INPUT_WIDTH, NUM_EMOTIONS

# Split ids, as FER2013's ``Usage`` column names them.
TRAINING, PUBLIC_TEST, PRIVATE_TEST = 0, 1, 2
SPLIT_NAMES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
# Folder names accepted for each split in the folder layout (lower-case).
_SPLIT_ALIASES = {
    "training": TRAINING,
    "train": TRAINING,
    "publictest": PUBLIC_TEST,
    "public_test": PUBLIC_TEST,
    "val": PUBLIC_TEST,
    "valid": PUBLIC_TEST,
    "validation": PUBLIC_TEST,
    "privatetest": PRIVATE_TEST,
    "private_test": PRIVATE_TEST,
    "test": PRIVATE_TEST,
}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm"}
_PIXELS_PER_IMAGE = INPUT_HEIGHT * INPUT_WIDTH

# FER+ vote columns (fer2013new.csv) that map onto the seven FER2013 emotions, in FER2013 order.
# 'contempt', 'unknown' and 'NF' (not a face) have no FER2013 class and are left out.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
_FERPLUS_TO_FER = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


class DatasetError(ValueError):
    """A data file is missing, truncated or holds a malformed row."""


@dataclass
class FerDataset:
    """Images with labels and split ids, all in FER2013 row order where the source has one.

    Attributes:
        images: uint8 (N, 48, 48) grayscale faces.
        labels: int64 (N,) FER2013 class index per image.
        usage: int8 (N,) split id (TRAINING, PUBLIC_TEST, PRIVATE_TEST).
        soft_labels: optional float32 (N, 7) label distributions (from FER+ votes).
        source: human-readable description of where the data came from.
        skipped: number of malformed rows skipped (only non-zero with ``skip_bad_rows``).
    """

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    soft_labels: np.ndarray | None = None
    source: str = ""
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def split(self, split_id: int) -> FerDataset:
        """The rows of one split."""
        mask = self.usage == split_id
        return FerDataset(
            images=self.images[mask],
            labels=self.labels[mask],
            usage=self.usage[mask],
            soft_labels=None if self.soft_labels is None else self.soft_labels[mask],
            source=f"{self.source} [{SPLIT_NAMES[split_id]}]",
            skipped=self.skipped,
            notes=list(self.notes),
        )

    def targets(self) -> np.ndarray:
        """Training targets: the soft labels when present, else one-hot labels (float32, (N, 7))."""
        if self.soft_labels is not None:
            return self.soft_labels.astype(np.float32)
        return self.one_hot()

    def one_hot(self) -> np.ndarray:
        """The hard labels as one-hot rows (float32, (N, 7))."""
        return np.eye(NUM_EMOTIONS, dtype=np.float32)[self.labels]

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=NUM_EMOTIONS)


def parse_split(name: str) -> int:
    """Map a split name (``Training``, ``PublicTest``, ``train``, ``val`` ...) to its id."""
    key = name.strip().lower()
    if key in _SPLIT_ALIASES:
        return _SPLIT_ALIASES[key]
    raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLIT_NAMES)}")


def load_dataset(
    path: str | os.PathLike,
    skip_bad_rows: bool = False,
    ferplus: str | os.PathLike | None = None,
    ferplus_weight: float = 1.0,
) -> FerDataset:
    """Load FER2013 from a Kaggle CSV (``.csv``/``.csv.gz``), a prepared ``.npz`` or a folder layout.

    Args:
        path: the data file or folder.
        skip_bad_rows: count and skip malformed rows instead of failing on the first one.
        ferplus: optional FER+ ``fer2013new.csv``; its votes become the soft labels (row-aligned with a
            CSV or npz source; rows that FER+ marks as no face are dropped).
        ferplus_weight: below 1, the soft labels are this share of the votes plus the rest of the
            FER2013 label, and every row keeps its FER2013 label (see :func:`blend_ferplus_votes`).

    Raises:
        DatasetError: missing file, unreadable/truncated file, malformed row (file and line named).
        ValueError: ``ferplus_weight`` outside [0, 1].
    """
    if not 0.0 <= ferplus_weight <= 1.0:
        raise ValueError(f"the FER+ weight must be in [0, 1], got {ferplus_weight}")
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    if p.is_dir():
        if ferplus is not None:
            raise DatasetError(
                "FER+ votes are row-aligned with fer2013.csv; they cannot label a folder layout"
            )
        return load_folder(p, skip_bad_rows=skip_bad_rows)
    name = p.name.lower()
    if name.endswith(".npz"):
        data = load_npz(p)
    elif name.endswith(".csv") or name.endswith(".csv.gz"):
        data = load_csv(p, skip_bad_rows=skip_bad_rows)
    else:
        raise DatasetError(f"{p}: unsupported data file; expected .csv, .csv.gz, .npz or a folder")
    if ferplus is not None and ferplus_weight < 1.0:
        return blend_ferplus_votes(data, Path(ferplus), ferplus_weight, skip_bad_rows=skip_bad_rows)
    if ferplus is not None:
        data = apply_ferplus_votes(data, Path(ferplus), skip_bad_rows=skip_bad_rows)
    return data


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _collected(
    source: Path,
    images: list[np.ndarray],
    labels: list[int],
    usage: list[int],
    skipped: int,
    empty_message: str,
) -> FerDataset:
    """The dataset a row-by-row loader gathered (an error when it gathered nothing)."""
    if not images:
        raise DatasetError(f"{source}: {empty_message}")
    return FerDataset(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        usage=np.asarray(usage, dtype=np.int8),
        source=str(source),
        skipped=skipped,
    )


def load_csv(path: str | os.PathLike, skip_bad_rows: bool = False) -> FerDataset:
    """Load the Kaggle ``fer2013.csv`` layout: header ``emotion,pixels,Usage``; 2,304 pixels per row."""
    path = Path(path)
    images: list[np.ndarray] = []
    labels: list[int] = []
    usage: list[int] = []
    skipped = 0
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path}: empty file")
            columns = [c.strip().lower() for c in header]
            try:
                i_label, i_pixels = columns.index("emotion"), columns.index("pixels")
            except ValueError:
                raise DatasetError(
                    f"{path}:1: header must name 'emotion' and 'pixels' columns, got {header}"
                ) from None
            i_usage = columns.index("usage") if "usage" in columns else None
            for row in reader:
                line = reader.line_num
                try:
                    if len(row) != len(columns):
                        raise ValueError(f"expected {len(columns)} fields, got {len(row)}")
                    label = int(row[i_label])
                    if not 0 <= label < NUM_EMOTIONS:
                        raise ValueError(f"unknown label {label} (expected 0-{NUM_EMOTIONS - 1})")
                    pixels = np.array(row[i_pixels].split(), dtype=np.int64)
                    if pixels.size != _PIXELS_PER_IMAGE:
                        raise ValueError(f"expected {_PIXELS_PER_IMAGE} pixels, got {pixels.size}")
                    if pixels.min() < 0 or pixels.max() > 255:
                        raise ValueError("pixel values outside 0-255")
                    split = parse_split(row[i_usage]) if i_usage is not None else TRAINING
                except (ValueError, OverflowError) as exc:  # OverflowError: a pixel beyond int64
                    if not skip_bad_rows:
                        raise DatasetError(f"{path}:{line}: malformed row: {exc}") from None
                    skipped += 1
                    continue
                images.append(pixels.astype(np.uint8).reshape(INPUT_HEIGHT, INPUT_WIDTH))
                labels.append(label)
                usage.append(split)
    except (EOFError, gzip.BadGzipFile, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: unreadable or truncated file: {exc}") from None
    return _collected(path, images, labels, usage, skipped, "no valid rows")


def load_npz(path: str | os.PathLike) -> FerDataset:
    """Load an archive with ``images`` (N,48,48) uint8, ``labels`` and ``usage`` arrays (the layout of
    ``shared/data/fer2013.npz``). FER+ votes in it (``ferplus_votes``) are kept aside, not applied."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"images", "labels", "usage"} - set(archive.files)
            if missing:
                raise DatasetError(f"{path}: missing arrays {sorted(missing)}")
            images = archive["images"]
            labels = archive["labels"].astype(np.int64)
            usage = archive["usage"].astype(np.int8)
    except DatasetError:
        raise
    except Exception as exc:  # numpy raises several types for a damaged zip archive
        raise DatasetError(f"{path}: unreadable or truncated archive: {exc}") from None
    if images.ndim != 3 or images.shape[1:] != (INPUT_HEIGHT, INPUT_WIDTH) or images.dtype != np.uint8:
        raise DatasetError(
            f"{path}: images must be uint8 (N, {INPUT_HEIGHT}, {INPUT_WIDTH}), "
            f"got {images.dtype} {images.shape}"
        )
    if not (len(labels) == len(usage) == len(images)):
        raise DatasetError(f"{path}: images, labels and usage have different lengths")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_EMOTIONS):
        raise DatasetError(f"{path}: labels outside 0-{NUM_EMOTIONS - 1}")
    return FerDataset(images=images, labels=labels, usage=usage, source=str(path))


def load_folder(root: str | os.PathLike, skip_bad_rows: bool = False) -> FerDataset:
    """Load ``<root>/<split>/<emotion>/*.png|jpg``.

    Split folders: ``train``/``Training``, ``val``/``PublicTest``, ``test``/``PrivateTest`` (see
    :func:`parse_split`). In Kaggle's ``test`` folder, files named ``PublicTest_*`` go to PublicTest and
    ``PrivateTest_*`` to PrivateTest. Emotion folders use the names in ``EMOTION_LABELS``.
    Images that are not 48x48 are resized (area interpolation); colour images are converted to gray.
    """
    import cv2  # imported here: the CSV/npz paths don't need OpenCV

    root = Path(root)
    images: list[np.ndarray] = []
    labels: list[int] = []
    usage: list[int] = []
    skipped = 0
    split_dirs = sorted(d for d in root.iterdir() if d.is_dir())
    if not split_dirs:
        raise DatasetError(f"{root}: no split folders (expected e.g. train/, test/)")
    for split_dir in split_dirs:
        try:
            split = parse_split(split_dir.name)
        except ValueError as exc:
            raise DatasetError(f"{split_dir}: {exc}") from None
        for emotion_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
            name = emotion_dir.name.lower()
            if name not in EMOTION_LABELS:
                raise DatasetError(
                    f"{emotion_dir}: unknown emotion folder; expected one of {', '.join(EMOTION_LABELS)}"
                )
            label = EMOTION_LABELS.index(name)
            for file in sorted(emotion_dir.iterdir()):
                if file.suffix.lower() not in _IMAGE_SUFFIXES:
                    continue
                image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
                if image is None or image.size == 0:
                    if not skip_bad_rows:
                        raise DatasetError(f"{file}: unreadable image")
                    skipped += 1
                    continue
                if image.shape != (INPUT_HEIGHT, INPUT_WIDTH):
                    image = cv2.resize(image, (INPUT_WIDTH, INPUT_HEIGHT), interpolation=cv2.INTER_AREA)
                file_split = split
                if file.name.startswith("PublicTest_"):
                    file_split = PUBLIC_TEST
                elif file.name.startswith("PrivateTest_"):
                    file_split = PRIVATE_TEST
                images.append(image)
                labels.append(label)
                usage.append(file_split)
    return _collected(root, images, labels, usage, skipped, "no images found")


# Highest FER+ vote count accepted for one class of one image (FER+ has 10 annotators per image).
MAX_VOTES = 1000


def load_ferplus_votes(path: str | os.PathLike, skip_bad_rows: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read ``fer2013new.csv``: returns (votes uint16 (N, 10) in FERPLUS_COLUMNS order, valid bool (N,)).

    A row that cannot be parsed is an error (file and line), or with ``skip_bad_rows`` it is kept in
    place (row alignment matters) with ``valid`` False.
    """
    path = Path(path)
    votes: list[list[int]] = []
    valid: list[bool] = []
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path}: empty file")
            columns = [c.strip() for c in header]
            try:
                idx = [columns.index(c) for c in FERPLUS_COLUMNS]
            except ValueError:
                raise DatasetError(
                    f"{path}:1: header must name the FER+ columns {FERPLUS_COLUMNS}, got {header}"
                ) from None
            for row in reader:
                try:
                    values = [int(row[i]) for i in idx]
                    if min(values) < 0 or max(values) > MAX_VOTES:
                        raise ValueError(f"vote count outside 0-{MAX_VOTES}")
                    votes.append(values)
                    valid.append(True)
                except (ValueError, IndexError) as exc:
                    if not skip_bad_rows:
                        raise DatasetError(f"{path}:{reader.line_num}: malformed FER+ row: {exc}") from None
                    votes.append([0] * len(FERPLUS_COLUMNS))
                    valid.append(False)
    except (EOFError, gzip.BadGzipFile, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: unreadable or truncated file: {exc}") from None
    return np.asarray(votes, dtype=np.uint16).reshape(-1, len(FERPLUS_COLUMNS)), np.asarray(valid, dtype=bool)


def ferplus_soft_labels(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn FER+ vote counts into FER2013-ordered label distributions.

    Returns (soft labels float32 (N, 7), usable bool (N,)); a row is usable when at least one vote went
    to one of the seven FER2013 emotions.
    """
    columns = [FERPLUS_COLUMNS.index(c) for c in _FERPLUS_TO_FER]
    counts = votes[:, columns].astype(np.float32)
    totals = counts.sum(axis=1, keepdims=True)
    usable = totals[:, 0] > 0
    soft = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    return soft, usable


def ferplus_majority_labels(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The FER+ benchmark labels: each row's majority vote, where it is unique and a FER2013 emotion.

    The majority is taken over all ten FER+ columns, so a row whose most-voted column is 'contempt',
    'unknown' or 'NF', or whose top count is shared by two columns, has no benchmark label.

    Returns (labels int64 (N,) in FER2013 order, -1 where there is none; has_label bool (N,)).
    """
    votes = np.asarray(votes, dtype=np.int64)
    top = votes.max(axis=1)
    unique = (votes == top[:, None]).sum(axis=1) == 1
    column_to_label = np.full(len(FERPLUS_COLUMNS), -1, dtype=np.int64)
    for label, column in enumerate(_FERPLUS_TO_FER):
        column_to_label[FERPLUS_COLUMNS.index(column)] = label
    labels = column_to_label[votes.argmax(axis=1)]
    has_label = unique & (top > 0) & (labels >= 0)
    return np.where(has_label, labels, -1), has_label


def load_aligned_ferplus_votes(
    votes_path: str | os.PathLike, data: FerDataset, skip_bad_rows: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`load_ferplus_votes`, checked to hold one row for each row of the full data set ``data``.

    Raises:
        DatasetError: a malformed vote file, or one whose row count differs from ``data``'s.
    """
    votes, valid = load_ferplus_votes(votes_path, skip_bad_rows=skip_bad_rows)
    if len(votes) != len(data):
        raise DatasetError(
            f"{votes_path}: {len(votes)} FER+ rows but {len(data)} images in {data.source}; FER+ votes "
            "must be row-aligned with the full fer2013.csv (use skip_bad_rows only on the vote file)"
        )
    return votes, valid


def apply_ferplus_votes(data: FerDataset, votes_path: Path, skip_bad_rows: bool = False) -> FerDataset:
    """Use FER+ votes as labels for a row-ordered FER2013 dataset (CSV or npz source)."""
    votes, valid = load_aligned_ferplus_votes(votes_path, data, skip_bad_rows)
    soft, usable = ferplus_soft_labels(votes)
    keep = usable & valid
    dropped = int((~keep).sum())
    result = FerDataset(
        images=data.images[keep],
        labels=soft[keep].argmax(axis=1).astype(np.int64),
        usage=data.usage[keep],
        soft_labels=soft[keep],
        source=f"{data.source} + FER+ votes {votes_path}",
        skipped=data.skipped + int((~valid).sum()),
        notes=[*data.notes, f"FER+: dropped {dropped} rows with no FER2013-emotion votes"],
    )
    return result


def blend_ferplus_votes(
    data: FerDataset, votes_path: Path, weight: float, skip_bad_rows: bool = False
) -> FerDataset:
    """FER+ votes as an auxiliary target: each soft label is ``weight`` x the vote distribution plus
    ``1 - weight`` x the one-hot FER2013 label. Rows without usable votes keep the one-hot label; no row is
    dropped and the hard labels stay FER2013's.
    """
    votes, valid = load_aligned_ferplus_votes(votes_path, data, skip_bad_rows)
    soft, usable = ferplus_soft_labels(votes)
    one_hot = data.one_hot()
    keep = (usable & valid)[:, None]
    blended = np.where(keep, weight * soft + (1.0 - weight) * one_hot, one_hot).astype(np.float32)
    return dataclasses.replace(
        data,
        soft_labels=blended,
        source=f"{data.source} + {weight:g} x FER+ votes {votes_path}",
        skipped=data.skipped + int((~valid).sum()),
        notes=[*data.notes, f"FER+: {int((~keep).sum())} rows without usable votes keep the one-hot label"],
    )
