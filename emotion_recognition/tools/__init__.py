"""Command-line tools around the node and what they share: offline rosbag processing (``bag_process``),
bag replay over DDS (``bag_replay``), the demo (``demo``), image sources (``sources``), a client of a
running node (``node_client``), CSV and summary reporting (``reporting``), child processes
(``process``), the face photos (``photos``) and the built-in sample sequence (``sample``).

``sample``, ``photos``, ``process``, ``reporting`` and ``bagio`` import no rclpy; ``bag_process``,
``bag_replay``, ``demo``, ``sources`` and ``node_client`` do (``sources`` and ``node_client`` when used).
"""
