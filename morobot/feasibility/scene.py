"""Point cloud -> obstacle voxels: crop, drop table and robot points, voxelize.

Every kept point lies inside one obstacle cube (edge ``voxel_size``, cells aligned to multiples of
``voxel_size`` in the base frame), so clearance to the cubes is a lower bound on clearance to the
points. The table is not voxelized: points within ``table_clearance`` of the table box (e.g. on its top
face) are dropped and the table box itself is the obstacle. Robot points are found with
exact signed distances to the robot's collision meshes (open3d) at the configuration the cloud was
taken at.
"""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pinocchio as pin

from morobot.feasibility.config import SceneConfig
from morobot.feasibility.model import ArmModel


def validate_points(points) -> np.ndarray:
    """Return the finite rows of an (N, 3) cloud; raise ValueError for any other shape.

    Non-finite rows (invalid depth pixels) are dropped rather than rejected: organized clouds
    mark missing returns with NaN.
    """
    array = np.asarray(points, dtype=float)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {array.shape}")
    return array[np.all(np.isfinite(array), axis=1)]


def _geometry_mesh(obj: pin.GeometryObject) -> o3d.geometry.TriangleMesh:
    if obj.meshPath and obj.meshPath.lower().endswith((".stl", ".obj", ".dae", ".ply")):
        mesh = o3d.io.read_triangle_mesh(obj.meshPath)
        mesh.vertices = o3d.utility.Vector3dVector(np.asarray(mesh.vertices) * obj.meshScale)
        mesh.remove_duplicated_vertices()
        return mesh
    half = np.asarray(obj.geometry.halfSide, float)
    mesh = o3d.geometry.TriangleMesh.create_box(*(2 * half))
    mesh.translate(-half)
    return mesh


class RobotSurface:
    """Signed distance from points to the robot's collision geometry at a configuration.

    Args:
        robot: the model whose ``mesh_geometry`` (original meshes and finger boxes) is used.
    """

    def __init__(self, robot: ArmModel) -> None:
        self.robot = robot
        self._scenes = []
        self._centres = []
        self._radii = []
        for obj in robot.mesh_geometry.geometryObjects:
            mesh = _geometry_mesh(obj)
            vertices = np.asarray(mesh.vertices)
            centre = (vertices.min(0) + vertices.max(0)) / 2
            scene = o3d.t.geometry.RaycastingScene()
            scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
            self._scenes.append(scene)
            self._centres.append(centre)
            self._radii.append(float(np.linalg.norm(vertices - centre, axis=1).max()))
        self._data = robot.model.createData()
        self._gdata = pin.GeometryData(robot.mesh_geometry)

    def distance(self, points: np.ndarray, q: np.ndarray, cutoff: float) -> np.ndarray:
        """Signed distance (m, negative inside) from each point to the robot, capped at ``cutoff``."""
        pin.updateGeometryPlacements(self.robot.model, self._data, self.robot.mesh_geometry, self._gdata, q)
        result = np.full(len(points), float(cutoff))
        for k, scene in enumerate(self._scenes):
            placement = self._gdata.oMg[k]
            local = (points - placement.translation) @ placement.rotation
            near = np.linalg.norm(local - self._centres[k], axis=1) < self._radii[k] + cutoff
            if not np.any(near):
                continue
            query = o3d.core.Tensor(local[near].astype(np.float32))
            dist = scene.compute_signed_distance(query).numpy().astype(float)
            result[near] = np.minimum(result[near], dist)
        return result


def filter_points(points: np.ndarray, config: SceneConfig, surface: RobotSurface | None = None,
                  q_robot: np.ndarray | None = None) -> np.ndarray:
    """Keep the obstacle points of a cloud in the base frame.

    Args:
        points: (N, 3) cloud; non-finite rows are dropped.
        config: workspace, table and robot padding settings.
        surface: robot geometry for dropping the robot's own points.
        q_robot: configuration when the cloud was taken; None keeps points near the robot.

    Returns:
        (M, 3) points inside the workspace that are neither table nor robot points.
    """
    pts = validate_points(points)
    lo, hi = np.asarray(config.workspace_min), np.asarray(config.workspace_max)
    pts = pts[np.all((pts >= lo) & (pts <= hi), axis=1)]
    if config.table_min is not None:
        tmin = np.asarray(config.table_min) - config.table_clearance
        tmax = np.asarray(config.table_max) + config.table_clearance
        pts = pts[~np.all((pts >= tmin) & (pts <= tmax), axis=1)]
    if surface is not None and q_robot is not None and len(pts):
        pts = pts[surface.distance(pts, q_robot, config.robot_padding) >= config.robot_padding]
    return pts


def voxel_centres(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """Centres (M, 3) of the occupied cells of a grid aligned to multiples of ``voxel_size``."""
    if len(points) == 0:
        return np.zeros((0, 3))
    cells = np.unique(np.floor(points / voxel_size).astype(np.int64), axis=0)
    return (cells + 0.5) * voxel_size
