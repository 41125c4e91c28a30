"""Promotion: move a model's pinned version from one environment to the next, on evidence.

An environment overlay (``stacks/<env>.yaml``) pins the exact artifact it serves with
``models: {<model>: {version: "sha256:…"}}``. Promoting ``MODEL`` from ``SOURCE`` to
``TARGET`` copies the digest SOURCE runs into TARGET's overlay, after four gates pass:

``metrics``
    the model card of that digest meets every gate of TARGET's resolved model;
``deployed``
    SOURCE really runs it: the artifact object is in SOURCE's artifacts bucket with that
    sha256, an endpoint variant serves it, and the endpoint is ``InService``;
``quiet``
    the endpoint has soaked for the model's ``soak`` and none of the model's alarms is in
    ALARM or changed state during the soak;
``policies``
    TARGET, rendered with the new pin, passes every mandatory policy.

On success only the pin line of ``stacks/TARGET.yaml`` changes (comments, order and
quoting kept) and one JSON line is appended to ``stacks/promotions.jsonl``.

Example::

    result = promote("modelops.yaml", "churn-classifier", "staging", "prod",
                     endpoint_url="http://127.0.0.1:4566")
    result.report.passed          # True
    result.diff                   # the one-line unified diff of stacks/prod.yaml
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import getpass
import hashlib
import io
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from components import naming
from modelops.errors import ApplyError, GateFailed, ModelOpsError, UsageError
from modelops.resolved import Environment, Gate, Model

__all__ = [
    "GATES",
    "LOG_NAME",
    "Evidence",
    "GateResult",
    "PromotionRefused",
    "PromotionReport",
    "PromotionResult",
    "append_record",
    "deployed_gate",
    "evaluate_gates",
    "metrics_gate",
    "policies_gate",
    "promote",
    "quiet_gate",
    "rewrite_pin",
]

#: the gates, in the order they are evaluated and reported
GATES = ("metrics", "deployed", "quiet", "policies")
#: the append-only audit trail, next to the overlays
LOG_NAME = "promotions.jsonl"
#: alarm names per DescribeAlarms call (the API's maximum)
_ALARM_BATCH = 100

#: a pin value as written: optionally quoted digest
_PIN_TOKEN = re.compile(r"""(["']?)sha256:[0-9a-f]{64}\1""")

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict with the evidence a reviewer reads (``evidence``) and the data behind it."""

    name: str
    passed: bool
    evidence: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "evidence": self.evidence, "details": self.details}


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


# --------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class Evidence:
    """Where the evidence lives: boto3 clients for one loopback AWS endpoint and region.

    Example::

        Evidence.at("http://127.0.0.1:5000", "eu-west-1").client("s3")
    """

    endpoint_url: str
    clients: Any

    @classmethod
    def at(cls, url: str, region: str, root: Path | None = None) -> "Evidence":
        """Clients for ``url`` (loopback only, dummy credentials), trusting the local emulator's CA."""
        from modelops.local.server import Target

        target = Target.for_project(root or Path.cwd(), url, allow_aws=True)
        return cls(target.url, target.clients(region))

    def client(self, service: str) -> Any:
        return self.clients.client(service)


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _iso(value: datetime) -> str:
    return _utc(value).isoformat(timespec="seconds").replace("+00:00", "Z")


def _human(seconds: float) -> str:
    seconds = int(max(0, round(seconds)))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs and not days:
        parts.append(f"{secs}s")
    return " ".join(parts) or "0s"


_NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})


def _hint(code: str, url: str) -> str:
    # the buckets' TLS-only policy denies every object request over plain HTTP, as in AWS
    if code in ("403", "AccessDenied") and url.startswith("http://"):
        return "; the artifacts bucket only allows TLS: use the local emulator's https:// URL"
    return ""


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


# --------------------------------------------------------------------------- gates


