"""Slippery patches (morobot.sim.patches): the data, the generator, both simulators' contacts, the world YAML."""

import math

import mujoco
import numpy as np
import pytest

from morobot.sim.patches import SLAB_SINK, Patch, contact_heights, footprint, friction_at
from morobot.sim.worlds import World, make_world

RES = 0.1
N = 120


def _flat(patches, start=(-2.0, 0.0, 0.0)):
    return World("t", "flat", 0, np.zeros((N, N)), RES, (-6.0, -6.0), [], start, (3.0, 0.0, 0.0),
                 patches=list(patches))


@pytest.mark.parametrize("kwargs", [dict(friction=0.0), dict(friction=-0.1), dict(friction=math.nan),
                                    dict(friction=2.5), dict(size=(0.0, 1.0)), dict(center=(math.inf, 0.0)),
                                    dict(height=math.nan), dict(yaw=math.inf)])
def test_a_patch_refuses_bad_values(kwargs):
    values = {**dict(center=(0.0, 0.0), size=(1.0, 2.0), yaw=0.0, friction=0.2, height=0.0), **kwargs}
    with pytest.raises(ValueError):
        Patch(**values)


def test_friction_is_the_lowest_patch_there_else_the_default():
    a = Patch((0.0, 0.0), (2.0, 1.0), 0.0, 0.3, 0.0)
    b = Patch((1.0, 0.0), (2.0, 2.0), math.pi / 2, 0.1, 0.0)  # rotated: 2 m along y
    x = np.array([-0.9, 0.5, 1.9, 5.0, 1.0])
    y = np.array([0.0, 0.0, 0.0, 0.0, 0.95])
    np.testing.assert_allclose(friction_at([a, b], x, y, 1.0), [0.3, 0.1, 0.1, 1.0, 0.1])
    assert float(friction_at([], 0.0, 0.0, 0.7)) == 0.7
    assert not a.contains(0.0, 0.6) and b.contains(1.0, 0.95) and not b.contains(2.1, 0.0)


def test_generated_patches_are_flat_apart_and_reproducible():
    w = make_world("rough", 4, size=(16.0, 16.0), amplitude=0.1, n_patches=4, path_bias=0.8)
    again = make_world("rough", 4, size=(16.0, 16.0), amplitude=0.1, n_patches=4, path_bias=0.8)
    assert len(w.patches) == 4 and w.patches == again.patches and np.array_equal(w.heights, again.heights)
    taken = np.zeros(w.shape, dtype=bool)
    for p in w.patches:
        cells = footprint(p, w.origin, w.resolution, w.shape)
        assert not (cells & taken).any()  # no patch overlaps another
        taken |= cells
        assert np.all(w.heights[cells] == np.float32(p.height))  # the geometry says nothing about it
        assert 0.1 <= p.friction <= 0.25 and 1.5 <= min(p.size) and max(p.size) <= 3.0
    # without patches the generator draws what it drew before (stored scenarios keep their worlds)
    plain = make_world("rough", 4, size=(16.0, 16.0), amplitude=0.1, path_bias=0.8)
    assert plain.patches == [] and not np.array_equal(plain.heights, w.heights)
    assert np.array_equal(plain.heights[~taken], w.heights[~taken])


def test_contact_terrain_sinks_only_well_inside_a_patch():
    p = Patch((0.0, 0.0), (2.0, 2.0), 0.3, 0.2, 0.0)
    h = np.zeros((N, N))
    sunk = contact_heights(h, (-6.0, -6.0), RES, [p])
    assert sunk is not h and h.max() == 0.0
    xs = -6.0 + RES * np.arange(N)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    inner = Patch(p.center, (1.8, 1.8), p.yaw, p.friction, p.height).contains(gx, gy)
    assert np.allclose(sunk[inner], -SLAB_SINK) and np.all(sunk[~inner] == 0.0)
    assert contact_heights(h, (-6.0, -6.0), RES, []) is h


def test_a_foot_on_a_patch_meets_its_friction_and_no_obstacle():
    from morobot.locomotion.sim import LeggedAnymalSim

    sim = LeggedAnymalSim(_flat([Patch((-2.0, 0.0), (3.0, 3.0), 0.0, 0.07, 0.0)]))
    sim.advance(0.5)
    d, m = sim.data, sim.model
    patch = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "patch0")
    assert not sim.idx.box[patch] and sim.idx.world[patch]  # slippery ground, not a box to collide with
    feet = [i for i in range(d.ncon) if sim.idx.foot[d.contact[i].geom].any()]
    assert feet and all(patch in d.contact[i].geom for i in feet)  # the feet stand on the patch alone
    assert all(d.contact[i].friction[0] == pytest.approx(0.07) for i in feet)
    off = LeggedAnymalSim(_flat([Patch((2.0, 0.0), (2.0, 2.0), 0.0, 0.07, 0.0)]))
    off.advance(0.5)
    assert all(c.friction[0] == pytest.approx(1.0) for c in off.data.contact[:off.data.ncon])


def test_walking_on_a_patch_like_on_ground_of_that_friction():
    """The patch is the same contact as the terrain: walking on it equals walking on ground of its friction."""
    from morobot.locomotion.sim import LeggedAnymalSim, LeggedSimConfig
    from morobot.sim.legged import LeggedConfig

    def walk(sim):
        sim.advance(0.5)
        x0 = sim.state().position.copy()
        for _ in range(8):
            sim.set_command([0.6, 0.0, 0.0])
            st = sim.advance(0.25)
        return st.position - x0

    on_patch = walk(LeggedAnymalSim(_flat([Patch((0.0, 0.0), (11.0, 11.0), 0.0, 0.25, 0.0)])))
    uniform = walk(LeggedAnymalSim(_flat([]), LeggedSimConfig(legged=LeggedConfig(friction=0.25))))
    normal = walk(LeggedAnymalSim(_flat([])))
    assert np.linalg.norm(on_patch - uniform) < 0.1
    assert normal[0] > 0.5


def test_the_rigid_robot_loses_traction_on_a_patch():
    from morobot.sim.anymal import AnymalSim

    world = _flat([Patch((-2.0, 0.0), (3.0, 3.0), 0.0, 0.1, 0.0)])
    sim = AnymalSim(world)
    sim.advance(0.5)
    slippery = sim.last_output.traction_limit
    sim.reset((3.0, 0.0, 0.0))
    sim.advance(0.5)
    assert sim.last_output.traction_limit > 5.0 * slippery > 0.0


def test_the_world_yaml_of_a_scenario_gives_back_its_patches(tmp_path):
    from morobot.evaluation.scenarios import make_scenario
    from morobot.sim.worlds import load_world

    sc = make_scenario("slippery", 3)
    world = sc.world()
    assert world.patches
    loaded = load_world(sc.write_world_yaml(tmp_path / "w.yaml"))
    assert loaded.patches == world.patches and np.array_equal(loaded.heights, world.heights)
