"""Counterfactual branches in random-command collection: one moment driven on with several commands.

``morobot collect --branches K`` (the legged robot): at every sample start of an episode the simulator's
state is kept (:meth:`~morobot.locomotion.sim.LeggedAnymalSim.snapshot`), ``K`` other command sequences
are each driven for one horizon from it, and the episode then goes on from the kept state exactly as it
would have without them. Each branch's sample shares the start's history, pose, base height and scan with
the episode's own sample, so :func:`~morobot.fdm.data.starts.start_groups` puts them in one group: the
pairs the ranking loss (``morobot train fdm --rank-weight``) and ``morobot eval fdm``'s command ranking
are built on.

Random-command data alone shows each state with one command. Whether a fall comes from the state or
from the command then has to be inferred across different states; a branch shows it directly. With
``branch_stop`` the first branch of every start holds a stop, the alternative the planner always has
(its risk is the reference of the planner's relative stop rule and ``risk_margin``).

``morobot collect-nav --branch-leads`` (:mod:`morobot.evaluation.onpolicy`) branches the planner's
failed runs by re-running them; this module branches every start of random episodes from a snapshot.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from morobot.fdm.data.commands import CommandLimits, sample_command_sequences

#: What ends a step as a failure, in the order it is checked.
FAILURE_KINDS = ("collision", "fall", "stuck")


def drive_step(sim: Any, cmd: np.ndarray, substeps: int, tick: float, contacts: Any, contact_force: float,
               on_tick: Optional[Callable[[Any], None]] = None) -> tuple[Any, Optional[str]]:
    """One model step: ``cmd`` re-sent every ``tick`` for ``substeps`` ticks.

    Args:
        sim: the simulator (``set_command``, ``advance``).
        cmd: ``[3]`` body-twist command.
        substeps: ticks per step.
        tick: seconds per tick (the history's spacing).
        contacts: an object whose ``max_force()`` is the largest contact force that counts as a collision.
        contact_force: that force's threshold (N).
        on_tick: called with the state after every tick (the episode fills its history and map there).

    Returns:
        ``(state, failure)``: the state at the step's end and the first of :data:`FAILURE_KINDS` met
        during the step, or None.
    """
    failure = None
    state = None
    for _ in range(substeps):
        sim.set_command(cmd)
        state = sim.advance(tick)
        if on_tick is not None:
            on_tick(state)
        if failure is None:
            if contacts.max_force() > contact_force:
                failure = "collision"
            elif state.fallen or state.stuck:
                failure = "fall" if state.fallen else "stuck"
    return state, failure


def branch_commands(rng: np.random.Generator, count: int, horizon: int, dt: float, limits: CommandLimits,
                    stop_first: bool) -> np.ndarray:
    """``[count, horizon, 3]`` command sequences for the branches of one start: drawn as the episodes' own
    (:func:`~morobot.fdm.data.commands.sample_command_sequences`), the first one a stop if ``stop_first``."""
    commands = sample_command_sequences(rng, count, horizon, dt, limits)
    if stop_first:
        commands[0] = 0.0
    return commands


def drive_branches(sim: Any, commands: np.ndarray, step: Callable[[Any, np.ndarray], tuple[Any, Optional[str]]],
                   inside: Callable[[Any], bool]) -> list[dict[str, Any]]:
    """Drives each command sequence from the simulator's present state and returns to that state.

    Args:
        sim: a simulator with ``snapshot()`` and ``restore()``.
        commands: ``[K, T, 3]`` one sequence per branch.
        step: ``step(sim, cmd) -> (state, failure)``, one model step (:func:`drive_step` bound to the run).
        inside: whether a state is still inside the world's usable area; a branch that leaves it ends there.

    Returns:
        Per branch: ``poses`` (the pose after each step), ``failed_at`` (the failing step, or None),
        ``failure`` (its kind, or None) and ``commands`` (its sequence).

    Raises:
        ValueError: if the simulator cannot keep its state (no ``snapshot``).
    """
    if not (hasattr(sim, "snapshot") and hasattr(sim, "restore")):
        raise ValueError(f"{type(sim).__name__} cannot keep its state (snapshot/restore): no branches")
    kept = sim.snapshot()
    out = []
    for seq in np.asarray(commands, dtype=np.float64):
        sim.restore(kept)
        poses: list[np.ndarray] = []
        failed_at, failure = None, None
        for k, cmd in enumerate(seq):
            state, failure = step(sim, cmd)
            poses.append(state.pose.copy())
            if failure is not None:
                failed_at = k
                break
            if not inside(state):
                poses.pop()  # the step that reached the border is not a valid outcome
                break
        out.append({"poses": poses, "failed_at": failed_at, "failure": failure,
                    "commands": seq.astype(np.float32)})
    sim.restore(kept)
    return out