def metrics_gate(model: str, gates: Iterable[Gate], card: dict[str, Any] | str, digest: str) -> GateResult:
    """The model card's metrics against the target's gates (``card`` is a str when there is none: why).

    Example::

        metrics_gate("churn", [Gate("accuracy", ">=", 0.8)], {"metrics": {"accuracy": 0.9}}, d).passed
        # True
    """
    gates = tuple(gates)
    if not gates:
        return GateResult("metrics", True, f"no metric gates declared for {model}", {"digest": digest, "checks": []})
    if not isinstance(card, dict):
        return GateResult("metrics", False, f"no model card: {card}", {"digest": digest})
    metrics = card.get("metrics") or {}
    checks: list[dict[str, Any]] = []
    for gate in gates:
        actual = metrics.get(gate.metric)
        ok = isinstance(actual, (int, float)) and not isinstance(actual, bool) and _OPS[gate.op](float(actual), gate.value)
        checks.append({"metric": gate.metric, "op": gate.op, "threshold": gate.value, "actual": actual, "passed": ok})
    parts = []
    for c in checks:
        if c["actual"] is None:
            parts.append(f"{c['metric']} missing from the model card (needs {c['op']} {c['threshold']:g})")
        else:
            mark = "meets" if c["passed"] else "fails"
            parts.append(f"{c['metric']} {c['actual']:.4g} {mark} {c['op']} {c['threshold']:g}")
    passed = all(c["passed"] for c in checks)
    return GateResult("metrics", passed, "; ".join(parts), {"digest": digest, "checks": checks})


def _artifact_sha256(s3: Any, bucket: str, key: str) -> tuple[str, str]:
    """(hex sha256, how it was obtained) of an S3 object; raises the client error when absent."""
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    stored = head.get("ChecksumSHA256")
    # a multipart upload's checksum is a checksum of part checksums ("…-N"): not the file's
    if stored and "-" not in stored and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
        return base64.b64decode(stored).hex(), "stored S3 SHA-256 checksum"
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest(), f"downloaded {head.get('ContentLength', 0)} bytes and hashed"


def _served_artifacts(sm: Any, endpoint: dict[str, Any]) -> list[str]:
    """ModelDataUrl of every production variant of the endpoint's configuration."""
    urls = []
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    for variant in config.get("ProductionVariants", []):
        described = sm.describe_model(ModelName=variant["ModelName"])
        containers = [described.get("PrimaryContainer")] + list(described.get("Containers", []))
        for container in containers:
            if container and container.get("ModelDataUrl"):
                urls.append(container["ModelDataUrl"])
            source = (container or {}).get("ModelDataSource", {}).get("S3DataSource", {})
            if source.get("S3Uri"):
                urls.append(source["S3Uri"])
    return urls


def deployed_gate(evidence: Evidence, env: Environment, model: str, digest: str) -> GateResult:
    """SOURCE runs ``digest``: the object is in its artifacts bucket with that sha256 and is served InService.

    Example::

        deployed_gate(Evidence.at("http://127.0.0.1:4566", env.region), env, "churn", digest).evidence
        # 's3://churn-staging-artifacts-…/models/churn/…/model.tar.gz sha256 matches …; endpoint … InService …'
    """
    details: dict[str, Any] = {"digest": digest}
    problems: list[str] = []
    facts: list[str] = []
    try:
        account = evidence.client("sts").get_caller_identity()["Account"]
    except Exception as exc:  # noqa: BLE001 - any failure to reach the emulator is evidence, not a crash
        return GateResult(
            "deployed", False, f"cannot reach {evidence.endpoint_url}: {_error_code(exc)}", {"endpoint_url": evidence.endpoint_url}
        )
    bucket = naming.artifacts_bucket_name(env.project, env.env, account)
    key = naming.artifact_key(model, digest)
    uri = f"s3://{bucket}/{key}"
    details["artifact"] = uri
    try:
        actual, how = _artifact_sha256(evidence.client("s3"), bucket, key)
        details["artifact_sha256"] = f"sha256:{actual}"
        details["hashed_by"] = how
        if f"sha256:{actual}" == digest:
            facts.append(f"{uri} sha256 matches ({how})")
        else:
            problems.append(f"{uri} has sha256:{actual[:12]}…, not {digest[:19]}…")
    except Exception as exc:  # noqa: BLE001
        code = _error_code(exc)
        if code in _NOT_FOUND:
            problems.append(f"{uri} not found in {env.env} ({code}); deploy it with `modelops up --env {env.env}`")
        else:
            problems.append(f"{uri} cannot be read ({code}){_hint(code, evidence.endpoint_url)}")

    endpoint_name = naming.endpoint_name(env.project, env.env, model)
    details["endpoint"] = endpoint_name
    sm = evidence.client("sagemaker")
    try:
        endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"endpoint {endpoint_name} not found ({_error_code(exc)})")
    else:
        status = endpoint.get("EndpointStatus")
        details["endpoint_status"] = status
        if status == "InService":
            facts.append(f"endpoint {endpoint_name} InService")
        else:
            problems.append(f"endpoint {endpoint_name} is {status}, not InService")
        try:
            served = _served_artifacts(sm, endpoint)
        except Exception as exc:  # noqa: BLE001
            served = None
            problems.append(f"cannot read what {endpoint_name} serves ({_error_code(exc)})")
        details["served"] = served or []
        if served and any(u == uri or u.endswith(f"/{key}") for u in served):
            facts.append("a variant serves this artifact")
        elif served:
            problems.append(f"endpoint {endpoint_name} serves {', '.join(served)}, not {uri}")
        elif served is not None:
            problems.append(f"no variant of endpoint {endpoint_name} names an S3 model artifact")
    passed = not problems
    return GateResult("deployed", passed, "; ".join(problems if problems else facts), details)


