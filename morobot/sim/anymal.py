"""MuJoCo simulation of ANYmal C for navigation: one rigid body on procedural terrain (no ROS).

The model is built in code from the ANYmal C URDF of example-robot-data: every link's collision
primitives (boxes, cylinders, spheres) and inertia are placed with the legs frozen in the nominal
standing pose (``standing`` in example-robot-data's SRDF) and welded into a single floating body.
Welding keeps the physics cheap (one free joint) while the legs' real collision geometry still
hits steps, boxes and walls. Link inertias that violate the triangle inequality (the URDF's depth
cameras and hatch do) are balanced before they are merged (:func:`balance_inertia`).

The body is carried and pushed by MuJoCo actuators that the locomotion abstraction
(:mod:`morobot.sim.locomotion`) retargets every ``control_dt``:

* four vertical spring-damper "legs" (site transmission from a trunk site above each foot to a
  world reference site, force range ``[0, max_leg_force]``), evaluated implicitly at every
  physics step;
* planar and yaw velocity actuators on the base whose force ranges are set from the traction
  budget; a slip force on too-steep slopes goes through ``xfrc_applied``.

The terrain is the world's heightfield split into tiles of ``tile_cells`` cells (each tile its own
MuJoCo hfield with a tight elevation range, which keeps ray casting fast); boxes are box geoms; a
floor 2 m below the lowest terrain catches a robot that walks off the map edge.

Run ``python -m morobot.sim.anymal`` to measure the real-time factor and the depth scan time.

Length: one robot's simulator: URDF to rigid body, the MuJoCo model, and the stepping, sensing and fall/stuck flags that use both.
"""

from __future__ import annotations

import argparse
import math
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import mujoco
import numpy as np

from morobot.sim.controlled import ControlledSim
from morobot.sim.params import CAMERA_NAMES
from morobot.sim.depth import DepthCamera, DepthSensor, DepthSensorConfig, rpy_matrix
from morobot.sim.locomotion import (
    LEG_NAMES,
    BaseState,
    LocomotionConfig,
    LocomotionController,
    LocomotionOutput,
    StuckDetector,
    quat_to_matrix,
)
from morobot.sim.worlds import World, interpolate_grid
from morobot.sim.patches import contact_heights

__all__ = [
    "STANDING_POSE", "AnymalSim", "AnymalSimConfig", "BaseState", "RobotBody", "anymal_depth_cameras",
    "balance_inertia", "build_model", "load_robot_body",
]

STANDING_POSE: Mapping[str, float] = {
    "LF_HAA": -0.1, "LF_HFE": 0.7, "LF_KFE": -1.0,
    "RF_HAA": 0.1, "RF_HFE": 0.7, "RF_KFE": -1.0,
    "LH_HAA": -0.1, "LH_HFE": -0.7, "LH_KFE": 1.0,
    "RH_HAA": 0.1, "RH_HFE": -0.7, "RH_KFE": 1.0,
}
"""Joint angles (rad) of example-robot-data's ``standing`` state for ANYmal C."""


def camera_links(names: Sequence[str]) -> tuple[str, ...]:
    """The URDF links of ANYmal's depth cameras by name (``front`` -> ``depth_camera_front_camera_parent``)."""
    return tuple(f"depth_camera_{name}_camera_parent" for name in names)


#: ANYmal C's four depth cameras (its URDF's): front and rear, left and right, each tilted 30 deg down (names in
#: :data:`morobot.sim.params.CAMERA_NAMES`). With only the front and rear ones a robot walking sideways meets
#: boxes it has never seen (session 27).
DEFAULT_CAMERA_LINKS = camera_links(CAMERA_NAMES)


# --------------------------------------------------------------------------- URDF -> rigid body
@dataclass
class RobotBody:
    """The robot frozen in one joint configuration, expressed in the base frame.

    Attributes:
        geoms: collision primitives ``(link, type, size, pos, rotation)`` with MuJoCo sizes (half
            extents for boxes, ``(radius, half_length)`` for cylinders, ``(radius,)`` spheres).
        mass: total mass (kg).
        com: centre of mass (m).
        inertia: inertia about the centre of mass (kg m^2), 3x3.
        frames: link name -> 4x4 pose in the base frame.
        feet: ``[4, 3]`` lowest points of the foot spheres (order LF, RF, LH, RH).
    """

    geoms: list[tuple[str, str, tuple[float, ...], np.ndarray, np.ndarray]]
    mass: float
    com: np.ndarray
    inertia: np.ndarray
    frames: dict[str, np.ndarray]
    feet: np.ndarray


