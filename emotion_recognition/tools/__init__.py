"""Command-line tools around the node: offline rosbag processing, bag replay over DDS, the built-in
sample sequence and the demo.

``sample`` and ``bagio`` import no rclpy; ``bag_process``, ``bag_replay`` and ``demo`` do.
"""