def quiet_gate(evidence: Evidence, env: Environment, model: str, now: datetime) -> GateResult:
    """No alarm of the model in SOURCE fired during the soak, and the soak has elapsed.

    moto implements no alarm history, so this reads each alarm's state and the time of its
    last change: an alarm OK (or without data) since before the soak began has been so for
    the whole soak; one that changed state within it, is in ALARM, or is missing fails.

    Example::

        quiet_gate(Evidence.at(url, env.region), env, "churn", now=datetime.now(timezone.utc)).passed
    """
    now = _utc(now)
    soak = env.models[model].soak_seconds
    soak_start = now - timedelta(seconds=soak)
    details: dict[str, Any] = {"soak_seconds": soak, "soak_start": _iso(soak_start), "now": _iso(now), "alarms": []}
    problems: list[str] = []
    facts: list[str] = []

    endpoint_name = naming.endpoint_name(env.project, env.env, model)
    try:
        endpoint = evidence.client("sagemaker").describe_endpoint(EndpointName=endpoint_name)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"endpoint {endpoint_name} not found ({_error_code(exc)}): the soak cannot be measured")
    else:
        modified = _utc(endpoint.get("LastModifiedTime") or endpoint["CreationTime"])
        details["endpoint_last_modified"] = _iso(modified)
        age = (now - modified).total_seconds()
        if age < soak:
            remaining = soak - age
            details["soak_remaining_seconds"] = int(remaining)
            problems.append(
                f"soak not elapsed: {endpoint_name} last changed {_human(age)} ago; "
                f"{_human(remaining)} of {_human(soak)} remaining"
            )
        else:
            facts.append(f"soaked {_human(age)} (needs {_human(soak)})")

    monitors = sorted(m.name for m in env.monitors.values() if m.model == model)
    names = {naming.alarm_name(env.project, env.env, m): m for m in monitors}
    found: dict[str, dict[str, Any]] = {}
    try:
        cw = evidence.client("cloudwatch")
        ordered = sorted(names)
        for i in range(0, len(ordered), _ALARM_BATCH):
            pages = cw.get_paginator("describe_alarms").paginate(
                AlarmNames=ordered[i : i + _ALARM_BATCH], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            )
            for page in pages:
                for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                    found[alarm["AlarmName"]] = alarm
    except Exception as exc:  # noqa: BLE001
        problems.append(f"cannot read alarms ({_error_code(exc)})")
    else:
        for alarm_name in sorted(names):
            alarm = found.get(alarm_name)
            if alarm is None:
                details["alarms"].append({"alarm": alarm_name, "state": None})
                problems.append(f"alarm {alarm_name} (monitor {names[alarm_name]}) is not deployed in {env.env}")
                continue
            state = alarm["StateValue"]
            changed = _utc(alarm["StateUpdatedTimestamp"])
            details["alarms"].append({"alarm": alarm_name, "state": state, "since": _iso(changed)})
            if state == "ALARM":
                reason = alarm.get("StateReason") or ""
                problems.append(f"alarm {alarm_name} is in ALARM since {_iso(changed)}" + (f" ({reason})" if reason else ""))
            elif changed > soak_start:
                problems.append(
                    f"alarm {alarm_name} changed to {state} at {_iso(changed)}, within the soak "
                    f"(since {_iso(soak_start)}): it may have fired; quiet again after {_iso(changed + timedelta(seconds=soak))}"
                )
        quiet = [n for n in sorted(names) if n in found and found[n]["StateValue"] != "ALARM"
                 and _utc(found[n]["StateUpdatedTimestamp"]) <= soak_start]
        if names:
            facts.append(f"{len(quiet)}/{len(names)} alarms quiet since before {_iso(soak_start)}")
        else:
            facts.append(f"no monitors watch {model} in {env.env}")
    return GateResult("quiet", not problems, "; ".join(problems if problems else facts), details)


