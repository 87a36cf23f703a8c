"""feasibility_checker node on real topics: filter mode (pass, clamp, hold, rejections, scene) and demo
mode (status, haptic, overlay), parameters and their defaults."""

import math

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState, PointCloud2
from std_msgs.msg import Float32
from trajectory_msgs.msg import JointTrajectory

from morobot import paths
from morobot.feasibility import FeasibilityChecker, FeasibilityConfig, SceneConfig
from morobot.feasibility.model import ARM_JOINTS, FINGER_JOINTS
from morobot.ros import qos
from morobot.ros.conversions import (image_to_rgb, joint_trajectory_to_command, make_joint_state,
                                     make_joint_trajectory, make_pose_stamped_quat, rgb_to_image,
                                     xyz_to_pointcloud2)

from rosutil import RosHarness

pytestmark = pytest.mark.ros

READY = np.array([0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398])
NAMES9 = list(ARM_JOINTS) + list(FINGER_JOINTS)


def _now(node):
    return node.get_clock().now().nanoseconds * 1e-9


class Rig:
    """The node under test plus an io node with the publishers/subscribers of its graph."""

    def __init__(self, mode="filter", params=()):
        from morobot.nodes.feasibility_checker import FeasibilityCheckerNode

        self.h = RosHarness()
        overrides = [Parameter("mode", Parameter.Type.STRING, mode), *params]
        self.node = self.h.add(FeasibilityCheckerNode(parameter_overrides=overrides))
        self.io = io = self.h.node("feasibility_test_io")
        self.rec = {"cmd": [], "status": [], "haptic": [], "overlay": []}
        io.create_subscription(JointTrajectory, "/joint_command", lambda m: self.rec["cmd"].append(m), qos.STATE)
        io.create_subscription(DiagnosticArray, "/feasibility/status", lambda m: self.rec["status"].append(m),
                               qos.STATE)
        io.create_subscription(Float32, "/feasibility/haptic", lambda m: self.rec["haptic"].append(m.data), qos.STATE)
        io.create_subscription(Image, "/feasibility/overlay", lambda m: self.rec["overlay"].append(m), qos.STATE)
        self.js = io.create_publisher(JointState, "/joint_states", qos.STATE)
        self.raw = io.create_publisher(JointTrajectory, "/joint_command_raw", qos.STATE)
        self.points = io.create_publisher(PointCloud2, "/points", qos.SENSOR)
        self.pose = io.create_publisher(PoseStamped, "/demo/ee_pose", qos.STATE)
        self.image = io.create_publisher(Image, "/camera/image_raw", qos.SENSOR)
        self.q = READY.copy()
        wanted = [self.js, self.points] + ([self.raw] if mode == "filter" else [self.pose, self.image])
        assert self.h.spin_until(lambda: all(p.get_subscription_count() > 0 for p in wanted), 10.0)
        assert self.h.spin_until(lambda: self.node.count_publishers("/feasibility/status") > 0
                                 and self.io.count_subscribers("/feasibility/status") > 0, 5.0)

    def publish_state(self, q=None, age=0.0):
        q = self.q if q is None else q
        self.js.publish(make_joint_state(NAMES9, list(q) + [0.04, 0.04], [0.0] * 9, [0.0] * 9,
                                         _now(self.io) - age))

    def command(self, msg, wait_status=True):
        """Send one raw command (with fresh joint states); returns (forwarded or None, overall status)."""
        self.publish_state()
        self.h.spin_for(0.05)
        n_cmd, n_status = len(self.rec["cmd"]), len(self.rec["status"])
        self.raw.publish(msg)
        assert self.h.spin_until(lambda: self._new_frame_status(n_status), 5.0)
        self.h.spin_for(0.1)  # a forwarded command would arrive with its status
        status = self._new_frame_status(n_status)
        forwarded = self.rec["cmd"][n_cmd:]
        assert len(forwarded) <= 1
        return (forwarded[0] if forwarded else None), status

    def _new_frame_status(self, start):
        frames = [m for m in self.rec["status"][start:] if len(m.status) > 1]
        return frames[-1] if frames else None

    def close(self):
        self.h.close()


