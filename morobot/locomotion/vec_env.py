"""rsl-rl's ``VecEnv`` over worker processes, each stepping a :class:`~morobot.locomotion.env.LocomotionEnv`.

``num_envs`` environments are split evenly over ``workers`` processes (spawned; each with one
torch/BLAS thread); one step sends every worker its slice of the actions and gathers
observations, rewards, dones and episode statistics. With ``workers=0`` the batch runs in this
process (tests, debugging). Workers are started with :func:`morobot.fdm.data.collect.die_with_parent`
(:func:`morobot.procutil.die_with_parent`): they end when the trainer is killed.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from typing import Any, Optional

import numpy as np
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from morobot.procutil import die_with_parent
from morobot.locomotion.env import TRACKS, EnvConfig, LocomotionEnv
from morobot.locomotion.observation import NUM_ACTIONS


def _worker(conn, num_envs: int, overrides: dict, seed: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    die_with_parent()  # a killed trainer leaves no workers behind
    env = LocomotionEnv(num_envs, EnvConfig(**overrides), seed)
    conn.send(("ready", env.observations()))
    while True:
        cmd, arg = conn.recv()
        if cmd == "step":
            conn.send(("ok", env.step(arg)))
        elif cmd == "obs":
            conn.send(("ok", env.observations()))
        elif cmd == "levels":
            env.set_track_levels(arg)
            conn.send(("ok", None))
        elif cmd == "close":
            conn.close()
            return


class ProcessVecEnv(VecEnv):
    """Locomotion environments for rsl-rl.

    Args:
        num_envs: total environments.
        workers: worker processes (0: in this process).
        seed: base seed (worker ``w`` uses ``seed * 1000 + w``).
        overrides: :class:`EnvConfig` fields to override.
    """

    def __init__(self, num_envs: int, workers: int = 2, seed: int = 0, overrides: Optional[dict] = None) -> None:
        if int(num_envs) < 1 or int(workers) < 0 or (workers and num_envs < workers):
            raise ValueError(f"need num_envs >= workers >= 0, got {num_envs} and {workers}")
        self.num_envs = int(num_envs)
        self.num_actions = NUM_ACTIONS
        self.device = "cpu"
        overrides = dict(overrides or {})
        self.cfg = EnvConfig(**overrides)
        self.max_episode_length = int(round(self.cfg.episode_s / self.cfg.legged.control_dt))
        self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long)
        self._local: Optional[LocomotionEnv] = None
        self._conns: list[Any] = []
        self._procs: list[Any] = []
        if workers == 0:
            self._local = LocomotionEnv(self.num_envs, self.cfg, seed)
            self._obs = self._local.observations()
            self.sizes = [self.num_envs]
        else:
            self.sizes = [len(a) for a in np.array_split(np.arange(self.num_envs), workers)]
            ctx = mp.get_context("spawn")
            for w, n in enumerate(self.sizes):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, n, overrides, seed * 1000 + w), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            self._obs = self._merge([self._recv(c)[1] for c in self._conns])
        self.levels = np.zeros(self.num_envs)  # of the episodes being played
        self.tracks = np.zeros(self.num_envs, dtype=int)
        self.track_levels = np.full((self.num_envs, len(TRACKS)), float(self.cfg.start_level))
        self._seed = int(seed)

    @staticmethod
    def _recv(conn) -> tuple:
        msg = conn.recv()
        return msg

    @staticmethod
    def _merge(parts: list[dict]) -> dict:
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _tensordict(self, obs: dict) -> TensorDict:
        return TensorDict({k: torch.from_numpy(v) for k, v in obs.items()}, batch_size=[self.num_envs])

    def get_observations(self) -> TensorDict:
        return self._tensordict(self._obs)

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        a = actions.detach().cpu().numpy().astype(np.float64)
        if self._local is not None:
            results = [self._local.step(a)]
        else:
            offsets = np.cumsum([0] + self.sizes)
            for k, conn in enumerate(self._conns):
                conn.send(("step", a[offsets[k]:offsets[k + 1]]))
            results = [self._recv(conn)[1] for conn in self._conns]
        obs = self._merge([r[0] for r in results])
        rewards = np.concatenate([r[1] for r in results])
        dones = np.concatenate([r[2] for r in results])
        infos = [r[3] for r in results]
        time_outs = np.concatenate([i["time_outs"] for i in infos])
        self.levels = np.concatenate([i["levels"] for i in infos]).astype(float)
        self.tracks = np.concatenate([i["tracks"] for i in infos])
        self.track_levels = np.concatenate([i["track_levels"] for i in infos]).astype(float)
        self._obs = obs
        self.episode_length_buf += 1
        self.episode_length_buf[torch.from_numpy(dones)] = 0
        log: dict[str, float] = {"/terrain_level": float(self.levels.mean())}
        for k, name in enumerate(TRACKS):
            sel = self.tracks == k
            if sel.any():
                log[f"/level_{name}"] = float(self.levels[sel].mean())
        episode = [i["episode"] for i in infos if "episode" in i]
        if episode:
            for key in episode[0]:
                log[f"/rew_{key}"] = float(np.mean([e[key] for e in episode]))
        extras = {"time_outs": torch.from_numpy(time_outs), "log": log}
        return (self.get_observations(), torch.from_numpy(rewards), torch.from_numpy(dones.astype(np.int64)),
                extras)

    def set_levels(self, levels: np.ndarray) -> None:
        """Set every environment's curriculum levels ``[num_envs, len(TRACKS)]`` (a resumed run
        continues where it stopped); the episodes being played count as played at them.

        A state saved before the curriculum had tracks holds one level per environment
        (``[num_envs]``): each track then starts at a level drawn uniformly from 0 to that one
        (seeded), as legged_gym spreads its initial levels, so that tracks the shared level had
        overrated (climbs out of a pit) begin with easy episodes among the hard ones.
        """
        levels = np.asarray(levels, dtype=float).round().astype(int)
        if levels.shape == (self.num_envs,):
            rng = np.random.default_rng(self._seed)
            levels = (rng.random((self.num_envs, len(TRACKS))) * (levels[:, None] + 1)).astype(int)
        if levels.shape != (self.num_envs, len(TRACKS)):
            return  # another number of environments: the curriculum starts afresh
        levels = np.clip(levels, 0, self.cfg.levels - 1)
        self.track_levels = levels.astype(float)
        if self._local is not None:
            self._local.set_track_levels(levels)
            return
        offsets = np.cumsum([0] + self.sizes)
        for k, conn in enumerate(self._conns):
            conn.send(("levels", levels[offsets[k]:offsets[k + 1]]))
        for conn in self._conns:
            self._recv(conn)

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(BrokenPipeError, OSError):  # a worker that already ended
                conn.send(("close", None))
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        self._conns.clear()
        self._procs.clear()
        if self._local is not None:
            self._local.close()
