"""fdm_monitor: what the learned FDM predicts for the command being executed.

Subscribes /odom, /elevation_map and /cmd_vel; at ``rate`` Hz it rolls the current command, held
over the model's horizon, through the FDM and publishes /fdm/predicted_path (nav_msgs/Path) and
/fdm/collision_risk (std_msgs/Float32, the peak predicted failure probability). It is independent of
the planner: a runtime safety signal for whatever drives the robot (teleop included).

Missing or stale odometry publishes risk 1.0 (unknown is treated as unsafe) and no path; a missing
or stale map makes the model see an all-unknown scan. A missing, corrupt or mismatched checkpoint
stops the node at start with one clear error.
"""

from __future__ import annotations

import numpy as np
import torch
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Float32

from morobot import paths
from morobot.planning.interface import NavState
from morobot.ros import qos
from morobot.ros.conversions import (MessageError, make_path, odometry_to_state, pointcloud2_to_heightmap,
                                     twist_to_array, cmd_vel_type)
from morobot.fdm.params import MonitorParams
from morobot.params import specs
from morobot.ros.params import declare
from morobot.ros.runner import spin_node

PARAMS = specs(MonitorParams)


class FdmMonitorNode(Node):
    def __init__(self, **kwargs):
        super().__init__("fdm_monitor", **kwargs)
        self.p = declare(self, PARAMS, on_change=self._on_change)
        from morobot.fdm.dynamics import FDMDynamics
        from morobot.fdm.history import ProprioHistory

        ckpt = self.p["fdm_checkpoint"] or str(paths.rigid_fdm_checkpoint())
        self.fdm = FDMDynamics.from_checkpoint(ckpt)
        cfg = self.fdm.config
        if cfg.history_features != "base":
            raise ValueError(f"fdm_monitor feeds the base history (odometry and commands); {ckpt} was trained on "
                             f"the {cfg.history_features!r} one: use it in the planner")
        self.history = ProprioHistory(length=cfg.history_length, dt=cfg.history_dt)
        self._odom = None
        self._hmap = None
        self._cmd = np.zeros(3)
        self._cmd_stamp = -1e18
        self._path_pub = self.create_publisher(Path, "fdm/predicted_path", qos.STATE)
        self._risk_pub = self.create_publisher(Float32, "fdm/collision_risk", qos.STATE)
        self.create_subscription(Odometry, "odom", self._on_odom, qos.STATE)
        self.create_subscription(PointCloud2, "elevation_map", self._on_map, qos.STATE)
        self.create_subscription(cmd_vel_type(self.p["cmd_vel_stamped"]), "cmd_vel", self._on_cmd, qos.STATE)
        self._timer = self.create_timer(1.0 / self.p["rate"], self._predict)
        self.get_logger().info(f"FDM monitor using {ckpt} ({cfg.horizon} steps × {cfg.dt} s)")

    def _on_change(self, values: dict) -> None:
        rate_changed = values["rate"] != self.p["rate"]
        self.p = values
        if rate_changed:
            self._timer.cancel()
            self._timer = self.create_timer(1.0 / values["rate"], self._predict)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_odom(self, msg: Odometry) -> None:
        try:
            self._odom = odometry_to_state(msg)
        except MessageError as exc:
            self._odom = None
            self.get_logger().error(f"invalid odometry: {exc}", throttle_duration_sec=2.0)
            return
        o = self._odom
        cmd = self._cmd if o.stamp - self._cmd_stamp <= self.p["max_cmd_age"] else np.zeros(3)
        self.history.push(o.stamp, cmd, [o.linear[0], o.linear[1], o.angular[2]], o.gravity_b)

    def _on_map(self, msg: PointCloud2) -> None:
        try:
            self._hmap = pointcloud2_to_heightmap(msg)
        except MessageError as exc:
            self.get_logger().error(f"ignoring malformed elevation map: {exc}", throttle_duration_sec=2.0)

    def _on_cmd(self, msg: Twist) -> None:
        try:
            self._cmd = twist_to_array(msg)
        except MessageError as exc:
            self.get_logger().error(f"ignoring invalid /cmd_vel: {exc}", throttle_duration_sec=2.0)
            return
        self._cmd_stamp = self._now()

    def _predict(self) -> None:
        now = self._now()
        odom = self._odom
        if odom is None or now - odom.stamp > self.p["max_odom_age"]:
            self.get_logger().warning("no fresh odometry: publishing risk 1.0", throttle_duration_sec=5.0)
            self._risk_pub.publish(Float32(data=1.0))
            return
        hmap = self._hmap if self._hmap is not None and now - self._hmap.stamp <= self.p["max_map_age"] else None
        cmd = self._cmd if now - self._cmd_stamp <= self.p["max_cmd_age"] else np.zeros(3)
        state = NavState(pose=np.array([odom.position[0], odom.position[1], odom.yaw]),
                         twist=np.array([odom.linear[0], odom.linear[1], odom.angular[2]]),
                         z=float(odom.position[2]), gravity_b=odom.gravity_b,
                         history=self.history.array() if self.history.ready else None, stamp=odom.stamp)
        commands = torch.as_tensor(np.tile(cmd, (1, self.fdm.config.horizon, 1)), dtype=torch.float32)
        with torch.no_grad():
            out = self.fdm.rollout(state, commands, hmap)
        poses = out.poses[0].numpy().astype(float)
        risk = float(out.risk[0].max())
        self._path_pub.publish(make_path(poses, odom.stamp, self.p["odom_frame"], z=float(odom.position[2]),
                                         dt=self.fdm.dt))
        self._risk_pub.publish(Float32(data=risk))


def main(args=None) -> int:
    return spin_node(FdmMonitorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