@pytest.fixture
def rig():
    r = Rig("filter")
    yield r
    r.close()


def _cmd(q, names=ARM_JOINTS, velocities=None, stamp=0.0):
    return make_joint_trajectory(list(names), list(q), stamp, velocities=velocities)


def _statuses(array):
    return {s.name.split("/")[-1]: s for s in array.status}


def _values(status):
    return {kv.key: kv.value for kv in status.values}


def test_feasible_command_passes_unchanged(rig):
    q = READY + np.array([0.03, -0.02, 0.01, 0.04, -0.03, 0.02, 0.05]) + 1e-7 * np.pi  # not round numbers
    vel = [0.1, -0.05, 0.0, 0.02, 0.0, -0.1, 0.2]
    fwd, status = rig.command(_cmd(q, velocities=vel))
    assert fwd is not None
    pos, qd, extra = joint_trajectory_to_command(fwd, ARM_JOINTS, FINGER_JOINTS)
    assert pos.tolist() == q.tolist()  # bit-exact across the wire
    assert qd.tolist() == vel
    overall = _statuses(status)["feasibility_checker"]
    assert overall.level == DiagnosticStatus.OK
    v = _values(overall)
    assert v["action"] == "pass" and v["verdict"] == "ok" and v["mode"] == "filter"
    checks = _statuses(status)
    for name in ("input", "joint_limits", "joint_rate", "singularity", "self_collision", "scene_collision",
                 "command_step"):
        assert checks[name].level == DiagnosticStatus.OK, (name, checks[name].message)
    # finger joints in the command are forwarded with it (a gripper command), unchanged
    fwd, _ = rig.command(_cmd(list(q) + [0.01, 0.01], names=NAMES9))
    assert list(fwd.joint_names) == NAMES9 and list(fwd.points[0].positions) == list(q) + [0.01, 0.01]


def test_out_of_limit_command_is_clamped_never_forwarded_as_is(rig):
    checker = FeasibilityChecker()
    q = READY.copy()
    q[3] = 0.5  # joint 4 upper limit is -0.0698
    fwd, status = rig.command(_cmd(q))
    assert fwd is not None
    out = np.array(fwd.points[0].positions)
    assert not np.allclose(out, q)
    assert np.all(out >= checker.lower) and np.all(out <= checker.upper)
    bound = checker.rate.limit * rig.node.p["clamp_dt"]
    assert np.all(np.abs(out - READY) <= bound + 1e-9)
    assert out[3] > READY[3]  # moved towards the command
    assert checker.evaluate(out).feasible
    checks = _statuses(status)
    assert checks["feasibility_checker"].level == DiagnosticStatus.ERROR
    assert _values(checks["feasibility_checker"])["action"] == "clamped"
    assert checks["joint_limits"].level == DiagnosticStatus.ERROR and "panda_joint4" in checks["joint_limits"].message
    # hold policy: the measured configuration is sent instead
    assert rig.node.set_parameters([Parameter("filter_policy", Parameter.Type.STRING, "hold")])[0].successful
    fwd, status = rig.command(_cmd(q))
    assert list(fwd.points[0].positions) == READY.tolist()
    assert _values(_statuses(status)["feasibility_checker"])["action"] == "hold"


def test_far_feasible_command_is_clamped(rig):
    q = READY.copy()
    q[0] += 1.0  # feasible, but 1 rad away from the measured configuration
    assert FeasibilityChecker().evaluate(q).feasible
    fwd, status = rig.command(_cmd(q))
    out = np.array(fwd.points[0].positions)
    assert 0.0 < out[0] - READY[0] < 0.1
    checks = _statuses(status)
    assert checks["command_step"].level == DiagnosticStatus.ERROR
    assert "max_command_step" in checks["command_step"].message