def policies_gate(target_env: Environment, model: str, digest: str, attach: Callable[[Environment], Environment] | None) -> GateResult:
    """TARGET with the new pin, rendered, passes every mandatory policy.

    Fails (never passes) when the policy engine or the renderer is not available.

    Example::

        policies_gate(prod_env, "churn-classifier", digest, attach).evidence
        # '6 policies checked on 41 resources: no mandatory finding'
    """
    details: dict[str, Any] = {"digest": digest}
    try:
        from modelops.policy import evaluate as evaluate_policies
        from modelops.render import render
    except ImportError as exc:
        return GateResult("policies", False, f"policy checks unavailable ({exc}); cannot promote without them", details)
    pinned = _with_pin(target_env, model, digest)
    try:
        if attach is not None:
            pinned = attach(pinned)
        rendered = render(pinned)
        registrations = getattr(rendered, "registrations", rendered)
        findings = list(evaluate_policies(pinned, registrations))
    except ModelOpsError as exc:
        return GateResult("policies", False, f"{target_env.env} with the new pin does not render: {exc}", details)
    mandatory = [f for f in findings if _finding_level(f) == "mandatory"]
    details["findings"] = [_finding_dict(f) for f in findings]
    if mandatory:
        text = "; ".join(_finding_text(f) for f in mandatory)
        return GateResult("policies", False, f"mandatory policy finding(s) in {target_env.env}: {text}", details)
    advisory = len(findings) - len(mandatory)
    return GateResult(
        "policies",
        True,
        f"{target_env.env} with the new pin: no mandatory policy finding"
        + (f" ({advisory} advisory)" if advisory else ""),
        details,
    )


def _finding_level(finding: Any) -> str:
    if isinstance(finding, dict):
        return str(finding.get("level", ""))
    return str(getattr(finding, "level", ""))


def _finding_dict(finding: Any) -> dict[str, Any]:
    if isinstance(finding, dict):
        return dict(finding)
    if hasattr(finding, "to_dict"):
        return finding.to_dict()
    if dataclasses.is_dataclass(finding):
        return dataclasses.asdict(finding)
    return {"text": str(finding)}


def _finding_text(finding: Any) -> str:
    d = _finding_dict(finding)
    policy = d.get("policy") or d.get("code") or d.get("name") or ""
    message = d.get("message") or d.get("text") or str(finding)
    return f"{policy}: {message}" if policy else str(message)


def _with_pin(env: Environment, model: str, digest: str) -> Environment:
    models = dict(env.models)
    models[model] = dataclasses.replace(models[model], version=digest, artifact=None)
    return dataclasses.replace(env, models=models)


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _Context:
    spec: Path
    root: Path
    overlay: Path
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
    from modelops.envs import load_environment, overlay_path

    source_env = load_environment(spec, source)
    target_env = load_environment(spec, target)
    found = overlay_path(spec, target)
    if found is None:
        raise UsageError(
            f"{spec.parent / 'stacks' / f'{target}.yaml'}: no overlay for target environment {target!r} to pin "
            f"the version in; create it (it may be `{{}}`)"
        )
    overlay = Path(found)
    if model not in source_env.models:
        from modelops.validate import suggest

        close = suggest(model, sorted(source_env.models))
        hint = f"did you mean '{close}'? " if close else ""
        known = ", ".join(sorted(source_env.models)) or "none"
        raise UsageError(f"{spec}: models.{model}: unknown model; {hint}models: {known}")
    digest = _source_digest(source_env, model)
    pin = target_env.models[model].version
    return _Context(spec, spec.parent, overlay, model, source_env, target_env, digest, pin, pin or _base_digest(target_env, model))


def _attach(env: Environment) -> Environment:
    from modelops.artifacts import attach_artifacts

    return attach_artifacts(env, build=False)


def _source_digest(source_env: Environment, model: str) -> str:
    # only this model's artifact: another model of SOURCE being unbuilt is not our concern
    from modelops.artifacts import resolve_artifact

    artifact = resolve_artifact(source_env, source_env.models[model], build=False)
    return artifact.digest


def _base_digest(env: Environment, model: str) -> str | None:
    from modelops.artifacts import resolve_artifact

    try:
        return resolve_artifact(env, env.models[model], build=False).digest
    except ModelOpsError:
        return None


