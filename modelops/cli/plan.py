"""``modelops plan``: the resource graph one environment becomes, without any cloud.

Example::

    $ modelops plan --env prod
    $ modelops plan examples/fraud/modelops.yaml --env dev --json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from modelops.graph.resource_types import ENDPOINT_CONFIG, METRIC_ALARM, plan_properties
from modelops.cli.app import app
from modelops.spec.envs import list_environments, load_environment
from modelops.errors import UsageError
from modelops.perf import no_gc

if TYPE_CHECKING:  # the render pulls in Pulumi: imported by the commands that render, not at start-up
    from modelops.graph.render import Graph

__all__ = ["plan", "plan_graph", "summarize"]

DEFAULT_SPEC = Path("modelops.yaml")

def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return None
    return data


def _variants(inputs: dict[str, Any]) -> str:
    parts = []
    for key, label in (("productionVariants", ""), ("shadowProductionVariants", "shadow ")):
        for v in inputs.get(key) or []:
            if v.get("serverlessConfig"):
                sls = v["serverlessConfig"]
                size = f"serverless {_fmt(sls.get('memorySizeInMb'))}MB x{_fmt(sls.get('maxConcurrency'))}"
            else:
                size = f"{v.get('instanceType')} x{_fmt(v.get('initialInstanceCount'))}"
            parts.append(f"{label}{v.get('variantName')}: {size} weight {v.get('initialVariantWeight')}")
    return "; ".join(parts)


def _fmt(value: Any) -> Any:
    # Numbers cross the Pulumi wire as doubles: show 2, not 2.0.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def describe(reg) -> str:
    """One line of key properties of a resource (secrets masked)."""
    from modelops.graph.render import masked_inputs

    inputs = masked_inputs(reg)
    if reg.type == ENDPOINT_CONFIG:
        return f"name={inputs.get('name')} {_variants(inputs)}"
    if reg.type == METRIC_ALARM and inputs.get("metricQueries"):
        expr = next((q.get("expression") for q in inputs["metricQueries"] if q.get("expression")), "")
        return f"name={inputs.get('name')} expression={expr!r} {inputs.get('comparisonOperator')} {_fmt(inputs.get('threshold'))}"
    shown = []
    for path in plan_properties(reg.type):  # the type table's `plan` paths
        value = _get(inputs, path)
        if value is not None:
            shown.append(f"{path.split('.')[-1]}={_fmt(value)}")
    if reg.protect:
        shown.append("protected")
    return " ".join(shown)


def plan_graph(spec: Path, env_name: str, *, build: bool = True, collect: bool = True) -> Graph:
    """Load, attach artifacts (building them when needed), render, estimate cost.

    The render goes through the project's render cache (``.modelops/cache``): what is
    rendered here is not rendered again by a later ``plan``, ``validate``, ``diff`` or the
    policy check of ``up`` of the same content, and a plan after a one-model change
    renders that model only. ``collect=False``: the caller exits next (see
    :func:`modelops.graph.render.render`).

    No AWS is asked: the program's registry lookups (every version the environment serves)
    are answered by the local store (:func:`modelops.registry.pins.store_view`). A version
    it does not hold fails the plan at the place that sets it (E-PIN-UNPUBLISHED). A graph
    is only taken from the cache when every lookup would find its version: the lookups
    decide whether the program runs to its end, never what it registers.
    """
    # the render pulls in Pulumi: imported by the commands that render (see cli.app)
    from modelops.graph.cache import cached_render
    from modelops.ml.artifacts import attach_artifacts
    from modelops.review.cost import estimate

    from modelops.components.model import served_versions
    from modelops.components.naming import registry_bucket_name, registry_key
    from modelops.graph.render import ACCOUNT_ID, render
    from modelops.graph.runtime import ProgramError
    from modelops.registry.pins import store_view, unpublished_cause, unpublished_error

    env = attach_artifacts(load_environment(spec, env_name), build=build)
    root = spec.resolve().parent
    view = store_view(root)
    bucket = registry_bucket_name(env.project, env.registry_account or ACCOUNT_ID)
    if not all(view(bucket, registry_key(m.name, d)) for m in env.models.values() for d in served_versions(m).values()):
        try:
            render(env, registry=view, jobs=1, collect=collect)
        except ProgramError as exc:
            cause = unpublished_cause(exc)
            if cause is not None:
                raise unpublished_error(env, cause) from None
            raise
    graph = cached_render(env, root / ".modelops" / "cache", collect=collect)
    graph.cost = estimate(graph.registrations, env.region).to_dict()
    return graph


def stack_graph(spec: Path, env_name: str, graph: Graph, stack: str) -> Graph:
    """The part of an environment's graph that one of its stacks deploys, with its cost."""
    from modelops.graph.split import split_graph
    from modelops.graph.stacks import layout
    from modelops.review.cost import estimate

    env = load_environment(spec, env_name)
    part = split_graph(graph, layout(env))[layout(env).stack(stack).name]
    part.cost = estimate(part.registrations, env.region).to_dict()
    return part


