"""``up`` and ``destroy`` against the local target: the library behind the commands.

``up`` runs the environment's Pulumi program in-process with the :class:`MotoBackend`, then
deletes what the spec no longer declares, then checks the result by describing every
resource back from the target (:mod:`modelops.local.smoke`: endpoints InService, alarms
wired to existing topics, schedules and pipeline roles).
``destroy`` removes everything ``up`` recorded, dependants first.

Example::

    env = attach_artifacts(load_environment("modelops.yaml", "dev"), build=True)
    outcome = up(env, Target.for_project(Path(".")), Path("."))
    [a.action for a in outcome.actions]       # ['created', 'created', ...]
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from modelops.graph.resource_types import BUCKET_OBJECT
from modelops.errors import ApplyError, UsageError
from modelops.local.backend import Action, FailHook, MotoBackend, describe_error, handler_for
from modelops.local.handlers import Context
from modelops.local.server import Target, status
from modelops.local.smoke import Check, smoke_checks
from modelops.local.recording import RECORD_CALLS_ENV, RecordingClients
from modelops.local.state import StateStore
from modelops.spec.envs import check
from modelops.spec.resolved import Environment
from modelops.graph.runtime import ProgramError, Registration, run
from modelops.components.environment import component_entities
from modelops.components import naming
from modelops.components.naming import REGISTRY_STACK, prefix
from modelops.components.registry import program as registry_program
from modelops.files import atomic_write
from modelops.registry import Registry, publish_served
from modelops.registry.pins import unpublished_cause, unpublished_error
from modelops.graph.split import paced_stack_program
from modelops.graph.stacks import Layout, layout

#: the embedded emulator serves TLS; a plain moto server denies object requests under the
#: TLS-only bucket policy (it does not evaluate conditions), see docs/local.md
PLAIN_MOTO_HINT = (
    "this moto server denied the request under the bucket's TLS-only policy: plain moto does not "
    "evaluate policy conditions. Use the embedded emulator (omit --endpoint-url) or run "
    "`python -m modelops.local.emulator --port PORT` and pass its https:// URL"
)


@dataclass
class Outcome:
    """What ``up`` or ``destroy`` did."""

    command: str
    project: str
    env: str
    target: str
    embedded: bool
    state_file: str
    actions: list[Action] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    #: something the user should know about the run (e.g. a discarded stale state)
    note: str = ""
    #: the stacks applied, in order
    stacks: list[str] = field(default_factory=list)
    #: seconds of each part of the run, in order (``up``: ``publish``, ``apply``,
    #: ``smoke_checks``; the command adds ``check``, the spec check before it)
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(a.action != "unchanged" for a in self.actions)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.actions:
            out[a.action] = out.get(a.action, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "project": self.project,
            "env": self.env,
            "target": self.target,
            "embedded": self.embedded,
            "state_file": self.state_file,
            "changed": self.changed,
            "counts": self.counts(),
            "seconds": round(self.seconds, 3),
            "resources": [
                {k: v for k, v in asdict(a).items() if k != "seconds"} for a in self.actions
            ],
            "checks": [asdict(c) for c in self.checks],
            "note": self.note,
            "stacks": list(self.stacks),
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
        }


def _entity_labels(env: Environment, registrations: list[Registration]) -> dict[str, str]:
    entities = component_entities(prefix(env.project, env.env), env)
    by_urn = {r.urn: r for r in registrations}
    labels: dict[str, str] = {}
    for reg in registrations:
        if not reg.custom:
            continue
        current: Registration | None = reg
        label = f"shared {env.project}"
        while current is not None:
            if not current.custom and current.name in entities:
                kind, name = entities[current.name]
                label = f"{kind} {name}"
                break
            current = by_urn.get(current.parent)
        labels[reg.urn] = label
    return labels


def _failure_message(backend: MotoBackend, state: StateStore, target: Target, cause: BaseException | None) -> str:
    failure = backend.failure
    if failure is None:
        return f"the program failed (no resource operation did): {cause}"
    error = failure.error
    text = describe_error(error)
    if (
        not target.embedded
        and isinstance(error, ClientError)
        and failure.type == BUCKET_OBJECT
        and ("AccessDenied" in text or "403" in text)
    ):
        text = f"{text} ({PLAIN_MOTO_HINT})"
    if isinstance(error, ApplyError):
        return str(error)
    return (
        f"{failure.operation} {failure.type} {failure.name} failed: {text}; what exists is recorded in "
        f"{state.path} - fix the cause and run the command again to resume"
    )


def up(
    env: Environment,
    target: Target,
    root: Path,
    *,
    stack: str | None = None,
    fail_at: FailHook | None = None,
    on_event: Callable[[str, Action], None] | None = None,
) -> Outcome:
    """Provision ``env`` (artifacts attached) to ``target``; apply only what changed.

    Every stack of the environment (``modelops.graph.stacks``), the shared one first, or
    only ``stack``. A group stack reads the shared stack's outputs as ``up`` recorded them.
    """
    started = time.monotonic()
    lay = layout(env)
    names = [lay.stack(stack).name] if stack is not None else _up_order(root, env, lay)
    moved = move_to_stacks(root, env, lay) if stack is None else ""
    published = publish_to_registry(env, target, root) if env.models else ""
    moved = _join(moved, published)
    phases = {"publish": time.monotonic() - started}
    # With several stacks, every stack's checks run once all are applied: a model's monitor
    # job reads its dataset's bucket, which a later stack may make (docs/stacks.md).
    deferred = len(names) > 1
    outcomes = [_up_stack(env, lay, name, target, root, fail_at=fail_at, on_event=on_event, check=not deferred)
                for name in names]
    checked = sum(o.phases.get("smoke_checks", 0.0) for o in outcomes)
    phases["apply"] = time.monotonic() - started - phases["publish"] - checked
    if deferred:
        checks_started = time.monotonic()
        with contextlib.ExitStack() as stack:
            ctx = Context(_clients(env, target, stack), env.region)
            shared_outputs = json.loads(outputs_path(root, env.project, lay.shared.name).read_text(encoding="utf-8"))
            topics = set(shared_outputs.get("topicArns", {}).values())
            for name, stack_outcome in zip(names, outcomes):
                stack_outcome.checks = smoke_checks(ctx, StateStore.read(root, env.project, name), topics)
        checked = time.monotonic() - checks_started
    phases["smoke_checks"] = checked
    outcome = _combined("up", env, outcomes)
    outcome.note = _join(moved, outcome.note)
    outcome.seconds = time.monotonic() - started
    outcome.phases = phases
    return outcome


def _up_order(root: Path, env: Environment, lay: Layout) -> list[str]:
    """Shared first; then a group stack that holds an entity now placed in another before the
    others (an owner change: its delete must come before the create, names are fixed)."""
    losing = []
    for spec in lay.groups:
        recorded = StateStore.read(root, env.project, spec.name).resources.values()
        if any(_placed(lay, r.entity) not in (None, spec.name) for r in recorded):
            losing.append(spec.name)
    return [lay.shared.name] + losing + [s.name for s in lay.groups if s.name not in losing]


def _placed(lay: Layout, label: str) -> str | None:
    kind, _, name = label.partition(" ")
    return lay.placement.get((kind, name)) if kind in ("dataset", "model", "monitor") else None


def move_to_stacks(root: Path, env: Environment, lay: Layout) -> str:
    """Move the records of entity resources out of the shared stack's state into their group
    stacks' (the local ``pulumi state move`` of docs/stacks.md): a state written before the
    environment was split keeps its resources, nothing is deleted and created again."""
    with StateStore.open(root, env.project, lay.shared.name) as shared:
        moving: dict[str, list[Any]] = {}
        for resource in shared.snapshot().values():
            placed = _placed(lay, resource.entity)
            if placed is not None and placed != lay.shared.name:
                moving.setdefault(placed, []).append(resource)
        for name, resources in sorted(moving.items()):
            urns = {r.urn for r in resources}
            with StateStore.open(root, env.project, name) as dest:
                dest.set_target(shared.target)
                for r in resources:
                    dest.put(dataclasses.replace(
                        r, urn=_restack(r.urn, lay.shared.name, name), parent=_restack(r.parent, lay.shared.name, name),
                        dependencies=[_restack(d, lay.shared.name, name) for d in r.dependencies if d in urns]))
            for r in resources:
                shared.remove(r.urn)
    count = sum(len(v) for v in moving.values())
    return f"moved the records of {count} resources into the stacks {', '.join(sorted(moving))}" if count else ""


def _restack(urn: str, old: str, new: str) -> str:
    head = f"urn:pulumi:{old}::"
    return f"urn:pulumi:{new}::{urn[len(head):]}" if urn.startswith(head) else urn


def outputs_path(root: Path, project: str, stack: str) -> Path:
    """Where ``up`` records a stack's outputs (what a stack reference to it reads)."""
    return StateStore.open(root, project, stack).path.with_suffix(".outputs.json")


