"""The one way a command checks a spec against the policies: attach artifacts without
training, render (through the render cache), evaluate.

``validate``, ``up``, ``security``, ``diff`` and promotion's policy gate all go through
:func:`render_for_checks`; ``validate`` and ``up`` report mandatory findings as spec
problems with :func:`check_policies`, which reuses the findings of an environment that has
not changed since the last check (:mod:`modelops.checks.findings_cache`).

Example::

    attached, graph = render_for_checks(env, Path("."), Path(tmp), Path(".modelops/cache"))
    found = findings(attached, graph)   # the policies and the security controls
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from modelops.checks.findings_cache import cached_findings
from modelops.checks.mandatory import as_problems, project_root
from modelops.checks.policy import Finding
from modelops.checks.security import EnvironmentReport, evaluate_graph, findings
from modelops.errors import Problem
from modelops.graph.cache import cached_render, render_graph
from modelops.graph.forked import share_out
from modelops.graph.runtime import Registration
from modelops.ml.placeholders import attach_without_training
from modelops.spec.resolved import Environment

__all__ = ["check_policies", "project_root", "render_for_checks", "security_report"]


def render_for_checks(env: Environment, root: Path, scratch: Path, cache_dir: Path | None, *,
                      jobs: int | None = None) -> tuple[Environment, list[Registration]]:
    """``env`` with an artifact on every model (cached builds under ``root``, else
    placeholders written under ``scratch``: never training) and its rendered graph
    (through the render cache at ``cache_dir``; ``None``: this process's only)."""
    attached, _ = attach_without_training(env, root, scratch)
    return attached, render_graph(attached, cache_dir, jobs=jobs)


def check_policies(environments: dict[str, Environment]) -> list[Problem]:
    """Mandatory findings of every environment as spec problems (what ``validate`` prints, exit 2).

    Renders each environment without training (cached builds, else placeholder artifacts)
    and points each problem at the entity in the overlay when the overlay sets it, else in
    the spec: ``FILE:LINE:COL: models.churn: [policy] message; fix``. Large environments
    are checked in several processes at once (:func:`modelops.graph.forked.share_out`).

    Example::

        problems = check_policies({"prod": load_environment("modelops.yaml", "prod")})
    """
    with tempfile.TemporaryDirectory(prefix="modelops-policy-") as tmp:

        def mandatory(chunk: list[Environment], jobs: int | None) -> list[list[Finding]]:
            found = []
            for env in chunk:
                root = project_root(env)
                cache_dir = root / ".modelops" / "cache"
                # an environment unchanged since the last check reuses its findings (no render)
                attached, _ = attach_without_training(env, root, Path(tmp))
                # collect=False: a full collection of a large render's heap takes seconds, and the
                # forked process checking it exits next; a later render here collects first
                every = cached_findings(attached, cache_dir, lambda: findings(
                    attached, cached_render(attached, cache_dir, jobs=jobs, collect=False).registrations))
                found.append([f for f in every if f.level == "mandatory"])
            return found

        # environments of 32 models or more are checked in several processes (Linux)
        envs = list(environments.values())
        per_env = share_out(mandatory, envs, max((len(env.models) for env in envs), default=0))
    return as_problems(environments, dict(zip(environments, per_env)))


def security_report(env: Environment, root: Path | None = None) -> EnvironmentReport:
    """Render ``env`` (cached builds, else placeholder artifacts: no training) and evaluate it.

    Writes nothing to the project: secrets in the graph never reach a cache file.

    Example::

        security_report(load_environment("examples/fraud/modelops.yaml", "prod")).to_dict()
    """
    base = root or project_root(env)
    with tempfile.TemporaryDirectory(prefix="modelops-security-") as tmp:
        # a private cache: nothing of this check is written to the project
        attached, graph = render_for_checks(env, base, Path(tmp), Path(tmp) / "cache")
    return evaluate_graph(attached, graph)
