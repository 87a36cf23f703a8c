"""The articulated ANYmal C in MuJoCo: 12 actuated joints on procedural terrain (no ROS).

Built from example-robot-data's URDF through MuJoCo's own URDF importer, with the URDF masses
(52.1 kg: inertia from geometry is off) and the two kinds of broken URDF inertia repaired
(:func:`morobot.sim.anymal.balance_inertia`: the depth cameras violate the triangle inequality,
the hatch has a negative principal moment). Fixed links (cameras, feet) are fused into their
parents; every collision primitive of the URDF collides with the terrain and boxes (the base box,
hips, thighs, shanks and the foot spheres), none with each other.

Each leg joint has a PD position actuator like ANYmal's series-elastic drives under legged_gym's
model (``kp`` 80 N·m/rad, ``kd`` 2 N·m·s/rad, ±80 N·m from the URDF effort limits), joint
armature for the motor's reflected inertia, and the URDF joint limits. Physics runs at
``timestep`` (5 ms); a controller sets position targets every ``decimation`` steps (50 Hz).

Two kinds of model: :func:`build_patch_model` (one square heightfield whose heights are rewritten
in place at every reset, for RL training: no recompilation) and :func:`build_world_model` (a
:class:`~morobot.sim.worlds.World`'s tiles and boxes, for navigation).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional

import mujoco
import numpy as np

from morobot.robots import ANYMAL_JOINTS, ANYMAL_LEGS
from morobot import paths
from morobot.sim.anymal import STANDING_POSE, _fmt, _terrain_tiles, balance_inertia, load_tiles
from morobot.sim.worlds import World

LEGS = ANYMAL_LEGS
JOINTS = ANYMAL_JOINTS
DEFAULT_POSE = np.array([STANDING_POSE[j] for j in JOINTS])
"""Nominal standing joint angles (rad), in :data:`JOINTS` order."""


@dataclass(frozen=True)
class LeggedConfig:
    """Physics and actuation of the articulated robot.

    Attributes:
        timestep: physics step (s).
        decimation: physics steps per control step.
        kp: PD stiffness of the joint position actuators (N·m/rad).
        kd: PD damping (N·m·s/rad).
        torque_limit: actuator torque limit (N·m); the URDF's effort limit is 80.
        armature: reflected rotor inertia added to every leg joint (kg·m²).
        friction: sliding friction of robot-terrain contacts.
    """

    timestep: float = 0.005
    decimation: int = 4
    kp: float = 80.0
    kd: float = 2.0
    torque_limit: float = 80.0
    armature: float = 0.02
    friction: float = 1.0

    def __post_init__(self) -> None:
        for name in ("timestep", "kp", "kd", "torque_limit", "friction"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v!r}")
        if int(self.decimation) < 1 or not (math.isfinite(self.armature) and self.armature >= 0):
            raise ValueError("decimation must be >= 1 and armature >= 0")

    @property
    def control_dt(self) -> float:
        return self.timestep * self.decimation


@lru_cache(maxsize=1)
def robot_body_xml() -> str:
    """The MJCF ``<body name="base">`` subtree of the articulated ANYmal C (free joint included)."""
    root = ET.parse(paths.anymal_urdf()).getroot()
    for link in root.iter("link"):
        ine = link.find("inertial/inertia")
        if ine is None:
            continue
        a = {k: float(ine.get(k, "0")) for k in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")}
        inertia = np.array([[a["ixx"], a["ixy"], a["ixz"]], [a["ixy"], a["iyy"], a["iyz"]],
                            [a["ixz"], a["iyz"], a["izz"]]])
        fixed = balance_inertia(inertia)
        for key, (i, j) in dict(ixx=(0, 0), ixy=(0, 1), ixz=(0, 2), iyy=(1, 1), iyz=(1, 2), izz=(2, 2)).items():
            ine.set(key, repr(float(fixed[i, j])))
    root.insert(0, ET.Element("link", name="world"))
    joint = ET.SubElement(root, "joint", name="root", type="floating")
    ET.SubElement(joint, "parent", link="world")
    ET.SubElement(joint, "child", link="base")
    spec = mujoco.MjSpec.from_string(ET.tostring(root, encoding="unicode"))
    spec.compiler.inertiafromgeom = 0
    spec.compiler.balanceinertia = 1  # the borderline repaired moments (A + B == C) pass
    mj = ET.fromstring(spec.to_xml())
    base = mj.find("worldbody/body")
    assert base is not None and base.get("name") == "base"
    for k, geom in enumerate(base.iter("geom")):
        geom.set("class", "robot")
        geom.set("name", f"robot{k}")
    return ET.tostring(base, encoding="unicode")


def _xml(terrain_assets: str, terrain_geoms: str, config: LeggedConfig, extra_geoms: str = "") -> str:
    c = config
    actuators = "".join(
        f'<position name="{j}" joint="{j}" kp="{c.kp:.9g}" kv="{c.kd:.9g}" forcelimited="true" '
        f'forcerange="{-c.torque_limit:.9g} {c.torque_limit:.9g}"/>' for j in JOINTS)
    return f"""
