"""ROS-free perception core: detection, preprocessing, classification, tracking and drawing.

Nothing in this package imports rclpy; the node, the bag tools, the benchmarks and the tests share it.
"""
