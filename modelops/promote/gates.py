"""The promotion gates: each reads evidence and returns a :class:`GateResult`, never raises.

``metrics``
    the digest's registry entry (its model package version's ``metric:*`` metadata,
    checked against the model card it registered) meets every gate of TARGET's model;
``deployed``
    SOURCE really runs it: the artifact object is in SOURCE's artifacts bucket with that
    sha256, an endpoint variant serves it, and the endpoint is ``InService``;
``quiet``
    the endpoint has soaked for the ``soak`` TARGET's model requires and none of the
    model's alarms in SOURCE is in ALARM or changed state during the soak;
``policies``
    TARGET, rendered with the new pin, passes every mandatory policy.

A canary promotion (:data:`CANARY_GATES`) replaces ``deployed`` by ``canary`` (the
environment's endpoint serves the version in its canary variant) and reads ``quiet`` from
the canary variant's own alarms.

Example::

    metrics_gate("churn", [Gate("accuracy", ">=", 0.8)], {"metrics": {"accuracy": 0.9}}, digest).passed
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from modelops.components import metrics, naming
from modelops.components.environment import watched_variants
from modelops.errors import ModelOpsError
from modelops.local.server import Target
from modelops.checks.policy import evaluate as evaluate_policies
from modelops.graph.render import render
from modelops.registry.store import METRIC_PREFIX, Registry
from modelops.spec.resolved import Environment, Gate

#: the gates, in the order they are evaluated and reported
GATES = ("metrics", "deployed", "quiet", "policies")
#: the gates of promoting an environment's canary to its primary
CANARY_GATES = ("metrics", "canary", "quiet", "policies")
#: alarm names per DescribeAlarms call (the API's maximum)
_ALARM_BATCH = 100

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
        target = Target.for_project(root or Path.cwd(), url, allow_aws=True)
        return cls(target.url, target.clients(region))

    def client(self, service: str) -> Any:
        return self.clients.client(service)


def utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def iso(value: datetime) -> str:
    return utc(value).isoformat(timespec="seconds").replace("+00:00", "Z")


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


def metrics_gate(model: str, gates: Iterable[Gate], card: dict[str, Any] | str, digest: str, *,
                 source: str = "the model card") -> GateResult:
    """The metrics of ``card`` against the target's gates (``card`` is a str when there is none: why).

    ``source`` names where the metrics come from, for the evidence (``the registry entry``).

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
            parts.append(f"{c['metric']} missing from {source} (needs {c['op']} {c['threshold']:g})")
        else:
            mark = "meets" if c["passed"] else "fails"
            parts.append(f"{c['metric']} {c['actual']:.4g} {mark} {c['op']} {c['threshold']:g}")
    passed = all(c["passed"] for c in checks)
    return GateResult("metrics", passed, "; ".join(parts), {"digest": digest, "checks": checks})