def _references(root: Path, env: Environment, lay: Layout, stack: str, target: Target) -> dict[str, dict]:
    if lay.stack(stack).shared:
        return {}
    shared = StateStore.read(root, env.project, lay.shared.name)
    path = outputs_path(root, env.project, lay.shared.name)
    identity = target.identity or target.url
    if not shared.resources or shared.target != identity or not path.exists():
        raise UsageError(f"stack {stack} reads the outputs of stack {lay.shared.name}, which is not up at "
                         f"{target.url}: run `modelops up --env {env.env} --stack {lay.shared.name}` first")
    return {lay.shared.name: json.loads(path.read_text(encoding="utf-8"))}


def _apply(backend: MotoBackend, state: StateStore, target: Target, program: Callable[[], list[Registration]],
           label: Callable[[list[Registration]], dict[str, str]]) -> dict[str, str]:
    """Run a stack's ``program`` against ``backend``, record its labels (``label`` of its
    registrations), delete what it no longer declares; returns the labels. Every failure is an
    ApplyError naming what was and was not applied."""
    try:
        with _quiet_abandoned_tasks(backend):
            # the run's cycles are left to the next run or the process's end: up goes on
            # to its smoke checks and returns (a full collection here costs a second or more)
            registrations = program()
    except ProgramError as exc:
        backend.wait_idle()
        raise ApplyError(_failure_message(backend, state, target, exc.__cause__ or exc)) from exc
    except KeyboardInterrupt:
        # Ctrl-C: no create starts any more; those under way are recorded before the state closes
        backend.wait_idle()
        raise
    backend.wait_idle()
    if backend.failure is not None:  # a failure the SDK swallowed must not pass as success
        raise ApplyError(_failure_message(backend, state, target, None))
    labels = label(registrations)
    state.set_labels(labels)
    try:
        backend.finish({r.urn for r in registrations if r.custom})
    except ApplyError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ApplyError(_failure_message(backend, state, target, exc)) from exc
    return labels


