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
``use_sim_time:=true`` for replaying a bag (``ros2 bag play --clock``).

The camera driver started with ``start_camera:=true`` gets the shipped large-image Fast DDS profile
(``camera_dds_profile``): without it, most 640x480 frames never reach the node (README "Large images
over Fast DDS"). ``start_camera`` / ``start_rviz`` need the v4l2_camera / rviz2 package; when it is
missing, the launch fails before anything is started.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

from ament_index_python.packages import PackageNotFoundError, get_package_prefix, get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnShutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from launch import LaunchContext, LaunchDescription

PACKAGE = "emotion_recognition"
EXECUTABLE = "emotion_recognition_node"
NODE_NAME = "emotion_recognition"
# The topic the shipped RViz configuration displays (rewritten for a namespaced instance).
RVIZ_IMAGE_TOPIC = "/image_annotated"
# Optional packages: (launch argument, package, executable).
CAMERA = ("start_camera", "v4l2_camera", "v4l2_camera_node")
RVIZ = ("start_rviz", "rviz2", "rviz2")


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


def _check_optional_packages(wanted: list[tuple[str, str, str]]) -> None:
    """Fail the launch, before anything starts, when an optional package asked for is not installed."""
    missing = []
    for argument, package, _ in wanted:
        try:
            get_package_prefix(package)
        except PackageNotFoundError:
            distro = os.environ.get("ROS_DISTRO", "<distro>")
            missing.append(
                f"{argument}:=true needs the package {package}, which is not installed "
                f"(sudo apt install ros-{distro}-{package.replace('_', '-')})"
            )
    if missing:
        raise RuntimeError("; ".join(missing) + ". Nothing was started.")


def _remove_on_shutdown(path: str) -> RegisterEventHandler:
    """Delete the temporary file ``path`` when the launch ends."""

    def remove(*_: object) -> None:
        if os.path.exists(path):
            os.unlink(path)

    return RegisterEventHandler(OnShutdown(on_shutdown=remove))


def _node(arg: Callable[[str], str], namespace: str, image_topic: str, use_sim_time: bool) -> LifecycleNode:
    """The emotion_recognition node: the parameter file, then the overrides given as arguments."""
    overrides: dict = {"use_sim_time": use_sim_time}
    if arg("model_path"):
        overrides["model_path"] = arg("model_path")
    if arg("use_compressed"):
        overrides["use_compressed"] = _is_true(arg("use_compressed"))
    if arg("autostart"):
        overrides["autostart"] = _is_true(arg("autostart"))
    return LifecycleNode(
        package=PACKAGE,
        executable=EXECUTABLE,
        name=NODE_NAME,
        namespace=namespace,
        parameters=[arg("params_file"), overrides],
        # Remap both the raw and the compressed input, following image_transport's naming.
        remappings=[("image", image_topic), ("image/compressed", f"{image_topic}/compressed")],
        arguments=["--ros-args", "--log-level", arg("log_level")],
        output="screen",
        emulate_tty=True,
    )


def _camera(arg: Callable[[str], str], namespace: str, image_topic: str) -> Node:
    """v4l2_camera publishing on ``image_topic``, with the large-image Fast DDS profile."""
    profile = arg("camera_dds_profile")
    dds_env = None if profile.lower() in ("", "none") else {"FASTDDS_DEFAULT_PROFILES_FILE": profile}
    return Node(
        package=CAMERA[1],
        executable=CAMERA[2],
        name="camera",
        namespace=namespace,
        parameters=[{"video_device": arg("video_device"), "image_size": [640, 480]}],
        remappings=[("image_raw", image_topic)],
        # The publisher's Fast DDS segment and buffers decide whether large frames arrive.
        additional_env=dds_env,
        output="screen",
    )


def _rviz(arg: Callable[[str], str], namespace: str, use_sim_time: bool) -> list:
    """RViz on this instance's ``image_annotated`` (a temporary configuration is removed at the end)."""
    actions: list = []
    rviz_config = _rviz_config_for(namespace, arg("rviz_config"))
    if rviz_config != arg("rviz_config"):
        actions.append(_remove_on_shutdown(rviz_config))
    actions.append(
        Node(
            package=RVIZ[1],
            executable=RVIZ[2],
            name="rviz",
            namespace=namespace,
            arguments=["-d", rviz_config],
            parameters=[{"use_sim_time": use_sim_time}],
            output="screen",
        )
    )
    return actions


def _launch_setup(context: LaunchContext) -> list:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    optional = [option for option in (CAMERA, RVIZ) if _is_true(arg(option[0]))]
    _check_optional_packages(optional)  # before anything is started or written
    namespace = arg("namespace").strip("/")
    image_topic = arg("image_topic")
    use_sim_time = _is_true(arg("use_sim_time"))
    actions: list = [_node(arg, namespace, image_topic, use_sim_time)]
    if CAMERA in optional:
        actions.append(_camera(arg, namespace, image_topic))
    if RVIZ in optional:
        actions.extend(_rviz(arg, namespace, use_sim_time))
    return actions


def generate_launch_description() -> LaunchDescription:
    """Arguments: namespace, image_topic, params_file, model_path, use_compressed, autostart,
    use_sim_time, start_camera, video_device, camera_dds_profile, start_rviz, rviz_config, log_level."""
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "namespace", default_value="", description="Namespace of this instance (one per camera)."
            ),
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
                "model_path",
                default_value="",
                description="Emotion model file; empty: the params file's (shipped model).",
            ),
            DeclareLaunchArgument(
                "use_compressed",
                default_value="",
                description="true/false overrides the params file; empty keeps it.",
            ),
            DeclareLaunchArgument(
                "autostart",
                default_value="",
                description="true/false overrides the params file; empty keeps it.",
            ),
            DeclareLaunchArgument(
                "use_sim_time", default_value="false", description="Use /clock (bag replay with --clock)."
            ),
            DeclareLaunchArgument(
                "start_camera", default_value="false", description="Also start v4l2_camera."
            ),
            DeclareLaunchArgument(
                "video_device", default_value="/dev/video0", description="v4l2 device of the camera."
            ),
            DeclareLaunchArgument(
                "camera_dds_profile",
                default_value=os.path.join(share, "config", "fastdds_large_images.xml"),
                description="Fast DDS profile (FASTDDS_DEFAULT_PROFILES_FILE) of the camera started here; "
                "none: the environment's.",
            ),
            DeclareLaunchArgument(
                "start_rviz", default_value="false", description="Also start RViz showing image_annotated."
            ),
            DeclareLaunchArgument(
                "rviz_config",
                default_value=os.path.join(share, "config", "emotion_recognition.rviz"),
                description="RViz configuration (its image topic is pointed at this instance).",
            ),
            DeclareLaunchArgument("log_level", default_value="info", description="Node log level."),
            OpaqueFunction(function=_launch_setup),
        ]
    )
