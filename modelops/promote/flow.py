"""Promotion: move a model's pinned version from one environment to the next, on evidence.

An environment overlay (``stacks/<env>.yaml``) pins the exact artifact it serves with
``models: {<model>: {version: "sha256:…"}}``. Promoting ``MODEL`` from ``SOURCE`` to
``TARGET`` copies the digest SOURCE runs into TARGET's overlay, after four gates pass:

``metrics``
    the registry entry of that digest (its model package version's metrics) meets every
    gate of TARGET's resolved model;
``deployed``
    SOURCE really runs it: the artifact object is in SOURCE's artifacts bucket with that
    sha256, an endpoint variant serves it, and the endpoint is ``InService``;
``quiet``
    the endpoint has soaked for the ``soak`` TARGET's model requires (the base spec or
    TARGET's overlay; never SOURCE's) and none of the model's alarms in SOURCE is in
    ALARM or changed state during the soak;
``policies``
    TARGET, rendered with the new pin, passes every mandatory policy.

On success only the pin line of ``stacks/TARGET.yaml`` changes (comments, order and
quoting kept), the package version is marked approved for TARGET in the registry, and
one JSON line is appended to ``stacks/promotions.jsonl``.

:func:`promote_canary` promotes within one environment: its canary's version becomes its
primary (the pin), and the canary leaves the overlay, after the canary's gates (metrics,
canary, quiet of the canary variant's own alarms, policies).

Example::

    result = promote("modelops.yaml", "churn-classifier", "staging", "prod",
                     endpoint_url="http://127.0.0.1:4566")
    result.report.passed          # True
    result.diff                   # the one-line unified diff of stacks/prod.yaml
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ruamel.yaml import YAML

from modelops.components import metrics
from modelops.spec import envs
from modelops.spec.stack_configs import STACKS_DIR
from modelops.ml.artifacts import attach_artifacts, resolve_artifact
from modelops.errors import ApplyError, GateFailed, ModelOpsError, UsageError
from modelops.local.server import REAL_AWS, check_loopback
from modelops.local.server import endpoint_url as local_endpoint
from modelops.promote.gates import (
    Evidence,
    GateResult,
    canary_gate,
    deployed_gate,
    iso,
    policies_gate,
    quiet_gate,
    registry_metrics_gate,
    utc,
)
from modelops.promote import git
from modelops.promote.log import LOG_NAME, LogVerification, append_record, verify_log
from modelops.promote.pin import remove_canary, rewrite_pin, write_atomically
from modelops.registry.store import Registry
from modelops.spec.resolved import Environment, Model
from modelops.spec.problems import suggest


@dataclass(frozen=True)
class PromotionReport:
    """Every gate's result for promoting ``digest`` of ``model`` from ``source`` to ``target``."""

    model: str
    source: str
    target: str
    digest: str
    #: the version TARGET served before: its pin, else the base artifact's digest (None if unbuilt)
    previous_digest: str | None
    gates: tuple[GateResult, ...]
    #: "now" of the evaluation, UTC ISO 8601
    evaluated_at: str
    overlay_file: str
    #: whether TARGET's overlay pinned ``previous_digest`` (False: it ran the base artifact)
    previous_pinned: bool = False

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if not g.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "from": self.source,
            "to": self.target,
            "digest": self.digest,
            "previous_digest": self.previous_digest,
            "previous_pinned": self.previous_pinned,
            "passed": self.passed,
            "evaluated_at": self.evaluated_at,
            "overlay_file": self.overlay_file,
            "gates": [g.to_dict() for g in self.gates],
        }


@dataclass(frozen=True)
class PromotionResult:
    """What :func:`promote` did: ``written`` is False for ``--check`` and for a pin already in place."""

    report: PromotionReport
    written: bool
    #: unified diff of the overlay ('' when nothing was written)
    diff: str = ""
    #: the promotion log record appended (None when nothing was written)
    record: dict[str, Any] | None = None
    log_file: str = ""
    #: why nothing was written, for humans
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.report.to_dict(),
            "written": self.written,
            "diff": self.diff,
            "log_file": self.log_file,
            "note": self.note,
        }


