"""Facial emotion recognition for ROS 2.

The package is split in two layers:

* ``emotion_recognition.spec`` and ``emotion_recognition.core``: ROS-free perception (face detection,
  preprocessing, classification, tracking, drawing). Importing them never imports rclpy.
* ``emotion_recognition.ros``: the node and message conversions, the only code that talks to ROS.
"""
