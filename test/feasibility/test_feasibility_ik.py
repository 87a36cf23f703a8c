"""The IK itself: seed library, patience, the warm start's null-space preference, whole turns."""

import math
from dataclasses import replace

import numpy as np
import pinocchio as pin
import pytest

from morobot.feasibility import FeasibilityChecker, FeasibilityConfig
from morobot.feasibility.config import IkConfig
from morobot.feasibility.ik import ANOTHER_SOLUTION, DlsIk


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
    """A measurement in the bench's sense, small: the numerical solver with its library and patience against
    none (the closed form off: it would answer both)."""
    poses = [panda.robot.ee_placement(q) for q in _valid(panda, 60, 1)]
    results = {}
    for name, cfg in (("plain", IkConfig(library_starts=0, patience=0, analytic=False)),
                      ("shipped", IkConfig(analytic=False))):
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


def test_a_joint_at_its_limit_is_held_and_the_others_reach_the_pose(panda):
    """A warm start with joint 7 on its upper limit and a target turned further about the tool axis: the
    plain projected step spends most of itself against the limit and crawls; holding joint 7 solves it
    with the other six at once."""
    q = panda.robot.ready_pose.copy()
    q[6] = panda.upper[6]
    alone = dict(analytic=False, restarts=0, library_starts=0, random_restarts=0, nullspace_step=0.0,
                 rotation_tolerance=0.005)
    for turn in (0.15, 0.3):
        target = panda.robot.ee_placement(q) * pin.SE3(pin.rpy.rpyToMatrix(0.0, 0.0, turn), np.zeros(3))
        held = DlsIk(panda.robot, IkConfig(**alone), panda.lower, panda.upper).solve(target, q)
        crawled = DlsIk(panda.robot, IkConfig(**alone, hold_limits=False), panda.lower, panda.upper).solve(target, q)
        assert held.success and held.iterations <= 3 and held.q[6] == pytest.approx(panda.upper[6])
        assert crawled.iterations >= 5 * held.iterations


def test_with_a_closed_form_the_warm_start_is_cut_short(panda):
    """Cold poses the warm start cannot reach in ``warm_iterations`` are answered in closed form, so no solve
    runs more DLS iterations than that (the closed form is bounded: no iterations)."""
    poses = [panda.robot.ee_placement(q) for q in _valid(panda, 40, 6)]
    ik = DlsIk(panda.robot, IkConfig(warm_iterations=5), panda.lower, panda.upper)
    sols = [ik.solve(t, panda.robot.ready_pose, (panda.robot.ready_pose,)) for t in poses]
    assert all(s.success for s in sols) and max(s.iterations for s in sols) <= 5
    numeric = DlsIk(panda.robot, IkConfig(analytic=False, warm_iterations=5), panda.lower, panda.upper)
    assert max(numeric.solve(t, panda.robot.ready_pose).iterations for t in poses) > 5  # no cap without it


def test_a_far_target_goes_to_the_closed_form_at_once(panda):
    """A target far from the warm start's pose (a cold start) is solved in closed form without DLS iterations;
    with a large ``warm_reach`` the warm start runs first, as for a stream's next frame."""
    q = _valid(panda, 1, 7)[0]
    target = panda.robot.ee_placement(q)
    direct = DlsIk(panda.robot, IkConfig(), panda.lower, panda.upper).solve(target, panda.robot.ready_pose)
    warm_first = DlsIk(panda.robot, IkConfig(warm_reach=10.0), panda.lower, panda.upper).solve(
        target, panda.robot.ready_pose)
    assert direct.success and direct.iterations == 0
    assert warm_first.success and warm_first.iterations > 0
    near = DlsIk(panda.robot, IkConfig(), panda.lower, panda.upper).solve(target, q + 0.02)
    assert near.success and 0 < near.iterations <= IkConfig().warm_iterations  # a stream's step: DLS


