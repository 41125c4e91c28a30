"""What a schema cannot express, for one merged environment: the semantic rules.

References resolve, names are unique and fit AWS limits, local files exist inside the
project and read as what they claim to be, and each model and monitor is consistent
(:mod:`modelops.spec.model_rules`, :mod:`modelops.spec.monitor_rules`).

Example::

    semantic_problems(env.data, Locator([overlay, base]), "dev", Path("."))   # [] for a valid spec
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelops.components import naming
from modelops.errors import Problem, excerpt
from modelops.spec.datafiles import csv_sample, parquet_problem, project_file
from modelops.spec.loader import display_name
from modelops.spec.model_rules import rollout_mode_problems, rollout_problems, serving_problems, train_column_problems, train_problems
from modelops.spec.monitor_rules import monitor_problems
from modelops.spec.problems import Locator, at, choices, clash, entities, mapping, suggest

__all__ = ["semantic_problems"]

_GLUE_COLUMN = re.compile(r"[a-z_][a-z0-9_]{0,127}")  # used with fullmatch: `$` passes a final newline


def semantic_problems(data: dict[str, Any], where: Locator, env: str, spec_dir: Path,
                      passed: dict[tuple[Any, ...], tuple[Any, ...]] | None = None) -> list[Problem]:
    """What the schema cannot express, for one (merged) environment.

    Defensive about shapes the schema already reports (a wrong type is skipped here), so
    that every problem is reported in one run.

    ``passed``, given the same dict for the environments of one spec: the models and
    monitors that passed their rules in an earlier environment, by what the rules read. An
    entity that no overlay touches is the same mapping in each merged environment
    (:func:`modelops.spec.envs.deep_merge` keeps it), and passes again without being checked
    again; one that had a problem is checked in each environment, for its places.
    """
    passed = {} if passed is None else passed

    def once(key: tuple[Any, ...], kept: tuple[Any, ...], rules: Any) -> None:
        # ``kept``: the mappings whose ids are in ``key``, held so that no other takes their id
        hit = passed.get(key)
        if hit is not None and all(a is b for a, b in zip(hit, kept)):
            return
        found = list(rules())
        if found:
            problems.extend(found)
        else:
            passed[key] = kept

    problems: list[Problem] = []
    add = problems.append
    notifications = entities(data, "notifications")
    datasets = entities(data, "datasets")
    models = entities(data, "models")
    monitors = entities(data, "monitors")

    # names: unique across kinds, not reserved, derived AWS names within limits
    owners: dict[str, tuple[str, tuple[str, int, int]]] = {}
    declared = [(kind, name) for kind in ("datasets", "models", "monitors") for name in mapping(data.get(kind))]
    declared.sort(key=lambda item: where.key(item))
    project = data.get("project") if isinstance(data.get("project"), str) else None
    for kind, name in declared:
        singular = kind[:-1]
        here = where.key((kind, name))
        if name in naming.RESERVED_NAMES:
            add(at("E-RESERVED-NAME", here, (kind, name), f"'{name}' is reserved for a name ModelOps derives itself", "choose another name"))
        if name in owners:
            other_kind, other_at = owners[name]
            add(at("E-DUPLICATE-NAME", here, (kind, name), f"name already used by {other_kind} '{name}' at {other_at[0]}:{other_at[1]}:{other_at[2]}", "names are unique across datasets, models and monitors; rename one"))
        else:
            owners[name] = (singular, here)
        if project:
            roles = {"datasets": ("bucket",), "models": ("endpoint", "role"), "monitors": ("alarm", "canary alarm")}[kind]
            longest = naming.longest_names(project, env, str(name))
            for role in roles:
                derived, limit = longest[role]
                if len(derived) > limit:
                    add(at("E-NAME-TOO-LONG", here, (kind, name), f"the {role} name '{derived}' of environment '{env}' is {len(derived)} characters, over the AWS limit of {limit}", "shorten the project or this name"))

    # notify targets
    def check_channels(path: tuple[Any, ...], channels: Any) -> None:
        if not isinstance(channels, list):
            return
        for index, channel in enumerate(channels):
            if isinstance(channel, str) and channel not in notifications:
                close = suggest(channel, notifications)
                fix = f"did you mean '{close}'?" if close else (f"declared channels: {choices(sorted(notifications))}" if notifications else "declare it under `notifications:`")
                add(at("E-REF", where.value((*path, index)), (*path, index), f"unknown notification channel '{channel}'", fix))

    # datasets: local sources exist, CSV headers give valid columns
    headers: dict[str, tuple[str, tuple[str, ...]]] = {}  # dataset -> (source, CSV header)
    for name, dataset in datasets.items():
        source = dataset.get("source")
        if isinstance(source, str) and source:
            path = ("datasets", name, "source")
            file, reason = project_file(spec_dir, source)
            if file is None:
                add(_file_problem(reason, where.value(path), path, source, spec_dir))
            elif dataset.get("format", "csv") == "csv":
                sample = csv_sample(file, spec_dir / ".modelops" / "cache")
                if sample.problem:
                    add(at("E-CSV-HEADER", where.value(path), path, f"{excerpt(source)} is not a readable CSV file: {sample.problem}",
                            "put the column names on the first line, or set `format:` if it is not CSV"))
                    continue
                headers[name] = (source, sample.header)
                if dataset.get("columns") is not None:
                    continue
                for column in sample.header:
                    if not _GLUE_COLUMN.fullmatch(column):
                        add(at("E-CSV-COLUMN", where.value(path), path, f"CSV header column {excerpt(column)} is not a valid catalogue column name", "rename it (lowercase letters, digits, _) or declare `columns:`"))
                        break

    # datasets: a parquet source is a parquet file (its footer only is read)
    for name, dataset in datasets.items():
        source = dataset.get("source")
        if dataset.get("format") == "parquet" and isinstance(source, str) and source:
            file = project_file(spec_dir, source)[0]
            reason = parquet_problem(file) if file is not None else None
            if reason:
                path = ("datasets", name, "source")
                add(at("E-PARQUET", where.value(path), path, f"{source!r} is not a readable parquet file ({reason})", "write it with a parquet writer, or set `format:` to the file's format"))

    # models
    def model_rules(name: str, model: dict[str, Any], ref: Any) -> Iterator[Problem]:
        base = ("models", name)
        if isinstance(ref, str) and ref not in datasets:
            close = suggest(ref, datasets)
            fix = f"did you mean '{close}'?" if close else ("declare it under `datasets:`" if not datasets else f"declared datasets: {choices(sorted(datasets))}")
            yield at("E-REF", where.value((*base, "dataset")), (*base, "dataset"), f"unknown dataset '{ref}'", fix)
        has_train, has_artifact = "train" in model, "artifact" in model
        if has_train and has_artifact:
            yield clash("E-TRAIN-OR-ARTIFACT", where, (*base, "train"), (*base, "artifact"), "a model has either `train` or `artifact`, not both", "remove one of them")
        elif not has_train and not has_artifact:
            yield at("E-TRAIN-OR-ARTIFACT", where.key(base), base, "a model needs `train` or `artifact`", "add `train: {estimator: ..., target: ...}` or `artifact: path/to/model.tar.gz`")
        artifact = model.get("artifact")
        if isinstance(artifact, str) and artifact:
            package, reason = project_file(spec_dir, artifact)
            if package is None:
                yield _file_problem(reason, where.value((*base, "artifact")), (*base, "artifact"), artifact, spec_dir)
        if isinstance(ref, str) and ref in headers and isinstance(model.get("train"), dict):
            yield from train_column_problems(model["train"], (*base, "train"), headers[ref], where)
        if isinstance(model.get("train"), dict):
            yield from train_problems(model["train"], (*base, "train"), where)
        yield from serving_problems(mapping(model.get("serving")), (*base, "serving"), where)
        yield from rollout_problems(model, base, where)
        yield from rollout_mode_problems(mapping(model.get("serving")), (*base, "serving"), where)

    for name, model in models.items():
        ref = model.get("dataset")
        # what the rules read besides the model: whether its dataset is declared, that
        # dataset's CSV header, the artifact's file (the same all through one check)
        known = isinstance(ref, str) and ref in datasets
        once(("models", name, id(model), spec_dir, known, headers.get(ref) if known else None), (model,),
             lambda name=name, model=model, ref=ref: model_rules(name, model, ref))

    # monitors
    for name, monitor in monitors.items():
        # what the rules read besides the monitor: whether its target is declared, and the
        # watched model's mapping (its serving, its estimator)
        target = monitor.get("model", monitor.get("dataset"))
        collection = models if "model" in monitor else datasets
        declared = isinstance(target, str) and target in collection
        watched = models.get(monitor["model"]) if isinstance(monitor.get("model"), str) else None
        once(("monitors", name, id(monitor), "model" in monitor, "dataset" in monitor, declared, id(watched)), (monitor, watched),
             lambda name=name, monitor=monitor: monitor_problems(name, monitor, models, datasets, where))
        check_channels(("monitors", name, "notify"), monitor.get("notify"))
    return problems



def _file_problem(reason: str, where: tuple[str, int, int], path: tuple[Any, ...], named: str, spec_dir: Path) -> Problem:
    shown = excerpt(named)
    here = _dir_display(spec_dir)
    if reason == "absolute":
        return at("E-FILE-OUTSIDE", where, path, f"{shown} is an absolute path", f"write it relative to {here}, inside the project")
    if reason == "outside":
        return at("E-FILE-OUTSIDE", where, path, f"{shown} resolves outside the project ({here})",
                   "keep the file in the spec's directory or below it (a symlink must point there too)")
    if reason == "not-a-file":
        return at("E-NOT-A-FILE", where, path, f"{shown} is not a regular file (a directory, pipe or device)", "point it at a data file")
    return at("E-FILE-MISSING", where, path, f"file {shown} not found", f"the path is relative to {here}")


def _dir_display(spec_dir: Path) -> str:
    shown = display_name(spec_dir)
    return "the current directory" if shown == "." else f"{shown}/"
