"""Offline training, evaluation and export of the emotion CNN (run as ``python -m training``).

This package needs TensorFlow/Keras; the node never imports it.
"""
