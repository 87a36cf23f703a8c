"""The ``fdm_monitor`` node's parameters, each defined once (default, range, description); the node
declares them (:func:`morobot.params.specs`) and ``config/*.yaml`` only overrides."""

from __future__ import annotations

from dataclasses import dataclass

from morobot.params import param


@dataclass(frozen=True)
class MonitorParams:
    """``fdm_monitor``: what the FDM predicts for the command being executed."""

    fdm_checkpoint: str = param("", "FDM checkpoint with the base history (empty = the shipped "
                                "rigid-body robot's, models/fdm/fdm_default.pt)", read_only=True)
    rate: float = param(5.0, "prediction rate (Hz, node clock)", 0.5, 50.0)
    max_odom_age: float = param(0.5, "odometry older than this (s) counts as missing", 0.05, 10.0)
    max_map_age: float = param(2.0, "a map older than this (s) is not used", 0.1, 60.0)
    max_cmd_age: float = param(0.5, "a command older than this (s) counts as zero", 0.05, 10.0)
    cmd_vel_stamped: bool = param(True, "cmd_vel is geometry_msgs/TwistStamped (Nav2's default on Kilted); false: "
                                  "Twist", read_only=True)
    odom_frame: str = param("odom", "frame of odometry, map and the predicted path")
