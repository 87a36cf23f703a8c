"""Fault injection against the real nodes over DDS: whatever arrives, nothing unsafe leaves a node.

Each test drives a node on real topics with one fault class and asserts the safe outcome with a
figure (docs/reliability.md has the table; rerun with ``pytest test/nodes/test_fault_injection.py -s``):
future-stamped inputs then silence, +Inf map cells, an all-unknown map, a lost point-cloud sensor,
run-time parameter tampering, negative trajectory timing. Stamps, bad floats and overspeeding
command streams for the arm filter are covered further in test_feasibility_fuzz.py and
test_feasibility_filter.py.
"""

import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from trajectory_msgs.msg import JointTrajectory

from morobot.planning.interface import HeightMap
from morobot.ros import qos
from morobot.ros.conversions import (heightmap_to_pointcloud2, make_joint_state, make_joint_trajectory,
                                     make_odometry, make_pose_stamped, xyz_to_pointcloud2)

from rosutil import RosHarness

pytestmark = pytest.mark.ros


def _now(node):
    return node.get_clock().now().nanoseconds * 1e-9


def _map(t, heights=None):
    return heightmap_to_pointcloud2(HeightMap(torch.zeros(60, 60) if heights is None else heights,
                                              (-3.0, -3.0), 0.1, t))


def _odom(t):
    return make_odometry([0.0, 0.0, 0.5], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], t)


class Planner:
    """An mppi_planner with publishers for its inputs and a log of its commands (io-clock times)."""

    def __init__(self, **overrides):
        from morobot.nodes.mppi_planner import MppiPlannerNode

        self.h = RosHarness()
        params = [Parameter("num_samples", Parameter.Type.INTEGER, 256),
                  Parameter("control_rate", Parameter.Type.DOUBLE, 20.0),
                  Parameter("blocked_marking", Parameter.Type.BOOL, False)]
        params += [Parameter(k, value=v) for k, v in overrides.items()]
        self.node = self.h.add(MppiPlannerNode(parameter_overrides=params))
        self.io = self.h.node("fault_io")
        self.cmds: list[tuple[float, Twist]] = []
        self.io.create_subscription(TwistStamped, "/cmd_vel", lambda m: self.cmds.append((_now(self.io), m.twist)),
                                    qos.STATE)
        self.odom = self.io.create_publisher(Odometry, "/odom", qos.STATE)
        self.map = self.io.create_publisher(PointCloud2, "/elevation_map", qos.STATE)
        self.goal = self.io.create_publisher(PoseStamped, "/goal_pose", qos.STATE)
        assert self.h.spin_until(lambda: self.goal.get_subscription_count() > 0, 5.0)

    def feed(self, heights=None):
        t = _now(self.io)
        self.odom.publish(_odom(t))
        self.map.publish(_map(t, heights))

    def drive(self):
        """Goal 3 m ahead, fresh inputs until the robot is commanded forward; returns the io time."""
        self.goal.publish(make_pose_stamped(3.0, 0.0, 0.0, _now(self.io)))
        assert self.h.spin_until(lambda: any(m.linear.x > 0.2 for _, m in self.cmds), 10.0, self.feed)
        return _now(self.io)

    def moving_after(self, t0):
        return [(t, m) for t, m in self.cmds if t > t0 and (m.linear.x or m.linear.y or m.angular.z)]

    def close(self):
        self.h.close()


@pytest.fixture
def planner():
    p = Planner()
    yield p
    p.close()