class PromotionRefused(GateFailed):
    """A gate failed (exit 3); ``report`` holds every gate's evidence."""

    code = "E-PROMOTE-GATE"

    def __init__(self, report: PromotionReport) -> None:
        self.report = report
        names = ", ".join(g.name for g in report.failed)
        super().__init__(
            f"promotion of {report.model} from {report.source} to {report.target} refused: "
            f"gate(s) failed: {names}"
        )



# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _Context:
    spec: Path
    root: Path
    overlay: Path
    #: SOURCE's overlay (None for an implicit dev without one)
    source_overlay: Path | None
    model: str
    source_env: Environment
    target_env: Environment
    digest: str
    #: TARGET's pin before the promotion
    previous: str | None
    #: what TARGET ran before: its pin, else its base artifact (when built)
    previous_digest: str | None


def _spec(spec_path: str | os.PathLike[str], source: str, target: str) -> Path:
    spec = Path(spec_path).resolve()
    if not spec.is_file():
        raise UsageError(f"{spec_path}: spec file not found; pass the path of modelops.yaml")
    if source == target:
        raise UsageError(f"--from and --to are both {source!r}; promote to the next environment, e.g. --to prod")
    return spec


def _load(spec: Path, model: str, source: str, target: str) -> _Context:
    source_env = envs.load_environment(spec, source)
    target_env = envs.load_environment(spec, target)
    found = envs.overlay_path(spec, target)
    if found is None:
        raise UsageError(
            f"{spec.parent / 'stacks' / f'{target}.yaml'}: no overlay for target environment {target!r} to pin "
            f"the version in; create it (it may be `{{}}`)"
        )
    overlay = Path(found)
    if model not in source_env.models:
        close = suggest(model, sorted(source_env.models))
        hint = f"did you mean '{close}'? " if close else ""
        known = ", ".join(sorted(source_env.models)) or "none"
        raise UsageError(f"{spec}: models.{model}: unknown model; {hint}models: {known}")
    digest = _source_digest(source_env, model)
    pin = target_env.models[model].version
    return _Context(
        spec, spec.parent, overlay, envs.overlay_path(spec, source), model, source_env, target_env,
        digest, pin, pin or _base_digest(target_env, model),
    )


def _attach(env: Environment) -> Environment:
    return attach_artifacts(env, build=False)


def _source_digest(source_env: Environment, model: str) -> str:
    # only this model's artifact: another model of SOURCE being unbuilt is not our concern
    artifact = resolve_artifact(source_env, source_env.models[model], build=False)
    return artifact.digest


def _base_digest(env: Environment, model: str) -> str | None:
    try:
        return resolve_artifact(env, env.models[model], build=False).digest
    except ModelOpsError:
        return None


def _resolve_now(now: datetime | None) -> datetime:
    return utc(now) if now is not None else datetime.now(timezone.utc)


def evaluate_gates(
    spec_path: str | os.PathLike[str],
    model: str,
    source: str,
    target: str,
    *,
    endpoint_url: str | None = None,
    now: datetime | None = None,
) -> PromotionReport:
    """Evaluate every gate for promoting ``model`` from ``source`` to ``target``; writes nothing.

    ``endpoint_url`` defaults to the local emulator of the spec's project; ``now`` (aware or
    UTC) is injectable so that soak periods can be tested.

    Example::

        report = evaluate_gates("modelops.yaml", "churn-classifier", "staging", "prod")
        [(g.name, g.passed) for g in report.gates]
    """
    spec = _spec(spec_path, source, target)
    url = _endpoint(spec.parent, endpoint_url)
    return _evaluate(_load(spec, model, source, target), url, _resolve_now(now))


def _endpoint(root: Path, url: str | None) -> str:
    """The loopback URL (or ``"aws"``: real AWS) to read evidence from; checked before any slow work."""
    if url == REAL_AWS:
        return url
    if url is not None:
        return check_loopback(url)
    # never start an empty emulator: there would be no evidence in it
    return local_endpoint(root, start=False)


def _evaluate(ctx: _Context, url: str, now: datetime) -> PromotionReport:
    report, _ = _evaluate_with(ctx, url, now)
    return report