def _card(digest: str, root: Path) -> dict[str, Any] | str:
    """The model card of ``digest``, or why there is none."""
    from modelops.artifacts import card

    try:
        return card(digest, root)
    except ModelOpsError as exc:
        return str(exc)
    except (OSError, ValueError) as exc:
        return f"the model card of {digest} cannot be read ({exc})"


def _resolve_now(now: datetime | None) -> datetime:
    return _utc(now) if now is not None else datetime.now(timezone.utc)


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
    from modelops.local.server import REAL_AWS, check_loopback
    from modelops.local.server import endpoint_url as local_endpoint

    if url == REAL_AWS:
        return url
    if url is not None:
        return check_loopback(url)
    # never start an empty emulator: there would be no evidence in it
    return local_endpoint(root, start=False)


def _evaluate(ctx: _Context, url: str, now: datetime) -> PromotionReport:
    evidence = Evidence.at(url, ctx.source_env.region, ctx.root)
    target_model: Model = ctx.target_env.models[ctx.model]
    gates = (
        metrics_gate(ctx.model, target_model.gates, _card(ctx.digest, ctx.root), ctx.digest),
        deployed_gate(evidence, ctx.source_env, ctx.model, ctx.digest),
        quiet_gate(evidence, ctx.source_env, ctx.model, now),
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
        evaluated_at=_iso(now),
        overlay_file=str(ctx.overlay),
    )


# --------------------------------------------------------------------------- writing


