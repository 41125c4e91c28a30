"""Independent pieces of one command's work in forked processes (Linux): a render's shards,
a review's environments.

Example::

    results = fork_map(work, items)   # work(items[0]) here, the others in forked processes
    if results is None:               # a forked one failed: do it all here, errors as usual
        results = [work(item) for item in items]

Why not ``concurrent.futures.ProcessPoolExecutor``: it pickles the callable and its
arguments for every task, and our work is a closure over what this process has already
loaded (a resolved spec, a rendered base); pickling that costs more than the render it
shares out. A fork after loading hands each child that memory for free, and only the
result travels back (over a pipe between parent and child, never through a file).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
import warnings
from typing import Any, Callable, Sequence, TypeVar

from modelops.errors import UsageError
from modelops.perf import no_gc

T = TypeVar("T")


#: environment variable: how many processes one render may use (1: this process only).
#: Unset: the CPUs this process may run on, for environments of PARALLEL_MIN_MODELS models or more.
RENDER_JOBS_ENV = "MODELOPS_RENDER_JOBS"
#: smaller environments render in one process: below it a shard's fixed costs (a fork, a run
#: of the mock runtime, its graph sent back) outweigh its share of the work
PARALLEL_MIN_MODELS = 32


def process_budget(models: int) -> int:
    """How many processes a piece of work over ``models`` models may use.

    :data:`RENDER_JOBS_ENV` when set; else the CPUs available to this process, for
    :data:`PARALLEL_MIN_MODELS` models or more with no other thread running (a forked
    process inherits other threads' locks as they were). 1 where processes are not forked
    (anything but Linux).
    """
    if not sys.platform.startswith("linux"):
        return 1
    setting = jobs_setting()
    if setting is not None:
        return setting
    if models < PARALLEL_MIN_MODELS or threading.active_count() > 1:
        return 1
    return len(os.sched_getaffinity(0))


def jobs_setting() -> int | None:
    """The process count :data:`RENDER_JOBS_ENV` sets, None when unset; a UsageError when it
    is not a whole number of 1 or more (checked by every command that renders, even when the
    render cache spares it the render)."""
    raw = os.environ.get(RENDER_JOBS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError(f"{RENDER_JOBS_ENV}={raw!r}: expected a whole number of processes, 1 or more "
                         f"(1 renders in this process); unset it to use every CPU")
    return int(raw)


def fork_map(work: Callable[[T], Any], items: Sequence[T], *,
             here: Callable[[T], Any] | None = None) -> list[Any] | None:
    """``work`` of each item, in order: the first item in this process (with ``here`` when
    given), each other one in a forked process that sends its result back pickled.

    None when a forked call failed (it raised, its result did not pickle, it was killed):
    the caller then does the work in this process, which reports any error as it always
    does. An exception of the call made here propagates. Either way, and on Ctrl-C, the
    forked processes still running are killed: none outlives the call.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    children: list[tuple[int, int]] = []  # (pid, read end); -1 once reaped / closed
    try:
        for item in items[1:]:
            read_end, write_end = os.pipe()
            with warnings.catch_warnings():  # Python 3.12+ warns of a fork beside other threads
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the forked process (its coverage is not collected)
                for _, other in children:
                    os.close(other)
                _child(work, item, read_end, write_end)
            os.close(write_end)
            children.append((pid, read_end))
        results = [(here or work)(items[0])]
        for index, (pid, read_end) in enumerate(children):
            with os.fdopen(read_end, "rb") as handle:
                children[index] = (pid, -1)  # the handle closes it
                data = handle.read()
            _, status = os.waitpid(pid, 0)
            children[index] = (-1, -1)  # reaped
            if os.waitstatus_to_exitcode(status) != 0 or not data:
                return None
            with no_gc():  # results are large acyclic lists and dicts
                results.append(pickle.loads(data))
        return results
    finally:
        for pid, read_end in children:
            if read_end >= 0:
                os.close(read_end)
            if pid > 0:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)


def _child(work: Callable[[T], Any], item: T, read_end: int, write_end: int) -> None:
    """In a forked process: write ``work(item)`` pickled to ``write_end`` and exit.

    Exits 0 once everything is written, 1 on any failure; never returns, and runs none of
    the parent's exit handlers.
    """
    code = 1
    try:
        os.close(read_end)
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once: the parent cleans up
        result = work(item)
        with no_gc():
            data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_end, "wb") as handle:
            handle.write(data)
        code = 0
    finally:
        os._exit(code)


def share_out(work: Callable[[list[T], int | None], list[Any]], items: list[T], models: int) -> list[Any]:
    """``work(chunk, jobs)`` over ``items`` shared out over processes: one result per item, in
    the items' order.

    Items of work over ``models`` models (the largest) are shared out over one process per
    CPU and one more (three environments on two CPUs finish together, not two after one),
    and ``jobs`` is each one's share of the CPUs for its renders; with one item, small
    ones, or one process allowed (:func:`process_budget`), ``work`` gets
    them all here with ``jobs`` None (renders use their default). A failed forked chunk
    makes all the work run here, which reports its error as usual.

    Example::

        reviews = share_out(lambda chunk, jobs: [review(e, jobs) for e in chunk], envs, 1000)
    """
    budget = process_budget(models) if len(items) > 1 else 1
    processes = min(len(items), budget + 1) if budget > 1 else 1
    if processes > 1:
        jobs = max(1, budget // processes)
        chunks = [items[i::processes] for i in range(processes)]
        done = fork_map(lambda chunk: work(chunk, jobs), chunks)
        if done is not None:
            results: list[Any] = [None] * len(items)
            for i, chunk_results in enumerate(done):
                results[i::processes] = chunk_results
            return results
    return work(items, None)
