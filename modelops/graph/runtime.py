"""Run the ModelOps Pulumi program in-process under the SDK's mock runtime.

The Pulumi CLI and engine are not needed: ``pulumi.runtime.set_mocks`` replaces the engine
with a monitor in this process. A :class:`Backend` decides what a registration *does*:
the render backend records it with deterministic fake IDs (``plan``, ``diff``); the local
AWS backend applies it to moto through boto3 (``up``). Both see the same program.

Example::

    graph = run(lambda: build_environment(env), RenderBackend(), project="churn", stack="dev")
"""

from __future__ import annotations

import asyncio
import gc
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Protocol

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func

from modelops.graph.registration import Registration

COMPONENT_PREFIXES = ("modelops:",)
#: the type of ``pulumi.StackReference`` (a read of another stack's outputs, not an AWS resource)
STACK_REFERENCE = "pulumi:pulumi:StackReference"
#: how long a Ctrl-C waits for the program to end before it is raised anyway
INTERRUPT_GRACE_SECONDS = 5.0
#: generation-0 threshold of the garbage collector while a program runs (default 700)
GC_THRESHOLD = 100_000
#: a run ended with ``collect=False``: its cycles are collected before the next run (or never,
#: when the process ends first: the command line exits without a teardown, see cli.exit_now)
_uncollected = False




class Backend(Protocol):
    """What a registration does: ``create`` returns the resource's id and output state."""

    def create(self, reg: Registration) -> tuple[str, dict[str, Any]]: ...

    def call(self, token: str, args: dict[str, Any]) -> dict[str, Any]: ...


class Interrupted(Exception):
    """A registration refused because the run was interrupted (Ctrl-C)."""


class MissingReference(Exception):
    """The program reads the outputs of a stack that has none (not deployed, not rendered)."""