def rewrite_pin(text: str, model: str, digest: str) -> str:
    """The overlay text with ``models.<model>.version`` set to ``digest`` and nothing else changed.

    A round trip through ruamel.yaml keeps comments, key order, quoting and indentation;
    the result is then checked to differ from ``text`` only where the pin lives (one
    changed line, or only added lines when there was no pin). When the dumper would also
    normalise something else (odd spacing, document markers), the pin is instead spliced
    into the original text at the position ruamel.yaml parsed it from. A missing path is
    created.

    Example::

        rewrite_pin("models:\\n  churn:\\n    version: sha256:aa…\\n", "churn", "sha256:bb…")
        # 'models:\\n  churn:\\n    version: sha256:bb…\\n'
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString
    from ruamel.yaml.util import load_yaml_guess_indent

    _, indent, block_seq_indent = load_yaml_guess_indent(text)
    indent = indent or 2
    block_seq_indent = block_seq_indent or 0
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 1 << 16  # never re-wrap a long line the user wrote
    yaml.indent(mapping=indent, sequence=indent + block_seq_indent, offset=block_seq_indent)
    data = yaml.load(text)
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise UsageError("the overlay is not a mapping; it must be a YAML mapping such as `{}`")

    def block(node: CommentedMap) -> CommentedMap:
        # `{}` written in flow style would otherwise grow into one long flow line
        if not node:
            node.fa.set_block_style()
        return node

    block(data)
    models = data.get("models")
    if models is None:
        models = data["models"] = CommentedMap()
    if not isinstance(models, CommentedMap):
        raise UsageError("models: expected a mapping in the overlay")
    block(models)
    entry = models.get(model)
    if entry is None:
        entry = models[model] = CommentedMap()
    if not isinstance(entry, CommentedMap):
        raise UsageError(f"models.{model}: expected a mapping in the overlay")
    block(entry)
    old = entry.get("version")
    if isinstance(old, SingleQuotedScalarString):
        value: str = SingleQuotedScalarString(digest)
    elif old is not None and not isinstance(old, DoubleQuotedScalarString):
        value = digest
    else:
        value = DoubleQuotedScalarString(digest)
    if old is None:
        # first key of the model: the pin is the first thing a reviewer sees
        entry.insert(0, "version", value)
    else:
        entry["version"] = value
    out = io.StringIO()
    yaml.dump(data, out)
    new = out.getvalue()
    if _is_minimal(text, new, pinned_before=old is not None):
        return new
    spliced = _splice(text, models, entry, model, digest, old, indent)
    if spliced is not None and _is_minimal(text, spliced, pinned_before=old is not None):
        return spliced
    removed, added = _changed_lines(text, new)
    raise ApplyError(
        f"rewriting the pin of {model} would change other lines of the overlay (-{len(removed)} +{len(added)}); "
        f'set models.{model}.version: "{digest}" by hand'
    )


def _splice(
    text: str, models: Any, entry: Any, model: str, digest: str, old: Any, indent: int
) -> str | None:
    """``text`` with the pin replaced (or inserted) at the line ruamel.yaml parsed; None if not possible."""
    lines = text.splitlines(keepends=True)
    if old is not None:
        line, col = entry.lc.value("version")
        match = _PIN_TOKEN.match(lines[line], col)
        if match is None:
            return None
        quote = match.group(1)
        lines[line] = lines[line][: match.start()] + f"{quote}{digest}{quote}" + lines[line][match.end() :]
        return "".join(lines)
    # insertion into an existing block mapping: before its first key, at that key's column
    if len(entry) > 1 and not entry.fa.flow_style():
        first = next(k for k in entry if k != "version")
        line, col = entry.lc.key(first)
        lines.insert(line, f'{" " * col}version: "{digest}"\n')
        return "".join(lines)
    if len(entry) == 1 and len(models) > 1 and not models.fa.flow_style():
        first = next(k for k in models if k != model)
        line, col = models.lc.key(first)
        lines[line:line] = [f"{' ' * col}{model}:\n", f'{" " * (col + indent)}version: "{digest}"\n']
        return "".join(lines)
    return None


def _is_minimal(old: str, new: str, *, pinned_before: bool) -> bool:
    removed, added = _changed_lines(old, new)
    if pinned_before:
        return len(removed) == 1 and len(added) == 1
    # `{}` may become block style: that line alone may go
    return all(line.strip() == "{}" for line in removed) and 1 <= len(added) <= 3


def _changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        (removed if line.startswith("-") else added).append(line[1:])
    return removed, added


def _write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _who(cwd: Path) -> str:
    def git(key: str) -> str:
        try:
            out = subprocess.run(
                ["git", "config", key], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    name, email = git("user.name"), git("user.email")
    if name and email:
        return f"{name} <{email}>"
    if name or email:
        return name or email
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def append_record(log: Path, record: dict[str, Any]) -> None:
    """Append one JSON line; O_APPEND with a single write keeps concurrent appends whole."""
    line = (json.dumps(record, sort_keys=False, separators=(",", ":"), default=str) + "\n").encode("utf-8")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
    finally:
        os.close(fd)
    if written != len(line):
        raise ApplyError(f"{log}: short write ({written} of {len(line)} bytes); check the disk and the last line")


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
) -> PromotionResult:
    """Evaluate the gates; when all pass (and not ``check``), rewrite TARGET's pin and log it.

    Raises :class:`PromotionRefused` (exit 3) carrying the report when a gate fails,
    :class:`~modelops.errors.UsageError` (exit 2) for an unknown model or environment.

    Example::

        promote("modelops.yaml", "churn-classifier", "staging", "prod", check=True).written   # False
    """
    from modelops.envs import load_environment

    spec = _spec(spec_path, source, target)
    url = _endpoint(spec.parent, endpoint_url)
    ctx = _load(spec, model, source, target)
    report = _evaluate(ctx, url, _resolve_now(now))
    if not report.passed:
        raise PromotionRefused(report)
    log = ctx.overlay.parent / LOG_NAME
    if check:
        return PromotionResult(report, written=False, log_file=str(log), note="--check: nothing written")
    if ctx.previous == ctx.digest:
        return PromotionResult(report, written=False, log_file=str(log), note=f"{target} already pins {ctx.digest}")

    original = ctx.overlay.read_bytes()
    old_text = original.decode("utf-8")
    new_text = rewrite_pin(old_text, model, ctx.digest)
    _write_atomically(ctx.overlay, new_text)
    try:
        resolved = load_environment(ctx.spec, target)
        pinned = resolved.models[model].version
        if pinned != ctx.digest:
            raise ApplyError(f"resolves to version {pinned!r}, not {ctx.digest}")
    except (ModelOpsError, KeyError) as exc:
        ctx.overlay.write_bytes(original)
        raise ApplyError(f"{ctx.overlay}: the rewritten overlay does not resolve ({exc}); restored the original") from exc

    diff = "".join(
        difflib.unified_diff(
            old_text.splitlines(True),
            new_text.splitlines(True),
            fromfile=f"a/stacks/{ctx.overlay.name}",
            tofile=f"b/stacks/{ctx.overlay.name}",
        )
    )
    record = {
        "model": model,
        "from": source,
        "to": target,
        "digest": ctx.digest,
        "previous_digest": ctx.previous_digest,
        "previous_pinned": ctx.previous is not None,
        "gates": [g.to_dict() for g in report.gates],
        "who": who or _who(ctx.root),
        "when": report.evaluated_at,
    }
    append_record(log, record)
    return PromotionResult(report, written=True, diff=diff, record=record, log_file=str(log))
