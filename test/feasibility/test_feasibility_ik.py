"""The IK itself: seed library, patience, the warm start's null-space preference, whole turns."""

import math

import numpy as np
import pinocchio as pin
import pytest

from morobot.feasibility import FeasibilityChecker, FeasibilityConfig
from morobot.feasibility.config import IkConfig
from morobot.feasibility.ik import DlsIk


@pytest.fixture(scope="module")
def panda():
    return FeasibilityChecker(FeasibilityConfig())


def _valid(checker, n, seed):
    rng, out = np.random.default_rng(seed), []
    while len(out) < n:
        q = rng.uniform(checker.lower, checker.upper)
        if checker.evaluate(q).feasible:
            out.append(q)
    return out


def test_library_starts_are_the_nearest_tool_poses(panda):
    ik = DlsIk(panda.robot, IkConfig(library_size=500), panda.lower, panda.upper)
    q = _valid(panda, 1, 0)[0]
    target = panda.robot.ee_placement(q)
    starts = ik.library_starts(target, 3)
    assert starts.shape == (3, 7) and np.all(starts >= panda.lower) and np.all(starts <= panda.upper)

    def cost(s):
        pose = panda.robot.ee_placement(s)
        angle = np.linalg.norm(pin.log3(pose.rotation.T @ target.rotation))
        return np.linalg.norm(pose.translation - target.translation) + 0.1 * angle

    costs = [cost(s) for s in starts]
    assert costs == sorted(costs)
    others = [cost(s) for s in ik._library_q[:100]]
    assert costs[-1] <= sorted(others)[3] + 1e-9  # nothing among these is nearer than the chosen three
    assert len(ik.library_starts(target, 0)) == 0


def test_library_and_patience_solve_more_cold_poses_in_less_time(panda):
    """A measurement in the bench's sense, small: the shipped IK against no library and no patience."""
    poses = [panda.robot.ee_placement(q) for q in _valid(panda, 60, 1)]
    results = {}
    for name, cfg in (("plain", IkConfig(library_starts=0, patience=0)), ("shipped", IkConfig())):
        ik = DlsIk(panda.robot, cfg, panda.lower, panda.upper)
        sols = [ik.solve(t, panda.robot.ready_pose, (panda.robot.ready_pose,)) for t in poses]
        results[name] = (sum(s.success for s in sols), max(s.iterations for s in sols))
    assert results["shipped"][0] >= results["plain"][0] >= 55
    assert results["shipped"][1] < results["plain"][1]  # the slowest frame needs fewer iterations


def test_nullspace_step_keeps_the_pose_and_moves_towards_mid_range(panda):
    ik = DlsIk(panda.robot, IkConfig(nullspace_step=0.05), panda.lower, panda.upper)
    q = panda.robot.ready_pose.copy()
    q[0] = 2.5  # far from the middle of joint 1
    target = panda.robot.ee_placement(q)
    sol = ik.solve(target, q)
    assert sol.success and sol.iterations == 1
    assert np.abs(sol.q - q).max() <= 0.05 + 1e-9 and abs(sol.q[0]) < 2.5  # a step towards mid-range
    reached = panda.robot.ee_placement(sol.q)
    assert np.linalg.norm(reached.translation - target.translation) <= ik.config.position_tolerance
    # off: the warm start that already fits is returned as it is
    plain = DlsIk(panda.robot, IkConfig(nullspace_step=0.0), panda.lower, panda.upper).solve(target, q)
    assert plain.success and plain.iterations == 0 and np.array_equal(plain.q, q)


def test_streams_stay_on_their_branch(panda):
    """Warm-started along smooth reachable streams, no solution jumps far beyond the stream's own step."""
    ik = DlsIk(panda.robot, IkConfig(), panda.lower, panda.upper)
    ends = _valid(panda, 12, 2)
    worst = 0.0
    for a, b in zip(ends[0::2], ends[1::2]):
        stream = a + np.linspace(0.0, 0.25, 25)[:, None] * (b - a)
        if not all(panda.evaluate(q).feasible for q in stream):
            continue
        prev = stream[0]
        for q in stream[1:]:
            sol = ik.solve(panda.robot.ee_placement(q), prev, (panda.robot.ready_pose,))
            assert sol.success
            worst = max(worst, float(np.abs(sol.q - prev).max()))
            prev = sol.q
    assert 0.0 < worst < 0.5


def test_whole_turns_are_undone_on_multi_turn_joints():
    ur5 = FeasibilityChecker(FeasibilityConfig(robot="ur5"))
    ik = ur5.ik
    assert ik._turn.tolist() == [True, True, False, True, True, True]  # the elbow spans one turn only
    q = ur5.robot.ready_pose.copy()
    q[0] = 1.0
    target = ur5.robot.ee_placement(q)
    # a start a whole turn away on joint 1 converges there; the answer comes back next to the reference
    shifted = ik._nearest_turn(q - 2 * math.pi * np.array([1, 0, 0, 0, 0, 0]), q)
    np.testing.assert_allclose(shifted, q)
    sol = ik.solve(target, q + np.array([0.05, 0, 0, 0, 0, 0]))
    assert sol.success and np.abs(sol.q - q).max() < 0.1
    # a shift that would leave the limits is not made
    far = q.copy()
    far[0] += 4 * math.pi  # two turns away: q[0] + 4 pi is beyond the +2 pi limit
    np.testing.assert_allclose(ik._nearest_turn(q, far), q)
