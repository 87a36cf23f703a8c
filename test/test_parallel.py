"""morobot.parallel: tasks in this process, in a local pool, or as Ray tasks; results as they finish.
(The task functions come from the standard library: Ray workers import a task's module by name.)"""

import math
import operator

import pytest

from morobot.parallel import run_tasks


@pytest.mark.parametrize("workers,backend", [(1, "ray"), (2, "processes"), (2, "ray")])
def test_every_task_runs_once(workers, backend):
    assert sorted(run_tasks(operator.neg, range(6), workers, backend)) == [-5, -4, -3, -2, -1, 0]


@pytest.mark.parametrize("backend", ["processes", "ray"])
def test_a_failing_task_ends_the_run_with_its_error(backend):
    with pytest.raises(Exception, match="math domain error"):
        list(run_tasks(math.sqrt, [4.0, 9.0, -1.0, 16.0], 2, backend))


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        list(run_tasks(operator.neg, [1], 2, "dask"))
    with pytest.raises(ValueError, match="workers"):
        list(run_tasks(operator.neg, [1], 0))
