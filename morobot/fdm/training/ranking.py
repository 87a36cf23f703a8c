"""The ranking term of FDM training: pairs of samples with one start and opposite outcomes.

Counterfactual branches (``morobot collect-nav --branch-leads``) drive one moment of a run on with
different commands. Where one of them failed within the horizon and another did not, the pair says which
command fails from that state: the question the planner asks. ``morobot train fdm --rank-weight W`` adds
``W`` × :func:`~morobot.fdm.training.loss.ranking_loss` over such pairs, drawn anew for every batch.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from morobot.fdm.data.dataset import FDMDataset, mirror_batch
from morobot.fdm.data.starts import outcome_pairs, start_groups
from morobot.fdm.model import PerceptiveFDM, collision_probability
from morobot.fdm.training.loss import ranking_loss


class RankingPairs:
    """Every pair of samples of ``data`` with one start of which exactly one failed by the horizon's end."""

    def __init__(self, data: FDMDataset) -> None:
        self.data = data
        self.pairs = outcome_pairs(data.arrays["failed"][:, -1], start_groups(data))

    def __len__(self) -> int:
        return len(self.pairs)

    def draw(self, n: int, generator: torch.Generator) -> np.ndarray:
        """``n`` pairs drawn uniformly with replacement, ``[n, 2]``."""
        return self.pairs[torch.randint(len(self.pairs), (n,), generator=generator).numpy()]

    def hazards(self, model: PerceptiveFDM, pairs: np.ndarray, device: torch.device,
                flip: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Hazard logits ``[E, P, T]`` of the failing and of the other sample of ``[P, 2]`` pairs (both samples
        of a pair reflected left-right where ``flip``)."""
        batch = self.data.batch(np.concatenate((pairs[:, 0], pairs[:, 1])), with_scan=model.config.use_scan)
        if flip is not None:
            batch = mirror_batch(batch, flip.repeat(2), model.config.scan, model.config.history_features)
        b = {k: v.to(device) for k, v in batch.items()}
        hazards = model(b["history"], b.get("scan"), b["commands"]).hazard_logits
        return hazards[:, :len(pairs)], hazards[:, len(pairs):]

    def loss(self, model: PerceptiveFDM, pairs: np.ndarray, device: torch.device,
             flip: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Ranking loss of ``model`` on ``[P, 2]`` pairs."""
        return ranking_loss(*self.hazards(model, pairs, device, flip))

    @torch.no_grad()
    def evaluate(self, model: PerceptiveFDM, batch_size: int, device: torch.device) -> dict[str, float]:
        """Over all pairs: the mean ``ranking`` loss and ``ranking_accuracy``, the fraction of pairs whose failing
        sample gets the higher failure probability (members averaged, ties half: ``morobot eval fdm``'s
        command ranking); empty without pairs."""
        if not len(self):
            return {}
        loss, right = 0.0, 0.0
        for i in range(0, len(self), batch_size):
            chunk = self.pairs[i:i + batch_size]
            failing, other = self.hazards(model, chunk, device)
            loss += float(ranking_loss(failing, other)) * len(chunk)
            diff = (collision_probability(failing)[..., -1] - collision_probability(other)[..., -1]).mean(0)
            right += float((diff > 0).sum() + 0.5 * (diff == 0).sum())
        return {"ranking": loss / len(self), "ranking_accuracy": right / len(self)}
