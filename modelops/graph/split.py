"""The stacks of a split environment as Pulumi programs and as graphs.

:func:`stack_args` says what one stack builds (see :mod:`modelops.graph.stacks`): the shared
stack builds the shared pieces and the dashboard, a group stack its entities, reading the
shared pieces from a ``pulumi.StackReference`` to the shared stack. :func:`stack_program`
is the Pulumi program of one stack (``stacks/__main__.py``), :func:`paced_stack_program`
the same registrations, paced, for the in-process runtime (local ``up``, :func:`render_stack`).

:func:`split_graph` cuts an environment's whole render into its stacks' graphs: every
resource of an entity goes to that entity's stack, every shared one to the shared stack.
The per-stack programs register the same resources with the same inputs (a test holds
them to it); only dependencies on the shared pieces become reads of the reference.

Example::

    lay = layout(env)
    graphs = split_graph(render(env), lay)
    graphs["dev.ml-platform"].counts()
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Mapping

import pulumi

from modelops.errors import UsageError

from modelops.components.environment import ENVIRONMENT_TYPE, EnvironmentArgs, Selection, SharedInputs, component_entities
from modelops.components.environment import paced_program, program
from modelops.components.naming import prefix
from modelops.graph.render import Graph, RenderBackend
from modelops.graph.runtime import Registration, run, settle
from modelops.graph.stacks import Layout, StackSpec
from modelops.spec.resolved import Environment

#: the name of the stack reference resource in a group stack
REFERENCE_NAME = "shared"


def reference_name(stack: str) -> str:
    """The fully qualified name of a stack of this project (``org/project/stack``), as the
    engine resolves it on any backend (Pulumi Cloud, or a self-managed one's ``organization``)."""
    return f"{pulumi.get_organization() or 'organization'}/{pulumi.get_project()}/{stack}"


def _shared_inputs(shared_stack: str) -> Callable[[], SharedInputs]:
    def make() -> SharedInputs:
        ref = pulumi.StackReference(REFERENCE_NAME, stack_name=reference_name(shared_stack))
        return SharedInputs(
            kms_key_arn=ref.get_output("kmsKeyArn"),
            artifacts_bucket=ref.get_output("artifactsBucket"),
            glue_database=ref.get_output("glueDatabase"),
            topic_arns=ref.get_output("topicArns"),
        )

    return make


def _selection(spec: StackSpec) -> Selection:
    return Selection(datasets=spec.datasets, models=spec.models, monitors=spec.monitors)


def stack_args(env: Environment, lay: Layout, stack: str) -> Callable[[], EnvironmentArgs]:
    """What the program of ``stack`` builds (called inside the program: a group stack's
    arguments register the stack reference)."""
    spec = lay.stack(stack)
    if spec.shared:
        return lambda: EnvironmentArgs(env=env, entities=Selection(), dashboards=True)
    shared = _shared_inputs(lay.shared.name)
    return lambda: EnvironmentArgs(env=env, entities=_selection(spec), dashboards=False, shared=shared())


def stack_program(env: Environment, lay: Layout, stack: str) -> Callable[[], None]:
    """The Pulumi program of one stack of ``env`` (``stacks/__main__.py``).

    Example::

        stack_program(env, layout(env), "dev.ml-platform")()
    """
    return program(env, stack_args(env, lay, stack))


def paced_stack_program(env: Environment, lay: Layout, stack: str, pace: Callable[[], Awaitable[None]],
                        every: int = 8, on_outputs: Callable[[dict], None] | None = None
                        ) -> Callable[[], Awaitable[None]]:
    """:func:`stack_program`, paced (see :func:`modelops.components.environment.paced_program`)."""
    spec = lay.stack(stack)
    if spec.shared:
        return paced_program(env, pace, every, entities=Selection(), dashboards=True, on_outputs=on_outputs)
    return paced_program(env, pace, every, entities=_selection(spec), dashboards=False,
                         shared=_shared_inputs(lay.shared.name), on_outputs=on_outputs)


def render_stack(env: Environment, lay: Layout, stack: str,
                 references: Mapping[str, dict[str, Any]] | None = None) -> tuple[Graph, dict[str, Any]]:
    """Run one stack's program against the render backend: (its graph, its outputs).

    A group stack's reference to the shared stack reads ``references``, by default the
    outputs of the shared stack's own render.
    """
    if references is None and not lay.stack(stack).shared:
        _, shared_outputs = render_stack(env, lay, lay.shared.name)
        references = {lay.shared.name: shared_outputs}
    check_references(lay, stack, references or {})
    outputs: dict[str, Any] = {}
    registrations = run(paced_stack_program(env, lay, stack, settle, on_outputs=outputs.update),
                        RenderBackend(region=env.region), project=env.project, stack=stack,
                        references=references or {})
    graph = Graph(project=env.project, stack=stack, registrations=sorted(registrations, key=lambda r: r.urn),
                  entities=component_entities(prefix(env.project, env.env), env))
    return graph, outputs


def check_references(lay: Layout, stack: str, references: Mapping[str, Any]) -> None:
    """Refuse, before the program runs, a group stack whose shared stack has no outputs."""
    if not lay.stack(stack).shared and lay.shared.name not in references:
        raise UsageError(f"stack {stack} reads the outputs of stack {lay.shared.name}, which has none yet: "
                         f"deploy {lay.shared.name} first")


def _restack(urn: str, env: str, stack: str) -> str:
    head = f"urn:pulumi:{env}::"
    return f"urn:pulumi:{stack}::{urn[len(head):]}" if urn.startswith(head) else urn


def split_graph(graph: Graph, lay: Layout) -> dict[str, Graph]:
    """The whole environment's graph cut into its stacks' graphs, shared stack first.

    A resource goes to the stack of its entity (components included); its URN names that
    stack, and dependencies on another stack's resources are dropped (they are reads of the
    shared stack's outputs there).
    """
    by_urn = {r.urn: r for r in graph.registrations}
    stack_of: dict[str, str] = {}
    for reg in graph.registrations:
        kind, entity = graph.entity_of(reg, by_urn)
        stack_of[reg.urn] = lay.stack_of(kind, entity).name
    parts: dict[str, list[Registration]] = {s.name: [] for s in lay.stacks}
    env = graph.stack
    for reg in graph.registrations:
        stacks = [stack_of[reg.urn]] if reg.type != ENVIRONMENT_TYPE else list(parts)  # every stack has the root
        for stack in stacks:
            if stack == env:  # the shared stack keeps the environment's name and URNs
                parts[stack].append(reg)
                continue
            deps = [_restack(d, env, stack) for d in reg.dependencies if stack_of.get(d) == stack]
            parts[stack].append(Registration(
                _restack(reg.urn, env, stack), reg.type, reg.name, reg.custom, reg.inputs,
                _restack(reg.parent, env, stack), deps, reg.protect, reg.retain_on_delete, reg.delete_before_replace,
                reg.ignore_changes, reg.replace_on_changes, reg.id, reg.outputs))
    return {name: Graph(project=graph.project, stack=name, registrations=sorted(regs, key=lambda r: r.urn),
                        entities=graph.entities, preview=graph.preview)
            for name, regs in parts.items()}


def stack_rows(graph: Graph, lay: Layout, budget: int) -> list[dict[str, Any]]:
    """One row per stack of the environment (shared first): its entities and resource count.

    Example::

        stack_rows(render(env), layout(env), 500)[1]["resources"]     # 23
    """
    parts = split_graph(graph, lay)
    rows = []
    for spec in lay.stacks:
        count = len(parts[spec.name].resources)
        rows.append({
            "stack": spec.name, "group": spec.group, "owner": spec.owner, "partition": spec.partition,
            "partitions": spec.partitions, "datasets": len(spec.datasets), "models": len(spec.models),
            "monitors": len(spec.monitors), "resources": count, "over_budget": count > budget,
            "config": f"Pulumi.{spec.name}.yaml",
        })
    return rows


def stacks_of(registrations: list[Registration], env: Environment, lay: Layout) -> dict[str, str]:
    """URN -> the stack its resource is in, for a whole environment's render (one walk up
    the parents per resource, remembered on the way: linear in the graph)."""
    entities = component_entities(prefix(env.project, env.env), env)
    by_urn = {r.urn: r for r in registrations}
    memo: dict[str, str] = {}
    for reg in registrations:
        path, current, found = [], reg.urn, None
        while current:
            found = memo.get(current)
            if found is not None:
                break
            node = by_urn.get(current)
            if node is None:
                break
            path.append(current)
            if not node.custom and node.name in entities:
                found = lay.stack_of(*entities[node.name]).name
                break
            current = node.parent
        found = found or lay.shared.name
        for urn in path:
            memo[urn] = found
    return memo


def stacked_urn(urn: str, env: str, stack: str) -> str:
    """The URN as the stack ``stack`` of environment ``env`` names it."""
    return urn if stack == env else _restack(urn, env, stack)