def deploy_role(env: Environment, stack: str = "") -> str | None:
    """The role a stack of ``env`` is deployed as at the emulator, when the spec names accounts:
    the deploy role (``naming.deploy_role_name``) of the environment's account, or of the
    registry's for the ``registry`` stack, as CI deploys them in AWS. None (the emulator's
    default account) for a spec that names no account."""
    if env.registry_account is None:
        return None
    part = naming.partition(env.region)
    if stack == REGISTRY_STACK:
        return naming.role_arn(part, env.registry_account, naming.deploy_role_name(env.project, REGISTRY_STACK))
    return naming.role_arn(part, env.account or env.registry_account, naming.deploy_role_name(env.project, env.env))


def _clients(env: Environment, target: Target, stack: contextlib.ExitStack) -> Any:
    """The target's clients; recording every call where :data:`RECORD_CALLS_ENV` asks (closed with ``stack``)."""
    clients = target.clients(env.region, deploy_role(env))
    if os.environ.get(RECORD_CALLS_ENV):
        clients = recording = RecordingClients(clients, Path(os.environ[RECORD_CALLS_ENV]))
        stack.callback(recording.close)
    return clients


def _up_stack(env: Environment, lay: Layout, name: str, target: Target, root: Path, *,
              fail_at: FailHook | None, on_event: Callable[[str, Action], None] | None,
              check: bool = True) -> Outcome:
    with contextlib.ExitStack() as stack, StateStore.open(root, env.project, name) as state:
        note = _check_target(state, target)
        references = _references(root, env, lay, name, target)
        state.set_target(target.identity or target.url)
        backend = MotoBackend(Context(_clients(env, target, stack), env.region), state, fail_at=fail_at,
                              on_event=on_event)
        note = _join(note, _recover(backend, state, target))
        outputs: dict[str, Any] = {}
        # The program yields to the SDK after each entity, so the first creates go out
        # while it builds the rest (a synchronous program builds the whole graph first).
        try:
            labels = _apply(backend, state, target,
                            lambda: run(paced_stack_program(env, lay, name, _next_round, every=1,
                                                            on_outputs=outputs.update),
                                        backend, project=env.project, stack=name, collect=False, references=references),
                            lambda registrations: _entity_labels(env, registrations))
        except ApplyError as exc:
            # the program's registry lookup found no package: a spec problem at the pin
            missing = unpublished_cause(exc)
            if missing is not None:
                raise unpublished_error(env, missing) from None
            raise
        atomic_write(outputs_path(root, env.project, name), json.dumps(outputs, indent=1, sort_keys=True))
        actions = _ordered(backend.actions, labels)
        outcome = Outcome("up", env.project, env.env, target.url, target.embedded, str(state.path), actions,
                          note=note, stacks=[name])
        if check:
            checks_started = time.monotonic()
            topics = set(references.get(lay.shared.name, {}).get("topicArns", {}).values())
            outcome.checks = smoke_checks(backend.ctx, state, topics)
            outcome.phases["smoke_checks"] = time.monotonic() - checks_started
    return outcome


