"""Panda backend of the mujoco_sim node: /joint_command in; /joint_states, /object_pose, /points,
/camera/image_raw out.

The arm follows the latest valid command with its joint position/velocity controller (holding the
last target when commands stop, as the Franka joint impedance controller does). A malformed command
(wrong or missing joints, NaN/Inf, no point) is rejected with a log line and never applied.
The camera image and the scene cloud are produced only while someone subscribes to them.
"""

from __future__ import annotations

import threading

from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image, JointState, PointCloud2
from trajectory_msgs.msg import JointTrajectory

from morobot.ros import qos
from morobot.ros.conversions import (MessageError, joint_trajectory_to_command, make_joint_state,
                                     make_pose_stamped_quat, rgb_to_image, xyz_to_pointcloud2)
from morobot.sim.panda import PandaSim, PandaSimConfig


def _every(rate: float, step: float) -> int:
    return max(1, round(1.0 / (rate * step))) if rate > 0 else 0


class PandaBackend:
    """Owns the PandaSim; the node's sim thread calls :meth:`advance` and :meth:`publish`."""

    def __init__(self, node, params: dict, lock: threading.Lock):
        self.node = node
        self.p = params
        self.lock = lock
        cfg = PandaSimConfig(command_latency=params["command_latency"],
                             joint_noise_std=params["joint_noise_std"],
                             push_probability=params["push_probability"])
        self.sim = PandaSim(cfg)
        self.sim.reset(seed=params["seed"])
        self.frame = params["arm_frame"]
        step = params["step"]
        self._state_every = _every(params["state_rate"], step)
        self._points_every = _every(params["points_rate"], step)
        self._camera_every = _every(params["camera_rate"], step)
        self._js_pub = node.create_publisher(JointState, "joint_states", qos.STATE)
        self._obj_pub = node.create_publisher(PoseStamped, "object_pose", qos.STATE)
        self._pts_pub = node.create_publisher(PointCloud2, "points", qos.SENSOR)
        self._img_pub = node.create_publisher(Image, "camera/image_raw", qos.SENSOR)
        node.create_subscription(JointTrajectory, "joint_command", self._on_command, qos.STATE)

    @property
    def time(self) -> float:
        return self.sim.time

    def advance(self, duration: float) -> None:
        self.sim.advance(duration)

    def _on_command(self, msg: JointTrajectory) -> None:
        try:
            q, qd, extra = joint_trajectory_to_command(msg, self.sim.arm_joint_names,
                                                       optional=self.sim.joint_names[7:])
            gripper = sum(extra.values()) if len(extra) == 2 else (2 * next(iter(extra.values())) if extra
                                                                  else None)
            with self.lock:
                self.sim.set_joint_command(q, qd, gripper=gripper)
        except (MessageError, ValueError) as exc:
            self.node.get_logger().error(f"rejected /joint_command: {exc}", throttle_duration_sec=1.0)

    def publish(self, stamp: float, step_index: int) -> None:
        def due(every: int) -> bool:
            return every > 0 and step_index % every == 0

        want_points = due(self._points_every) and self._pts_pub.get_subscription_count() > 0
        want_image = due(self._camera_every) and self._img_pub.get_subscription_count() > 0
        if not (due(self._state_every) or want_points or want_image):
            return
        with self.lock:
            js = self.sim.joint_state() if due(self._state_every) else None
            obj = self.sim.object_pose() if due(self._state_every) else None
            points = self.sim.scene_points() if want_points else None
            rgb = self.sim.render(self.p["camera_width"], self.p["camera_height"]) if want_image else None
        if js is not None:
            self._js_pub.publish(make_joint_state(self.sim.joint_names, js.positions, js.velocities,
                                                  js.efforts, stamp))
            self._obj_pub.publish(make_pose_stamped_quat(obj.position, obj.quaternion, stamp, self.frame))
        if points is not None:
            self._pts_pub.publish(xyz_to_pointcloud2(points, stamp, self.frame))
        if rgb is not None:
            self._img_pub.publish(rgb_to_image(rgb, stamp, "scene_camera"))

    def close(self) -> None:
        self.sim.close()