class _Mocks(pulumi_mocks.Mocks):
    def __init__(self, backend: Backend, current: threading.local, stop: threading.Event,
                 references: Mapping[str, dict[str, Any]]) -> None:
        self._backend = backend
        self._current = current
        self._stop = stop
        self._references = references

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        if self._stop.is_set():
            raise Interrupted(f"interrupted before {args.name} was registered")
        if args.typ == STACK_REFERENCE:
            # what the engine reads from the referenced stack's state: here, the outputs the
            # caller recorded for it (its render, or its local state)
            stack = args.inputs.get("name") or args.resource_id
            outputs = self._references.get(str(stack).rsplit("/", 1)[-1])
            if outputs is None:
                raise MissingReference(f"stack {stack} has no outputs yet: deploy it first")
            return stack, {"name": stack, "outputs": dict(outputs), "secretOutputNames": []}
        reg: Registration = self._current.registration
        # The monitor has deserialised the inputs already: keep them rather than decode twice.
        reg.inputs = args.inputs
        if not reg.custom:
            return "", dict(args.inputs)
        return self._backend.create(reg)

    def call(self, args: pulumi_mocks.MockCallArgs):
        if self._stop.is_set():
            raise Interrupted(f"interrupted before {args.token} was called")
        return self._backend.call(args.token, dict(args.args))


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Reads what ``MockResourceArgs`` lacks (parent, dependencies, options) from the request."""

    def __init__(self, mocks: _Mocks, current: threading.local) -> None:
        super().__init__(mocks)
        self._current = current
        self._lock = threading.Lock()
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        urn = self.make_urn(request.parent, request.type, request.name)
        reg = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            inputs={},
            parent=request.parent,
            dependencies=sorted(set(request.dependencies)),
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            delete_before_replace=bool(request.deleteBeforeReplace),
            ignore_changes=list(request.ignoreChanges),
            replace_on_changes=list(request.replaceOnChanges),
        )
        self._current.registration = reg
        try:
            response = super().RegisterResource(request)
        finally:
            self._current.registration = None
        reg.id = response.id
        reg.outputs = self.resources[urn].state if urn in self.resources else {}
        with self._lock:
            self.registrations.append(reg)
        return response


_SETTLED = threading.local()


async def settle() -> None:
    """Wait until every registration the running program has started is done.

    For programs that pace themselves (``modelops.components.environment.paced_program``): awaited
    between entities, it keeps the registrations in flight, and the memory they hold, few.
    RPC failures are not raised here: the SDK's final wait reports them as it always does.
    """
    await asyncio.sleep(0)  # registrations just scheduled start (and list their RPC)
    rpcs = pulumi_settings.SETTINGS.rpc_manager.rpcs  # the list _run clears at the start of a run
    if getattr(_SETTLED, "rpcs", None) is not rpcs:  # a new run (each run has a list of its own)
        _SETTLED.rpcs, _SETTLED.seen = rpcs, 0
    pending, _SETTLED.seen = rpcs[_SETTLED.seen:], len(rpcs)
    if pending:
        await asyncio.wait(pending)


class ProgramError(Exception):
    """The program (or a backend call it triggered) failed; ``__cause__`` holds the original."""


def run(
    program: Callable[[], None],
    backend: Backend,
    *,
    project: str,
    stack: str,
    preview: bool = False,
    collect: bool = True,
    references: Mapping[str, dict[str, Any]] | None = None,
) -> list[Registration]:
    """Run ``program`` under the mock runtime with ``backend``; return every registration in order.

    ``references``: stack name -> outputs, what a ``pulumi.StackReference`` to that stack reads
    (the last part of a fully qualified ``org/project/stack`` name is looked up).

    The program runs on a thread of its own. The SDK records a stack trace with every
    registration, and its cost grows with the depth of the stack: started from a fresh
    thread, the stack holds the program's frames only, not the command line's (a tenth of
    a render's time). A fresh thread also gives every run a fresh context (the SDK's root
    stack lives in a context variable), released with it. On Ctrl-C no registration
    starts any more (each fails as :class:`Interrupted`) and KeyboardInterrupt is raised
    here once the program has ended, or after :data:`INTERRUPT_GRACE_SECONDS`.

    The run's reference cycles are collected when it ends; with ``collect=False`` (a
    caller about to finish, like ``up``) they are left to the start of the next run, or
    to the end of the process (a full collection of a large run takes a second or more).
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()
    stop = threading.Event()

    def target() -> None:
        try:
            outcome["registrations"] = _run(program, backend, stop, project=project, stack=stack, preview=preview,
                                            collect=collect, references=references or {})
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread as is
            outcome["error"] = exc
        finally:
            done.set()

    # A daemon: after Ctrl-C the caller goes on (and the process may exit) without waiting
    # for a program that does not stop.
    thread = threading.Thread(target=target, name="modelops-program", daemon=True)
    thread.start()
    try:
        done.wait()  # an Event, not Thread.join: an interrupted join may report a running thread stopped
    except KeyboardInterrupt:
        # No registration starts from now on; the program ends as soon as its code does.
        stop.set()
        done.wait(INTERRUPT_GRACE_SECONDS)
        raise
    if "error" in outcome:
        raise outcome.pop("error")
    return outcome["registrations"]


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending on ``loop`` (not running) and let them end."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _run(
    program: Callable[[], None],
    backend: Backend,
    stop: threading.Event,
    *,
    project: str,
    stack: str,
    preview: bool,
    collect: bool = True,
    references: Mapping[str, dict[str, Any]] | None = None,
) -> list[Registration]:
    global _uncollected
    if _uncollected:  # an earlier run's cycles, before this run (see the finally clause)
        _uncollected = False
        gc.collect()
    # What the process held before the run (a diff's cached graphs, other environments) is
    # not the run's: frozen, the collections during and after it scan the run's objects only
    # (a full collection after each small render of a 1,000-model diff took a second).
    gc.freeze()
    current = threading.local()
    # A render allocates millions of short-lived objects (futures, outputs, protobufs) in
    # few reference cycles: the default collector thresholds spend a fifth of the run in
    # generation-0/1 collections. Collect less often during the run (the cycles are still
    # collected, below and whenever the larger thresholds are reached).
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], GC_THRESHOLD), max(thresholds[1], 20), thresholds[2])
    mocks = _Mocks(backend, current, stop, references or {})
    monitor = _RecordingMonitor(mocks, current)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # The SDK serves registrations on the loop's default executor, where its mock monitor
    # gives each worker thread an event loop of its own and never closes it: finalised by
    # the collector after the run, in any order with its sockets, such a loop printed
    # "Exception ignored ... Invalid file descriptor: -1". Each worker gets its loop here,
    # and the run closes them once the workers are done.
    worker_loops: list[asyncio.AbstractEventLoop] = []

    def worker_loop() -> None:
        worker = asyncio.new_event_loop()
        asyncio.set_event_loop(worker)
        worker_loops.append(worker)  # list.append is atomic

    loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="modelops-rpc", initializer=worker_loop))
    try:
        # set_mocks creates the run's root Stack only when none is set in this context (a
        # fresh thread's is empty): reset it anyway, for a caller on a reused thread.
        pulumi_settings.ROOT.set(None)
        pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
        try:
            # What ``pulumi.runtime.test`` does, without awaiting the program's return value
            # from inside the loop: that nested wait re-queues one placeholder callback per
            # callback ready at the time (hundreds of thousands in a large render).
            pulumi_settings.SETTINGS.rpc_manager.clear()
            pulumi_settings.SETTINGS.outputs.clear()
            loop.run_until_complete(run_pulumi_func(program))
        except Exception as exc:  # the SDK wraps failures from any thread; keep the first cause
            raise ProgramError(str(exc)) from exc
    finally:
        # The run's worker threads (the loop's default executor) end with it: a process
        # that renders several times (diff, validate) does not accumulate them.
        # A failed run ends with the SDK's tasks still pending (never started, or waiting on
        # the failed one): cancelled here, as asyncio.run does, not collected unstarted later
        # ("coroutine 'Output.apply.<locals>.run' was never awaited").
        _cancel_pending(loop)
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        for worker in worker_loops:
            _cancel_pending(worker)
            worker.close()
        # The SDK's worker threads kept loops of their own that reference this run's
        # objects; collecting them now, not in the middle of the next run (where their
        # finalisers print errors), keeps repeated runs in one process quiet.
        asyncio.set_event_loop(None)
        gc.set_threshold(*thresholds)
        if collect:
            gc.collect()
        else:
            _uncollected = True
        gc.unfreeze()  # back in the oldest generation, collected as usual from now on
    return monitor.registrations

