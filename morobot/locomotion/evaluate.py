"""``morobot eval locomotion``: how well a locomotion policy walks, per terrain kind and difficulty.

For every terrain kind (:data:`morobot.locomotion.env.TERRAINS`) and difficulty level, ``episodes``
seeded 20 s episodes run in :class:`~morobot.locomotion.env.LocomotionEnv` without curriculum,
sensor noise or pushes, the policy acting deterministically on a fixed command (``speed`` m/s
forward, or a turn). Reported per cell:

* ``tracking_rms`` — RMS of the planar velocity error against the command (m/s), over the steps
  before a fall;
* ``falls_per_episode`` — falls per 20 s episode (an episode ends at a fall), and ``fall_causes``:
  how many were the base touching the terrain, the body tipping over, the base sinking too low;
* ``distance`` — mean distance walked (m);
* ``torque_rms`` — RMS joint torque (N·m), and ``cost_of_transport`` — mechanical energy
  sum(|tau · qdot|) dt / (m g distance).

Stairs are evaluated three ways (``start``): walking into scattered stepped pyramids
(``scattered``: mostly a climb first), starting on a pyramid's landing (``top``: every way off it
goes down) and starting at the bottom of a stepped pit (``pit``: every way out goes up), see
:func:`morobot.locomotion.env.centre_stairs`. With ``--switching PERIOD`` every terrain and level also
gets a cell of random commands (:data:`SWITCH_RANGES`, the planners' bounds) that change every
``PERIOD`` seconds, as a planner's do: the same command schedule for every policy (seeded apart from
the environment), tracking measured against the command in force. From the stairs and slopes rows
(switching cells aside): the highest step (m) walked, descended and climbed and the steepest slope
(deg) at which the robot falls in at most ``max_fall_rate`` of the episodes and walks at least half
the commanded distance. Writes
``summary.md``, ``results.json`` and ``locomotion_eval.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from morobot.cliutil import parser as make_parser
from morobot.fileio import atomic_save_figure, atomic_write_json, atomic_write_text
from morobot.locomotion.env import FALL_CAUSES, TERRAINS, EnvConfig, LocomotionEnv, terrain_params, zero_slow_planar


#: Evaluation patch (m): at 1 m/s the robot walks the 20 s episode before reaching its edge.
PATCH = 44.0


@dataclass
class CellResult:
    """One (terrain, level, command) cell."""

    terrain: str
    level: int
    feature: float  # stair rise (m), max slope (deg), roughness/rubble peak (m); 0 for flat
    command: list
    episodes: int
    tracking_rms: float
    falls_per_episode: float
    distance: float
    torque_rms: float
    cost_of_transport: float
    start: str = "scattered"  # stairs: scattered pyramids, "top" of one (down) or a "pit" (up)
    fall_causes: dict = field(default_factory=dict)  # FALL_CAUSES name -> falls
    switch_period: float = 0.0  # > 0: random commands changing every switch_period s (``command`` is empty)


def _feature(kind: str, difficulty: float) -> float:
    p = terrain_params(kind, difficulty)
    return {"flat": 0.0, "rough": p.get("amplitude", 0.0), "rubble": p.get("rubble", 0.0),
            "slopes": p.get("max_slope_deg", 0.0), "stairs": p.get("step_rise", (0.0,))[0]}[kind]


STARTS = {"scattered": (0.0, 0.0), "top": (1.0, 0.0), "pit": (0.0, 1.0)}
"""Stairs starts: (``stairs_start_top``, ``stairs_start_pit``) of the evaluation environment."""

SWITCH_RANGES = ((-1.0, 1.0), (-0.5, 0.5), (-1.0, 1.0))
"""Switching cells: (vx, vy, wz) drawn uniformly in these bounds (the navigation planners' ``u_min``/``u_max``)."""


def command_schedule(seed: int, episodes: int, steps: int, every: int) -> np.ndarray:
    """Random commands ``[steps // every + 1, episodes, 3]``, one row per switch; slow planar commands
    become zero, as in training (:func:`~morobot.locomotion.env.zero_slow_planar`)."""
    lo, hi = np.array(SWITCH_RANGES).T
    return zero_slow_planar(np.random.default_rng([int(seed), 1]).uniform(lo, hi, (steps // every + 1, episodes, 3)))


def evaluate_cell(policy, kind: str, level: int, levels: int, command: Sequence[float], episodes: int,
                  seed: int = 0, start: str = "scattered", switch_period: float = 0.0,
                  rubble_ground: float = 0.0) -> CellResult:
    """Run ``episodes`` episodes of one terrain kind at one level (in parallel environments); with
    ``switch_period`` > 0 the command is not ``command`` but :func:`command_schedule`'s; ``rubble_ground``:
    :class:`~morobot.locomotion.env.EnvConfig`'s (rough ground under rubble)."""
    if start not in STARTS or (start != "scattered" and kind != "stairs"):
        raise ValueError(f"start must be one of {sorted(STARTS)} ('top' and 'pit' for stairs only), got {start!r}")
    weights = tuple(1.0 if t == kind else 0.0 for t in TERRAINS)
    cmd = [float(c) for c in command]
    cfg = EnvConfig(levels=levels, start_level=level, curriculum=False, noise=False, terrain_weights=weights,
                    command_ranges=tuple((c, c) for c in cmd), standing_fraction=0.0, push_speed=0.0,
                    friction_range=(1.0, 1.0), added_mass_range=(0.0, 0.0), motor_strength_range=(1.0, 1.0),
                    command_period=1e9, edge_margin=0.5, patch_size=PATCH, random_yaw=False,
                    goal_distance=0.5 * PATCH - 2.0, path_bias=0.8, stairs_start_top=STARTS[start][0],
                    stairs_start_pit=STARTS[start][1], rubble_ground=rubble_ground)
    env = LocomotionEnv(episodes, cfg, seed)
    env.commands[:] = cmd  # the commands drawn at construction follow the fixed range too
    steps = env.max_steps
    every = max(1, int(round(switch_period / env.dt))) if switch_period > 0 else 0
    schedule = command_schedule(seed, episodes, steps, every) if every else None
    alive = np.ones(episodes, dtype=bool)
    fell = np.zeros(episodes, dtype=bool)
    causes = np.zeros(len(FALL_CAUSES), dtype=int)
    sq_err, n_err, tau_sq, n_tau, energy = 0.0, 0, 0.0, 0, np.zeros(episodes)
    start_xy = env._state["pos"][:, :2].copy()
    last_pos = start_xy.copy()
    obs = env.observations()["policy"]
    for t in range(steps):
        if schedule is not None and t % every == 0:
            env.commands[:] = schedule[t // every]
            obs = env.observations()["policy"]  # the policy sees the new command at once, as on the robot
        in_force = env.commands[:, :2].copy()
        obs_d, _, done, info = env.step(policy.act(obs))
        obs = obs_d["policy"]
        s = env._state
        rt = np.swapaxes(s["rot"], -1, -2)
        lin_b = np.einsum("nij,nj->ni", rt, s["lin_vel_w"])
        live = alive & ~done
        err = lin_b[:, :2] - in_force
        sq_err += float(np.sum(err[live] ** 2))
        n_err += int(live.sum())
        tau_sq += float(np.sum(s["tau"][live] ** 2))
        n_tau += int(live.sum()) * 12
        energy += np.where(live, np.sum(np.abs(s["tau"] * s["qdj"]), axis=1) * env.dt, 0.0)
        last_pos = np.where(live[:, None], s["pos"][:, :2], last_pos)
        causes += np.bincount(info["fall_cause"][alive & info["fell"]], minlength=len(FALL_CAUSES))
        fell |= alive & info["fell"]
        alive &= ~done
        if not alive.any():
            break
    distance = np.linalg.norm(last_pos - start_xy, axis=1)
    mass = float(env.models[0].body_subtreemass[1])
    cot = float(np.sum(energy) / max(1e-6, mass * 9.81 * np.sum(distance)))
    env.close()
    return CellResult(kind, level, _feature(kind, level / max(1, levels - 1)), [] if every else cmd, episodes,
                      math.sqrt(sq_err / max(1, n_err)), float(fell.mean()), float(distance.mean()),
                      math.sqrt(tau_sq / max(1, n_tau)), cot, start,
                      {name: int(c) for name, c in zip(FALL_CAUSES[1:], causes[1:])}, float(switch_period))


def capability(results: list[CellResult], kind: str, max_fall_rate: float, commanded_distance: float,
               start: str = "scattered") -> float:
    """The largest feature value of ``kind`` (and stairs ``start``) walked with at most ``max_fall_rate``
    falls and at least half the commanded distance (0 when none)."""
    ok = [r.feature for r in results if r.terrain == kind and r.start == start and not r.switch_period
          and r.falls_per_episode <= max_fall_rate and r.distance >= 0.5 * commanded_distance]
    return max(ok) if ok else 0.0


_LABEL = {"scattered": "", "top": " (down from a landing)", "pit": " (up out of a pit)"}


def markdown(results: list[CellResult], steps: dict, slope: float, command_line: str) -> str:
    """The results table; ``steps``: highest step per stairs start (see :func:`capability`)."""
    rows = ["| terrain | level | feature | command (vx, vy, wz) | episodes | tracking RMS (m/s) | falls / 20 s | "
            "falls: base contact / tipped / low | distance (m) | torque RMS (N·m) | cost of transport |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        command = f"random, every {r.switch_period:g} s" if r.switch_period else str(tuple(r.command))
        rows.append(f"| {r.terrain}{_LABEL[r.start]} | {r.level} | {r.feature:.3g} | {command} | "
                    f"{r.episodes} | "
                    f"{r.tracking_rms:.3f} | {r.falls_per_episode:.2f} | "
                    f"{' / '.join(str(r.fall_causes.get(c, 0)) for c in FALL_CAUSES[1:])} | "
                    f"{r.distance:.1f} | {r.torque_rms:.1f} | "
                    f"{r.cost_of_transport:.2f} |")
    return (f"`{command_line}`\n\n" + "\n".join(rows) +
            f"\n\nHighest step walked among scattered pyramids: **{steps['scattered']:.2f} m**; descended from a "
            f"landing: **{steps['top']:.2f} m**; climbed out of a pit: **{steps['pit']:.2f} m**; steepest slope "
            f"walked: **{slope:.0f} deg**.\n")


def plot(results: list[CellResult], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    series = [(k, "scattered") for k in TERRAINS] + [("stairs", "top"), ("stairs", "pit")]
    for (kind, start), standing in itertools.product(series, (False, True)):
        rs = [r for r in results if r.terrain == kind and r.start == start and r.command
              and (not any(r.command) if standing else r.command[0] > 0 and r.command[2] == 0)]
        if not rs:
            continue
        lv, label = [r.level for r in rs], kind + _LABEL[start] + (", standing" if standing else "")
        style = "o--" if standing else "o-"
        for ax, values in zip(axes, ([r.tracking_rms for r in rs], [r.falls_per_episode for r in rs],
                                     [r.distance for r in rs])):
            ax.plot(lv, values, style, label=label)
    for ax, title in zip(axes, ("velocity tracking RMS (m/s)", "falls per 20 s episode", "distance walked (m)")):
        ax.set_xlabel("difficulty level")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend()
    fig.tight_layout()
    atomic_save_figure(fig, png, dpi=100)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", default="", help="policy file (default: the shipped policy)")
    p.add_argument("--terrains", nargs="+", default=list(TERRAINS), choices=list(TERRAINS))
    p.add_argument("--levels", type=int, nargs="+", default=[0, 3, 6, 9], help="difficulty levels (of 10)")
    p.add_argument("--episodes", type=int, default=8, help="episodes per cell")
    p.add_argument("--speed", type=float, default=1.0, help="forward command (m/s)")
    p.add_argument("--switching", type=float, default=0.0, metavar="PERIOD",
                   help="also a cell per terrain and level with random commands changing every PERIOD s (0: none)")
    p.add_argument("--rubble-ground", type=float, default=0.0, metavar="M",
                   help="rubble on rough ground of this amplitude at the top level (m; the training option)")
    p.add_argument("--max-fall-rate", type=float, default=0.1, help="capability: largest fall rate allowed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/eval_locomotion", help="output directory")


def run(ns: argparse.Namespace) -> int:
    from morobot.locomotion.policy import LocomotionPolicy, PolicyError
    from morobot.locomotion.sim import default_policy

    try:
        policy = LocomotionPolicy(ns.policy or default_policy())
        if ns.episodes < 1 or not ns.levels or any(not 0 <= lv < 10 for lv in ns.levels):
            raise ValueError("episodes must be >= 1 and levels within 0..9")
        if not (math.isfinite(ns.switching) and ns.switching >= 0):
            raise ValueError("--switching must be a period >= 0 s")
        EnvConfig(rubble_ground=float(ns.rubble_ground))  # its range, checked once, before any episode
    except (PolicyError, ValueError) as exc:
        print(f"morobot eval locomotion: {exc}", file=sys.stderr)
        return 2
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    cells = [(k, "scattered") for k in ns.terrains]
    cells += [("stairs", s) for s in ("top", "pit") if "stairs" in ns.terrains]
    for kind, start in cells:
        for level in (ns.levels if kind != "flat" else [0]):
            r = evaluate_cell(policy, kind, level, 10, (ns.speed, 0.0, 0.0), ns.episodes, ns.seed, start,
                              rubble_ground=ns.rubble_ground)
            results.append(r)
            print(f"{kind + _LABEL[start]:<7} level {level}: tracking {r.tracking_rms:.3f} m/s, "
                  f"falls {r.falls_per_episode:.2f}, distance {r.distance:.1f} m", flush=True)
            if ns.switching > 0 and start == "scattered":
                r = evaluate_cell(policy, kind, level, 10, (0.0, 0.0, 0.0), ns.episodes, ns.seed, start, ns.switching,
                                  ns.rubble_ground)
                results.append(r)
                print(f"{kind:<7} level {level}, commands every {ns.switching:g} s: tracking {r.tracking_rms:.3f} "
                      f"m/s, falls {r.falls_per_episode:.2f}", flush=True)
    if "flat" in ns.terrains:  # turning on the spot and walking sideways, on flat ground
        for cmd in ((0.0, 0.0, 1.0), (0.0, 0.5, 0.0)):
            results.append(evaluate_cell(policy, "flat", 0, 10, cmd, ns.episodes, ns.seed))
    commanded = ns.speed * 20.0
    steps = {s: capability(results, "stairs", ns.max_fall_rate, min(commanded, 4.0), s) for s in STARTS}
    slope = capability(results, "slopes", ns.max_fall_rate, min(commanded, 4.0))
    command_line = "morobot eval locomotion " + " ".join(sys.argv[3:] if len(sys.argv) > 3 else [])
    atomic_write_text(out / "summary.md", markdown(results, steps, slope, command_line))
    atomic_write_json(out / "results.json", {"policy": str(ns.policy or default_policy()),
                                             "rubble_ground": float(ns.rubble_ground),
                                             "highest_step": steps["scattered"],
                                             "highest_step_descended": steps["top"],
                                             "highest_step_climbed_from_pit": steps["pit"],
                                             "steepest_slope_deg": slope,
                                             "results": [asdict(r) for r in results]})
    plot(results, out / "locomotion_eval.png")
    print(markdown(results, steps, slope, command_line))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = make_parser("morobot eval locomotion", __doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    raise SystemExit(main())
