"""Pinocchio kinematics and coal collision geometry of an arm, from its URDF and SRDF (grippers locked).

Any serial arm whose URDF has one-degree-of-freedom joints works; :data:`morobot.robots.ARMS` names
the Panda and the UR5 of example-robot-data, and :class:`morobot.robots.ArmDescription` describes
any other. Each collision mesh becomes its ``coal.Convex`` hull (qhull) for fast GJK queries (the
Panda's meshes are convex already; a hull is conservative where a mesh is not), and each link's boxes (the
Panda's fingers) become their convex hull; the original meshes and boxes stay available
(``mesh_geometry``) for robot-point filtering and the exhaustive reference. Collision pairs: all
pairs of links on different joints, minus the SRDF's ``disable_collisions``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import coal
import numpy as np
import pinocchio as pin

from morobot import paths
from morobot.feasibility.dls_kernel import Chain, chain_arrays
from morobot.robots import ACCELERATION_RAMP, ARMS, PANDA_ARM_JOINTS, PANDA_FINGER_JOINTS, ArmDescription

ARM_JOINTS = PANDA_ARM_JOINTS
FINGER_JOINTS = PANDA_FINGER_JOINTS
#: Joint acceleration limits (rad/s²) of the Franka Emika Panda's datasheet; URDFs carry none.
PANDA_ACCELERATION_LIMITS = np.array(ARMS["panda"].acceleration_limits)


def validate_q(q, n: int = 7, name: str = "q") -> np.ndarray:
    """Return ``q`` as a float array of shape (n,), or raise ValueError (shape, NaN, inf)."""
    array = np.asarray(q, dtype=float)
    if array.shape != (n,):
        raise ValueError(f"{name} must have {n} joint values, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf: {array}")
    return array


def arm_description(arm: str | ArmDescription) -> ArmDescription:
    """The description of a named arm (see :data:`morobot.robots.ARMS`), or ``arm`` itself."""
    if isinstance(arm, ArmDescription):
        return arm
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; known: {', '.join(sorted(ARMS))} "
                         "(or give the URDF and SRDF of another arm)")
    return ARMS[arm]


class ArmModel:
    """Kinematic and collision model of an arm's joints (gripper joints locked).

    Args:
        arm: a name from :data:`morobot.robots.ARMS` or a description.
        finger_opening: fixed opening of each gripper joint (m) used for the finger geometry.
        ee_frame: end-effector frame name ("" or None: the description's).
        urdf: URDF path (default: the description's file in example-robot-data).
        srdf: SRDF path (default: the description's file in example-robot-data).
        package_dir: directory that resolves ``package://`` mesh URIs.
    """

    def __init__(self, arm: str | ArmDescription = "panda", finger_opening: float = 0.04,
                 ee_frame: str | None = None, urdf: str | Path | None = None, srdf: str | Path | None = None,
                 package_dir: str | Path | None = None) -> None:
        desc = self.description = arm_description(arm)
        ee_frame = ee_frame or desc.ee_frame
        if not (urdf and srdf):
            folder = paths.robot_dir(desc.description)
        self.urdf_path = Path(urdf or folder / desc.urdf)
        self.srdf_path = Path(srdf or folder / desc.srdf)
        for path in (self.urdf_path, self.srdf_path):
            if not path.is_file():
                raise ValueError(f"{desc.name}: no such file {path}")
        package_dir = str(package_dir or paths.robots_share_dir())
        full = pin.buildModelFromUrdf(str(self.urdf_path))
        geoms = pin.buildGeomFromUrdf(full, str(self.urdf_path), pin.GeometryType.COLLISION,
                                      package_dirs=[package_dir])
        q_ref = pin.neutral(full)
        missing = [name for name in desc.gripper_joints if not full.existJointName(name)]
        if missing:
            raise ValueError(f"{desc.name}: gripper joints {missing} not in {self.urdf_path}")
        lock = [full.getJointId(name) for name in desc.gripper_joints]
        for jid in lock:
            q_ref[full.joints[jid].idx_q] = finger_opening
        self.model, self.mesh_geometry = pin.buildReducedModel(full, geoms, lock, q_ref)
        if not (self.model.nq == self.model.nv == self.model.njoints - 1 >= 1):
            raise ValueError(f"{desc.name}: the checker needs one-degree-of-freedom joints (revolute or "
                             f"prismatic); {self.urdf_path} has nq={self.model.nq}, nv={self.model.nv}")
        self._joint_names = tuple(self.model.names[1:])
        if desc.name == "panda" and self._joint_names != ARM_JOINTS:
            raise ValueError(f"unexpected joints in {self.urdf_path}: {list(self._joint_names)}")
        n = self.model.nq
        self.data = self.model.createData()
        self.finger_opening = float(finger_opening)
        if not self.model.existFrame(ee_frame):
            raise ValueError(f"end-effector frame {ee_frame!r} not in the URDF")
        if not self.model.existFrame(desc.base_link):
            raise ValueError(f"base link {desc.base_link!r} not in the URDF")
        self.base_link = desc.base_link
        self.ee_frame = ee_frame
        self.ee_frame_id = self.model.getFrameId(ee_frame)
        self.lower = self.model.lowerPositionLimit.copy()
        self.upper = self.model.upperPositionLimit.copy()
        self.velocity_limit = self.model.velocityLimit.copy()
        self.effort_limit = self.model.effortLimit.copy()
        if not (np.isfinite(self.lower).all() and np.isfinite(self.upper).all() and (self.lower < self.upper).all()
                and (self.velocity_limit > 0).all()):
            raise ValueError(f"{desc.name}: every joint needs finite position limits and a velocity limit "
                             "in the URDF")
        if desc.acceleration_limits:
            if len(desc.acceleration_limits) != n:
                raise ValueError(f"{desc.name}: {len(desc.acceleration_limits)} acceleration limits for {n} joints")
            self.acceleration_limit = np.array(desc.acceleration_limits, dtype=float)
        else:
            self.acceleration_limit = self.velocity_limit / ACCELERATION_RAMP
        if desc.wrist_axes and (len(desc.wrist_axes) != 2 or not all(0 <= i < n for i in desc.wrist_axes)):
            raise ValueError(f"{desc.name}: wrist_axes must be two joint indices below {n}")
        self.wrist_axes = tuple(desc.wrist_axes)
        self.mesh_geometry.addAllCollisionPairs()
        pin.removeCollisionPairs(self.model, self.mesh_geometry, str(self.srdf_path))
        self.geometry = self._convex_geometry()
        self.skeleton_frame_ids = [self.model.getFrameId(f) for f in self._skeleton(desc)]
        if desc.ready_pose and len(desc.ready_pose) != n:
            raise ValueError(f"{desc.name}: ready_pose has {len(desc.ready_pose)} values for {n} joints")
        ready = np.array(desc.ready_pose) if desc.ready_pose else 0.5 * (self.lower + self.upper)
        self.ready_pose = np.clip(ready, self.lower, self.upper)

    def _skeleton(self, desc: ArmDescription) -> tuple[str, ...]:
        if desc.skeleton:
            unknown = [f for f in desc.skeleton if not self.model.existFrame(f)]
            if unknown:
                raise ValueError(f"{desc.name}: skeleton frames {unknown} not in the URDF")
            return desc.skeleton
        links = [self.model.frames[self.model.getFrameId(name, pin.FrameType.JOINT)] for name in self._joint_names]
        bodies = []
        for joint_frame in links:  # the link each joint moves: the body frame whose parent is that joint
            body = next(f.name for f in self.model.frames
                        if f.type == pin.FrameType.BODY and f.parentJoint == joint_frame.parentJoint)
            bodies.append(body)
        return (self.base_link, *bodies, self.ee_frame)

    def _convex_geometry(self) -> pin.GeometryModel:
        """Convex geometry: each mesh as ``coal.Convex``, each finger's boxes merged into one hull.

        The finger hull contains its boxes, so it is conservative; merging cuts the pair count.
        """
        convex = pin.GeometryModel()
        fingers: dict[str, list[pin.GeometryObject]] = {}
        for obj in self.mesh_geometry.geometryObjects:
            if isinstance(obj.geometry, coal.Box):
                fingers.setdefault(self.model.frames[obj.parentFrame].name, []).append(obj)
                continue
            # qhull over the vertices: a true hull also where the mesh is not convex (the UR5's are
            # not; GJK on a non-convex "convex" stalls in a local support maximum and overestimates)
            points = coal.StdVec_Vec3s()
            points.extend(np.asarray(obj.geometry.vertices(), float))
            hull = coal.Convex.convexHull(points, False, None)
            convex.addGeometryObject(pin.GeometryObject(obj.name, obj.parentJoint, obj.parentFrame,
                                                        obj.placement, hull))
        for link, boxes in fingers.items():
            corners = []
            for box in boxes:
                half = np.asarray(box.geometry.halfSide, float)
                signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
                corners.extend(box.placement.act(c) for c in signs * half)
            points = coal.StdVec_Vec3s()
            points.extend(corners)
            hull = coal.Convex.convexHull(points, False, None)
            convex.addGeometryObject(pin.GeometryObject(f"{link}_hull", boxes[0].parentJoint,
                                                        boxes[0].parentFrame, pin.SE3.Identity(), hull))
        convex.addAllCollisionPairs()
        pin.removeCollisionPairs(self.model, convex, str(self.srdf_path))
        return convex

    @cached_property
    def chain(self) -> Chain:
        """The joints up to the end-effector frame as the compiled kernels take them (built once)."""
        return chain_arrays(self.model, self.ee_frame_id)

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The arm joint names in configuration order."""
        return self._joint_names

    @property
    def nq(self) -> int:
        """Number of arm joints."""
        return self.model.nq

    def link_name(self, geometry_index: int) -> str:
        """Name of the link (frame) that carries a geometry object."""
        obj = self.geometry.geometryObjects[geometry_index]
        return self.model.frames[obj.parentFrame].name

    def ee_placement(self, q: np.ndarray, data: pin.Data | None = None) -> pin.SE3:
        """Pose of the end-effector frame in the base link's frame."""
        data = data or self.data
        pin.forwardKinematics(self.model, data, q)
        return pin.updateFramePlacement(self.model, data, self.ee_frame_id).copy()

    def skeleton_points(self, q) -> np.ndarray:
        """Origins (N, 3) of the skeleton frames, base to tool, in the base frame (for overlays)."""
        q = validate_q(q, self.nq)
        pin.framesForwardKinematics(self.model, self.data, q)
        return np.array([self.data.oMf[i].translation for i in self.skeleton_frame_ids])


class PandaModel(ArmModel):
    """The Panda of example-robot-data (``ArmModel("panda", ...)``), fingers at ``finger_opening``."""

    def __init__(self, finger_opening: float = 0.04, ee_frame: str = "panda_hand_tcp",
                 urdf: str | Path | None = None, srdf: str | Path | None = None,
                 package_dir: str | Path | None = None) -> None:
        super().__init__("panda", finger_opening, ee_frame, urdf, srdf, package_dir)
