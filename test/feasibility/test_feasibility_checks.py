"""Unit tests of the individual feasibility checks on hand-made configurations."""

import numpy as np
import pinocchio as pin
import pytest

from morobot.feasibility.checks import RateWindow, SingularityCheck, check_joint_limits
from morobot.feasibility.collision import SceneCollision, SelfCollision
from morobot.feasibility.config import IkConfig, SceneConfig
from morobot.feasibility.ik import DlsIk, pose_from_quaternion
from morobot.feasibility.model import PandaModel
from morobot.feasibility.scene import RobotSurface, filter_points, voxel_centres
from morobot.feasibility.verdict import Level

READY = np.array([0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398])
TABLE = ((-0.25, -0.7, -0.05), (0.9, 0.7, 0.0))


@pytest.fixture(scope="module")
def robot():
    return PandaModel()


def test_model_has_seven_joints_and_pruned_pairs(robot):
    assert robot.model.nq == 7
    assert robot.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))
    pairs = {frozenset((robot.link_name(p.first), robot.link_name(p.second)))
             for p in robot.geometry.collisionPairs}
    assert frozenset(("panda_link0", "panda_hand")) in pairs
    assert frozenset(("panda_link6", "panda_link7")) not in pairs  # adjacent, SRDF-disabled
    assert frozenset(("panda_link3", "panda_link5")) not in pairs  # SRDF "Never"
    np.testing.assert_allclose(robot.velocity_limit, [2.175] * 4 + [2.61] * 3)


def test_joint_limits_inside_margin_and_beyond(robot):
    assert check_joint_limits(READY, robot.lower, robot.upper, 0.01).passed
    q = READY.copy()
    q[3] = -0.075  # 0.0052 rad below the -0.0698 upper limit: inside the 0.01 rad margin
    result = check_joint_limits(q, robot.lower, robot.upper, 0.01, robot.joint_names)
    assert not result.passed and "panda_joint4" in result.reason and "upper" in result.reason
    q[3] = -0.085
    assert check_joint_limits(q, robot.lower, robot.upper, 0.01).passed
    q = READY.copy()
    q[0] = -3.0  # beyond the lower limit
    result = check_joint_limits(q, robot.lower, robot.upper, 0.01, robot.joint_names)
    assert not result.passed and "panda_joint1" in result.reason and result.value < 0


def test_rate_window_four_of_five_rule():
    limit = np.full(7, 2.0)
    window = RateWindow(limit, scale=0.5, window=5, min_violations=4, max_dt=0.5)
    dt = 0.01
    slow, fast = 0.5 * 1.0 * dt, 2.0 * 1.0 * dt  # half and twice the allowed 1 rad/s
    q = np.zeros(7)
    assert window.update(q, 0.0).passed  # first frame, not rated
    levels = []
    for k, step in enumerate([fast, fast, slow, fast, fast, fast, slow, slow, slow, slow, slow]):
        q = q + step
        levels.append(window.update(q, (k + 1) * dt).level)
    ok, warn, bad = Level.OK, Level.WARNING, Level.INFEASIBLE
    # Violations in the window after each frame: 1, 2, 2, 3, 4, 4, 3, 3, 2, 1, 0.
    assert levels[:4] == [warn, warn, warn, warn]
    assert levels[4] is bad  # frames 1,2,4,5 of 5 violate
    assert levels[5] is bad  # 2,4,5,6
    assert levels[6] is warn  # 3 of the last 5 violate
    assert levels[10] is ok  # five slow frames in a row


def test_rate_window_ignores_gaps_and_old_stamps():
    window = RateWindow(np.full(7, 2.0), scale=0.5)
    q = np.zeros(7)
    window.update(q, 0.0)
    for k in range(1, 5):
        q = q + 0.1  # 10 rad/s
        window.update(q, k * 0.01)
    assert window.update(q + 0.1, 0.05).level is Level.INFEASIBLE
    # A 1 s gap is not rated and restarts the window, however far the arm moved.
    result = window.update(q + 3.0, 1.05)
    assert result.passed and result.level is Level.OK and "gap" in result.reason
    assert window.update(q + 3.0, 1.05).passed  # same stamp: not rated either
    assert window.update(q + 3.005, 1.06).level is Level.OK