def _evaluate_with(ctx: _Context, url: str, now: datetime) -> tuple[PromotionReport, Evidence]:
    evidence = Evidence.at(url, ctx.source_env.region, ctx.root)
    target_model: Model = ctx.target_env.models[ctx.model]
    gates = (
        # the registry's word, never a local file: a card edited here cannot pass the gate
        registry_metrics_gate(evidence, ctx.target_env, ctx.model, target_model.gates, ctx.digest),
        deployed_gate(evidence, ctx.source_env, ctx.model, ctx.digest),
        # the wait is the target's requirement: staging's overlay must not shorten prod's soak
        quiet_gate(evidence, ctx.source_env, ctx.model, now, soak_seconds=target_model.soak_seconds),
        policies_gate(ctx.target_env, ctx.model, ctx.digest, _attach),
    )
    return PromotionReport(
        model=ctx.model,
        source=ctx.source_env.env,
        target=ctx.target_env.env,
        digest=ctx.digest,
        previous_digest=ctx.previous_digest,
        previous_pinned=ctx.previous is not None,
        gates=gates,
        evaluated_at=iso(now),
        overlay_file=str(ctx.overlay),
    ), evidence



def promote(
    spec_path: str | os.PathLike[str],
    model: str,
    source: str,
    target: str,
    *,
    endpoint_url: str | None = None,
    check: bool = False,
    now: datetime | None = None,
    who: str | None = None,
    allow_dirty: bool = False,
) -> PromotionResult:
    """Evaluate the gates; when all pass (and not ``check``), rewrite TARGET's pin and log it.

    The spec and both overlays must be committed (the log records the commit), unless
    ``allow_dirty``, which the log records with the files that were not.

    Raises :class:`PromotionRefused` (exit 3) carrying the report when a gate fails,
    :class:`~modelops.errors.UsageError` (exit 2) for an unknown model or environment, or
    uncommitted changes.

    Example::

        promote("modelops.yaml", "churn-classifier", "staging", "prod", check=True).written   # False
    """
    spec = _spec(spec_path, source, target)
    url = _endpoint(spec.parent, endpoint_url)
    ctx = _load(spec, model, source, target)
    # before the gates (they take a while): a promotion that could not be written fails fast
    commit, dirty = (None, None) if check else _provenance(ctx, allow_dirty)
    report, evidence = _evaluate_with(ctx, url, _resolve_now(now))
    if not report.passed:
        raise PromotionRefused(report)
    log = ctx.overlay.parent / LOG_NAME
    if check:
        return PromotionResult(report, written=False, log_file=str(log), note="--check: nothing written")
    if ctx.previous == ctx.digest:
        return PromotionResult(report, written=False, log_file=str(log), note=f"{target} already pins {ctx.digest}")

    def pinned(resolved: Any) -> str | None:
        return None if resolved.version == ctx.digest else f"resolves to version {resolved.version!r}, not {ctx.digest}"

    return _write_promotion(ctx, report, evidence, model, source, target, log,
                            lambda text: rewrite_pin(text, model, ctx.digest), pinned,
                            who=who, commit=commit, allow_dirty=allow_dirty, dirty=dirty, extra={})


def _write_promotion(ctx: _Context, report: PromotionReport, evidence: Evidence, model: str, source: str,
                     target: str, log: Path, rewrite: Callable[[str], str], check: Callable[[Any], str | None], *,
                     who: str | None, commit: str | None, allow_dirty: bool, dirty: list[str] | None,
                     extra: dict[str, Any]) -> PromotionResult:
    """Rewrite ``target``'s overlay, check that it resolves as ``check`` wants (None: as
    wanted), approve the version in the registry, and append the log record (with ``extra``).
    The pin is only written with its approval: a failure at either step restores the overlay."""
    original = ctx.overlay.read_bytes()
    old_text = original.decode("utf-8")
    new_text = rewrite(old_text)
    write_atomically(ctx.overlay, new_text)
    try:
        wrong = check(envs.load_environment(ctx.spec, target).models[model])
        if wrong:
            raise ApplyError(wrong)
    except (ModelOpsError, KeyError) as exc:
        ctx.overlay.write_bytes(original)
        raise ApplyError(f"{ctx.overlay}: the rewritten overlay does not resolve ({exc}); restored the original") from exc
    who = who or git.who(ctx.root)
    try:
        approval = _approve(evidence, ctx, report, who, commit)
    except Exception as exc:
        ctx.overlay.write_bytes(original)
        if isinstance(exc, ModelOpsError):
            raise ApplyError(f"{exc}; restored {ctx.overlay}") from exc
        raise ApplyError(f"the registry refused to mark {model} {ctx.digest} approved for {target} "
                         f"({_code(exc)}: {exc}); restored {ctx.overlay} (the promotion role needs "
                         "sagemaker:UpdateModelPackage on the registry's package versions)") from exc
    diff = "".join(difflib.unified_diff(old_text.splitlines(True), new_text.splitlines(True),
                                        fromfile=f"a/stacks/{ctx.overlay.name}", tofile=f"b/stacks/{ctx.overlay.name}"))
    record = {
        "model": model,
        "from": source,
        "to": target,
        **extra,
        "digest": ctx.digest,
        "previous_digest": ctx.previous_digest,
        "previous_pinned": ctx.previous is not None,
        "gates": [g.to_dict() for g in report.gates],
        "approval": approval,
        "who": who,
        "when": report.evaluated_at,
        "commit": commit,
        "allow_dirty": allow_dirty,
        "uncommitted": dirty,
    }
    record = append_record(log, record)
    return PromotionResult(report, written=True, diff=diff, record=record, log_file=str(log))


