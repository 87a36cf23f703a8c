"""Self and scene collision checks with a safety margin (pinocchio + coal, convex link geometry).

Both run the pair loop in C++ (``pinocchio.computeCollisions``) and stop at the first pair closer
than the margin (coal's ``security_margin``). The scene is a coal ``OcTree`` of obstacle voxels plus
an optional table box; the robot's base link (``panda_link0``, the UR5's ``base_link``) is not
checked against the scene (it is bolted to the table and no command moves it).
"""

from __future__ import annotations

import coal
import numpy as np
import pinocchio as pin

from morobot.feasibility.model import ArmModel
from morobot.feasibility.verdict import CheckResult


def _set_margin(gdata: pin.GeometryData, margin: float) -> None:
    for request in gdata.collisionRequests:
        request.security_margin = margin
        request.enable_contact = False
        request.num_max_contacts = 1


class SelfCollision:
    """Self-collision check over the non-disabled link pairs.

    ``value``: number of pairs found closer than the margin (at most 1 with ``stop_at_first``).

    Args:
        robot: model with convex collision geometry and SRDF-pruned pairs.
        margin: minimum clearance (m).
        stop_at_first: stop at the first colliding pair.
    """

    def __init__(self, robot: ArmModel, margin: float = 0.01, stop_at_first: bool = True) -> None:
        self.robot = robot
        self.margin = margin
        self.stop_at_first = stop_at_first
        self._data = robot.model.createData()
        self._gdata = pin.GeometryData(robot.geometry)
        _set_margin(self._gdata, margin)

    @property
    def num_pairs(self) -> int:
        """Number of checked geometry pairs."""
        return len(self.robot.geometry.collisionPairs)

    def __call__(self, q: np.ndarray) -> CheckResult:
        robot = self.robot
        if not pin.computeCollisions(robot.model, self._data, robot.geometry, self._gdata, q, self.stop_at_first):
            return CheckResult.ok(0)
        hits = [k for k, r in enumerate(self._gdata.collisionResults) if r.isCollision()]
        pair = robot.geometry.collisionPairs[hits[0]]
        a, b = robot.link_name(pair.first), robot.link_name(pair.second)
        return CheckResult.fail(len(hits), f"self collision: {a} and {b} closer than {self.margin * 1000:.0f} mm")


class SceneCollision:
    """Robot-vs-obstacles check: an octree of obstacle voxels and the table box.

    ``value``: number of geometry pairs found closer than the margin.

    Args:
        robot: model with convex collision geometry.
        margin: minimum clearance (m).
        table_min: table box lower corner in the base frame or None.
        table_max: table box upper corner.
        ignored_links: links not checked against the scene.
        stop_at_first: stop at the first colliding pair.
    """

    def __init__(self, robot: ArmModel, margin: float = 0.01, table_min=None, table_max=None,
                 ignored_links: tuple[str, ...] = (), stop_at_first: bool = True) -> None:
        self.robot = robot
        self.margin = margin
        self.stop_at_first = stop_at_first
        self.table = None
        if table_min is not None:
            lo, hi = np.asarray(table_min, float), np.asarray(table_max, float)
            self.table = (lo, hi)
        unknown = set(ignored_links) - {f.name for f in robot.model.frames}
        if unknown:
            raise ValueError(f"ignored_links not in the robot model: {sorted(unknown)}")
        skip = set(ignored_links) | {robot.base_link}
        self._checked = [i for i in range(robot.geometry.ngeoms) if robot.link_name(i) not in skip]
        self._data = robot.model.createData()
        self.voxel_size = 0.0
        self.num_voxels = 0
        self._octree = None
        self.set_voxels(np.zeros((0, 3)), 0.02)

    def set_voxels(self, centres: np.ndarray, voxel_size: float) -> None:
        """Replace the obstacle voxels (cells aligned to multiples of ``voxel_size``)."""
        centres = np.asarray(centres, float).reshape(-1, 3)
        geometry = self.robot.geometry.copy()
        geometry.removeAllCollisionPairs()
        obstacles = []
        if len(centres):
            self._octree = coal.makeOctree(centres, voxel_size)
            obstacles.append(geometry.addGeometryObject(
                pin.GeometryObject("obstacles", 0, 0, pin.SE3.Identity(), self._octree)))
        else:
            self._octree = None
        if self.table is not None:
            lo, hi = self.table
            box = coal.Box(*(hi - lo))
            obstacles.append(geometry.addGeometryObject(
                pin.GeometryObject("table", 0, 0, pin.SE3(np.eye(3), (lo + hi) / 2), box)))
        for obstacle in obstacles:
            for i in self._checked:
                geometry.addCollisionPair(pin.CollisionPair(i, obstacle))
        self._geometry = geometry
        self._gdata = pin.GeometryData(geometry)
        _set_margin(self._gdata, self.margin)
        self.voxel_size = float(voxel_size)
        self.num_voxels = len(centres)

    def obstacle_boxes(self) -> np.ndarray:
        """Occupied octree leaves as rows ``(x, y, z, edge)`` (centre and edge length, m)."""
        if self._octree is None:
            return np.zeros((0, 4))
        return np.asarray(self._octree.toBoxes())[:, :4]

    def __call__(self, q: np.ndarray) -> CheckResult:
        if not self._geometry.collisionPairs:
            return CheckResult.ok(0, "no obstacles")
        robot = self.robot
        if not pin.computeCollisions(robot.model, self._data, self._geometry, self._gdata, q, self.stop_at_first):
            return CheckResult.ok(0)
        hits = [k for k, r in enumerate(self._gdata.collisionResults) if r.isCollision()]
        pair = self._geometry.collisionPairs[hits[0]]
        what = self._geometry.geometryObjects[pair.second].name
        link = robot.link_name(pair.first)
        return CheckResult.fail(len(hits), f"scene collision: {link} closer than {self.margin * 1000:.0f} mm "
                                           f"to the {what}")
