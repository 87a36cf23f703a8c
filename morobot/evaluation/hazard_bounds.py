"""What could any planner do on ground its map cannot show? ``morobot eval hazard-bounds``.

The ``slippery`` mix lays patches of low friction that are flat to the depth cameras (:mod:`morobot.sim.patches`):
the height map, the geometric risk and a height scan see free ground. A learned model of the ground underfoot can
only tell once the robot stands on a patch. Before crediting or blaming such a model, this measures what a
reaction to the ice could buy at best: kinematic MPPI in lock-step, the same scenarios, with an oracle that knows the
patches (the simulated world's own) and reacts for the planner (:class:`OracleReaction`):

* ``none``: nothing; the reference;
* ``known``: the patches are walls in the planner's map from the start: a sensor that sees the ice beforehand;
* ``walk_on``: from ``delay`` seconds after the base is first over a patch, walk on straight ahead (the planner's
  forward speed, at least ``speed``; no turn, no sidestep) until it is off the patch, then plan again;
* ``slow``: from then until off the patch, the planner's commands scaled down to a planar speed of at most
  ``speed`` (the turn rate by the same factor): a planner that slows down on the ice and only there;
* ``stop``: from then, stand for ``hold`` seconds, then plan again;
* ``back_out``: from then, walk straight back at ``speed`` until ``margin`` metres off the patch; then a wall disc
  of ``radius`` whose centre lies ``ahead`` metres past the point of entry along the way in, and plan again.

``delay`` stands for a detector's latency (the legged FDM fine-tuned on icy ground rates standing still as dangerous
0.1-1.1 s after the first step onto a patch, docs/fdm.md "Session 38"). One record per scenario and reaction in
``<out>/results.jsonl`` (appended; a run already there, the same scenario, reaction settings and parameters file, is
skipped when the command runs again), and ``summary.md``: per
reaction the outcomes and the paired difference in goals reached against ``none``
(:func:`~morobot.evaluation.metrics.paired_difference_interval`). The figures of session 38 are in
docs/navigation_eval.md ("Session 38"). ``--mix-param KEY=VALUE`` changes a generator parameter of the mix for
every scenario (e.g. milder ice: ``patch_friction=[0.08, 0.12]``); the scenarios keep their ids and world seeds.

    morobot eval hazard-bounds --first 100 -n 40 --workers 2 --out out/hazard_bounds
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from morobot.cliutil import key_values
from morobot.cliutil import parser as make_parser
from morobot.evaluation.nav import LockstepProbe, read_results
from morobot.evaluation.scenarios import TERRAIN_MIXES, Scenario, TerrainMix, make_scenario
from morobot.fileio import atomic_write_text
from morobot.planning.interface import HeightMap

REACTIONS = ("none", "known", "walk_on", "slow", "stop", "back_out")
#: :class:`ReactionConfig` fields the command line sets.
SETTINGS = ("delay", "speed", "hold", "margin", "radius", "ahead")


@dataclass(frozen=True)
class ReactionConfig:
    """How :class:`OracleReaction` reacts (see the module docstring; SI units).

    Raises:
        ValueError: an unknown reaction, or a negative or non-finite value, or a zero ``speed``, ``radius``, ``wall``
            or ``timeout``.
    """

    reaction: str = "none"
    delay: float = 0.3
    speed: float = 0.3
    hold: float = 2.0
    margin: float = 0.5
    radius: float = 1.5
    ahead: float = 1.5
    wall: float = 0.5
    timeout: float = 15.0

    def __post_init__(self) -> None:
        if self.reaction not in REACTIONS:
            raise ValueError(f"reaction must be one of {REACTIONS}, got {self.reaction!r}")
        for name, value in asdict(self).items():
            if name != "reaction" and (not math.isfinite(float(value)) or float(value) < 0.0):
                raise ValueError(f"ReactionConfig.{name} must be finite and >= 0, got {value!r}")
        for name in ("speed", "radius", "wall", "timeout"):
            if float(getattr(self, name)) <= 0.0:
                raise ValueError(f"ReactionConfig.{name} must be positive, got {getattr(self, name)!r}")


def raise_cells(hmap: HeightMap, mask: np.ndarray, wall: float) -> HeightMap:
    """A copy of ``hmap`` with the cells of ``mask`` raised by ``wall`` metres (unknown cells: the map's highest
    known height plus ``wall``)."""
    heights = hmap.heights.detach().clone()
    m = torch.as_tensor(np.asarray(mask, dtype=bool))
    known = torch.isfinite(heights)
    top = float(heights[known].max()) if bool(known.any()) else 0.0
    heights[m] = torch.where(known[m], heights[m] + wall, torch.full_like(heights[m], top + wall))
    return HeightMap(heights=heights, origin=hmap.origin, resolution=hmap.resolution, stamp=hmap.stamp)


class OracleReaction(LockstepProbe):
    """The oracle of :mod:`morobot.evaluation.hazard_bounds` for one run: it watches every physics step, may replace
    the planner's command, and draws its walls into the planner's map.

    Args:
        world: the run's world (its ``patches`` are the ice).
        config: the reaction.
    """

    def __init__(self, world: Any, config: ReactionConfig) -> None:
        self.world, self.cfg = world, config
        self.state = "plan"  # or "react"
        self.reactions = 0
        self.on_ice_s = 0.0
        self.walls: list[tuple[float, float]] = []  # disc centres
        self._t: Optional[float] = None
        self._on_since: Optional[float] = None
        self._react_at = 0.0
        self._last_off: Optional[tuple[float, float]] = None
        self._entry: Optional[tuple[float, float]] = None
        self._off_at: Optional[tuple[float, float]] = None
        self._way_in = (1.0, 0.0)

    def on_ice(self, x: float, y: float) -> bool:
        """Whether ``(x, y)`` lies on a patch."""
        return any(bool(p.contains(x, y)) for p in self.world.patches)

    def step(self, sim: Any, state: Any, mapper: Any) -> bool:
        cfg, t = self.cfg, float(sim.time)
        x, y = float(state.position[0]), float(state.position[1])
        on = self.on_ice(x, y)
        if on and self._t is not None:
            self.on_ice_s += t - self._t
        self._t = t
        if self.state == "plan":
            self._way_in = (math.cos(state.yaw), math.sin(state.yaw))
            if not on:
                self._on_since, self._last_off = None, (x, y)
            elif cfg.reaction in ("walk_on", "slow", "stop", "back_out"):
                if self._on_since is None:
                    self._on_since, self._entry = t, self._last_off or (x, y)
                if t - self._on_since >= cfg.delay:
                    self.state, self._react_at, self._off_at = "react", t, None
                    self.reactions += 1
            return False
        if cfg.reaction == "stop":
            done = t - self._react_at >= cfg.hold
        elif cfg.reaction in ("walk_on", "slow"):
            done = not on
        else:  # back_out: off the ice by margin (or given up)
            if on:
                self._off_at = None
            elif self._off_at is None:
                self._off_at = (x, y)
            done = t - self._react_at >= cfg.timeout or (
                self._off_at is not None and math.hypot(x - self._off_at[0], y - self._off_at[1]) >= cfg.margin)
            if done:
                ex, ey = self._entry if self._entry is not None else (x, y)
                self.walls.append((ex + cfg.ahead * self._way_in[0], ey + cfg.ahead * self._way_in[1]))
        if done:
            self.state, self._on_since = "plan", None
        return False

    def command(self, command: np.ndarray) -> np.ndarray:
        if self.state != "react":
            return command
        if self.cfg.reaction == "walk_on":
            return np.array([max(float(command[0]), self.cfg.speed), 0.0, 0.0])
        if self.cfg.reaction == "slow":
            planar = math.hypot(float(command[0]), float(command[1]))
            return np.asarray(command, dtype=float) * (min(1.0, self.cfg.speed / planar) if planar > 0.0 else 1.0)
        if self.cfg.reaction == "back_out":
            return np.array([-self.cfg.speed, 0.0, 0.0])
        return np.zeros(3)

    def map(self, hmap: HeightMap) -> HeightMap:
        if self.cfg.reaction != "known" and not self.walls:
            return hmap
        xs, ys = hmap.cell_centres()
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        mask = np.zeros(gx.shape, dtype=bool)
        if self.cfg.reaction == "known":
            for patch in self.world.patches:
                mask |= np.asarray(patch.contains(gx, gy), dtype=bool)
        for cx, cy in self.walls:
            mask |= np.hypot(gx - cx, gy - cy) <= self.cfg.radius
        return raise_cells(hmap, mask, self.cfg.wall) if mask.any() else hmap


_RUNNER: dict[str, Any] = {}


def run_one(task: tuple[Scenario, dict, str]) -> dict[str, Any]:
    """One scenario under one reaction (a worker keeps its runner between tasks)."""
    from morobot.evaluation.nav import LockstepRunner, NavParams, PlannerSpec

    scenario, reaction, params_file = task
    if _RUNNER.get("key") != params_file:
        torch.set_num_threads(1)
        _RUNNER.update(key=params_file, runner=LockstepRunner(PlannerSpec("kinematic"),
                                                                params=NavParams.load(params_file or None),
                                                                robot="legged"))
    cfg = ReactionConfig(**reaction)
    probe = OracleReaction(scenario.world(), cfg)
    rec = _RUNNER["runner"].run(scenario, probe)
    keep = ("id", "mix", "index", "outcome", "success", "fallen", "sim_time", "final_distance", "error")
    return {**{k: rec.get(k) for k in keep}, "seed": scenario.seed, "params": scenario.params,  # seed: the world's
            "reaction": cfg.reaction, "config": asdict(cfg), "params_file": params_file,
            "reactions": probe.reactions, "walls": len(probe.walls), "on_ice_s": round(probe.on_ice_s, 2)}


def _key(item: Any) -> tuple[str, int, str]:
    """A scenario's or a record's identity: id, world seed and generator parameters."""
    get = item.get if isinstance(item, dict) else lambda k: getattr(item, k)
    return get("id"), int(get("seed")), json.dumps(get("params"), sort_keys=True)


def _run_key(record: dict[str, Any]) -> tuple:
    """A record's run: its scenario, reaction configuration and parameters file."""
    return (*_key(record), json.dumps(record.get("config"), sort_keys=True), record.get("params_file", ""))