def test_arm_in_the_limit_margin_can_leave_it(rig):
    """An arm that overshot into the 10 mrad limit margin is clamped out of it, never stuck."""
    checker = FeasibilityChecker()
    rig.q = READY.copy()
    rig.q[3] = checker.robot.upper[3] - 0.004  # 6 mrad into the margin, inside the URDF limit
    assert not checker.evaluate(rig.q).feasible
    fwd, status = rig.command(_cmd(READY))  # far (0.3+ rad): clamped from the projected configuration
    out = np.array(fwd.points[0].positions)
    assert _values(_statuses(status)["feasibility_checker"])["action"] == "clamped"
    assert checker.evaluate(out).feasible and out[3] < checker.upper[3]
    assert np.max(np.abs(out - rig.q)) <= checker.rate.limit.max() * rig.node.p["clamp_dt"] + 0.01
    rig.node.set_parameters([Parameter("filter_policy", Parameter.Type.STRING, "hold")])
    fwd, status = rig.command(_cmd(READY))
    assert np.allclose(fwd.points[0].positions, np.clip(rig.q, checker.lower, checker.upper))
    rig.q[3] = checker.robot.upper[3] + 0.004  # beyond the URDF limit: no projection, nothing sent
    fwd, status = rig.command(_cmd(READY))
    assert fwd is None and _values(_statuses(status)["feasibility_checker"])["action"] == "none"


def _self_collision_boundary():
    """(feasible measured q, self-colliding command within one clamp step of it), table disabled."""
    checker = FeasibilityChecker(FeasibilityConfig(scene=SceneConfig(table_min=None, table_max=None)))
    bad = np.array([0.0, -0.785, -2.791, -2.356, 0.0, 1.571, 0.785])
    assert checker.evaluate(bad).failed == ("self_collision",)
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if checker.evaluate(READY + mid * (bad - READY)).feasible else (lo, mid)
    near = READY + (lo - 0.002) * (bad - READY)
    cmd = READY + (hi + 0.005) * (bad - READY)
    assert checker.evaluate(near).feasible and checker.evaluate(cmd).failed == ("self_collision",)
    assert np.max(np.abs(cmd - near)) < 0.05
    return near, bad, cmd


def test_self_colliding_command_is_held():
    near, bad, cmd = _self_collision_boundary()
    r = Rig("filter", [Parameter("scene.table", Parameter.Type.BOOL, False)])
    try:
        r.q = near
        fwd, status = r.command(_cmd(cmd))  # clamping cannot help: one small step into collision
        assert list(fwd.points[0].positions) == near.tolist()
        checks = _statuses(status)
        assert _values(checks["feasibility_checker"])["action"] == "hold"
        assert checks["self_collision"].level == DiagnosticStatus.ERROR
        assert "self collision" in checks["feasibility_checker"].message
        # far into collision with the hold policy: held too
        r.node.set_parameters([Parameter("filter_policy", Parameter.Type.STRING, "hold")])
        fwd, status = r.command(_cmd(bad))
        assert list(fwd.points[0].positions) == near.tolist()
    finally:
        r.close()


@pytest.mark.parametrize("case", ["nan", "inf", "names", "count", "missing", "empty", "finger"])
def test_malformed_command_is_rejected(rig, case):
    q = list(READY + 0.01)
    if case == "nan":
        msg = _cmd(q)
        msg.points[0].positions[2] = float("nan")
    elif case == "inf":
        msg = _cmd(q, velocities=[0.0] * 6 + [float("inf")])
    elif case == "names":
        msg = _cmd(q, names=[f"joint{i}" for i in range(1, 8)])
    elif case == "count":
        msg = _cmd(q[:6], names=ARM_JOINTS)
    elif case == "missing":
        msg = _cmd(q[:6], names=ARM_JOINTS[:6])
    elif case == "empty":
        msg = JointTrajectory(joint_names=list(ARM_JOINTS))
    else:
        msg = _cmd(q + [0.2, 0.2], names=NAMES9)
    fwd, status = rig.command(msg)
    assert fwd is None
    checks = _statuses(status)
    assert checks["feasibility_checker"].level == DiagnosticStatus.ERROR
    assert _values(checks["feasibility_checker"])["action"] == "rejected"
    assert checks["input"].level == DiagnosticStatus.ERROR and "malformed command" in checks["input"].message
    assert checks["joint_limits"].level == DiagnosticStatus.STALE