def balance_inertia(inertia: np.ndarray, floor: float = 1e-7) -> np.ndarray:
    """Make an inertia matrix physical: positive principal moments obeying the triangle inequality.

    Principal moments below ``floor`` are raised to it; when the largest exceeds the sum of the
    other two, the two smaller ones are raised equally until it no longer does.
    """
    inertia = np.asarray(inertia, dtype=float)
    if inertia.shape != (3, 3) or not np.all(np.isfinite(inertia)):
        raise ValueError("inertia must be a finite 3x3 matrix")
    sym = 0.5 * (inertia + inertia.T)
    w, v = np.linalg.eigh(sym)
    w = np.maximum(w, floor)
    excess = w[2] - (w[0] + w[1])
    if excess > 0:
        w[0] += 0.5 * excess
        w[1] += 0.5 * excess
    return (v * w) @ v.T


def _origin(el: Optional[ET.Element]) -> np.ndarray:
    t = np.eye(4)
    if el is not None:
        t[:3, :3] = rpy_matrix(*(float(v) for v in el.get("rpy", "0 0 0").split()))
        t[:3, 3] = [float(v) for v in el.get("xyz", "0 0 0").split()]
    return t


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = np.eye(4)
    t[:3, :3] = np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k
    return t


def load_robot_body(urdf: Path, joints: Mapping[str, float], root: str = "base") -> RobotBody:
    """Parse a URDF and freeze it at ``joints`` into a :class:`RobotBody`.

    Raises:
        FileNotFoundError: the URDF does not exist.
        ValueError: unparsable URDF, unknown joint names or unsupported collision geometry.
    """
    urdf = Path(urdf)
    if not urdf.is_file():
        raise FileNotFoundError(f"URDF not found: {urdf}")
    try:
        robot = ET.parse(urdf).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"cannot parse URDF {urdf}: {exc}") from exc
    links = {link.get("name"): link for link in robot.findall("link")}
    children: dict[str, list[ET.Element]] = {}
    names = set()
    for joint in robot.findall("joint"):
        names.add(joint.get("name"))
        children.setdefault(joint.find("parent").get("link"), []).append(joint)
    unknown = set(joints) - names
    if unknown:
        raise ValueError(f"joints {sorted(unknown)} are not in {urdf.name}")
    if root not in links:
        raise ValueError(f"root link {root!r} not in {urdf.name}")

    frames = {root: np.eye(4)}
    stack = [root]
    while stack:
        parent = stack.pop()
        for joint in children.get(parent, []):
            child = joint.find("child").get("link")
            pose = frames[parent] @ _origin(joint.find("origin"))
            if joint.get("type") in ("revolute", "continuous", "prismatic"):
                axis_el = joint.find("axis")
                axis = np.array([float(v) for v in (axis_el.get("xyz") if axis_el is not None else "1 0 0").split()])
                q = float(joints.get(joint.get("name"), 0.0))
                if joint.get("type") == "prismatic":
                    step = np.eye(4)
                    step[:3, 3] = axis * q
                    pose = pose @ step
                else:
                    pose = pose @ _axis_rotation(axis, q)
            frames[child] = pose
            stack.append(child)

    geoms, masses, coms, inertias = [], [], [], []
    for name, pose in frames.items():
        link = links[name]
        for col in link.findall("collision"):
            g = _origin(col.find("origin"))
            t = pose @ g
            shape = col.find("geometry")[0]
            if shape.tag == "box":
                size = tuple(0.5 * float(v) for v in shape.get("size").split())
            elif shape.tag == "cylinder":
                size = (float(shape.get("radius")), 0.5 * float(shape.get("length")))
            elif shape.tag == "sphere":
                size = (float(shape.get("radius")),)
            else:
                raise ValueError(f"unsupported collision geometry {shape.tag!r} in link {name}")
            geoms.append((name, shape.tag, size, t[:3, 3].copy(), t[:3, :3].copy()))
        inertial = link.find("inertial")
        if inertial is None:
            continue
        m = float(inertial.find("mass").get("value"))
        if m <= 0:
            continue
        t = pose @ _origin(inertial.find("origin"))
        el = inertial.find("inertia")
        xx, yy, zz, xy, xz, yz = (float(el.get(k, 0.0)) for k in ("ixx", "iyy", "izz", "ixy", "ixz", "iyz"))
        local = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
        rot = t[:3, :3]
        masses.append(m)
        coms.append(t[:3, 3])
        inertias.append(rot @ balance_inertia(local) @ rot.T)
    if not masses:
        raise ValueError(f"{urdf.name} has no positive masses")
    mass = float(np.sum(masses))
    com = np.sum(np.array(masses)[:, None] * np.array(coms), axis=0) / mass
    total = np.zeros((3, 3))
    for m, c, inertia in zip(masses, coms, inertias):
        d = c - com
        total += inertia + m * (d @ d * np.eye(3) - np.outer(d, d))
    feet = []
    for leg in LEG_NAMES:
        spheres = [g for g in geoms if g[0] == f"{leg}_FOOT" and g[1] == "sphere"]
        if not spheres:
            raise ValueError(f"{urdf.name}: no foot sphere in link {leg}_FOOT")
        _, _, size, centre, _ = spheres[0]
        feet.append(centre - np.array([0.0, 0.0, size[0]]))
    return RobotBody(geoms, mass, com, balance_inertia(total), frames, np.array(feet))


