"""Demo-replay study (morobot.evaluation.feasibility_replay, `morobot eval-feasibility`): demonstrations, the
feedback corrections and the replay on the simulated Panda, on a few short demos."""

import json

import numpy as np
import pytest

from morobot.feasibility import FeasibilityChecker, Level
from morobot.evaluation.feasibility_replay import (HAZARDS, Replayer, StudyConfig, check_demo, make_demo, markdown_table,
                                        run_study)


@pytest.fixture(scope="module")
def checker():
    c = FeasibilityChecker()
    replayer = Replayer(StudyConfig())
    try:
        c.update_scene(replayer.scene_points())
    finally:
        replayer.close()
    return c


def test_demos_are_smooth_and_seeded(checker):
    cfg = StudyConfig()
    for i, hazard in enumerate(HAZARDS):
        demo = make_demo(i, hazard, cfg, checker)
        again = make_demo(i, hazard, cfg, checker)
        assert np.array_equal(demo.positions, again.positions)
        assert np.allclose(np.linalg.norm(demo.quaternions, axis=1), 1.0)
        speed = np.linalg.norm(np.diff(demo.positions, axis=0), axis=1) / cfg.dt
        assert speed.max() < 2.0 * cfg.speed[1] * 1.9  # minimum-jerk peaks plus tremor
        assert np.allclose(np.diff(demo.stamps), cfg.dt)
    table = make_demo(3, "table", cfg, checker)
    assert table.positions[:, 2].min() < 0.0  # dips into the table top
    far = make_demo(1, "workspace", cfg, checker)
    assert np.linalg.norm(far.positions - [0, 0, 0.333], axis=1).max() > 1.0


@pytest.mark.parametrize("variant", ["hold", "clamp"])
def test_feedback_removes_infeasible_frames(checker, variant):
    demo = make_demo(3, "table", StudyConfig(), checker)
    raw = check_demo(demo, checker, "raw")
    fixed = check_demo(demo, checker, variant)
    assert sum(level is Level.INFEASIBLE for level in raw.levels) > 10
    assert not any(level is Level.INFEASIBLE for level in fixed.levels)
    assert fixed.corrected.sum() >= sum(level is Level.INFEASIBLE for level in raw.levels) // 2
    assert fixed.positions[:, 2].min() > -0.005  # the corrected recording stays above the table
    assert np.all(np.abs(np.diff(fixed.q, axis=0)) <= checker.rate.limit * 0.05 * 4 + 1e-9)  # no jumps


def test_study_replays_and_reports(tmp_path):
    cfg = StudyConfig(num_demos=4, seed=3)
    results = run_study(cfg, variants=("raw", "clamp"))
    assert len(results) == 8
    by = {(r.demo, r.variant): r for r in results}
    table_raw, table_fix = by[(3, "raw")], by[(3, "clamp")]
    assert table_raw.collision and not table_raw.success and table_raw.infeasible > 0
    assert table_fix.infeasible == 0 and not table_fix.collision
    assert by[(0, "raw")].success and by[(0, "raw")].infeasible == 0  # a nominal demonstration
    assert by[(1, "raw")].max_position_error > 0.1  # out of reach: the robot cannot follow
    text = markdown_table(results, cfg)
    assert "without feedback" in text and "with feedback: clamp" in text and "| table | 1 |" in text

    from morobot.cli import main

    out = tmp_path / "study"
    assert main(["eval-feasibility", "-n", "1", "--variants", "raw", "--out", str(out), "--quiet"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["results"][0]["hazard"] == "nominal" and data["aggregate"]["raw"]["demos"] == 1
    assert "replay success" in (out / "summary.md").read_text()
