"""Sim-in-the-loop, end to end: the manipulation graph (``mujoco_sim robot:=panda`` + ``feasibility_checker``
in filter mode, separate processes on DDS) gets a command stream on /joint_command_raw that mixes
feasible paths with out-of-limit, table-colliding, self-colliding, far-jumping and malformed commands.
The simulated robot's /joint_states must never leave the feasible set (inside the joint limits, no
self or table contact), every forwarded /joint_command must be feasible for the exhaustive
reference, and feasible commands must be tracked."""

import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from morobot.feasibility import FeasibilityConfig
from morobot.feasibility.model import ARM_JOINTS
from morobot.feasibility.reference import ExhaustiveReference
from morobot.launcher import GraphProcesses
from morobot.ros import qos
from morobot.ros.conversions import joint_state_to_arrays, make_joint_trajectory

from rosutil import RosHarness

pytestmark = [pytest.mark.slow, pytest.mark.ros]

READY = np.array([0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398])
RATE = 50.0  # Hz, command stream
# rad/s, the fastest joint of a feasible path: well under the checker's rate bound (50 % of the URDF limits,
# 1.09-1.31 rad/s), so late or bunched arrival of commands on a loaded machine does not make the filter
# slow the arm until the path runs more than max_command_step ahead of it (then it only creeps).
PATH_SPEED = 0.3


def _cmd(q, names=ARM_JOINTS):
    return make_joint_trajectory(list(names), [float(v) for v in q], 0.0)  # unstamped: the checker's clock