# --------------------------------------------------------------------------- MJCF
@dataclass(frozen=True)
class AnymalSimConfig:
    """Simulation parameters.

    Attributes:
        timestep: physics step (s).
        control_dt: locomotion update period (s), a multiple of ``timestep``.
        command_timeout: sim time (s) after a command's stamp when it is replaced by zero.
        locomotion: locomotion abstraction parameters.
        joints: frozen leg joint angles (rad).
        tile_cells: heightfield tile size in cells.
        friction: sliding friction of robot and world geoms.
        cameras: depth cameras; ``None`` = ANYmal's four depth cameras from the URDF (front, rear, left, right).
        depth: depth range/noise parameters.
        fallen_tilt_deg: tilt beyond which the robot counts as fallen.
        min_base_height: base height above the terrain below which the robot counts as fallen (m).
        stuck_window: averaging time constant (s) of the stuck detector.
        stuck_ratio: stuck when achieved motion < ``stuck_ratio`` x commanded motion.
        urdf: URDF path; ``None`` = example-robot-data's ANYmal C.
    """

    timestep: float = 0.005
    control_dt: float = 0.02
    command_timeout: float = 0.5
    locomotion: LocomotionConfig = field(default_factory=LocomotionConfig)
    joints: Mapping[str, float] = field(default_factory=lambda: dict(STANDING_POSE))
    tile_cells: int = 16
    friction: float = 0.6
    cameras: Optional[tuple[DepthCamera, ...]] = None
    depth: DepthSensorConfig = field(default_factory=DepthSensorConfig)
    fallen_tilt_deg: float = 60.0
    min_base_height: float = 0.25
    stuck_window: float = 1.5
    stuck_ratio: float = 0.25
    urdf: Optional[str] = None

    def __post_init__(self) -> None:
        for name in ("timestep", "control_dt", "command_timeout", "friction", "stuck_window"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"AnymalSimConfig.{name} must be positive, got {v}")
        ratio = self.control_dt / self.timestep
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            raise ValueError("control_dt must be a positive multiple of timestep")
        if int(self.tile_cells) < 2:
            raise ValueError("tile_cells must be >= 2")


def anymal_depth_cameras(body: RobotBody, links: Sequence[str] = DEFAULT_CAMERA_LINKS,
                         **camera_kwargs: Any) -> tuple[DepthCamera, ...]:
    """Depth cameras at URDF links (x forward), by default ANYmal's four, each tilted 30 deg down."""
    cams = []
    for link in links:
        if link not in body.frames:
            raise ValueError(f"camera link {link!r} not in the URDF")
        pose = body.frames[link]
        rot = pose[:3, :3]
        rpy = (math.atan2(rot[2, 1], rot[2, 2]), -math.asin(max(-1.0, min(1.0, rot[2, 0]))),
               math.atan2(rot[1, 0], rot[0, 0]))
        name = link.replace("depth_camera_", "").replace("_camera_parent", "")
        cams.append(DepthCamera(name, tuple(pose[:3, 3]), rpy, **camera_kwargs))
    return tuple(cams)


