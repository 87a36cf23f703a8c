"""Scripted demonstrations and the behaviour-cloned base policy.

Demonstrations: the task's scripted expert (closed-loop state feedback) runs in a batch of
environments; its *executed* actions carry DART-style Gaussian noise so the demos visit states
slightly off the expert's path, while the *recorded labels* are the clean expert actions. Only
successful episodes are kept until ``n_demos`` are collected.

Base policy: a deterministic MLP (2 x 256, ReLU, tanh output) on the standardised observation.
The expert is Markovian in the observation (it is a feedback law of the same features), so a
single-step MLP can represent it; an action-chunking/diffusion head (ResiP's base) pays off for
multi-modal, non-Markovian human demonstrations, which these are not — and the residual stage
needs a cheap per-step base action anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from morobot.korr.nets import Normalizer, mlp
from morobot.korr.tasks import ACT_DIM, OBS_DIM, KorrVecEnv


@dataclass
class DemoData:
    """Transitions of successful episodes.

    Attributes:
        obs: (N, OBS_DIM) observations.
        expert: (N, ACT_DIM) clean expert actions (BC labels).
        action: (N, ACT_DIM) executed (noisy) actions (Koopman inputs).
        next_obs: (N, OBS_DIM) observation after the step.
        episode: (N,) episode index.
        last: (N,) True on each episode's last transition.
    """

    obs: np.ndarray
    expert: np.ndarray
    action: np.ndarray
    next_obs: np.ndarray
    episode: np.ndarray
    last: np.ndarray

    def save(self, path) -> None:
        np.savez_compressed(path, **{k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def load(cls, path) -> "DemoData":
        with np.load(path, allow_pickle=False) as z:
            return cls(**{k: z[k] for k in cls.__dataclass_fields__})

    @property
    def n_episodes(self) -> int:
        return int(self.episode.max()) + 1 if len(self.episode) else 0


def collect_demos(task: str, n_demos: int = 50, seed: int = 0, randomness: str = "low",
                  perturbation: str = "none", noise: float = 0.1, n_envs: int = 8,
                  max_attempts: int | None = None, progress=None) -> tuple[DemoData, dict]:
    """Runs the noisy scripted expert until ``n_demos`` successful episodes are recorded.

    Returns:
        The data and stats ``{"attempts", "successes", "success_rate", "steps"}``.
    """
    env = KorrVecEnv(task, n_envs, randomness, perturbation, seed=seed)
    rng = np.random.default_rng(seed + 7919)
    obs = env.reset()
    buffers: list[list[tuple]] = [[] for _ in range(n_envs)]
    kept: list[list[tuple]] = []
    attempts = successes = steps = 0
    max_attempts = max_attempts or 4 * n_demos + 20
    while len(kept) < n_demos and attempts < max_attempts:
        expert = env.expert_actions()
        action = expert.copy()
        action[:, :4] += rng.normal(0.0, noise, (n_envs, 4))
        action = np.clip(action, -1.0, 1.0)
        res = env.step(action)
        steps += n_envs
        for i in range(n_envs):
            buffers[i].append((obs[i], expert[i], action[i], res.final_obs[i]))
            if res.terminated[i] or res.truncated[i]:
                attempts += 1
                if res.success[i]:
                    successes += 1
                    if len(kept) < n_demos:
                        kept.append(buffers[i])
                        if progress is not None:
                            progress(len(kept))
                buffers[i] = []
        obs = res.obs
    env.close()
    if len(kept) < n_demos:
        raise RuntimeError(f"only {len(kept)} of {n_demos} demos succeeded in {attempts} attempts")
    rows = [(e, t, k == len(ep) - 1) for e, ep in enumerate(kept) for k, t in enumerate(ep)]
    data = DemoData(
        obs=np.array([t[0] for _, t, _ in rows], np.float32),
        expert=np.array([t[1] for _, t, _ in rows], np.float32),
        action=np.array([t[2] for _, t, _ in rows], np.float32),
        next_obs=np.array([t[3] for _, t, _ in rows], np.float32),
        episode=np.array([e for e, _, _ in rows], np.int64),
        last=np.array([last for _, _, last in rows], bool),
    )
    return data, {"attempts": attempts, "successes": successes,
                  "success_rate": successes / max(attempts, 1), "steps": steps}


class BCPolicy(nn.Module):
    """Deterministic base policy ``a = tanh(MLP(normalise(obs)))``."""

    def __init__(self, obs_dim: int = OBS_DIM, act_dim: int = ACT_DIM, hidden: int = 256) -> None:
        super().__init__()
        self.normalizer = Normalizer(obs_dim)
        self.net = mlp(obs_dim, [hidden, hidden], act_dim)
        self.hidden = hidden

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(self.normalizer(obs)))


def train_bc(data: DemoData, epochs: int = 300, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
             hidden: int = 256, weight_decay: float = 1e-5, progress=None) -> tuple[BCPolicy, list[float]]:
    """Fits :class:`BCPolicy` to the clean expert labels (MSE on normalised actions).

    Returns:
        The policy (eval mode) and the mean training loss of every epoch.
    """
    torch.manual_seed(seed)
    policy = BCPolicy(data.obs.shape[1], data.expert.shape[1], hidden)
    policy.normalizer.fit(data.obs)
    obs = torch.as_tensor(data.obs, dtype=torch.float32)
    target = torch.as_tensor(data.expert, dtype=torch.float32)
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    n = len(obs)
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            loss = ((policy(obs[idx]) - target[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        losses.append(total / n)
        if progress is not None:
            progress(epoch, losses[-1])
    policy.eval()
    return policy, losses


def collect_rollouts(task: str, policy, n_episodes: int, seed: int = 0, randomness: str = "med",
                     perturbation: str = "high", noise: float = 0.2, n_envs: int = 16) -> DemoData:
    """Transitions of ``policy`` (``obs (N, D) -> actions (N, A)``) plus Gaussian action noise.

    Every finished episode is kept (success or not); ``expert`` holds the executed actions.
    Used for the Koopman model's data beyond the demonstrations and for held-out evaluation.
    """
    env = KorrVecEnv(task, n_envs, randomness, perturbation, seed=seed)
    rng = np.random.default_rng(seed + 104729)
    obs = env.reset()
    buffers: list[list[tuple]] = [[] for _ in range(n_envs)]
    kept: list[list[tuple]] = []
    while len(kept) < n_episodes:
        action = np.asarray(policy(obs), float).copy()
        action[:, :4] += rng.normal(0.0, noise, (n_envs, 4))
        action = np.clip(action, -1.0, 1.0)
        res = env.step(action)
        for i in range(n_envs):
            buffers[i].append((obs[i], action[i], res.final_obs[i]))
            if res.terminated[i] or res.truncated[i]:
                if len(kept) < n_episodes:
                    kept.append(buffers[i])
                buffers[i] = []
        obs = res.obs
    env.close()
    rows = [(e, t, k == len(ep) - 1) for e, ep in enumerate(kept) for k, t in enumerate(ep)]
    act = np.array([t[1] for _, t, _ in rows], np.float32)
    return DemoData(obs=np.array([t[0] for _, t, _ in rows], np.float32), expert=act, action=act,
                    next_obs=np.array([t[2] for _, t, _ in rows], np.float32),
                    episode=np.array([e for e, _, _ in rows], np.int64),
                    last=np.array([last for _, _, last in rows], bool))


def concat(*parts: DemoData) -> DemoData:
    """Concatenates datasets, renumbering episodes."""
    offset, episodes = 0, []
    for p in parts:
        episodes.append(p.episode + offset)
        offset += p.n_episodes
    return DemoData(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("obs", "expert", "action", "next_obs")),
                    episode=np.concatenate(episodes), last=np.concatenate([p.last for p in parts]))
