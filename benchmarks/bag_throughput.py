"""Offline throughput of ``emotion_bag_process`` on a 640x480 bag with one real face (not a test).

Writes a bag of :func:`emotion_recognition.tools.sample.one_face_frames` (the astronaut walking across
the view and back) in the chosen storage, raw or JPEG, into a temporary folder, processes it with the
node's default settings and prints the processor's own summary (frames per second end to end,
milliseconds per frame, per stage). The issue's target: at least 60 frames per second on the 2-core
development machine.

    scripts/dev-env python benchmarks/bag_throughput.py [--frames 300] [--storage mcap] [--compressed]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    parser.add_argument("--compressed", action="store_true", help="JPEG (CompressedImage) instead of bgr8")
    parser.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    args = parser.parse_args()

    from emotion_recognition.tools import bag_process, bagio
    from emotion_recognition.tools.sample import SAMPLE_FRAME_ID, one_face_frames

    with tempfile.TemporaryDirectory(prefix="bag_throughput-") as folder:
        bag = Path(folder) / "one_face_640x480"
        bagio.write_image_bag(
            bag,
            ((f.image, f.stamp_ns) for f in one_face_frames(args.frames)),
            storage=args.storage,
            compressed=args.compressed,
            frame_id=SAMPLE_FRAME_ID,
        )
        print(
            f"bag: {args.frames} frames 640x480 with one face, {args.storage}, "
            f"{'JPEG' if args.compressed else 'bgr8'}; cpus: {os.cpu_count()}, "
            f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        summary = bag_process.process_bag(bag, Path(folder) / "out", model=args.model, progress=False)
        print(summary.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
