"""Pinocchio kinematics and coal collision geometry of the Panda arm (fingers locked).

The URDF's collision meshes are convex (mesh volume equals hull volume), so each one becomes a
``coal.Convex`` for fast GJK queries, and each finger's four boxes become their convex hull; the
original meshes and boxes stay available (``mesh_geometry``) for robot-point filtering and the
exhaustive reference. Collision pairs: all pairs of links on different joints, minus the SRDF's
``disable_collisions``.
"""

from __future__ import annotations

from pathlib import Path

import coal
import numpy as np
import pinocchio as pin

from morobot import paths
from morobot.robots import PANDA_ARM_JOINTS, PANDA_FINGER_JOINTS

ARM_JOINTS = PANDA_ARM_JOINTS
FINGER_JOINTS = PANDA_FINGER_JOINTS
#: Joint acceleration limits (rad/s²) of the Franka Emika Panda's datasheet; URDFs carry none.
PANDA_ACCELERATION_LIMITS = np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0])
# Frames drawn as the arm's skeleton in overlays, base to tool.
SKELETON_FRAMES = ("panda_link0", "panda_link1", "panda_link2", "panda_link3", "panda_link4",
                   "panda_link5", "panda_link6", "panda_link7", "panda_hand", "panda_hand_tcp")


def validate_q(q, n: int = 7, name: str = "q") -> np.ndarray:
    """Return ``q`` as a float array of shape (n,), or raise ValueError (shape, NaN, inf)."""
    array = np.asarray(q, dtype=float)
    if array.shape != (n,):
        raise ValueError(f"{name} must have {n} joint values, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf: {array}")
    return array


class PandaModel:
    """Kinematic and collision model of the 7 Panda arm joints.

    Args:
        finger_opening: fixed opening of each finger (m) used for the finger geometry.
        ee_frame: end-effector frame name.
        urdf: URDF path (default: example-robot-data's panda.urdf).
        srdf: SRDF path (default: example-robot-data's panda.srdf).
        package_dir: directory that resolves ``package://`` mesh URIs.
    """

    def __init__(self, finger_opening: float = 0.04, ee_frame: str = "panda_hand_tcp",
                 urdf: str | Path | None = None, srdf: str | Path | None = None,
                 package_dir: str | Path | None = None) -> None:
        self.urdf_path = Path(urdf or paths.panda_urdf())
        self.srdf_path = Path(srdf or paths.panda_srdf())
        package_dir = str(package_dir or paths.robots_share_dir())
        full = pin.buildModelFromUrdf(str(self.urdf_path))
        geoms = pin.buildGeomFromUrdf(full, str(self.urdf_path), pin.GeometryType.COLLISION,
                                      package_dirs=[package_dir])
        q_ref = pin.neutral(full)
        lock = [full.getJointId(name) for name in FINGER_JOINTS]
        for jid in lock:
            q_ref[full.joints[jid].idx_q] = finger_opening
        self.model, self.mesh_geometry = pin.buildReducedModel(full, geoms, lock, q_ref)
        if tuple(self.model.names[1:]) != ARM_JOINTS:
            raise ValueError(f"unexpected joints in {self.urdf_path}: {list(self.model.names[1:])}")
        self.data = self.model.createData()
        self.finger_opening = float(finger_opening)
        if not self.model.existFrame(ee_frame):
            raise ValueError(f"end-effector frame {ee_frame!r} not in the URDF")
        self.ee_frame = ee_frame
        self.ee_frame_id = self.model.getFrameId(ee_frame)
        self.lower = self.model.lowerPositionLimit.copy()
        self.upper = self.model.upperPositionLimit.copy()
        self.velocity_limit = self.model.velocityLimit.copy()
        self.effort_limit = self.model.effortLimit.copy()
        self.mesh_geometry.addAllCollisionPairs()
        pin.removeCollisionPairs(self.model, self.mesh_geometry, str(self.srdf_path))
        self.geometry = self._convex_geometry()
        self.skeleton_frame_ids = [self.model.getFrameId(f) for f in SKELETON_FRAMES]
        ready = [0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398]
        self.ready_pose = np.clip(np.array(ready), self.lower, self.upper)

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
            mesh = obj.geometry.clone()
            mesh.buildConvexRepresentation(False)
            convex.addGeometryObject(pin.GeometryObject(obj.name, obj.parentJoint, obj.parentFrame,
                                                        obj.placement, mesh.convex))
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

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The 7 arm joint names in configuration order."""
        return ARM_JOINTS

    def link_name(self, geometry_index: int) -> str:
        """Name of the link (frame) that carries a geometry object."""
        obj = self.geometry.geometryObjects[geometry_index]
        return self.model.frames[obj.parentFrame].name

    def ee_placement(self, q: np.ndarray, data: pin.Data | None = None) -> pin.SE3:
        """Pose of the end-effector frame in ``panda_link0``."""
        data = data or self.data
        pin.forwardKinematics(self.model, data, q)
        return pin.updateFramePlacement(self.model, data, self.ee_frame_id).copy()

    def skeleton_points(self, q) -> np.ndarray:
        """Origins (10, 3) of link0..link7, hand and TCP frames in ``panda_link0`` (for overlays)."""
        q = validate_q(q)
        pin.framesForwardKinematics(self.model, self.data, q)
        return np.array([self.data.oMf[i].translation for i in self.skeleton_frame_ids])
