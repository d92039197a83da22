"""Requests per second and latency of ``POST /api/v1/emotions`` with concurrent clients.

    scripts/dev-env python benchmarks/web_api.py                       # 1, 2 and 4 clients, 3 runs each
    scripts/dev-env python benchmarks/web_api.py --clients 1 8 --seconds 10 --runs 5

Starts the real server (``emotion_web``, waitress) in its own process on a free port of 127.0.0.1,
with ``--api-threads`` model instances, and sends one 640x480 JPEG with one real face (the astronaut
photo on the coffee background, from the built-in sample's one-face sequence) from N client threads,
each on its own keep-alive connection, for ``--seconds`` per run. For each N it prints requests per
second and the median and p95 latency of each run and the median over the runs. Baseline in the same
run: the same image through the same code in this process without HTTP (decode + whole-frame
perception, one call at a time), which is the floor a request cannot beat. Every answer is checked
to hold exactly one face. This is a benchmark, not a test: the numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import cv2  # noqa: E402

from emotion_recognition.tools.process import LoggedProcess  # noqa: E402
from emotion_recognition.web.analyzer import ImageAnalyzer  # noqa: E402
from emotion_recognition.web.server import build_pipeline, load_values  # noqa: E402

SERVING = re.compile(r"serving on http://([\d.]+):(\d+)/")
JPEG_QUALITY = 90
START_TIMEOUT_S = 90.0


def one_face_jpeg() -> bytes:
    """A 640x480 JPEG with one real face (the sample's one-face sequence, first frame)."""
    from emotion_recognition.tools.sample import one_face_frames

    frame = next(one_face_frames(1)).image
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the frame")
    return data.tobytes()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def baseline(data: bytes, count: int, model: str | None) -> list[float]:
    """Milliseconds per call of the API's own analysis in this process (no HTTP)."""
    analyzer = ImageAnalyzer([build_pipeline(model, load_values(None))])
    for _ in range(5):
        analyzer.analyze(data)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        answer = analyzer.analyze(data)
        times.append((time.perf_counter() - start) * 1e3)
        assert len(answer["faces"]) == 1, answer
    return times


def start_server(api_threads: int, model: str | None) -> tuple[LoggedProcess, int]:
    """``emotion_web --source sample`` on a free port of 127.0.0.1: (the process, its port)."""
    command = [
        sys.executable,
        "-m",
        "emotion_recognition.web.server",
        "--port",
        "0",
        "--source",
        "sample",
        "--api-threads",
        str(api_threads),
    ] + (["--model", model] if model else [])
    process = LoggedProcess(
        command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT, stop_timeout_s=20.0
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.alive:
        match = SERVING.search(process.log())
        if match:
            return process, int(match.group(2))
        time.sleep(0.1)
    tail = process.log_tail()
    process.close()
    raise RuntimeError(f"the server did not start (exit status {process.returncode}):\n{tail}")


def client_loop(port: int, data: bytes, until: float, latencies: list[float], errors: list[str]) -> None:
    """Send the image again and again on one keep-alive connection until ``until``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "image/jpeg"}
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            connection.request("POST", "/api/v1/emotions", body=data, headers=headers)
            response = connection.getresponse()
            body = response.read()
            latencies.append((time.perf_counter() - start) * 1e3)
            if response.status != 200 or body.count(b'"label"') != 1:
                errors.append(f"{response.status}: {body[:200]!r}")
    finally:
        connection.close()


def run_once(port: int, data: bytes, clients: int, seconds: float) -> tuple[float, list[float], list[str]]:
    """One run: (requests per second, latencies in ms, errors)."""
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    until = start + seconds
    threads = [
        threading.Thread(target=client_loop, args=(port, data, until, latencies, errors))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.perf_counter() - start), latencies, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--api-threads", type=int, default=2, help="the server's --api-threads")
    parser.add_argument("--model", help="model file (default: the shipped one)")
    args = parser.parse_args()

    data = one_face_jpeg()
    print(
        f"image: 640x480 JPEG, one face, {len(data)} bytes; server --api-threads {args.api_threads}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    base = baseline(data, 60, args.model)
    print(
        f"baseline (in process, no HTTP, one at a time): median {statistics.median(base):.1f} ms, "
        f"p95 {percentile(base, 0.95):.1f} ms, {1000 / statistics.median(base):.1f} images/s"
    )
    process, port = start_server(args.api_threads, args.model)
    try:
        run_once(port, data, 1, 1.0)  # warm-up
        print(
            f"{'clients':>7} | {'requests/s':>10} | {'median ms':>9} | {'p95 ms':>7} | "
            "runs (req/s, median, p95)"
        )
        for clients in args.clients:
            runs = [run_once(port, data, clients, args.seconds) for _ in range(args.runs)]
            errors = [e for _, _, errs in runs for e in errs]
            rates = [rate for rate, _, _ in runs]
            medians = [statistics.median(lat) for _, lat, _ in runs]
            p95s = [percentile(lat, 0.95) for _, lat, _ in runs]
            detail = "; ".join(
                f"{r:.1f}, {m:.1f}, {p:.1f}" for r, m, p in zip(rates, medians, p95s, strict=True)
            )
            print(
                f"{clients:>7} | {statistics.median(rates):>10.1f} | {statistics.median(medians):>9.1f} | "
                f"{statistics.median(p95s):>7.1f} | {detail}"
                + (f" | {len(errors)} ERRORS: {errors[0]}" if errors else "")
            )
    finally:
        process.close()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
