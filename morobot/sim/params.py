"""The ``mujoco_sim`` node's parameters, each defined once (default, range, description); the node
declares them (:func:`morobot.params.specs`) and ``config/*.yaml`` only overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from morobot.params import param

#: ANYmal C's depth cameras by name (``depth_camera_<name>_camera_parent`` in its URDF).
CAMERA_NAMES = ("front", "rear", "left", "right")


def camera_problem(name: str, cameras) -> Optional[str]:
    """Why ``cameras`` is not a choice of ANYmal's depth cameras (distinct names of :data:`CAMERA_NAMES`), or None."""
    cams = list(cameras)
    if not cams or len(set(cams)) != len(cams) or not set(cams) <= set(CAMERA_NAMES):
        return f"{name} must be distinct names among {list(CAMERA_NAMES)}, got {cams}"
    return None


@dataclass(frozen=True)
class SimNodeParams:
    """``mujoco_sim``: which robot and world, the loop, the sensors; ANYmal and Panda settings."""

    robot: str = param("anymal", "which robot to simulate", choices=("anymal", "panda"), read_only=True)
    world: str = param("rough_obstacles", "named world (config/worlds) or YAML path", read_only=True)
    rate: float = param(1.0, "sim speed as a multiple of real time (0 = as fast as possible)", 0.0, 100.0)
    step: float = param(0.02, "sim time per loop (s): /clock and state are published every step",
                              0.002, 0.1, read_only=True)
    points_rate: float = param(10.0, "depth sensor rate in sim time (Hz, 0 = off)", 0.0, 50.0)
    cmd_timeout: float = param(0.5, "stop when no command arrives for this long (s, sim time)",
                                    0.05, 5.0, read_only=True)
    locomotion: str = param("learned", "anymal: learned (the articulated robot walking under its learned "
                                       "policy, as the real one does) or abstract (the rigid body with a "
                                       "locomotion abstraction: fast, the FDM benchmarks' robot)",
                                       choices=("learned", "abstract"), read_only=True)
    locomotion_policy: str = param("", "anymal, learned: policy file (empty = "
                                       "models/locomotion/anymal_c_policy.pt)",
                                       read_only=True)
    depth_cameras: tuple = param(CAMERA_NAMES, "anymal, learned: the depth cameras simulated, "
                                 "by name among front, rear, left and right (ANYmal C's four, each tilted 30 deg "
                                 "down)", read_only=True)
    stumble_rate: float = param(0.0, "fall hazard (1/s) per leg at twice the stumble threshold; 0 = the robot "
                                     "never stumbles (anymal, see morobot.sim.locomotion)",
                                     0.0, 100.0, read_only=True)
    stumble_speed: float = param(0.8, "reference foot speed of the stumble threshold (m/s, anymal)",
                                      0.05, 5.0, read_only=True)
    stumble_unevenness: float = param(0.05, "reference foot-patch unevenness of the stumble threshold (m, "
                                            "anymal)",
                                            0.001, 1.0, read_only=True)
    stumble_seed: int = param(0, "seed of the stumble draws (anymal)", 0, 2**31 - 1, read_only=True)
    cmd_vel_stamped: bool = param(True, "cmd_vel is geometry_msgs/TwistStamped (Nav2's default on Kilted); false: "
                                  "Twist (anymal)", read_only=True)
    odom_frame: str = param("odom", "world-fixed frame (anymal)", read_only=True)
    base_frame: str = param("base", "robot body frame (anymal)", read_only=True)
    map_frame: str = param("map", "published on /tf_static as identical to odom_frame: the simulated robot's "
                                  "localisation is perfect, so goals from RViz in map work (anymal; empty = none)",
                           read_only=True)
    arm_frame: str = param("panda_link0", "arm base frame (panda)", read_only=True)
    seed: int = param(0, "seed of perturbations and noise (panda)", 0, 2**31 - 1, read_only=True)
    state_rate: float = param(100.0, "/joint_states and /object_pose rate (Hz, panda)", 1.0, 1000.0)
    camera_rate: float = param(5.0, "/camera/image_raw rate (Hz, panda; 0 = off)", 0.0, 60.0)
    camera_width: int = param(320, "camera image width (panda)", 16, 1280, read_only=True)
    camera_height: int = param(240, "camera image height (panda)", 16, 960, read_only=True)
    command_latency: float = param(0.0, "joint command latency (s, panda)", 0.0, 1.0, read_only=True)
    joint_noise_std: float = param(0.0, "joint position noise (rad, panda)", 0.0, 0.1, read_only=True)
    push_probability: float = param(0.0, "chance per physics step of a push on the object (panda)",
                                         0.0, 0.1, read_only=True)

    @staticmethod
    def cross_check(p: dict) -> Optional[str]:
        """Checks across parameters (reason or None)."""
        return camera_problem("depth_cameras", p["depth_cameras"])
