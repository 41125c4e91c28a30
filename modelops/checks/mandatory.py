"""Mandatory policy findings as spec problems, and the findings kept from the last check.

``validate`` reports each mandatory finding as a spec problem pointing at the entity in the
file that sets it (:func:`as_problems`). An environment unchanged since the last check has
its findings kept under the keys of its render groups (:mod:`modelops.checks.findings_cache`):
:func:`kept_mandatory` reads them without rendering, and so without the Pulumi SDK; only the
environments it does not find go on to :func:`modelops.checks.pipeline.check_policies`.

Example::

    kept = kept_mandatory(environments)            # {"dev": [...], "prod": [...]}: nothing rendered
    problems = as_problems(environments, kept)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from modelops.checks.findings_cache import kept_findings
from modelops.checks.policy import Finding
from modelops.errors import Problem
from modelops.graph.forked import process_budget
from modelops.ml.placeholders import attach_without_training
from modelops.spec.loader import display_name, load_yaml
from modelops.spec.resolved import Environment

__all__ = ["as_problems", "kept_mandatory", "project_root"]


def project_root(env: Environment) -> Path:
    """The directory of the environment's spec: where its builds and caches live."""
    return Path(env.spec_file).resolve().parent if env.spec_file else Path.cwd()


def kept_mandatory(environments: dict[str, Environment]) -> dict[str, list[Finding]]:
    """The mandatory findings of each environment whose findings were kept for its current
    render keys (under ``.modelops/cache`` of its project); the others are left out.

    The environments are looked up one after the other in this process: what they share
    (every entity no overlay touches) is attached and written into their keys once
    (``attach_without_training``'s ``made``, :func:`modelops.plain.canonical`'s ``texts``),
    which costs less than looking each up in a process of its own."""
    if len(environments) > 1:
        process_budget(0)  # as when they were looked up in several processes: a bad MODELOPS_RENDER_JOBS is an error
    found: dict[str, list[Finding]] = {}
    texts: dict[Any, tuple[Any, str]] = {}
    made: dict[Any, tuple[Any, ...]] = {}
    with tempfile.TemporaryDirectory(prefix="modelops-policy-") as tmp:
        for name, env in environments.items():
            root = project_root(env)
            # the key holds the artifacts as a check attaches them (builds, else placeholders)
            attached, _ = attach_without_training(env, root, Path(tmp), made)
            every = kept_findings(attached, root / ".modelops" / "cache", texts)
            if every is not None:
                found[name] = [f for f in every if f.level == "mandatory"]
    return found


def as_problems(environments: dict[str, Environment], per_env: dict[str, list[Finding]]) -> list[Problem]:
    """Each environment's findings as spec problems, sorted: ``FILE:LINE:COL: models.churn:
    [policy] (env) message; fix``, at the entity in the overlay when the overlay sets it,
    else in the file that declares it."""
    problems: list[Problem] = []
    docs: dict[str, Any] = {}

    def where(file: str | None, entity: str) -> tuple[str, int, int] | None:
        if not file:
            return None
        if file not in docs:
            try:
                docs[file] = load_yaml(file, strict=False)
            except Exception:  # noqa: BLE001 - positions are a nicety; the message still names the file
                docs[file] = None
        doc = docs[file]
        parts = tuple(entity.split(".", 1)) if entity else ()
        if doc is None:
            return display_name(file), 0, 0
        if parts and parts not in doc.positions:
            return None
        line, col = doc.position(parts)
        return display_name(file), line, col

    for name, env_findings in per_env.items():
        env = environments[name]
        for finding in env_findings:
            # the overlay when it sets the entity, else the file that declares it
            place = next((found for file in (env.overlay_file, env.spec_file, *env.include_files)
                          if (found := where(file, finding.entity)) is not None), None) \
                or (display_name(env.spec_file) if env.spec_file else "modelops.yaml", 0, 0)
            problems.append(Problem(
                f"P-{finding.policy}", place[0], place[1], place[2], finding.entity or f"environments.{name}",
                f"[{finding.policy}] ({name}) {finding.message}", finding.fix,
            ))
    return sorted(set(problems))