def _code(exc: Exception) -> str:
    return str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code") or type(exc).__name__)


def _approve(evidence: Evidence, ctx: _Context, report: PromotionReport, who: str, commit: str | None) -> dict[str, Any]:
    """Mark the promoted version approved for TARGET in the registry the metrics gate read."""
    registry = Registry.at(evidence.clients, ctx.target_env.project, evidence.endpoint_url)
    note = f"{report.evaluated_at} from {ctx.source_env.env} by {who} commit {(commit or 'none')[:12]}"
    return registry.approve(ctx.model, ctx.digest, ctx.target_env.env, note)


def _provenance(ctx: _Context, allow_dirty: bool) -> tuple[str | None, list[str] | None]:
    """(the commit the spec, its included files and the overlays come from, which of them differ from it).

    Without ``allow_dirty`` an uncommitted file, or no repository at all, is refused: the
    log must name the commit a reviewer can check the promotion against. With it, the
    files that differ are recorded (None: not known, outside a repository).
    """
    # the gates, soak and serving of the model may live in an included team file
    included = dict.fromkeys(Path(f) for env in (ctx.source_env, ctx.target_env) for f in env.include_files)
    files = [ctx.spec, *included, *([ctx.source_overlay] if ctx.source_overlay else []), ctx.overlay]
    commit = git.head_commit(ctx.root)
    changed = git.uncommitted(ctx.root, files) if commit is not None else None
    if changed is None:
        if allow_dirty:
            return commit, None
        raise UsageError(
            f"{ctx.root}: not in a git repository with a commit; a promotion records the commit its spec and "
            "overlays come from: commit them, or pass --allow-dirty (recorded in the log)"
        )
    names = [os.path.relpath(path, ctx.root) for path in changed]
    if names and not allow_dirty:
        raise UsageError(
            f"{changed[0]}: uncommitted changes{' (also ' + ', '.join(names[1:]) + ')' if names[1:] else ''}; "
            "a promotion is made from committed files: commit them, or pass --allow-dirty (recorded in the log)"
        )
    return commit, names


def verify_promotions(spec_path: str | os.PathLike[str]) -> LogVerification:
    """Check the hash chain of the promotion log beside the spec's overlays (``stacks/promotions.jsonl``).

    Example::

        verify_promotions("modelops.yaml").valid      # False names .line and .problem
    """
    spec = Path(spec_path)
    if not spec.is_file():
        raise UsageError(f"{spec_path}: spec file not found; pass the path of modelops.yaml")
    return verify_log(Path(os.path.abspath(spec)).parent / STACKS_DIR / LOG_NAME)


# --------------------------------------------------------------------------- canary


