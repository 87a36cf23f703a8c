"""Deep Koopman model with control, plus least-squares DMDc / EDMD baselines.

Model (on standardised observations ``s``)::

    z = phi(s)                      encoder, MLP 2 x 256 -> latent_dim
    z' = A z + B a                  dense learned A (latent x latent), B (latent x act)
    s ~ psi(z)                      decoder, MLP 1 x 256 (anti-collapse + state read-out)

Losses over windows ``(s_0..s_H, a_0..a_{H-1})`` of one episode:

* ``one_step``:  || A phi(s_t) + B a_t - phi(s_{t+1}) ||^2
* ``multi_step``: latent roll-out z_k = A^k phi(s_0) + ... against phi(s_k), k = 1..H
* ``state``: || psi(z_k) - s_k ||^2 along the same roll-out (predictions in state space)
* ``recon``: || psi(phi(s)) - s ||^2

Latent losses alone are minimised by a collapsed encoder (phi = 0); the decoder terms rule that
out because phi must keep enough of ``s`` to reconstruct and predict it. Latent losses are
divided by the latent's per-dimension variance (batch) so shrinking the latent scale does not
pay either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from morobot.korr.nets import mlp


@dataclass
class KoopmanConfig:
    obs_dim: int
    act_dim: int
    latent_dim: int = 64
    hidden: int = 256
    horizon: int = 8
    w_one_step: float = 1.0
    w_multi_step: float = 0.5
    w_state: float = 1.0
    w_recon: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


class KoopmanModel(nn.Module):
    """Encoder, linear latent dynamics and decoder (see module docstring)."""

    def __init__(self, config: KoopmanConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = mlp(c.obs_dim, [c.hidden, c.hidden], c.latent_dim)
        self.decoder = mlp(c.latent_dim, [c.hidden], c.obs_dim)
        self.A = nn.Parameter(torch.eye(c.latent_dim) * 0.95 + 0.01 * torch.randn(c.latent_dim, c.latent_dim))
        self.B = nn.Parameter(0.01 * torch.randn(c.latent_dim, c.act_dim))

    def encode(self, s: torch.Tensor) -> torch.Tensor:
        return self.encoder(s)

    def step(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``A z + B a`` (batched)."""
        return z @ self.A.T + a @ self.B.T

    def predict_next(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Predicted next latent ``A phi(s) + B a``."""
        return self.step(self.encode(s), a)

    def rollout(self, s0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Decoded state predictions (B, H, obs_dim) for actions (B, H, act_dim) from s0 (B, obs_dim)."""
        z = self.encode(s0)
        out = []
        for k in range(actions.shape[1]):
            z = self.step(z, actions[:, k])
            out.append(self.decoder(z))
        return torch.stack(out, 1)

    def losses(self, s: torch.Tensor, a: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Loss terms on windows ``s`` (B, H+1, D), ``a`` (B, H, A); ``mask`` (B, H) marks valid steps.

        Step ``k`` of a window is valid when ``s[:, k+1]`` follows ``s[:, k]`` in the same episode
        (the mask must be non-increasing along ``k``).
        """
        c = self.config
        bsz, h = a.shape[0], a.shape[1]
        if mask is None:
            mask = torch.ones(bsz, h, dtype=s.dtype, device=s.device)
        z_all = self.encode(s.reshape(-1, s.shape[-1])).reshape(bsz, h + 1, -1)
        scale = z_all.reshape(-1, z_all.shape[-1]).var(0).mean().clamp_min(1e-6)
        recon = ((self.decoder(z_all) - s) ** 2).mean()
        one = ((self.step(z_all[:, :-1], a) - z_all[:, 1:]) ** 2).mean(-1)
        one_step = (one * mask).sum() / mask.sum().clamp_min(1.0) / scale
        z = z_all[:, 0]
        multi, state = [], []
        discount = 0.9 ** torch.arange(h, dtype=s.dtype, device=s.device)
        for k in range(h):
            z = self.step(z, a[:, k])
            multi.append(((z - z_all[:, k + 1]) ** 2).mean(-1))
            state.append(((self.decoder(z) - s[:, k + 1]) ** 2).mean(-1))
        weights = mask * discount
        norm = weights.sum().clamp_min(1.0)
        multi_step = (torch.stack(multi, 1) * weights).sum() / norm / scale
        state_loss = (torch.stack(state, 1) * weights).sum() / norm
        total = (c.w_one_step * one_step + c.w_multi_step * multi_step + c.w_state * state_loss
                 + c.w_recon * recon)
        return {"total": total, "one_step": one_step, "multi_step": multi_step, "state": state_loss,
                "recon": recon}

    def eigenvalues(self) -> np.ndarray:
        return np.linalg.eigvals(self.A.detach().cpu().numpy().astype(np.float64))


# ----------------------------------------------------------------------------- data windows
def make_windows(obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, last: np.ndarray,
                 horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows ``(s_t..s_{t+H}, a_t..a_{t+H-1}, mask)`` from consecutive transitions.

    Args:
        obs, actions, next_obs: transitions in time order, episodes concatenated.
        last: True where a transition ends its episode (no transition follows it).
        horizon: H.

    Returns:
        states (N, H+1, D), actions (N, H, A), mask (N, H) float: 1 while still in the episode.
    """
    n = len(obs)
    states = np.zeros((n, horizon + 1, obs.shape[1]), np.float32)
    acts = np.zeros((n, horizon, actions.shape[1]), np.float32)
    mask = np.zeros((n, horizon), np.float32)
    for t in range(n):
        states[t, 0] = obs[t]
        j = t
        for k in range(horizon):
            states[t, k + 1] = next_obs[j]
            acts[t, k] = actions[j]
            mask[t, k] = 1.0
            if last[j] or j + 1 >= n:
                states[t, k + 2:] = next_obs[j]
                break
            j += 1
    return states, acts, mask


def rollout_windows(obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor, done: torch.Tensor,
                    horizon: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windows like :func:`make_windows`, from a vectorised roll-out batch (time-major).

    Args:
        obs, next_obs: (T, N, D) observations before and after each step (``next_obs`` is the true
            next observation, also at an episode's end).
        actions: (T, N, A) actions taken.
        done: (T, N), nonzero where the step ended its episode.
        horizon: H.

    Returns:
        states (T*N, H+1, D), actions (T*N, H, A), mask (T*N, H): one window per (t, env); step
        ``k`` is valid while ``t + k < T`` and no earlier step of the window ended the episode.
        States past the last valid step repeat it (they are masked out of the latent losses).
    """
    t_len, n = obs.shape[:2]
    if actions.shape[:2] != (t_len, n) or next_obs.shape != obs.shape or done.shape != (t_len, n):
        raise ValueError("rollout_windows: obs, actions, next_obs and done must share (T, N)")
    states = [obs]
    acts, masks = [], []
    valid = torch.ones(t_len, n, dtype=obs.dtype)
    pad_a = torch.zeros_like(actions[:1])
    for k in range(horizon):
        # index t + k, clamped: steps past the batch's end are invalid
        shifted = lambda x, pad: torch.cat([x[k:], pad.expand(k, *x.shape[1:])]) if k else x  # noqa: E731
        in_batch = (torch.arange(t_len) + k < t_len).to(obs.dtype)[:, None]
        valid = valid * in_batch
        nxt = shifted(next_obs, next_obs[-1:])
        states.append(torch.where(valid[..., None] > 0, nxt, states[-1]))
        acts.append(shifted(actions, pad_a) * valid[..., None])
        masks.append(valid.clone())
        valid = valid * (1.0 - (shifted(done, done[-1:]) > 0).to(obs.dtype))
    s = torch.stack(states, 2).reshape(t_len * n, horizon + 1, -1)
    a = torch.stack(acts, 2).reshape(t_len * n, horizon, -1)
    m = torch.stack(masks, 2).reshape(t_len * n, horizon)
    return s, a, m


def fit_koopman(model: KoopmanModel, states: np.ndarray, actions: np.ndarray, mask: np.ndarray,
                normalize=None, steps: int = 2000, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
                progress=None, optimizer: torch.optim.Optimizer | None = None) -> list[dict[str, float]]:
    """Trains ``model`` on windows (raw observations; ``normalize`` maps them to model inputs).

    Returns:
        Per-step loss dictionaries.
    """
    gen = torch.Generator().manual_seed(seed)
    s_all = torch.as_tensor(states, dtype=torch.float32)
    if normalize is not None:
        with torch.no_grad():
            s_all = normalize(s_all)
    a_all = torch.as_tensor(actions, dtype=torch.float32)
    m_all = torch.as_tensor(mask, dtype=torch.float32)
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(s_all), (min(batch_size, len(s_all)),), generator=gen)
        out = model.losses(s_all[idx], a_all[idx], m_all[idx])
        opt.zero_grad()
        out["total"].backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        history.append({k: float(v.detach()) for k, v in out.items()})
        if progress is not None:
            progress(step, history[-1])
    model.eval()
    return history


# ----------------------------------------------------------------------------- baselines
class DMDc:
    """Dynamic mode decomposition with control: ``x' = A x + B u + c`` by ridge least squares."""

    def __init__(self, ridge: float = 1e-6) -> None:
        self.ridge = ridge
        self.A: np.ndarray | None = None

    def _lift(self, x: np.ndarray) -> np.ndarray:
        return x

    def fit(self, x: np.ndarray, u: np.ndarray, x_next: np.ndarray) -> "DMDc":
        gx, gy = self._lift(x), self._lift(x_next)
        reg = np.hstack([gx, u, np.ones((len(x), 1))])
        gram = reg.T @ reg + self.ridge * len(x) * np.eye(reg.shape[1])
        coef = np.linalg.solve(gram, reg.T @ gy)  # (lift+act+1, lift)
        k = gx.shape[1]
        self.A, self.B, self.c = coef[:k].T, coef[k:k + u.shape[1]].T, coef[-1]
        # Read the state back out of the lifted space by least squares.
        self.C = np.linalg.lstsq(gx, x, rcond=None)[0].T
        return self

    def rollout(self, x0: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """State predictions (N, H, D) for actions (N, H, A) from x0 (N, D)."""
        g = self._lift(x0)
        out = []
        for k in range(actions.shape[1]):
            g = g @ self.A.T + actions[:, k] @ self.B.T + self.c
            out.append(g @ self.C.T)
        return np.stack(out, 1)


class EDMDc(DMDc):
    """Extended DMD with control: the state plus random Fourier features as the dictionary."""

    def __init__(self, n_features: int = 256, bandwidth: float = 3.0, ridge: float = 1e-4, seed: int = 0) -> None:
        super().__init__(ridge)
        self.n_features = n_features
        self.bandwidth = bandwidth
        self.seed = seed
        self._w: np.ndarray | None = None

    def _lift(self, x: np.ndarray) -> np.ndarray:
        if self._w is None:
            rng = np.random.default_rng(self.seed)
            self._w = rng.normal(0.0, 1.0 / self.bandwidth, (x.shape[1], self.n_features))
            self._b = rng.uniform(0.0, 2 * np.pi, self.n_features)
        return np.hstack([x, np.sqrt(2.0 / self.n_features) * np.cos(x @ self._w + self._b)])


def rollout_error(predict, states: np.ndarray, actions: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean squared error (standardised units) of ``predict(s0, actions)`` per horizon step.

    Args:
        predict: ``(s0 (N, D), actions (N, H, A)) -> (N, H, D)`` in the same units as ``states``.
        states: (N, H+1, D); actions: (N, H, A); mask: (N, H) — only windows with a full mask count.
    """
    full = mask.min(1) > 0
    pred = predict(states[full, 0], actions[full])
    return ((pred - states[full, 1:]) ** 2).mean(axis=(0, 2))
