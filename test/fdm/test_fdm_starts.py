"""Samples that share a start (morobot.fdm.data.starts): start ids and pairs of opposite outcomes."""

import numpy as np
import pytest

from morobot.fdm.data.starts import outcome_pairs, start_groups


def test_start_groups_join_samples_of_one_moment_of_one_world():
    class Data:
        world_index = np.array([0, 0, 0, 1, 0])
        arrays = {"history": np.array([[1.0], [1.0], [2.0], [1.0], [1.0]]),
                  "start_pose": np.zeros((5, 3)), "start_z": np.array([0.5, 0.5, 0.5, 0.5, 0.6])}

        def __len__(self):
            return 5

    g = start_groups(Data())
    assert g[0] == g[1] and len(set(g.tolist())) == 4
    assert g.tolist() == [0, 0, 1, 2, 3]  # numbered in order of first appearance


def test_outcome_pairs_are_every_failure_against_every_success_of_one_start():
    failed = [1, 0, 0, 0, 0, 1, 0, 1, 1, 0]
    groups = [0, 0, 0, 1, 1, 2, 2, 3, 4, 4]  # 1: no failure, 3: alone
    pairs = outcome_pairs(failed, groups)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (0, 2), (5, 6), (8, 9)]
    assert pairs.dtype == np.int64
    assert outcome_pairs([1, 0], [0, 1]).shape == (0, 2)
    assert outcome_pairs([], []).shape == (0, 2)
    with pytest.raises(ValueError, match="same size"):
        outcome_pairs([1, 0], [0])