def _fmt(v: Any) -> str:
    return " ".join(f"{float(x):.9g}" for x in np.ravel(v))


def _quat(rot: np.ndarray) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(rot).ravel())
    return q


def _terrain_tiles(world: World, cells: int) -> tuple[list[str], list[str], list[np.ndarray]]:
    nx, ny = world.shape
    res = world.resolution
    heights = contact_heights(world.heights, world.origin, res, world.patches)  # sunk under slippery patches
    assets, geoms, data = [], [], []
    for i0 in range(0, nx - 1, cells):
        for j0 in range(0, ny - 1, cells):
            i1, j1 = min(i0 + cells, nx - 1), min(j0 + cells, ny - 1)
            tile = heights[i0:i1 + 1, j0:j1 + 1].astype(np.float64)
            low = float(tile.min())
            span = max(float(tile.max()) - low, 1e-3)
            k = len(assets)
            assets.append(f'<hfield name="terrain{k}" nrow="{j1 - j0 + 1}" ncol="{i1 - i0 + 1}" '
                          f'size="{0.5 * (i1 - i0) * res:.9g} {0.5 * (j1 - j0) * res:.9g} {span:.9g} 0.5"/>')
            cx = world.origin[0] + 0.5 * (i0 + i1) * res
            cy = world.origin[1] + 0.5 * (j0 + j1) * res
            geoms.append(f'<geom name="terrain{k}" type="hfield" hfield="terrain{k}" pos="{cx:.9g} {cy:.9g} {low:.9g}" '
                         f'class="world"/>')
            data.append(((tile - low) / span).T.ravel())
    return assets, geoms, data


def load_tiles(model: mujoco.MjModel, tile_data: list[np.ndarray]) -> None:
    """Copy terrain tile data into the model's heightfields."""
    for k, data in enumerate(tile_data):
        adr, n = int(model.hfield_adr[k]), int(model.hfield_nrow[k] * model.hfield_ncol[k])
        model.hfield_data[adr:adr + n] = data