@pytest.mark.parametrize("topic", ["odom", "map"])
def test_a_future_stamp_then_silence_stops_the_robot_within_half_a_second(planner, topic):
    planner.drive()
    t = _now(planner.io)
    planner.odom.publish(_odom(t))  # the last fresh input ...
    planner.map.publish(_map(t))
    last_fresh = _now(planner.io)
    if topic == "odom":  # ... then one stamped 1000 s ahead, then nothing
        planner.odom.publish(_odom(t + 1000.0))
    else:
        planner.map.publish(_map(t + 1000.0))
    planner.h.spin_for(3.0)
    moving = planner.moving_after(last_fresh + 0.5)
    zero_at = min((tt for tt, m in planner.cmds if tt > last_fresh and not m.linear.x), default=math.inf)
    print(f"\n[fault] future-stamped /{topic} then silence: {len(moving)} moving commands after 0.5 s, "
          f"first zero command {zero_at - last_fresh:.3f} s after the last fresh input")
    assert not moving and zero_at - last_fresh <= 0.5


def test_a_wall_of_inf_cells_is_not_driven_through(planner):
    from nav_msgs.msg import Path

    from morobot.ros.conversions import path_to_array

    plans = []
    planner.io.create_subscription(Path, "/plan", lambda m: plans.append(path_to_array(m)), qos.STATE)
    h = torch.zeros(60, 60)
    h[38:41, :] = math.inf  # a wall of +Inf cells across the whole map, 0.8-1.0 m ahead of the robot
    planner.goal.publish(make_pose_stamped(2.5, 0.0, 0.0, _now(planner.io)))
    assert planner.h.spin_until(lambda: len(plans) >= 20, 10.0, lambda: planner.feed(h))
    furthest = max(float(p[:, 0].max()) for p in plans)
    print(f"\n[fault] +Inf wall at x = 0.8 m: furthest planned x {furthest:.2f} m over {len(plans)} plans")
    assert furthest < 0.8


def test_an_all_unknown_map_stops_the_robot(planner):
    t0 = planner.drive()
    unknown = torch.full((60, 60), math.nan)
    planner.h.spin_for(1.5, lambda: planner.feed(unknown))
    moving = planner.moving_after(t0 + 0.5)
    print(f"\n[fault] all-unknown map: {len(moving)} moving commands after 0.5 s")
    assert not moving and planner.cmds[-1][1].linear.x == 0.0


def test_run_time_parameter_tampering_is_refused(planner):
    node = planner.node
    for name, value in (("u_max", [5.0, 0.5, 1.0]), ("u_min", [1.0, 0.0, 0.0]), ("speed_limit", [5.0, 5.0, 5.0]),
                        ("max_odom_age", 10.0), ("max_map_age", 30.0), ("risk_threshold", 0.9),
                        ("min_known_fraction", 0.0), ("max_stamp_lead", 5.0)):
        result = node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful, (name, value)
    # tightening is allowed
    assert node.set_parameters([Parameter("u_max", value=[0.5, 0.5, 1.0])])[0].successful
    assert node.set_parameters([Parameter("max_odom_age", value=0.3)])[0].successful
    planner.goal.publish(make_pose_stamped(3.0, 0.0, 0.0, _now(planner.io)))
    planner.h.spin_for(1.5, planner.feed)
    top = max((m.linear.x for _, m in planner.cmds), default=0.0)
    print(f"\n[fault] parameter tampering: 8 loosening changes refused; fastest command {top:.2f} m/s (u_max 0.5)")
    assert 0.0 < top <= 0.5 + 1e-9


def test_the_mapper_stops_publishing_when_the_point_cloud_goes_quiet():
    from morobot.nodes.elevation_mapper import ElevationMapperNode

    h = RosHarness()
    try:
        h.add(ElevationMapperNode(parameter_overrides=[Parameter("points_timeout", value=0.5)]))
        io = h.node("mapper_io")
        maps = []
        io.create_subscription(PointCloud2, "/elevation_map", lambda m: maps.append(_now(io)), qos.STATE)
        odom = io.create_publisher(Odometry, "/odom", qos.STATE)
        points = io.create_publisher(PointCloud2, "/points", qos.SENSOR)
        ground = np.stack(np.meshgrid(np.linspace(-2, 2, 30), np.linspace(-2, 2, 30)), -1).reshape(-1, 2)
        cloud = np.column_stack([ground, np.zeros(len(ground))])

        def both():
            t = _now(io)
            odom.publish(_odom(t))
            points.publish(xyz_to_pointcloud2(cloud, t, "odom"))

        assert h.spin_until(lambda: len(maps) >= 3, 10.0, both)
        lost = _now(io)
        h.spin_for(2.5, lambda: odom.publish(_odom(_now(io))))  # odometry goes on, the sensor is gone
        last = max(maps)
        print(f"\n[fault] point cloud lost: last map {last - lost:.2f} s after the last cloud (points_timeout 0.5 s)")
        assert last - lost <= 0.5 + 0.2 + 0.1  # timeout + one publish period + delivery
    finally:
        h.close()


