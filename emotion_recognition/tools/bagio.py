"""rosbag2 input and output shared by the bag tools and the sample, on top of the pure-Python ``rosbags``.

* :func:`open_image_topic` opens a bag (a rosbag2 directory, or a single ``.db3``/``.mcap`` file) and
  picks the image topic, with an error that names the problem when the bag is missing, corrupt or has no
  usable topic (:class:`BagError`).
* :func:`typestore` knows the standard ROS 2 Kilted types plus ``emotion_msgs`` and ``vision_msgs``,
  whose definitions are read from their ``.msg`` files, so that bags written here carry full message
  definitions (``ros2 bag`` on a robot and ``rosbags`` here can both read them).
* :func:`write_image_bag` writes frames as a bag, the way ``ros2 bag record`` stores a camera topic.
* :func:`staged_output_dir` creates an output folder atomically: it appears under its final name only
  once everything in it is complete.

Nothing here imports rclpy.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sqlite3
import struct
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emotion_recognition.ros.messages import stamp_parts

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES: tuple[str, ...] = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)
STORAGE_IDS: tuple[str, ...] = ("sqlite3", "mcap")
# rosbag2 metadata version written: 9 is what ROS 2 Jazzy and Kilted write.
BAG_VERSION = 9
# JPEG quality of compressed images written here (image_transport's default is 95; 90 keeps bags small).
JPEG_QUALITY = 90

# Interface packages whose definitions are added to the typestore, and the types that must be found.
_EXTRA_PACKAGES: tuple[str, ...] = ("emotion_msgs", "vision_msgs")
_REPO_ROOT = Path(__file__).resolve().parents[2]


def storage_errors() -> tuple[type[BaseException], ...]:
    """What a corrupt (bit-rotted) or truncated bag file makes the storage layer raise: sqlite's errors
    (``rosbags`` reads sqlite3 bags through ``apsw``, writes them through ``sqlite3``), and the
    low-level errors of a damaged MCAP or sqlite file."""
    errors: list[type[BaseException]] = [
        sqlite3.Error,
        EOFError,
        ValueError,
        KeyError,
        IndexError,
        OSError,
        struct.error,
        OverflowError,
    ]
    try:
        import apsw

        errors.append(apsw.Error)
    except ImportError:  # an older rosbags reads with sqlite3 only
        pass
    return tuple(errors)


class BagError(RuntimeError):
    """A bag cannot be used: missing, corrupt, truncated, or without a usable image topic."""


class OutputError(RuntimeError):
    """The output cannot be written: an unwritable folder, a read-only file system, a full disk, or an
    output folder that would destroy the input or a folder that is not an earlier output."""


# Marks a folder as an earlier output of these tools: only such a folder (or an empty one) is replaced.
OUTPUT_MARKER = "summary.json"


def refuse_overlap(output: Path | str, protected: Iterable[Path | str]) -> None:
    """Raise :class:`OutputError` when the output folder is, lies inside, or contains one of the
    ``protected`` paths (the input bag, video, ...): writing or replacing it would destroy that input.
    Symbolic links are resolved first."""
    final = Path(output).resolve()
    for path in protected:
        source = Path(path).resolve()
        if final == source or source in final.parents or final in source.parents:
            relation = "is" if final == source else ("is inside" if source in final.parents else "contains")
            raise OutputError(f"output folder {final} {relation} the input {source}; choose another output")


@dataclass(frozen=True)
class ImageTopic:
    """The image topic picked in a bag."""

    name: str
    msgtype: str
    message_count: int
    storage_id: str

    @property
    def compressed(self) -> bool:
        return self.msgtype == COMPRESSED_IMAGE_TYPE


def _msg_dirs(package: str) -> list[Path]:
    """Folders that may hold ``package``'s ``.msg`` files: installed share directories (the ament index,
    as on a robot or after ``colcon build``), else, in a source checkout, its source folders."""

    def usable(paths: Iterable[Path]) -> list[Path]:
        return [path for path in paths if path.is_dir() and any(path.glob("*.msg"))]

    installed = usable(
        Path(prefix) / "share" / package / "msg"
        for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
        if prefix
    )
    if installed or not (_REPO_ROOT / "package.xml").is_file():
        return installed
    return usable([_REPO_ROOT / package / "msg", *sorted(_REPO_ROOT.glob(f"test/*/{package}/msg"))])


@functools.cache
def typestore():  # -> rosbags.typesys.store.Typestore
    """The ROS 2 Kilted typestore plus every ``emotion_msgs`` and ``vision_msgs`` message found.

    A package whose definitions cannot be found is left out; writing one of its types then fails with
    :class:`BagError` (see :func:`require_types`).
    """
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    for package in _EXTRA_PACKAGES:
        dirs = _msg_dirs(package)
        if not dirs:
            continue
        types: dict = {}
        for msg_file in sorted(dirs[0].glob("*.msg")):
            types.update(get_types_from_msg(msg_file.read_text(), f"{package}/msg/{msg_file.stem}"))
        store.register(types)
    return store


def require_types(*msgtypes: str) -> None:
    """Raise :class:`BagError` unless the typestore knows every one of ``msgtypes``."""
    missing = [name for name in msgtypes if name not in typestore().fielddefs]
    if missing:
        raise BagError(
            f"message definitions not found for {', '.join(missing)}: build the interface packages "
            "(scripts/setup-env) or put their share directories on AMENT_PREFIX_PATH"
        )


def open_reader(path: Path | str):  # -> rosbags.rosbag2.Reader
    """Open a rosbag2 (directory, ``.db3`` or ``.mcap``) for reading.

    Raises:
        BagError: the path does not exist, is not a bag, or its metadata or storage is corrupt.
    """
    from rosbags.rosbag2 import Reader, ReaderError

    path = Path(path)
    if not path.exists():
        raise BagError(f"bag not found: {path}")
    try:
        reader = Reader(path)
        reader.open()
    except FileNotFoundError:
        raise BagError(
            f"not a rosbag2: {path} has no metadata.yaml and is not a .db3 or .mcap file"
        ) from None
    except (ReaderError, *storage_errors()) as exc:
        raise BagError(f"cannot open bag {path}: corrupt, truncated or not a rosbag2 ({exc})") from None
    return reader


def _storage_id(reader) -> str:
    """``"sqlite3"`` or ``"mcap"``, from the bag's storage files."""
    path = Path(reader.path)
    files = list(path.iterdir()) if path.is_dir() else [path]
    return "mcap" if any(f.suffix == ".mcap" for f in files) else "sqlite3"