def test_infeasible_stream_never_leaves_the_feasible_set(tmp_path):
    graph = GraphProcesses("manipulate", {"use_policy": "false"}, log_dir=str(tmp_path / "logs"))
    h = None
    try:
        graph.start()
        h = RosHarness()
        io = h.node("e2e_manipulation_io")
        rec = {"js": [], "fwd": [], "status": []}
        io.create_subscription(JointState, "/joint_states", lambda m: rec["js"].append(m), qos.STATE)
        io.create_subscription(JointTrajectory, "/joint_command", lambda m: rec["fwd"].append(m), qos.STATE)
        io.create_subscription(DiagnosticArray, "/feasibility/status", lambda m: rec["status"].append(m), qos.STATE)
        raw = io.create_publisher(JointTrajectory, "/joint_command_raw", qos.STATE)

        def scene_ready():
            for m in rec["status"][-5:]:
                values = {kv.key: kv.value for kv in m.status[0].values}
                if int(values.get("scene_voxels", "0")) > 0:
                    return True
            return False

        ok = h.spin_until(lambda: rec["js"] and raw.get_subscription_count() > 0 and scene_ready(), 90.0)
        assert ok, f"graph not up: {graph.poll()}; logs in {tmp_path / 'logs'}"
        assert not graph.failed()

        def measured():
            return joint_state_to_arrays(rec["js"][-1], ARM_JOINTS)[0]

        def stream(targets, seconds, until=None):
            """Publish ``targets(t)`` at RATE for ``seconds`` (wall), or until ``until()`` holds."""
            t0 = io.get_clock().now().nanoseconds * 1e-9
            state = {"next": t0}

            def step():
                now = io.get_clock().now().nanoseconds * 1e-9
                if now >= state["next"]:
                    raw.publish(targets(now - t0))
                    state["next"] += 1.0 / RATE
            if until is None:
                h.spin_for(seconds, step)
            else:  # checked after the first second (the arm may rest when the stream starts)
                h.spin_for(1.0, step)
                h.spin_until(until, seconds - 1.0, step)

        def track(goal):
            """Stream a straight path from the measured configuration to ``goal`` at PATH_SPEED, then hold
            it until the arm is there (a budget of the path's duration + 10 s). Returns the start."""
            start = measured()
            duration = max(3.0, float(np.max(np.abs(goal - start))) / PATH_SPEED)
            stream(lambda t: _cmd(start + (goal - start) * min(t / duration, 1.0)), duration + 10.0,
                   until=lambda: np.max(np.abs(measured() - goal)) < 0.02)
            return start

        def stalled():
            """The arm has not moved for 0.5 s: the filter stopped it at the boundary."""
            recent = [m for m in rec["js"][-100:]]
            t = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in recent]
            if len(recent) < 60 or t[-1] - t[0] < 0.5:
                return False
            q = np.array([joint_state_to_arrays(m, ARM_JOINTS)[0] for m in recent[-50:]])
            return bool(np.max(np.ptp(q, axis=0)) < 0.002)

        # A: a feasible path is tracked (joint 1 to 0.5 rad, joint 4 a little, 3 s), then held.
        goal = READY + np.array([0.5, 0.1, 0.0, 0.2, 0.0, -0.1, 0.0])
        track(goal)
        assert np.max(np.abs(measured() - goal)) < 0.02, measured() - goal
        n_js_a = len(rec["js"])

        # B: infeasible stream, 2 s each: beyond the limits, into the table, into itself, far jumps and
        # malformed commands mixed with them.
        rng = np.random.default_rng(0)
        beyond = goal.copy()
        beyond[3] = 0.5  # joint 4 upper limit is -0.07
        table = np.array([0.8, 1.3, 0.0, -0.8, 0.0, 1.6, 0.8])  # down through the table top (beside the block)
        self_hit = np.array([0.0, -0.785, -2.791, -2.356, 0.0, 1.571, 0.785])  # hand into the base
        stream(lambda t: _cmd(beyond), 30.0, until=lambda: measured()[3] > -0.0698 - 0.03)  # clamp creeps there
        stream(lambda t: _cmd(beyond), 1.0)  # and stays
        stopped = {}
        for name, target in (("table", table), ("ready", READY), ("self", self_hit)):  # ready: feasible
            stream(lambda t: _cmd(target), 30.0, until=lambda: len(rec["js"]) > 0 and stalled())
            stream(lambda t: _cmd(target), 0.5)
            stopped[name] = measured()

        def chaos(t):
            kind = rng.integers(5)
            if kind == 0:
                return _cmd(measured() + rng.choice([-1, 1], 7) * rng.uniform(1.0, 3.0, 7))
            if kind == 1:
                bad = list(measured())
                bad[int(rng.integers(7))] = math.nan
                return _cmd(bad)
            if kind == 2:
                return _cmd(measured(), names=[f"joint{i}" for i in range(1, 8)])
            if kind == 3:
                return _cmd(rng.uniform(-4.0, 4.0, 7))
            return _cmd(table)
        stream(chaos, 3.0)
        n_js_b = len(rec["js"])

        # C: feasible commands are tracked again: back to the ready pose along a path.
        start = track(READY)
        last = [m.status[0].message for m in rec["status"][-3:]]
        assert np.max(np.abs(measured() - READY)) < 0.02, (start, measured() - READY, last)
        assert not graph.failed(), graph.poll()
    finally:
        if h is not None:
            h.close()
        codes = graph.stop()
    assert all(code in (0, -2) for code in codes.values()), codes

    ref = ExhaustiveReference(FeasibilityConfig())  # table only: the block and fixture are not modelled here
    qs = np.array([joint_state_to_arrays(m, ARM_JOINTS)[0] for m in rec["js"]])
    assert len(qs) > 1000
    # limits: never beyond the URDF limits (the controller may overshoot into the checker's 10 mrad margin)
    slack = np.minimum(qs - ref.lower, ref.upper - qs).min(axis=1)
    print(f"closest to a URDF limit: {slack.min() * 1000:.1f} mrad")
    assert slack.min() > 0.0, slack.min()
    # no self or table contact (every 4th state; the reference is slow)
    clearances = [(ref.self_clearance(q), ref.scene_clearance(q)) for q in qs[n_js_a::4]]
    self_min = min(c[0] for c in clearances)
    table_min = min(c[1] for c in clearances)
    print(f"smallest self clearance {self_min * 1000:.1f} mm, table clearance {table_min * 1000:.1f} mm")
    assert self_min > 0.0 and table_min > 0.0, (self_min, table_min)
    # the stream did push the arm to its boundaries (otherwise the test proves nothing): joint 4 to its
    # limit margin, the fingers to the table (the arm stopped close to the table target), into itself
    assert slack[n_js_a:n_js_b].min() < 0.05, slack[n_js_a:n_js_b].min()
    assert np.max(np.abs(stopped["table"] - table)) < 0.15, stopped["table"]
    assert ref.self_clearance(stopped["self"]) < 0.03, stopped["self"]
    messages = [m.status[0].message for m in rec["status"]]
    assert any("to the table" in m for m in messages) and any("self collision" in m for m in messages)
    # every forwarded command is feasible for the reference; the infeasible ones were never forwarded
    fwd = np.unique(np.array([m.points[0].positions[:7] for m in rec["fwd"]]), axis=0)
    bad = [q for q in fwd if not ref.static_feasible(q)[0]]
    assert not bad, bad[:3]
    actions = {}
    for m in rec["status"]:
        values = {kv.key: kv.value for kv in m.status[0].values}
        if len(m.status) > 1:
            actions[values["action"]] = actions.get(values["action"], 0) + 1
    assert actions.get("pass", 0) > 100 and actions.get("rejected", 0) > 10
    assert actions.get("clamped", 0) + actions.get("hold", 0) > 100, actions
