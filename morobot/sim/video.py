"""An MP4 of a recorded run, rendered with MuJoCo from the world and the robot's recorded state.

The run is replayed kinematically: each frame sets the base pose (and, for the legged robot, the
12 joint angles) to the recorded values nearest in time and renders the scene from a camera that
follows the robot. Headless rendering needs ``MUJOCO_GL=osmesa`` (or ``egl``).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Optional

import mujoco
import numpy as np


def _model(world, legged: bool) -> tuple[mujoco.MjModel, Optional[np.ndarray]]:
    if legged:
        from morobot.sim.legged import LeggedIndex, build_world_model

        model, _ = build_world_model(world)
        return model, LeggedIndex(model).qpos
    from morobot import paths
    from morobot.sim.anymal import AnymalSimConfig, build_model, load_robot_body, load_tiles

    config = AnymalSimConfig()
    model, tiles = build_model(world, load_robot_body(paths.anymal_urdf(), config.joints), config)
    load_tiles(model, tiles)
    return model, None


def render_run(world, states: np.ndarray, out_path: str | Path, joints: Optional[np.ndarray] = None,
               fps: float = 20.0, size: tuple[int, int] = (640, 480), distance: float = 4.0) -> Path:
    """Render a run to an MP4 (written to a temporary name, then renamed).

    Args:
        world: the :class:`~morobot.sim.worlds.World` the run took place in.
        states: ``[N, 8]`` rows ``(t, x, y, z, qw, qx, qy, qz)`` of the base, in time order.
        out_path: the ``.mp4`` to write.
        joints: ``[N, 13]`` rows ``(t, 12 joint angles)`` of the legged robot, or None (the rigid one).
        fps: frames per second of sim time.
        size: image width and height.
        distance: camera distance behind the robot (m).

    Raises:
        ValueError: no states, or states that are not ``[N, 8]``.
    """
    import cv2

    states = np.asarray(states, dtype=float)
    if states.ndim != 2 or states.shape[1] != 8 or len(states) == 0:
        raise ValueError(f"states must be [N, 8] rows (t, x, y, z, qw, qx, qy, qz), got {states.shape}")
    model, joint_qpos = _model(world, joints is not None and len(joints) > 0)
    width, height = int(size[0]), int(size[1])
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)
    model.vis.headlight.ambient[:] = (0.45, 0.45, 0.45)  # the scene has no lights of its own
    model.vis.headlight.diffuse[:] = (0.6, 0.6, 0.6)
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, height=height, width=width)
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.distance, cam.elevation = distance, -25.0
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkstemp(prefix=f".{out_path.stem}.", suffix=".mp4", dir=out_path.parent)[1])
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    try:
        t = states[:, 0]
        yaw_smooth = None
        for frame_t in np.arange(t[0], t[-1] + 1e-9, 1.0 / fps):
            i = min(int(np.searchsorted(t, frame_t)), len(t) - 1)
            s = states[i]
            data.qpos[0:7] = s[1:8]
            if joint_qpos is not None:
                k = min(int(np.searchsorted(joints[:, 0], frame_t)), len(joints) - 1)
                data.qpos[joint_qpos] = joints[k, 1:]
            mujoco.mj_forward(model, data)
            w, x, y, z = s[4:8]
            yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
            yaw_smooth = yaw if yaw_smooth is None else yaw_smooth + 0.1 * math.remainder(yaw - yaw_smooth, 2 * math.pi)
            cam.lookat[:] = s[1:4]
            cam.azimuth = math.degrees(yaw_smooth) + 180.0  # from behind, looking the way the robot faces
            renderer.update_scene(data, camera=cam)
            writer.write(cv2.cvtColor(renderer.render(), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
        renderer.close()
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private
    tmp.replace(out_path)
    return out_path
