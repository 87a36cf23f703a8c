"""Fuzzing the feasibility_checker filter: random and adversarial commands (in and beyond the limits,
NaN/Inf, wrong names and lengths, huge jumps, colliding and boundary configurations, stale or invalid
joint states, odd stamps) go through the node's callbacks (10k) and over real topics (300). Every
forwarded command must be feasible for the exhaustive reference checker
(``morobot.feasibility.reference``): static checks, the joint-rate rule on the checked stream for
commands passed as is, and the clamp step bound for clamped ones."""

from __future__ import annotations

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from trajectory_msgs.msg import JointTrajectory

from morobot.feasibility import FeasibilityChecker
from morobot.feasibility.model import ARM_JOINTS, FINGER_JOINTS
from morobot.feasibility.reference import ExhaustiveReference
from morobot.feasibility.validation import clutter_cloud
from morobot.ros import qos
from morobot.ros.conversions import make_joint_state, make_joint_trajectory, sec_to_stamp, xyz_to_pointcloud2

from rosutil import RosHarness

pytestmark = pytest.mark.ros

NAMES9 = list(ARM_JOINTS) + list(FINGER_JOINTS)
FORWARDED = ("pass", "limited", "clamped", "hold")


class Pools:
    """Configurations to draw commands and robot states from, classified by the (fast) checker."""

    def __init__(self, rng, checker: FeasibilityChecker, n=1500):
        lo, hi = checker.robot.lower, checker.robot.upper
        qs = rng.uniform(lo, hi, (n, 7))
        ok = np.array([checker.evaluate(q).feasible for q in qs])
        self.feasible, self.infeasible = qs[ok], qs[~ok]
        self.colliding = np.array([q for q in self.infeasible
                                   if set(checker.evaluate(q).failed) & {"self_collision", "scene_collision"}])
        inside, outside = [], []
        for i in range(120):  # bisect feasible/infeasible segments onto the checker's boundary
            a = self.feasible[rng.integers(len(self.feasible))]
            b = self.infeasible[rng.integers(len(self.infeasible))]
            t0, t1 = 0.0, 1.0
            for _ in range(14):
                mid = (t0 + t1) / 2
                t0, t1 = (mid, t1) if checker.evaluate(a + mid * (b - a)).feasible else (t0, mid)
            inside.append(a + t0 * (b - a))
            outside.append(a + t1 * (b - a))
        self.boundary_in, self.boundary_out = np.array(inside), np.array(outside)
        self.lower, self.upper = lo, hi


def make_command(rng, q_current, pools: Pools, stamp: float):
    """One adversarial command: ``(msg, malformed, q in canonical order or None, fingers dict)``."""
    kind = rng.choice(["step", "uniform", "beyond", "jump", "colliding", "boundary", "nan", "inf",
                       "length", "names", "permuted", "fingers", "bad_fingers", "velocities", "empty"],
                      p=[0.22, 0.08, 0.1, 0.06, 0.08, 0.14, 0.04, 0.03, 0.04, 0.03, 0.05, 0.04, 0.02, 0.05, 0.02])
    q = None
    if kind in ("step", "nan", "inf", "length", "names", "permuted", "fingers", "bad_fingers", "velocities", "empty"):
        q = q_current + rng.normal(0, rng.choice([0.005, 0.03, 0.15]), 7)
    elif kind == "uniform":
        q = rng.uniform(pools.lower, pools.upper)
    elif kind == "beyond":
        q = rng.uniform(pools.lower - 1.0, pools.upper + 1.0)
    elif kind == "jump":
        q = q_current + rng.choice([-1, 1], 7) * rng.uniform(0.5, 3.0, 7)
    elif kind == "colliding":
        q = pools.colliding[rng.integers(len(pools.colliding))] + rng.normal(0, 0.01, 7)
    elif kind == "boundary":
        src = pools.boundary_in if rng.random() < 0.5 else pools.boundary_out
        q = src[rng.integers(len(src))] + rng.normal(0, 0.003, 7)
    names, positions, velocities, fingers, malformed = list(ARM_JOINTS), list(q), None, {}, False
    if kind == "nan":
        positions[rng.integers(7)] = float("nan")
        malformed = True
    elif kind == "inf":
        velocities = [0.0] * 7
        velocities[rng.integers(7)] = float(rng.choice([np.inf, -np.inf, np.nan]))
        malformed = True
    elif kind == "length":
        positions = positions[:rng.choice([0, 6])] if rng.random() < 0.5 else positions + [0.0]
        malformed = True
    elif kind == "names":
        j = int(rng.integers(7))
        names[j] = str(rng.choice(["panda_joint8", "joint1", "", ARM_JOINTS[(j + 1) % 7]]))  # unknown or twice
        malformed = True
    elif kind == "permuted":
        order = rng.permutation(7)
        names = [ARM_JOINTS[i] for i in order]
        positions = [q[i] for i in order]
    elif kind in ("fingers", "bad_fingers"):
        width = rng.uniform(0.0, 0.04) if kind == "fingers" else float(rng.choice([-0.01, 0.05, np.nan]))
        names, positions = NAMES9, positions + [width, width]
        fingers = {n: width for n in FINGER_JOINTS}
        malformed = kind == "bad_fingers"
    elif kind == "velocities":
        velocities = list(rng.normal(0, 3.0, 7))
    msg = make_joint_trajectory(names, positions, stamp, velocities=velocities) if kind != "empty" else \
        JointTrajectory(joint_names=list(ARM_JOINTS))
    if kind == "empty":
        malformed = True
    if rng.random() < 0.04:
        msg.header.stamp.sec, msg.header.stamp.nanosec = 0, 0  # no stamp: the node uses its clock
    return msg, malformed, (None if malformed else np.asarray(q, float)), fingers


