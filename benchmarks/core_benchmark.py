"""Per-stage timings of the perception core against the seed's naive pipeline, measured in one run.

    scripts/dev-env python benchmarks/core_benchmark.py            # shipped model, or untrained stand-in
    scripts/dev-env python benchmarks/core_benchmark.py --frames 60 --naive-frames 20

Frames are composed from real public-domain photographs (test/support/images.py): the astronaut and
Grace Hopper pasted on the coffee photo, 640x480 and 1280x720, with 1 and 4 faces, shifted by a few
pixels from frame to frame. For each case it prints median and p95 milliseconds per stage (detect,
preprocess, classify, track, draw) and per frame for

* core: ``EmotionPipeline.process(..., annotate=True)`` with the default settings and the .tflite
  model through LiteRT (whole-frame scan every ``full_scan_interval``-th frame, in between only
  around the known faces),
* core-full: the same with ``full_scan_interval=1`` (the whole frame scanned every frame), and
* naive: the seed's pipeline: full-resolution Haar (scaleFactor 1.1, minNeighbors 5, minSize 30x30),
  then for each face a 48x48 crop and one ``model.predict()`` call on the Keras model, then drawing,

plus the faces each found, whether they are the same faces, and the speed-up of the median frame.
This is a benchmark, not a test: it asserts nothing and its numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from emotion_recognition.core.cascade import find_cascade  # noqa: E402
from emotion_recognition.core.classifier import EmotionClassifier  # noqa: E402
from emotion_recognition.core.detection import DetectorSettings  # noqa: E402
from emotion_recognition.core.pipeline import EmotionPipeline  # noqa: E402
from emotion_recognition.core.types import Box  # noqa: E402
from emotion_recognition.spec import EMOTION_LABELS, INPUT_HEIGHT, INPUT_WIDTH  # noqa: E402
from test.support.images import FacePlacement, compose_frame, grid_placements, match_faces  # noqa: E402

STAGES = ("detect", "preprocess", "classify", "track", "draw")
CASES = ((640, 480, 1), (640, 480, 4), (1280, 720, 1), (1280, 720, 4))
# Frame-to-frame shift of every face (pixels), cycling, so consecutive frames are not identical.
JITTER = ((0, 0), (4, 2), (8, 4), (4, 6), (0, 2))


@dataclass
class Run:
    """Timings (ms) of one pipeline on one case, and the boxes it found in the first frame."""

    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    frame: list[float] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    face_counts: list[int] = field(default_factory=list)


def case_frames(width: int, height: int, n_faces: int) -> list[tuple[np.ndarray, list[Box]]]:
    """The benchmark frames of one case: the grid layout, shifted by :data:`JITTER`."""
    base = grid_placements(width, height, n_faces)
    frames = []
    for dx, dy in JITTER:
        placements = [FacePlacement(p.name, p.x + dx, p.y + dy, p.face_width, p.mirror) for p in base]
        frames.append(compose_frame(width, height, placements, background="coffee"))
    return frames


def run_core(pipeline: EmotionPipeline, frames: list, n_frames: int, warmup: int) -> Run:
    run = Run()
    pipeline.reset_tracking()
    for i in range(warmup + n_frames):
        frame, _ = frames[i % len(frames)]
        t0 = time.perf_counter()
        result, _ = pipeline.process(frame, i / 30.0, annotate=True)
        total = (time.perf_counter() - t0) * 1e3
        if i == warmup:
            run.boxes = [f.box for f in result.faces]
        if i >= warmup:
            t = result.timings
            for stage in STAGES:
                run.stages[stage].append(getattr(t, f"{stage}_ms"))
            run.frame.append(total)
            run.face_counts.append(len(result.faces))
    return run


class NaivePipeline:
    """The seed's pipeline, reproduced: full-resolution Haar at 1.1 / 5 neighbours, then one
    ``model.predict()`` per face on the Keras model, then drawing."""

    def __init__(self, keras_path: Path) -> None:
        import keras

        self.model = keras.saving.load_model(keras_path, compile=False)
        self.cascade = cv2.CascadeClassifier(find_cascade())

    def process(self, bgr: np.ndarray) -> tuple[dict[str, float], list[Box]]:
        times = dict.fromkeys(STAGES, 0.0)
        t0 = time.perf_counter()
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        hits = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
        boxes = [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in (hits if len(hits) else [])]
        t1 = time.perf_counter()
        times["detect"] = (t1 - t0) * 1e3
        annotated = bgr.copy()
        labels = []
        for box in boxes:
            ta = time.perf_counter()
            roi = gray[box.y : box.y + box.height, box.x : box.x + box.width]
            face = cv2.resize(roi, (INPUT_WIDTH, INPUT_HEIGHT)).astype(np.float32)[
                np.newaxis, :, :, np.newaxis
            ]
            tb = time.perf_counter()
            probabilities = self.model.predict(face, verbose=0)[0]
            tc = time.perf_counter()
            labels.append(EMOTION_LABELS[int(np.argmax(probabilities))])
            times["preprocess"] += (tb - ta) * 1e3
            times["classify"] += (tc - tb) * 1e3
        td = time.perf_counter()
        for box, label in zip(boxes, labels):
            cv2.rectangle(annotated, (box.x, box.y), (box.x + box.width, box.y + box.height), (255, 0, 0), 2)
            cv2.putText(
                annotated, label, (box.x, box.y - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (36, 255, 12), 2
            )
        times["draw"] = (time.perf_counter() - td) * 1e3
        return times, boxes


def run_naive(naive: NaivePipeline, frames: list, n_frames: int, warmup: int) -> Run:
    run = Run()
    for i in range(warmup + n_frames):
        frame, _ = frames[i % len(frames)]
        t0 = time.perf_counter()
        times, boxes = naive.process(frame)
        total = (time.perf_counter() - t0) * 1e3
        if i == warmup:
            run.boxes = boxes
        if i >= warmup:
            for stage in STAGES:
                run.stages[stage].append(times[stage])
            run.frame.append(total)
            run.face_counts.append(len(boxes))
    return run


def stat(values: list[float]) -> str:
    return f"{np.median(values):6.1f} / {np.percentile(values, 95):6.1f}"


def resolve_models(args: argparse.Namespace, workdir: Path) -> tuple[Path, Path, str]:
    """The .tflite and .keras models to measure, and a description that says whether they are trained."""
    from test.support.models import SHIPPED_INT8_TFLITE, shipped_models

    if args.model and args.keras:
        return (
            Path(args.model),
            Path(args.keras),
            f"{Path(args.model).name} / {Path(args.keras).name} (given)",
        )
    shipped = shipped_models()
    if shipped is not None:
        return shipped.tflite, shipped.keras, shipped.description
    import keras

    from test.support.models import build_standin_models, export_tflite

    standin = build_standin_models(workdir)
    model = keras.saving.load_model(standin.keras, compile=False)
    int8 = export_tflite(model, workdir / "untrained_vgg_fer_int8.tflite", int8=True)
    return (
        int8,
        standin.keras,
        f"UNTRAINED stand-in vgg_fer, int8 .tflite + .keras (random weights; {SHIPPED_INT8_TFLITE.name} "
        "is not in models/ yet): timings are representative, labels are meaningless",
    )


def run_case(
    case: tuple[int, int, int],
    pipeline: EmotionPipeline,
    pipeline_full: EmotionPipeline,
    naive: NaivePipeline,
    args: argparse.Namespace,
) -> tuple:
    """Measure one case (frame size, number of faces) with the three pipelines, print its rows and
    return its summary row: name, median ms of core / core-full / naive, faces found, same faces."""
    width, height, n_faces = case
    frames = case_frames(width, height, n_faces)
    expected = frames[0][1]
    core = run_core(pipeline, frames, args.frames, args.warmup)
    full = run_core(pipeline_full, frames, args.frames, args.warmup)
    slow = run_naive(naive, frames, args.naive_frames, args.warmup)
    name = f"{width}x{height} {n_faces}f"
    for label, run in (("core", core), ("core-full", full), ("naive", slow)):
        cells = " ".join(f"{stat(run.stages[s]):>15}" for s in STAGES)
        counts = run.face_counts
        found = f"{min(counts)}-{max(counts)}" if len(set(counts)) > 1 else f"{counts[0]}"
        print(f"{name:<16} {label:<9} {cells} {stat(run.frame):>15} {found}")

    def same(run: Run) -> bool:
        return len(run.boxes) == len(slow.boxes) and match_faces(slow.boxes, run.boxes) == len(slow.boxes)

    faces = (
        f"{len(expected)}/{match_faces(expected, core.boxes)}/{match_faces(expected, full.boxes)}/"
        f"{match_faces(expected, slow.boxes)}"
    )
    return (
        name,
        float(np.median(core.frame)),
        float(np.median(full.frame)),
        float(np.median(slow.frame)),
        faces,
        "yes" if same(core) and same(full) else "NO",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help=".tflite model for the core (default: models/, else a stand-in)")
    parser.add_argument(
        "--keras", help=".keras model for the naive pipeline (default: models/, else a stand-in)"
    )
    parser.add_argument("--frames", type=int, default=40, help="measured frames per case for the core")
    parser.add_argument(
        "--naive-frames", type=int, default=15, help="measured frames per case for the naive pipeline"
    )
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured frames first")
    parser.add_argument("--threads", type=int, default=2, help="LiteRT threads")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="core_benchmark_") as tmp:
        tflite, keras_path, description = resolve_models(args, Path(tmp))
        classifier = EmotionClassifier.load(tflite, num_threads=args.threads)
        pipeline = EmotionPipeline(classifier)
        pipeline_full = EmotionPipeline(classifier, DetectorSettings(full_scan_interval=1))
        naive = NaivePipeline(keras_path)

        import ai_edge_litert
        import keras

        load = os.getloadavg()
        print(f"model: {description}")
        print(
            f"  core: {tflite} (LiteRT {getattr(ai_edge_litert, '__version__', '?')}, {args.threads} threads)"
        )
        print(f"  naive: {keras_path} (Keras {keras.__version__}, model.predict() per face)")
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {load[0]:.2f} at start; OpenCV {cv2.__version__}"
        )
        print(f"core detector settings: {DetectorSettings()}")
        print(f"frames per case: core {args.frames}, naive {args.naive_frames} (after {args.warmup} warm-up)")
        print()
        header = (
            f"{'case':<16} {'pipeline':<9} " + " ".join(f"{s:>15}" for s in STAGES) + f" {'frame':>15} faces"
        )
        print("median / p95 ms")
        print(header)
        print("-" * len(header))
        summary = [run_case(case, pipeline, pipeline_full, naive, args) for case in CASES]
        print()
        print(
            f"{'case':<16} {'core ms':>8} {'full ms':>8} {'naive ms':>9} {'speed-up core/full':>19}  "
            "faces expected/core/full/naive  same faces"
        )
        for name, core_ms, full_ms, naive_ms, faces, same_faces in summary:
            speedups = f"{naive_ms / core_ms:.1f}x / {naive_ms / full_ms:.1f}x"
            times = f"{core_ms:8.1f} {full_ms:8.1f} {naive_ms:9.1f}"
            print(f"{name:<16} {times} {speedups:>19}  {faces:<30} {same_faces}")
        print(f"\nload average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
