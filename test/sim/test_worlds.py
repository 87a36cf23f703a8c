"""Tests for morobot.sim.worlds: procedural generation, reachability, queries, loading, plotting."""

import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from morobot.sim.worlds import (  # noqa: E402
    KINDS,
    Box,
    World,
    free_space,
    is_reachable,
    load_world,
    make_world,
    plot_world,
)

NAMED = ("flat_small", "rough_obstacles", "slopes", "stairs", "cluttered", "mixed")


def _plain(heights, boxes=(), res=0.1, start=(-1.0, 0.0, 0.0), goal=(1.0, 0.0, 0.0)):
    n = heights.shape[0]
    origin = (-0.5 * (n - 1) * res, -0.5 * (heights.shape[1] - 1) * res)
    return World("t", "flat", 0, heights, res, origin, list(boxes), start, goal)


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_per_seed_and_different_across_seeds(kind):
    a = make_world(kind, 4, size=(12.0, 12.0))
    b = make_world(kind, 4, size=(12.0, 12.0))
    c = make_world(kind, 5, size=(12.0, 12.0))
    assert a.heights.dtype == np.float32 and a.heights.shape == (120, 120)
    np.testing.assert_array_equal(a.heights, b.heights)
    assert a.boxes == b.boxes and a.start == b.start and a.goal == b.goal
    if kind == "flat":
        assert a.start != c.start  # only start/goal vary on flat ground
    else:
        assert not np.array_equal(a.heights, c.heights) or a.boxes != c.boxes


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_generated_worlds_are_reachable(kind, seed):
    world = make_world(kind, seed)
    assert is_reachable(world)
    free = free_space(world)
    assert free[world.cell_of(*world.start[:2])] and free[world.cell_of(*world.goal[:2])]
    assert world.clearance(*world.start[:2]) >= world.limits.robot_radius
    assert world.clearance(*world.goal[:2]) >= world.limits.robot_radius


def test_feature_kinds_produce_their_features():
    rough = make_world("rough", 0, size=(10.0, 10.0), amplitude=0.12)
    assert 0.15 < np.ptp(rough.heights) <= 0.24 + 1e-6
    steps = make_world("steps", 0)
    diffs = np.abs(np.diff(steps.heights, axis=0))
    assert np.any((diffs > 0.08) & (diffs < 0.16)), "climbable risers expected"
    assert np.any(diffs > 0.34), "unclimbable platform edges expected"
    slopes = make_world("slopes", 0)
    gx, gy = np.gradient(slopes.heights.astype(float), slopes.resolution)
    slope_deg = np.degrees(np.arctan(np.hypot(gx, gy)))
    assert np.ptp(slopes.heights) > 0.3
    assert np.mean((slope_deg > 10.0) & (slope_deg < 30.0)) > 0.02, "walkable ramps/hills expected"
    cluttered = make_world("cluttered", 0)
    assert len(cluttered.boxes) >= 20
    for box in cluttered.boxes:  # boxes stand on the terrain
        ground = cluttered.height_at(box.center[0], box.center[1])
        assert box.center[2] - 0.5 * box.size[2] < ground < box.top


def test_closed_sides_leave_no_cliff():
    """closed_sides: ramps and staircases rise on all four sides; open ones keep their cliff sides."""
    def largest_jump(w):
        return max(np.abs(np.diff(w.heights, axis=0)).max(), np.abs(np.diff(w.heights, axis=1)).max())

    for seed in range(3):
        ramps = dict(n_ramps=3, max_slope_deg=30.0, keepout=0.6, path_bias=0.0)
        closed = make_world("flat", seed, size=(12.0, 12.0), closed_sides=True, **ramps)
        assert np.ptp(closed.heights) > 0.3 and largest_jump(closed) < 0.1 * math.tan(math.radians(31.0))
        assert largest_jump(make_world("flat", seed, size=(12.0, 12.0), **ramps)) > 0.25  # cliff sides
        stairs = make_world("flat", seed, size=(12.0, 12.0), n_stairs=6, step_rise=(0.16, 0.18), keepout=0.6,
                            path_bias=0.0, closed_sides=True)
        assert 0.15 < largest_jump(stairs) <= 0.18 + 1e-9  # every edge is one riser


