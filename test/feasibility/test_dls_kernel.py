"""The compiled kinematics and DLS attempt against pinocchio: forward kinematics, the LOCAL frame Jacobian,
log3/log6 (near 0 and pi too), manipulability, and what a chain may contain."""

import math

import numpy as np
import pinocchio as pin
import pytest

from morobot.feasibility import dls_kernel
from morobot.feasibility.model import ArmModel


def _tree_with_every_joint_kind():
    """A chain of revolute and prismatic joints about aligned and unaligned axes, and a side branch that
    does not move the tool."""
    model = pin.Model()
    rng = np.random.default_rng(5)

    def placement():
        return pin.SE3(pin.exp3(rng.normal(size=3)), rng.normal(scale=0.2, size=3))

    axis = np.array([1.0, 2.0, -0.5]) / math.sqrt(5.25)
    joints = [pin.JointModelRZ(), pin.JointModelRevoluteUnaligned(axis), pin.JointModelPY(),
              pin.JointModelRX(), pin.JointModelPrismaticUnaligned(axis), pin.JointModelRY()]
    parent = 0
    for k, joint in enumerate(joints):
        parent = model.addJoint(parent, joint, placement(), f"j{k}")
        if k == 2:
            model.addJoint(parent, pin.JointModelRZ(), placement(), "side")  # a branch off joint 3
    frame = model.addFrame(pin.Frame("tool", parent, placement(), pin.FrameType.OP_FRAME))
    model.lowerPositionLimit[:] = -2.0
    model.upperPositionLimit[:] = 2.0
    return model, frame


@pytest.fixture(scope="module")
def models():
    out = {name: (arm.model, arm.ee_frame_id) for name, arm in (("panda", ArmModel("panda")), ("ur5", ArmModel("ur5")))}
    out["tree"] = _tree_with_every_joint_kind()
    return out


@pytest.mark.parametrize("name", ["panda", "ur5", "tree"])
def test_kinematics_and_jacobian_equal_pinocchio(models, name):
    model, frame = models[name]
    chain = dls_kernel.chain_arrays(model, frame)
    data = model.createData()
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.uniform(np.maximum(model.lowerPositionLimit, -3.0), np.minimum(model.upperPositionLimit, 3.0))
        rot, pos = dls_kernel.forward(*chain, q)
        pin.computeJointJacobians(model, data, q)
        tool = pin.updateFramePlacement(model, data, frame)
        for j in range(1, model.njoints):
            np.testing.assert_allclose(rot[j - 1], data.oMi[j].rotation, atol=1e-12)
            np.testing.assert_allclose(pos[j - 1], data.oMi[j].translation, atol=1e-12)
        np.testing.assert_allclose(rot[-1], tool.rotation, atol=1e-12)
        np.testing.assert_allclose(pos[-1], tool.translation, atol=1e-12)
        jac = dls_kernel.local_jacobian(chain.axes, chain.parents, rot, pos)
        np.testing.assert_allclose(jac, pin.getFrameJacobian(model, data, frame, pin.LOCAL), atol=1e-12)
    if name == "tree":  # the side branch does not move the tool: its column is zero
        assert not jac[:, model.getJointId("side") - 1].any()
        assert chain.axes[:, 3].sum() == 2  # two prismatic joints


def test_log3_and_log6_equal_pinocchio_at_every_angle():
    rng = np.random.default_rng(1)
    for angle in (0.0, 1e-9, 1e-5, 1e-3, 0.5, 2.0, math.pi - 1e-2, math.pi - 1e-4, math.pi - 1e-7, math.pi):
        for _ in range(20):
            axis = rng.normal(size=3)
            axis /= np.linalg.norm(axis)
            rotation = pin.exp3(axis * angle)
            w = dls_kernel.log3(rotation)
            np.testing.assert_allclose(pin.exp3(w), rotation, atol=1e-12)  # a true logarithm
            assert np.linalg.norm(w) == pytest.approx(angle, abs=1e-9)
            if angle < math.pi - 1e-6:  # at a half turn both axis signs are right
                np.testing.assert_allclose(w, pin.log3(rotation), atol=1e-9)
            transform = pin.SE3(rotation, rng.normal(size=3))
            if angle < math.pi - 1e-6:
                np.testing.assert_allclose(dls_kernel.log6(transform.rotation, transform.translation),
                                           pin.log6(transform).vector, atol=1e-8)


def test_manipulability_equals_the_gram_determinant(models):
    model, frame = models["panda"]
    chain = dls_kernel.chain_arrays(model, frame)
    data = model.createData()
    rng = np.random.default_rng(2)
    for _ in range(20):
        q = rng.uniform(model.lowerPositionLimit, model.upperPositionLimit)
        jac = pin.computeFrameJacobian(model, data, q, frame, pin.LOCAL)
        w, cos = dls_kernel.manipulability(*chain, q, 4, 6)
        assert w == pytest.approx(math.sqrt(max(np.linalg.det(jac @ jac.T), 0.0)), rel=1e-9, abs=1e-15)
        assert cos == pytest.approx(abs(jac[3:, 4] @ jac[3:, 6]), abs=1e-12)
    # the Panda's stretched-out pose is singular
    assert dls_kernel.manipulability(*chain, np.zeros(7), -1, -1)[0] < 1e-6


