"""FDM training data from the planner's own closed loop: ``morobot collect-nav``.

``morobot collect`` drives the robot with random command streams. A planner asks the model about other
situations: walking at a staircase or a box on the way to a goal, at the speeds and headings MPPI
chooses. This collector records those. It runs navigation scenarios of the benchmark's terrain mixes
(:mod:`morobot.evaluation.scenarios`, with a base seed of their own, so the worlds are not the
benchmark's) in lock-step with the whole navigation stack (:class:`~morobot.evaluation.nav.LockstepRunner`:
simulator, depth cameras, elevation mapper, planner and its safety layers, from ``config/navigate.yaml``)
and cuts each run into FDM samples of the same format as ``morobot collect --robot legged --scan-source
sensor`` (:mod:`morobot.fdm.data.collect`), so the two merge (``morobot merge-data``):

* the planner runs once per model step (``control_rate`` = 1 / ``dt``, 2 Hz) and its command is held for
  the step, as the model's commands are; the simulator's command timeout is raised to twice the step;
* optional exploration: Gaussian noise on each held command (``--noise``, a fraction of each axis' limit;
  clipped to the data's command limits), so the data also holds the neighbours of the planner's choices;
* a sample starts every ``stride`` steps: the proprioceptive history, the scan of the robot's own
  elevation map, the next ``horizon`` commands and the poses at the end of each step;
* failure labels as in ``morobot collect``: a contact that counts as a collision above
  ``contact_force`` (:class:`~morobot.fdm.data.collect.FailureContacts`), a fall, or the simulator's stuck
  flag; the run ends there. A run that ends otherwise (goal reached, budget, the benchmark's stuck rule)
  drops the samples whose horizon it cuts.

One shard per scenario (``world_id`` ``nav-<planner>-<mix>-<index>-s<seed>``, ``kind`` the world's kind),
workers as Ray tasks or processes, resumable like ``morobot collect``.

**Counterfactual branches** (``--branch-leads``). A planner's data shows what happened after the commands it
chose, not what another command would have done from the same moment; a model trained on it can learn that
a place is dangerous without learning which command is. So a run that fails can be run again (lock-step runs
are deterministic and the noise is seeded: the rerun is the same run) and, a given number of model steps
before the failure, driven on with another command held for one horizon (``--branch-kinds``: ``stop``, or a
``random`` command within the limits) (:class:`BranchRecorder`). The samples whose horizon reaches that step
are kept; samples with one start and different commands are what ``morobot eval fdm`` ranks
(``command_ranking``). ``--failed-in`` picks the scenarios that failed in an earlier collection with the same
planner and seed, and ``--branches-only`` keeps only the branches (world id ``<shard name>-branch``), so they
add to that collection without repeating it. Each branch's outcome is in the shard's ``stats``.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from morobot.evaluation.nav import LockstepProbe, LockstepRunner, NavParams, PlannerSpec
from morobot.evaluation.scenarios import BENCHMARK_MIXES, TERRAIN_MIXES, Scenario, make_scenarios
from morobot.fdm.data.collect import (CollectConfig, FailureContacts, collect_shards, cut_samples, joint_columns,
                                      map_scan, shard_arrays)
from morobot.fdm.data.dataset import read_manifest, write_shard
from morobot.fdm.history import FEATURE_SETS, ProprioHistory


def checked_noise(noise: float) -> float:
    """The exploration noise as a float; ValueError unless finite and >= 0."""
    if not (math.isfinite(noise) and noise >= 0.0):
        raise ValueError(f"noise must be >= 0, got {noise}")
    return float(noise)


class FDMRecorder(LockstepProbe):
    """Records one lock-step run as FDM samples (see the module docstring).

    Args:
        cfg: the sample format and failure rules (``history_*``, ``horizon``, ``dt``, ``stride``,
            ``contact_force``, ``scan``, ``limits``).
        noise: exploration noise on each command, a fraction of each axis' limit (0: the planner's command).
        rng: random generator of the noise.
    """

    def __init__(self, cfg: CollectConfig, noise: float = 0.0, rng: Optional[np.random.Generator] = None) -> None:
        self.cfg, self.noise = cfg, checked_noise(noise)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.history = ProprioHistory(cfg.history_length, cfg.history_dt, cfg.history_features)
        self.contacts: Optional[FailureContacts] = None
        self.applied = np.zeros(3)
        self.commands: list[np.ndarray] = []
        self.poses: list[np.ndarray] = []  # the pose at the end of each step
        self.starts: dict[int, dict[str, Any]] = {}
        self.failed_at: Optional[int] = None
        self.failure = ""
        self._pending: Optional[dict[str, Any]] = None

    @property
    def running(self) -> bool:
        """True while a step (a held command) is under way."""
        return len(self.commands) > len(self.poses)

    def step(self, sim: Any, state: Any, mapper: Any) -> bool:
        if self.contacts is None:
            self.contacts = FailureContacts(sim)
        self.history.push(state.time, self.applied, state.twist, state.gravity,
                          joint_columns(sim, state, self.cfg.history_features))
        if self.contacts.max_force() > self.cfg.contact_force:
            self.failure = "collision"
        elif state.fallen or state.stuck:
            self.failure = "fall" if state.fallen else "stuck"
        if not self.failure:
            return False
        if self.running:
            self.poses.append(state.pose.copy())
            self.failed_at = len(self.poses) - 1
        return True

    def cycle(self, sim: Any, state: Any, mapper: Any) -> None:
        if self.running:
            self.poses.append(state.pose.copy())
        self._pending = None
        if len(self.poses) % self.cfg.stride == 0 and self.history.ready:
            self._pending = {"history": self.history.array(), "pose": state.pose.copy(),
                             "z": float(state.position[2]), "scan": map_scan(mapper, state, self.cfg.scan)}

    def command(self, command: np.ndarray) -> np.ndarray:
        limits = self.cfg.limits.array()
        sent = np.asarray(command, dtype=np.float64)
        if self.noise > 0.0:
            sent = np.clip(sent + self.noise * limits * self.rng.standard_normal(3), -limits, limits)
        return self._hold(sent)

    def _hold(self, sent: np.ndarray) -> np.ndarray:
        """Sends ``sent`` for the next step (a sample may start with it)."""
        if self._pending is not None:
            self.starts[len(self.commands)] = self._pending
            self._pending = None
        self.commands.append(sent.copy())
        self.applied = sent
        return sent

    def samples(self) -> list[dict[str, Any]]:
        """The run's samples (rows of the shard arrays)."""
        if not self.commands:
            return []
        return cut_samples(self._sample_starts(), self.poses, np.asarray(self.commands), self.failed_at,
                           self.cfg.horizon)

    def _sample_starts(self) -> dict[int, dict[str, Any]]:
        """The starts :meth:`samples` cuts (all of them)."""
        return self.starts


