"""The web deployment (console script ``emotion_web``): a Flask API that answers one image with the
emotions it shows, and a live page with the annotated stream and a chart of each face's emotion.

Everything here uses the ROS-free perception core; only :mod:`emotion_recognition.web.ros_source`
imports rclpy, and only when the server runs with ``--source ros``.

* :mod:`.results`: core results and ``emotion_msgs`` messages as JSON.
* :mod:`.hub`: the latest frames and results, handed to every watching client.
* :mod:`.analyzer`: ``POST /api/v1/emotions``, one independent image at a time.
* :mod:`.sources`: the in-process sources (built-in sample, video file, camera).
* :mod:`.app`: the Flask application (routes, error handling, streams).
* :mod:`.server`: the command line and the waitress server.
"""
