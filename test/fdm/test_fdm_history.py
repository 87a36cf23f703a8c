"""Proprioceptive history (morobot.fdm.history) and command sampling (morobot.fdm.data.commands)."""

import numpy as np
import pytest

from morobot.fdm.data.commands import CommandLimits, sample_command_sequences
from morobot.fdm.history import HISTORY_DIM, ProprioHistory, history_row, stationary_history


def test_row_layout_and_gravity_normalised():
    row = history_row([0.5, 0.1, -0.2], [0.4, 0.0, -0.1], [0.0, 0.0, -9.81])
    assert HISTORY_DIM == 9
    np.testing.assert_allclose(row, [0.5, 0.1, -0.2, 0.4, 0.0, -0.1, 0.0, 0.0, -1.0])


def test_resampling_zero_order_hold_at_fixed_rate():
    hist = ProprioHistory(length=4, dt=0.05)
    # 100 Hz samples whose commanded vx equals the stamp
    for k in range(30):
        t = 0.01 * k
        hist.push(t, [t, 0, 0], [0, 0, 0], [0, 0, -1])
    arr = hist.array()
    assert arr.shape == (4, 9) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[:, 0], [0.14, 0.19, 0.24, 0.29], atol=1e-6)
    assert hist.ready
    assert len(hist) <= 20  # old samples are dropped


def test_irregular_samples_and_padding():
    hist = ProprioHistory(length=5, dt=0.1)
    hist.push(1.0, [1, 0, 0], [0, 0, 0], [0, 0, -1])
    assert not hist.ready
    hist.push(1.25, [2, 0, 0], [0, 0, 0], [0, 0, -1])
    arr = hist.array()
    # grid: 0.85 (before first -> padded with first), 0.95, 1.05, 1.15, 1.25
    np.testing.assert_allclose(arr[:, 0], [1, 1, 1, 1, 2])
    hist.push(1.25, [3, 0, 0], [0, 0, 0], [0, 0, -1])  # same stamp replaces
    assert hist.array()[-1, 0] == 3
    with pytest.raises(ValueError, match="older"):
        hist.push(1.2, [0, 0, 0], [0, 0, 0], [0, 0, -1])
    hist.reset()
    with pytest.raises(ValueError, match="empty"):
        hist.array()


def test_bad_vectors_raise():
    hist = ProprioHistory()
    with pytest.raises(ValueError, match="cmd"):
        hist.push(0.0, [0, 0], [0, 0, 0], [0, 0, -1])
    with pytest.raises(ValueError, match="gravity"):
        hist.push(0.0, [0, 0, 0], [0, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="finite"):
        hist.push(0.0, [0, 0, np.nan], [0, 0, 0], [0, 0, -1])
    with pytest.raises(ValueError, match="length"):
        ProprioHistory(length=0)


def test_stationary_history():
    h = stationary_history([0.3, 0.0, 0.1], [0, 0, -1], 10)
    assert h.shape == (10, 9)
    np.testing.assert_allclose(h[:, :3], h[:, 3:6])


def test_commands_within_limits_and_correlated():
    limits = CommandLimits(vx=1.0, vy=0.5, wz=1.0)
    a = sample_command_sequences(np.random.default_rng(3), 2000, 10, 0.5, limits)
    b = sample_command_sequences(np.random.default_rng(3), 2000, 10, 0.5, limits)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2000, 10, 3)
    assert (np.abs(a) <= limits.array() + 1e-6).all()
    assert a[..., 0].mean() > 0.1  # forward bias
    consecutive = np.abs(np.diff(a, axis=1)).mean()
    shuffled = np.abs(a[:, 1:] - a[np.random.default_rng(0).permutation(2000), :-1]).mean()
    assert consecutive < 0.5 * shuffled
    with pytest.raises(ValueError):
        sample_command_sequences(np.random.default_rng(0), 0, 10, 0.5)
    with pytest.raises(ValueError):
        CommandLimits(vx=-1.0)


def test_legged_rows_carry_the_joints():
    from morobot.fdm.history import LEGGED_EXTRA, ProprioHistory, feature_names, legged_extra
    from morobot.robots import ANYMAL_JOINTS

    names = feature_names("legged")
    assert len(names) == 48 and names[:9] == feature_names("base") and names[9:] == LEGGED_EXTRA
    q, dq, tau = np.arange(12.0), np.arange(12.0) + 100, np.arange(12.0) + 200
    extra = legged_extra([1, 2, 3], [4, 5, 6], q, dq, tau)
    hist = ProprioHistory(3, 0.05, "legged")
    hist.push(0.0, [0.5, 0, 0], [0.4, 0, 0], [0, 0, -1], extra)
    row = hist.array()[-1]
    assert row.shape == (48,) and row[9:12].tolist() == [3, 4, 5]
    assert row[names.index(f"q_{ANYMAL_JOINTS[4]}")] == 4 and row[names.index(f"tau_{ANYMAL_JOINTS[0]}")] == 200
    with pytest.raises(ValueError, match="joint states missing"):
        hist.push(0.1, [0.5, 0, 0], [0.4, 0, 0], [0, 0, -1])
    with pytest.raises(ValueError, match="12 values each"):
        legged_extra([1, 2, 3], [4, 5, 6], q[:11], dq, tau)
    with pytest.raises(ValueError, match="extra of the wrong size"):
        ProprioHistory(3, 0.05).push(0.0, [0, 0, 0], [0, 0, 0], [0, 0, -1], extra)
    with pytest.raises(ValueError, match="unknown history features"):
        ProprioHistory(3, 0.05, "wheeled")


