"""The Haar cascade is found with every OpenCV: the PyPI wheels' ``cv2.data``, the distribution's
``opencv-data`` (python3-opencv has no ``cv2.data``), or an explicit path; without any, the error
names the install command that fits this OpenCV.

The suite runs both in the development venv (PyPI OpenCV) and in the distribution-like environment
(scripts/distro-env: Debian's python3-opencv 4.6 + opencv-data), so each branch is exercised for real.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import pytest

from emotion_recognition.core.cascade import (
    CASCADE_FILE,
    SYSTEM_CASCADE_DIRS,
    CascadeNotFoundError,
    cascade_dirs,
    find_cascade,
    install_hint,
    is_distribution_opencv,
)
from emotion_recognition.core.detection import DetectorSettings, FaceDetector
from emotion_recognition.core.image import to_gray
from test.support.images import ASTRONAUT, FACE_MATCH_IOU, best_iou, face_box, photo_bgr

DEBIAN = {"ID": "debian"}
UBUNTU = {"ID": "ubuntu", "ID_LIKE": "debian"}


def _finds_the_astronaut(detector: FaceDetector) -> bool:
    faces = detector.detect(to_gray(photo_bgr(ASTRONAUT)))
    return best_iou(face_box(ASTRONAUT), faces) >= FACE_MATCH_IOU


def test_the_cascade_of_this_opencv_is_found_and_finds_a_face() -> None:
    path = find_cascade()
    if hasattr(cv2, "data"):  # a PyPI wheel: the cascades are inside the package
        assert path == str(Path(cv2.data.haarcascades) / CASCADE_FILE)
    else:  # the distribution's python3-opencv: opencv-data's copy
        assert is_distribution_opencv(cv2.__file__), cv2.__file__
        assert path == f"{SYSTEM_CASCADE_DIRS[0]}/{CASCADE_FILE}"
    detector = FaceDetector()
    assert detector.cascade_path == path
    assert _finds_the_astronaut(detector)


def test_search_order_is_cv2_data_then_the_distribution_folders() -> None:
    wheel = SimpleNamespace(data=SimpleNamespace(haarcascades="/wheel/cv2/data/"))
    assert cascade_dirs(wheel) == [Path("/wheel/cv2/data"), *map(Path, SYSTEM_CASCADE_DIRS)]
    assert cascade_dirs(SimpleNamespace()) == [
        Path("/usr/share/opencv4/haarcascades"),
        Path("/usr/share/opencv/haarcascades"),
    ]


def test_the_first_folder_that_holds_the_cascade_wins(tmp_path: Path) -> None:
    empty, second, third = tmp_path / "empty", tmp_path / "second", tmp_path / "third"
    for folder in (empty, second, third):
        folder.mkdir()
    for folder in (second, third):
        shutil.copy(find_cascade(), folder / CASCADE_FILE)
    assert find_cascade(directories=[empty, second, third]) == str(second / CASCADE_FILE)


def test_without_any_cascade_the_error_names_the_install_command_for_this_opencv(tmp_path: Path) -> None:
    with pytest.raises(CascadeNotFoundError) as caught:
        find_cascade(directories=[tmp_path])
    message = str(caught.value)
    assert CASCADE_FILE in message and str(tmp_path) in message and "detector.cascade_path" in message
    if is_distribution_opencv(cv2.__file__) and Path("/etc/debian_version").exists():
        assert "Install it: sudo apt install opencv-data" in message  # not a pip OpenCV over apt's numpy
        assert "pip" not in message
    else:
        assert "Install it: pip install 'opencv-python-headless>=4,<5'" in message


def test_install_hint_follows_where_opencv_comes_from() -> None:
    distro_cv2 = "/usr/lib/python3/dist-packages/cv2.cpython-311-x86_64-linux-gnu.so"
    wheel_cv2 = "/home/me/.venv/lib/python3.11/site-packages/cv2/__init__.py"
    assert install_hint(distro_cv2, DEBIAN) == "sudo apt install opencv-data"
    assert install_hint(distro_cv2, UBUNTU) == "sudo apt install opencv-data"
    fedora_cv2 = "/usr/lib64/python3.12/site-packages/cv2/__init__.py"
    assert "opencv-data" in install_hint(fedora_cv2, {"ID": "fedora"})
    assert install_hint(wheel_cv2, DEBIAN) == "pip install 'opencv-python-headless>=4,<5'"


def test_an_explicit_cascade_path_is_used(tmp_path: Path) -> None:
    copy = tmp_path / "my_cascade.xml"
    shutil.copy(find_cascade(), copy)
    detector = FaceDetector(DetectorSettings(cascade_path=str(copy)))
    assert detector.cascade_path == str(copy)
    assert _finds_the_astronaut(detector)


def test_a_missing_explicit_cascade_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.xml"
    with pytest.raises(CascadeNotFoundError, match=r"nowhere\.xml' \(detector\.cascade_path\) does not"):
        FaceDetector(DetectorSettings(cascade_path=str(missing)))


def test_update_loads_a_new_cascade_path_and_keeps_the_old_on_error(tmp_path: Path) -> None:
    detector = FaceDetector()
    copy = tmp_path / "copy.xml"
    shutil.copy(detector.cascade_path, copy)
    detector.update(DetectorSettings(cascade_path=str(copy)))
    assert detector.cascade_path == str(copy) and _finds_the_astronaut(detector)
    with pytest.raises(CascadeNotFoundError):
        detector.update(DetectorSettings(cascade_path=str(tmp_path / "missing.xml")))
    assert detector.cascade_path == str(copy) and detector.settings.cascade_path == str(copy)
