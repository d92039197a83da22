"""Peak memory of the node process while it receives decompression bombs over Fast DDS (not a test).

Starts the node (``use_compressed: true``, reliable image subscription so that the 0.9 MB PNG bomb
arrives whole), warms it up with real JPEG face frames, then for each bomb: resets the node's peak
resident set (``/proc/PID/clear_refs``), reads its normal RSS, sends the bomb and then a good frame,
and prints the peak RSS (``VmHWM``) and how long the good frame took to be answered. The bombs are
made here: the astronaut photo as a ~100 KB JPEG whose SOF0 header claims 65500x16384 or
30000x30000, and a valid 30000x30000 PNG of zeros (0.9 MB).

    scripts/dev-env python benchmarks/bomb_memory.py                        # this checkout's node
    scripts/dev-env python benchmarks/bomb_memory.py --node-code /path/to/other/checkout

``--node-code`` runs the node of another checkout of this repository (e.g. an older commit, for a
before/after comparison); the test side always comes from this one. The process resets its own
peak RSS, so it needs the right to write ``/proc/PID/clear_refs`` of the node (same user).
"""

from __future__ import annotations

import argparse
import array
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sensor_msgs.msg import CompressedImage  # noqa: E402

import test.support.ros_graph as ros_graph  # noqa: E402
from test.conftest import next_ros_domain_id  # noqa: E402
from test.support.bombs import jpeg_claiming, png_bomb, process_memory  # noqa: E402
from test.support.models import shipped_models  # noqa: E402
from test.support.node_rig import FACE_FRAME, NodeRig, compressed_msg  # noqa: E402

MB = 1 << 20
NAMESPACE = "/bomb_benchmark"
TOPIC = f"{NAMESPACE}/camera/image_raw/compressed"


def bombs() -> list[tuple[str, bytes]]:
    """The bombs, named with their claimed size."""
    return [
        ("JPEG claiming 65500x16384", jpeg_claiming(65500, 16384)),
        ("JPEG claiming 30000x30000", jpeg_claiming(30000, 30000)),
        ("PNG 30000x30000", png_bomb(30000)),
    ]


def start_node(
    node_code: Path, log_path: Path
) -> tuple[ros_graph.NodeProcess, ros_graph.GraphClient, NodeRig]:
    """The node of ``node_code`` (its source first on PYTHONPATH) and the test side, connected."""
    environment = ros_graph.ros_environment

    def with_node_code(domain_id: int) -> dict[str, str]:
        env = environment(domain_id)
        env["PYTHONPATH"] = f"{node_code}:{env['PYTHONPATH']}"
        return env

    ros_graph.ros_environment = with_node_code
    domain_id = next_ros_domain_id()
    node = ros_graph.NodeProcess(
        domain_id,
        [
            "-r",
            f"__ns:={NAMESPACE}",
            "-r",
            f"image/compressed:={TOPIC}",
            "-p",
            "use_compressed:=true",
            "-p",
            "image_reliability:=reliable",
        ],
        log_path,
    )
    client = ros_graph.GraphClient(domain_id)
    node.wait_for_log("active: subscribed to")
    models = shipped_models()
    if models is None:
        raise SystemExit("the shipped model is not in models/")
    rig = NodeRig(node, client, models, NAMESPACE, TOPIC, compressed=True, subscribe_annotated=False)
    rig.wait_until_connected()
    return node, client, rig


def measure(rig: NodeRig, name: str, bomb: bytes) -> str:
    """One bomb: normal RSS, peak RSS while it is handled, time until the next good frame is answered."""
    pid = rig.node.process.pid
    for _ in range(3):
        sec = rig.stamp()
        rig.send(compressed_msg(FACE_FRAME, ".jpg", rig.header(sec)))
        rig.answer(sec)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak RSS := current RSS
    normal = process_memory(pid)["VmRSS"]
    started = time.monotonic()
    msg = CompressedImage(format="jpeg" if bomb[:2] == b"\xff\xd8" else "png")
    msg.header = rig.header(rig.stamp())
    msg.data = array.array("B", bomb)
    rig.send(msg)
    time.sleep(0.2)
    good = rig.stamp()
    rig.send(compressed_msg(FACE_FRAME, ".jpg", rig.header(good)))
    rig.emotions.wait_for(lambda m: m.header.stamp.sec == good, timeout_s=300)
    answered_s = time.monotonic() - started
    peak = process_memory(pid)["VmHWM"]
    return (
        f"{name} ({len(bomb) // 1024} KB): normal RSS {normal / MB:.0f} MB, peak {peak / MB:.0f} MB "
        f"(+{(peak - normal) / MB:.0f} MB); next good frame answered after {answered_s:.1f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--node-code", type=Path, default=REPO_ROOT, help="checkout whose node runs (default: this one)"
    )
    parser.add_argument("--log", type=Path, default=Path("/tmp/bomb_memory_node.log"), help="the node's log")
    args = parser.parse_args()
    node, client, rig = start_node(args.node_code.resolve(), args.log)
    try:
        print(f"node code: {args.node_code.resolve()} (pid {node.process.pid})")
        for name, bomb in bombs():
            print(measure(rig, name, bomb), flush=True)
    finally:
        client.close()
        node.stop()
    warnings = [
        line for line in args.log.read_text(errors="replace").splitlines() if "image_too_large" in line
    ]
    print(
        f"node warnings about the bombs: {len(warnings)}"
        + (f"; first: {warnings[0][:240]}" if warnings else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