def pick_image_topic(reader, topic: str | None = None) -> ImageTopic:
    """Choose the image topic to process in an open bag.

    With ``topic`` given it must exist and be ``sensor_msgs/Image`` or ``CompressedImage``; without, the
    bag must hold exactly one image topic.

    Raises:
        BagError: naming the missing topic, the unsupported type, or the candidates to choose from.
    """
    topics = {conn.topic: conn.msgtype for conn in reader.connections}
    counts: dict[str, int] = {}
    for conn in reader.connections:
        counts[conn.topic] = counts.get(conn.topic, 0) + conn.msgcount
    listing = ", ".join(f"{name} ({msgtype})" for name, msgtype in sorted(topics.items())) or "none"
    if topic is not None:
        wanted = topic if topic in topics else "/" + topic.lstrip("/")
        if wanted not in topics:
            raise BagError(f"topic {topic!r} is not in bag {reader.path}; its topics: {listing}")
        if topics[wanted] not in IMAGE_TYPES:
            raise BagError(
                f"topic {wanted!r} has unsupported message type {topics[wanted]}; "
                f"supported: {', '.join(IMAGE_TYPES)}"
            )
        return ImageTopic(wanted, topics[wanted], counts[wanted], _storage_id(reader))
    images = sorted(name for name, msgtype in topics.items() if msgtype in IMAGE_TYPES)
    if not images:
        raise BagError(
            f"bag {reader.path} has no image topic ({' or '.join(IMAGE_TYPES)}); its topics: {listing}"
        )
    if len(images) > 1:
        raise BagError(
            f"bag {reader.path} has {len(images)} image topics ({', '.join(images)}): choose one with --topic"
        )
    return ImageTopic(images[0], topics[images[0]], counts[images[0]], _storage_id(reader))


@contextlib.contextmanager
def open_image_topic(path: Path | str, topic: str | None = None) -> Iterator[tuple[object, ImageTopic]]:
    """Open a bag and pick its image topic (see :func:`pick_image_topic`); yields ``(reader, topic)``."""
    reader = open_reader(path)
    try:
        yield reader, pick_image_topic(reader, topic)
    finally:
        with contextlib.suppress(Exception):
            reader.close()


def iter_topic_messages(reader, topic: str) -> Iterator[tuple[object, int, bytes]]:
    """Yield ``(connection, bag timestamp ns, serialized bytes)`` of one topic in bag order.

    Raises:
        BagError: when the storage turns out to be truncated or corrupt while reading.
    """
    from rosbags.rosbag2 import ReaderError

    connections = [conn for conn in reader.connections if conn.topic == topic]
    try:
        yield from reader.messages(connections=connections)
    except ReaderError as exc:
        raise BagError(f"bag {reader.path} is corrupt or truncated: {exc}") from None
    except storage_errors() as exc:
        raise BagError(f"bag {reader.path} is corrupt or truncated ({type(exc).__name__}: {exc})") from None


def storage_plugin(storage: str):  # -> rosbags.rosbag2.StoragePlugin
    """The rosbags storage plugin for ``"sqlite3"`` or ``"mcap"``."""
    from rosbags.rosbag2 import StoragePlugin

    plugins = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
    if storage not in plugins:
        raise ValueError(f"unknown storage {storage!r}; expected one of {', '.join(plugins)}")
    return plugins[storage]