def test_a_chain_has_only_revolute_and_prismatic_joints():
    for joint in (pin.JointModelSpherical(), pin.JointModelHZ(0.1)):
        model = pin.Model()
        j = model.addJoint(0, joint, pin.SE3.Identity(), "j")
        frame = model.addFrame(pin.Frame("tool", j, pin.SE3.Identity(), pin.FrameType.OP_FRAME))
        with pytest.raises(ValueError):
            dls_kernel.chain_arrays(model, frame)


def test_an_attempt_reports_the_errors_of_the_configuration_it_returns(models):
    """Converged: within the tolerances by pinocchio's forward kinematics; failed (a target beyond reach):
    the reported errors are those of the returned configuration, inside the limits."""
    model, frame = models["panda"]
    chain = dls_kernel.chain_arrays(model, frame)
    lower, upper = model.lowerPositionLimit, model.upperPositionLimit
    bounds = np.array([lower, upper, 0.5 * (lower + upper), 1.0 / (0.5 * (upper - lower)) ** 2])
    settings = np.array([1e-4, 0.005, 0.05, 0.5, 0.0])
    data = model.createData()
    rng = np.random.default_rng(3)

    def tool_errors(q, target):
        pin.framesForwardKinematics(model, data, q)
        current = data.oMf[frame]
        return (np.linalg.norm(target.translation - current.translation),
                np.linalg.norm(pin.log6(current.actInv(target)).vector[3:]))

    for _ in range(10):
        q = rng.uniform(lower, upper)
        pin.framesForwardKinematics(model, data, q)
        target = data.oMf[frame].copy()
        start = np.clip(q + rng.normal(scale=0.1, size=7), lower, upper)
        q_out, ok, its, pos_err, rot_err = dls_kernel.attempt(*chain, target.rotation, target.translation, start,
                                                              bounds, settings, 40, 0, False, True, True)
        assert ok and 0 < its <= 40
        assert (pos_err, rot_err) == pytest.approx(tool_errors(q_out, target), abs=1e-12)
        assert pos_err <= 0.005 and rot_err <= 0.05
    far = pin.SE3(np.eye(3), np.array([3.0, 0.0, 0.5]))
    q_out, ok, its, pos_err, rot_err = dls_kernel.attempt(*chain, far.rotation, far.translation, start, bounds,
                                                          settings, 40, 5, False, True, True)
    assert not ok and its <= 40 and np.all(q_out >= lower) and np.all(q_out <= upper)
    assert (pos_err, rot_err) == pytest.approx(tool_errors(q_out, far), abs=1e-12)


def test_closed_form_solutions_are_ranked_inside_the_limits():
    lower, upper = np.array([-3.0, -1.0]), np.array([3.0, 1.0])
    mid, half = np.zeros(2), np.array([3.0, 1.0])
    reference = np.array([2.0, 0.0])
    candidates = np.array([[2.5 - 2 * math.pi, 0.5],  # joint 1 a turn below its limit: moved up a turn
                           [0.0, 1.5],  # joint 2 outside its limits, no turn brings it in: dropped
                           [2.0, 0.1],  # nearest the reference
                           [-2.9, 0.0]])  # inside, far from the reference
    ranked = dls_kernel.rank_solutions(candidates, lower, upper, reference, mid, half, 1e-3)
    np.testing.assert_allclose(ranked, [[2.0, 0.1], [2.5, 0.5], [-2.9, 0.0]])
    # with a range above a turn (the UR's +-2 pi) the turn nearest the reference is taken
    wide = dls_kernel.rank_solutions(np.array([[-1.0]]), np.array([-2 * math.pi]), np.array([2 * math.pi]),
                                     np.array([4.0]), np.zeros(1), np.array([2 * math.pi]), 1e-3)
    np.testing.assert_allclose(wide, [[2 * math.pi - 1.0]])


def test_distinct_rows_keeps_one_row_per_group_in_order():
    """A row is kept when it is more than ``apart`` from the reference and from every row kept before it."""
    found = np.zeros(2)
    rows = np.array([[0.1, 0.0],   # near found: dropped
                     [1.0, 0.0],   # kept
                     [1.2, 0.3],   # near the kept [1, 0]: dropped
                     [0.0, -1.0],  # kept
                     [2.0, 0.0],   # 1.0 from [1, 0]: kept
                     [0.0, -1.5]])  # exactly apart from [0, -1]: dropped (not more than apart)
    kept = dls_kernel.distinct_rows(rows, found, 0.5)
    assert kept.tolist() == [1, 3, 4]
    assert dls_kernel.distinct_rows(rows[:0], found, 0.5).tolist() == []
