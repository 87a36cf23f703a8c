"""Time-correlated random velocity-command sequences for data collection.

Each sequence of ``T`` steps is drawn from one of three modes, so the data covers what a
sampling planner will ask for:

* ``constant``: one command held for the whole sequence;
* ``smooth``: an Ornstein-Uhlenbeck-like random walk (correlation time ``tau``);
* ``switch``: piecewise constant with random switching times.

Forward motion is favoured (the planner drives forward most of the time): with probability
``forward_bias`` a sequence's ``vx`` is drawn from ``[-0.1 vx_max, vx_max]``. Each axis is
zeroed with probability ``zero_prob`` per sequence (pure turns, pure lateral walking, stops).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CommandLimits:
    """Symmetric magnitude limits of the body-twist command (m/s, m/s, rad/s)."""

    vx: float = 1.0
    vy: float = 0.5
    wz: float = 1.0

    def __post_init__(self) -> None:
        for name in ("vx", "vy", "wz"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"CommandLimits.{name} must be positive, got {getattr(self, name)}")

    def array(self) -> np.ndarray:
        """``[3]`` limits."""
        return np.array([self.vx, self.vy, self.wz])


def sample_command_sequences(
    rng: np.random.Generator,
    count: int,
    horizon: int,
    dt: float,
    limits: CommandLimits = CommandLimits(),
    tau: float = 1.5,
    forward_bias: float = 0.7,
    zero_prob: float = 0.2,
    mode_probs: tuple[float, float, float] = (0.3, 0.4, 0.3),
) -> np.ndarray:
    """Draws ``count`` command sequences.

    Args:
        rng: random generator.
        count: number of sequences.
        horizon: steps per sequence.
        dt: step duration (s).
        limits: command limits; outputs are clipped to them.
        tau: correlation time of the ``smooth`` mode (s).
        forward_bias: probability that a sequence uses the forward-biased ``vx`` range.
        zero_prob: per-axis probability of zeroing an axis for a whole sequence.
        mode_probs: probabilities of the ``constant``, ``smooth`` and ``switch`` modes.

    Returns:
        ``[count, horizon, 3]`` float32 commands.

    Raises:
        ValueError: on non-positive sizes or invalid probabilities.
    """
    if count < 1 or horizon < 1:
        raise ValueError(f"count and horizon must be >= 1, got {count}, {horizon}")
    if not dt > 0.0 or not tau > 0.0:
        raise ValueError(f"dt and tau must be positive, got {dt}, {tau}")
    probs = np.asarray(mode_probs, dtype=np.float64)
    if probs.shape != (3,) or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
        raise ValueError(f"mode_probs must be 3 non-negative values summing to 1, got {mode_probs}")
    for name, p in (("forward_bias", forward_bias), ("zero_prob", zero_prob)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {p}")
    lim = limits.array()
    low = np.tile(-lim, (count, 1))
    forward = rng.random(count) < forward_bias
    low[forward, 0] = -0.1 * lim[0]
    span = lim[None, :] - low

    def draw(steps: int) -> np.ndarray:  # uniform in each sequence's range, [count, steps, 3]
        return low[:, None, :] + rng.random((count, steps, 3)) * span[:, None, :]

    mode = rng.choice(3, size=count, p=probs)
    out = np.empty((count, horizon, 3))
    out[:] = draw(1)  # constant
    # smooth: mean-reverting random walk around a random mean
    alpha = np.exp(-dt / tau)
    mean = draw(1)[:, 0]
    state = draw(1)[:, 0]
    scale = 0.5 * span * np.sqrt(1.0 - alpha**2)
    smooth = np.empty((count, horizon, 3))
    for t in range(horizon):
        smooth[:, t] = state
        state = mean + alpha * (state - mean) + scale * rng.standard_normal((count, 3))
    # switch: a new command at each switching time (about every 1.5 s)
    levels = draw(horizon)
    switches = rng.random((count, horizon)) < min(1.0, dt / 1.5)
    switches[:, 0] = True
    held = np.maximum.accumulate(np.where(switches, np.arange(horizon)[None, :], 0), axis=1)
    switched = np.take_along_axis(levels, held[..., None].repeat(3, axis=-1), axis=1)
    out[mode == 1] = smooth[mode == 1]
    out[mode == 2] = switched[mode == 2]
    out *= (rng.random((count, 1, 3)) >= zero_prob).astype(np.float64)
    return np.clip(out, -lim, lim).astype(np.float32)