def open_writer(path: Path | str, storage: str):  # -> rosbags.rosbag2.Writer
    """Create a new rosbag2 directory at ``path`` (which must not exist) and open it for writing."""
    from rosbags.rosbag2 import Writer

    writer = Writer(Path(path), version=BAG_VERSION, storage_plugin=storage_plugin(storage))
    writer.open()
    return writer


def image_message(image: np.ndarray, stamp_ns: int, frame_id: str, compressed: bool = False):
    """A rosbags ``sensor_msgs/Image`` (``bgr8``/``mono8``) or ``CompressedImage`` (JPEG) message."""
    store = typestore()
    sec, nanosec = stamp_parts(stamp_ns)
    header = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
    )
    if compressed:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
        return store.types[COMPRESSED_IMAGE_TYPE](header=header, format="jpeg", data=encoded.reshape(-1))
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected a uint8 BGR or grayscale image, got {image.shape} {image.dtype}")
    channels = 1 if image.ndim == 2 else 3
    return store.types[IMAGE_TYPE](
        header=header,
        height=int(image.shape[0]),
        width=int(image.shape[1]),
        encoding="mono8" if channels == 1 else "bgr8",
        is_bigendian=0,
        step=int(image.shape[1]) * channels,
        data=np.ascontiguousarray(image).reshape(-1),
    )


def write_image_bag(
    path: Path | str,
    frames: Iterable[tuple[np.ndarray, int]],
    topic: str = "/camera/image_raw",
    storage: str = "sqlite3",
    compressed: bool = False,
    frame_id: str = "camera_optical_frame",
) -> Path:
    """Write ``(bgr_image, stamp_ns)`` frames as a rosbag2 with one image topic and return its path.

    Each message's header stamp and bag timestamp are the frame's stamp, as when a camera driver stamps
    at capture and ``ros2 bag record`` receives it at once.
    """
    path = Path(path)
    msgtype = COMPRESSED_IMAGE_TYPE if compressed else IMAGE_TYPE
    store = typestore()
    writer = open_writer(path, storage)
    try:
        connection = writer.add_connection(topic, msgtype, typestore=store)
        for image, stamp_ns in frames:
            message = image_message(image, stamp_ns, frame_id, compressed)
            writer.write(connection, int(stamp_ns), store.serialize_cdr(message, msgtype))
    finally:
        writer.close()
    return path


@contextlib.contextmanager
def output_errors(output: Path | str) -> Iterator[None]:
    """Turn the errors of writing an output (an unwritable folder, a read-only file system, a full
    disk: ``OSError``, sqlite's and rosbags' writer errors) into :class:`OutputError` naming ``output``."""
    from rosbags.rosbag2 import WriterError

    try:
        yield
    except (WriterError, OSError, sqlite3.Error) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise OutputError(f"cannot write the output {output}: {message}") from None


def _check_replaceable(final: Path, overwrite: bool, only_outputs: bool) -> None:
    """An existing ``final`` may only be replaced with ``overwrite``, never when it is a file, and with
    ``only_outputs`` only when it is an empty folder or an earlier output (holds :data:`OUTPUT_MARKER`)."""
    if not (final.exists() or final.is_symlink()):
        return
    if not overwrite:
        raise FileExistsError(f"output folder already exists: {final} (use --overwrite to replace it)")
    if final.is_symlink() or not final.is_dir():
        raise OutputError(f"output {final} exists and is not a folder; it is not replaced")
    if only_outputs and any(final.iterdir()) and not (final / OUTPUT_MARKER).is_file():
        raise OutputError(
            f"output folder {final} is not empty and is not an earlier output (no {OUTPUT_MARKER}); "
            "it is not replaced"
        )


@contextlib.contextmanager
def staged_output_dir(
    final: Path | str,
    overwrite: bool = False,
    protected: Iterable[Path | str] = (),
    only_outputs: bool = False,
) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``final`` and rename it to ``final`` when the block ends
    without an exception; on an exception it is deleted, so a half-written output never appears under
    the final name.

    Raises:
        OutputError: ``final`` is, lies inside or contains a ``protected`` path (:func:`refuse_overlap`);
            it exists and is a file (or, with ``only_outputs``, a folder that is neither empty nor an
            earlier output, one holding :data:`OUTPUT_MARKER`); or it cannot be created.
        FileExistsError: ``final`` exists and ``overwrite`` is false (checked before and after the block).
    """
    refuse_overlap(final, protected)
    final = Path(final).resolve()
    _check_replaceable(final, overwrite, only_outputs)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    except OSError as exc:
        raise OutputError(f"cannot create the output folder next to {final}: {exc}") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would make the final folder private
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if final.exists():
        try:
            _check_replaceable(final, overwrite, only_outputs)
        except (FileExistsError, OutputError):
            shutil.rmtree(staging, ignore_errors=True)
            raise
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)