def registry_metrics_gate(evidence: Evidence, env: Environment, model: str, gates: Iterable[Gate],
                          digest: str) -> GateResult:
    """The ``metrics`` gate on the registry's word: the package version registered for ``digest``.

    The metrics are the version's ``metric:<name>`` customer metadata. Metadata can be
    updated after publishing (``UpdateModelPackage``), a version's model metrics cannot, so
    each metric is checked against the model card the version registered as its
    model-quality statistics (the registry's ``card.json``): a difference fails. A version
    that is not registered, or is ``Rejected``, fails. Nothing local is read.

    Example::

        registry_metrics_gate(Evidence.at(url, env.region), prod_env, "churn", prod_env.models["churn"].gates, d)
    """
    gates = tuple(gates)
    details: dict[str, Any] = {"digest": digest}
    try:
        account = str(evidence.client("sts").get_caller_identity()["Account"])
    except Exception as exc:  # noqa: BLE001 - an unreachable registry is evidence, not a crash
        return GateResult("metrics", False, f"cannot reach the registry at {evidence.endpoint_url}: {_error_code(exc)}",
                          details)
    registry = Registry(evidence.clients, env.project, account, evidence.endpoint_url)
    details["group"] = registry.group(model)
    try:
        described = registry.version_of(model, digest)
    except Exception as exc:  # noqa: BLE001
        return GateResult("metrics", False, f"cannot read {registry.group(model)} ({_error_code(exc)})", details)
    if described is None:
        return GateResult("metrics", False,
                          f"{digest} is not in the registry ({registry.group(model)}): its metrics are unknown; "
                          f"publish it (`modelops publish {model}` on the commit that built it)", details)
    version, status = described.get("ModelPackageVersion"), described.get("ModelApprovalStatus")
    details.update(package_arn=described.get("ModelPackageArn"), package_version=version, approval=status)
    where = f"registry version {version} ({status})"
    if status == "Rejected":
        return GateResult("metrics", False, f"{where}: the version was rejected in the registry", details)
    metadata = described.get("CustomerMetadataProperties") or {}
    metrics: dict[str, float] = {}
    for key, value in metadata.items():
        if key.startswith(METRIC_PREFIX):
            try:
                metrics[key.removeprefix(METRIC_PREFIX)] = float(value)
            except ValueError:
                return GateResult("metrics", False, f"{where}: {key}={value!r} is not a number", details)
    stats = (((described.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri", "")
    details["statistics"] = stats
    if gates and stats:
        prefix = f"s3://{registry.bucket}/"
        why = "it is not in the registry bucket"
        try:
            body = registry.read(stats.removeprefix(prefix)) if stats.startswith(prefix) else None
            registered = (json.loads(body.decode("utf-8")).get("metrics") or {}) if body is not None else None
        except Exception as exc:  # noqa: BLE001 - unreadable evidence fails the gate
            registered, why = None, _error_code(exc) + _hint(_error_code(exc), evidence.endpoint_url)
        if registered is None:
            return GateResult("metrics", False, f"{where}: its registered model card {stats} cannot be read ({why})",
                              details)
        for name in sorted(set(metrics) | set(registered)):
            a, b = metrics.get(name), registered.get(name)
            if a is None or not isinstance(b, (int, float)) or abs(a - float(b)) > 1e-9 * max(1.0, abs(a)):
                return GateResult("metrics", False,
                                  f"{where}: metadata {METRIC_PREFIX}{name}={a!r} differs from {b!r} in its registered "
                                  f"model card {stats}: the metadata was changed after publishing; re-publish is not "
                                  "possible for a digest, so investigate the change (CloudTrail UpdateModelPackage)",
                                  details)
    result = metrics_gate(model, gates, {"metrics": metrics}, digest, source="the registry entry")
    return GateResult("metrics", result.passed, f"{where}: {result.evidence}", {**details, **result.details})


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
    """SOURCE runs ``digest``: the registry object has that sha256 and SOURCE's endpoint serves it InService.

    Example::

        deployed_gate(Evidence.at("http://127.0.0.1:4566", env.region), env, "churn", digest).evidence
        # 's3://churn-registry-…/models/churn/…/model.tar.gz sha256 matches …; endpoint … InService …'
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
    # every environment's models read their package out of the registry (components/model.py)
    bucket = naming.registry_bucket_name(env.project, env.registry_account or account)
    key = naming.registry_key(model, digest)
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
            problems.append(f"{uri} not found ({code}); publish it (`modelops publish {model}`) and deploy "
                            f"{env.env} (`modelops up --env {env.env}`)")
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


def canary_gate(evidence: Evidence, env: Environment, model: str, digest: str) -> GateResult:
    """``env``'s endpoint of ``model`` is InService and its canary variant serves ``digest``.

    Example::

        canary_gate(Evidence.at(url, env.region), env, "churn", env.models["churn"].serving.canary.version).evidence
        # 'endpoint … InService; variant canary serves sha256:…'
    """
    details: dict[str, Any] = {"digest": digest, "variant": metrics.CANARY_VARIANT}
    endpoint_name = naming.endpoint_name(env.project, env.env, model)
    details["endpoint"] = endpoint_name
    sm = evidence.client("sagemaker")
    try:
        endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    except Exception as exc:  # noqa: BLE001
        return GateResult("canary", False, f"endpoint {endpoint_name} not found in {env.env} ({_error_code(exc)}); "
                          f"deploy it with `modelops up --env {env.env}`", details)
    problems: list[str] = []
    status = endpoint.get("EndpointStatus")
    details["endpoint_status"] = status
    if status != "InService":
        problems.append(f"endpoint {endpoint_name} is {status}, not InService")
    variants = {v["VariantName"]: v for v in config.get("ProductionVariants", [])}
    canary = variants.get(metrics.CANARY_VARIANT)
    if canary is None:
        problems.append(f"endpoint {endpoint_name} has no {metrics.CANARY_VARIANT} variant "
                        f"(variants: {', '.join(sorted(variants)) or 'none'}); deploy the canary first")
    else:
        try:
            described = sm.describe_model(ModelName=canary["ModelName"])
        except Exception as exc:  # noqa: BLE001
            problems.append(f"cannot read the canary's model {canary['ModelName']} ({_error_code(exc)})")
        else:
            containers = [described.get("PrimaryContainer")] + list(described.get("Containers", []))
            urls = [u for c in containers if c for u in (c.get("ModelDataUrl"),
                    c.get("ModelDataSource", {}).get("S3DataSource", {}).get("S3Uri")) if u]
            details["served"] = urls
            # content-addressed: the digest is in the key wherever the package lives
            if not any(digest.removeprefix("sha256:") in u for u in urls):
                problems.append(f"the {metrics.CANARY_VARIANT} variant of {endpoint_name} serves "
                                f"{', '.join(urls) or 'no S3 artifact'}, not {digest}")
    facts = [f"endpoint {endpoint_name} InService", f"variant {metrics.CANARY_VARIANT} serves {digest}"]
    return GateResult("canary", not problems, "; ".join(problems or facts), details)


def quiet_gate(evidence: Evidence, env: Environment, model: str, now: datetime, *, soak_seconds: int,
               variant: str | None = None) -> GateResult:
    """No alarm of the model in SOURCE (``env``) fired during the soak, and the soak has elapsed.

    ``soak_seconds`` is what the environment promoted *to* requires (its resolved model's
    ``soak``): the source's own overlay must not be able to shorten the wait for prod.
    moto implements no alarm history, so this reads each alarm's state and the time of its
    last change: an alarm OK (or without data) since before the soak began has been so for
    the whole soak; one that changed state within it, is in ALARM, or is missing fails.
    With ``variant`` (``metrics.CANARY_VARIANT``) the alarms read are that variant's own
    (``naming.variant_alarm_name``), and at least one must watch it.

    Example::

        quiet_gate(Evidence.at(url, env.region), env, "churn", now=datetime.now(timezone.utc),
                   soak_seconds=prod_env.models["churn"].soak_seconds).passed
    """
    now = utc(now)
    soak = soak_seconds
    soak_start = now - timedelta(seconds=soak)
    details: dict[str, Any] = {"soak_seconds": soak, "soak_start": iso(soak_start), "now": iso(now), "alarms": []}
    problems: list[str] = []
    facts: list[str] = []

    endpoint_name = naming.endpoint_name(env.project, env.env, model)
    try:
        endpoint = evidence.client("sagemaker").describe_endpoint(EndpointName=endpoint_name)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"endpoint {endpoint_name} not found ({_error_code(exc)}): the soak cannot be measured")
    else:
        modified = utc(endpoint.get("LastModifiedTime") or endpoint["CreationTime"])
        details["endpoint_last_modified"] = iso(modified)
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
    if variant is None:
        names = {naming.alarm_name(env.project, env.env, m): m for m in monitors}
    else:
        names = {naming.variant_alarm_name(env.project, env.env, m, variant): m for m in monitors
                 if variant in watched_variants(env, env.monitors[m])}
        if not names:
            problems.append(f"no alarm watches the {variant} variant of {model} in {env.env}: its quiet is no evidence; "
                            f"add a monitor of {model} on {', '.join(sorted(metrics.VARIANT_METRICS))}")
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
            changed = utc(alarm["StateUpdatedTimestamp"])
            details["alarms"].append({"alarm": alarm_name, "state": state, "since": iso(changed)})
            if state == "ALARM":
                reason = alarm.get("StateReason") or ""
                problems.append(f"alarm {alarm_name} is in ALARM since {iso(changed)}" + (f" ({reason})" if reason else ""))
            elif changed > soak_start:
                problems.append(
                    f"alarm {alarm_name} changed to {state} at {iso(changed)}, within the soak "
                    f"(since {iso(soak_start)}): it may have fired; quiet again after {iso(changed + timedelta(seconds=soak))}"
                )
        quiet = [n for n in sorted(names) if n in found and found[n]["StateValue"] != "ALARM"
                 and utc(found[n]["StateUpdatedTimestamp"]) <= soak_start]
        if names:
            of = f" of the {variant} variant" if variant else ""
            facts.append(f"{len(quiet)}/{len(names)} alarms{of} quiet since before {iso(soak_start)}")
        else:
            facts.append(f"no monitors watch {model} in {env.env}")
    return GateResult("quiet", not problems, "; ".join(problems if problems else facts), details)


def policies_gate(target_env: Environment, model: str, digest: str, attach: Callable[[Environment], Environment] | None) -> GateResult:
    """TARGET with the new pin, rendered, passes every mandatory policy.

    Fails (never passes) when TARGET does not render.

    Example::

        policies_gate(prod_env, "churn-classifier", digest, attach).evidence
        # '6 policies checked on 41 resources: no mandatory finding'
    """
    details: dict[str, Any] = {"digest": digest}
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

