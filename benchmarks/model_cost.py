"""The classify cost of emotion models: one batched LiteRT call for 1 and for 4 faces, as the node makes
it, for every model named, in one run (so the shipped default is the baseline on the same load).

    scripts/dev-env python benchmarks/model_cost.py                       # the shipped models
    scripts/dev-env python benchmarks/model_cost.py --models models/emotion_model_int8.tflite other.tflite

The faces are real: the astronaut's and Grace Hopper's faces (``emotion_recognition/tools/photos.py``),
cropped as the pipeline crops them, alternating, with a mirror image for the third and fourth. For each
model and batch size it times ``--calls`` calls after ``--warmup`` unmeasured ones, repeats that
``--runs`` times with the models interleaved, and prints the median ms per call and per face over all
calls, plus the spread of the per-run medians. This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from emotion_recognition.core.classifier import EmotionClassifier  # noqa: E402
from emotion_recognition.core.preprocessing import crop_faces  # noqa: E402
from emotion_recognition.tools.photos import FACE_BOXES, photo_bgr  # noqa: E402

SHIPPED = ("models/emotion_model_int8.tflite", "models/emotion_model_ferplus_int8.tflite")
BATCHES = (1, 4)


def real_faces(count: int) -> np.ndarray:
    """``count`` real face crops, (N, 48, 48, 1) raw 0-255 float32, as the pipeline feeds the model."""
    crops = []
    for name, box in FACE_BOXES.items():
        gray = cv2.cvtColor(photo_bgr(name), cv2.COLOR_BGR2GRAY)
        crops.append(crop_faces(gray, [box])[0])
    crops += [crop[:, ::-1] for crop in crops]  # the same faces mirrored
    faces = [crops[i % len(crops)] for i in range(count)]
    return np.stack(faces).astype(np.float32)


def time_calls(classifier: EmotionClassifier, faces: np.ndarray, calls: int, warmup: int) -> list[float]:
    """Milliseconds of each of ``calls`` calls of ``classifier.predict(faces)``."""
    for _ in range(warmup):
        classifier.predict(faces)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        classifier.predict(faces)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def measure(models: list[str], threads: int, calls: int, warmup: int, runs: int) -> dict:
    """{(model, batch): (all call times, per-run medians)}, runs interleaved across the models."""
    classifiers = {model: EmotionClassifier.load(model, num_threads=threads) for model in models}
    faces = {batch: real_faces(batch) for batch in BATCHES}
    results: dict = {(m, b): ([], []) for m in models for b in BATCHES}
    for _ in range(runs):
        for model, classifier in classifiers.items():
            for batch in BATCHES:
                times = time_calls(classifier, faces[batch], calls, warmup)
                results[model, batch][0].extend(times)
                results[model, batch][1].append(float(np.median(times)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", nargs="+", default=list(SHIPPED), help="the .tflite models; the first is the baseline"
    )
    parser.add_argument("--threads", type=int, default=2, help="LiteRT threads (default 2, as the node)")
    parser.add_argument("--calls", type=int, default=200, help="measured calls per run, model and batch size")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured calls first")
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs")
    args = parser.parse_args()
    missing = [m for m in args.models if not Path(m).is_file()]
    if missing:
        parser.exit(2, f"model_cost: error: no such model: {', '.join(missing)}\n")

    results = measure(args.models, args.threads, args.calls, args.warmup, args.runs)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load}; "
        f"{args.threads} LiteRT threads, {args.runs} runs x {args.calls} calls"
    )
    print("| model | faces | median ms per call | ms per face | per-run medians (min-max) | vs baseline |")
    print("| --- | --- | --- | --- | --- | --- |")
    for batch in BATCHES:
        baseline = float(np.median(results[args.models[0], batch][0]))
        for model in args.models:
            times, medians = results[model, batch]
            median = float(np.median(times))
            print(
                f"| {Path(model).name} | {batch} | {median:.2f} | {median / batch:.2f} | "
                f"{min(medians):.2f}-{max(medians):.2f} | {median / baseline:.2f}x |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