def test_a_warm_start_that_slides_onto_the_neighbouring_wrist_branch_gives_way_to_the_nearer_solution():
    """A UR5 stream frame near the wrist singularity (from ``bench/bench_ik.py --robot ur5 --streams 100
    --seed 1``): the warm start converges on the neighbouring wrist branch, 0.61 rad from the previous frame,
    while the stream's own configuration, 0.46 rad away, reaches the pose too; past ``warm_jump`` the closed
    form's nearest solution is compared and taken."""
    ur5 = FeasibilityChecker(FeasibilityConfig(robot="ur5"))
    q_prev = np.array([0.36, 5.134, -0.869, 1.971, -2.05, -2.621])
    truth = np.array([-0.101, 5.044, -0.877, 2.082, -2.484, -2.712])
    assert ur5.evaluate(q_prev).feasible and ur5.evaluate(truth).feasible
    target = ur5.robot.ee_placement(truth)
    jumps = {}
    for warm_jump in (100.0, IkConfig().warm_jump):
        ik = DlsIk(ur5.robot, IkConfig(warm_jump=warm_jump), ur5.lower, ur5.upper)
        sol = ik.solve(target, q_prev, (ur5.robot.ready_pose,))
        assert sol.success
        jumps[warm_jump] = float(np.max(np.abs(sol.q - q_prev)))
    assert jumps[100.0] > 0.55  # the warm start alone: the other branch
    assert jumps[IkConfig().warm_jump] == pytest.approx(float(np.max(np.abs(truth - q_prev))), abs=1e-3)


def test_the_other_solutions_come_from_the_closed_form_nearest_first():
    """On an arm with a closed form the other solutions are its branches (no DLS attempts), nearest the first
    solution first (Euclidean distance), each more than ``ANOTHER_SOLUTION`` from it and from one another, at most ``alternatives``;
    the UR5's eight give more than one for every pose here."""
    ur5 = FeasibilityChecker(FeasibilityConfig(robot="ur5"))
    ik = DlsIk(ur5.robot, IkConfig(), ur5.lower, ur5.upper)
    for q in _valid(ur5, 5, 11):
        target = ur5.robot.ee_placement(q)
        others = [s.q for s in ik.alternatives(target, q)]
        assert 2 <= len(others) <= IkConfig().alternatives
        assert min(float(np.abs(o - q).max()) for o in others) > ANOTHER_SOLUTION
        distances = [float(np.linalg.norm(o - q)) for o in others]
        assert distances == sorted(distances)
        assert all(float(np.abs(a - b).max()) > ANOTHER_SOLUTION for i, a in enumerate(others) for b in others[:i])
        for o in others:
            assert np.all((o >= ur5.lower) & (o <= ur5.upper))
            reached = ur5.robot.ee_placement(o)
            assert np.linalg.norm(reached.translation - target.translation) <= ik.config.position_tolerance


def test_another_solution_is_taken_when_the_first_collides():
    """The UR5 reaches a pose with its upper arm on the table from the previous frame's branch, and with the
    elbow up from another: the pose is feasible, and the alternatives find the branch that says so."""
    ur5 = FeasibilityChecker(FeasibilityConfig(robot="ur5"))
    q_free = np.array([0.65, 3.79, -0.77, -1.56, -1.73, -3.75])
    q_table = np.array([0.65, -3.23, 0.77, 3.92, 4.55, -3.75])  # a branch of nearly the same tool pose
    assert ur5.evaluate(q_free).feasible and ur5.evaluate(q_table).failed == ("scene_collision",)
    pose = ur5.robot.ee_placement(q_free)
    wxyz = pin.Quaternion(pose.rotation)
    verdicts = {}
    for count in (0, 6):
        checker = FeasibilityChecker(replace(ur5.config, ik=replace(ur5.config.ik, alternatives=count)),
                                     robot=ur5.robot)
        checker.reset(q_table)
        verdicts[count] = checker.check_ee_pose(pose.translation, [wxyz.w, wxyz.x, wxyz.y, wxyz.z], 0.0)
    assert verdicts[0].failed == ("scene_collision",)  # the warm start's own branch
    assert verdicts[6].feasible and "another IK solution" in verdicts[6].checks["ik"].reason
    reached = ur5.robot.ee_placement(verdicts[6].q)
    assert np.linalg.norm(reached.translation - pose.translation) <= ur5.config.ik.position_tolerance
    assert np.abs(verdicts[6].q - q_table).max() > 0.5  # another configuration