BRANCH_KINDS = ("stop", "random")
"""What a counterfactual branch sends from its branch step on: zero, or one command drawn uniformly within the
data's command limits (held for the whole branch)."""


def branch_command(kind: str, limits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The command a branch of ``kind`` (:data:`BRANCH_KINDS`) holds."""
    if kind == "stop":
        return np.zeros(3)
    if kind == "random":
        return rng.uniform(-1.0, 1.0, 3) * limits
    raise ValueError(f"branch kind must be one of {BRANCH_KINDS}, got {kind!r}")


class BranchRecorder(FDMRecorder):
    """Records a counterfactual branch of a run: the same run up to step ``branch``, then ``alternative``.

    Lock-step runs are deterministic and the exploration noise comes from the same seed, so the rerun is the
    recorded run up to the branch step; from there ``alternative`` replaces the planner's command for
    ``horizon`` steps and the run ends. Only the samples whose horizon reaches the branch are kept (the others
    repeat the original run).
    """

    def __init__(self, cfg: CollectConfig, noise: float, rng: np.random.Generator, branch: int,
                 alternative: np.ndarray) -> None:
        super().__init__(cfg, noise, rng)
        if branch < 0:
            raise ValueError(f"branch must be >= 0, got {branch}")
        self.branch = int(branch)
        self.alternative = np.asarray(alternative, dtype=np.float64).reshape(3)

    def step(self, sim: Any, state: Any, mapper: Any) -> bool:
        ended = super().step(sim, state, mapper)
        return ended or len(self.poses) >= self.branch + self.cfg.horizon

    def command(self, command: np.ndarray) -> np.ndarray:
        if len(self.commands) < self.branch:
            return super().command(command)
        return self._hold(self.alternative.copy())

    def _sample_starts(self) -> dict[int, dict[str, Any]]:
        """The starts whose horizon reaches the branch step."""
        return {k: v for k, v in self.starts.items() if k + self.cfg.horizon > self.branch}


def branch_steps(failed_at: int, leads: Sequence[int], stride: int) -> list[int]:
    """Branch steps ``lead`` steps before a failure in step ``failed_at``, down to a sample start (stride)."""
    out = []
    for lead in leads:
        step = ((failed_at - int(lead)) // stride) * stride
        if step >= stride and step not in out:
            out.append(step)
    return out


def collection_params(params: NavParams, dt: float) -> NavParams:
    """``params`` with the planner running once per model step and the command timeout above that step."""
    sim = {**params.sim, "cmd_timeout": max(float(params.sim["cmd_timeout"]), 2.0 * dt)}
    return replace(params, sim=sim, planner={**params.planner, "control_rate": 1.0 / dt})


_WORKER: dict[str, Any] = {}


def record_scenario(task: tuple) -> Optional[dict[str, Any]]:
    """Runs one scenario with the recorder and writes its shard (in a worker); returns the manifest entry.

    With branches (``(leads, kinds, only)``) a run that ends in a failure is run again once per branch step
    (:func:`branch_steps`) and kind (:class:`BranchRecorder`); ``only`` keeps just the branches' samples, under
    the world id ``<shard name>-branch``.
    """
    scenario, planner, params_file, cfg_dict, noise, seed, threads, branches = task
    cfg = CollectConfig.from_dict(cfg_dict)
    key = (planner, params_file, threads)
    if _WORKER.get("key") != key:
        import torch

        torch.set_num_threads(int(threads))
        params = collection_params(NavParams.load(params_file or None), cfg.dt)
        _WORKER.clear()
        _WORKER.update(key=key, runner=LockstepRunner(planner, params, robot="legged"))
    runner = _WORKER["runner"]
    def noise_rng() -> np.random.Generator:  # the same for the run and its branches: the rerun repeats the run
        return np.random.default_rng([int(seed), int(scenario.seed)])

    recorder = FDMRecorder(cfg, noise, noise_rng())
    record = runner.run(scenario, recorder)
    leads, kinds, only = branches if branches else ((), (), False)
    samples = [] if only else recorder.samples()
    outcomes = []
    if recorder.failed_at is not None and leads:
        alt_rng = np.random.default_rng([int(seed), int(scenario.seed), 1])
        limits = cfg.limits.array()
        for step in branch_steps(recorder.failed_at, leads, cfg.stride):
            for kind in kinds:
                branch = BranchRecorder(cfg, noise, noise_rng(), step, branch_command(kind, limits, alt_rng))
                runner.run(scenario, branch)
                samples += branch.samples()
                same = np.array_equal(branch.commands[:step], recorder.commands[:step])
                outcomes.append({"lead": recorder.failed_at - step, "kind": kind, "failure": branch.failure,
                                 "same_prefix": bool(same)})
    if not samples:
        return None
    world_id = shard_name(scenario, planner, seed) + ("-branch" if only else "")
    entry = write_shard(cfg.out_dir, world_id, shard_arrays(samples, scenario.world(), world_id, scenario.kind),
                        cfg.spec)
    entry["stats"] = {"outcome": record["outcome"], "failure": recorder.failure, "steps": len(recorder.poses),
                      "mix": scenario.mix}
    if outcomes:
        entry["stats"]["branches"] = outcomes
    return entry


def shard_name(scenario: Scenario, planner: PlannerSpec, seed: int) -> str:
    """The world id of a scenario's shard."""
    return f"nav-{planner.name}-{scenario.mix}-{scenario.index:03d}-s{int(seed)}"


def collect_nav(scenarios: Sequence[Scenario], planner: PlannerSpec, cfg: CollectConfig, noise: float = 0.0,
                params_file: str = "", threads: int = 1, branch_leads: Sequence[int] = (),
                branch_kinds: Sequence[str] = BRANCH_KINDS, branches_only: bool = False) -> dict[str, Any]:
    """Records every scenario with ``planner`` into ``cfg.out_dir``; returns the final manifest.

    ``cfg`` gives the sample format, the failure rules, the workers and ``resume``/``progress``; its ``seed``
    should be the scenarios' base seed: it names the shards and seeds the exploration noise. ``branch_leads``
    (model steps before a failure) and ``branch_kinds`` add counterfactual branches to each run that fails
    (:func:`record_scenario`); ``branches_only`` keeps only those.

    Raises:
        ValueError: bad parameters, or an existing data directory without ``cfg.resume``.
    """
    cfg = replace(cfg, robot="legged", scan_source="sensor")
    cfg.validate()
    checked_noise(noise)  # before any worker starts
    leads = tuple(int(v) for v in branch_leads)
    kinds = tuple(branch_kinds)
    if any(v < 1 for v in leads):
        raise ValueError(f"branch leads must be >= 1 step, got {list(leads)}")
    unknown = [k for k in kinds if k not in BRANCH_KINDS]
    if unknown or (leads and not kinds):
        raise ValueError(f"branch kinds must be some of {BRANCH_KINDS}, got {list(kinds)}")
    if branches_only and not leads:
        raise ValueError("branches_only needs branch leads")
    cfg_dict = cfg.to_dict()
    branches = (leads, kinds, bool(branches_only)) if leads else None
    meta = {"source": "morobot.evaluation.onpolicy", "planner": asdict(planner), "noise": noise,
            "scenario_seed": cfg.seed, "mixes": sorted({s.mix for s in scenarios}), "config": cfg_dict,
            "params_file": params_file}
    if branches:
        meta["branches"] = {"leads": list(leads), "kinds": list(kinds), "only": bool(branches_only)}
    suffix = "-branch" if branches_only else ""
    tasks = [(shard_name(s, planner, cfg.seed) + suffix,
              (s, planner, params_file, cfg_dict, noise, cfg.seed, threads, branches)) for s in scenarios]
    return collect_shards(cfg.out_dir, cfg.spec, meta, tasks, record_scenario, workers=cfg.workers,
                          backend=cfg.backend, ray_address=cfg.ray_address, resume=cfg.resume, progress=cfg.progress)


def failed_scenarios(scenarios: Sequence[Scenario], data_dir: str | Path, planner: PlannerSpec,
                     seed: int) -> list[Scenario]:
    """The scenarios whose shard in ``data_dir`` (an earlier ``collect-nav`` with the same planner and seed)
    ended in a failure."""
    manifest = read_manifest(data_dir)
    failed = {e["world_id"] for e in manifest["shards"] if e.get("stats", {}).get("failure")}
    return [s for s in scenarios if shard_name(s, planner, seed) in failed]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; prints a summary, returns the exit code."""
    d = CollectConfig(out_dir="")
    p = argparse.ArgumentParser(prog="morobot collect-nav", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="data directory to write")
    p.add_argument("--mixes", nargs="+", default=list(BENCHMARK_MIXES), choices=list(TERRAIN_MIXES))
    p.add_argument("-n", "--num", type=int, default=30, help="scenarios per terrain mix")
    p.add_argument("--first", type=int, default=0, help="index of the first scenario")
    p.add_argument("--seed", type=int, default=1,
                   help="base seed of the scenarios (the benchmark uses 0: keep its worlds out of the data)")
    p.add_argument("--budget", type=float, default=60.0, help="sim-time budget per scenario (s)")
    p.add_argument("--fdm-checkpoint", default="", help="drive with the FDM planner (default: the kinematic one)")
    p.add_argument("--params-file", default="", help="node parameters (default config/navigate.yaml)")
    p.add_argument("--noise", type=float, default=0.0, help="exploration noise, a fraction of each command limit")
    p.add_argument("--history-features", choices=tuple(FEATURE_SETS), default="legged_actions")
    p.add_argument("--stride", type=int, default=d.stride, help="steps between sample starts")
    p.add_argument("--contact-force", type=float, default=d.contact_force, help="collision threshold (N)")
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--backend", choices=["ray", "processes"], default=d.backend)
    p.add_argument("--ray-address", default=d.ray_address)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--branch-leads", type=int, nargs="+", default=[],
                   help="counterfactual branches of each failed run, this many model steps before the failure")
    p.add_argument("--branch-kinds", nargs="+", choices=BRANCH_KINDS, default=list(BRANCH_KINDS),
                   help="what each branch sends from its step on (one branch per lead and kind)")
    p.add_argument("--branches-only", action="store_true",
                   help="keep only the branches' samples (the runs themselves are in an earlier collection)")
    p.add_argument("--failed-in", default="",
                   help="only the scenarios whose run failed in this earlier collection (same planner and seed)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    ns = p.parse_args(argv)
    if ns.num < 1 or ns.first < 0 or ns.threads < 1:
        p.error("--num and --threads must be >= 1, --first >= 0")
    planner = PlannerSpec("kinematic")
    if ns.fdm_checkpoint:
        if not Path(ns.fdm_checkpoint).is_file():
            p.error(f"FDM checkpoint not found: {ns.fdm_checkpoint}")
        planner = PlannerSpec("fdm", str(Path(ns.fdm_checkpoint).resolve()))
    scenarios = make_scenarios(ns.mixes, ns.num, seed=ns.seed, budget=ns.budget, first=ns.first)
    if ns.failed_in:
        try:
            scenarios = failed_scenarios(scenarios, ns.failed_in, planner, ns.seed)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            print(f"morobot collect-nav: error: {exc}", file=sys.stderr)
            return 2
        if not scenarios:
            p.error(f"no scenario of these mixes and indices failed in {ns.failed_in}")
    cfg = CollectConfig(out_dir=ns.out, robot="legged", history_features=ns.history_features, stride=ns.stride,
                        contact_force=ns.contact_force, workers=ns.workers, backend=ns.backend,
                        ray_address=ns.ray_address, seed=ns.seed, scan_source="sensor", resume=ns.resume,
                        progress=not ns.no_progress)
    try:
        manifest = collect_nav(scenarios, planner, cfg, ns.noise, ns.params_file, ns.threads, ns.branch_leads,
                               ns.branch_kinds, ns.branches_only)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"morobot collect-nav: error: {exc}", file=sys.stderr)
        return 2
    failures = sum(s.get("failures", 0) for s in manifest["shards"])
    print(f"{manifest['total_samples']} samples from {len(manifest['shards'])} runs ({failures} with a failure) "
          f"in {ns.out}; data hash {manifest['data_hash'][:12]}")
    for line in branch_summary(manifest):
        print(line)
    return 0


def branch_summary(manifest: dict[str, Any]) -> list[str]:
    """One line per branch kind and lead: how many branches of failed runs did not fail themselves."""
    counts: dict[tuple[str, int], list[int]] = {}
    for shard in manifest["shards"]:
        for b in shard.get("stats", {}).get("branches", []):
            c = counts.setdefault((b["kind"], int(b["lead"])), [0, 0])
            c[0] += not b["failure"]
            c[1] += 1
    return [f"branch {kind}, {lead} steps before the failure: {ok} of {n} without a failure"
            for (kind, lead), (ok, n) in sorted(counts.items())]


if __name__ == "__main__":
    sys.exit(main())