def test_legged_mirror_swaps_left_and_right_legs():
    from morobot.fdm.history import feature_names, mirror_map
    from morobot.sim.anymal import STANDING_POSE
    from morobot.robots import ANYMAL_JOINTS

    names = feature_names("legged")
    columns, signs = mirror_map("legged")
    row = np.zeros(48)
    row[[names.index(f"q_{j}") for j in ANYMAL_JOINTS]] = [STANDING_POSE[j] for j in ANYMAL_JOINTS]
    row[names.index("q_LF_HFE")] += 0.3  # the left front leg swings forward
    row[names.index("vy")], row[names.index("wx")], row[names.index("wy")] = 0.2, 0.1, 0.05
    mirrored = row[columns] * signs
    assert mirrored[names.index("q_RF_HFE")] == pytest.approx(STANDING_POSE["RF_HFE"] + 0.3)  # now the right one
    assert mirrored[names.index("q_LF_HFE")] == pytest.approx(STANDING_POSE["LF_HFE"])
    standing = [mirrored[names.index(f"q_{j}")] for j in ANYMAL_JOINTS if j[1] == "H"]  # hind legs untouched
    assert standing == pytest.approx([STANDING_POSE[j] for j in ANYMAL_JOINTS if j[1] == "H"])  # symmetric pose
    assert (mirrored[names.index("vy")], mirrored[names.index("wx")], mirrored[names.index("wy")]) == (-0.2, -0.1, 0.05)
    np.testing.assert_array_equal((mirrored[columns] * signs), row)  # mirroring twice is the identity
    base_columns, base_signs = mirror_map("base")
    assert base_columns.tolist() == list(range(9)) and np.flatnonzero(base_signs < 0).tolist() == [1, 2, 4, 5, 7]


def test_feature_sets_are_prefixes_and_the_actions_columns():
    from morobot.fdm.history import ACTION_EXTRA, action_extra, feature_columns, feature_names, mirror_map

    assert feature_columns("legged_actions", "base") == 9 and feature_columns("legged_actions", "legged") == 48
    assert feature_columns("legged", "legged") == 48 and len(feature_names("legged_actions")) == 84
    with pytest.raises(ValueError, match="not a prefix"):
        feature_columns("base", "legged")
    q, a1, a2 = np.linspace(-1, 1, 12), np.linspace(0, 1, 12), np.linspace(1, 2, 12)
    cols = action_extra(q, a1, a2)
    assert cols.shape == (len(ACTION_EXTRA),)
    np.testing.assert_allclose(cols[:12], a1 - q)
    np.testing.assert_allclose(cols[12:], np.concatenate((a1, a2)))
    with pytest.raises(ValueError, match="finite"):
        action_extra(q, np.full(12, np.nan), a2)
    with pytest.raises(ValueError, match="12 values"):
        action_extra(q[:11], a1, a2)
    from morobot.fdm.history import extra_columns

    assert extra_columns("base", [0, 0, 0], [0, 0, 0], q, q, q) is None
    row = extra_columns("legged_actions", [1, 2, 3], [4, 5, 6], q, q, q, (a1, a2))
    np.testing.assert_allclose(row[-36:], cols)
    np.testing.assert_allclose(row[:39], extra_columns("legged", [1, 2, 3], [4, 5, 6], q, q, q))
    with pytest.raises(ValueError, match="need the joint targets"):
        extra_columns("legged_actions", [1, 2, 3], [4, 5, 6], q, q, q)
    names = feature_names("legged_actions")
    columns, signs = mirror_map("legged_actions")
    row = np.arange(84, dtype=float) + 1.0
    mirrored = row[columns] * signs
    for prefix in ("qerr_", "a1_", "a2_"):
        assert mirrored[names.index(f"{prefix}LH_KFE")] == row[names.index(f"{prefix}RH_KFE")]
        assert mirrored[names.index(f"{prefix}LH_HAA")] == -row[names.index(f"{prefix}RH_HAA")]
    np.testing.assert_array_equal(mirrored[columns] * signs, row)
    assert sorted(columns.tolist()) == list(range(84))