def up_registry(env: Environment, target: Target, root: Path, *,
                on_event: Callable[[str, Action], None] | None = None) -> Outcome:
    """Provision the project's ``registry`` stack (:mod:`modelops.components.registry`) to ``target``.

    What ``pulumi up --stack registry`` does in AWS; its state is ``<project>-registry.json``
    beside the environments'. Applying an unchanged registry changes nothing.

    Example::

        up_registry(env, Target.for_project(Path(".")), Path(".")).stacks    # ['registry']
    """
    started = time.monotonic()
    name = REGISTRY_STACK
    with StateStore.open(root, env.project, name) as state:
        note = _check_target(state, target)
        state.set_target(target.identity or target.url)
        backend = MotoBackend(Context(target.clients(env.region, deploy_role(env, name)), env.region), state,
                              on_event=on_event)
        note = _join(note, _recover(backend, state, target))
        # the project's environments, when some live in other accounts: the registry grants them read
        envs = list(check(env.spec_file)[1].values()) if env.registry_account is not None else []
        labels = _apply(backend, state, target,
                        lambda: run(registry_program(env, envs), backend, project=env.project, stack=name, collect=False),
                        lambda registrations: {r.urn: f"registry {env.project}" for r in registrations if r.custom})
        outcome = Outcome("up", env.project, name, target.url, target.embedded, str(state.path),
                          _ordered(backend.actions, labels), note=note, stacks=[name])
        outcome.checks = smoke_checks(backend.ctx, state)
    outcome.seconds = time.monotonic() - started
    return outcome


def local_registry(env: Environment, target: Target, root: Path,
                   on_applied: Callable[[Outcome], None] | None = None) -> Registry:
    """The project's registry at the local ``target``, its stack applied first when this working
    copy made it or none exists there (a registry another working copy made is used as it is)."""
    registry = Registry.at(target.clients(env.region, deploy_role(env, REGISTRY_STACK)), env.project, target.url,
                           account=env.registry_account)
    if registry_recorded(root, env.project, target) or not registry.exists():
        outcome = up_registry(env, target, root)
        failed = [c for c in outcome.checks if not c.ok]
        if failed:
            raise ApplyError(f"the registry stack failed its smoke check {failed[0].name}: {failed[0].detail}")
        if on_applied is not None:
            on_applied(outcome)
    return registry