def test_checker_safety_limits_cannot_be_loosened_and_timing_is_never_negative():
    from morobot.feasibility import FeasibilityChecker
    from morobot.feasibility.model import ARM_JOINTS
    from morobot.nodes.feasibility_checker import FeasibilityCheckerNode
    from sensor_msgs.msg import JointState

    h = RosHarness()
    try:
        node = h.add(FeasibilityCheckerNode())
        for name, value in (("max_command_step", 0.9), ("joint_state_max_age", 10.0), ("scene_update_rate", 0.0),
                            ("velocity_scale", 1.0), ("acceleration_scale", 1.0), ("motion_max_dt", 0.5)):
            assert not node.set_parameters([Parameter(name, value=value)])[0].successful, name
        io = h.node("checker_io")
        out = []
        io.create_subscription(JointTrajectory, "/joint_command", out.append, qos.STATE)
        js = io.create_publisher(JointState, "/joint_states", qos.STATE)
        raw = io.create_publisher(JointTrajectory, "/joint_command_raw", qos.STATE)
        ready = FeasibilityChecker().robot.ready_pose
        names = list(ARM_JOINTS) + ["panda_finger_joint1", "panda_finger_joint2"]
        assert h.spin_until(lambda: raw.get_subscription_count() > 0, 5.0)
        sent = 0
        for k in range(20):
            js.publish(make_joint_state(names, list(ready) + [0.04, 0.04], [0.0] * 9, [0.0] * 9, _now(io)))
            h.spin_for(0.02)
            cmd = make_joint_trajectory(list(ARM_JOINTS), list(ready + 0.05 * (-1) ** k), _now(io) - 100.0 * k)
            cmd.points[0].time_from_start.sec = -5  # negative timing, stamps jumping back 100 s a frame
            raw.publish(cmd)
            sent += 1
            h.spin_for(0.03)
        assert h.spin_until(lambda: len(out) >= sent - 2, 3.0)
        tfs = [m.points[0].time_from_start.sec + 1e-9 * m.points[0].time_from_start.nanosec for m in out]
        steps = [float(np.max(np.abs(np.array(m.points[0].positions[:7]) - ready))) for m in out]
        print(f"\n[fault] checker: 6 loosening changes refused; {len(out)} forwarded, min time_from_start "
              f"{min(tfs):.3f} s, largest step {max(steps):.3f} rad for +-0.05 rad commands")
        assert min(tfs) >= 0.0 and max(steps) <= 0.05 + 1e-9
    finally:
        h.close()


