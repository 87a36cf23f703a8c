"""MuJoCo model of the Panda on a table with a block, a target marker and a peg-in-hole fixture.

The robot comes from the example-robot-data URDF (collision meshes, masses, limits); everything
else (table, objects, camera, lights, actuators, collision exclusions) is added in code through
``mujoco.MjSpec``. All layout positions are given in the ``panda_link0`` frame; only the base pose
is given in the MuJoCo world frame (floor at z = 0).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import mujoco
import numpy as np

from morobot import paths
from morobot.robots import PANDA_ARM_JOINTS, PANDA_FINGER_JOINTS

ARM_JOINTS = PANDA_ARM_JOINTS
FINGER_JOINTS = PANDA_FINGER_JOINTS
ROBOT_GEOM_GROUP = 2
SCENE_GEOM_GROUP = 0
MARKER_GEOM_GROUP = 1


@dataclass(frozen=True)
class SceneLayout:
    """Geometry of the scene. Positions in ``panda_link0`` (m) unless stated otherwise.

    Attributes:
        base_position: ``panda_link0`` origin in the MuJoCo world frame (m); z is the table top.
        base_yaw: rotation of ``panda_link0`` about world z (rad).
        table_min: lower corner of the table box in ``panda_link0`` (top face at z = 0).
        table_max: upper corner of the table box in ``panda_link0``.
        block_size: edge length of the cubic block (m).
        block_mass: mass of the block (kg).
        block_position: default block centre (x, y) on the table.
        target_position: centre (x, y) of the flat target marker region.
        target_radius: radius of the target marker (m).
        fixture_position: centre (x, y) of the square hole of the peg-in-hole fixture.
        hole_size: inner edge of the square hole (m); larger than ``block_size``.
        fixture_wall: wall thickness (m).
        fixture_height: wall height (m).
        camera_position: fixed camera position.
        camera_target: point the camera looks at.
        camera_fovy: vertical field of view (deg).
    """

    base_position: tuple[float, float, float] = (-0.3, 0.1, 0.75)
    base_yaw: float = 0.0
    table_min: tuple[float, float, float] = (-0.25, -0.7, -0.05)
    table_max: tuple[float, float, float] = (0.9, 0.7, 0.0)
    block_size: float = 0.05
    block_mass: float = 0.1
    block_position: tuple[float, float] = (0.5, 0.0)
    target_position: tuple[float, float] = (0.45, 0.3)
    target_radius: float = 0.05
    fixture_position: tuple[float, float] = (0.45, -0.3)
    hole_size: float = 0.058
    fixture_wall: float = 0.02
    fixture_height: float = 0.04
    camera_position: tuple[float, float, float] = (1.35, 0.8, 0.85)
    camera_target: tuple[float, float, float] = (0.3, 0.0, 0.4)
    camera_fovy: float = 55.0

    def base_transform(self) -> np.ndarray:
        """4x4 pose of ``panda_link0`` in the MuJoCo world frame."""
        c, s = math.cos(self.base_yaw), math.sin(self.base_yaw)
        tf = np.eye(4)
        tf[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
        tf[:3, 3] = self.base_position
        return tf


def yaw_quat(yaw: float) -> list[float]:
    """Quaternion (w, x, y, z) of a rotation about z."""
    return [math.cos(yaw / 2.0), 0.0, 0.0, math.sin(yaw / 2.0)]


def look_at_quat(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Quaternion (w, x, y, z) of a MuJoCo camera at ``position`` looking at ``target``.

    MuJoCo cameras look along their -z axis with +y up; world +z is kept up in the image.
    """
    forward = np.asarray(target, float) - np.asarray(position, float)
    forward /= np.linalg.norm(forward)
    x_axis = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(x_axis) < 1e-9:
        raise ValueError("camera looks straight up or down; pick another camera target")
    x_axis /= np.linalg.norm(x_axis)
    z_axis = -forward
    y_axis = np.cross(z_axis, x_axis)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([x_axis, y_axis, z_axis]).ravel())
    return quat


def srdf_disabled_pairs(srdf_path: str) -> list[tuple[str, str]]:
    """Link pairs whose collisions the SRDF disables."""
    root = ET.parse(srdf_path).getroot()
    return [(e.get("link1"), e.get("link2")) for e in root.iter("disable_collisions")]


def _robot_spec() -> mujoco.MjSpec:
    text = paths.panda_urdf().read_text()
    text = text.replace("package://", str(paths.robots_share_dir()) + "/")
    spec = mujoco.MjSpec.from_string(text)
    spec.compiler.fusestatic = False
    spec.compiler.discardvisual = False
    return spec


def _to_world(layout: SceneLayout, xyz) -> list[float]:
    point = layout.base_transform() @ np.append(np.asarray(xyz, float), 1.0)
    return point[:3].tolist()