class Verifier:
    """Checks what the node forwarded against the exhaustive reference."""

    def __init__(self, ref: ExhaustiveReference, node):
        self.ref = ref
        self.node = node
        self.cache: dict[bytes, tuple[bool, str]] = {}
        self.history_q: list[np.ndarray] = []
        self.history_t: list[float] = []
        self.actions: dict[str, int] = {}
        self.failures: list[str] = []
        self.reference_calls = 0

    def static(self, q: np.ndarray) -> tuple[bool, str]:
        key = q.tobytes()
        if key not in self.cache:
            self.reference_calls += 1
            self.cache[key] = self.ref.static_feasible(q)
        return self.cache[key]

    def frame(self, i, status: DiagnosticArray, forwarded, malformed, q_cmd, fingers, q_current, state_ok):
        overall = status.status[0]
        values = {kv.key: kv.value for kv in overall.values}
        action = values["action"]
        self.actions[action] = self.actions.get(action, 0) + 1
        fail = self.failures.append
        if malformed or not state_ok:
            if action != "rejected" or forwarded is not None:
                fail(f"{i}: invalid input (malformed={malformed}, state_ok={state_ok}) gave {action}")
            return
        if action == "rejected":
            if "stale joint states" not in overall.message:  # stale: the machine stalled this process
                fail(f"{i}: valid input rejected: {overall.message}")
            elif forwarded is not None:
                fail(f"{i}: rejected but forwarded")
            return
        self.history_q.append(q_cmd)
        self.history_t.append(float(values["stamp"]))
        if (forwarded is None) != (action not in FORWARDED):
            fail(f"{i}: action {action} but forwarded={forwarded is not None}")
            return
        if forwarded is None:
            return
        names = list(forwarded.joint_names)
        pos = np.array(forwarded.points[0].positions, float)
        if names[:7] != list(ARM_JOINTS) or len(pos) != len(names) or not np.all(np.isfinite(pos)):
            fail(f"{i}: malformed output {names} {pos}")
            return
        for n, v in zip(names[7:], pos[7:]):
            if n not in fingers or v != fingers[n]:
                fail(f"{i}: finger {n}={v} not from the command")
        q = pos[:7]
        ok, why = self.static(q)
        if not ok:
            fail(f"{i}: forwarded {action} command infeasible for the reference ({why}): {q.tolist()}")
        p = self.node.p
        if action == "pass":
            if not np.array_equal(q, q_cmd):
                fail(f"{i}: passed command changed")
            tail = p["rate_window"] + 1
            if not self.ref.rate_feasible(self.history_q[-tail:], self.history_t[-tail:])[-1]:
                fail(f"{i}: passed command violates the reference rate rule")
            if p["max_command_step"] > 0 and np.max(np.abs(q - q_current)) > p["max_command_step"] + 1e-12:
                fail(f"{i}: passed command farther than max_command_step")
            vel = forwarded.points[0].velocities
            if len(vel) and np.any(np.abs(np.array(vel[:7])) > p["velocity_scale"] * self.ref.velocity + 1e-12):
                fail(f"{i}: forwarded velocities above the limit")
        elif action == "limited":  # a feasible command approached at the velocity/acceleration/lead limits
            lead = p["velocity_scale"] * self.ref.velocity * p["motion_max_dt"]
            if np.any(np.abs(q - q_current) > lead + 1e-9):
                fail(f"{i}: limited target further than one motion_max_dt of motion from the arm")
            if np.any(np.abs(q - q_cmd) > np.abs(q_current - q_cmd) + lead + 1e-9):
                fail(f"{i}: limited target not on the way to the command")
            vel = forwarded.points[0].velocities
            if len(vel) and np.any(np.abs(np.array(vel[:7])) > p["velocity_scale"] * self.ref.velocity + 1e-12):
                fail(f"{i}: forwarded velocities above the limit")
        else:  # clamped or hold: from the measured configuration projected into the tightened limits
            margin = self.node.checker.config.limit_margin
            base = q_current
            if np.all(q_current >= self.ref.lower) and np.all(q_current <= self.ref.upper):
                base = np.clip(q_current, self.ref.lower + margin, self.ref.upper - margin)
            bound = p["velocity_scale"] * self.ref.velocity * p["clamp_dt"]
            if action == "clamped" and np.any(np.abs(q - base) > bound + 1e-9):
                fail(f"{i}: clamped step beyond the rate bound")
            if action == "hold" and not np.allclose(q, base, rtol=0.0, atol=1e-12):
                fail(f"{i}: hold did not send the (projected) measured configuration")


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(12345)
    cloud = clutter_cloud(rng, n_boxes=4, points_per_box=1200)
    checker = FeasibilityChecker()
    checker.update_scene(cloud)
    pools = Pools(rng, checker)
    return cloud, pools, ExhaustiveReference(checker.config, points=cloud)