<mujoco model="anymal_c_legged">
  <compiler angle="radian" inertiafromgeom="false"/>
  <option timestep="{c.timestep:.9g}" integrator="implicitfast" cone="pyramidal" iterations="20"
          ls_iterations="8"/>
  <default>
    <joint armature="{c.armature:.9g}"/>
    <default class="world"><geom contype="0" conaffinity="1" friction="{c.friction:.6g} 0.005 0.0001"
      rgba="0.6 0.6 0.55 1" group="0"/></default>
    <default class="robot"><geom contype="1" conaffinity="0" friction="{c.friction:.6g} 0.005 0.0001"
      rgba="0.9 0.5 0.1 1" group="1" condim="3"/></default>
  </default>
  <asset>{terrain_assets}</asset>
  <worldbody>
    {terrain_geoms}
    {extra_geoms}
    {robot_body_xml()}
  </worldbody>
  <actuator>{actuators}</actuator>
</mujoco>"""


#: Elevation span (m) of the training heightfield: heights from ``-PATCH_SPAN / 2`` to ``+PATCH_SPAN / 2``.
PATCH_SPAN = 2.0


def build_patch_model(cells: int, resolution: float, config: LeggedConfig = LeggedConfig()) -> mujoco.MjModel:
    """The robot on one square heightfield of ``cells`` x ``cells`` samples centred on the origin.

    Heights are set with :func:`set_patch_heights` (in place, between episodes).
    """
    half = 0.5 * (cells - 1) * resolution
    assets = (f'<hfield name="patch" nrow="{cells}" ncol="{cells}" '
              f'size="{half:.9g} {half:.9g} {PATCH_SPAN:.9g} 0.5"/>')
    geoms = (f'<geom name="terrain0" type="hfield" hfield="patch" pos="0 0 {-0.5 * PATCH_SPAN:.9g}" class="world"/>'
             f'<geom name="floor" type="plane" size="0 0 1" pos="0 0 {-0.5 * PATCH_SPAN - 0.5:.9g}" class="world"/>')
    return mujoco.MjModel.from_xml_string(_xml(assets, geoms, config))


def set_patch_heights(model: mujoco.MjModel, heights: np.ndarray) -> None:
    """Write ``heights [cells, cells]`` (m; row index along x) into the training heightfield."""
    n = int(model.hfield_nrow[0])
    h = np.asarray(heights, dtype=np.float64)
    if h.shape != (n, n) or not np.all(np.isfinite(h)):
        raise ValueError(f"heights must be a finite {n}x{n} grid, got {h.shape}")
    norm = np.clip((h + 0.5 * PATCH_SPAN) / PATCH_SPAN, 0.0, 1.0)
    model.hfield_data[:] = norm.T.ravel()  # MuJoCo: rows along y


def build_world_model(world: World, config: LeggedConfig = LeggedConfig(), tile_cells: int = 64) -> tuple[
        mujoco.MjModel, list[np.ndarray]]:
    """The robot on a navigation world (terrain tiles, boxes, a floor under the map).

    Returns:
        ``(model, tile data)``: write each tile's data into ``model.hfield_data`` (see
        :func:`load_tiles`).
    """
    assets, terrain, tile_data = _terrain_tiles(world, int(tile_cells))
    x0, x1, y0, y1 = world.extent
    floor_top = float(world.heights.min()) - 2.0
    extra = [f'<geom name="floor" type="box" class="world" pos="{0.5 * (x0 + x1):.9g} {0.5 * (y0 + y1):.9g} '
             f'{floor_top - 0.5:.9g}" size="{0.5 * (x1 - x0) + 50.0:.9g} {0.5 * (y1 - y0) + 50.0:.9g} 0.5"/>']
    extra += [f'<geom name="box{k}" type="box" class="world" pos="{_fmt(b.center)}" '
              f'size="{_fmt(np.array(b.size) / 2)}" euler="0 0 {b.yaw:.9g}"/>' for k, b in enumerate(world.boxes)]
    # slippery ground (morobot.sim.patches), not obstacles
    slabs = [p.slab_mjcf(f"patch{k}", world.resolution) for k, p in enumerate(world.patches)]
    assets += [a for a, _ in slabs]  # after the terrain tiles: load_tiles fills heightfields 0..tiles-1
    extra += [g for _, g in slabs]
    model = mujoco.MjModel.from_xml_string(_xml("".join(assets), "".join(terrain), config, "".join(extra)))
    load_tiles(model, tile_data)
    return model, tile_data


class LeggedIndex:
    """Addresses into a legged model: joint qpos/qvel, actuators, and which geoms are what."""

    def __init__(self, model: mujoco.MjModel) -> None:
        jid = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in JOINTS]
        self.qpos = np.array([model.jnt_qposadr[j] for j in jid])
        self.qvel = np.array([model.jnt_dofadr[j] for j in jid])
        self.act = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, j) for j in JOINTS])
        self.lower = model.jnt_range[jid, 0].copy()
        self.upper = model.jnt_range[jid, 1].copy()
        self.base_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "base")
        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, i) or "" for i in range(model.ngeom)]
        robot = np.array([n.startswith("robot") for n in names])
        body = model.geom_bodyid
        body_names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, int(b)) or "" for b in body]
        self.robot = robot
        self.foot = robot & (model.geom_type == mujoco.mjtGeom.mjGEOM_SPHERE) & np.array(
            [b.endswith("SHANK") for b in body_names])
        self.foot_geoms = np.flatnonzero(self.foot)
        self.foot_leg = np.array([LEGS.index(body_names[g][:2]) for g in self.foot_geoms])
        self.base = robot & (body == self.base_body)
        self.legs = robot & ~self.base  # hips, thighs, shanks and feet
        patch = np.array([n.startswith("patch") for n in names])  # slippery ground (morobot.sim.patches)
        self.box = ~robot & ~patch & (model.geom_type == mujoco.mjtGeom.mjGEOM_BOX)  # the world's obstacles
        self.thigh_shank = robot & ~self.foot & np.array([b.endswith(("THIGH", "SHANK")) for b in body_names])
        self.world = ~robot

    def foot_positions(self, data: mujoco.MjData) -> np.ndarray:
        """``[4, 3]`` foot sphere centres in the world, LF, RF, LH, RH."""
        out = np.zeros((4, 3))
        out[self.foot_leg] = data.geom_xpos[self.foot_geoms]
        return out

    def contacts(self, data: mujoco.MjData) -> tuple[np.ndarray, bool, bool]:
        """``(feet in contact [4] bool, base touches the world, a thigh/shank touches the world)``."""
        feet = np.zeros(4, dtype=bool)
        base = limb = False
        n = data.ncon
        if n:
            g = np.asarray(data.contact.geom[:n])
            for a, b in ((g[:, 0], g[:, 1]), (g[:, 1], g[:, 0])):
                touch = self.world[b]
                hit = a[touch & self.foot[a]]
                if len(hit):
                    feet[self.foot_leg[np.searchsorted(self.foot_geoms, hit)]] = True
                base |= bool(np.any(touch & self.base[a]))
                limb |= bool(np.any(touch & self.thigh_shank[a]))
        return feet, base, limb


#: The least height (m) of a foot over the ground when the robot is put down (:func:`lift_feet_clear`); on flat
#: ground the navigation simulator's spawn height leaves 9 mm (the training environment's more), so no lift.
SPAWN_FOOT_CLEARANCE = 0.005


def lift_feet_clear(model: mujoco.MjModel, data: mujoco.MjData, idx: LeggedIndex,
                    ground: Callable[[np.ndarray, np.ndarray], np.ndarray],
                    clearance: float = SPAWN_FOOT_CLEARANCE) -> float:
    """Raise the free base so that every foot sphere's lowest point is ``clearance`` over ``ground(x, y)``.

    For a robot just put down over uneven ground: its height is set over the ground under the base, and a foot
    over a higher bump would start inside it. The heightfield contact did not push such a foot out (9-16 cm deep
    after 8 s at a trapped start, docs/navigation_eval.md, "Session 34"). ``data`` must be forward-computed; it
    is again after a lift. Feet over no ground (``ground`` not finite there) are ignored. Returns the lift (m,
    >= 0).
    """
    feet = idx.foot_positions(data)
    radius = float(model.geom_size[idx.foot_geoms, 0].min())
    gap = feet[:, 2] - radius - np.asarray(ground(feet[:, 0], feet[:, 1]), dtype=float)
    gap = gap[np.isfinite(gap)]
    lift = float(clearance - gap.min()) if gap.size else 0.0
    if lift <= 0.0:
        return 0.0
    data.qpos[2] += lift
    mujoco.mj_forward(model, data)
    return lift


def standing_height(model: Optional[mujoco.MjModel] = None, settle: float = 1.5) -> float:
    """Base height (m) the robot settles at on flat ground with its PD actuators at the default pose."""
    model = model or build_patch_model(41, 0.1)
    if model.nhfield:
        set_patch_heights(model, np.zeros((int(model.hfield_nrow[0]),) * 2))
    data = mujoco.MjData(model)
    idx = LeggedIndex(model)
    data.qpos[2] = 0.62
    data.qpos[idx.qpos] = DEFAULT_POSE
    data.ctrl[idx.act] = DEFAULT_POSE
    mujoco.mj_forward(model, data)
    for _ in range(int(settle / model.opt.timestep)):
        mujoco.mj_step(model, data)
    return float(data.qpos[2])