def test_korr_policy_holds_on_a_future_stamp_then_silence():
    from morobot.feasibility import FeasibilityChecker
    from morobot.nodes.korr_policy import ARM, FINGERS, KorrPolicyNode
    from morobot.ros.conversions import make_pose_stamped_quat
    from sensor_msgs.msg import JointState

    h = RosHarness()
    try:
        h.add(KorrPolicyNode())
        io = h.node("korr_io")
        out = []
        io.create_subscription(JointTrajectory, "/joint_command_raw", lambda m: out.append(_now(io)), qos.STATE)
        js = io.create_publisher(JointState, "/joint_states", qos.STATE)
        obj = io.create_publisher(PoseStamped, "/object_pose", qos.STATE)
        q = list(FeasibilityChecker().robot.ready_pose) + [0.04, 0.04]

        def feed(lead=0.0):
            t = _now(io) + lead
            js.publish(make_joint_state(list(ARM + FINGERS), q, [0.0] * 9, [0.0] * 9, t))
            obj.publish(make_pose_stamped_quat([0.5, 0.0, 0.02], [1.0, 0.0, 0.0, 0.0], t, "panda_link0"))

        assert h.spin_until(lambda: len(out) >= 3, 10.0, feed)
        feed()
        last_fresh = _now(io)
        feed(lead=1000.0)  # a frozen state stamped from the future, then nothing
        h.spin_for(2.0)
        late = [t for t in out if t > last_fresh + 0.5]
        print(f"\n[fault] korr_policy, future-stamped state then silence: {len(late)} commands after 0.5 s")
        assert not late
    finally:
        h.close()


def test_a_flood_of_large_clouds_is_rate_capped_and_downsampled():
    from morobot.nodes.elevation_mapper import ElevationMapperNode

    h = RosHarness()
    try:
        node = h.add(ElevationMapperNode(parameter_overrides=[Parameter("max_points", value=5000)]))
        sizes = []
        real = node.mapper.integrate
        node.mapper.integrate = lambda pts, *a, **k: (sizes.append(len(pts)), real(pts, *a, **k))[1]
        io = h.node("flood_io")
        odom = io.create_publisher(Odometry, "/odom", qos.STATE)
        points = io.create_publisher(PointCloud2, "/points", qos.SENSOR)
        assert h.spin_until(lambda: points.get_subscription_count() > 0, 5.0)
        rng = np.random.default_rng(0)
        cloud = np.column_stack([rng.uniform(-3, 3, (40000, 2)), rng.normal(0, 0.01, 40000)])
        t0 = _now(io)
        sent = 0
        while _now(io) - t0 < 2.0:  # 40k-point clouds at ~100 Hz for 2 s
            t = _now(io)
            odom.publish(_odom(t))
            points.publish(xyz_to_pointcloud2(cloud, t, "odom"))
            sent += 1
            h.spin_for(0.01)
        rate = len(sizes) / 2.0
        print(f"\n[fault] {sent} clouds of 40k points in 2 s: {len(sizes)} mapped ({rate:.0f} Hz, cap 20 Hz), "
              f"largest {max(sizes)} points")
        assert len(sizes) <= 2.0 * 20 + 2 and max(sizes) <= 5000
    finally:
        h.close()


def test_every_kind_of_malformed_cloud_leaves_a_log_line():
    from morobot.ros.logthrottle import KeyedThrottle

    lines, t = [], [0.0]
    warn = KeyedThrottle(lines.append, period=2.0, clock=lambda: t[0])
    for k in range(10):  # two malformed variants interleaved, 10 times within one period
        warn("dropping malformed point cloud: missing field z" if k % 2 else "dropping point cloud in frame 'map'")
    assert len(lines) == 2
    t[0] = 2.5
    assert warn("dropping point cloud in frame 'map'") and len(lines) == 3


FLOODER = """
import sys, time
import numpy as np
import rclpy
from sensor_msgs.msg import PointCloud2
from morobot.ros import qos
from morobot.ros.conversions import xyz_to_pointcloud2
rclpy.init()
node = rclpy.create_node("points_flooder")
pub = node.create_publisher(PointCloud2, "/points", qos.SENSOR)
rng = np.random.default_rng(0)
cloud = xyz_to_pointcloud2(np.column_stack([rng.uniform(-4, 4, (40000, 2)), np.zeros(40000)]), 0.0, "base")
end, n = time.monotonic() + float(sys.argv[1]), 0
while time.monotonic() < end:
    pub.publish(cloud)
    n += 1
    time.sleep(0.01)
print(n)
"""