def publish_to_registry(env: Environment, target: Target, root: Path) -> str:
    """What the environment serves, published to the local registry before its models are created:
    locally, ``up`` is also the CI job that publishes every build (docs/registry.md). A note of
    what was published ("" when the registry held every version already)."""
    registry = local_registry(env, target, root)
    try:
        outcomes = publish_served(env, root, registry)
    except ClientError as exc:
        text = describe_error(exc)
        if not target.embedded and ("AccessDenied" in text or "403" in text):
            text = f"{text} ({PLAIN_MOTO_HINT})"
        raise ApplyError(f"publishing {env.env}'s packages to the registry s3://{registry.bucket} failed: {text}; "
                         f"nothing of {env.env} was created - fix the cause and run the command again") from exc
    new = [f"{o.model} {o.digest[:19]}…" for o in outcomes if o.changed]
    return f"published to the registry s3://{registry.bucket}: {', '.join(new)}" if new else ""


def registry_recorded(root: Path, project: str, target: Target) -> bool:
    """Whether this working copy's state records the registry stack at ``target``."""
    state = StateStore.read(root, project, REGISTRY_STACK)
    return bool(state.resources) and state.target == (target.identity or target.url)


def _combined(command: str, env: Environment, outcomes: list[Outcome]) -> Outcome:
    first = outcomes[0]
    out = Outcome(command, env.project, env.env, first.target, first.embedded, first.state_file,
                  stacks=[s for o in outcomes for s in o.stacks])
    for o in outcomes:
        out.actions += o.actions
        out.checks += o.checks
    out.note = _join(*(o.note for o in outcomes))
    return out


async def _next_round() -> None:
    """One round of the event loop: the registrations made so far take their next step."""
    await asyncio.sleep(0)


def destroy(
    env: Environment,
    target: Target,
    root: Path,
    *,
    stack: str | None = None,
    fail_at: FailHook | None = None,
    on_event: Callable[[str, Action], None] | None = None,
    empty_buckets: bool = False,
) -> Outcome:
    """Remove everything ``up`` recorded for ``env``, dependants first; protected ones are refused.

    Every stack, the group stacks first and the shared one last, or only ``stack``.
    A bucket holding objects ModelOps did not put there stops the run, unless ``empty_buckets``.
    """
    started = time.monotonic()
    lay = layout(env)
    names = [lay.stack(stack).name] if stack is not None else [s.name for s in reversed(lay.stacks)]
    if stack is None:  # refuse before anything is deleted in any stack
        for name in names:
            _refuse_protected(env, StateStore.read(root, env.project, name).resources)
    elif lay.stack(stack).shared:
        dependants = [s.name for s in lay.groups if StateStore.read(root, env.project, s.name).resources]
        if dependants:
            raise UsageError(f"stack {stack} is read by {', '.join(dependants)}: destroy them first "
                             f"(or omit --stack to destroy the whole environment)")
    outcomes = [_destroy_stack(env, name, target, root, fail_at=fail_at, on_event=on_event,
                               empty_buckets=empty_buckets) for name in names]
    outcome = _combined("destroy", env, outcomes)
    outcome.seconds = time.monotonic() - started
    return outcome


def _refuse_protected(env: Environment, resources: dict[str, Any]) -> None:
    protected = sorted(f"{r.name} ({r.type})" for r in resources.values() if r.protect)
    if protected:
        overlay = env.overlay_file or f"stacks/{env.env}.yaml"
        raise UsageError(
            f"{env.project}-{env.env} has protected resources: {', '.join(protected)}; nothing was destroyed. "
            f"Remove `protect: true` from {overlay} and run `modelops up --env {env.env}` first"
        )


def _destroy_stack(env: Environment, name: str, target: Target, root: Path, *, fail_at: FailHook | None,
                   on_event: Callable[[str, Action], None] | None, empty_buckets: bool) -> Outcome:
    with StateStore.open(root, env.project, name) as state:
        note = _check_target(state, target)
        resources = state.snapshot()
        _refuse_protected(env, resources)
        backend = MotoBackend(Context(target.clients(env.region, deploy_role(env, name)), env.region,
                                      empty_buckets=empty_buckets), state,
                              fail_at=fail_at, on_event=on_event)
        note = _join(note, _recover(backend, state, target))
        resources = state.snapshot()
        pending = {f"pending:{i}": r for i, r in enumerate(state.pending_snapshot())}
        try:
            backend.delete_all({**resources, **pending})
        except Exception as exc:  # noqa: BLE001
            raise ApplyError(_failure_message(backend, state, target, exc)) from exc
        outputs_path(root, env.project, name).unlink(missing_ok=True)
        labels = {urn: r.entity for urn, r in resources.items()}
        outcome = Outcome("destroy", env.project, env.env, target.url, target.embedded, str(state.path),
                          _ordered(backend.actions, labels), note=note, stacks=[name])
        deleted = [a for a in outcome.actions if a.urn in resources and a.action == "deleted"]
        with ThreadPoolExecutor(max_workers=8) as pool:
            there = list(pool.map(lambda a: _still_there(backend.ctx, resources[a.urn]), deleted))
        outcome.checks = [
            Check(f"{a.type.split(':')[1]} {a.label} gone", ok=not still) for a, still in zip(deleted, there)
        ]
    return outcome


