"""AUROC and evaluation helpers (morobot.fdm.evaluation.evaluate)."""

import numpy as np
import pytest

from morobot.fdm.evaluation.evaluate import (
    _table, auroc, change_interval, command_ranking, error_by_outcome, horizon_steps, metrics,
)


def pairwise_auroc(scores, labels):
    """Definition: P(score of a random positive > score of a random negative), ties count half."""
    pos = scores[labels == 1]
    neg = scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_matches_pairwise_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(500) < 0.3).astype(int)
    scores = np.round(rng.random(500) + 0.4 * labels, 1)  # coarse rounding: many ties
    assert auroc(scores, labels) == pytest.approx(pairwise_auroc(scores, labels), abs=1e-12)


def test_auroc_known_values():
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert auroc([0.5, 0.5, 0.5], [0, 1, 0]) == 0.5
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert np.isnan(auroc([0.1, 0.2], [1, 1]))


def test_auroc_rejects_bad_input():
    with pytest.raises(ValueError, match="same size"):
        auroc([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="0 or 1"):
        auroc([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        auroc([np.nan, 0.2], [1, 0])


def test_horizon_steps_and_metrics():
    assert horizon_steps(0.5, 10) == {"1s": 1, "2s": 3, "3s": 5, "4s": 7, "5s": 9}
    assert horizon_steps(0.5, 4) == {"1s": 1, "2s": 3}
    assert horizon_steps(0.3, 10) == {"3s": 9}
    target = np.zeros((2, 4, 3))
    target[:, :, 0] = np.arange(1, 5) * 0.5
    pred = {
        "poses": target + np.array([0.0, 0.3, 0.1]),
        "collision": np.array([[0.1, 0.2, 0.9, 0.9], [0.0, 0.1, 0.1, 0.2]]),
        "uncertainty": np.zeros((2, 4)),
    }
    failed = np.array([[0, 0, 1, 1], [0, 0, 0, 0]])
    m = metrics(pred, target, failed, 0.5)
    assert m["position_error_1s"] == pytest.approx(0.3) and m["position_error_2s"] == pytest.approx(0.3)
    assert m["heading_error_2s"] == pytest.approx(0.1)
    assert m["collision_auroc"] == 1.0 and m["failure_rate"] == 0.5


def test_command_ranking_counts_pairs_within_starts_only():
    # start 0: one failure (0.9) against two survivors (0.2, 0.9): 1 + 0.5 of 2; start 1: none failed;
    # start 2: the failure ranked below the survivor; start 3 alone
    risk = [0.9, 0.2, 0.9, 0.5, 0.6, 0.1, 0.3, 0.99]
    failed = [1, 0, 0, 0, 0, 1, 0, 1]
    groups = [0, 0, 0, 1, 1, 2, 2, 3]
    ranking, pairs = command_ranking(risk, failed, groups)
    assert pairs == 3 and ranking == pytest.approx(1.5 / 3)
    assert np.isnan(command_ranking([0.1, 0.2], [1, 0], [0, 1])[0])
    with pytest.raises(ValueError):
        command_ranking([0.1], [1, 0], [0, 0])


def test_metrics_report_command_ranking_only_with_pairs():
    poses = np.zeros((4, 10, 3))
    failed = np.zeros((4, 10), dtype=np.uint8)
    failed[0, 5:] = 1
    pred = {"poses": poses, "collision": np.linspace(0.9, 0.1, 4)[:, None].repeat(10, 1),
            "uncertainty": np.zeros((4, 10))}
    out = metrics(pred, poses, failed, 0.5, np.array([0, 0, 1, 2]))
    assert out["command_ranking"] == 1.0 and out["ranking_pairs"] == 1
    assert "command_ranking" not in metrics(pred, poses, failed, 0.5, np.arange(4))


def test_error_by_outcome_splits_the_final_error():
    out = error_by_outcome(np.array([0.1, 0.3, 2.0, 1.0]), np.array([0, 0, 1, 1]))
    assert out["final_error_ok"] == pytest.approx(0.2) and out["final_error_failed"] == pytest.approx(1.5)
    assert out["failed_error_share"] == pytest.approx(3.0 / 3.4)
    none_failed = error_by_outcome(np.array([0.1, 0.3]), np.array([0, 0]))
    assert np.isnan(none_failed["final_error_failed"]) and none_failed["failed_error_share"] == 0.0
    assert np.isnan(error_by_outcome(np.zeros(2), np.array([1, 0]))["failed_error_share"])


def test_metrics_and_table_carry_the_split():
    target = np.zeros((3, 4, 3))
    pred = {"poses": target.copy(), "collision": np.zeros((3, 4)), "uncertainty": np.zeros((3, 4))}
    pred["poses"][:, -1, 0] = [0.2, 0.4, 1.2]  # only the last step is off
    failed = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]])
    m = metrics(pred, target, failed, 0.5)
    assert m["final_error_ok"] == pytest.approx(0.3) and m["final_error_failed"] == pytest.approx(1.2)
    assert m["failed_error_share"] == pytest.approx(1.2 / 1.8)
    table = _table({"overall": {"fdm": m}, "by_kind": {"flat": {"fdm": m}}})
    assert "| all | fdm | 0.333 | 0.300 | 1.200 | 0.667 |" in table
    assert "| flat | fdm | 0.333 | 0.300 | 1.200 | 0.667 |" in table


def test_change_interval_resamples_whole_worlds():
    base = np.ones(6)
    same = change_interval(0.5 * base, base, np.array([0, 0, 1, 1, 2, 2]))
    assert same["vs_baseline_final"] == pytest.approx(-0.5)
    assert same["vs_baseline_final_lo"] == pytest.approx(-0.5) and same["vs_baseline_final_hi"] == pytest.approx(-0.5)
    # one world halves the error, the other doubles it: the interval spans both, the point is the pooled change
    out = change_interval(np.array([0.5, 0.5, 2.0, 2.0]), np.ones(4), np.array([3, 3, 7, 7]))
    assert out["vs_baseline_final"] == pytest.approx(0.25)
    assert out["vs_baseline_final_lo"] == pytest.approx(-0.5) and out["vs_baseline_final_hi"] == pytest.approx(1.0)
    assert change_interval(np.ones(2), np.zeros(2), np.array([0, 1])) == {}