@pytest.mark.slow
def test_a_point_cloud_flood_does_not_starve_the_planner(tmp_path):
    """The navigation graph (separate processes) with 40k-point clouds at up to 100 Hz on /points."""
    from morobot.launcher import GraphProcesses

    h = RosHarness()
    try:
        from morobot.sim.worlds import load_world

        world = load_world("rough_obstacles")  # 14 s of driving: the goal is not reached while measuring
        with GraphProcesses("navigate", {"world": "rough_obstacles", "locomotion": "abstract"},
                            log_dir=str(tmp_path / "logs")) as procs:
            io = h.node("overload_io")
            cmds = []
            io.create_subscription(TwistStamped, "/cmd_vel", lambda m: cmds.append(time.monotonic()), qos.STATE)
            odom_seen = []
            io.create_subscription(Odometry, "/odom", lambda m: odom_seen.append(
                m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec), qos.STATE)
            goal = io.create_publisher(PoseStamped, "/goal_pose", qos.STATE)
            assert h.spin_until(lambda: odom_seen and goal.get_subscription_count() > 0, 60.0)
            h.spin_for(2.0)  # a first map
            goal.publish(make_pose_stamped(world.goal[0], world.goal[1], world.goal[2], 0.0))
            assert h.spin_until(lambda: len(cmds) > 20, 30.0), procs.failed()

            def rate(seconds, step=None):
                """Commands per second of simulated time (the planner runs on /clock)."""
                n0, s0 = len(cmds), odom_seen[-1]
                h.spin_for(seconds, step)
                return (len(cmds) - n0) / max(1e-9, odom_seen[-1] - s0), (odom_seen[-1] - s0) / seconds

            calm, calm_speed = rate(3.0)
            # the flood comes from its own process, as from a sensor driver
            flooder = subprocess.Popen([sys.executable, "-c", FLOODER, "8.0"], env=os.environ.copy(),
                                       stdout=subprocess.PIPE, text=True)
            h.spin_for(2.0)  # let it start publishing
            def cpu_seconds():
                out = {}
                for name, proc in procs.procs.items():
                    fields = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
                    out[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                return out

            before = cpu_seconds()
            flooded, speed = rate(5.0)
            share = {k: (v - before[k]) / 5.0 for k, v in cpu_seconds().items()}
            sent = int(flooder.communicate(timeout=30)[0].strip() or 0)
            print(f"\n[fault] /points flood ({sent / 8.0:.0f} clouds/s of 40k points): /cmd_vel {flooded:.1f} Hz "
                  f"of sim time against {calm:.1f} Hz calm (control_rate 10 Hz); simulator at {speed:.2f} x real time "
                  f"({calm_speed:.2f} calm); CPU share " + ", ".join(f"{k} {v:.2f}" for k, v in share.items()))
            assert not procs.failed()
            assert share["elevation_mapper"] <= 0.6  # bounded: the rate cap drops clouds before decoding them
        log = (tmp_path / "logs" / "mppi_planner.log").read_text()
        assert flooded >= 0.8 * calm or "missed its rate" in log  # a starved planner says so
    finally:
        h.close()


def test_a_huge_cloud_is_dropped_before_it_is_decoded():
    from rclpy.serialization import serialize_message

    from morobot.nodes.elevation_mapper import ElevationMapperNode

    h = RosHarness()
    try:
        node = h.add(ElevationMapperNode(parameter_overrides=[Parameter("max_points", value=1000)]))
        warnings = []
        node._warn.sink = warnings.append
        decoded = []
        real = node.mapper.integrate
        node.mapper.integrate = lambda pts, *a, **k: (decoded.append(len(pts)), real(pts, *a, **k))[1]
        cloud = np.random.default_rng(0).normal(size=(50000, 3))
        t0 = time.perf_counter()
        node._on_points(serialize_message(xyz_to_pointcloud2(cloud, _now(node), "odom")))
        print(f"\n[fault] a cloud 50x over max_points: dropped in {1e3 * (time.perf_counter() - t0):.2f} ms, undecoded")
        assert not decoded and warnings and "dropping a point cloud" in warnings[0]
    finally:
        h.close()
