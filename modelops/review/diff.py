"""Pull-request review of a spec change: what changes, what AWS replaces, what it risks and costs.

``diff(spec, base)`` compares the spec (and its overlays) in the working tree with another
version of it — a git ref (``origin/main``) or a directory — for every environment of
either side:

1. **Entities**: per environment, each dataset, model, monitor and notification channel
   added, removed or changed, with its changed fields ``old → new`` (https subscription
   URLs are masked: they are secrets).
2. **Resources**: both sides are rendered in-process and every resource is classified
   ``create`` / ``update`` / ``replace`` / ``delete`` with the inputs that caused it.
   Which inputs force a replacement is the per-type table
   (:mod:`modelops.graph.resource_types`). SageMaker models and endpoint configurations
   are named by content, so a change shows up as a new name: the old/new pair is
   reported as one *replace* of the same logical resource.
3. **Risks**, each with its reason (:mod:`modelops.review.risks`).
4. **Cost** before/after/delta per environment (:mod:`modelops.review.cost`) and the
   **policies** after the change (:mod:`modelops.checks`).

Diff never trains a model: an artifact comes from the build cache (``.modelops``) or a
pinned version in the store; otherwise a deterministic placeholder derived from the train
spec and the data digest stands in, and the report says ``(artifact not built)``.

Example::

    report = diff("modelops.yaml", "origin/main")
    print(to_markdown(report))
    report.failed_conditions(["data-loss", "cost>100"])   # [] when none holds
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from modelops.checks.security import findings as evaluate  # the policies and the security controls (FSBP)
from modelops.errors import ModelOpsError, UsageError
from modelops.graph.cache import render_graph
from modelops.graph.forked import PARALLEL_MIN_MODELS, fork_map, process_budget, share_out
from modelops.ml.placeholders import attach_without_training
from modelops.perf import no_gc
from modelops.review.base import environments, materialise_base
from modelops.graph.split import stacks_of
from modelops.graph.stacks import layout
from modelops.review.compare import content, entity_changes, resource_changes, stack_of_urn
from modelops.review.cost import estimate
from modelops.review.report import DiffReport, EnvDiff
from modelops.review.risks import risk_flags
from modelops.spec.datafiles import samples_kept_in
from modelops.spec.resolved import Environment

#: a spec of this size or more (about 200 models) takes a tenth of a second or more to load:
#: a diff loads the base side in a forked process while it loads the working tree's
PARALLEL_LOAD_BYTES = 128 * 1024


def diff(spec: str | os.PathLike[str], base: str, *, envs: list[str] | None = None,
         store_root: Path | None = None) -> DiffReport:
    """Review the change from ``base`` (git ref or directory) to the working-tree ``spec``.

    Example::

        report = diff("modelops.yaml", "origin/main", envs=["prod"])
        report.failed_conditions(["data-loss"])
    """
    head_spec = Path(spec).resolve()
    if not head_spec.is_file():
        raise UsageError(f"{spec}: no such spec file; pass the path of modelops.yaml")
    head_root = head_spec.parent
    store_root = store_root or head_root
    with tempfile.TemporaryDirectory(prefix="modelops-diff-") as tmp:
        scratch = Path(tmp)

        def load_base(base_spec: Path) -> dict[str, Environment]:
            try:
                # its data files are mostly the working tree's: sampled once, found by content
                with samples_kept_in(store_root / ".modelops" / "cache"):
                    return environments(base_spec, envs)
            except ModelOpsError as exc:
                # name the base version, not the temporary directory it was extracted to
                first = str(exc).splitlines()[0].replace(str(scratch / "base"), f"<{base}>")
                raise UsageError(f"the base version ({base}) does not load: {first}; "
                                 "compare with another --base") from exc

        def base_side() -> tuple[Path, dict[str, Environment]]:
            base_spec, base_root = materialise_base(base, head_spec, scratch)
            return base_root, load_base(base_spec)

        sides = None
        if head_spec.stat().st_size >= PARALLEL_LOAD_BYTES and process_budget(PARALLEL_MIN_MODELS) > 1:
            # a large spec: the base is checked out and loaded in a forked process meanwhile
            # (any failure there: the same steps again here, which report it as usual)
            sides = fork_map(lambda side: side(), [lambda: environments(head_spec, envs), base_side])
        if sides is None:
            base_spec, base_root = materialise_base(base, head_spec, scratch)
            head_envs = environments(head_spec, envs)
            base_envs = load_base(base_spec)
        else:
            head_envs, (base_root, base_envs) = sides
        if envs:
            missing = [e for e in envs if e not in head_envs and e not in base_envs]
            if missing:
                raise UsageError(f"--env {', '.join(missing)}: no such environment in {spec} or at {base}")
        report = DiffReport(spec=str(spec), base=base, head="working tree")
        # environments of 32 models or more are reviewed in several processes (Linux): the same review
        pairs = [(name, base_envs.get(name), head_envs.get(name)) for name in sorted(set(head_envs) | set(base_envs))]
        base_root = base_root.resolve()

        def review(chunk: list[tuple[str, Environment | None, Environment | None]], jobs: int | None) -> list[EnvDiff]:
            return [_diff_env(name, before, after, base_root, head_root, store_root, scratch, jobs=jobs)
                    for name, before, after in chunk]

        models = max((len(env.models) for _, *both in pairs for env in both if env is not None), default=0)
        report.envs = share_out(review, pairs, models)
    return report


def touched_stacks(changes: list, env: str) -> list[str]:
    """The stacks holding a changed resource, the shared one (named ``env``) first."""
    return sorted({stack_of_urn(c.urn) for c in changes}, key=lambda s: (s != env, s))


def _diff_env(name: str, before: Environment | None, after: Environment | None, base_root: Path, head_root: Path,
              store_root: Path, scratch: Path, *, jobs: int | None = None) -> EnvDiff:
    status = "added" if before is None else "removed" if after is None else "changed"
    result = EnvDiff(env=name, status=status)
    unbuilt: list[str] = []
    # The cyclic collector is paused while comparing: everything built here is acyclic plain
    # data, and with two graphs alive each collection would rescan them. Renders (the
    # Pulumi program) run with it on.
    with no_gc():
        if before is not None:
            before, _ = attach_without_training(before, store_root, scratch)
        if after is not None:
            after, unbuilt = attach_without_training(after, store_root, scratch)
        result.unbuilt = unbuilt
        result.entities, result.settings = entity_changes(before, after, base_root, head_root)
    cache_dir = store_root / ".modelops" / "cache"
    roots_before = (str(base_root), str(scratch))
    roots_after = (str(head_root), str(scratch))
    # the base's groups whose keys the working tree's have too are taken from its render:
    # neither read nor rendered again, and skipped by the comparison (one object on both sides)
    held: dict[str, list] = {}
    graph_after = render_graph(after, cache_dir, jobs=jobs, held=held) if after is not None else []
    with no_gc():
        # a changed entity or setting is a changed content: the comparison is for the rest
        same = before is not None and after is not None and not (result.entities or result.settings) \
            and content(before, roots_before) == content(after, roots_after)
    if same:
        # the same content at another place (paths differ only by their root): the same graph
        graph_before = graph_after
    else:
        graph_before = render_graph(before, cache_dir, jobs=jobs, held=held) if before is not None else []
    with no_gc():
        # each side cut into its stacks (its own recorded partitions): a resource is compared
        # in its stack, and the stacks a change touches are those of its resources
        stacks_before = stacks_of(graph_before, before, layout(before)) if before is not None else None
        stacks_after = stacks_of(graph_after, after, layout(after)) if after is not None else None
        result.resources, pairs = resource_changes(graph_before, graph_after, roots_before, roots_after, after, before,
                                                   stacks_before, stacks_after)
        result.stacks = touched_stacks(result.resources, name)
        result.flags = risk_flags(result.resources, pairs, result.entities, result.settings)
        if before is not None:
            result.cost_before = estimate(graph_before, before.region)
        if after is not None:
            result.cost_after = estimate(graph_after, after.region)
            result.findings = evaluate(after, graph_after)
            old = {(f.policy, f.entity, f.message) for f in (evaluate(before, graph_before) if before else [])}
            result.new_findings = [f for f in result.findings if (f.policy, f.entity, f.message) not in old]
    if status == "changed" and not (result.entities or result.resources or result.settings):
        result.status = "unchanged"
    result._before = before  # type: ignore[attr-defined]  # for the Mermaid diagram
    result._after = after  # type: ignore[attr-defined]
    return result
