"""ANYmal backend of the mujoco_sim node: /cmd_vel in; /odom, /points (and /joint_states) out.

The learned locomotion also publishes ``joint_targets`` (sensor_msgs/JointState, positions = the policy's
newest joint position targets, one message per step; with the default ``step`` of 0.02 s, one per
control step, so the last two messages are the last two actions a ``legged_actions`` FDM reads).

Also /tf (``odom_frame`` -> ``base_frame`` at every step), /tf_static (``map_frame`` -> ``odom_frame``,
identity) and ``robot_description`` (the URDF, latched), so robot_state_publisher on a ROS install
adds the legs' frames from /joint_states and RViz shows the robot.
"""

from __future__ import annotations

import threading

import numpy as np

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState, PointCloud2
from std_msgs.msg import Empty, String

from morobot.ros import qos
from morobot.ros.conversions import (MessageError, cmd_vel_type, make_joint_state, make_odometry, sec_to_stamp, twist_to_array,
                                     xyz_to_pointcloud2)
from morobot import paths
from morobot.frames import transform
from morobot.ros.tf import TfPublisher, make_transform
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
        if params["locomotion"] == "learned":
            from morobot.locomotion.sim import LeggedAnymalSim, LeggedSimConfig

            self.sim = LeggedAnymalSim(self.world, LeggedSimConfig(policy=params["locomotion_policy"],
                                                                   command_timeout=params["cmd_timeout"],
                                                                   cameras=tuple(params["depth_cameras"])))
            self._js_pub = node.create_publisher(JointState, "joint_states", qos.STATE)
            self._targets_pub = node.create_publisher(JointState, "joint_targets", qos.STATE)
        else:
            locomotion = LocomotionConfig(**{k: params[k] for k in STUMBLE_PARAMS})
            self.sim = AnymalSim(self.world, AnymalSimConfig(command_timeout=params["cmd_timeout"],
                                                             locomotion=locomotion))
            self._js_pub = self._targets_pub = None
        self.sim.reset()
        self._fall_reported = False
        self._diag_pub = node.create_publisher(DiagnosticArray, "/diagnostics", qos.STATE)
        node.create_subscription(Empty, "sim/reset", self._on_reset, qos.STATE)
        self._points_every = (max(1, round(1.0 / (params["points_rate"] * params["step"])))
                              if params["points_rate"] > 0 else 0)
        self._odom_pub = node.create_publisher(Odometry, "odom", qos.STATE)
        self._points_pub = node.create_publisher(PointCloud2, "points", qos.SENSOR)
        node.create_subscription(cmd_vel_type(params["cmd_vel_stamped"]), "cmd_vel", self._on_cmd, qos.STATE)
        self._tf = TfPublisher(node)
        if params["map_frame"]:
            self._tf.send_static([make_transform(params["map_frame"], params["odom_frame"], np.eye(4), 0.0)])
        self._description_pub = node.create_publisher(String, "robot_description", qos.LATCHED)
        self._description_pub.publish(String(data=paths.anymal_urdf().read_text(encoding="utf-8")))

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

    def _on_reset(self, _msg: Empty) -> None:
        with self.lock:
            self.sim.reset()
        self._fall_reported = False
        self.node.get_logger().info("robot reset to the world's start")

    def publish(self, stamp: float, step_index: int) -> None:
        with self.lock:
            st = self.sim.state()
            js = self.sim.joint_state() if self._js_pub is not None else None
            targets = self.sim.joint_targets()[0] if self._targets_pub is not None else None
            points = (self.sim.depth_points()
                      if self._points_every and step_index % self._points_every == 0 else None)
        self._odom_pub.publish(make_odometry(st.position, st.quaternion, st.linear_velocity,
                                             st.angular_velocity, stamp, self.p["odom_frame"],
                                             self.p["base_frame"]))
        self._tf.send([make_transform(self.p["odom_frame"], self.p["base_frame"],
                                      transform(st.position, st.quaternion), stamp)])
        if points is not None:
            self._points_pub.publish(xyz_to_pointcloud2(points, stamp, self.p["base_frame"]))
        if js is not None:
            self._js_pub.publish(make_joint_state(js.names, js.positions, js.velocities, js.efforts, stamp))
        if targets is not None:
            self._targets_pub.publish(make_joint_state(js.names, targets, None, None, stamp))
        if st.fallen and not self._fall_reported:
            self._fall_reported = True
            self.node.get_logger().error(f"robot fell at ({st.position[0]:.2f}, {st.position[1]:.2f}); "
                                         "publish std_msgs/Empty on /sim/reset to stand it up at the start")
            msg = DiagnosticArray()
            msg.header.stamp = sec_to_stamp(stamp)
            msg.status = [DiagnosticStatus(level=DiagnosticStatus.ERROR, name="mujoco_sim", message="robot fell",
                                           hardware_id="anymal")]
            self._diag_pub.publish(msg)