def test_unreachable_goal_is_repaired_or_rejected():
    # a generated wall field can be repaired by clearing a corridor, fixed boxes cannot
    blocked = [{"center": [0.0, 0.0], "size": [0.3, 7.9, 1.0]}]
    with pytest.raises(ValueError, match="unreachable"):
        make_world("flat", 0, size=(8.0, 8.0), start=(-2.5, 0.0), goal=(2.5, 0.0), boxes=blocked)
    dense = make_world("boxes", 3, size=(10.0, 10.0), n_boxes=60, n_walls=20, path_bias=1.0)
    assert is_reachable(dense)


def test_named_worlds_load():
    for name in NAMED:
        world = load_world(name)
        assert world.name == name
        assert is_reachable(world)
    flat = load_world("flat_small")
    assert flat.shape == (100, 100)
    assert math.dist(flat.start[:2], flat.goal[:2]) == pytest.approx(6.0, abs=0.5)
    demo = load_world("rough_obstacles")
    assert 10.0 <= math.dist(demo.start[:2], demo.goal[:2]) <= 12.0
    assert np.ptp(demo.heights) > 0.1
    # obstacles block the straight line from start to goal
    line = np.linspace(demo.start[:2], demo.goal[:2], 200)
    assert demo.clearance(line[:, 0], line[:, 1]).min() == 0.0


def test_load_world_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_world("no_such_world")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: rough\nseed: 1\ncolour: red\n")
    with pytest.raises(ValueError, match="unknown keys"):
        load_world(bad)
    missing = tmp_path / "missing.yaml"
    missing.write_text("seed: 1\n")
    with pytest.raises(ValueError, match="kind"):
        load_world(str(missing))
    ok = tmp_path / "mine.yaml"
    ok.write_text("kind: flat\nseed: 2\nsize: [6, 6]\nstart: [-1.5, 0]\ngoal: [1.5, 0.5]\n")
    world = load_world(ok)
    assert world.name == "mine" and world.goal[:2] == (1.5, 0.5)


def test_make_world_rejects_bad_input():
    with pytest.raises(ValueError, match="kind"):
        make_world("lava", 0)
    with pytest.raises(ValueError, match="unknown world parameters"):
        make_world("rough", 0, roughness=0.1)
    with pytest.raises(ValueError, match="size"):
        make_world("flat", 0, size=(2.0, 2.0))
    with pytest.raises(ValueError, match="resolution"):
        make_world("flat", 0, resolution=float("nan"))
    with pytest.raises(ValueError, match="inside"):
        make_world("flat", 0, size=(10.0, 10.0), start=(-4.9, 0.0))
    with pytest.raises(ValueError):
        World("t", "flat", 0, np.full((4, 4), np.nan))
    with pytest.raises(ValueError):
        World("t", "flat", 0, np.zeros(5))
    with pytest.raises(ValueError):
        Box((0.0, 0.0, 0.0), (1.0, -1.0, 1.0))


