"""Environments: the base spec, one overlay per environment, and the resolved result.

Overlays live beside the Pulumi stack configs: ``<spec dir>/stacks/<env>.yaml`` (files
named ``Pulumi.*.yaml`` are stack configs, not overlays). Without a ``stacks/`` directory
(or without any overlay in it) there is one implicit environment, ``dev``, with no overlay.

An overlay is deep-merged on the base: mappings merge key by key; scalars and lists
replace. It is validated with the spec's schema with every ``required`` removed, and it
may only adjust the notifications, datasets, models and monitors the base declares.

Example::

    list_environments("modelops.yaml")                 # ['dev', 'prod', 'staging']
    env = load_environment("modelops.yaml", "prod")
    env.models["churn-classifier"].serving.instance_count   # 2
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.errors import Problem, SpecError, UsageError, excerpt
from modelops.perf import no_gc
from modelops.spec import resolved as r
from modelops.spec import units
from modelops.spec.includes import SpecFiles, load_spec_files
from modelops.spec.loader import LoadedDocument, display_name, load_yaml
from modelops.spec.problems import Locator, suggest
from modelops.spec.schema import schema
from modelops.spec.schema_errors import schema_problems
from modelops.spec.semantics import semantic_problems
from modelops.spec.stack_configs import (account_mismatches, account_problems, region_problems,
                                         stack_accounts, stack_regions, stacks_dir)
from modelops.components.naming import ENV_PATTERN, REGISTRY_STACK
from modelops.spec.datafiles import csv_sample, forget_samples, keep_samples, parquet_columns, project_file

#: the spec's named collections (``datasets``, ..., ``notifications``)
SPEC_KEYS = tuple(k.key for k in r.ENTITY_KINDS)

__all__ = [
    "DEFAULT_ENV",
    "check",
    "deep_merge",
    "list_environments",
    "load_environment",
    "overlay_path",
    "validate",
]

DEFAULT_ENV = "dev"


def _overlays(spec_path: str | os.PathLike[str]) -> dict[str, Path]:
    stacks = stacks_dir(spec_path)
    if not stacks.is_dir():
        return {}
    return {
        item.name[: -len(".yaml")]: item
        for item in sorted(stacks.iterdir())
        if item.name.endswith(".yaml") and not item.name.startswith("Pulumi.") and not item.is_dir()
    }


def list_environments(spec_path: str | os.PathLike[str]) -> list[str]:
    """The environments of a spec: one per ``stacks/<env>.yaml`` overlay, sorted; else ``['dev']``.

    Example::

        list_environments("examples/fraud/modelops.yaml")   # ['dev', 'prod']
    """
    return sorted(_overlays(spec_path)) or [DEFAULT_ENV]


def overlay_path(spec_path: str | os.PathLike[str], env: str) -> Path | None:
    """The overlay file of ``env`` (absolute), or None for the implicit ``dev``."""
    return _overlays(spec_path).get(env)


def deep_merge(base: Any, overlay: Any) -> Any:
    """``overlay`` on ``base``: mappings merge key by key, anything else replaces.

    Neither argument is modified. Example::

        deep_merge({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2]}})   # {'a': {'b': 1, 'c': [2]}}
    """
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return overlay


@dataclass
class _Checked:
    """One environment after validation: what resolution needs."""

    env: str
    data: dict[str, Any]
    base: LoadedDocument
    overlay: LoadedDocument | None
    #: (kind, name) -> the ``owner`` of the file that declares it, when that file sets one
    file_owners: dict[tuple[str, str], str] = field(default_factory=dict)
    #: the team files the base includes
    teams: list[LoadedDocument] = field(default_factory=list)


def _unknown_env(env: str, available: list[str], spec_path: str | os.PathLike[str]) -> UsageError:
    close = suggest(env, available)
    hint = f" (did you mean '{close}'?)" if close else ""
    where = f"{display_name(stacks_dir(spec_path))}/<env>.yaml" if stacks_dir(spec_path).is_dir() else "no stacks/ directory: only the implicit environment"
    return UsageError(f"unknown environment '{env}'{hint}; available: {', '.join(available)} ({where})")


def _check(spec_path: str | os.PathLike[str], envs: list[str] | None) -> tuple[list[Problem], dict[str, _Checked]]:
    """Validate the base and each environment; every problem, and each valid-shaped environment."""
    problems: list[Problem] = []
    try:
        files = load_spec_files(spec_path)
    except SpecError as exc:
        return list(exc.problems), {}
    base = files.root
    available = list_environments(spec_path)
    if envs is None:
        envs = available
    for env in envs:
        if env not in available:
            raise _unknown_env(env, available, spec_path)
    problems.extend(base.problems)
    base_schema = schema_problems(base.data, Locator([base]))
    problems.extend(base_schema)
    problems.extend(files.problems)
    # a problem of the base alone is the base's: reported there once, not again in each overlay
    of_base = {(p.code, p.path, p.message) for p in (*base_schema, *files.problems)}
    spec_dir = Path(base.path).parent
    regions = stack_regions(spec_path)
    accounts = stack_accounts(spec_path)
    checked: dict[str, _Checked] = {}
    passed: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # entities alike in several environments
    for env in envs:
        env_problems, result = _check_env(files, env, overlay_path(spec_path, env), spec_dir, of_base, passed)
        problems.extend(env_problems)
        if result is not None:
            checked[env] = result
            layers = [result.overlay, base] if result.overlay is not None else [base]  # the region is the root's
            problems.extend(region_problems(result.data, Locator(layers), regions.get(env, [])))
            problems.extend(account_problems(result.data, Locator(layers), env, base.file, accounts.get(env, [])))
    registry = files.data.get("registry")
    if isinstance(registry, dict) and isinstance(registry.get("account"), str):
        # the registry stack's config (stacks/Pulumi.registry.yaml) against the spec's registry.account
        problems.extend(account_mismatches(registry["account"], ("registry", "account"), Locator(files.docs),
                                    accounts.get(REGISTRY_STACK, [])))
    unique = sorted(set(problems), key=lambda p: (p.file, p.line, p.column, p.path, p.code, p.message))
    return unique, checked


def _check_env(files: SpecFiles, env: str, overlay_file: Path | None, spec_dir: Path, of_base: set[tuple[str, str, str]],
               passed: dict[tuple[Any, ...], tuple[Any, ...]]) -> tuple[list[Problem], _Checked | None]:
    base, combined = files.root, files.data
    problems: list[Problem] = []
    overlay: LoadedDocument | None = None
    if not ENV_PATTERN.fullmatch(env):  # `$` alone would pass a final newline
        file = display_name(overlay_file) if overlay_file else base.file
        problems.append(
            Problem("E-ENV-NAME", file, 1, 1, "", f"environment name '{env}' is not valid: 2-10 lowercase letters and digits, starting with a letter", "rename the overlay file, e.g. stacks/prod.yaml")
        )
    elif env == REGISTRY_STACK:
        file = display_name(overlay_file) if overlay_file else base.file
        problems.append(
            Problem("E-ENV-NAME", file, 1, 1, "", f"environment name '{env}' is taken by the project's model registry stack", "rename the overlay file, e.g. stacks/reg.yaml")
        )
    if overlay_file is None:
        layers = files.docs
        merged = combined
    else:
        inside, reason = project_file(spec_dir, os.path.relpath(overlay_file, spec_dir))
        if inside is None:  # a symlink out of the project: what it points at is not read
            return problems + [Problem("E-FILE-OUTSIDE", display_name(overlay_file), 1, 1, "", "resolves outside the project" if reason == "outside" else "is not a readable regular file",
                                       "make stacks/<env>.yaml a file of the project (a symlink must point inside it)")], None
        try:
            overlay = load_yaml(overlay_file, strict=False, allow_empty=True)
        except SpecError as exc:
            return problems + list(exc.problems), None
        problems.extend(overlay.problems)
        if "include" in overlay.data:
            # team files are part of every environment; `include` in an overlay is a category mistake, not a typo
            line, column = overlay.positions[("include",)]
            problems.append(Problem("E-OVERLAY-INCLUDE", overlay.file, line, column, "include", "an overlay cannot include files: only the root spec does",
                                    f"move it to {base.file} (its team files are part of every environment), or remove it"))
            overlay.data = {key: value for key, value in overlay.data.items() if key != "include"}
        if "registry" in overlay.data:
            # one registry per project: an environment says where it deploys (`account`), not where the registry is
            line, column = overlay.positions[("registry",)]
            problems.append(Problem("E-OVERLAY-REGISTRY", overlay.file, line, column, "registry",
                                    "an overlay cannot move the registry: it is one per project, shared by every environment",
                                    f"set `registry: {{account: ...}}` in {base.file} and this environment's own account as `account:` here"))
            overlay.data = {key: value for key, value in overlay.data.items() if key != "registry"}
        problems.extend(schema_problems(overlay.data, Locator([overlay]), kind="overlay"))
        undeclared = _undeclared(files, overlay)
        problems.extend(undeclared)
        layers = [overlay, *files.docs]
        # an undeclared name is reported once, not again for everything it lacks
        adjusting = dict(overlay.data)
        for kind in SPEC_KEYS:
            if isinstance(adjusting.get(kind), dict):
                declared = combined.get(kind) if isinstance(combined.get(kind), dict) else {}
                adjusting[kind] = {name: body for name, body in adjusting[kind].items() if name in declared}
        merged = deep_merge(combined, adjusting)
        # the merged whole can break what neither file breaks alone (a canary without a
        # version): re-check the entries the overlay touched, not the whole spec again
        touched = dict(merged)
        for kind in SPEC_KEYS:
            changed = adjusting.get(kind)
            if isinstance(changed, dict) and isinstance(merged.get(kind), dict):
                touched[kind] = {name: merged[kind][name] for name in changed if name in merged[kind]}
            elif isinstance(merged.get(kind), dict):
                touched[kind] = {}
        problems.extend(p for p in schema_problems(touched, Locator(layers)) if (p.code, p.path, p.message) not in of_base)
    problems.extend(semantic_problems(merged, Locator(layers), env, spec_dir, passed))
    return problems, _Checked(env, merged, base, overlay, files.file_owners, files.teams)


def _undeclared(files: SpecFiles, overlay: LoadedDocument) -> list[Problem]:
    problems = []
    base = files.root
    places = f"{base.file} or the files it includes" if files.teams else base.file
    for kind in SPEC_KEYS:
        names = overlay.data.get(kind)
        if not isinstance(names, dict):
            continue
        declared = files.data.get(kind) if isinstance(files.data.get(kind), dict) else {}
        for name in names:
            if name in declared:
                continue
            line, column = overlay.positions[(kind, name)]
            close = suggest(name, declared)
            fix = f"did you mean '{close}'?" if close else f"declare it in {places} first; an overlay only adjusts what the base declares"
            problems.append(Problem("E-OVERLAY-UNDECLARED", overlay.file, line, column, f"{kind}.{name}", f"not declared in {places}", fix))
    return problems


def validate(spec_path: str | os.PathLike[str], envs: list[str] | None = None) -> list[Problem]:
    """Every problem of the base spec and of each environment (``None``: all), in file order.

    Raises :class:`~modelops.errors.UsageError` for an environment that does not exist.

    Example::

        for problem in validate("modelops.yaml"):
            print(problem)   # modelops.yaml:12:7: models.churn...: unknown key; did you mean ...
    """
    problems, _ = _check(spec_path, envs)
    if problems:
        forget_samples()
    else:
        keep_samples()  # what was read of the data files, for the next run: only for a valid spec
    return problems


def load_environment(spec_path: str | os.PathLike[str], env: str) -> r.Environment:
    """The resolved spec of one environment; raises SpecError (invalid) or UsageError.

    Example::

        load_environment("modelops.yaml", "dev").monitors["churn-latency"].threshold.value   # 0.25
    """
    problems, resolved = check(spec_path, [env])
    if problems:
        raise SpecError(problems)
    return resolved[env]


def check(spec_path: str | os.PathLike[str], envs: list[str] | None = None) -> tuple[list[Problem], dict[str, r.Environment]]:
    """Validate once and resolve: every problem, and (when there are none) each environment.

    What ``validate`` does, without parsing the files a second time to resolve them.

    Example::

        problems, resolved = check("modelops.yaml")
        if not problems:
            print({name: len(env.models) for name, env in resolved.items()})
    """
    try:
        with no_gc():
            problems, checked = _check(spec_path, envs)
            shared: dict[tuple[Any, ...], tuple[Any, Any]] = {}  # entities alike in several environments
            resolved = {} if problems else {name: resolve(item, shared) for name, item in checked.items()}
    except BaseException:
        forget_samples()
        raise
    if problems:
        forget_samples()
        return problems, {}
    keep_samples()  # what was read of the data files, for the next run: only for a valid spec
    return [], resolved


# --------------------------------------------------------------------------- resolution


@functools.cache
def _defaults(definition: str) -> dict[str, Any]:
    """Defaults of the properties of one ``$defs`` entry (or the root, for ``""``)."""
    node = schema() if not definition else schema()["$defs"][definition]
    return {key: prop["default"] for key, prop in node.get("properties", {}).items() if isinstance(prop, dict) and "default" in prop}


def _with_defaults(definition: str, value: Any) -> dict[str, Any]:
    return {**_defaults(definition), **(value if isinstance(value, dict) else {})}


def _ref_default(definition: str) -> dict[str, Any]:
    """The default of a ``$defs`` entry as a whole (e.g. retention ``{noncurrent_days: 90}``)."""
    value = schema()["$defs"][definition].get("default", {})
    return dict(value) if isinstance(value, dict) else {}


def resolve(checked: _Checked, shared: dict[tuple[Any, ...], tuple[Any, Any]] | None = None) -> r.Environment:
    """Build the frozen :class:`~modelops.spec.resolved.Environment` of a validated environment.

    ``shared``, given the same dict for the environments of one spec: an entity that no
    overlay touches is the same mapping in each merged environment (:func:`deep_merge`
    keeps it), and is resolved once, one frozen object in each environment.
    """
    data = checked.data
    spec_dir = Path(checked.base.path).parent
    top = _with_defaults("", data)
    channels = {name: _channel(name, body) for name, body in (data.get("notifications") or {}).items()}
    every_channel = tuple(channels)
    known = {} if shared is None else shared

    def entity(kind: str, name: str, body: dict[str, Any]) -> Any:
        # its owner: its own, else its file's, else the project's (the overlay may set either)
        owner = body.get("owner") or checked.file_owners.get((kind, name)) or data["owner"]
        # what the entity's resolution reads besides its body; the body is kept with the
        # entry, so that its id names no other mapping while the entry exists
        key = (kind, name, id(body), owner, every_channel if kind == "monitors" else spec_dir)
        hit = known.get(key)
        if hit is None or hit[0] is not body:
            if kind == "datasets":
                value = _dataset(name, body, spec_dir, owner)
            elif kind == "models":
                value = _model(name, body, spec_dir, owner)
            else:
                value = _monitor(name, body, every_channel, owner)
            hit = known[key] = (body, value)
        return hit[1]

    datasets = {name: entity("datasets", name, body) for name, body in (data.get("datasets") or {}).items()}
    models = {name: entity("models", name, body) for name, body in (data.get("models") or {}).items()}
    monitors = {name: entity("monitors", name, body) for name, body in (data.get("monitors") or {}).items()}
    taken = set(datasets) | set(models) | set(monitors)
    watched: dict[str, set[str]] = {}
    for monitor in monitors.values():
        if monitor.model is not None:
            watched.setdefault(monitor.model, set()).add(monitor.metric)
    for model in models.values():
        if not model.default_monitors:
            continue
        declared = watched.get(model.name, set())
        for suffix, metric, threshold in (
            ("latency-p99", "latency_p99", r.Threshold(1.0, "seconds", "1s")),
            ("error-rate", "error_rate", r.Threshold(0.01, "ratio", "1%")),
        ):
            name = f"{model.name}-{suffix}"
            if metric in declared or name in taken:
                continue
            # made of these values only: one frozen object for the environments that agree on them
            key = ("default-monitor", name, metric, model.owner, every_channel)
            hit = known.get(key)
            if hit is None:
                hit = known[key] = (key, r.Monitor(
                    name=name,
                    metric=metric,
                    model=model.name,
                    threshold=threshold,
                    period_seconds=60,
                    evaluation_periods=5,
                    notify=every_channel,
                    description=f"Default {metric} monitor of {model.name}",
                    owner=model.owner,
                    default=True,
                ))
            monitors[name] = hit[1]
            taken.add(name)
    return r.Environment(
        project=data["project"],
        env=checked.env,
        owner=data["owner"],
        region=data["region"],
        encryption=top["encryption"],
        protect=bool(top["protect"]),
        tags=tuple((str(k), str(v)) for k, v in (data.get("tags") or {}).items()),
        account=data.get("account"),
        registry_account=(data.get("registry") or {}).get("account"),
        channels=channels,
        datasets=datasets,
        models=models,
        monitors=monitors,
        policies=dict(data.get("policies") or {}),
        spec_file=checked.base.path,
        overlay_file=checked.overlay.path if checked.overlay else None,
        include_files=tuple(doc.path for doc in checked.teams),
    )


def _channel(name: str, body: dict[str, Any]) -> r.Channel:
    return r.Channel(name=name, email=tuple(body.get("email", ())), https=tuple(body.get("https", ())), sqs=tuple(body.get("sqs", ())))


def _project_file(spec_dir: Path, relative: str) -> str:
    """The resolved path of a file the spec names; validation has refused any other."""
    path, reason = project_file(spec_dir, relative)
    if path is None:  # changed on disk since it was validated
        raise UsageError(f"{excerpt(relative)}: {reason} (relative to {display_name(spec_dir)}); run `modelops validate`")
    return str(path)


def _dataset(name: str, body: dict[str, Any], spec_dir: Path, owner: str) -> r.Dataset:
    spec = _with_defaults("dataset", body)
    retention = {**_ref_default("retention"), **spec.get("retention", {})}
    source = _project_file(spec_dir, spec["source"]) if spec.get("source") else None
    if spec.get("columns") is not None:
        columns = tuple((str(k), str(v)) for k, v in spec["columns"].items())
    elif source and spec["format"] == "csv":
        # the sample validate took (kept across runs under the project's .modelops/cache)
        columns = csv_sample(Path(source), spec_dir / ".modelops" / "cache").columns
    elif source and spec["format"] == "parquet":
        columns = tuple(parquet_columns(Path(source)))
    else:
        columns = ()
    return r.Dataset(
        name=name,
        format=spec["format"],
        description=spec.get("description", ""),
        owner=owner,
        source=source,
        columns=columns,
        retention=r.Retention(
            noncurrent_days=retention.get("noncurrent_days", 90),
            archive_after_days=retention.get("archive_after_days"),
            expire_after_days=retention.get("expire_after_days"),
        ),
    )


def _model(name: str, body: dict[str, Any], spec_dir: Path, owner: str) -> r.Model:
    spec = _with_defaults("model", body)
    train = None
    if isinstance(spec.get("train"), dict):
        t = _with_defaults("train", spec["train"])
        train = r.Train(
            estimator=t["estimator"],
            target=t["target"],
            features=tuple(t["features"]) if t.get("features") is not None else None,
            params=tuple(t.get("params", {}).items()),
            test_size=float(t["test_size"]),
            random_state=int(t["random_state"]),
        )
    gates = []
    for metric, text in (spec.get("gates") or {}).items():
        op, value = units.parse_gate(text)
        gates.append(r.Gate(metric=metric, op=op, value=value))  # type: ignore[arg-type]
    return r.Model(
        name=name,
        dataset=spec["dataset"],
        description=spec.get("description", ""),
        owner=owner,
        train=train,
        artifact_source=_project_file(spec_dir, spec["artifact"]) if spec.get("artifact") else None,
        version=spec.get("version"),
        framework_version=spec.get("framework_version"),
        serving=_serving(spec.get("serving") or {}),
        gates=tuple(gates),
        default_monitors=bool(spec["default_monitors"]),
        soak_seconds=int(units.parse_duration(spec["soak"])),
    )


def _serving(body: dict[str, Any]) -> r.Serving:
    spec = _with_defaults("serving", body)
    autoscaling = None
    if isinstance(body.get("autoscaling"), dict):
        a = _with_defaults("autoscaling", body["autoscaling"])
        autoscaling = r.Autoscaling(min=a["min"], max=a["max"], target_invocations=a["target_invocations"])
    serverless = None
    if isinstance(body.get("serverless"), dict):
        s = _with_defaults("serverless", body["serverless"])
        serverless = r.Serverless(memory_mb=s["memory_mb"], max_concurrency=s["max_concurrency"])
    canary = None
    if isinstance(body.get("canary"), dict):
        c = _with_defaults("canary", body["canary"])
        canary = r.Canary(version=c["version"], weight=float(c["weight"]))
    shadow = None
    if isinstance(body.get("shadow"), dict):
        s = _with_defaults("shadow", body["shadow"])
        shadow = r.Shadow(version=s["version"], sample_percent=s["sample_percent"])
    rollout_spec = _with_defaults("rollout", body.get("rollout"))
    mode = rollout_spec["mode"]
    rollout = r.Rollout(mode=mode, percent=rollout_spec.get("percent", r.ROLLOUT_PERCENT.get(mode)) if mode != "all_at_once" else None,
                        wait_seconds=int(units.parse_duration(rollout_spec["wait"])))
    capture = {**_ref_default("data_capture"), **_with_defaults("data_capture", body.get("data_capture"))}
    # serverless endpoints cannot capture data (validation refuses an explicit request)
    enabled = bool(capture["enabled"]) and serverless is None
    # with autoscaling, an unset instance count starts at the autoscaling minimum
    count = body.get("instance_count", autoscaling.min if autoscaling else spec["instance_count"])
    return r.Serving(
        instance_type=spec["instance_type"],
        instance_count=count,
        autoscaling=autoscaling,
        serverless=serverless,
        canary=canary,
        shadow=shadow,
        data_capture=r.DataCapture(enabled=enabled, sample_percent=capture["sample_percent"]),
        rollout=rollout,
    )


def _monitor(name: str, body: dict[str, Any], every_channel: tuple[str, ...], owner: str) -> r.Monitor:
    spec = _with_defaults("monitor", body)
    side = "above" if "above" in body else "below"
    period_text, length_text = units.monitor_timing(body)
    period = int(units.parse_duration(period_text))
    length = int(units.parse_duration(length_text))
    threshold = units.parse_threshold(spec["metric"], body[side])
    return r.Monitor(
        name=name,
        metric=spec["metric"],
        model=spec.get("model"),
        dataset=spec.get("dataset"),
        comparison=side,  # type: ignore[arg-type]
        threshold=threshold,
        period_seconds=period,
        # what the alarm gets, so that `show` and the alarm agree (freshness adds its threshold)
        evaluation_periods=units.alarm_periods(spec["metric"], threshold.value, period, length),
        notify=tuple(body["notify"]) if "notify" in body else every_channel,
        description=spec.get("description", ""),
        owner=owner,
        **_job_options(spec),
    )


def _job_options(spec: dict[str, Any]) -> dict[str, Any]:
    """The job options of a job metric's monitor (``schedule`` ... ``no_data``), else none."""
    if spec["metric"] not in r.JOB_METRICS:
        return {}
    labels = spec.get("labels")
    if spec["metric"] == "model_quality" and labels is None and spec.get("model"):
        labels = f"labels/{spec['model']}/"
    return {"schedule": spec.get("schedule", "hourly"), "test": spec.get("test", "auto"),
            "quality": spec.get("quality"), "labels": labels, "no_data": spec.get("no_data", "ok"),
            "instances": int(spec.get("instances", 1))}
