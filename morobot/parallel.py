"""Run independent tasks in parallel: Ray tasks (a local Ray instance, or a cluster at ``ray_address``),
or local worker processes, or in this process; results come back as they finish.

Ray is the default for more than one worker, so a user with more machines scales data collection and
evaluation out by starting a Ray cluster and passing ``--ray-address`` (``auto`` or ``host:port``),
without code changes. Each task is a picklable function and argument; a task that raises ends the run
with that error (the callers write their results atomically and resume, so nothing finished is lost).
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any, Callable, Iterator, Sequence

BACKENDS = ("ray", "processes")


def _call(fn: Callable[[Any], Any], task: Any) -> Any:
    """The Ray task: ``fn`` travels by reference (any importable function, builtins included)."""
    return fn(task)


def _ray_results(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int, address: str) -> Iterator[Any]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:  # a local instance sized to the workers asked for
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    remote = ray.remote(num_cpus=1, max_retries=0)(_call)
    pending = [remote.remote(fn, task) for task in tasks]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


def run_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int = 1, backend: str = "ray",
              ray_address: str = "", initializer: Callable[[], None] | None = None) -> Iterator[Any]:
    """``fn(task)`` for every task, yielded in completion order.

    Args:
        fn: a module-level (picklable) function.
        tasks: its arguments.
        workers: parallel workers; 1 runs in this process (unless ``ray_address`` is given).
        backend: ``ray`` or ``processes`` (a local spawn pool).
        ray_address: join this Ray cluster (``auto``, ``host:port``) instead of starting a local instance.
        initializer: run once in each local worker process (``processes`` only).

    Raises:
        ValueError: unknown backend or ``workers < 1``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if ray_address or (backend == "ray" and workers > 1):
        yield from _ray_results(fn, tasks, int(workers), ray_address)
        return
    if workers == 1:
        for task in tasks:
            yield fn(task)
        return
    pool = mp.get_context("spawn").Pool(int(workers), initializer=initializer)
    try:
        yield from pool.imap_unordered(fn, tasks)
    finally:
        pool.terminate()
        pool.join()
