"""Roll-out storage of the KORR PPO: one batch of vector steps and its GAE advantages and returns."""

from __future__ import annotations

import numpy as np
import torch


class EpisodeStats:
    """Running record of finished episodes: (env step count, success, return, length)."""

    def __init__(self, n_envs: int) -> None:
        self.ret = np.zeros(n_envs)
        self.len = np.zeros(n_envs, int)
        self.finished: list[tuple[int, float, float, int]] = []

    def update(self, global_step: int, reward, done, success) -> None:
        self.ret += reward
        self.len += 1
        for i in np.flatnonzero(done):
            self.finished.append((global_step, float(success[i]), float(self.ret[i]), int(self.len[i])))
            self.ret[i] = 0.0
            self.len[i] = 0


class RolloutStorage:
    """The steps of one roll-out, as lists per key until :meth:`batch` stacks them ``[T, n_envs, ...]``.

    Args:
        keys: the per-step entries (``obs``, ``u``, ``logp``, ``value``, ``reward``, ``done``, ...).
    """

    def __init__(self, keys) -> None:
        self.buf: dict[str, list] = {k: [] for k in keys}

    def add(self, **step) -> None:
        for k, v in step.items():
            self.buf[k].append(v)

    def batch(self, last_value: torch.Tensor, gamma: float, gae_lambda: float) -> dict[str, torch.Tensor]:
        """The stacked roll-out with ``advantage`` and ``return`` (GAE from ``last_value``)."""
        batch = {k: torch.stack(v) for k, v in self.buf.items()}
        batch["advantage"], batch["return"] = gae(batch, last_value, gamma, gae_lambda)
        return batch


def gae(batch: dict[str, torch.Tensor], last_value: torch.Tensor, gamma: float,
        gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns of a stacked roll-out."""
    t_max = batch["reward"].shape[0]
    adv = torch.zeros_like(batch["reward"])
    acc = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(t_max)):
        nonterminal = 1.0 - batch["done"][t]
        delta = batch["reward"][t] + gamma * next_value * nonterminal - batch["value"][t]
        acc = delta + gamma * gae_lambda * nonterminal * acc
        adv[t] = acc
        next_value = batch["value"][t]
    return adv, adv + batch["value"]