def nothing_to_destroy(env: Environment, root: Path, stack: str | None = None) -> Outcome | None:
    """What destroying ``env`` at the embedded emulator does when none is running: nothing,
    known without starting one (whatever a stopped emulator held went with it).

    None when the emulator of ``root`` is running (destroy it there). A state recording
    resources at an ``--endpoint-url`` server is refused, as :func:`destroy` would.
    """
    if status(root) is not None:
        return None
    lay = layout(env)
    names = [lay.stack(stack).name] if stack is not None else [s.name for s in lay.stacks]
    recorded = 0
    for name in names:
        state = StateStore.read(root, env.project, name)
        count = len(state.resources) + len(state.pending)
        if count and state.target and "#pid=" not in state.target:
            raise UsageError(
                f"{state.path} records resources at {state.target}, not the embedded emulator; "
                f"run destroy with --endpoint-url {state.target}"
            )
        recorded += count
    note = f"the emulator that held {recorded} recorded resources was stopped: they went with it" if recorded else ""
    return Outcome("destroy", env.project, env.env, "", True,
                   str(StateStore.open(root, env.project, names[0]).path), note=note, stacks=names)


def _recover(backend: MotoBackend, state: StateStore, target: Target) -> str:
    """Remove what creates interrupted by a killed run may have left (see modelops.local.state)."""
    try:
        removed = backend.recover_interrupted()
    except Exception as exc:  # noqa: BLE001 - reported with its resource
        raise ApplyError(_failure_message(backend, state, target, exc)) from exc
    if not removed:
        return ""
    return (f"an earlier run was stopped between creating and recording {', '.join(removed)}; "
            f"removed {'it' if len(removed) == 1 else 'them'} before applying")


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


@contextlib.contextmanager
def _quiet_abandoned_tasks(backend: MotoBackend | None = None) -> Iterator[None]:
    """After a failed resource, the SDK leaves tasks whose exception nobody reads; asyncio
    logs each with a traceback when collected. The failure is reported once, as an ApplyError.

    Only a failed run leaves such tasks: a full collection (a noticeable pause after a large
    program) is made then, not after every successful run.
    """
    logger = logging.getLogger("asyncio")
    previous = logger.disabled
    logger.disabled = True
    failed = True
    try:
        yield
        failed = backend is None or backend.failure is not None
    finally:
        if failed:
            gc.collect()
        logger.disabled = previous


def _check_target(state: StateStore, target: Target) -> str:
    """A note when the state was discarded; a UsageError when it belongs to another server."""
    identity = target.identity or target.url
    if not (state.resources or state.pending) or not state.target or state.target == identity:
        return ""
    if target.embedded and "#pid=" in state.target:
        # the embedded emulator that held these resources was stopped: they are gone with it
        count = len(state.resources)
        state.reset()
        return f"the emulator that held {count} recorded resources was stopped; starting afresh"
    raise UsageError(
        f"{state.path} records resources at {state.target.split('#')[0]}, not {target.url}; use the same "
        "--endpoint-url (or run destroy there first)"
    )


def _ordered(actions: dict[str, Action], labels: dict[str, str]) -> list[Action]:
    for urn, action in actions.items():
        action.entity = labels.get(urn, action.entity)
    return sorted(actions.values(), key=lambda a: (a.entity, a.type, a.name))


def _still_there(ctx: Context, resource: Any) -> bool:
    try:
        return handler_for(resource.type).exists(ctx, resource.id, resource.outputs)
    except (ClientError, BotoCoreError):
        return False
