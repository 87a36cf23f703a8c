"""Model Predictive Path Integral (MPPI) planner over any :class:`DynamicsModel`.

Each call to :meth:`MPPI.plan` shifts the previous mean command sequence forward (warm start),
samples ``K`` sequences around it with time-correlated Gaussian noise (clipped to the command
bounds), rolls all of them through the dynamics model in one batched call, scores them with the
cost, and replaces the mean by the softmin-weighted average ``sum_k w_k U_k`` with
``w_k ∝ exp(-(S_k - min S) / lambda)``. Sample 0 is always the zero command (stand still) and
sample 1 the noise-free mean, so a good previous plan or stopping are always candidates. The
mean is finally re-rolled through the dynamics so the returned poses and risk belong to the
returned commands; if it turns out much worse than the best sample (averaging a left and a right
detour can lead straight into an obstacle) the best sample is returned instead.

The planner knows nothing about the model behind :class:`DynamicsModel`: the kinematic model and
the learned FDM are interchangeable.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional, Protocol, Sequence

import numpy as np
import torch

from morobot.planning.interface import DynamicsModel, HeightMap, NavState, Rollout, finite_vector


class RolloutCost(Protocol):
    """What the planner needs from a cost: ``[K]`` costs for a batch of rollouts.

    A cost may also have ``prepare(hmap, goal)``: the planner then calls it once per
    :meth:`MPPI.plan`, before sampling, with the cycle's height map (or ``None``) and goal, so
    per-map work (a cost-to-go field) is done once per cycle and not per sample; and
    ``set_standstill(risk)``: called before every evaluation with the ``[T]`` risk of the
    zero-command sample (row 0), the reference of a relative risk penalty.
    """

    def __call__(
        self,
        rollout: Rollout,
        commands: torch.Tensor,
        goal: Sequence[float],
        prev_command: Optional[Sequence[float]] = None,
    ) -> torch.Tensor: ...


@dataclass
class MPPIConfig:
    """Parameters of :class:`MPPI` (SI units: m/s and rad/s for commands, s for times).

    Attributes:
        num_samples: sampled command sequences per iteration (K >= 2).
        horizon: steps per sequence (T).
        dt: step duration; must equal the dynamics model's ``dt``.
        temperature: softmin temperature lambda (cost units); smaller is greedier.
        sigma: noise standard deviation per command dimension ``(vx, vy, wz)``.
        u_min: lower command bounds per dimension.
        u_max: upper command bounds per dimension.
        noise_beta: time correlation of the noise in ``[0, 1)`` (AR(1) coefficient; 0 = white).
        iterations: sample/update rounds per call.
        shift_steps: steps (may be fractional) the mean is advanced at each call; use
            ``replanning period / dt``.
        seed: seed of the planner's random generator (``None``: nondeterministic).
        keep_rollouts: sampled rollouts returned for visualisation (best first).
        fallback_margin: if the re-rolled weighted mean costs more than the best sample plus
            this (cost units), the best sample becomes the plan; ``None`` disables the check.
        device: torch device for sampling and rollouts.
    """

    num_samples: int = 1024
    horizon: int = 10
    dt: float = 0.5
    temperature: float = 3.0
    sigma: tuple[float, float, float] = (0.4, 0.2, 0.6)
    u_min: tuple[float, float, float] = (-0.5, -0.5, -1.0)
    u_max: tuple[float, float, float] = (1.0, 0.5, 1.0)
    noise_beta: float = 0.6
    iterations: int = 1
    shift_steps: float = 1.0
    seed: Optional[int] = 0
    keep_rollouts: int = 32
    fallback_margin: Optional[float] = 100.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if int(self.num_samples) < 2:
            raise ValueError(f"num_samples must be >= 2, got {self.num_samples!r}")
        if int(self.horizon) < 1 or int(self.iterations) < 1:
            raise ValueError(f"horizon and iterations must be >= 1, got {self.horizon!r}, {self.iterations!r}")
        for name in ("dt", "temperature"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0.0:
                raise ValueError(f"{name} must be positive and finite, got {value!r}")
        if not 0.0 <= float(self.noise_beta) < 1.0:
            raise ValueError(f"noise_beta must lie in [0, 1), got {self.noise_beta!r}")
        if not math.isfinite(float(self.shift_steps)) or float(self.shift_steps) < 0.0:
            raise ValueError(f"shift_steps must be finite and >= 0, got {self.shift_steps!r}")
        if self.fallback_margin is not None and not float(self.fallback_margin) >= 0.0:
            raise ValueError(f"fallback_margin must be >= 0 or None, got {self.fallback_margin!r}")
        if int(self.keep_rollouts) < 0:
            raise ValueError(f"keep_rollouts must be >= 0, got {self.keep_rollouts!r}")
        sigma, lo, hi = (np.asarray(v, dtype=np.float64) for v in (self.sigma, self.u_min, self.u_max))
        for name, arr in (("sigma", sigma), ("u_min", lo), ("u_max", hi)):
            if arr.shape != (3,) or not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be three finite numbers, got {getattr(self, name)!r}")
        if np.any(sigma < 0.0):
            raise ValueError(f"sigma must be >= 0, got {self.sigma!r}")
        if np.any(lo > hi):
            raise ValueError(f"u_min must not exceed u_max, got {self.u_min!r} > {self.u_max!r}")


@dataclass
class PlanResult:
    """Output of one :meth:`MPPI.plan` call (numpy, float64).

    Attributes:
        commands: ``[T, 3]`` command sequence to execute; row 0 is the command for now.
        poses: ``[T, 3]`` predicted poses of ``commands`` (re-rolled through the dynamics).
        risk: ``[T]`` predicted risk of ``commands``.
        uncertainty: ``[T]`` predicted uncertainty, if the model provides one.
        cost: cost of ``commands`` (inf if the model produced no finite prediction for it).
        best_index: index of the lowest-cost sample of the last iteration.
        best_cost: its cost (inf if no sample had a finite cost).
        rollouts: ``[M, T, 3]`` poses of a subset of the last iteration's samples, best first.
        rollout_costs: ``[M]`` their costs.
        used_best_sample: ``commands`` is the best sample, not the weighted mean (see
            ``MPPIConfig.fallback_margin``).
        standstill_risk: ``[T]`` predicted risk of standing still (the zero-command sample of
            the last iteration), the reference of the relative safety stop.
        model_risk: ``[T]`` the learned model's own part of ``risk`` where the dynamics report it
            (:attr:`~morobot.planning.interface.Rollout.model_risk`), else None.
        standstill_model_risk: the same for standing still.
        allowed_risk: ``[T]`` risk the cost accepts at each step of ``poses`` near the goal (the cost's
            optional ``allowed_risk(poses, goal)``, e.g. :meth:`NavigationCost.allowed_risk`), for the
            safety stop; None where the cost has none this cycle.
        timings: seconds spent per phase (``sample``, ``rollout``, ``cost``, ``update``,
            ``final``) and in total (``total``).
    """

    commands: np.ndarray
    poses: np.ndarray
    risk: np.ndarray
    uncertainty: Optional[np.ndarray]
    cost: float
    best_index: int
    best_cost: float
    rollouts: np.ndarray
    rollout_costs: np.ndarray
    used_best_sample: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    standstill_risk: Optional[np.ndarray] = None
    model_risk: Optional[np.ndarray] = None
    standstill_model_risk: Optional[np.ndarray] = None
    allowed_risk: Optional[np.ndarray] = None


class MPPI:
    """Sampling-based receding-horizon planner.

    Args:
        dynamics: any :class:`DynamicsModel` (must accept commands on ``config.device``).
        cost: a :class:`RolloutCost`, e.g. :class:`morobot.planning.cost.NavigationCost`.
        config: planner parameters; defaults if ``None``.

    Raises:
        ValueError: if ``dynamics`` lacks ``dt``/``rollout`` or its ``dt`` differs from
            ``config.dt``.
    """

    def __init__(self, dynamics: DynamicsModel, cost: RolloutCost, config: Optional[MPPIConfig] = None) -> None:
        self.config = config if config is not None else MPPIConfig()
        if not isinstance(dynamics, DynamicsModel):
            raise ValueError("dynamics must implement DynamicsModel (a dt attribute and rollout())")
        if abs(float(dynamics.dt) - self.config.dt) > 1e-9:
            raise ValueError(f"config.dt ({self.config.dt}) differs from the dynamics model's dt ({dynamics.dt})")
        self.dynamics = dynamics
        self.cost = cost
        cfg = self.config
        self._device = torch.device(cfg.device)
        self._dtype = torch.float32
        as_t = lambda v: torch.as_tensor(v, dtype=self._dtype, device=self._device)  # noqa: E731
        self._sigma, self._u_min, self._u_max = as_t(cfg.sigma), as_t(cfg.u_min), as_t(cfg.u_max)
        self._generator = torch.Generator(device=self._device)
        self.reset()

    @property
    def mean(self) -> Optional[np.ndarray]:
        """Current mean command sequence ``[T, 3]`` (``None`` before the first plan)."""
        return None if self._mean is None else self._mean.cpu().numpy().astype(np.float64)

    def reset(self, reseed: bool = True) -> None:
        """Forget the warm start and the previous command; reseed the random generator.

        Args:
            reseed: also reseed the generator (False after a safety stop: the next plan then
                samples around standing still instead of the rejected plan, with fresh noise).
        """
        self._mean: Optional[torch.Tensor] = None
        self._prev_command: Optional[np.ndarray] = None
        if not reseed:
            return
        seed = self.config.seed
        if seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(int(seed))

    @torch.no_grad()
    def plan(self, state: NavState, hmap: Optional[HeightMap], goal: Sequence[float]) -> PlanResult:
        """Optimise the command sequence from ``state`` towards ``goal``.

        Args:
            state: current robot state (its pose must be finite).
            hmap: height map passed to the dynamics model (or ``None``).
            goal: ``(x, y, yaw)`` in odom.

        Returns:
            The plan; its first command should be executed now.

        Raises:
            ValueError: on a non-finite or malformed state or goal, a malformed height map, or a
                dynamics model that returns wrongly shaped predictions.
        """
        cfg = self.config
        t_start = time.perf_counter()
        _validate_state(state)
        goal_arr = finite_vector("goal", goal, 3)
        if hmap is not None:
            _validate_hmap(hmap)
        timings = {"sample": 0.0, "rollout": 0.0, "cost": 0.0, "update": 0.0}
        prepare = getattr(self.cost, "prepare", None)
        if callable(prepare):
            # Once per cycle, e.g. the cost-to-go field over this map (counted as cost time).
            t0 = time.perf_counter()
            prepare(hmap, goal_arr)
            timings["cost"] += time.perf_counter() - t0

        set_standstill = getattr(self.cost, "set_standstill", None)
        mean = self._warm_start()
        for _ in range(int(cfg.iterations)):
            t0 = time.perf_counter()
            samples = self._sample(mean)
            t1 = time.perf_counter()
            rollout = self.dynamics.rollout(state, samples, hmap)
            _check_rollout(rollout, samples.shape[0], samples.shape[1])
            t2 = time.perf_counter()
            if callable(set_standstill):
                set_standstill(rollout.risk[0])  # row 0 of the samples is the zero command
            costs = self.cost(rollout, samples, goal_arr, self._prev_command)
            if not isinstance(costs, torch.Tensor) or tuple(costs.shape) != (samples.shape[0],):
                raise ValueError(f"cost must return [{samples.shape[0]}] costs, got {getattr(costs, 'shape', costs)}")
            t3 = time.perf_counter()
            mean, best_index, best_cost = self._update(samples, costs.to(self._dtype))
            t4 = time.perf_counter()
            timings["sample"] += t1 - t0
            timings["rollout"] += t2 - t1
            timings["cost"] += t3 - t2
            timings["update"] += t4 - t3

        t0 = time.perf_counter()
        final = self.dynamics.rollout(state, mean[None], hmap)
        _check_rollout(final, 1, mean.shape[0])
        final_cost = float(self.cost(final, mean[None], goal_arr, self._prev_command)[0])
        if not math.isfinite(final_cost):
            final_cost = math.inf
        margin = cfg.fallback_margin
        fallback = margin is not None and math.isfinite(best_cost) and final_cost > best_cost + margin
        if fallback:
            # The weighted mean can average a left and a right detour into a collision: then the
            # best sample (already rolled out with this state and map) is the plan.
            mean = samples[best_index].clone()
            final = Rollout(
                poses=rollout.poses[best_index : best_index + 1],
                risk=rollout.risk[best_index : best_index + 1],
                uncertainty=None if rollout.uncertainty is None else rollout.uncertainty[best_index : best_index + 1],
                model_risk=None if rollout.model_risk is None else rollout.model_risk[best_index : best_index + 1],
            )
            final_cost = best_cost
        self._mean = mean
        commands = mean.cpu().numpy().astype(np.float64)
        self._prev_command = commands[0].copy()
        picked = self._visual_subset(costs, best_index)
        allowed_fn = getattr(self.cost, "allowed_risk", None)
        allowed = allowed_fn(final.poses[0], goal_arr) if callable(allowed_fn) else None
        result = PlanResult(
            commands=commands,
            poses=_np(final.poses[0]),
            risk=_np(final.risk[0]),
            uncertainty=None if final.uncertainty is None else _np(final.uncertainty[0]),
            cost=final_cost,
            best_index=best_index,
            best_cost=best_cost,
            rollouts=_np(rollout.poses[picked]),
            rollout_costs=_np(costs[picked]),
            used_best_sample=fallback,
            timings=timings,
            standstill_risk=_np(rollout.risk[0]),
            model_risk=None if final.model_risk is None else _np(final.model_risk[0]),
            standstill_model_risk=None if rollout.model_risk is None else _np(rollout.model_risk[0]),
            allowed_risk=None if allowed is None else _np(allowed),
        )
        timings["final"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_start
        return result

    # ------------------------------------------------------------------ internals
    def _warm_start(self) -> torch.Tensor:
        horizon = int(self.config.horizon)
        if self._mean is None:
            zero = torch.zeros(horizon, 3, dtype=self._dtype, device=self._device)
            return torch.minimum(torch.maximum(zero, self._u_min), self._u_max)
        # Advance by shift_steps (fractional: linear interpolation); hold the last command.
        times = torch.arange(horizon, dtype=self._dtype, device=self._device) + float(self.config.shift_steps)
        times = times.clamp(max=horizon - 1)
        lo = times.floor().long()
        hi = (lo + 1).clamp(max=horizon - 1)
        frac = (times - lo.to(self._dtype))[:, None]
        return self._mean[lo] * (1.0 - frac) + self._mean[hi] * frac

    def _sample(self, mean: torch.Tensor) -> torch.Tensor:
        """``[K, T, 3]`` clipped samples: row 0 the zero command, row 1 ``mean``, rest noisy."""
        k, horizon = int(self.config.num_samples), mean.shape[0]
        beta = float(self.config.noise_beta)
        noise = torch.randn(k, horizon, 3, generator=self._generator, dtype=self._dtype, device=self._device)
        if beta > 0.0 and horizon > 1:
            # Unit-variance AR(1) along time: e_t = beta e_{t-1} + sqrt(1 - beta^2) n_t.
            noise[:, 1:].mul_(math.sqrt(1.0 - beta * beta))
            for t in range(1, horizon):
                noise[:, t].add_(noise[:, t - 1], alpha=beta)
        # Flattened [K, T*3] so the per-dimension vectors broadcast over contiguous rows.
        flat = noise.view(k, horizon * 3)
        flat.mul_(self._sigma.repeat(horizon)).add_(mean.reshape(-1))
        flat.clamp_(self._u_min.repeat(horizon), self._u_max.repeat(horizon))
        noise[0] = torch.clamp(torch.zeros_like(mean), self._u_min, self._u_max)
        noise[1] = mean
        return noise

    def _update(self, samples: torch.Tensor, costs: torch.Tensor) -> tuple[torch.Tensor, int, float]:
        finite = torch.isfinite(costs)
        if not bool(finite.any()):
            stop = torch.clamp(torch.zeros_like(samples[0]), self._u_min, self._u_max)
            return stop, 0, math.inf
        safe = torch.where(finite, costs, torch.full_like(costs, math.inf))
        best_index = int(torch.argmin(safe))
        best_cost = float(safe[best_index])
        weights = torch.exp(-(safe - best_cost) / float(self.config.temperature))
        weights = weights / weights.sum()
        k, horizon = samples.shape[:2]
        mean = (weights @ samples.reshape(k, horizon * 3)).view(horizon, 3)
        return mean, best_index, best_cost

    def _visual_subset(self, costs: torch.Tensor, best_index: int) -> torch.Tensor:
        """Indices of ``keep_rollouts`` samples: the best, then others evenly spread over K."""
        k, m = costs.shape[0], min(int(self.config.keep_rollouts), costs.shape[0])
        if m == 0:
            return torch.zeros(0, dtype=torch.long, device=costs.device)
        others = torch.cat((torch.arange(0, best_index), torch.arange(best_index + 1, k))).to(costs.device)
        spread = torch.linspace(0, k - 2, m - 1).round().long().to(costs.device)
        return torch.cat((torch.tensor([best_index], device=costs.device), others[spread]))


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float64)


def _validate_state(state: NavState) -> None:
    if not isinstance(state, NavState):
        raise ValueError(f"state must be a NavState, got {type(state).__name__}")
    finite_vector("state.pose", state.pose, 3)
    finite_vector("state.twist", state.twist, 3)
    if not math.isfinite(float(state.z)):
        raise ValueError(f"state.z must be finite, got {state.z!r}")


def _validate_hmap(hmap: HeightMap) -> None:
    if not isinstance(hmap, HeightMap):
        raise ValueError(f"hmap must be a HeightMap or None, got {type(hmap).__name__}")
    heights = hmap.heights
    if not isinstance(heights, torch.Tensor) or heights.dim() != 2 or min(heights.shape) < 1:
        raise ValueError(f"HeightMap.heights must be a non-empty 2-D tensor, got {getattr(heights, 'shape', heights)}")
    finite_vector("HeightMap.origin", hmap.origin, 2)
    res = float(hmap.resolution)
    if not math.isfinite(res) or res <= 0.0:
        raise ValueError(f"HeightMap.resolution must be positive and finite, got {hmap.resolution!r}")


def _check_rollout(rollout: Rollout, k: int, horizon: int) -> None:
    if not isinstance(rollout, Rollout):
        raise ValueError(f"dynamics.rollout must return a Rollout, got {type(rollout).__name__}")
    if tuple(rollout.poses.shape) != (k, horizon, 3) or tuple(rollout.risk.shape) != (k, horizon):
        raise ValueError(
            f"dynamics.rollout returned poses {tuple(rollout.poses.shape)} and risk {tuple(rollout.risk.shape)};"
            f" expected ({k}, {horizon}, 3) and ({k}, {horizon})"
        )
    if rollout.uncertainty is not None and tuple(rollout.uncertainty.shape) != (k, horizon):
        raise ValueError(
            f"dynamics.rollout returned uncertainty {tuple(rollout.uncertainty.shape)}; expected ({k}, {horizon})"
        )
