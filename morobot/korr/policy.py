"""Runtime KORR policy: joint state + block pose in, joint command out (no ROS, no training code).

    policy = KorrPolicy("models/korr/push/residual_korr.pt")
    policy.reset()                                   # new episode
    cmd = policy.act(q, qd, (block_position, block_quaternion_wxyz))
    sim.set_joint_command(cmd.positions, cmd.velocities, cmd.gripper)

``act`` must be called at the checkpoint's control rate (``policy.control_dt``, 10 Hz): each call
moves the Cartesian tool reference by at most one action step (see
``morobot.korr.kinematics.CommandGenerator``). Positions/velocities are in ``panda_link0``-frame
joint space, the block pose in ``panda_link0`` (as ``PandaSim.object_pose()`` returns it).
A ``bc.pt`` checkpoint runs the base policy alone.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from morobot.korr import checkpoint as ckpt
from morobot.korr.kinematics import MAX_GRIPPER_WIDTH, ArmKinematics, CommandGenerator, JointCommand
from morobot.korr.tasks import OBS_DIM, TASKS, features, task_spec
from morobot.sim.panda_scene import SceneLayout


class KorrPolicy:
    """Loads a KORR checkpoint and maps measurements to joint commands.

    Args:
        checkpoint: ``residual_*.pt`` (base + residual) or ``bc.pt`` (base only).
        goal: block goal position (3,) in panda_link0; default: the task's goal in ``layout``.
        layout: scene layout (robot base pose, target/fixture positions).
        torch_threads: if not None, ``torch.set_num_threads`` for this process. One thread is
            fastest for these batch-1 MLPs; more threads cost ~10x under CPU contention.
    """

    def __init__(self, checkpoint: str | Path, goal=None, layout: SceneLayout = SceneLayout(),
                 torch_threads: int | None = 1) -> None:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        payload = ckpt.load_checkpoint(checkpoint)
        if payload["kind"] == "residual":
            agent, _ = ckpt.load_agent(checkpoint)
            self._net = agent.act_deterministic
            self.variant = agent.config.variant
        elif payload["kind"] == "bc":
            base, _ = ckpt.load_bc(checkpoint)
            self._net = base
            self.variant = "base"
        else:
            raise ckpt.CheckpointError(f"{checkpoint}: a {payload['kind']} checkpoint is not a policy")
        config = payload["config"]
        self.task = config.get("task")
        if self.task not in TASKS:
            raise ckpt.CheckpointError(f"{checkpoint}: unknown task {self.task!r}")
        self.control_dt = float(config.get("control_dt", 0.1))
        self.kin = ArmKinematics(layout)
        if goal is None:
            from morobot.korr.sim import SimSettings

            goal = task_spec(self.task, SimSettings(layout=layout)).goal
        self.goal = np.asarray(goal, float).reshape(3)
        self.commander = CommandGenerator(self.kin, self.control_dt)
        self._started = False
        self._gripper = MAX_GRIPPER_WIDTH
        self.last_action = np.zeros(5)
        self.last_observation = np.zeros(OBS_DIM)
        self.timings: list[float] = []

    def reset(self) -> None:
        """Starts a new episode: the next :meth:`act` re-anchors the tool reference."""
        self._started = False
        self._gripper = MAX_GRIPPER_WIDTH

    def act(self, joint_positions, joint_velocities, object_pose) -> JointCommand:
        """One control step.

        Args:
            joint_positions: 9 values (7 arm + 2 finger joints) or 7 arm joints (the finger
                opening is then taken as the last commanded width).
            joint_velocities: 7 or 9 joint velocities.
            object_pose: ``(position (3,), quaternion wxyz (4,))`` or a 7-vector
                ``[x, y, z, qw, qx, qy, qz]``, in panda_link0.

        Returns:
            The joint command (positions, zero feed-forward velocities, gripper width).
        """
        t0 = time.perf_counter()
        q = np.asarray(joint_positions, float).ravel()
        qd = np.asarray(joint_velocities, float).ravel()
        if q.shape[0] not in (7, 9) or qd.shape[0] not in (7, 9):
            raise ValueError(f"expected 7 or 9 joint positions/velocities, got {q.shape[0]} / {qd.shape[0]}")
        if q.shape[0] == 7:
            q = np.concatenate([q, [self._gripper / 2, self._gripper / 2]])
        if isinstance(object_pose, (tuple, list)) and len(object_pose) == 2:
            pos, quat = (np.asarray(v, float).ravel() for v in object_pose)
        else:
            flat = np.asarray(object_pose, float).ravel()
            if flat.shape[0] != 7:
                raise ValueError("object_pose must be (position, quaternion) or a 7-vector")
            pos, quat = flat[:3], flat[3:]
        if pos.shape != (3,) or quat.shape != (4,) or not (np.all(np.isfinite(q)) and np.all(np.isfinite(qd))
                                                          and np.all(np.isfinite(pos)) and np.all(np.isfinite(quat))):
            raise ValueError("non-finite or mis-shaped measurement")
        if not self._started:
            self.commander.reset(q[:7])
            self._started = True
        obs, state = features(self.kin, q, qd, pos, quat, self.goal, self.commander.tool_ref)
        with torch.inference_mode():
            action = self._net(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy().astype(float)
        cmd = self.commander(q, action, state.tool)
        self._gripper = cmd.gripper
        self.last_action = action
        self.last_observation = obs
        self.timings.append(time.perf_counter() - t0)
        if len(self.timings) > 1000:
            del self.timings[:500]
        return cmd