def _now(node):
    return node.get_clock().now().nanoseconds * 1e-9


def test_fuzz_filter_callbacks(world):
    from morobot.nodes.feasibility_checker import FeasibilityCheckerNode

    cloud, pools, ref = world
    rng = np.random.default_rng(7)
    h = RosHarness()
    try:
        node = h.add(FeasibilityCheckerNode(parameter_overrides=[
            Parameter("scene_update_rate", Parameter.Type.DOUBLE, 50.0)]))
        sent, statuses = [], []
        node._cmd_pub.publish = sent.append
        node._status_pub.publish = statuses.append
        # The cloud holds no robot: apply it before any joint state (no robot filtering).
        node._on_points(xyz_to_pointcloud2(cloud, _now(node), "panda_link0"))
        assert node._scene_voxels > 100
        verifier = Verifier(ref, node)
        q_current = pools.feasible[0].copy()
        stamp = 1000.0
        # The node judges time by its own clock: drive it with the simulated frame times
        # (including the irregular, standing and backward steps the stamps below take).
        clock = [stamp]
        node._now = lambda: clock[0]
        n_frames = 10_000
        for i in range(n_frames):
            if i == n_frames // 2:  # second half: hold policy, no step limit (huge feasible jumps pass)
                assert all(r.successful for r in node.set_parameters([
                    Parameter("filter_policy", Parameter.Type.STRING, "hold"),
                    Parameter("max_command_step", Parameter.Type.DOUBLE, 0.0)]))
            u = rng.random()
            if u < 0.03:
                q_current = rng.uniform(pools.lower, pools.upper)  # maybe infeasible
            elif u < 0.05:
                q_current = np.clip(q_current + rng.normal(0, 0.02, 7), pools.lower - 0.01, pools.upper + 0.01)
            elif u < 0.12:
                q_current = pools.boundary_in[rng.integers(len(pools.boundary_in))].copy()
            now = node._now()
            r = rng.random()
            state_ok = True
            js = make_joint_state(NAMES9, list(q_current) + [0.04, 0.04], [0.0] * 9, [0.0] * 9, now)
            if r < 0.03:
                js = make_joint_state(NAMES9, list(q_current) + [0.04, 0.04], [0.0] * 9, [0.0] * 9, now - 1.0)
                state_ok = False
            elif r < 0.05:
                js.position[int(rng.integers(7))] = float("nan")
                state_ok = False
            node._on_joint_state(js)
            step = float(rng.choice([0.01, 0.02, 0.0, -0.05, 0.7], p=[0.6, 0.25, 0.05, 0.05, 0.05]))
            stamp += step
            clock[0] += step
            msg, malformed, q_cmd, fingers = make_command(rng, q_current, pools, max(stamp, 1.0))
            n_sent, n_status = len(sent), len(statuses)
            node._on_command(msg)
            assert len(statuses) == n_status + 1 and len(sent) - n_sent <= 1
            forwarded = sent[-1] if len(sent) > n_sent else None
            verifier.frame(i, statuses[-1], forwarded, malformed, q_cmd, fingers, q_current, state_ok)
            if forwarded is not None and rng.random() < 0.85:  # the arm follows (noise: the 2 % above)
                q_current = np.array(forwarded.points[0].positions[:7])
        print(f"actions {verifier.actions}, reference checks {verifier.reference_calls}")
        assert not verifier.failures, verifier.failures[:10]
        # every outcome occurred
        for action in ("pass", "clamped", "hold", "none", "rejected"):
            assert verifier.actions.get(action, 0) >= 20, verifier.actions
    finally:
        h.close()


