"""Correctness against the slow exhaustive reference: the checker never accepts an infeasible
configuration, pose target or command stream (the 10k+ version is bench/bench_feasibility.py)."""

import numpy as np
import pytest

from morobot.feasibility.checker import FeasibilityChecker
from morobot.feasibility.config import FeasibilityConfig
from morobot.feasibility.model import PandaModel
from morobot.feasibility.reference import ExhaustiveReference
from morobot.feasibility.validation import (boundary_configurations, clutter_cloud, compare_pose_targets,
                                            compare_rate_streams, compare_static, pose_stream)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(2026)
    cloud = clutter_cloud(rng)
    config = FeasibilityConfig()
    checker = FeasibilityChecker(config, PandaModel())
    assert checker.update_scene(cloud) > 100
    return rng, checker, ExhaustiveReference(config, cloud)


def test_static_random_and_boundary_configurations(setup):
    rng, checker, ref = setup
    uniform = rng.uniform(ref.lower, ref.upper, (1000, 7))
    boundary = boundary_configurations(rng, ref, n_pairs=60, per_pair=8)
    report = compare_static(checker, ref, np.vstack([uniform, boundary]))
    assert report.frames == 1480
    assert report.false_accepts == [], f"accepted infeasible configurations: {report.false_accepts[:10]}"
    # The comparison is meaningful: every kind of infeasibility occurs, and most feasible
    # configurations are accepted (the voxels make the checker only slightly conservative).
    assert {"joint_limits", "self_collision", "scene_collision"} <= set(report.reference_failures)
    assert report.reference_feasible > 300
    assert len(report.false_rejects) < 0.15 * report.reference_feasible


def test_pose_targets_never_accept_infeasible(setup):
    rng, checker, ref = setup
    frames = pose_stream(rng, ref, n_goals=20)
    report = compare_pose_targets(checker, ref, frames)
    assert report.false_accepts == [], f"accepted infeasible targets: {report.false_accepts[:10]}"
    assert report.accepted > 200 and report.frames - report.accepted > 200


def test_rate_rule_matches_reference_exactly(setup):
    rng, checker, ref = setup
    report = compare_rate_streams(checker, ref, rng, 3000)
    assert report.false_accepts == [] and report.false_rejects == []
    assert 50 < report.frames - report.reference_feasible < report.frames - 50
