"""Residual policies on top of the frozen base policy: ResiP-style MLP, KORR and its ablation.

All variants act as ``a = clip(a_base + alpha * tanh(u), -1, 1)`` with ``u ~ N(mu, sigma)``, where
``alpha`` is per action dimension (``alpha`` on the motion dimensions, ``alpha_gripper`` on the
gripper, the last one); PPO treats ``u`` as the action (the squashing belongs to the environment
side, so no Jacobian term is needed). The critic sees ``[s, a_base]`` in every variant. What the
actor sees:

========================  ====================================================================
``mlp`` (ResiP)           ``[s, a_base]``
``korr``                  ``[s, A phi(s) + B a_base, a_base]`` — the Koopman-predicted next
                          latent. How the Koopman model keeps learning depends on
                          ``koopman_training`` (below)
``korr_nokoop``           ``[s, phi(s), a_base]`` — same encoder (initialised from the same
                          Koopman pre-training, trained by RL only), no predicted latent and no
                          Koopman loss: separates "a learned latent" from "Koopman conditioning"
========================  ====================================================================

``s`` is the standardised observation (the base policy's normaliser).

``koopman_training`` (``korr`` only):

* ``"prediction"``: the actor reads the predicted latent without gradient, and the
  Koopman model is trained online on the PPO roll-outs by its own prediction losses only
  (:meth:`ResidualAgent.model_loss`: the pre-training loss, one-step, multi-step, state and
  reconstruction terms, with its own optimiser, see :class:`~morobot.korr.ppo.PPO`). The latent
  stays a multi-step predictor of where the base action takes the system.
* ``"joint"`` (default; rounds 1-5 and the shipped checkpoints): the one-step Koopman loss is
  added to the PPO loss (:meth:`ResidualAgent.aux_loss`) and the actor's gradients, the imitation term's included,
  flow into ``phi``, ``A`` and ``B`` at the actor's learning rate. After round 4's training this
  left the Koopman models worse than DMDc beyond one step (docs/korr.md, round 5). It is still
  the default because its policies are better: in round 6 the prediction-only runs kept the
  Koopman model predictive but their residuals fell well behind on insert (docs/korr.md).

``latent_norm`` (``korr``, off by default): the predicted latent is standardised per dimension
with fixed statistics of the Koopman pre-training data (:meth:`ResidualAgent.set_latent_normalization`)
before the actor reads it. The raw latent is not scaled for an MLP input (on insert its
per-dimension std reaches 11 against ~1 for the standardised state); in ``"joint"`` mode the
encoder could rescale itself, in ``"prediction"`` mode it cannot.

Expert guidance (round 4, :meth:`ResidualAgent.imitation_loss`): with a scripted expert queried
on the visited states, the residual that would reproduce the expert's action within the bound is
``target = clip((a_expert - a_base) / alpha, -1, 1)`` (:func:`residual_target`), in the units of
``tanh(u)``; the loss is the mean squared error between ``tanh(mean)`` (the deterministic
residual / alpha) and that target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.distributions import Normal

from morobot.korr.koopman import KoopmanModel, rollout_windows
from morobot.korr.nets import Normalizer, mlp

VARIANTS = ("mlp", "korr", "korr_nokoop")
KOOPMAN_TRAINING = ("prediction", "joint")


@dataclass
class ResidualConfig:
    """Residual policy settings.

    Attributes:
        variant: one of ``VARIANTS``.
        obs_dim: observation size.
        act_dim: action size.
        alpha: residual bound (normalised action units; 1 = a full 2.5 cm step).
        alpha_gripper: bound on the last (gripper) action dimension; None: the same as
            ``alpha``. Releasing or re-grasping needs a change of ~1 unit of the gripper action,
            which ``alpha = 0.1`` does not allow. Checkpoints without this key load as None.
        hidden: width of the 2-layer actor and critic.
        init_log_std: initial log std of ``u``.
        koopman_weight: weight of the Koopman loss in the PPO loss (``korr`` with
            ``koopman_training="joint"`` only).
        koopman_training: ``"prediction"`` or ``"joint"`` (module docstring). Checkpoints
            without this key were trained jointly and load as ``"joint"``.
        latent_norm: standardise the predicted latent before the actor (``korr`` only; module
            docstring). Checkpoints without this key load as False (also the default).
    """

    variant: str
    obs_dim: int
    act_dim: int
    alpha: float = 0.1
    alpha_gripper: float | None = None
    hidden: int = 256
    init_log_std: float = -0.7
    koopman_weight: float = 1.0
    koopman_training: str = "joint"
    latent_norm: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.koopman_training not in KOOPMAN_TRAINING:
            raise ValueError(f"koopman_training must be one of {KOOPMAN_TRAINING}, got {self.koopman_training!r}")
        if not self.alpha > 0:
            raise ValueError("alpha must be > 0")
        if self.alpha_gripper is not None:
            self.alpha_gripper = float(self.alpha_gripper)
            if not self.alpha_gripper > 0:
                raise ValueError("alpha_gripper must be > 0 (or None: same as alpha)")

    def bounds(self) -> list[float]:
        """Per-dimension residual bound: ``alpha`` on the motion dims, ``alpha_gripper`` on the last."""
        grip = self.alpha if self.alpha_gripper is None else self.alpha_gripper
        return [float(self.alpha)] * (self.act_dim - 1) + [float(grip)]

    def to_dict(self) -> dict:
        return asdict(self)


def residual_target(a_base: torch.Tensor, a_expert: torch.Tensor, alpha_vec: torch.Tensor) -> torch.Tensor:
    """Normalised residual that moves ``a_base`` towards ``a_expert`` as far as the bound allows.

    Args:
        a_base: base actions (..., act_dim).
        a_expert: expert actions, same shape.
        alpha_vec: per-dimension residual bound (act_dim,).

    Returns:
        ``clip((a_expert - a_base) / alpha_vec, -1, 1)``, same shape as ``a_base``: the value of
        ``tanh(u)`` whose env action ``a_base + alpha * tanh(u)`` is closest to ``a_expert``.
    """
    if a_base.shape != a_expert.shape:
        raise ValueError(f"a_base {tuple(a_base.shape)} and a_expert {tuple(a_expert.shape)} differ in shape")
    return ((a_expert - a_base) / alpha_vec).clamp(-1.0, 1.0)


class ResidualAgent(nn.Module):
    """Frozen base policy + residual actor + critic (+ Koopman model for the latent variants).

    Args:
        config: settings.
        base: deterministic base policy ``obs -> a_base`` in [-1, 1] (a module with a
            ``normalizer`` attribute, e.g. :class:`~morobot.korr.bc.BCPolicy`); frozen here.
        koopman: Koopman model (required by ``korr`` and ``korr_nokoop``), trained further here.
    """

    def __init__(self, config: ResidualConfig, base: nn.Module, koopman: KoopmanModel | None = None) -> None:
        super().__init__()
        self.config = config
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.normalizer: Normalizer = base.normalizer
        c = config
        latent = 0
        if c.variant != "mlp":
            if koopman is None:
                raise ValueError(f"variant {c.variant} needs a Koopman model")
            latent = koopman.config.latent_dim
        self.koopman = koopman if c.variant != "mlp" else None
        self.actor = mlp(c.obs_dim + latent + c.act_dim, [c.hidden, c.hidden], c.act_dim,
                         activation=nn.Tanh, out_scale=0.01)
        self.log_std = nn.Parameter(torch.full((c.act_dim,), c.init_log_std))
        self.critic = mlp(c.obs_dim + c.act_dim, [c.hidden, c.hidden], 1, activation=nn.Tanh)
        # not persistent: derived from the config, so old checkpoints (without it) still load
        self.register_buffer("alpha_vec", torch.tensor(c.bounds(), dtype=torch.float32), persistent=False)
        if self._latent_normalized:  # identity until set_latent_normalization
            self.register_buffer("latent_mean", torch.zeros(latent))
            self.register_buffer("latent_std", torch.ones(latent))

    @property
    def _latent_normalized(self) -> bool:
        return self.config.variant == "korr" and self.config.latent_norm

    @torch.no_grad()
    def set_latent_normalization(self, obs: torch.Tensor) -> None:
        """Fixes the actor's latent standardisation to the statistics of the predicted latent
        ``A phi(s) + B a_base`` over raw observations ``obs`` (e.g. the Koopman training data)."""
        if not self._latent_normalized:
            raise ValueError("latent normalisation needs variant 'korr' with latent_norm")
        obs = torch.as_tensor(obs, dtype=torch.float32)
        z = self.koopman.step(self.koopman.encode(self.normalizer(obs)), self.base_action(obs))
        self.latent_mean.copy_(z.mean(0))
        self.latent_std.copy_(z.std(0).clamp_min(1e-3))

    # ------------------------------------------------------------------ pieces
    def base_action(self, obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.base(obs)

    def actor_features(self, s: torch.Tensor, a_base: torch.Tensor) -> torch.Tensor:
        v = self.config.variant
        if v == "mlp":
            return torch.cat([s, a_base], -1)
        if self._koopman_by_prediction:
            with torch.no_grad():  # the actor reads the prediction; only model_loss trains it
                z = self.koopman.step(self.koopman.encode(s), a_base)
        else:
            z = self.koopman.encode(s)
            if v == "korr":
                z = self.koopman.step(z, a_base)
        if self._latent_normalized:
            z = (z - self.latent_mean) / self.latent_std
        return torch.cat([s, z, a_base], -1)

    @property
    def _koopman_by_prediction(self) -> bool:
        return self.config.variant == "korr" and self.config.koopman_training == "prediction"

    def forward(self, obs: torch.Tensor):
        """``(Normal over u, value, a_base)`` for raw observations (B, obs_dim)."""
        a_base = self.base_action(obs)
        s = self.normalizer(obs)
        mean = self.actor(self.actor_features(s, a_base))
        dist = Normal(mean, self.log_std.exp().expand_as(mean))
        value = self.critic(torch.cat([s, a_base], -1)).squeeze(-1)
        return dist, value, a_base

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        a_base = self.base_action(obs)
        return self.critic(torch.cat([self.normalizer(obs), a_base], -1)).squeeze(-1)

    def env_action(self, a_base: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return (a_base + self.alpha_vec * torch.tanh(u)).clamp(-1.0, 1.0)

    @torch.no_grad()
    def act_deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """Evaluation action: ``a_base + alpha * tanh(mean)`` (``alpha`` per dimension, clipped to [-1, 1])."""
        a_base = self.base_action(obs)
        mean = self.actor(self.actor_features(self.normalizer(obs), a_base))
        return self.env_action(a_base, mean)

    def aux_loss(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor | None:
        """Koopman one-step latent + reconstruction loss on rollout transitions, added to the PPO
        loss (``korr`` with ``koopman_training="joint"`` only; None otherwise)."""
        if self.config.variant != "korr" or self._koopman_by_prediction:
            return None
        k = self.koopman
        s, s_next = self.normalizer(obs), self.normalizer(next_obs)
        z, z_next = k.encode(s), k.encode(s_next)
        scale = z.var(0).mean().clamp_min(1e-6)
        one_step = ((k.step(z, action) - z_next) ** 2).mean() / scale
        recon = ((k.decoder(z) - s) ** 2).mean()
        state = ((k.decoder(k.step(z, action)) - s_next) ** 2).mean()
        return self.config.koopman_weight * (one_step + recon + state)

    def model_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by :meth:`model_loss` with their own optimiser (empty unless
        ``korr`` with ``koopman_training="prediction"``)."""
        if not self._koopman_by_prediction:
            return []
        return [p for p in self.koopman.parameters() if p.requires_grad]

    def model_windows(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Standardised Koopman training windows ``(states, actions, mask)`` from a PPO roll-out
        batch (time-major ``obs``, ``env_action``, ``next_obs``, ``done``)."""
        s, a, m = rollout_windows(batch["obs"], batch["env_action"], batch["next_obs"], batch["done"],
                                  self.koopman.config.horizon)
        with torch.no_grad():
            s = self.normalizer(s)
        return s, a, m

    def model_loss(self, states: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The Koopman pre-training loss (:meth:`KoopmanModel.losses`) on standardised windows."""
        return self.koopman.losses(states, actions, mask)["total"]

    def imitation_loss(self, mean: torch.Tensor, a_base: torch.Tensor, a_expert: torch.Tensor,
                       include_gripper: bool = False) -> torch.Tensor:
        """Expert-guidance loss: MSE between ``tanh(mean)`` and :func:`residual_target`.

        Args:
            mean: the actor's mean of ``u`` (B, act_dim), with gradient.
            a_base: the base actions of the same states (B, act_dim).
            a_expert: the expert's actions there (B, act_dim).
            include_gripper: also fit the last (gripper) dimension; by default only the motion
                dimensions are fitted.

        Returns:
            Scalar loss (mean over the batch and the fitted dimensions).
        """
        target = residual_target(a_base, a_expert, self.alpha_vec)
        err = (torch.tanh(mean) - target) ** 2
        if not include_gripper:
            err = err[..., :-1]
        return err.mean()

    # -------------------------------------------------------------- optimiser
    def actor_parameters(self) -> list[nn.Parameter]:
        params = list(self.actor.parameters()) + [self.log_std]
        if self.koopman is not None and not self._koopman_by_prediction:
            params += [p for p in self.koopman.parameters() if p.requires_grad]
        return params

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters())