def test_fuzz_filter_real_topics(world):
    from morobot.nodes.feasibility_checker import FeasibilityCheckerNode

    cloud, pools, ref = world
    rng = np.random.default_rng(99)
    h = RosHarness()
    try:
        node = h.add(FeasibilityCheckerNode(parameter_overrides=[
            Parameter("scene_update_rate", Parameter.Type.DOUBLE, 50.0),
            Parameter("use_sim_time", Parameter.Type.BOOL, True)]))
        io = h.node("fuzz_io")
        from rosgraph_msgs.msg import Clock

        clock_pub = io.create_publisher(Clock, "/clock", qos.STATE)
        sim_t = [5000.0]

        def tick(dt=0.0):
            sim_t[0] += dt
            clock_pub.publish(Clock(clock=sec_to_stamp(sim_t[0])))

        out: dict[float, JointTrajectory] = {}
        statuses = []
        io.create_subscription(JointTrajectory, "/joint_command",
                               lambda m: out.__setitem__(round(m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec, 6),
                                                         m),
                               qos.STATE)
        io.create_subscription(DiagnosticArray, "/feasibility/status",
                               lambda m: statuses.append(m) if len(m.status) > 1 else None, qos.STATE)
        from sensor_msgs.msg import JointState, PointCloud2

        js_pub = io.create_publisher(JointState, "/joint_states", qos.STATE)
        pts_pub = io.create_publisher(PointCloud2, "/points", qos.SENSOR)
        raw_pub = io.create_publisher(JointTrajectory, "/joint_command_raw", qos.STATE)
        assert h.spin_until(lambda: raw_pub.get_subscription_count() and pts_pub.get_subscription_count()
                            and io.count_publishers("/joint_command") and io.count_publishers("/feasibility/status"),
                            10.0)
        assert h.spin_until(lambda: abs(_now(node) - sim_t[0]) < 1e-6, 5.0, tick)
        assert h.spin_until(lambda: node._scene_voxels > 100, 5.0,
                            lambda: pts_pub.publish(xyz_to_pointcloud2(cloud, sim_t[0], "panda_link0")))
        q_current = pools.feasible[5].copy()
        verifier = Verifier(ref, node)

        def publish_state():
            js_pub.publish(make_joint_state(NAMES9, list(q_current) + [0.04, 0.04], [0.0] * 9, [0.0] * 9, sim_t[0]))

        publish_state()
        h.spin_for(0.2)
        frames = []
        stamp = 5000.0
        for i in range(300):
            if i == 150:  # second half: the arm stands on the checker's feasibility boundary
                q_current = pools.boundary_in[3].copy()
                assert h.spin_until(lambda: np.array_equal(node._states[-1][1], q_current), 2.0, publish_state)
            # commands independent of each other: 0.3 s apart on the node's (simulated) clock
            tick(0.3)
            assert h.spin_until(lambda: abs(_now(node) - sim_t[0]) < 1e-6, 5.0)
            publish_state()
            h.spin_for(0.01)
            stamp += 0.3
            msg, malformed, q_cmd, fingers = make_command(rng, q_current, pools, stamp)
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int(round((stamp % 1) * 1e9))
            frames.append((malformed, q_cmd, fingers, q_current))
            raw_pub.publish(msg)
            assert h.spin_until(lambda: len(statuses) > i, 5.0)  # paced: the depth-10 queues never overflow
        h.spin_for(0.3)
        assert len(statuses) == 300
        for i, ((malformed, q_cmd, fingers, q_state), status) in enumerate(zip(frames, statuses)):
            # a forwarded command carries the node-clock time of its verdict
            values = {kv.key: kv.value for kv in status.status[0].values}
            key = round(float(values["stamp"]), 6) if "stamp" in values else None
            verifier.frame(i, status, out.get(key), malformed, q_cmd, fingers, q_state, True)
        print(f"actions {verifier.actions}")
        assert not verifier.failures, verifier.failures[:10]
        assert verifier.actions.get("pass", 0) > 20 and verifier.actions.get("rejected", 0) > 20
        assert verifier.actions.get("clamped", 0) + verifier.actions.get("hold", 0) > 20
    finally:
        h.close()