def test_singularity_stretched_arm_and_wrist(robot):
    check = SingularityCheck(robot, 1e-5, 5e-4, 0.1)
    stretched = np.zeros(7)  # elbow straight (q4 = 0): rank-deficient Jacobian
    result = check(stretched)
    assert not result.passed and result.value < 1e-5 and "singular" in result.reason
    near = np.array([0.0, 0.0, 0.0, -0.0698, 0.0, 0.0, 0.0])  # elbow at its limit
    result = check(near)
    assert result.passed and result.level is Level.WARNING and 1e-5 < result.value < 5e-4
    assert check(READY).level is Level.OK
    wrist = READY.copy()
    wrist[5] = 0.02  # joint 6 ~ 0: joint 5 and 7 axes align
    result = check(wrist)
    assert result.passed and result.level is Level.WARNING and "wrist" in result.reason
    assert check.manipulability(READY) == pytest.approx(check(READY).value)


def test_self_collision_known_configurations(robot):
    check = SelfCollision(robot, margin=0.01)
    assert check(READY).passed
    folded = np.array([0.0, 0.5, 0.0, -3.0, 0.0, 1.5, 0.785])  # wrist folded onto the base
    result = check(folded)
    assert not result.passed and "panda_link0" in result.reason
    hand_on_base = np.array([0.0, 1.0, 0.0, -2.5, 0.0, 1.5, 0.785])
    assert not check(hand_on_base).passed


def test_self_collision_margin_matters(robot):
    # Find the fold where the clearance is ~5 mm: collision with a 10 mm margin, none with 1 mm.
    strict, loose = SelfCollision(robot, 0.01), SelfCollision(robot, 0.001)
    q = np.array([0.0, 0.5, 0.0, -3.0, 0.0, 1.5, 0.785])
    found = False
    for q2 in np.linspace(0.5, -0.5, 201):
        q[1] = q2
        if not strict(q).passed and loose(q).passed:
            found = True
            break
    assert found


_SURFACES = {}


def _surface(robot):
    if id(robot) not in _SURFACES:
        _SURFACES[id(robot)] = RobotSurface(robot)
    return _SURFACES[id(robot)]


def _link_box_cloud(robot, q, link, offset, direction=(1.0, 0.0, 0.0), size=0.04, n=400, seed=0):
    """Surface points of a cube moved from a link's origin along ``direction`` (in link0) until
    it is ``offset`` m from the robot's surface."""
    data = robot.model.createData()
    gdata = pin.GeometryData(robot.mesh_geometry)
    pin.updateGeometryPlacements(robot.model, data, robot.mesh_geometry, gdata, q)
    objects = robot.mesh_geometry.geometryObjects
    k = [i for i, o in enumerate(objects) if robot.model.frames[o.parentFrame].name == link][0]
    placement = gdata.oMg[k]
    surface = _surface(robot)
    origin = placement.translation
    direction = np.asarray(direction, float)
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-size / 2, size / 2, (n, 3))
    axis = rng.integers(0, 3, n)
    pts[np.arange(n), axis] = np.sign(rng.uniform(-1, 1, n)) * size / 2
    for t in np.linspace(0.0, 0.4, 81):
        cloud = pts + origin + direction * (t + size / 2)
        if surface.distance(cloud, q, 1.0).min() >= offset:
            return cloud
    raise AssertionError("no placement found")


def test_scene_collision_box_of_points_at_a_link(robot):
    check = SceneCollision(robot, margin=0.01, table_min=None, table_max=None)
    assert check(READY).passed and check(READY).reason == "no obstacles"
    touching = _link_box_cloud(robot, READY, "panda_link3", offset=0.0, direction=(0.0, 1.0, 0.0))
    check.set_voxels(voxel_centres(touching, 0.02), 0.02)
    result = check(READY)
    assert not result.passed and "panda_link3" in result.reason and "obstacles" in result.reason
    away = _link_box_cloud(robot, READY, "panda_link3", offset=0.06, direction=(0.0, 1.0, 0.0))
    check.set_voxels(voxel_centres(away, 0.02), 0.02)
    assert check(READY).passed


