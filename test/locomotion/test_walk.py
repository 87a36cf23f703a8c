"""The shipped locomotion policy (models/locomotion/anymal_c_policy.pt) walks the legged ANYmal."""

import numpy as np
import pytest

from morobot.locomotion.sim import LeggedAnymalSim
from morobot.sim.worlds import load_world


@pytest.fixture(scope="module")
def sim():
    return LeggedAnymalSim(load_world("flat_small"))


def test_walks_forward_on_flat_ground(sim):
    start = sim.reset().position.copy()
    for _ in range(250):  # 5 s at 0.6 m/s, commands at 50 Hz
        sim.set_command([0.6, 0.0, 0.0])
        st = sim.advance(0.02)
    assert not st.fallen
    assert st.position[0] - start[0] >= 2.0  # 3 m commanded
    assert abs(st.position[1] - start[1]) < 1.0


def test_stands_still_when_the_command_stops(sim):
    sim.reset()
    for _ in range(50):
        sim.set_command([0.6, 0.0, 0.0])
        sim.advance(0.02)
    moved_at = sim.state().position.copy()
    st = sim.advance(3.0)  # no command for 3 s: the 0.5 s timeout makes it zero
    assert not st.fallen
    assert np.linalg.norm(st.position[:2] - moved_at[:2]) < 0.8
    assert np.linalg.norm(st.linear_velocity[:2]) < 0.2
