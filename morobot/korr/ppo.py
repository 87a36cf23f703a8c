"""PPO (clipped surrogate, GAE) over a vectorised environment, with an optional auxiliary loss.

Split as rsl_rl does: this module is the algorithm (configuration, the update, the optimisers);
:mod:`morobot.korr.rollout` holds the roll-out storage and its advantages, and
:mod:`morobot.korr.runner` orchestrates (collecting roll-outs from the environment, schedules,
the training loop).

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

    # -------------------------------------------------------------------- update
    def update(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None,
               bc_coef: float | None = None) -> dict[str, float]:
        """Clipped-surrogate PPO epochs on one roll-out batch.

        Args:
            batch: output of :func:`morobot.korr.runner.collect`.
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
