"""Training loss of the perceptive FDM (weights from the reference design).

Per ensemble member and sample:

* ``collision``: binary cross-entropy between the cumulative collision probability and the
  cumulative failure label (weight 2.0);
* ``position``: squared xy error, mean over steps (weight 1.7);
* ``heading``: squared error of ``(sin yaw, cos yaw)``, mean over steps (weight 1.7);

  with ``LossWeights.distance = "euclidean"`` both are distances instead of squared distances
  (``sqrt(d² + δ²) − δ``, δ = :data:`EUCLIDEAN_DELTA`, smooth at zero): the mean position error the
  model is judged on, whose gradient does not vanish as the error gets small;
* ``stop``: squared predicted xy displacement during steps that start after a failure — the
  ground-truth poses are frozen there (weight 1.0).

Members are weighted per sample (bootstrap weights) so that they see different data.

:func:`ranking_loss` is an optional extra term (``morobot train fdm --rank-weight``): over pairs of
samples with one start of which one failed, the logistic loss on the difference of their failure
log-odds at the horizon's end, so that the model learns which command fails from a given state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch.nn import functional as F

from morobot.fdm.model import MemberOutput


DISTANCES = ("squared", "euclidean")
EUCLIDEAN_DELTA = 0.01  # m (position) or chord length (heading): below it the euclidean terms turn quadratic


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms and the distance of the position and heading terms (:data:`DISTANCES`)."""

    collision: float = 2.0
    position: float = 1.7
    heading: float = 1.7
    stop: float = 1.0
    distance: str = "squared"

    def __post_init__(self) -> None:
        if self.distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {self.distance!r}")


def _distance(squared: torch.Tensor, kind: str) -> torch.Tensor:
    """``squared`` as it is, or the smooth distance ``sqrt(squared + δ²) − δ``."""
    if kind == "squared":
        return squared
    return torch.sqrt(squared + EUCLIDEAN_DELTA**2) - EUCLIDEAN_DELTA


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, stable at both ends."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def cumulative_collision_bce(hazard_logits: torch.Tensor, failed: torch.Tensor) -> torch.Tensor:
    """BCE of the cumulative collision probability, per element.

    Args:
        hazard_logits: ``[..., T]`` per-step hazard logits.
        failed: ``[..., T]`` cumulative failure labels in ``{0, 1}``.

    Returns:
        ``[..., T]`` loss.
    """
    log_survive = (-torch.cumsum(F.softplus(hazard_logits), dim=-1)).clamp_max(-1e-7)
    return -(failed * _log1mexp(log_survive) + (1.0 - failed) * log_survive)


def failure_log_odds(hazard_logits: torch.Tensor) -> torch.Tensor:
    """Log-odds of the cumulative failure probability at the last step: ``log(expm1(H))``, ``[...]``.

    ``H`` is the cumulative hazard ``sum softplus(hazard_logits)``; the log-odds rise with it.
    """
    h = F.softplus(hazard_logits).sum(-1).clamp_min(1e-7)
    return h + _log1mexp(-h)


def ranking_loss(failing: torch.Tensor, succeeding: torch.Tensor) -> torch.Tensor:
    """Pairwise logistic loss: the failing command of a pair should get the higher failure probability.

    Args:
        failing: ``[E, P, T]`` hazard logits of the sample of each pair that failed.
        succeeding: ``[E, P, T]`` hazard logits of the sample with the same start that did not.

    Returns:
        Scalar: ``softplus(-(log-odds(failing) - log-odds(succeeding)))``, mean over members and pairs
        (``log 2`` when the two are ranked equal).
    """
    if failing.shape != succeeding.shape:
        raise ValueError(f"pair halves must have one shape, got {tuple(failing.shape)} and "
                         f"{tuple(succeeding.shape)}")
    return F.softplus(failure_log_odds(succeeding) - failure_log_odds(failing)).mean()


def fdm_loss(
    out: MemberOutput,
    target_poses: torch.Tensor,
    failed: torch.Tensor,
    weights: LossWeights = LossWeights(),
    sample_weights: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its (unweighted) terms.

    Args:
        out: model outputs with ``[E, B, T, ...]`` tensors.
        target_poses: ``[B, T, 3]`` ground-truth poses relative to the start.
        failed: ``[B, T]`` cumulative failure flags (1 from the failing step on).
        weights: loss weights.
        sample_weights: optional ``[E, B]`` non-negative weights per member and sample.

    Returns:
        ``(total, terms)`` with scalar tensors; ``terms`` holds ``collision``, ``position``,
        ``heading`` and ``stop``.
    """
    poses = out.poses
    e, b, t = poses.shape[:3]
    if target_poses.shape != (b, t, 3) or failed.shape != (b, t):
        raise ValueError(
            f"targets must be [{b}, {t}, 3] and [{b}, {t}], got {tuple(target_poses.shape)} and {tuple(failed.shape)}"
        )
    failed = failed.to(poses.dtype)
    pos = _distance((poses[..., :2] - target_poses[..., :2]).square().sum(-1), weights.distance).mean(-1)
    yaw, tyaw = poses[..., 2], target_poses[..., 2]
    head_sq = (torch.sin(yaw) - torch.sin(tyaw)).square() + (torch.cos(yaw) - torch.cos(tyaw)).square()
    head = _distance(head_sq, weights.distance).mean(-1)
    prev_xy = torch.cat((torch.zeros_like(poses[..., :1, :2]), poses[..., :-1, :2]), dim=-2)
    step_sq = (poses[..., :2] - prev_xy).square().sum(-1)  # [E, B, T]
    failed_before = torch.cat((torch.zeros_like(failed[:, :1]), failed[:, :-1]), dim=-1)
    stop = (step_sq * failed_before).mean(-1)
    coll = cumulative_collision_bce(out.hazard_logits, failed.expand(e, b, t)).mean(-1)

    if sample_weights is None:
        sw = torch.ones(e, b, dtype=poses.dtype, device=poses.device)
    else:
        if sample_weights.shape != (e, b):
            raise ValueError(f"sample_weights must be [{e}, {b}], got {tuple(sample_weights.shape)}")
        sw = sample_weights.to(poses.dtype)
    norm = sw.sum().clamp_min(1e-6)
    terms = {
        "collision": (coll * sw).sum() / norm,
        "position": (pos * sw).sum() / norm,
        "heading": (head * sw).sum() / norm,
        "stop": (stop * sw).sum() / norm,
    }
    total = (
        weights.collision * terms["collision"]
        + weights.position * terms["position"]
        + weights.heading * terms["heading"]
        + weights.stop * terms["stop"]
    )
    return total, terms