def mix_with(name: str, overrides: Sequence[str]) -> TerrainMix:
    """The mix ``name`` with generator parameters changed by ``KEY=VALUE`` items (values read as YAML); its name, and
    so its scenarios' ids and world seeds, stay.

    Raises:
        KeyError: an unknown mix.
        ValueError: an item that is not ``KEY=VALUE`` or a key that is no world generator parameter.
    """
    from morobot.sim.worlds import _BASE_PARAMS

    mix = TERRAIN_MIXES[name]
    changed = key_values(overrides)
    unknown = sorted(set(changed) - set(_BASE_PARAMS))
    if unknown:
        raise ValueError(f"--mix-param: {unknown} are no world generator parameters")
    changed = {k: tuple(v) if isinstance(v, list) else v for k, v in changed.items()}
    return replace(mix, params={**mix.params, **changed})


def summary(records: Sequence[dict[str, Any]], reference: str = "none") -> str:
    """Markdown: per reaction the outcomes and the paired difference in goals reached against ``reference``."""
    from morobot.evaluation.metrics import paired_difference_interval

    by = {}
    for r in records:
        by.setdefault(r["reaction"], {})[r["id"]] = r
    lines = ["| reaction | N | reached | fallen | stuck / timeout / error | mean time on the ice | reached − "
             f"{reference} (paired 95 % interval) |", "|---|---:|---:|---:|---|---:|---|"]
    ref = by.get(reference, {})
    for name in [n for n in REACTIONS if n in by]:
        rows = by[name]
        out = [r["outcome"] for r in rows.values()]
        other = f"{out.count('stuck')} / {out.count('timeout')} / {out.count('error')}"
        ids = sorted(set(rows) & set(ref))
        diff = "–"
        if name != reference and ids:
            a = [bool(rows[i]["success"]) for i in ids]
            b = [bool(ref[i]["success"]) for i in ids]
            d, lo, hi = paired_difference_interval(sum(x and y for x, y in zip(a, b)),
                                                   sum(x and not y for x, y in zip(a, b)),
                                                   sum(y and not x for x, y in zip(a, b)),
                                                   sum(not x and not y for x, y in zip(a, b)))
            diff = f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] (N = {len(ids)})"
        ice = np.mean([r["on_ice_s"] for r in rows.values()])
        lines.append(f"| `{name}` | {len(rows)} | {out.count('reached')} | {out.count('fallen')} | {other} | "
                     f"{ice:.1f} s | {diff} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``morobot eval hazard-bounds``."""
    from morobot.parallel import BACKENDS, run_tasks

    p = make_parser("morobot eval hazard-bounds", __doc__.split("\n\n")[0])
    p.add_argument("--mix", default="slippery", choices=sorted(TERRAIN_MIXES), help="terrain mix (with patches)")
    p.add_argument("-n", "--num", type=int, default=40, help="scenarios")
    p.add_argument("--first", type=int, default=100, help="index of the first scenario")
    p.add_argument("--seed", type=int, default=0, help="base seed of the scenarios")
    p.add_argument("--mix-param", action="append", default=[], metavar="KEY=VALUE",
                   help="change a generator parameter of the mix, e.g. 'patch_friction=[0.08, 0.12]' (repeatable)")
    p.add_argument("--reactions", nargs="+", default=list(REACTIONS), choices=REACTIONS, help="reactions to run")
    d = ReactionConfig()
    for name in SETTINGS:
        p.add_argument(f"--{name}", type=float, default=getattr(d, name), help=f"ReactionConfig.{name}")
    p.add_argument("--params-file", default="", help="node parameters (default config/navigate.yaml)")
    p.add_argument("--workers", type=int, default=1, help="parallel workers")
    p.add_argument("--backend", choices=BACKENDS, default="processes", help="ray or processes")
    p.add_argument("--out", default="out/hazard_bounds", help="output directory")
    ns = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        mix = mix_with(ns.mix, ns.mix_param)
        if ns.num < 1:
            raise ValueError(f"-n must be >= 1, got {ns.num}")
        scenarios = [make_scenario(mix, i, seed=ns.seed) for i in range(ns.first, ns.first + ns.num)]
        configs = [asdict(ReactionConfig(r, **{k: getattr(ns, k) for k in SETTINGS})) for r in ns.reactions]
    except (KeyError, ValueError) as exc:
        print(f"morobot eval hazard-bounds: error: {exc}", file=sys.stderr)
        return 2
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.jsonl"
    try:
        records = read_results(path)
    except ValueError as exc:  # e.g. a line cut short when an earlier run was killed
        print(f"morobot eval hazard-bounds: error: {exc}", file=sys.stderr)
        return 2
    done = {_run_key(r) for r in records}
    todo = {(*_key(sc), json.dumps(c, sort_keys=True), ns.params_file): (sc, c) for c in configs for sc in scenarios}
    tasks = [(sc, c, ns.params_file) for key, (sc, c) in todo.items() if key not in done]
    with path.open("a", encoding="utf-8") as fh:
        for i, rec in enumerate(run_tasks(run_one, tasks, ns.workers, ns.backend), 1):
            fh.write(json.dumps(rec) + "\n")
            fh.flush()  # a finished run is kept even if the command is stopped
            records.append(rec)
            print(f"[{i}/{len(tasks)}] {rec['reaction']} {rec['id']}: {rec['outcome']}", flush=True)
    records = [r for r in records if _run_key(r) in todo]
    changed = f" ({', '.join(ns.mix_param)})" if ns.mix_param else ""
    title = f"# Hazard bounds: {ns.mix}{changed}, scenarios {ns.first}-{ns.first + ns.num - 1}, seed {ns.seed}\n\n"
    text = title + summary(records)
    atomic_write_text(out / "summary.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