def test_height_at_bilinear_and_triangle():
    res = 0.1
    n = 30
    xs = -0.5 * (n - 1) * res + res * np.arange(n)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    plane = 0.3 * gx - 0.2 * gy + 0.5
    world = _plain(plane)
    rng = np.random.default_rng(0)
    px, py = rng.uniform(xs[0], xs[-1], (2, 50))
    for interp in ("bilinear", "triangle"):  # both are exact on a plane
        np.testing.assert_allclose(world.height_at(px, py, interp), 0.3 * px - 0.2 * py + 0.5, atol=1e-5)
    # exact at cell centres, NaN outside, broadcasting
    np.testing.assert_allclose(world.height_at(gx, gy), plane, atol=1e-6)
    assert np.isnan(world.height_at(xs[-1] + 0.01, 0.0))
    assert world.height_at(np.zeros((3, 4)), 0.0).shape == (3, 4)
    # bilinear on a saddle: midpoint of a cell is the mean of its corners
    saddle = np.zeros((2, 2))
    saddle[1, 1] = 1.0
    w2 = _plain(saddle, start=(0, 0, 0), goal=(0, 0, 0))
    cx, cy = w2.origin[0] + 0.05, w2.origin[1] + 0.05
    assert float(w2.height_at(cx, cy)) == pytest.approx(0.25)
    assert float(w2.height_at(cx, cy, "triangle")) == pytest.approx(0.5)  # on the diagonal
    with pytest.raises(ValueError):
        world.height_at(np.nan, 0.0)
    with pytest.raises(ValueError):
        world.height_at(0.0, 0.0, interp="cubic")


def test_elevation_obstacles_and_clearance():
    n = 60
    h = np.zeros((n, n))
    xs = -0.5 * (n - 1) * 0.1 + 0.1 * np.arange(n)
    h[xs > 1.5, :] = 0.4  # an unclimbable step edge between x = 1.45 and 1.55
    h[xs < -1.5, :] = 0.1  # a climbable one
    wall = Box((0.0, 1.0, 0.5), (0.2, 1.0, 1.0), 0.0)
    low = Box((0.0, -1.5, 0.05), (0.5, 0.5, 0.1), 0.0)
    world = _plain(h, [wall, low])
    assert float(world.elevation_at(0.0, 1.0)) == pytest.approx(1.0)
    assert float(world.elevation_at(0.0, -1.5)) == pytest.approx(0.1)
    assert float(world.elevation_at(0.0, 0.0)) == 0.0
    assert world.obstacle_boxes() == [wall]  # the low box is climbable
    mask = world.obstacle_mask()
    i_edge = int(np.argmin(np.abs(xs - 1.5)))
    assert mask[i_edge, 5] and not mask[5, 5]
    assert not mask[int(np.argmin(np.abs(xs + 1.5))), 5]
    # clearance: exact to the wall footprint, within a cell to the terrain edge
    assert float(world.clearance(0.5, 1.0)) == pytest.approx(0.4)
    assert float(world.clearance(0.0, 1.2)) == 0.0
    # the edge cells (x = 1.45, 1.55) plus the smoothed-slope band around them are obstacles
    near, far = float(world.clearance(1.0, -2.0)), float(world.clearance(0.5, -2.0))
    assert 0.2 <= near <= 0.4 + 1e-9
    assert far == pytest.approx(near + 0.5, abs=0.1)  # terrain clearance is resolved to one cell
    grid = world.clearance_grid()
    assert grid.shape == world.shape and grid.min() == 0.0
    with pytest.raises(ValueError):
        world.clearance(np.nan, 0.0)


def test_steep_slope_is_an_obstacle():
    n = 60
    xs = -0.5 * (n - 1) * 0.1 + 0.1 * np.arange(n)
    gentle = np.tile((np.tan(np.radians(20)) * np.maximum(xs, 0))[:, None], (1, n))
    steep = np.tile((np.tan(np.radians(40)) * np.maximum(xs, 0))[:, None], (1, n))
    assert not _plain(gentle).terrain_obstacle_mask()[40:55].any()
    assert _plain(steep).terrain_obstacle_mask()[40:55].all()


def test_plot_world_draws_terrain_boxes_and_poses():
    import matplotlib.pyplot as plt

    world = load_world("rough_obstacles")
    fig, ax = plt.subplots()
    img = plot_world(ax, world, show_clearance=True)
    assert img.get_array().shape == world.heights.T.shape
    assert len(ax.patches) >= len(world.boxes) + 2  # box polygons + start/goal arrows
    plt.close(fig)
