"""Slow exhaustive reference used to validate ``FeasibilityChecker`` (tests and bench only).

It shares no check code with the checker:

* limits from the URDF XML, kinematics from the unreduced URDF model (fingers as joints), for
  the arm the config names (the Panda, the UR5 or another URDF/SRDF);
* manipulability from a central finite-difference Jacobian and its singular values;
* self collision: coal distance between the original triangle meshes (BVH) and finger boxes of
  every allowed link pair (links on different joints, minus the SRDF's pairs; no early exit), plus a containment test of
  the finger boxes' corners;
* scene collision: exact signed distance (open3d) from every obstacle *point* (not voxel) to every
  link mesh, and coal mesh-vs-box distance plus a corner-inside test for the table. The only
  pruning (bounding spheres for pairs and points, vertex bounding boxes for the table) cannot
  skip anything within the margin.

Obstacle points follow the checker's documented semantics: outside the workspace box or within
``table_clearance`` of the table they are not obstacles (the table box stands for them).
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import coal
import numpy as np
import open3d as o3d
import pinocchio as pin
from scipy.spatial import cKDTree

from morobot import paths
from morobot.feasibility.config import FeasibilityConfig
from morobot.robots import ARMS, ArmDescription


def _urdf_limits(urdf: str) -> dict[str, tuple[float, float, float]]:
    out = {}
    for joint in ET.parse(urdf).getroot().iter("joint"):
        limit = joint.find("limit")
        if limit is not None:
            out[joint.get("name")] = (float(limit.get("lower")), float(limit.get("upper")),
                                      float(limit.get("velocity")))
    return out


def _disabled(srdf: str) -> set[frozenset[str]]:
    return {frozenset((e.get("link1"), e.get("link2")))
            for e in ET.parse(srdf).getroot().iter("disable_collisions")}


def _transform(placement: pin.SE3, points: np.ndarray) -> np.ndarray:
    return points @ placement.rotation.T + placement.translation


def _o3d_mesh(obj: pin.GeometryObject) -> tuple[o3d.geometry.TriangleMesh, np.ndarray]:
    if isinstance(obj.geometry, coal.Box):
        half = np.asarray(obj.geometry.halfSide, float)
        mesh = o3d.geometry.TriangleMesh.create_box(*(2 * half))
        mesh.translate(-half)
    else:
        mesh = o3d.io.read_triangle_mesh(obj.meshPath)
        mesh.remove_duplicated_vertices()
    return mesh, np.asarray(mesh.vertices).copy()


class ExhaustiveReference:
    """Ground truth for one configuration, a pose target or a command stream.

    Args:
        config: the settings the checker under test uses.
        points: obstacle point cloud (N, 3) in the arm's base frame (no robot points), or None.
        arm: the arm's description when it is not one of ``morobot.robots.ARMS`` (with the config's
            ``urdf``/``srdf``).
    """

    def __init__(self, config: FeasibilityConfig = FeasibilityConfig(), points: np.ndarray | None = None,
                 arm: ArmDescription | None = None) -> None:
        self.config = config
        if arm is None and config.robot not in ARMS:
            raise ValueError(f"arm {config.robot!r} is not in morobot.robots.ARMS: pass its ArmDescription")
        desc = arm or ARMS[config.robot]
        if config.urdf:
            urdf, srdf = config.urdf, config.srdf
        else:
            folder = paths.robot_dir(desc.description)
            urdf, srdf = str(folder / desc.urdf), str(folder / desc.srdf)
        limits = _urdf_limits(urdf)
        self.model = pin.buildModelFromUrdf(urdf)
        self.data = self.model.createData()
        # the arm: every joint with limits except the gripper's, in the model's configuration order
        self.arm = tuple(name for name in self.model.names[1:]
                         if name in limits and name not in desc.gripper_joints)
        self._arm_idx = [self.model.joints[self.model.getJointId(j)].idx_q for j in self.arm]
        self._q0 = pin.neutral(self.model)
        for j in desc.gripper_joints:
            self._q0[self.model.joints[self.model.getJointId(j)].idx_q] = config.finger_opening
        self.lower = np.array([limits[j][0] for j in self.arm])
        self.upper = np.array([limits[j][1] for j in self.arm])
        self.velocity = np.array([limits[j][2] for j in self.arm])
        self.geoms = pin.buildGeomFromUrdf(self.model, urdf, pin.GeometryType.COLLISION,
                                           package_dirs=[str(paths.robots_share_dir())])
        self.gdata = pin.GeometryData(self.geoms)
        self.ee = self.model.getFrameId(config.ee_frame or desc.ee_frame)
        self.links = [self.model.frames[o.parentFrame].name for o in self.geoms.geometryObjects]
        disabled = _disabled(srdf)
        n = len(self.links)
        joints = [o.parentJoint for o in self.geoms.geometryObjects]  # links fixed to each other never move apart
        self.pairs = [(i, j) for i, j in itertools.combinations(range(n), 2)
                      if joints[i] != joints[j] and frozenset((self.links[i], self.links[j])) not in disabled]
        self._meshes = []
        for obj in self.geoms.geometryObjects:
            mesh, vertices = _o3d_mesh(obj)
            scene = o3d.t.geometry.RaycastingScene()
            scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
            centre = (vertices.min(0) + vertices.max(0)) / 2
            radius = float(np.linalg.norm(vertices - centre, axis=1).max())
            self._meshes.append((scene, vertices, centre, radius))
        self.points = self._obstacle_points(points)
        self._tree = cKDTree(self.points) if len(self.points) else None
        sc = config.scene
        self.table = None
        if sc.table_min is not None:
            lo, hi = np.asarray(sc.table_min, float), np.asarray(sc.table_max, float)
            self.table = (lo, hi, coal.Box(*(hi - lo)), pin.SE3(np.eye(3), (lo + hi) / 2))
        self.scene_geoms = [i for i, link in enumerate(self.links)
                            if link != desc.base_link and link not in sc.ignored_links]

    def _obstacle_points(self, points) -> np.ndarray:
        if points is None:
            return np.zeros((0, 3))
        sc = self.config.scene
        pts = np.asarray(points, float)
        pts = pts[np.isfinite(pts).all(axis=1)]
        keep = ((pts >= sc.workspace_min) & (pts <= sc.workspace_max)).all(axis=1)
        if sc.table_min is not None:
            near_table = ((pts >= np.asarray(sc.table_min) - sc.table_clearance)
                          & (pts <= np.asarray(sc.table_max) + sc.table_clearance)).all(axis=1)
            keep &= ~near_table
        return pts[keep]

    def _full_q(self, q: np.ndarray) -> np.ndarray:
        full = self._q0.copy()
        full[self._arm_idx] = q
        return full

    def _place(self, q: np.ndarray) -> None:
        pin.forwardKinematics(self.model, self.data, self._full_q(q))
        pin.updateFramePlacements(self.model, self.data)
        pin.updateGeometryPlacements(self.model, self.data, self.geoms, self.gdata)

    # ------------------------------------------------------------- geometry
    def manipulability(self, q: np.ndarray, h: float = 1e-6) -> float:
        """Yoshikawa manipulability from a central-difference TCP Jacobian (frame-local)."""
        n = len(self.arm)
        jac = np.zeros((6, n))
        base = self.fk(q)
        for i in range(n):
            dq = np.zeros(n)
            dq[i] = h
            plus, minus = self.fk(q + dq), self.fk(q - dq)
            jac[:3, i] = base.rotation.T @ (plus.translation - minus.translation) / (2 * h)
            jac[3:, i] = pin.log3(minus.rotation.T @ plus.rotation) / (2 * h)
        return float(np.prod(np.linalg.svd(jac, compute_uv=False)))

    def fk(self, q: np.ndarray) -> pin.SE3:
        """TCP pose of the unreduced model."""
        pin.forwardKinematics(self.model, self.data, self._full_q(q))
        return pin.updateFramePlacement(self.model, self.data, self.ee).copy()

    def self_clearance(self, q: np.ndarray) -> float:
        """Smallest distance between allowed link pairs (m; <= 0 when touching / containing).

        Pairs whose bounding spheres are more than the margin apart contribute that sphere gap (a
        lower bound on their distance), so the value is exact whenever it is below the margin.
        """
        self._place(q)
        best = math.inf
        corners_in: dict[int, list[tuple[int, np.ndarray]]] = {}
        centres = [_transform(self.gdata.oMg[k], m[2][None])[0] for k, m in enumerate(self._meshes)]
        for i, j in self.pairs:
            gap = float(np.linalg.norm(centres[i] - centres[j])) - self._meshes[i][3] - self._meshes[j][3]
            if gap >= self.config.self_margin:
                best = min(best, gap)
                continue
            gi, gj = self.geoms.geometryObjects[i].geometry, self.geoms.geometryObjects[j].geometry
            d = coal.distance(gi, self.gdata.oMg[i], gj, self.gdata.oMg[j],
                              coal.DistanceRequest(), coal.DistanceResult())
            best = min(best, d)
            for a, b in ((i, j), (j, i)):
                if isinstance(self.geoms.geometryObjects[a].geometry, coal.Box):
                    corners_in.setdefault(b, []).append((a, _transform(self.gdata.oMg[a], self._meshes[a][1])))
        # A finger box entirely inside a link mesh touches no triangle: test its corners.
        for b, boxes in corners_in.items():
            if self._signed(b, np.concatenate([c for _, c in boxes])).min() < 0.0:
                best = min(best, 0.0)
        return best

    def _signed(self, k: int, world_points: np.ndarray) -> np.ndarray:
        placement = self.gdata.oMg[k]
        local = (world_points - placement.translation) @ placement.rotation
        query = o3d.core.Tensor(local.astype(np.float32))
        return self._meshes[k][0].compute_signed_distance(query).numpy().astype(float)

    def scene_clearance(self, q: np.ndarray) -> float:
        """Smallest distance from the checked links to obstacle points and the table (m).

        Exact up to pruning that cannot skip anything within the margin: bounding spheres for
        points, the vertices' bounding box for the table.
        """
        self._place(q)
        margin = self.config.scene_margin
        best = math.inf
        for k in self.scene_geoms:
            placement = self.gdata.oMg[k]
            _, vertices, centre, radius = self._meshes[k]
            if self._tree is not None:
                near = self._tree.query_ball_point(_transform(placement, centre[None])[0], radius + margin + 1e-6)
                if near:
                    best = min(best, float(self._signed(k, self.points[near]).min()))
            if self.table is not None:
                lo, hi, box, box_pose = self.table
                corners = _transform(placement, vertices)
                if np.any(corners.min(0) > hi + margin) or np.any(corners.max(0) < lo - margin):
                    continue
                geometry = self.geoms.geometryObjects[k].geometry
                d = coal.distance(geometry, placement, box, box_pose, coal.DistanceRequest(), coal.DistanceResult())
                if np.any(np.all((corners >= lo) & (corners <= hi), axis=1)):
                    d = min(d, 0.0)
                best = min(best, d)
        return best

    # -------------------------------------------------------------- verdicts
    def static_feasible(self, q) -> tuple[bool, str]:
        """Whether ``q`` passes limits, singularity, self and scene collision; with the failed check."""
        q = np.asarray(q, float)
        cfg = self.config
        if np.any(q < self.lower + cfg.limit_margin) or np.any(q > self.upper - cfg.limit_margin):
            return False, "joint_limits"
        if self.manipulability(q) < cfg.manipulability_infeasible:
            return False, "singularity"
        if self.self_clearance(q) < cfg.self_margin:
            return False, "self_collision"
        if self.scene_clearance(q) < cfg.scene_margin:
            return False, "scene_collision"
        return True, ""

    def pose_reached(self, q, position, quaternion_wxyz) -> bool:
        """Whether the TCP at ``q`` is within the IK tolerances of the target."""
        tcp = self.fk(np.asarray(q, float))
        w, x, y, z = np.asarray(quaternion_wxyz, float) / np.linalg.norm(quaternion_wxyz)
        target = pin.Quaternion(w, x, y, z).toRotationMatrix()
        cos = (np.trace(tcp.rotation.T @ target) - 1.0) / 2.0
        angle = math.acos(max(-1.0, min(1.0, cos)))
        pos_err = float(np.linalg.norm(tcp.translation - np.asarray(position, float)))
        return pos_err <= self.config.ik.position_tolerance and angle <= self.config.ik.rotation_tolerance

    def rate_feasible(self, qs, stamps) -> list[bool]:
        """Rate verdict of every frame of a stream, recomputed from the whole history each time."""
        cfg = self.config
        limit = cfg.velocity_scale * self.velocity
        qs, stamps = np.asarray(qs, float), np.asarray(stamps, float)
        out = []
        for k in range(len(qs)):
            flags = []
            j = k
            while j > 0 and len(flags) < cfg.rate_window:
                dt = stamps[j] - stamps[j - 1]
                if not 0.0 < dt <= cfg.rate_max_dt:
                    break
                flags.append(bool(np.any(np.abs(qs[j] - qs[j - 1]) > limit * dt)))
                j -= 1
            out.append(sum(flags) < cfg.rate_min_violations)
        return out
