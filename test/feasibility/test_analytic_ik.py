"""The closed-form IK of arms with the Panda's geometry (morobot.feasibility.analytic_ik)."""

import numpy as np
import pytest

from morobot.feasibility.analytic_ik import AnalyticIk
from morobot.feasibility.ik import DlsIk
from morobot.feasibility.config import IkConfig
from morobot.feasibility.model import ArmModel


@pytest.fixture(scope="module")
def panda():
    return ArmModel("panda")


def _wrapped(a, b):
    return np.abs((a - b + np.pi) % (2 * np.pi) - np.pi)


def test_only_the_panda_geometry_gets_a_closed_form(panda):
    assert AnalyticIk.for_arm(panda, panda.lower, panda.upper) is not None
    ur5 = ArmModel("ur5")
    assert AnalyticIk.for_arm(ur5, ur5.lower, ur5.upper) is None
    assert DlsIk(ur5).analytic is None and DlsIk(panda).analytic is not None
    assert DlsIk(panda, IkConfig(analytic=False)).analytic is None


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
