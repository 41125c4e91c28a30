"""The environment at a glance: what runs, against what the spec says, read from AWS.

:func:`collect` reads (never writes) one environment: per model its endpoint (state, each
variant's served version, weight and instance count), the autoscaling target, each
monitor's alarm and the last verdict of its job (``latest.json``), the pinned version, the
latest approved version in the model registry and the last promotion from the audit log;
per dataset the objects under ``data/`` (size, last write) and its freshness alarm.

Whatever differs from the spec is a :class:`Difference`: a variant weight or instance count
changed by hand, capacity outside the autoscaling bounds, a scaling target whose bounds are
not the spec's, an alarm whose actions are disabled or that is missing, an endpoint that is
not InService or serves another version. That is drift of the infrastructure itself.

Example::

    status = collect(env, Target.for_project(Path("."), None).clients(env.region))
    [str(d) for d in status.differences]    # ['churn-classifier: variant primary weight 0.5, spec 1']
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from modelops.components import metrics, naming
from modelops.components.model import SCALABLE_DIMENSION, variant_instances
from modelops.errors import ModelOpsError
from modelops.ml.artifacts import resolve_artifact
from modelops.pages import results
from modelops.promote.log import LOG_NAME, read_records
from modelops.registry.store import APPROVED_PREFIX, DIGEST_KEY, Registry
from modelops.spec.stack_configs import STACKS_DIR
from modelops.spec.resolved import Environment, Model

#: monitors whose value a job computes (and writes a result for); the others are plain alarms
JOB_METRICS = frozenset(metrics.JOB_METRICS)
#: alarm names per DescribeAlarms call (the API's maximum)
_ALARM_BATCH = 100
_WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Difference:
    """One way the live environment is not what the spec declares."""

    entity: str
    message: str

    def __str__(self) -> str:
        return f"{self.entity}: {self.message}"


@dataclass
class VariantStatus:
    name: str
    version: str | None
    weight: float | None
    spec_weight: float | None
    instances: int | None
    #: the count the spec asks for: "2", or the autoscaling bounds "1-4"
    spec_instances: str
    expected_version: str | None = None


@dataclass
class JobVerdict:
    verdict: str
    computed_at: str
    value: float | None
    threshold: float | None
    result: str


@dataclass
class MonitorStatus:
    name: str
    metric: str
    alarm: str
    #: OK | ALARM | INSUFFICIENT_DATA, or None when the alarm does not exist
    state: str | None
    actions_enabled: bool | None
    state_since: str | None
    job: JobVerdict | None = None


@dataclass
class ModelStatus:
    name: str
    endpoint: str
    endpoint_state: str | None
    variants: list[VariantStatus]
    autoscaling: dict[str, Any] | None
    pinned: str | None
    #: the version the spec serves: the pin, else the current build of its train section
    expected_version: str | None
    latest_approved: str | None
    last_promotion: dict[str, Any] | None
    monitors: list[MonitorStatus] = field(default_factory=list)


@dataclass
class DatasetStatus:
    name: str
    bucket: str
    objects: int | None
    bytes: int | None
    last_write: str | None
    freshness: MonitorStatus | None


@dataclass
class EnvironmentStatus:
    project: str
    env: str
    region: str
    account: str
    target: str
    generated_at: str
    models: list[ModelStatus]
    datasets: list[DatasetStatus]
    differences: list[Difference]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["differences"] = [{"entity": d.entity, "message": d.message, "text": str(d)} for d in self.differences]
        return data


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return value.isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value)


def _code(exc: Exception) -> str:
    return str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", type(exc).__name__))


def _digest_of(url: str | None) -> str | None:
    """``sha256:<hex>`` of a content-addressed artifact URL (``.../models/<model>/<hex>/model.tar.gz``)."""
    if not url:
        return None
    parts = url.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-1] == "model.tar.gz" and len(parts[-2]) == 64:
        return f"sha256:{parts[-2]}"
    return url


def _expected_version(env: Environment, model: Model) -> str | None:
    if model.version:
        return model.version
    try:
        return resolve_artifact(env, model, build=False).digest
    except ModelOpsError:
        return None  # not built here: what runs cannot be compared with a build


def _spec_variants(env: Environment, model: Model) -> dict[str, tuple[float, str, str | None]]:
    """Variant -> (weight, instances as the spec says them, version) of the production variants."""
    serving = model.serving
    canary = serving.canary.weight if serving.canary is not None else 0.0
    count = serving.instance_count
    scaling = serving.autoscaling
    if scaling is not None:
        count = min(max(count, scaling.min), scaling.max)
    out: dict[str, tuple[float, str, str | None]] = {}
    primary_count = f"{scaling.min}-{scaling.max}" if scaling is not None else str(count)
    out[metrics.PRIMARY_VARIANT] = (round(1.0 - canary, 6), primary_count, _expected_version(env, model))
    if serving.canary is not None:
        out[metrics.CANARY_VARIANT] = (canary, str(variant_instances(metrics.CANARY_VARIANT, count)),
                                       serving.canary.version)
    if serving.serverless is not None:
        out = {k: (w, "serverless", v) for k, (w, _, v) in out.items()}
    return out


def _alarms(cloudwatch: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(names), _ALARM_BATCH):
        paginator = cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmNames=names[i:i + _ALARM_BATCH]):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                found[alarm["AlarmName"]] = alarm
    return found


class _Reader:
    """The read-only calls of one collection, with the environment's names."""

    def __init__(self, env: Environment, clients: Any, account: str) -> None:
        self.env = env
        self.clients = clients
        self.account = account
        self.differences: list[Difference] = []
        names = [naming.alarm_name(env.project, env.env, m) for m in sorted(env.monitors)]
        self.alarms = _alarms(clients.client("cloudwatch"), names) if names else {}
        log = Path(os.path.abspath(env.spec_file or "modelops.yaml")).parent / STACKS_DIR / LOG_NAME
        self.promotions = read_records(log)

    def differ(self, entity: str, message: str) -> None:
        self.differences.append(Difference(entity, message))

    def monitor(self, name: str) -> MonitorStatus:
        spec = self.env.monitors[name]
        alarm_name = naming.alarm_name(self.env.project, self.env.env, name)
        alarm = self.alarms.get(alarm_name)
        entity = f"monitor {name}"
        if alarm is None:
            self.differ(entity, f"alarm {alarm_name} does not exist; `modelops up --env {self.env.env}` makes it")
            status = MonitorStatus(name, spec.metric, alarm_name, None, None, None)
        else:
            status = MonitorStatus(name, spec.metric, alarm_name, alarm.get("StateValue"),
                                   bool(alarm.get("ActionsEnabled", True)), _iso(alarm.get("StateUpdatedTimestamp")))
            if not status.actions_enabled:
                self.differ(entity, f"alarm {alarm_name} has its actions disabled: it notifies no one "
                                    f"(`aws cloudwatch enable-alarm-actions --alarm-names {alarm_name}`)")
        if spec.model is not None and spec.metric in JOB_METRICS:
            status.job = self.job(name)
        return status

    def job(self, monitor: str) -> JobVerdict | None:
        where = results.location(self.env, monitor, self.account)
        try:
            latest = results.latest_result(self.clients.client("s3"), where)
        except ModelOpsError as exc:
            self.differ(f"monitor {monitor}", str(exc))
            return None
        if latest is None:
            return None
        return JobVerdict(latest["verdict"], latest["computed_at"], latest.get("value"), latest.get("threshold"),
                          where.uri(where.latest_key))

    def model(self, name: str) -> ModelStatus:
        model = self.env.models[name]
        env = self.env
        sm = self.clients.client("sagemaker")
        endpoint = naming.endpoint_name(env.project, env.env, name)
        entity = name
        spec_variants = _spec_variants(env, model)
        state = None
        live: dict[str, dict[str, Any]] = {}
        served: dict[str, str | None] = {}
        try:
            described = sm.describe_endpoint(EndpointName=endpoint)
        except Exception as exc:  # noqa: BLE001 - a missing endpoint is a status, not a crash
            self.differ(entity, f"endpoint {endpoint} not found ({_code(exc)}); `modelops up --env {env.env}` makes it")
        else:
            state = described.get("EndpointStatus")
            if state != "InService":
                self.differ(entity, f"endpoint {endpoint} is {state}, not InService")
            live = {v["VariantName"]: v for v in described.get("ProductionVariants", [])}
            served = self._served(sm, described.get("EndpointConfigName"))
        variants: list[VariantStatus] = []
        scaling = self._scaling(endpoint, model, entity) if model.serving.autoscaling is not None else None
        for variant in sorted(set(spec_variants) | set(live), key=lambda v: (v not in spec_variants, v)):
            want = spec_variants.get(variant)
            have = live.get(variant)
            status = VariantStatus(
                variant, served.get(variant), have.get("CurrentWeight") if have else None,
                want[0] if want else None, have.get("CurrentInstanceCount") if have else None,
                want[1] if want else "-", want[2] if want else None,
            )
            variants.append(status)
            if state is None:
                continue
            if want is None:
                self.differ(entity, f"variant {variant} is live but not in the spec")
                continue
            if have is None:
                self.differ(entity, f"variant {variant} of the spec is not live")
                continue
            self._compare_variant(entity, status, model, scaling)
        promotion = None
        for record in reversed(self.promotions):
            if record.get("model") == name and record.get("to") == env.env:
                promotion = {k: record.get(k) for k in ("when", "from", "to", "digest", "who", "commit")}
                break
        return ModelStatus(
            name, endpoint, state, variants, scaling, model.version, spec_variants[metrics.PRIMARY_VARIANT][2],
            self._latest_approved(name), promotion,
            [self.monitor(m) for m in sorted(env.monitors) if env.monitors[m].model == name],
        )

    def _compare_variant(self, entity: str, status: VariantStatus, model: Model, scaling: dict[str, Any] | None) -> None:
        variant = status.name
        if status.weight is not None and status.spec_weight is not None \
                and abs(float(status.weight) - status.spec_weight) > _WEIGHT_TOLERANCE:
            self.differ(entity, f"variant {variant} weight {status.weight:g}, spec {status.spec_weight:g} "
                                "(changed by hand? the next `up` of a new configuration resets it)")
        count = status.instances
        auto = model.serving.autoscaling
        if count is not None and status.spec_instances != "serverless":
            if variant == metrics.PRIMARY_VARIANT and auto is not None:
                if not auto.min <= count <= auto.max:
                    self.differ(entity, f"variant {variant} runs {count} instance(s), outside the autoscaling "
                                        f"bounds {auto.min}-{auto.max}")
            elif str(count) != status.spec_instances:
                self.differ(entity, f"variant {variant} runs {count} instance(s), spec {status.spec_instances}")
        if status.expected_version and status.version and status.version != status.expected_version:
            self.differ(entity, f"variant {variant} serves {status.version}, spec {status.expected_version}")

    def _served(self, sm: Any, config_name: str | None) -> dict[str, str | None]:
        if not config_name:
            return {}
        try:
            config = sm.describe_endpoint_config(EndpointConfigName=config_name)
        except Exception:  # noqa: BLE001
            return {}
        out: dict[str, str | None] = {}
        for variant in config.get("ProductionVariants", []):
            try:
                described = sm.describe_model(ModelName=variant["ModelName"])
            except Exception:  # noqa: BLE001
                out[variant["VariantName"]] = None
                continue
            container = described.get("PrimaryContainer") or (described.get("Containers") or [{}])[0]
            url = container.get("ModelDataUrl") or container.get("ModelDataSource", {}).get("S3DataSource", {}).get("S3Uri")
            out[variant["VariantName"]] = _digest_of(url)
        return out

    def _scaling(self, endpoint: str, model: Model, entity: str) -> dict[str, Any] | None:
        auto = model.serving.autoscaling
        resource = naming.autoscaling_resource_id(endpoint, metrics.PRIMARY_VARIANT)
        try:
            found = self.clients.client("application-autoscaling").describe_scalable_targets(
                ServiceNamespace="sagemaker", ResourceIds=[resource], ScalableDimension=SCALABLE_DIMENSION,
            ).get("ScalableTargets", [])
        except Exception as exc:  # noqa: BLE001
            self.differ(entity, f"cannot read the scaling target of {endpoint} ({_code(exc)})")
            return None
        if not found:
            self.differ(entity, f"no autoscaling target for {resource}; the spec scales {auto.min}-{auto.max}")
            return None
        target = found[0]
        live = {"min": target.get("MinCapacity"), "max": target.get("MaxCapacity"),
                "spec_min": auto.min, "spec_max": auto.max}
        if (live["min"], live["max"]) != (auto.min, auto.max):
            self.differ(entity, f"autoscaling bounds {live['min']}-{live['max']}, spec {auto.min}-{auto.max}")
        return live

    def _latest_approved(self, model: str) -> str | None:
        """The digest of the newest version the project's registry approved for this environment
        (``modelops promote`` records ``modelops:approved:<env>`` on it), if any."""
        registry = Registry(self.clients, self.env.project, self.account)
        newest: tuple[int, str] | None = None
        try:
            for described in registry.versions(model):
                metadata = described.get("CustomerMetadataProperties") or {}
                digest = metadata.get(DIGEST_KEY)
                if described.get("ModelApprovalStatus") == "Approved" and f"{APPROVED_PREFIX}{self.env.env}" in metadata \
                        and digest:
                    version = int(described.get("ModelPackageVersion") or 0)
                    if newest is None or version > newest[0]:
                        newest = (version, digest)
        except Exception:  # noqa: BLE001 - no registry at the target: nothing approved to show
            return None
        return newest[1] if newest else None

    def dataset(self, name: str) -> DatasetStatus:
        env = self.env
        bucket = naming.bucket_name(env.project, env.env, name, self.account)
        objects = size = 0
        last: datetime | None = None
        s3 = self.clients.client("s3")
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="data/"):
                for obj in page.get("Contents", []):
                    objects += 1
                    size += int(obj.get("Size") or 0)
                    if last is None or obj["LastModified"] > last:
                        last = obj["LastModified"]
        except Exception as exc:  # noqa: BLE001
            self.differ(f"dataset {name}", f"bucket {bucket} cannot be listed ({_code(exc)})")
            counted: tuple[int | None, int | None] = (None, None)
        else:
            counted = (objects, size)
        fresh = [m for m in sorted(env.monitors) if env.monitors[m].dataset == name and env.monitors[m].metric == "freshness"]
        return DatasetStatus(name, bucket, counted[0], counted[1], _iso(last), self.monitor(fresh[0]) if fresh else None)


def collect(env: Environment, clients: Any, target: str = "", now: datetime | None = None) -> EnvironmentStatus:
    """Read the live state of ``env`` with ``clients`` (a :class:`~modelops.local.server.Clients`).

    Example::

        collect(env, Target.for_project(Path("."), url).clients(env.region), target=url).differences
    """
    account = clients.client("sts").get_caller_identity()["Account"]
    reader = _Reader(env, clients, account)
    models = [reader.model(m) for m in sorted(env.models)]
    datasets = [reader.dataset(d) for d in sorted(env.datasets)]
    # dataset monitors other than freshness (none today) still get their alarm checked
    seen = {m.name for s in models for m in s.monitors} | {d.freshness.name for d in datasets if d.freshness}
    for name in sorted(set(env.monitors) - seen):
        reader.monitor(name)
    moment = now or datetime.now(timezone.utc)
    return EnvironmentStatus(env.project, env.env, env.region, account, target, _iso(moment) or "",
                             models, datasets, reader.differences)