def _load_canary(spec: Path, model: str, env_name: str) -> _Context:
    env = envs.load_environment(spec, env_name)
    found = envs.overlay_path(spec, env_name)
    if model not in env.models:
        close = suggest(model, sorted(env.models))
        hint = f"did you mean '{close}'? " if close else ""
        raise UsageError(f"{spec}: models.{model}: unknown model; {hint}models: {', '.join(sorted(env.models)) or 'none'}")
    canary = env.models[model].serving.canary
    if canary is None:
        raise UsageError(f"{spec}: models.{model}.serving.canary: {model} runs no canary in {env_name}; "
                         f"set one in stacks/{env_name}.yaml and deploy it first")
    if found is None or "canary" not in (((_overlay_models(Path(found)).get(model) or {}).get("serving")) or {}):
        raise UsageError(f"{spec}: models.{model}.serving.canary: set outside stacks/{env_name}.yaml; a canary is "
                         f"promoted in the overlay of the environment it runs in: move it to stacks/{env_name}.yaml")
    pin = env.models[model].version
    return _Context(spec, spec.parent, Path(found), Path(found), model, env, env, canary.version, pin,
                    pin or _base_digest(env, model))


def _overlay_models(overlay: Path) -> dict[str, Any]:
    """The ``models`` mapping an overlay file sets ({} when none)."""
    data = YAML(typ="safe").load(overlay.read_text(encoding="utf-8")) or {}
    models = data.get("models") if isinstance(data, dict) else None
    return models if isinstance(models, dict) else {}


def _without_canary(env: Environment, model: str) -> Environment:
    models = dict(env.models)
    serving = dataclasses.replace(models[model].serving, canary=None)
    models[model] = dataclasses.replace(models[model], serving=serving)
    return dataclasses.replace(env, models=models)


def _evaluate_canary(ctx: _Context, url: str, now: datetime) -> tuple[PromotionReport, Evidence]:
    env = ctx.target_env
    evidence = Evidence.at(url, env.region, ctx.root)
    model: Model = env.models[ctx.model]
    gates = (
        registry_metrics_gate(evidence, env, ctx.model, model.gates, ctx.digest),
        canary_gate(evidence, env, ctx.model, ctx.digest),
        quiet_gate(evidence, env, ctx.model, now, soak_seconds=model.soak_seconds, variant=metrics.CANARY_VARIANT),
        policies_gate(_without_canary(env, ctx.model), ctx.model, ctx.digest, _attach),
    )
    return PromotionReport(
        model=ctx.model, source=env.env, target=env.env, digest=ctx.digest,
        previous_digest=ctx.previous_digest, previous_pinned=ctx.previous is not None,
        gates=gates, evaluated_at=iso(now), overlay_file=str(ctx.overlay),
    ), evidence


def promote_canary(
    spec_path: str | os.PathLike[str],
    model: str,
    env_name: str,
    *,
    endpoint_url: str | None = None,
    check: bool = False,
    now: datetime | None = None,
    who: str | None = None,
    allow_dirty: bool = False,
) -> PromotionResult:
    """Make ``env_name``'s canary version of ``model`` its primary once the canary's gates pass.

    The overlay's pin becomes the canary's version and its ``serving.canary`` is removed
    (the next ``up`` serves the version from the primary variant alone); the version is
    marked approved for the environment in the registry, and the promotion log records it
    with ``"canary": true`` (``from`` and ``to`` both the environment). Raises like
    :func:`promote`.

    Example::

        promote_canary("modelops.yaml", "churn-classifier", "prod", check=True).report.gates[1].name   # 'canary'
    """
    spec = Path(spec_path).resolve()
    if not spec.is_file():
        raise UsageError(f"{spec_path}: spec file not found; pass the path of modelops.yaml")
    url = _endpoint(spec.parent, endpoint_url)
    ctx = _load_canary(spec, model, env_name)
    commit, dirty = (None, None) if check else _provenance(ctx, allow_dirty)
    report, evidence = _evaluate_canary(ctx, url, _resolve_now(now))
    if not report.passed:
        raise PromotionRefused(report)
    log = ctx.overlay.parent / LOG_NAME
    if check:
        return PromotionResult(report, written=False, log_file=str(log), note="--check: nothing written")

    def promoted(resolved: Any) -> str | None:
        if resolved.version != ctx.digest or resolved.serving.canary is not None:
            return f"resolves to version {resolved.version!r} with canary {resolved.serving.canary!r}"
        return None

    return _write_promotion(ctx, report, evidence, model, env_name, env_name, log,
                            lambda text: remove_canary(rewrite_pin(text, model, ctx.digest), model), promoted,
                            who=who, commit=commit, allow_dirty=allow_dirty, dirty=dirty, extra={"canary": True})
