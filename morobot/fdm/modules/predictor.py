"""Ensemble of recurrent predictors that roll command sequences forward from a shared context.

Every member is a single-layer GRU with its own weights; the members run as batched matrix
products per step (``[E, K, C + H] @ [E, C + H, 2H]`` for the reset/update gates plus two small
ones for the candidate), so an ensemble of ``E`` costs about ``E`` times one small GRU and no
Python loop over members.

The context enters each member twice: through the initial hidden state and as a constant
input at every step. Because the context is the same for all ``K`` samples at planning time,
its input-gate contribution is computed once (``[E, 1, 3H]``) and broadcast, instead of
concatenating the context to every command (which would cost ``K * T`` extra matrix rows).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

#: Outputs per step and member: twist correction (3) and collision hazard logit (1).
PREDICTOR_OUTPUTS = 4


class EnsemblePredictor(nn.Module):
    """``E`` GRU predictors with per-step heads.

    Parameters listed in :attr:`MEMBER_PARAMETERS` have the member as their first dimension; the
    command embedding is shared.

    Args:
        context_dim: width of the context vector.
        command_dim: width of a command (3).
        command_hidden: width of the shared per-step command embedding.
        hidden: GRU width of each member.
        members: ensemble size ``E``.
        hazard_bias: initial bias of the hazard logit (a low initial collision rate).
    """

    MEMBER_PARAMETERS = ("w_h0", "b_h0", "w_ctx", "b_ctx", "w_cmd", "w_hh", "b_hh", "w_out", "b_out")

    def __init__(
        self,
        context_dim: int,
        command_dim: int,
        command_hidden: int,
        hidden: int,
        members: int,
        hazard_bias: float = -4.0,
    ) -> None:
        super().__init__()
        if members < 1:
            raise ValueError(f"members must be >= 1, got {members}")
        self.members = members
        self.hidden = hidden
        self.command = nn.Linear(command_dim, command_hidden)
        gates = 3 * hidden
        self.w_h0 = nn.Parameter(torch.empty(members, context_dim, hidden))
        self.b_h0 = nn.Parameter(torch.empty(members, hidden))
        self.w_ctx = nn.Parameter(torch.empty(members, context_dim, gates))
        self.b_ctx = nn.Parameter(torch.empty(members, gates))
        self.w_cmd = nn.Parameter(torch.empty(members, command_hidden, gates))
        self.w_hh = nn.Parameter(torch.empty(members, hidden, gates))
        self.b_hh = nn.Parameter(torch.empty(members, gates))
        self.w_out = nn.Parameter(torch.empty(members, hidden, PREDICTOR_OUTPUTS))
        self.b_out = nn.Parameter(torch.empty(members, PREDICTOR_OUTPUTS))
        self._reset(hazard_bias)

    def _reset(self, hazard_bias: float) -> None:
        bound_ctx = 1.0 / math.sqrt(self.w_ctx.shape[1])
        bound_h = 1.0 / math.sqrt(self.hidden)
        bound_cmd = 1.0 / math.sqrt(self.w_cmd.shape[1])
        with torch.no_grad():
            for p, bound in (
                (self.w_h0, bound_ctx),
                (self.b_h0, bound_ctx),
                (self.w_ctx, bound_ctx),
                (self.b_ctx, bound_ctx),
                (self.w_cmd, bound_cmd),
                (self.w_hh, bound_h),
                (self.b_hh, bound_h),
            ):
                p.uniform_(-bound, bound)
            # Small output weights: an untrained model predicts perfect tracking and few collisions.
            self.w_out.normal_(0.0, 0.1 * bound_h)
            self.b_out.zero_()
            self.b_out[:, 3] = hazard_bias

    def forward(self, context: torch.Tensor, commands: torch.Tensor) -> torch.Tensor:
        """Rolls all members forward.

        Args:
            context: ``[B, context_dim]`` with ``B == 1`` (broadcast to every sample) or ``B == K``.
            commands: ``[K, T, command_dim]`` normalised commands.

        Returns:
            ``[E, K, T, 4]`` raw outputs (twist correction in normalised units, hazard logit).
        """
        num_b = context.shape[0]
        k, t_steps = commands.shape[:2]
        if num_b not in (1, k):
            raise ValueError(f"context batch {num_b} must be 1 or equal to the number of samples {k}")
        e, hid = self.members, self.hidden
        ctx = context.unsqueeze(0).expand(e, num_b, context.shape[1])
        h = torch.tanh(torch.baddbmm(self.b_h0.unsqueeze(1), ctx, self.w_h0)).expand(e, k, hid)
        g_ctx = torch.baddbmm(self.b_ctx.unsqueeze(1), ctx, self.w_ctx)  # [E, B, 3H]
        emb = F.elu(self.command(commands.transpose(0, 1)))  # [T, K, C], time-major
        two = 2 * hid
        # Reset/update gates from one product over [command embedding, hidden state]; the
        # candidate gate keeps its input and hidden parts apart (r scales only the hidden part).
        w_rz = torch.cat((self.w_cmd[..., :two], self.w_hh[..., :two]), dim=1)  # [E, C + H, 2H]
        b_rz = g_ctx[..., :two] + self.b_hh[..., :two].unsqueeze(1)  # [E, B, 2H]
        w_in, w_hn = self.w_cmd[..., two:].contiguous(), self.w_hh[..., two:].contiguous()
        b_in, b_hn = g_ctx[..., two:], self.b_hh[..., two:].unsqueeze(1)
        b_out = self.b_out.unsqueeze(1)
        outputs = []
        for step in range(t_steps):
            # Gates are computed per step: materialising them for all steps at once costs more
            # memory traffic than it saves; likewise the heads run per step.
            x = emb[step].expand(e, k, emb.shape[-1])
            r, z = torch.sigmoid(torch.baddbmm(b_rz, torch.cat((x, h), dim=-1), w_rz)).chunk(2, dim=-1)
            n = torch.tanh(torch.addcmul(torch.baddbmm(b_in, x, w_in), r, torch.baddbmm(b_hn, h, w_hn)))
            h = torch.lerp(n, h, z)  # (1 - z) * n + z * h
            outputs.append(torch.baddbmm(b_out, h, self.w_out))
        out = torch.stack(outputs, dim=2)  # [E, K, T, 4]
        return out
