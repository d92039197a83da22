"""Tests of the ROS-free perception core (emotion_recognition.core)."""
