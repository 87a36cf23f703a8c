"""ANYmal backend of the mujoco_sim node: /cmd_vel in; /odom and /points out."""

from __future__ import annotations

import threading

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from sensor_msgs.msg import PointCloud2

from morobot.ros import qos
from morobot.ros.conversions import MessageError, make_odometry, twist_to_array, xyz_to_pointcloud2
from morobot.sim.anymal import AnymalSim, AnymalSimConfig
from morobot.sim.locomotion import STUMBLE_PARAMS, LocomotionConfig
from morobot.sim.worlds import load_world


class AnymalBackend:
    """Owns the AnymalSim; the node's sim thread calls :meth:`advance` and :meth:`publish`."""

    def __init__(self, node, params: dict, lock: threading.Lock):
        self.node = node
        self.p = params
        self.lock = lock
        self.world = load_world(params["world"])
        locomotion = LocomotionConfig(**{k: params[k] for k in STUMBLE_PARAMS})
        self.sim = AnymalSim(self.world, AnymalSimConfig(command_timeout=params["cmd_timeout"],
                                                         locomotion=locomotion))
        self.sim.reset()
        self._points_every = (max(1, round(1.0 / (params["points_rate"] * params["step"])))
                              if params["points_rate"] > 0 else 0)
        self._odom_pub = node.create_publisher(Odometry, "/odom", qos.STATE)
        self._points_pub = node.create_publisher(PointCloud2, "/points", qos.SENSOR)
        node.create_subscription(Twist, "/cmd_vel", self._on_cmd, qos.STATE)

    @property
    def time(self) -> float:
        return self.sim.time

    def advance(self, duration: float) -> None:
        self.sim.advance(duration)

    def _on_cmd(self, msg: Twist) -> None:
        try:
            cmd = twist_to_array(msg)
        except MessageError as exc:
            self.node.get_logger().error(f"ignoring /cmd_vel: {exc}; commanding a stop",
                                         throttle_duration_sec=2.0)
            cmd = [0.0, 0.0, 0.0]
        with self.lock:
            self.sim.set_command(cmd)

    def publish(self, stamp: float, step_index: int) -> None:
        with self.lock:
            st = self.sim.state()
            points = (self.sim.depth_points()
                      if self._points_every and step_index % self._points_every == 0 else None)
        self._odom_pub.publish(make_odometry(st.position, st.quaternion, st.linear_velocity,
                                             st.angular_velocity, stamp, self.p["odom_frame"],
                                             self.p["base_frame"]))
        if points is not None:
            self._points_pub.publish(xyz_to_pointcloud2(points, stamp, self.p["base_frame"]))
