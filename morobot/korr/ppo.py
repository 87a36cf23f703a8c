"""PPO (clipped surrogate, GAE) over a vectorised environment, with an optional auxiliary loss.

Agent interface (see :class:`~morobot.korr.residual.ResidualAgent`):

* ``agent(obs) -> (Normal over u, value, context)``
* ``agent.value(obs) -> value``
* ``agent.env_action(context, u) -> env action``
* ``agent.aux_loss(obs, env_action, next_obs) -> Tensor | None`` (e.g. the Koopman loss)
* ``agent.actor_parameters()`` / ``agent.critic_parameters()`` (separate learning rates)
* optional, a model trained beside the policy by its own loss (KORR's Koopman model):
  ``agent.model_parameters()`` (non-empty to enable), ``agent.model_windows(batch)`` and
  ``agent.model_loss(*windows)``. After the PPO epochs of every update, ``model_steps`` Adam
  steps (``model_lr``, minibatches of ``model_batch`` windows) fit it on the roll-out just
  collected. Its gradients never mix with the PPO loss's.
* ``agent.imitation_loss(mean, context, expert_action, include_last)`` (only with
  ``bc_coef > 0``): expert-guidance loss of the actor's mean (see below)

Environment interface (see :class:`~morobot.korr.tasks.KorrVecEnv`): ``reset() -> obs``;
``step(actions) -> (obs, reward, terminated, truncated, success, final_obs)`` with automatic
resets (``obs`` already holds the new episode's first observation, ``final_obs`` the true next
observation). Time-limit truncations count as terminal unless ``bootstrap_truncation``.
With ``bc_coef > 0`` the environment must also offer ``expert_actions() -> (n_envs, act_dim)``:
the expert's action for the current observation of every env. It is queried on the states the
current (stochastic) policy visits, before each step (DAgger-style relabelling), and
``bc_coef * agent.imitation_loss(...)`` is added to the PPO loss. With ``bc_coef = 0`` the
expert is never queried and the loss is the plain PPO loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class PPOConfig:
    """KORR paper values for gamma, lambda, clip and the two learning rates.

    ``bootstrap_truncation``: add ``gamma * V(final_obs)`` to the reward of time-limit
    truncations. Off by default: the tasks must succeed within ``max_steps``, so a time-out is a
    failure; bootstrapping it (with V ~ "eventually succeeds") turns failures into discounted
    successes and erases the sparse signal (a first run with it on learned V ~ 0.9 everywhere
    and no improvement).

    ``anneal_lr``: both learning rates decay linearly to ``lr_floor`` x their start value over
    the run (:func:`train_ppo` sets them before every roll-out).

    ``bc_coef``: weight of the expert-guidance (imitation) loss added to the PPO loss; 0 (the
    default) leaves PPO unchanged and never queries the expert. ``bc_coef_final``: if set, the
    weight goes linearly from ``bc_coef`` to this value over the run (:func:`bc_coef_at`).
    ``bc_gripper``: include the last (gripper) action dimension in the imitation loss (default:
    only the motion dimensions). ``bc_buffer``: 0 fits the imitation loss on the minibatch of
    the current roll-out; N > 0 aggregates the last N expert-labelled states of all roll-outs
    (DAgger's data aggregation) and fits each minibatch's imitation loss on as many states
    sampled from that buffer.
    """

    gamma: float = 0.999
    gae_lambda: float = 0.95
    clip: float = 0.2
    actor_lr: float = 3e-4
    critic_lr: float = 5e-3
    n_steps: int = 32
    epochs: int = 8
    minibatch_size: int = 200
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    aux_coef: float = 1.0
    max_grad_norm: float = 1.0
    target_kl: float = 0.05
    bootstrap_truncation: bool = False
    anneal_lr: bool = False
    lr_floor: float = 0.0
    bc_coef: float = 0.0
    bc_coef_final: float | None = None
    bc_gripper: bool = False
    bc_buffer: int = 0
    model_lr: float = 1e-3
    model_steps: int = 8
    model_batch: int = 256

    def __post_init__(self) -> None:
        if self.model_steps < 0 or self.model_batch < 1 or not self.model_lr > 0:
            raise ValueError("model_steps must be >= 0, model_batch >= 1 and model_lr > 0")
        if self.bc_buffer < 0:
            raise ValueError(f"bc_buffer must be >= 0, got {self.bc_buffer}")
        if not self.bc_coef >= 0:
            raise ValueError(f"bc_coef must be >= 0, got {self.bc_coef}")
        if self.bc_coef_final is not None and not self.bc_coef_final >= 0:
            raise ValueError(f"bc_coef_final must be >= 0 (or None), got {self.bc_coef_final}")

    @property
    def expert_guided(self) -> bool:
        """Whether the expert is queried at all (a positive start or final imitation weight)."""
        return self.bc_coef > 0 or bool(self.bc_coef_final)

    def to_dict(self) -> dict:
        return asdict(self)


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


class PPO:
    """PPO trainer for one agent.

    Args:
        agent: see module docstring.
        config: hyper-parameters.
    """

    def __init__(self, agent: nn.Module, config: PPOConfig = PPOConfig()) -> None:
        self.agent = agent
        self.config = config
        self.optimizer = torch.optim.Adam([
            {"params": agent.actor_parameters(), "lr": config.actor_lr},
            {"params": agent.critic_parameters(), "lr": config.critic_lr},
        ], eps=1e-5)
        model_params = list(agent.model_parameters()) if hasattr(agent, "model_parameters") else []
        self.model_optimizer = (torch.optim.Adam(model_params, lr=config.model_lr)
                                if model_params and config.model_steps > 0 else None)
        self.bc_obs: torch.Tensor | None = None  # expert-labelled states (bc_buffer > 0)
        self.bc_expert: torch.Tensor | None = None

    def _aggregate(self, obs: torch.Tensor, expert: torch.Tensor) -> None:
        """Appends labelled states to the imitation buffer, keeping the newest ``bc_buffer``."""
        if self.bc_obs is None:
            self.bc_obs, self.bc_expert = obs, expert
        else:
            self.bc_obs = torch.cat([self.bc_obs, obs])
            self.bc_expert = torch.cat([self.bc_expert, expert])
        keep = self.config.bc_buffer
        self.bc_obs, self.bc_expert = self.bc_obs[-keep:], self.bc_expert[-keep:]

    # ------------------------------------------------------------------ rollouts
    @torch.no_grad()
    def collect(self, env, obs: np.ndarray, stats: EpisodeStats, global_step: int):
        """Runs ``n_steps`` vector steps; returns (batch dict, last obs, new global step)."""
        cfg = self.config
        n = len(obs)
        keys = ("obs", "u", "logp", "value", "reward", "done", "env_action", "next_obs")
        buf: dict[str, list] = {k: [] for k in keys}
        guided = cfg.expert_guided
        if guided:
            if not callable(getattr(env, "expert_actions", None)):
                raise ValueError("bc_coef > 0 needs an environment with expert_actions()")
            buf["expert"] = []
        for _ in range(cfg.n_steps):
            if guided:  # the expert's label for the state the policy is in now (before acting)
                buf["expert"].append(torch.as_tensor(np.asarray(env.expert_actions()), dtype=torch.float32))
            o = torch.as_tensor(obs, dtype=torch.float32)
            dist, value, ctx = self.agent(o)
            u = dist.sample()
            logp = dist.log_prob(u).sum(-1)
            action = self.agent.env_action(ctx, u)
            res = env.step(action.numpy())
            reward = np.asarray(res.reward, np.float64).copy()
            trunc = np.asarray(res.truncated) & ~np.asarray(res.terminated)
            if cfg.bootstrap_truncation and trunc.any():
                final = torch.as_tensor(res.final_obs[trunc], dtype=torch.float32)
                reward[trunc] += cfg.gamma * self.agent.value(final).numpy()
            done = np.asarray(res.terminated) | np.asarray(res.truncated)
            global_step += n
            stats.update(global_step, res.reward, done, res.success)
            for k, v in zip(keys, (o, u, logp, value, torch.as_tensor(reward, dtype=torch.float32),
                                   torch.as_tensor(done, dtype=torch.float32), action,
                                   torch.as_tensor(res.final_obs, dtype=torch.float32))):
                buf[k].append(v)
            obs = res.obs
        batch = {k: torch.stack(v) for k, v in buf.items()}
        last_value = self.agent.value(torch.as_tensor(obs, dtype=torch.float32))
        batch["advantage"], batch["return"] = self._gae(batch, last_value)
        return batch, obs, global_step

    def _gae(self, batch, last_value):
        cfg = self.config
        t_max = batch["reward"].shape[0]
        adv = torch.zeros_like(batch["reward"])
        gae = torch.zeros_like(last_value)
        next_value = last_value
        for t in reversed(range(t_max)):
            nonterminal = 1.0 - batch["done"][t]
            delta = batch["reward"][t] + cfg.gamma * next_value * nonterminal - batch["value"][t]
            gae = delta + cfg.gamma * cfg.gae_lambda * nonterminal * gae
            adv[t] = gae
            next_value = batch["value"][t]
        return adv, adv + batch["value"]

    # -------------------------------------------------------------------- update
    def update(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None,
               bc_coef: float | None = None) -> dict[str, float]:
        """Clipped-surrogate PPO epochs on one roll-out batch.

        Args:
            batch: output of :meth:`collect`.
            generator: minibatch shuffling.
            bc_coef: weight of the imitation loss for this update (None: ``config.bc_coef``).
                Needs ``batch["expert"]`` when positive.

        Returns:
            Mean losses and diagnostics (``bc_loss`` is the unweighted imitation loss, 0 when off).
        """
        cfg = self.config
        bc_coef = cfg.bc_coef if bc_coef is None else float(bc_coef)
        if bc_coef > 0 and "expert" not in batch:
            raise ValueError("bc_coef > 0 needs expert actions in the batch (collect with an expert-guided config)")
        flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in batch.items()}
        n = flat["obs"].shape[0]
        adv = flat["advantage"]
        flat["advantage"] = (adv - adv.mean()) / (adv.std() + 1e-8)
        stats = {"pg_loss": 0.0, "v_loss": 0.0, "aux_loss": 0.0, "bc_loss": 0.0, "kl": 0.0, "clip_frac": 0.0}
        with torch.no_grad():  # how much of the return the critic explains, before this update
            ret, val = flat["return"], flat["value"]
            explained = float(1.0 - (ret - val).var() / ret.var().clamp_min(1e-8))
            log_std = getattr(self.agent, "log_std", None)
            extra = {"explained_var": explained, "return_mean": float(ret.mean()),
                     "log_std": float(log_std.mean()) if log_std is not None else 0.0}
        updates = 0
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        buffered = bc_coef > 0 and cfg.bc_buffer > 0
        if buffered:
            self._aggregate(flat["obs"], flat["expert"])
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, generator=generator)
            kl_epoch = []
            for start in range(0, n, cfg.minibatch_size):
                idx = perm[start:start + cfg.minibatch_size]
                mb = {k: v[idx] for k, v in flat.items()}
                dist, value, ctx = self.agent(mb["obs"])
                logp = dist.log_prob(mb["u"]).sum(-1)
                log_ratio = logp - mb["logp"]
                ratio = log_ratio.exp()
                a = mb["advantage"]
                pg = -torch.min(ratio * a, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a).mean()
                v_loss = 0.5 * ((value - mb["return"]) ** 2).mean()
                loss = pg + cfg.vf_coef * v_loss - cfg.ent_coef * dist.entropy().sum(-1).mean()
                aux = self.agent.aux_loss(mb["obs"], mb["env_action"], mb["next_obs"])
                if aux is not None:
                    loss = loss + cfg.aux_coef * aux
                    stats["aux_loss"] += float(aux.detach())
                if buffered:
                    pick = torch.randint(len(self.bc_obs), (len(idx),), generator=generator)
                    dist_bc, _, ctx_bc = self.agent(self.bc_obs[pick])
                    bc = self.agent.imitation_loss(dist_bc.mean, ctx_bc, self.bc_expert[pick], cfg.bc_gripper)
                elif bc_coef > 0:
                    bc = self.agent.imitation_loss(dist.mean, ctx, mb["expert"], cfg.bc_gripper)
                if bc_coef > 0:
                    loss = loss + bc_coef * bc
                    stats["bc_loss"] += float(bc.detach())
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    kl = float(((ratio - 1) - log_ratio).mean())
                    stats["clip_frac"] += float(((ratio - 1).abs() > cfg.clip).float().mean())
                kl_epoch.append(kl)
                stats["pg_loss"] += float(pg.detach())
                stats["v_loss"] += float(v_loss.detach())
                stats["kl"] += kl
                updates += 1
            if cfg.target_kl and np.mean(kl_epoch) > cfg.target_kl:
                break
        if self.model_optimizer is not None:
            extra["model_loss"] = self._update_model(batch, generator)
        return {**{k: v / max(updates, 1) for k, v in stats.items()}, **extra, "bc_coef": bc_coef}

    def _update_model(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None) -> float:
        """``model_steps`` steps of the agent's own model loss on the roll-out; mean loss."""
        cfg = self.config
        windows = self.agent.model_windows(batch)
        params = [p for g in self.model_optimizer.param_groups for p in g["params"]]
        n, losses = windows[0].shape[0], []
        for _ in range(cfg.model_steps):
            idx = torch.randint(n, (min(cfg.model_batch, n),), generator=generator)
            loss = self.agent.model_loss(*(w[idx] for w in windows))
            self.model_optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 5.0)
            self.model_optimizer.step()
            losses.append(float(loss.detach()))
        return float(np.mean(losses))

    # ------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        state = {"agent": self.agent.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.model_optimizer is not None:
            state["model_optimizer"] = self.model_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.agent.load_state_dict(state["agent"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.model_optimizer is not None:
            if "model_optimizer" not in state:
                raise KeyError("resume state has no model_optimizer (saved by a run without a model)")
            self.model_optimizer.load_state_dict(state["model_optimizer"])


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
    """Alternates :meth:`PPO.collect` and :meth:`PPO.update` until ``total_steps`` env steps.

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
        batch, obs, step = ppo.collect(env, obs, stats, step)
        info = ppo.update(batch, gen, bc_coef=bc_coef)
        if callback is not None and callback(step, info, stats):
            break
    return stats
