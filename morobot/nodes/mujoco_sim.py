"""mujoco_sim: MuJoCo sim-in-the-loop, publishing what the real robot's drivers would.

``robot:=anymal``: /cmd_vel → locomotion → physics; publishes /odom (odom → base, twist in base),
/points (depth sensors, base frame) and /clock. ``locomotion:=abstract`` is the rigid-body robot with
a locomotion abstraction (fast, the old benchmarks); ``locomotion:=learned`` the articulated ANYmal
walking under its learned policy (:mod:`morobot.locomotion.sim`), which also publishes
/joint_states (12 leg joints: positions, velocities, efforts). Without /cmd_vel for ``cmd_timeout``
seconds of sim time the robot stands still, as ANYmal's locomotion controller would. A fall is
logged and reported on /diagnostics (``mujoco_sim``: ERROR "robot fell"); a std_msgs/Empty on
/sim/reset puts the robot back at the world's start.

``robot:=panda``: /joint_command (JointTrajectory) → joint position/velocity control → physics;
publishes /joint_states, /object_pose (panda_link0), /points (scene), /camera/image_raw and /clock.

The simulation runs in its own thread at ``rate`` × real time (0 = as fast as possible) and is the
source of /clock; its own loop is paced by the steady wall clock, never by /clock.
"""

from __future__ import annotations

import threading
import time

from rclpy.node import Node
from rosgraph_msgs.msg import Clock

from morobot.ros import qos
from morobot.ros.conversions import sec_to_stamp
from morobot.ros.params import ParamSpec, declare
from morobot.ros.runner import spin_node

PARAMS = (
    ParamSpec("robot", "anymal", "which robot to simulate", choices=("anymal", "panda"), read_only=True),
    ParamSpec("world", "rough_obstacles", "named world (config/worlds) or YAML path", read_only=True),
    ParamSpec("rate", 1.0, "sim speed as a multiple of real time (0 = as fast as possible)", 0.0, 100.0),
    ParamSpec("step", 0.02, "sim time per loop (s): /clock and state are published every step",
              0.002, 0.1, read_only=True),
    ParamSpec("points_rate", 10.0, "depth sensor rate in sim time (Hz, 0 = off)", 0.0, 50.0),
    ParamSpec("cmd_timeout", 0.5, "stop when no command arrives for this long (s, sim time)", 0.05, 5.0,
              read_only=True),
    ParamSpec("locomotion", "abstract", "anymal: abstract (rigid body, locomotion abstraction) or learned "
              "(articulated robot under the learned policy)", choices=("abstract", "learned"), read_only=True),
    ParamSpec("locomotion_policy", "", "anymal, learned: policy file (empty = models/locomotion/anymal_c_policy.pt)",
              read_only=True),
    ParamSpec("stumble_rate", 0.0, "fall hazard (1/s) per leg at twice the stumble threshold; 0 = the robot "
              "never stumbles (anymal, see morobot.sim.locomotion)", 0.0, 100.0, read_only=True),
    ParamSpec("stumble_speed", 0.8, "reference foot speed of the stumble threshold (m/s, anymal)", 0.05, 5.0,
              read_only=True),
    ParamSpec("stumble_unevenness", 0.05, "reference foot-patch unevenness of the stumble threshold (m, anymal)",
              0.001, 1.0, read_only=True),
    ParamSpec("stumble_seed", 0, "seed of the stumble draws (anymal)", 0, 2**31 - 1, read_only=True),
    ParamSpec("odom_frame", "odom", "world-fixed frame (anymal)", read_only=True),
    ParamSpec("base_frame", "base", "robot body frame (anymal)", read_only=True),
    # panda
    ParamSpec("arm_frame", "panda_link0", "arm base frame (panda)", read_only=True),
    ParamSpec("seed", 0, "seed of perturbations and noise (panda)", 0, 2**31 - 1, read_only=True),
    ParamSpec("state_rate", 100.0, "/joint_states and /object_pose rate (Hz, panda)", 1.0, 1000.0),
    ParamSpec("camera_rate", 5.0, "/camera/image_raw rate (Hz, panda; 0 = off)", 0.0, 60.0),
    ParamSpec("camera_width", 320, "camera image width (panda)", 16, 1280, read_only=True),
    ParamSpec("camera_height", 240, "camera image height (panda)", 16, 960, read_only=True),
    ParamSpec("command_latency", 0.0, "joint command latency (s, panda)", 0.0, 1.0, read_only=True),
    ParamSpec("joint_noise_std", 0.0, "joint position noise (rad, panda)", 0.0, 0.1, read_only=True),
    ParamSpec("push_probability", 0.0, "chance per physics step of a push on the object (panda)",
              0.0, 0.1, read_only=True),
)


class MujocoSimNode(Node):
    def __init__(self, **kwargs):
        super().__init__("mujoco_sim", **kwargs)
        self.p = declare(self, PARAMS, on_change=self._on_change)
        self._lock = threading.Lock()
        self._clock_pub = self.create_publisher(Clock, "/clock", qos.CLOCK)
        if self.p["robot"] == "anymal":
            from morobot.nodes.sim_anymal import AnymalBackend

            self.backend = AnymalBackend(self, self.p, self._lock)
        else:
            from morobot.nodes.sim_panda import PandaBackend

            self.backend = PandaBackend(self, self.p, self._lock)
        self._running = True
        self._rtf = 0.0
        self._thread = threading.Thread(target=self._loop, name="mujoco_sim", daemon=True)
        self._thread.start()
        self.get_logger().info(f"simulating {self.p['robot']} in world '{self.p['world']}' at "
                               f"rate {self.p['rate']}")

    def _on_change(self, values: dict) -> None:
        self.p = values

    def _loop(self) -> None:
        step = self.p["step"]
        n = 0
        wall0, sim0 = time.monotonic(), self.backend.time
        report_wall, report_sim = wall0, sim0
        while self._running:
            with self._lock:
                self.backend.advance(step)
                t = self.backend.time
            self._clock_pub.publish(Clock(clock=sec_to_stamp(t)))
            self.backend.publish(t, n)
            n += 1
            rate = self.p["rate"]
            now = time.monotonic()
            if rate > 0:
                target = wall0 + (t - sim0) / rate
                if target > now:
                    time.sleep(target - now)
                elif now - target > 0.5:  # far behind: do not try to catch up in a burst
                    wall0, sim0 = now, t
            if now - report_wall >= 10.0:
                self._rtf = (t - report_sim) / (now - report_wall)
                self.get_logger().info(f"sim time {t:.1f}s, real-time factor {self._rtf:.2f}")
                report_wall, report_sim = now, t

    def on_shutdown(self) -> None:
        self._running = False
        self._thread.join(timeout=2.0)
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()


def main(args=None) -> int:
    return spin_node(MujocoSimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
