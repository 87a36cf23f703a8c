"""The closed-form IK of arms with the Panda's geometry (morobot.feasibility.analytic_ik)."""

import numpy as np
import pytest

from morobot.feasibility.analytic_ik import AnalyticIk
from morobot.feasibility.ik import DlsIk
from morobot.feasibility.config import IkConfig
from morobot.feasibility.model import ArmModel
from morobot.feasibility.ur_ik import UrIk


@pytest.fixture(scope="module")
def panda():
    return ArmModel("panda")


def _wrapped(a, b):
    return np.abs((a - b + np.pi) % (2 * np.pi) - np.pi)


def test_each_geometry_gets_its_own_closed_form(panda):
    ur5 = ArmModel("ur5")
    assert AnalyticIk.for_arm(panda, panda.lower, panda.upper) is not None
    assert AnalyticIk.for_arm(ur5, ur5.lower, ur5.upper) is None
    assert UrIk.for_arm(ur5, ur5.lower, ur5.upper) is not None and UrIk.for_arm(panda, panda.lower, panda.upper) is None
    assert isinstance(DlsIk(ur5).analytic, UrIk) and isinstance(DlsIk(panda).analytic, AnalyticIk)
    assert DlsIk(panda, IkConfig(analytic=False)).analytic is None
    assert DlsIk(ur5, IkConfig(analytic=False)).analytic is None


def test_the_solutions_for_the_true_q7_include_the_configuration(panda):
    ik = AnalyticIk.for_arm(panda, panda.lower, panda.upper)
    rng = np.random.default_rng(3)
    for q in rng.uniform(panda.lower, panda.upper, (100, 7)):
        sols = ik.solutions(panda.ee_placement(q), np.array([q[6]]))
        assert 1 <= len(sols) <= 8
        assert _wrapped(sols, q).max(axis=1).min() < 1e-7
        for s in sols:  # every one reaches the pose
            err = panda.ee_placement(s).actInv(panda.ee_placement(q))
            assert np.linalg.norm(err.translation) < 1e-9 and np.linalg.norm(err.rotation - np.eye(3)) < 1e-9


def test_solve_picks_the_solution_nearest_the_reference_inside_the_limits(panda):
    """The reference's own configuration is found; a nudged warm start stays on its branch (the DLS warm
    start runs first: near a fold of the self-motion in q7 the sweep alone can miss the branch)."""
    lower, upper = panda.lower + 0.05, panda.upper - 0.05
    ik = AnalyticIk.for_arm(panda, lower, upper)
    full = DlsIk(panda, IkConfig(), lower, upper)
    rng = np.random.default_rng(4)
    for q in rng.uniform(lower, upper, (60, 7)):
        target = panda.ee_placement(q)
        found, pos_err, rot_err = ik.solve(target, q)
        assert np.abs(found - q).max() < 0.02 and pos_err < 1e-4 and rot_err < 1e-3  # the reference itself
        assert np.all(found >= lower) and np.all(found <= upper)
        nudged = full.solve(target, q + 0.03)
        assert nudged.success and np.abs(nudged.q - q).max() < 0.2  # the same branch, not another one
    assert ik.solve(panda.ee_placement(np.zeros(7)) * __import__("pinocchio").SE3(np.eye(3), np.array([0, 0, 2.0])),
                    np.zeros(7)) is None  # beyond reach: no solution, no exception


def test_ik_solves_every_reachable_pose_from_a_cold_start(panda):
    """Poses the numerical solver alone misses from the ready pose are found in closed form."""
    ik, numeric = DlsIk(panda), DlsIk(panda, IkConfig(analytic=False, library_starts=0, random_restarts=0))
    rng = np.random.default_rng(5)
    solved = numeric_solved = 0
    for q in rng.uniform(panda.lower, panda.upper, (60, 7)):
        target = panda.ee_placement(q)
        solved += ik.solve(target, panda.ready_pose).success
        numeric_solved += numeric.solve(target, panda.ready_pose).success
    assert solved == 60 and numeric_solved < 60


def test_the_ur_closed_form_finds_the_configuration_among_its_solutions():
    """Up to 8 exact solutions per pose (two shoulders, two wrists, two elbows); the configuration that made
    the pose is one of them, up to whole turns, and every one reaches the pose."""
    ur5 = ArmModel("ur5")
    ik = UrIk.for_arm(ur5, ur5.lower, ur5.upper)
    rng = np.random.default_rng(6)
    for q in rng.uniform(ur5.lower, ur5.upper, (100, 6)):
        target = ur5.ee_placement(q)
        sols = ik.solutions(target)
        assert 1 <= len(sols) <= 8 and len(sols) % 2 == 0
        assert _wrapped(sols, q).max(axis=1).min() < 1e-7
        for s in sols:
            err = ur5.ee_placement(s).actInv(target)
            assert np.linalg.norm(err.translation) < 1e-9 and np.linalg.norm(err.rotation - np.eye(3)) < 1e-9
        found, pos_err, _ = ik.solve(target, q)  # nearest the configuration itself: that one, same turn
        assert np.abs(found - q).max() < 1e-6 and pos_err < 1e-9
    far = ur5.ee_placement(ur5.ready_pose) * __import__("pinocchio").SE3(np.eye(3), np.array([0, 0, 3.0]))
    assert len(ik.solutions(far)) == 0 and ik.solve(far, ur5.ready_pose) is None
    wrist = ur5.ready_pose.copy()
    wrist[4] = 0.0  # joint 6's axis along the shoulder axes: no unique decomposition, the DLS takes over
    assert len(ik.solutions(ur5.ee_placement(wrist))) == 0
