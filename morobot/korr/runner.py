"""Orchestration of the KORR PPO (rsl_rl style: runners orchestrate, algorithms own their update):
collecting roll-outs from the vectorised environment, the learning-rate and imitation schedules,
and the training loop."""

from __future__ import annotations

import numpy as np
import torch

from morobot.korr.ppo import PPO, PPOConfig
from morobot.korr.rollout import EpisodeStats, RolloutStorage


@torch.no_grad()
def collect(ppo: PPO, env, obs: np.ndarray, stats: EpisodeStats, global_step: int):
    """Runs ``ppo.config.n_steps`` vector steps of ``ppo.agent`` in ``env``.

    Returns:
        ``(batch dict, last obs, new global step)``.
    """
    cfg = ppo.config
    agent = ppo.agent
    n = len(obs)
    keys = ("obs", "u", "logp", "value", "reward", "done", "env_action", "next_obs")
    guided = cfg.expert_guided
    if guided:
        if not callable(getattr(env, "expert_actions", None)):
            raise ValueError("bc_coef > 0 needs an environment with expert_actions()")
        keys = keys + ("expert",)
    storage = RolloutStorage(keys)
    for _ in range(cfg.n_steps):
        if guided:  # the expert's label for the state the policy is in now (before acting)
            expert = torch.as_tensor(np.asarray(env.expert_actions()), dtype=torch.float32)
        o = torch.as_tensor(obs, dtype=torch.float32)
        dist, value, ctx = agent(o)
        u = dist.sample()
        logp = dist.log_prob(u).sum(-1)
        action = agent.env_action(ctx, u)
        res = env.step(action.numpy())
        reward = np.asarray(res.reward, np.float64).copy()
        trunc = np.asarray(res.truncated) & ~np.asarray(res.terminated)
        if cfg.bootstrap_truncation and trunc.any():
            final = torch.as_tensor(res.final_obs[trunc], dtype=torch.float32)
            reward[trunc] += cfg.gamma * agent.value(final).numpy()
        done = np.asarray(res.terminated) | np.asarray(res.truncated)
        global_step += n
        stats.update(global_step, res.reward, done, res.success)
        storage.add(obs=o, u=u, logp=logp, value=value, reward=torch.as_tensor(reward, dtype=torch.float32),
                    done=torch.as_tensor(done, dtype=torch.float32), env_action=action,
                    next_obs=torch.as_tensor(res.final_obs, dtype=torch.float32),
                    **({"expert": expert} if guided else {}))
        obs = res.obs
    last_value = agent.value(torch.as_tensor(obs, dtype=torch.float32))
    return storage.batch(last_value, cfg.gamma, cfg.gae_lambda), obs, global_step


def lr_factor(config: PPOConfig, step: int, total_steps: int) -> float:
    """Learning-rate multiplier at env step ``step`` (1 without annealing)."""
    if not config.anneal_lr or total_steps <= 0:
        return 1.0
    frac = min(1.0, max(0, step) / total_steps)
    return 1.0 - (1.0 - config.lr_floor) * frac


def bc_coef_at(config: PPOConfig, step: int, total_steps: int) -> float:
    """Imitation-loss weight at env step ``step``: ``bc_coef``, or linear to ``bc_coef_final`` if set."""
    if config.bc_coef_final is None or total_steps <= 0:
        return float(config.bc_coef)
    frac = min(1.0, max(0, step) / total_steps)
    return float(config.bc_coef + (config.bc_coef_final - config.bc_coef) * frac)


def train_ppo(env, ppo: PPO, total_steps: int, seed: int = 0, start_step: int = 0,
              callback=None, stats: EpisodeStats | None = None) -> EpisodeStats:
    """Alternates :func:`collect` and :meth:`PPO.update` until ``total_steps`` env steps.

    Args:
        callback: called as ``callback(global_step, update_stats, episode_stats)`` after every
            update; returning True stops training.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    obs = env.reset()
    stats = stats or EpisodeStats(len(obs))
    step = start_step
    base_lrs = (ppo.config.actor_lr, ppo.config.critic_lr)
    while step < total_steps:
        factor = lr_factor(ppo.config, step, total_steps)
        for group, lr in zip(ppo.optimizer.param_groups, base_lrs):
            group["lr"] = lr * factor
        bc_coef = bc_coef_at(ppo.config, step, total_steps)
        batch, obs, step = collect(ppo, env, obs, stats, step)
        info = ppo.update(batch, gen, bc_coef=bc_coef)
        if callback is not None and callback(step, info, stats):
            break
    return stats
