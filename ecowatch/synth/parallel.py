"""Run independent render jobs in order, in-process or in a pool of spawned worker processes.

Each worker builds its own state (renderer, scene cache) once from picklable arguments; results
come back in job order, so what is written never depends on the number of workers.
"""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")
ProgressFn = Callable[[int, int], None]

_STATE: Any = None


def _pool_init(make_state: Callable[..., Any], args: tuple) -> None:
    global _STATE
    import cv2

    cv2.setNumThreads(1)  # the pool is the parallelism
    _STATE = make_state(*args)


def _pool_execute(execute: Callable[[Any, Any], Any], job: Any) -> Any:
    return execute(_STATE, job)


def run_jobs(
    jobs: Sequence[Job],
    *,
    workers: int,
    make_state: Callable[..., Any],
    state_args: tuple,
    execute: Callable[[Any, Job], Result],
    progress: ProgressFn | None = None,
) -> Iterator[Result]:
    """Yield ``execute(state, job)`` for every job, in job order.

    Args:
        jobs: the jobs (picklable).
        workers: 0 runs in-process; otherwise the number of spawned worker processes.
        make_state: module-level function building the per-process state from ``state_args``.
        state_args: picklable arguments of ``make_state``.
        execute: module-level function running one job with the state.
        progress: called as ``progress(done, total)`` after each job.
    """
    total = len(jobs)
    pool = None
    if workers == 0:
        state = make_state(*state_args)
        results: Iterator = (execute(state, job) for job in jobs)
    else:
        pool = multiprocessing.get_context("spawn").Pool(
            workers, initializer=_pool_init, initargs=(make_state, state_args)
        )
        chunk = max(1, min(16, total // (workers * 8)))
        results = pool.imap(functools.partial(_pool_execute, execute), jobs, chunksize=chunk)
    try:
        for done, result in enumerate(results, start=1):
            if progress is not None:
                progress(done, total)
            yield result
    finally:
        if pool is not None:
            pool.close()
            pool.join()
