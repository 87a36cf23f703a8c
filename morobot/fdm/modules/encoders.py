"""Encoders run once per planning cycle: proprioceptive history and height scan."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class HistoryEncoder(nn.Module):
    """GRU over the normalised proprioceptive history; the last hidden state is the feature.

    Args:
        input_dim: features per history row.
        hidden: GRU width.
        layers: stacked GRU layers.
    """

    def __init__(self, input_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_dim, hidden, num_layers=layers, batch_first=True)
        self.out_dim = hidden

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """Encodes ``[B, L, D]`` histories into ``[B, hidden]`` features."""
        _, h_n = self.gru(history)
        return h_n[-1]


class ScanEncoder(nn.Module):
    """CNN over the two-channel height scan, flattened and projected to ``features``.

    Layer 1 is followed by a 2×2 max-pool (as in the reference design); every convolution uses
    ``kernel // 2`` padding and an ELU.

    Args:
        in_channels: scan channels (height, validity).
        shape: ``(rows, cols)`` of the scan.
        channels: output channels of each convolution.
        kernels: kernel size of each convolution.
        strides: stride of each convolution.
        features: width of the final projection.
    """

    def __init__(
        self,
        in_channels: int,
        shape: tuple[int, int],
        channels: Sequence[int],
        kernels: Sequence[int],
        strides: Sequence[int],
        features: int,
    ) -> None:
        super().__init__()
        if not (len(channels) == len(kernels) == len(strides) >= 1):
            raise ValueError("channels, kernels and strides must have the same non-zero length")
        layers: list[nn.Module] = []
        prev = in_channels
        for idx, (ch, k, s) in enumerate(zip(channels, kernels, strides)):
            layers += [nn.Conv2d(prev, ch, kernel_size=k, stride=s, padding=k // 2), nn.ELU()]
            if idx == 0:
                layers.append(nn.MaxPool2d(2))
            prev = ch
        self.conv = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, in_channels, *shape)).numel()
        self.proj = nn.Sequential(nn.Flatten(), nn.Linear(flat, features), nn.ELU())
        self.out_dim = features

    def forward(self, scan: torch.Tensor) -> torch.Tensor:
        """Encodes ``[B, C, rows, cols]`` scans into ``[B, features]``."""
        return self.proj(self.conv(scan))