def test_stale_invalid_or_missing_joint_states_reject(rig):
    q = READY + 0.01
    # no joint state at all yet: publish the command without one
    n = len(rig.rec["status"])
    rig.raw.publish(_cmd(q))
    assert rig.h.spin_until(lambda: rig._new_frame_status(n), 5.0)
    assert "no joint state" in _statuses(rig._new_frame_status(n))["input"].message
    # stale
    rig.publish_state(age=1.0)
    rig.h.spin_for(0.1)
    n, n_cmd = len(rig.rec["status"]), len(rig.rec["cmd"])
    rig.raw.publish(_cmd(q))
    assert rig.h.spin_until(lambda: rig._new_frame_status(n), 5.0)
    assert "stale joint states" in _statuses(rig._new_frame_status(n))["input"].message
    # invalid (NaN) joint state
    bad = make_joint_state(NAMES9, list(READY) + [0.04, 0.04], [0.0] * 9, [0.0] * 9, _now(rig.io))
    bad.position[1] = float("nan")
    rig.js.publish(bad)
    rig.h.spin_for(0.1)
    n = len(rig.rec["status"])
    rig.raw.publish(_cmd(q))
    assert rig.h.spin_until(lambda: rig._new_frame_status(n), 5.0)
    assert "invalid joint state" in _statuses(rig._new_frame_status(n))["input"].message
    rig.h.spin_for(0.1)
    assert len(rig.rec["cmd"]) == n_cmd
    # recovers with a fresh valid state
    fwd, _ = rig.command(_cmd(q))
    assert fwd is not None


