"""mujoco_sim: MuJoCo sim-in-the-loop, publishing what the real robot's drivers would.

``robot:=anymal``: /cmd_vel → locomotion → physics; publishes /odom (odom → base, twist in base),
/points (depth sensors, base frame) and /clock. ``locomotion:=learned`` (the default) is the articulated
ANYmal walking under its learned policy (:mod:`morobot.locomotion.sim`), as the real robot walks under its
controller; ``locomotion:=abstract`` the rigid-body robot with a locomotion abstraction (fast; the robot
the FDM and the navigation benchmarks were made on). The learned one also publishes
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
from morobot.sim.params import SimNodeParams
from morobot.params import specs
from morobot.ros.params import declare
from morobot.ros.runner import spin_node

PARAMS = specs(SimNodeParams)


class MujocoSimNode(Node):
    def __init__(self, **kwargs):
        super().__init__("mujoco_sim", **kwargs)
        self.p = declare(self, PARAMS, on_change=self._on_change, cross_check=SimNodeParams.cross_check)
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