def summarize(graph: Graph) -> str:
    """The human plan: a tree grouped by spec entity, then counts by type (and cost)."""
    lines = [f"Plan for {graph.project}/{graph.stack}: {len(graph.resources)} resources"]
    for (kind, entity), regs in graph.by_entity().items():
        lines.append("")
        lines.append(f"{kind} {entity}")
        for reg in regs:
            detail = describe(reg)
            lines.append(f"  + {reg.type.split(':')[-1]:<42} {reg.name}" + (f"  [{detail}]" if detail else ""))
    lines.append("")
    lines.append("Resources by type:")
    for type_, count in graph.counts().items():
        lines.append(f"  {count:>3}  {type_}")
    if isinstance(graph.cost, dict):
        approx = " (approximate)" if graph.cost.get("approximate") else ""
        unpriced = graph.cost.get("unpriced") or []
        lines.append("")
        lines.append(
            f"Estimated fixed monthly cost: {graph.cost.get('total_monthly')} {graph.cost.get('currency')}{approx}"
            " plus usage-based charges"
            + (f", not counting {len(unpriced)} unpriced resource(s):" if unpriced else "")
        )
        # a total that silently leaves a resource out reads as its whole cost
        for item in unpriced:
            lines.append(f"  ? {item.get('name')}: {item.get('reason')}")
    return "\n".join(lines)


@app.command()
def plan(
    spec: Path = typer.Argument(DEFAULT_SPEC, help="The spec file.", show_default=True),
    env: Optional[str] = typer.Option(None, "--env", "-e", help="The environment (required when there are several)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole graph as JSON (secrets masked)."),
    stack: Optional[str] = typer.Option(None, "--stack", help="Only this stack of the environment (see `modelops stacks`)."),
) -> None:
    """Show the AWS resources one environment becomes: no cloud, no credentials.

    Models are built first when their artifact is not in the local store. With ``--stack``,
    the part of the environment that stack deploys.

    Example: ``modelops plan --env prod --json``
    """
    if env is None:
        available = list_environments(spec)
        if len(available) != 1:
            raise UsageError(f"pass --env: this spec has several environments: {', '.join(available)}")
        env = available[0]
    # The command ends here: the render's reference cycles are not collected, and printing
    # (acyclic data) runs without the collector, which would rescan all the render's objects
    # every few thousand allocations. The JSON goes out in one write, not one per token.
    graph = plan_graph(spec, env, collect=False)
    if stack is not None:
        graph = stack_graph(spec, env, graph, stack)
    with no_gc():
        if as_json:
            sys.stdout.write(json.dumps(graph.to_json(), indent=2))  # one write, not one per token
            sys.stdout.write("\n")
            return
        print(summarize(graph))