def _box_points(centre, size, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    size = np.asarray(size, float)
    pts = rng.uniform(-0.5, 0.5, (n, 3)) * size
    axis = rng.integers(0, 3, n)
    pts[np.arange(n), axis] = np.where(rng.random(n) < 0.5, -0.5, 0.5) * size[axis]
    return pts + np.asarray(centre, float)


def test_scene_obstacle_from_points(rig):
    checker = FeasibilityChecker()
    target = READY.copy()
    target[1] += 0.25  # shoulder forward: the TCP moves forward and down by about 9 cm
    cloud = _box_points(checker.robot.ee_placement(target).translation, [0.04, 0.04, 0.04])
    checker.update_scene(cloud)
    assert checker.evaluate(target).failed == ("scene_collision",) and checker.evaluate(READY).feasible
    # a cloud in another frame is ignored
    rig.points.publish(xyz_to_pointcloud2(cloud, _now(rig.io), "world"))
    rig.h.spin_for(0.3)
    fwd, status = rig.command(_cmd(target))
    # feasible (the cloud was ignored); a 0.25 rad step is approached at the joint velocity limit
    assert _values(_statuses(status)["feasibility_checker"])["action"] == "limited"
    assert _statuses(status)["scene_collision"].level == DiagnosticStatus.OK
    # in panda_link0 (with the robot's own points, removed at the measured configuration)
    robot_pts = np.array([checker.robot.ee_placement(READY).translation])
    rig.publish_state()
    rig.points.publish(xyz_to_pointcloud2(np.vstack([cloud, robot_pts]), _now(rig.io), "panda_link0"))
    assert rig.h.spin_until(lambda: rig.node._scene_voxels > 0, 5.0)
    rig.q = READY.copy()
    fwd, status = rig.command(_cmd(target))
    checks = _statuses(status)
    assert checks["scene_collision"].level == DiagnosticStatus.ERROR
    assert int(_values(checks["feasibility_checker"])["scene_voxels"]) > 0
    out = np.array(fwd.points[0].positions)
    assert checker.evaluate(out).feasible and not np.allclose(out, target)


def test_heartbeat_when_idle(rig):
    assert rig.h.spin_until(lambda: any("idle: waiting for /joint_command_raw" in m.status[0].message
                                        for m in rig.rec["status"]), 3.0)


# ------------------------------------------------------------------------------------------ demo
@pytest.fixture
def demo():
    r = Rig("demo", [Parameter("debounce_frames", Parameter.Type.INTEGER, 3)])
    yield r
    r.close()


def _ready_pose():
    import pinocchio as pin

    pose = FeasibilityChecker().robot.ee_placement(READY)
    quat = pin.Quaternion(pose.rotation)
    return pose.translation.copy(), np.array([quat.w, quat.x, quat.y, quat.z])


def _stream_poses(r, poses, frame="panda_link0"):
    n_status, n_haptic = len(r.rec["status"]), len(r.rec["haptic"])
    for position, quat in poses:
        r.pose.publish(make_pose_stamped_quat(position, quat, _now(r.io), frame))
        r.h.spin_for(0.03)
    assert r.h.spin_until(lambda: len([m for m in r.rec["status"][n_status:] if len(m.status) > 1]) >= len(poses)
                          and len(r.rec["haptic"]) >= n_haptic + len(poses), 5.0)
    return [m for m in r.rec["status"][n_status:] if len(m.status) > 1], r.rec["haptic"][n_haptic:]


def test_demo_mode_haptic_status_and_overlay(demo):
    position, quat = _ready_pose()
    statuses, haptic = _stream_poses(demo, [(position + [0.0, 0.002 * i, 0.0], quat) for i in range(4)])
    assert all(h == 0.0 for h in haptic)
    last = _statuses(statuses[-1])
    assert last["feasibility_checker"].level == DiagnosticStatus.OK
    assert last["ik"].level == DiagnosticStatus.OK and "IK solved" in last["ik"].message
    assert _values(last["feasibility_checker"])["mode"] == "demo"
    # overlay: an image of the camera's size, the arm drawn in green
    img = np.full((240, 320, 3), 90, np.uint8)
    n = len(demo.rec["overlay"])
    assert demo.h.spin_until(lambda: len(demo.rec["overlay"]) > n, 5.0,
                             lambda: demo.image.publish(rgb_to_image(img, _now(demo.io), "scene_camera")))
    out = demo.rec["overlay"][-1]
    assert (out.width, out.height, out.encoding) == (320, 240, "rgb8")
    rgb = image_to_rgb(out)
    green = (rgb[:, :, 1] > 150) & (rgb[:, :, 0] < 100)
    assert green.sum() > 100  # the skeleton
    # out of reach for long enough: haptic 1, red overlay, infeasible status with the IK reason
    far = [(np.array([1.5, 0.0, 0.5]), quat)] * 4
    statuses, haptic = _stream_poses(demo, far)
    assert haptic[0] == 0.0 and haptic[-1] == 1.0  # debounced: 3 frames
    last = _statuses(statuses[-1])
    assert last["feasibility_checker"].level == DiagnosticStatus.ERROR
    assert "unreachable" in last["ik"].message and last["joint_limits"].level == DiagnosticStatus.STALE
    assert _values(last["feasibility_checker"])["debounced"] == "infeasible"
    big = np.full((480, 640, 3), 90, np.uint8)
    n = len(demo.rec["overlay"])
    assert demo.h.spin_until(lambda: len(demo.rec["overlay"]) > n, 5.0,
                             lambda: demo.image.publish(rgb_to_image(big, _now(demo.io), "scene_camera")))
    out = demo.rec["overlay"][-1]
    assert (out.width, out.height) == (640, 480)
    rgb = image_to_rgb(out)
    assert ((rgb[:, :, 0] > 180) & (rgb[:, :, 1] < 80)).sum() > 100  # red


@pytest.mark.parametrize("case", ["nan", "quaternion", "frame"])
def test_demo_mode_rejects_bad_poses(demo, case):
    position, quat = _ready_pose()
    frame = "panda_link0"
    if case == "nan":
        position = position * np.nan
    elif case == "quaternion":
        quat = quat * 1.1
    else:
        frame = "world"
    statuses, haptic = _stream_poses(demo, [(position, quat)] * 3, frame=frame)
    checks = _statuses(statuses[-1])
    assert _values(checks["feasibility_checker"])["action"] == "rejected"
    assert checks["input"].level == DiagnosticStatus.ERROR
    assert {"nan": "NaN", "quaternion": "normalised", "frame": "frame 'world'"}[case] in checks["input"].message
    assert haptic[-1] == 1.0  # rejected frames count as infeasible (3 = debounce frames)


# ------------------------------------------------------------------------------------ parameters
def test_parameter_defaults_match_config_and_yaml():
    from morobot.nodes.feasibility_checker import ALL_PARAMS, checker_config
    from morobot.sim.panda import PandaSim

    defaults = {s.name: s.default for s in ALL_PARAMS}
    assert checker_config(defaults) == FeasibilityConfig()
    with PandaSim() as sim:
        k = sim.camera_intrinsics(*defaults["camera_resolution"])
        pose = sim.camera_pose()
    assert np.allclose(np.reshape(defaults["camera_matrix"], (3, 3)), k, atol=1e-9)
    from morobot.nodes.feasibility_checker import camera_from_params

    assert np.allclose(camera_from_params(defaults)[2], pose, atol=1e-9)
    section = yaml.safe_load(paths.config_path("manipulate.yaml").read_text())["feasibility_checker"]["ros__parameters"]

    def flatten(d, prefix=""):
        out = {}
        for key, value in d.items():
            if isinstance(value, dict):
                out.update(flatten(value, f"{prefix}{key}."))
            else:
                out[prefix + key] = value
        return out

    flat = flatten(section)
    assert set(flat) == set(defaults)
    # the simulated graph deliberately deviates here: scene updates at the sim's cloud rate, the
    # pushed block is not an obstacle, and a wider self-filter for the moving arm
    sim_overrides = {"scene_update_rate": 5.0, "object_exclusion_radius": 0.08, "scene.robot_padding": 0.05}
    for name, value in flat.items():
        expected = sim_overrides.get(name, defaults[name])
        if isinstance(expected, list):
            assert np.allclose(value, expected, atol=1e-12), name
        else:
            assert value == expected and type(value) is type(expected), name


def test_invalid_parameters_rejected():
    from morobot.nodes.feasibility_checker import FeasibilityCheckerNode

    h = RosHarness()
    try:
        with pytest.raises(ValueError, match="rate_min_violations"):
            FeasibilityCheckerNode(parameter_overrides=[Parameter("rate_min_violations", Parameter.Type.INTEGER, 9)])
        with pytest.raises(ValueError, match="camera_orientation"):
            FeasibilityCheckerNode(parameter_overrides=[
                Parameter("camera_orientation", Parameter.Type.DOUBLE_ARRAY, [1.0, 1.0, 0.0, 0.0])])
        node = h.add(FeasibilityCheckerNode())
        checker = node.checker
        for bad in (Parameter("scene.ignored_links", Parameter.Type.STRING, "no_such_link"),
                    Parameter("scene.table_min", Parameter.Type.DOUBLE_ARRAY, [0.0, 0.0]),
                    Parameter("filter_policy", Parameter.Type.STRING, "drop"),
                    Parameter("mode", Parameter.Type.STRING, "demo"),
                    Parameter("manipulability_warning", Parameter.Type.DOUBLE, 1e-6)):
            result = node.set_parameters([bad])[0]
            assert not result.successful, bad.name
        assert node.checker is checker
        result = node.set_parameters([Parameter("self_margin", Parameter.Type.DOUBLE, 0.02)])[0]
        assert result.successful and node.checker.config.self_margin == 0.02
        result = node.set_parameters([Parameter("scene.table", Parameter.Type.BOOL, False)])[0]
        assert result.successful and node.checker.config.scene.table_min is None
        assert math.isclose(node.p["clamp_dt"], 0.02)
    finally:
        h.close()


def test_fr3_joint_names_with_a_prefix():
    """franka_ros2's FR3 names its joints fr3_joint1..7: joint_prefix maps them onto the model."""
    from morobot.nodes.feasibility_checker import FeasibilityCheckerNode
    from morobot.robots import franka_joint_names

    arm, fingers = franka_joint_names("fr3_")
    h = RosHarness()
    try:
        h.add(FeasibilityCheckerNode(parameter_overrides=[Parameter("joint_prefix", value="fr3_")]))
        io = h.node("fr3_io")
        out = []
        io.create_subscription(JointTrajectory, "/joint_command", out.append, qos.STATE)
        js = io.create_publisher(JointState, "/joint_states", qos.STATE)
        raw = io.create_publisher(JointTrajectory, "/joint_command_raw", qos.STATE)
        assert h.spin_until(lambda: raw.get_subscription_count() > 0, 5.0)

        def send():
            js.publish(make_joint_state(list(arm) + list(fingers), list(READY) + [0.04, 0.04], [0.0] * 9, [0.0] * 9,
                                        _now(io)))
            raw.publish(make_joint_trajectory(list(arm), list(READY + 0.01), 0.0))

        assert h.spin_until(lambda: out, 5.0, send)
        assert list(out[-1].joint_names) == list(arm)
    finally:
        h.close()


def test_a_ur5_through_the_same_node():
    """robot:=ur5: the joints, limits and frames come from the UR5's URDF/SRDF, names as on the wire."""
    from morobot.nodes.feasibility_checker import FeasibilityCheckerNode

    ur5 = FeasibilityChecker(FeasibilityConfig(robot="ur5")).robot
    names, ready = list(ur5.joint_names), ur5.ready_pose
    h = RosHarness()
    try:
        node = h.add(FeasibilityCheckerNode(parameter_overrides=[Parameter("robot", value="ur5")]))
        assert node.arm_frame == "base_link" and node.checker.robot.nq == 6
        io = h.node("ur5_io")
        out, status = [], []
        io.create_subscription(JointTrajectory, "/joint_command", out.append, qos.STATE)
        io.create_subscription(DiagnosticArray, "/feasibility/status", status.append, qos.STATE)
        js = io.create_publisher(JointState, "/joint_states", qos.STATE)
        raw = io.create_publisher(JointTrajectory, "/joint_command_raw", qos.STATE)
        assert h.spin_until(lambda: raw.get_subscription_count() > 0, 5.0)

        def send(target):
            def go():
                js.publish(make_joint_state(names, list(ready), [0.0] * 6, [0.0] * 6, _now(io)))
                raw.publish(make_joint_trajectory(names, [float(v) for v in target], 0.0))
            return go

        assert h.spin_until(lambda: out, 5.0, send(ready + 0.005))
        assert list(out[-1].joint_names) == names
        np.testing.assert_allclose(out[-1].points[0].positions, ready + 0.005, atol=1e-6)
        # the elbow beyond its URDF limit (pi): never forwarded as commanded
        beyond = ready.copy()
        beyond[2] = np.pi + 0.2
        out.clear()
        status.clear()
        assert h.spin_until(lambda: any("elbow_joint" in s.message for m in status for s in m.status), 5.0,
                            send(beyond))
        assert all(m.points[0].positions[2] <= np.pi for m in out)
    finally:
        h.close()