def build_model(world: World, body: RobotBody, config: AnymalSimConfig) -> tuple[mujoco.MjModel, list[np.ndarray]]:
    """The MuJoCo model of ``body`` on ``world`` with the locomotion actuators."""
    loco = config.locomotion
    assets, terrain, tile_data = _terrain_tiles(world, int(config.tile_cells))
    x0, x1, y0, y1 = world.extent
    floor_top = float(world.heights.min()) - 2.0  # catches robots walking off the map edge
    floor = (f'<geom name="floor" type="box" class="world" pos="{0.5 * (x0 + x1):.9g} {0.5 * (y0 + y1):.9g} '
             f'{floor_top - 0.5:.9g}" size="{0.5 * (x1 - x0) + 50.0:.9g} {0.5 * (y1 - y0) + 50.0:.9g} 0.5"/>')
    boxes = [floor] + [
        f'<geom name="box{k}" type="box" class="world" pos="{_fmt(b.center)}" size="{_fmt(np.array(b.size) / 2)}" '
        f'euler="0 0 {b.yaw:.9g}"/>' for k, b in enumerate(world.boxes)
    ]
    # slippery ground (morobot.sim.patches), not obstacles
    slabs = [p.slab_mjcf(f"patch{k}", world.resolution) for k, p in enumerate(world.patches)]
    assets += [a for a, _ in slabs]  # after the terrain tiles: load_tiles fills heightfields 0..tiles-1
    boxes += [g for _, g in slabs]
    robot = []
    for k, (_, kind, size, pos, rot) in enumerate(body.geoms):
        robot.append(f'<geom name="robot{k}" type="{kind}" class="robot" size="{_fmt(size)}" pos="{_fmt(pos)}" '
                     f'quat="{_fmt(_quat(rot))}"/>')
    hips = body.feet.copy()
    hips[:, 2] = 0.0  # virtual legs act on the trunk above each foot, see locomotion
    sites = [f'<site name="hip_{leg}" pos="{_fmt(p)}"/>' for leg, p in zip(LEG_NAMES, hips)]
    k, c, fmax = loco.leg_stiffness, loco.leg_damping, loco.max_leg_force
    kv = body.mass * loco.velocity_gain
    kw = body.inertia[2, 2] * loco.yaw_gain
    legs = [
        f'<general name="leg_{leg}" site="hip_{leg}" refsite="world_ref" gear="0 0 1 0 0 0" gainprm="{k:.9g}" '
        f'biastype="affine" biasprm="0 {-k:.9g} {-c:.9g}" forcelimited="true" forcerange="0 {fmax:.9g}"/>'
        for leg in LEG_NAMES
    ]
    drives = [
        f'<general name="drive_{n}" site="com" gear="{g}" gainprm="{gain:.9g}" biastype="affine" '
        f'biasprm="0 0 {-gain:.9g}" forcelimited="true" forcerange="-1 1"/>'
        for n, g, gain in (("x", "1 0 0 0 0 0", kv), ("y", "0 1 0 0 0 0", kv), ("yaw", "0 0 0 0 0 1", kw))
    ]
    inertia = body.inertia
    full = [inertia[0, 0], inertia[1, 1], inertia[2, 2], inertia[0, 1], inertia[0, 2], inertia[1, 2]]
    xml = f"""
<mujoco model="anymal_c_nav">
  <compiler angle="radian"/>
  <option timestep="{config.timestep:.9g}" integrator="implicitfast" cone="pyramidal" iterations="30"
          ls_iterations="10"/>
  <default>
    <default class="world"><geom contype="0" conaffinity="1" friction="{config.friction:.6g} 0.005 0.0001"
      rgba="0.6 0.6 0.55 1" group="0"/></default>
    <default class="robot"><geom contype="1" conaffinity="0" friction="{config.friction:.6g} 0.005 0.0001"
      rgba="0.9 0.5 0.1 1" group="1"/></default>
  </default>
  <asset>{''.join(assets)}</asset>
  <worldbody>
    <site name="world_ref" pos="0 0 0"/>
    {''.join(terrain)}
    {''.join(boxes)}
    <body name="base" pos="0 0 1">
      <freejoint name="root"/>
      <inertial pos="{_fmt(body.com)}" mass="{body.mass:.9g}"
        fullinertia="{_fmt(full)}"/>
      {''.join(robot)}
      {''.join(sites)}
      <site name="com" pos="{_fmt(body.com)}"/>
    </body>
  </worldbody>
  <actuator>{''.join(legs)}{''.join(drives)}</actuator>
</mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    return model, tile_data


class _TerrainProbe:
    """Fast elevation queries (MuJoCo's triangulated heightfield plus box tops), no validation."""

    def __init__(self, world: World):
        self.heights = world.heights
        self.origin = world.origin
        self.resolution = world.resolution
        self.n_boxes = len(world.boxes)
        if world.boxes:
            self.centres = np.array([b.center[:2] for b in world.boxes])
            self.half = np.array([[0.5 * b.size[0], 0.5 * b.size[1]] for b in world.boxes])
            self.cs = np.array([[math.cos(b.yaw), math.sin(b.yaw)] for b in world.boxes])
            self.tops = np.array([b.top for b in world.boxes])
            self.radius = np.linalg.norm(self.half, axis=1)

    def __call__(self, xy: np.ndarray, near: np.ndarray, reach: float) -> np.ndarray:
        """Elevation at ``xy`` ``[..., 2]``; boxes farther than ``reach`` from ``near`` are skipped."""
        h = interpolate_grid(self.heights, self.origin, self.resolution, xy[..., 0], xy[..., 1], True)
        if not self.n_boxes:
            return h
        d = self.centres - near
        cand = np.flatnonzero(np.sqrt((d * d).sum(axis=1)) <= self.radius + reach)
        if cand.size == 0:
            return h
        pts = xy.reshape(-1, 1, 2) - self.centres[cand]
        cs = self.cs[cand]
        u = cs[:, 0] * pts[..., 0] + cs[:, 1] * pts[..., 1]
        v = cs[:, 0] * pts[..., 1] - cs[:, 1] * pts[..., 0]
        inside = (np.abs(u) <= self.half[cand, 0]) & (np.abs(v) <= self.half[cand, 1])
        tops = np.max(np.where(inside, self.tops[cand], -np.inf), axis=1).reshape(h.shape)
        return np.fmax(h, tops)


class AnymalSim(ControlledSim):
    """ANYmal C on a :class:`World`, driven by body-twist commands.

    Args:
        world: the terrain and obstacles.
        config: simulation parameters.
    """

    def __init__(self, world: World, config: Optional[AnymalSimConfig] = None):
        if not isinstance(world, World):
            raise ValueError(f"world must be a morobot.sim.worlds.World, got {type(world).__name__}")
        from morobot import paths

        self.world = world
        self.config = config or AnymalSimConfig()
        urdf = Path(self.config.urdf) if self.config.urdf else paths.anymal_urdf()
        self.body = load_robot_body(urdf, self.config.joints)
        self.model, tiles = build_model(world, self.body, self.config)
        load_tiles(self.model, tiles)
        self.data = mujoco.MjData(self.model)
        self.body_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, "base")
        self.controller = LocomotionController(self.body.feet, self.body.mass, self.config.locomotion)
        cams = self.config.cameras if self.config.cameras is not None else anymal_depth_cameras(self.body)
        self.sensor = DepthSensor(self.model, self.body_id, cams, self.config.depth)
        self._probe = _TerrainProbe(world)
        self._substeps = int(round(self.config.control_dt / self.config.timestep))
        # leg geoms (every link whose name starts with a leg prefix): they stop colliding when the
        # legs give way after a stumble, so the trunk comes down onto the ground
        self._leg_geoms = np.array([mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, f"robot{k}")
                                    for k, g in enumerate(self.body.geoms) if g[0][:2] in LEG_NAMES], dtype=int)
        self._leg_contype = self.model.geom_contype[self._leg_geoms].copy()
        self.last_output: Optional[LocomotionOutput] = None
        self.reset()

    # ------------------------------------------------------------------ API
    @property
    def stance_height(self) -> float:
        """Steady base height (m) above flat ground."""
        return self.controller.stance_height

    def reset(self, pose: Optional[Sequence[float]] = None) -> BaseState:
        """Place the robot at ``pose`` ``(x, y, yaw)`` (default the world's start), standing, at rest.

        Raises:
            ValueError: non-finite pose, or a pose off the terrain.
        """
        p = np.asarray(self.world.start if pose is None else pose, dtype=float).ravel()
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise ValueError(f"pose must be (x, y, yaw) finite numbers, got {pose!r}")
        mujoco.mj_resetData(self.model, self.data)
        self.model.geom_contype[self._leg_geoms] = self._leg_contype  # legs stand again
        c, s = math.cos(p[2]), math.sin(p[2])
        feet = self.body.feet[:, :2] @ np.array([[c, -s], [s, c]]).T + p[:2]
        ground = self._probe(feet, p[:2], 1.0)
        if not np.all(np.isfinite(ground)):
            raise ValueError(f"pose {tuple(p)} puts a foot off the terrain")
        z = float(np.max(ground)) + self.stance_height
        self.data.qpos[:7] = [p[0], p[1], z, math.cos(p[2] / 2), 0.0, 0.0, math.sin(p[2] / 2)]
        self.controller.reset()
        self._command = np.zeros(3)
        self._stamp = 0.0
        self._fallen = False
        self._stuck = StuckDetector(self.config.stuck_window, self.config.stuck_ratio,
                                    self.config.locomotion.yaw_lever)
        self._steps = 0
        self.data.ctrl[:4] = ground + self.stance_height + self.controller.sag
        mujoco.mj_forward(self.model, self.data)
        self._control()
        return self.state()

    def state(self) -> BaseState:
        """The current :class:`BaseState` (base frame velocities, gravity, fallen/stuck flags)."""
        q = self.data.qpos[3:7].copy()
        flat = np.empty(9)
        mujoco.mju_quat2Mat(flat, q)
        rot = flat.reshape(3, 3)
        return BaseState(
            position=self.data.qpos[:3].copy(),
            quaternion=q,
            yaw=math.atan2(rot[1, 0], rot[0, 0]),
            linear_velocity=rot.T @ self.data.qvel[:3],
            angular_velocity=self.data.qvel[3:6].copy(),
            gravity=rot[2, :] * -1.0,
            fallen=self._fallen,
            stuck=self._stuck.stuck,
            time=self.time,
        )

    def depth_points(self, noise: bool = True) -> np.ndarray:
        """Points ``[N, 3]`` (float32, base frame) from the depth cameras."""
        rot = quat_to_matrix(self.data.qpos[3:7])
        return self.sensor.scan(self.data, self.data.qpos[:3], rot, noise=noise)

    def terrain_height(self, x: Any, y: Any) -> np.ndarray:
        """Elevation (terrain or box top) under world points as MuJoCo sees it; NaN off the map."""
        return self.world.elevation_at(x, y, interp="triangle")

    # ------------------------------------------------------------------ internals
    def _control(self) -> None:
        cfg = self.config
        state = self.state()
        fresh = self.time - self._stamp <= cfg.command_timeout + 1e-6  # tolerate float drift of sim time
        cmd = self._command if fresh else np.zeros(3)
        points = self.controller.sample_points(state)
        base_xy = state.position[:2]
        probe = self._probe(np.concatenate([points.reshape(-1, 2), base_xy[None]]), base_xy, 1.5)
        friction = (float(self.world.friction_at(base_xy[0], base_xy[1], cfg.locomotion.friction))
                    if self.world.patches else None)  # None: the configured friction (no lookup per tick)
        out = self.controller.update(cmd, state, probe[:-1].reshape(points.shape[:2]),
                                     self.data.actuator_force[:4], cfg.control_dt, friction=friction)
        self.last_output = out
        self.data.ctrl[:4] = np.where(np.isfinite(out.leg_targets), out.leg_targets, -1e3)
        self.data.ctrl[4:7] = out.drive
        self.model.actuator_forcerange[4:6] = [-out.traction_limit, out.traction_limit]
        self.model.actuator_forcerange[6] = [-out.yaw_torque_limit, out.yaw_torque_limit]
        self.data.xfrc_applied[self.body_id, :3] = out.slip_force
        if out.stumbled and not self._fallen:
            self.model.geom_contype[self._leg_geoms] = 0  # the legs give way
        self._fallen = self._fallen or out.stumbled
        self._update_flags(state, float(probe[-1]), out.reference, cfg.control_dt)

    def _update_flags(self, state: BaseState, ground: float, wanted_twist: np.ndarray, dt: float) -> None:
        cfg = self.config
        tilted = state.gravity[2] > -math.cos(math.radians(cfg.fallen_tilt_deg))
        low = math.isfinite(ground) and state.position[2] - ground < cfg.min_base_height
        off_map = not math.isfinite(ground) and state.position[2] < float(self.world.heights.min()) - 0.5
        self._fallen = self._fallen or bool(tilted or low or off_map)
        self._stuck.update(wanted_twist, state.twist, dt)