def test_scene_collision_table_and_ignored_links(robot):
    check = SceneCollision(robot, 0.01, *TABLE)
    assert check(READY).passed
    reaching_down = np.array([0.0, 1.2, 0.0, -1.0, 0.0, 2.0, 0.785])  # fingers below the table top
    result = check(reaching_down)
    assert not result.passed and "table" in result.reason
    hand = _link_box_cloud(robot, READY, "panda_hand", offset=0.0, direction=(0.0, 1.0, 0.0))
    fingers_free = SceneCollision(robot, 0.01, ignored_links=("panda_hand", "panda_leftfinger", "panda_rightfinger"))
    fingers_free.set_voxels(voxel_centres(hand, 0.02), 0.02)
    assert fingers_free(READY).passed
    all_links = SceneCollision(robot, 0.01)
    all_links.set_voxels(voxel_centres(hand, 0.02), 0.02)
    assert not all_links(READY).passed
    with pytest.raises(ValueError, match="not in the robot"):
        SceneCollision(robot, ignored_links=("gripper",))


def test_voxels_cover_every_point():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-0.3, 0.3, (2000, 3))
    centres = voxel_centres(pts, 0.02)
    # Each point lies in the cube of the nearest centre.
    nearest = np.abs(pts[:, None, :] - centres[None, :, :]).max(axis=2).min(axis=1)
    assert np.all(nearest <= 0.01 + 1e-12)
    assert len(centres) == len(np.unique(np.floor(pts / 0.02), axis=0))
    grid = centres / 0.02 - 0.5
    np.testing.assert_allclose(grid, np.round(grid), atol=1e-9)


def test_filter_points_drops_table_robot_and_far_points(robot):
    cfg = SceneConfig()
    table_pts = np.column_stack([np.random.default_rng(0).uniform((-0.2, -0.65), (0.85, 0.65), (300, 2)),
                                 np.full(300, 0.001)])
    far = np.array([[5.0, 0.0, 0.5], [np.nan, 0.0, 0.0]])
    block = np.array([[0.5, 0.0, 0.1], [0.5, 0.0, 0.12]])
    surface = _surface(robot)
    robot_pts = _link_box_cloud(robot, READY, "panda_link4", offset=0.0, direction=(-1.0, 0.0, 0.0))
    robot_pts = robot_pts[surface.distance(robot_pts, READY, 1.0) < 0.02]
    kept = filter_points(np.vstack([table_pts, far, block, robot_pts]), cfg, surface, READY)
    np.testing.assert_allclose(kept, block)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        filter_points(np.zeros((4, 2)), cfg)


def test_ik_reaches_reachable_and_rejects_unreachable(robot):
    ik = DlsIk(robot, IkConfig())
    goal = np.array([0.3, -0.4, 0.5, -1.8, 0.2, 1.9, 0.3])
    target = robot.ee_placement(goal)
    result = ik.solve(target, READY)
    assert result.success and result.position_error <= 0.005 and result.rotation_error <= 0.05
    reached = robot.ee_placement(result.q)
    assert np.linalg.norm(reached.translation - target.translation) <= 0.005
    assert np.all(result.q >= robot.lower) and np.all(result.q <= robot.upper)
    far = pin.SE3(target.rotation, np.array([1.5, 0.0, 0.5]))
    result = ik.solve(far, READY, restart_from=(READY,))
    assert not result.success and result.out_of_reach and result.iterations == 0
    # Inside the crude reach bound (1.09 m from the shoulder) but out of reach: IK has to give up.
    just_out = pin.SE3(target.rotation, np.array([0.9, 0.0, 0.9]))
    assert np.linalg.norm(just_out.translation - ik.reach_centre) < ik.reach_radius
    result = ik.solve(just_out, READY, restart_from=(READY,))
    assert not result.success and not result.out_of_reach and result.position_error > 0.05
    assert result.iterations > 30


def test_ik_warm_start_needs_few_iterations(robot):
    ik = DlsIk(robot, IkConfig())
    target = robot.ee_placement(READY)
    nudged = pin.SE3(target.rotation, target.translation + [0.01, 0.0, 0.0])
    result = ik.solve(nudged, READY)
    assert result.success and result.iterations <= 3


def test_pose_from_quaternion_validation():
    with pytest.raises(ValueError, match="unit"):
        pose_from_quaternion([0.3, 0, 0.5], [1.0, 1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        pose_from_quaternion([np.nan, 0, 0.5], [1.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="position"):
        pose_from_quaternion([0.3, 0.5], [1.0, 0.0, 0.0, 0.0])
    pose = pose_from_quaternion([0.3, 0.0, 0.5], [0.0, 1.0, 0.0, 0.0])  # w first: 180 deg about x
    np.testing.assert_allclose(pose.rotation, np.diag([1.0, -1.0, -1.0]), atol=1e-12)
