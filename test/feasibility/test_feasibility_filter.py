"""The arm command filter core (morobot.feasibility.filter), without ROS: motion limits over time,
and the closed loop with the MuJoCo Panda under adversarial command streams."""

import numpy as np
import pytest

from morobot.feasibility import FeasibilityChecker
from morobot.feasibility.filter import CommandFilter, FilterSettings, MotionLimiter
from morobot.feasibility.model import PANDA_ACCELERATION_LIMITS

V = np.array([1.0, 2.0])
A = np.array([10.0, 10.0])


def test_limiter_bounds_velocity_and_acceleration():
    lim = MotionLimiter(V, A, max_dt=0.1)
    q, v, d = lim.limit(np.array([5.0, 5.0]), np.zeros(2), 0.0)  # first: from the arm at rest over max_dt
    assert np.allclose(v, [1.0, 1.0]) and np.allclose(q, [0.1, 0.1])  # acceleration: 10 * 0.1
    assert d == pytest.approx(0.1)
    q, v, _ = lim.limit(np.array([5.0, 5.0]), q, 0.1)
    assert np.allclose(v, [1.0, 2.0])  # joint 0 at its velocity limit, joint 1 accelerating
    assert np.allclose(q, [0.2, 0.3])


def test_limiter_never_passes_the_target_and_takes_no_motion_in_no_time():
    lim = MotionLimiter(V, A, max_dt=0.1)
    q = np.zeros(2)
    for k in range(1, 6):
        q, v, _ = lim.limit(np.array([0.35, 0.35]), q, 0.1 * k)
    assert np.all(q <= 0.35 + 1e-12)
    q2, _, d = lim.limit(np.array([3.0, 3.0]), q, 0.5)  # same instant as the last command
    assert np.array_equal(q2, q) and d == 0.0


def test_limiter_restarts_from_the_arm_after_a_pause_or_a_clock_jump():
    lim = MotionLimiter(V, A, max_dt=0.1)
    lim.limit(np.array([1.0, 1.0]), np.zeros(2), 0.0)
    measured = np.array([0.5, -0.5])
    for t in (5.0, 4.0):  # a long pause, then a clock that went back
        q, v, _ = lim.limit(measured + 1.0, measured, t)
        assert np.all(np.abs(q - measured) <= 10.0 * 0.1 * 0.1 + 1e-12)  # from rest: a * dt * dt
        measured = q


def test_limiter_keeps_within_one_step_of_motion_of_the_arm():
    lim = MotionLimiter(V, A, max_dt=0.1)
    q = np.zeros(2)
    for k in range(20):  # the arm does not follow at all
        q, _, _ = lim.limit(np.array([9.0, 9.0]), np.zeros(2), 0.01 * k)
    assert np.all(np.abs(q) <= V * 0.1 + 1e-12)


@pytest.fixture(scope="module")
def checker():
    return FeasibilityChecker()


def test_filter_output_timing_is_never_negative_and_fingers_are_validated(checker):
    f = CommandFilter(checker, FilterSettings(), PANDA_ACCELERATION_LIMITS)
    q = checker.robot.ready_pose.copy()
    r = f.filter(q + 0.2, None, {}, q, 1.0, time_from_start=-3.0)
    assert r.sends and r.action == "limited" and r.time_from_start >= 0.0
    assert np.max(np.abs(r.q - q)) <= checker.rate.limit.max() * 0.1 + 1e-9
    bad = f.filter(q, None, {"panda_finger_joint1": 0.05}, q, 1.1)
    assert bad.action == "rejected" and not bad.sends and "finger" in bad.reason


def _closed_loop(checker, kind, rate, filtered=True, duration=3.0):
    """Peak joint speed / URDF limit of the MuJoCo Panda under a command stream at ``rate`` Hz."""
    from morobot.sim.panda import PandaSim

    checker.reset()
    f = CommandFilter(checker, FilterSettings(), PANDA_ACCELERATION_LIMITS)
    rng = np.random.default_rng(0)
    peak, sign = np.zeros(7), 1.0
    with PandaSim() as sim:
        sim.reset(seed=0)
        physics = round(1.0 / rate / sim.model.opt.timestep)
        while sim.time < duration:
            q = sim.joint_state().positions[:7]
            if kind == "lead":  # always 0.29 rad ahead of the arm, under the 0.3 rad step check
                cmd = q.copy()
                cmd[0] += 0.29
                cmd[1] += 0.29 * sign
                sign = -1.0 if q[0] > 2.0 else sign
            elif kind == "alternate":  # +-0.25 rad jumps
                sign = -sign
                cmd = q + sign * 0.25
            else:
                cmd = rng.uniform(checker.lower, checker.upper)
            if filtered:
                r = f.filter(cmd, None, {}, q, sim.time)  # the node's clock, never the sender's stamps
                if r.sends:
                    sim.set_joint_command(r.q, r.velocities)
            else:
                sim.set_joint_command(cmd)
            for _ in range(physics):
                sim.advance(sim.model.opt.timestep)
                peak = np.maximum(peak, np.abs(sim.joint_state().velocities[:7]))
    return float(np.max(peak / checker.robot.velocity_limit))


@pytest.mark.parametrize("kind", ["lead", "alternate", "random"])
@pytest.mark.parametrize("rate", [10.0, 50.0, 200.0])
def test_no_joint_exceeds_its_urdf_velocity_limit_through_the_filter(checker, kind, rate):
    peak = _closed_loop(checker, kind, rate)
    print(f"\n[fault] arm stream '{kind}' at {rate:g} Hz through the filter: peak joint speed {peak:.2f} x URDF limit")
    assert peak < 1.0


def test_the_same_streams_unfiltered_do_exceed_it(checker):
    """The streams above are real faults: without the filter the simulated arm overspeeds."""
    assert _closed_loop(checker, "lead", 50.0, filtered=False, duration=1.5) > 1.0