def _benchmark(argv: Optional[Sequence[str]] = None) -> None:
    """Drive a 2 m radius circle from the world's start; time physics and depth scans separately."""
    from morobot.sim.worlds import load_world

    parser = argparse.ArgumentParser(description="Measure AnymalSim physics speed and depth scan time.")
    parser.add_argument("--world", default="rough_obstacles", help="named world or YAML file")
    parser.add_argument("--duration", type=float, default=30.0, help="sim seconds to run")
    args = parser.parse_args(argv)
    sim = AnymalSim(load_world(args.world))
    physics = scans = 0.0
    n_scans = n_points = 0
    for _ in range(max(1, int(round(args.duration / 0.5)))):
        sim.set_command((0.6, 0.0, 0.3))
        t0 = time.perf_counter()
        state = sim.advance(0.5)
        t1 = time.perf_counter()
        n_points += len(sim.depth_points())
        scans += time.perf_counter() - t1
        physics += t1 - t0
        n_scans += 1
    print(f"world={args.world} sim={sim.time:.1f}s physics+locomotion wall={physics:.2f}s "
          f"real-time factor={sim.time / physics:.1f}x (timestep={sim.config.timestep}, "
          f"control_dt={sim.config.control_dt}); final pose={np.round(state.pose, 2)} "
          f"fallen={state.fallen} stuck={state.stuck}")
    print(f"depth: {sim.sensor.n_rays} rays/scan, {n_points / n_scans:.0f} points/scan, "
          f"{scans / n_scans * 1e3:.2f} ms/scan over {n_scans} scans")


if __name__ == "__main__":
    _benchmark()
