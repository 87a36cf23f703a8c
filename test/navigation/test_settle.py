"""The settle rule: when a dropped robot has stood still long enough for the goal to be sent."""

import math

import numpy as np
import pytest

from morobot.navigation.settle import SettleGate, SettleRule

STILL = (np.zeros(3), np.zeros(3))


def _feed(gate, t0, t1, linear, angular, dt=0.02):
    opened = False
    for t in np.arange(t0, t1 - 1e-9, dt):
        opened = gate.update(float(t), linear, angular)
    return opened


def test_opens_after_holding_still():
    gate = SettleGate(SettleRule(speed=0.05, rate=0.15, hold=0.5, limit=2.0))
    assert not _feed(gate, 0.0, 0.3, [0.4, 0.0, -1.0], [0.0, 0.5, 0.0])  # landing
    assert not _feed(gate, 0.3, 0.7, [0.01, 0.0, 0.0], [0.0, 0.0, 0.05])  # still, but not long enough
    assert gate.settled is None and gate.opened_at is None and gate.waited is None
    assert _feed(gate, 0.7, 1.0, [0.01, 0.0, 0.0], [0.0, 0.0, 0.05])
    assert gate.settled is True and gate.opened_at == pytest.approx(0.8) and gate.waited == pytest.approx(0.8)
    assert gate.update(5.0, [9.0, 9.0, 9.0], [9.0, 9.0, 9.0])  # open stays open; nothing changes
    assert gate.opened_at == pytest.approx(0.8)


def test_a_break_restarts_the_hold_and_the_limit_opens_it_unsettled():
    gate = SettleGate(SettleRule(hold=0.5, limit=2.0))
    for t in np.arange(0.0, 1.9, 0.02):  # still for 0.4 s, then a step: never 0.5 s in a row
        moving = (round(t / 0.02) % 25) == 24
        assert not gate.update(float(t), [0.2 if moving else 0.0, 0, 0], [0, 0, 0])
    assert _feed(gate, 1.9, 2.1, [0.2, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert gate.settled is False and gate.waited == pytest.approx(2.0)


def test_turning_counts_as_moving_and_non_finite_is_never_still():
    gate = SettleGate(SettleRule(hold=0.2, limit=1.0))
    assert not _feed(gate, 0.0, 0.6, [0.0, 0.0, 0.0], [0.0, 0.0, 0.3])  # turning on the spot
    assert not _feed(gate, 0.6, 0.9, [math.nan, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert not gate.update(math.nan, *STILL)  # a time that is not a number is ignored
    assert gate.settled is None
    assert _feed(gate, 0.9, 1.1, *STILL) and gate.settled is False  # the limit, counted from the first state


def test_zero_hold_opens_at_the_first_still_state():
    gate = SettleGate(SettleRule(hold=0.0, limit=1.0))
    assert gate.update(3.0, *STILL) and gate.settled is True and gate.waited == 0.0


@pytest.mark.parametrize("kwargs, match", [({"speed": -0.1}, "speed"), ({"rate": math.inf}, "rate"),
                                           ({"hold": 3.0, "limit": 2.0}, "longer than its limit"),
                                           ({"limit": 100.0}, "limit")])
def test_invalid_rules_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SettleGate(SettleRule(**kwargs))
