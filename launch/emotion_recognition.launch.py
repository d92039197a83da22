"""Launch the emotion_recognition node, optionally with a v4l2 camera and RViz.

    ros2 launch emotion_recognition emotion_recognition.launch.py
    ros2 launch emotion_recognition emotion_recognition.launch.py start_camera:=true start_rviz:=true
    ros2 launch emotion_recognition emotion_recognition.launch.py \\
        namespace:=front image_topic:=/front/color/image_raw

Several cameras: include this file once per camera, each with its own ``namespace`` (and
``image_topic``); every instance then publishes ``<namespace>/emotions``, ``<namespace>/detections``
and ``<namespace>/image_annotated`` (see the README's "Node" section).

The node is a lifecycle node; its ``autostart`` parameter (true in the shipped parameter file)
configures and activates it on start. Set ``autostart:=false`` to leave that to a lifecycle manager.
"""

from __future__ import annotations

import os
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

PACKAGE = "emotion_recognition"
EXECUTABLE = "emotion_recognition_node"
NODE_NAME = "emotion_recognition"
# The topic the shipped RViz configuration displays (rewritten for a namespaced instance).
RVIZ_IMAGE_TOPIC = "/image_annotated"


def _is_true(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "on")


def _resolve(topic: str, namespace: str) -> str:
    """Absolute name of ``topic`` as seen from ``namespace`` (what a relative remap target becomes)."""
    if topic.startswith("/"):
        return topic
    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{prefix}/{topic}"


def _rviz_config_for(namespace: str, template_path: str) -> str:
    """The shipped RViz configuration, pointed at this instance's ``image_annotated`` topic."""
    if not namespace.strip("/"):
        return template_path
    with open(template_path, encoding="utf-8") as template:
        text = template.read()
    text = text.replace(f"Value: {RVIZ_IMAGE_TOPIC}", f"Value: {_resolve('image_annotated', namespace)}")
    handle, path = tempfile.mkstemp(prefix=f"emotion_recognition_{namespace.strip('/')}_", suffix=".rviz")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def _launch_setup(context: LaunchContext) -> list:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    namespace = arg("namespace").strip("/")
    image_topic = arg("image_topic")
    parameters: list = [arg("params_file")]
    overrides = {}
    if arg("model_path"):
        overrides["model_path"] = arg("model_path")
    if arg("use_compressed"):
        overrides["use_compressed"] = _is_true(arg("use_compressed"))
    if arg("autostart"):
        overrides["autostart"] = _is_true(arg("autostart"))
    if overrides:
        parameters.append(overrides)

    actions = [
        LifecycleNode(
            package=PACKAGE,
            executable=EXECUTABLE,
            name=NODE_NAME,
            namespace=namespace,
            parameters=parameters,
            # Remap both the raw and the compressed input, following image_transport's naming.
            remappings=[("image", image_topic), ("image/compressed", f"{image_topic}/compressed")],
            arguments=["--ros-args", "--log-level", arg("log_level")],
            output="screen",
            emulate_tty=True,
        )
    ]
    if _is_true(arg("start_camera")):
        actions.append(
            Node(
                package="v4l2_camera",
                executable="v4l2_camera_node",
                name="camera",
                namespace=namespace,
                parameters=[{"video_device": arg("video_device"), "image_size": [640, 480]}],
                remappings=[("image_raw", image_topic)],
                output="screen",
            )
        )
    if _is_true(arg("start_rviz")):
        actions.append(
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz",
                namespace=namespace,
                arguments=["-d", _rviz_config_for(namespace, arg("rviz_config"))],
                output="screen",
            )
        )
    return actions


def generate_launch_description() -> LaunchDescription:
    """Arguments: namespace, image_topic, params_file, model_path, use_compressed, autostart,
    start_camera, video_device, start_rviz, rviz_config, log_level."""
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription(
        [
            DeclareLaunchArgument("namespace", default_value="", description="Namespace of this instance (one per camera)."),
            DeclareLaunchArgument(
                "image_topic",
                default_value="image_raw",
                description="Camera image topic (relative names resolve in the namespace); with "
                "use_compressed the node reads <image_topic>/compressed.",
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(share, "config", "emotion_recognition.yaml"),
                description="Node parameter file.",
            ),
            DeclareLaunchArgument(
                "model_path", default_value="", description="Emotion model file; empty: the params file's (shipped model)."
            ),
            DeclareLaunchArgument(
                "use_compressed", default_value="", description="true/false overrides the params file; empty keeps it."
            ),
            DeclareLaunchArgument(
                "autostart", default_value="", description="true/false overrides the params file; empty keeps it."
            ),
            DeclareLaunchArgument("start_camera", default_value="false", description="Also start v4l2_camera."),
            DeclareLaunchArgument("video_device", default_value="/dev/video0", description="v4l2 device of the camera."),
            DeclareLaunchArgument("start_rviz", default_value="false", description="Also start RViz showing image_annotated."),
            DeclareLaunchArgument(
                "rviz_config",
                default_value=os.path.join(share, "config", "emotion_recognition.rviz"),
                description="RViz configuration (its image topic is pointed at this instance).",
            ),
            DeclareLaunchArgument("log_level", default_value="info", description="Node log level."),
            OpaqueFunction(function=_launch_setup),
        ]
    )
