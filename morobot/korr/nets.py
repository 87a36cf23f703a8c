"""Small network building blocks shared by the KORR models."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, activation: type[nn.Module] = nn.ReLU,
        out_scale: float | None = None) -> nn.Sequential:
    """``in -> hidden... -> out`` with ``activation`` between layers (none after the last).

    Args:
        out_scale: if given, the last layer's weights are scaled by it and its bias zeroed
            (near-zero initial outputs, e.g. for residual actors).
    """
    layers: list[nn.Module] = []
    dims = [in_dim, *hidden]
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), activation()]
    last = nn.Linear(dims[-1], out_dim)
    if out_scale is not None:
        with torch.no_grad():
            last.weight.mul_(out_scale)
            last.bias.zero_()
    layers.append(last)
    return nn.Sequential(*layers)


class Normalizer(nn.Module):
    """Fixed per-feature standardisation ``(x - mean) / std``, clipped to +-``clip``.

    The statistics are buffers (saved in state dicts) set once from demonstration data.
    """

    def __init__(self, dim: int, clip: float = 10.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.clip = clip

    def fit(self, data: np.ndarray, min_std: float = 1e-2) -> "Normalizer":
        data = np.asarray(data, np.float64)
        self.mean.copy_(torch.as_tensor(data.mean(0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.maximum(data.std(0), min_std), dtype=torch.float32))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std).clamp(-self.clip, self.clip)