def _add_robot_details(spec: mujoco.MjSpec, layout: SceneLayout) -> None:
    base = spec.body("panda_link0")
    base.pos = list(layout.base_position)
    base.quat = yaw_quat(layout.base_yaw)
    for geom in spec.geoms:
        geom.group = ROBOT_GEOM_GROUP
        geom.rgba = [0.92, 0.92, 0.95, 1.0]
    for name in ARM_JOINTS:
        spec.joint(name).armature = 0.1
    for link1, link2 in srdf_disabled_pairs(str(paths.panda_srdf())):
        spec.add_exclude(bodyname1=link1, bodyname2=link2)
    spec.body("panda_hand_tcp").add_site(name="tcp", size=[0.005, 0.005, 0.005], group=4)
    for name in ARM_JOINTS:
        effort = _urdf_limits()[name][2]
        act = spec.add_actuator(name=f"{name}_motor", target=name,
                                trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_motor()
        act.ctrllimited = True
        act.ctrlrange = [-effort, effort]
        act.forcelimited = True
        act.forcerange = [-effort, effort]
    lower, upper, effort, _ = _urdf_limits()[FINGER_JOINTS[0]]
    grip = spec.add_actuator(name="gripper", target=FINGER_JOINTS[0],
                             trntype=mujoco.mjtTrn.mjTRN_JOINT)
    grip.set_to_position(kp=1000.0, dampratio=1.0)
    grip.ctrllimited = True
    grip.ctrlrange = [lower, upper]
    grip.forcelimited = True
    grip.forcerange = [-effort, effort]


def _add_environment(spec: mujoco.MjSpec, layout: SceneLayout) -> None:
    world = spec.worldbody
    world.add_light(pos=[0.5, 0.0, 3.0], dir=[0.0, 0.0, -1.0], diffuse=[0.7, 0.7, 0.7])
    world.add_light(pos=[2.0, 1.5, 2.5], dir=[-0.6, -0.5, -0.6], diffuse=[0.4, 0.4, 0.4])
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3.0, 3.0, 0.05],
                   rgba=[0.35, 0.38, 0.42, 1.0], group=SCENE_GEOM_GROUP)
    tmin, tmax = np.array(layout.table_min), np.array(layout.table_max)
    table = world.add_body(name="table", pos=_to_world(layout, (tmin + tmax) / 2.0),
                           quat=yaw_quat(layout.base_yaw))
    table.add_geom(name="table_top", type=mujoco.mjtGeom.mjGEOM_BOX, size=((tmax - tmin) / 2).tolist(),
                   rgba=[0.55, 0.4, 0.25, 1.0], group=SCENE_GEOM_GROUP, friction=[0.8, 0.01, 0.001])
    _add_objects(world, layout)
    world.add_camera(name="scene_cam", pos=_to_world(layout, layout.camera_position),
                     quat=look_at_quat(_to_world(layout, layout.camera_position),
                                       _to_world(layout, layout.camera_target)).tolist(),
                     fovy=layout.camera_fovy)


def _add_objects(world, layout: SceneLayout) -> None:
    half = layout.block_size / 2.0
    bx, by = layout.block_position
    block = world.add_body(name="block", pos=_to_world(layout, (bx, by, half)),
                           quat=yaw_quat(layout.base_yaw))
    block.add_freejoint(name="block_free")
    block.add_geom(name="block_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=[half] * 3,
                   mass=layout.block_mass, rgba=[0.85, 0.2, 0.15, 1.0], group=SCENE_GEOM_GROUP,
                   friction=[1.0, 0.01, 0.001], condim=4)
    tx, ty = layout.target_position
    world.add_geom(name="target_marker", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                   pos=_to_world(layout, (tx, ty, 0.001)), size=[layout.target_radius, 0.001, 0.0],
                   rgba=[0.1, 0.8, 0.2, 1.0], contype=0, conaffinity=0, group=MARKER_GEOM_GROUP)
    fixture = world.add_body(name="fixture", pos=_to_world(layout, (*layout.fixture_position, 0.0)),
                             quat=yaw_quat(layout.base_yaw))
    inner, wall, height = layout.hole_size / 2.0, layout.fixture_wall, layout.fixture_height
    outer = inner + wall
    walls = {  # centre (x, y) and half sizes (x, y) of the four walls around the hole
        "px": ((inner + wall / 2, 0.0), (wall / 2, outer)),
        "nx": ((-inner - wall / 2, 0.0), (wall / 2, outer)),
        "py": ((0.0, inner + wall / 2), (inner, wall / 2)),
        "ny": ((0.0, -inner - wall / 2), (inner, wall / 2)),
    }
    for name, ((cx, cy), (hx, hy)) in walls.items():
        fixture.add_geom(name=f"fixture_{name}", type=mujoco.mjtGeom.mjGEOM_BOX,
                         pos=[cx, cy, height / 2], size=[hx, hy, height / 2],
                         rgba=[0.2, 0.35, 0.8, 1.0], group=SCENE_GEOM_GROUP)


_LIMITS: dict[str, tuple[float, float, float, float]] = {}


def _urdf_limits() -> dict[str, tuple[float, float, float, float]]:
    """Per joint (lower, upper, effort, velocity) from the URDF, cached."""
    if not _LIMITS:
        root = ET.parse(str(paths.panda_urdf())).getroot()
        for joint in root.iter("joint"):
            limit = joint.find("limit")
            if limit is not None:
                _LIMITS[joint.get("name")] = tuple(
                    float(limit.get(k)) for k in ("lower", "upper", "effort", "velocity"))
    return _LIMITS


def urdf_limits() -> dict[str, tuple[float, float, float, float]]:
    """Per joint ``(lower, upper, effort, velocity)`` read from the Panda URDF."""
    return dict(_urdf_limits())


def build_model(layout: SceneLayout = SceneLayout(), timestep: float = 0.001) -> mujoco.MjModel:
    """Compile the Panda-on-a-table scene.

    Args:
        layout: scene geometry.
        timestep: physics step (s).

    Returns:
        The compiled model: 7 motor actuators (torque, limited to the URDF effort) on the arm
        joints and one position actuator on the (mimicked) fingers.
    """
    if not (math.isfinite(timestep) and 0.0 < timestep <= 0.01):
        raise ValueError(f"timestep must be in (0, 0.01] s, got {timestep}")
    if layout.hole_size <= layout.block_size:
        raise ValueError("hole_size must exceed block_size so the block fits the fixture")
    spec = _robot_spec()
    spec.option.timestep = timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.visual.global_.offwidth = 1280
    spec.visual.global_.offheight = 960
    _add_robot_details(spec, layout)
    _add_environment(spec, layout)
    return spec.compile()
