"""The ROS 2 side of the package: the node, and conversions between messages and the core's types.

The only part of ``emotion_recognition`` (besides the tools) that imports rclpy.
"""
