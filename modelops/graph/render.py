"""Render: run the ModelOps program against a recording backend, get the resource graph.

No cloud and no credentials: every registration gets a deterministic fake ID and the
outputs its dependants read (ARNs, names, key IDs...), all derived from its URN and inputs,
so the same spec always renders the same graph. ``plan`` prints it; ``diff`` compares two.

Example::

    graph = render(env)                     # env: resolved, artifacts attached
    graph.counts()["aws:s3/bucket:Bucket"]  # 2
    graph.to_json()["resources"][0]["urn"]
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pulumi
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

from modelops.spec.resolved import Environment
from modelops.perf import no_gc
from modelops.graph.forked import fork_map, process_budget
from modelops.graph import resource_types as rt
from modelops.graph.resource_types import CALLER_IDENTITY, GET_ALIAS, GET_KEY, GET_OBJECTS
from modelops.graph.runtime import ProgramError, Registration, run, settle
from modelops.components.environment import program
from modelops.components.environment import component_entities
from modelops.components.naming import prefix
from modelops.components.environment import paced_program
from modelops.components.environment import Selection, dataset_of

#: the fake account of every render
ACCOUNT_ID = "123456789012"
#: what a secret input is shown as (https subscription endpoints, ...)
SECRET_MASK = "[secret]"
UNKNOWN_MASK = "[unknown]"

#: what a render knows of the registry: (bucket, key) -> whether it holds the object
RegistryView = Callable[[str, str], bool]

#: the groups a graph splits into: one per spec entity of each kind, and the shared pieces
GROUP_KINDS = ("dataset", "model", "monitor", "shared")

#: registrations per entity of each kind (components included): balances the shards
_WEIGHTS = {"dataset": 9, "model": 10, "monitor": 3}


def _digest(text: str, n: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _plain(value: Any, reveal: bool) -> Any:
    """Inputs as JSON-able data: secrets masked (or revealed), assets as their path."""
    if is_rpc_secret(value):
        return _plain(unwrap_rpc_secret(value), reveal) if reveal else SECRET_MASK
    if isinstance(value, dict):
        return {k: _plain(v, reveal) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v, reveal) for v in value]
    if isinstance(value, pulumi.FileAsset):
        return {"asset": value.path}
    if isinstance(value, (pulumi.Asset, pulumi.Archive)):
        return {"asset": type(value).__name__}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    # Unknowns (preview) and anything else the SDK hands us.
    return UNKNOWN_MASK


def unwrap_secrets(value: Any) -> Any:
    """Inputs with Pulumi secret markers removed (the real values): for backends that apply them.

    Secret inputs (https subscription endpoints) reach a backend wrapped, as the engine sees
    them; a backend that calls AWS needs the value, a printer needs :func:`masked_inputs`.
    """
    if is_rpc_secret(value):
        return unwrap_secrets(unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def _unstacked(urn: str) -> str:
    """The URN as the environment's single stack names it: a resource renders the same fakes
    in any stack of a split environment (``dev.team`` -> ``dev``; environments have no dot)."""
    head, sep, rest = urn.partition("::")
    return f"{head.split('.', 1)[0]}{sep}{rest}" if "." in head else urn


class RenderBackend:
    """A :class:`modelops.graph.runtime.Backend` that records: deterministic IDs and outputs, no cloud.

    Thread-safe: it keeps no state beyond a lock-guarded count of what it created.

    The registry lookups of the program (an S3 object list of one key per served version)
    are answered by ``registry``; without one, the render does not check the registry
    (``validate``'s policy render: the spec, not the state) and every key is there.

    Example::

        run(program_for(env), RenderBackend(region=env.region), project=env.project, stack=env.env)
    """

    def __init__(self, region: str = "us-east-1", account_id: str = ACCOUNT_ID, partition: str = "aws",
                 registry: RegistryView | None = None) -> None:
        self.region = region
        self.registry = registry
        self.account_id = account_id
        self.partition = partition
        self._lock = threading.Lock()
        self.created = 0

    # -- Backend protocol ---------------------------------------------------------------------

    def call(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == CALLER_IDENTITY:
            return {
                "accountId": self.account_id,
                "arn": f"arn:{self.partition}:iam::{self.account_id}:user/modelops-render",
                "userId": "AIDAMODELOPSRENDER",
                "id": self.account_id,
            }
        if token == GET_OBJECTS:
            bucket, prefix = str(args.get("bucket")), str(args.get("prefix") or "")
            there = self.registry is None or self.registry(bucket, prefix)
            return {"bucket": bucket, "prefix": prefix, "keys": [prefix] if there else [], "commonPrefixes": [],
                    "owners": [], "id": bucket}
        if token == GET_ALIAS:
            name = str(args.get("name"))
            key_id = _digest(name, 8) + "-0000-4000-8000-" + _digest(name + "key", 12)
            return {"name": name, "arn": self._arn("kms", name), "targetKeyId": key_id,
                    "targetKeyArn": self._arn("kms", f"key/{key_id}"), "id": name}
        if token == GET_KEY:  # the registry's key in another account, named by its alias ARN
            key = str(args.get("keyId"))
            _, _, _, region, account, alias = (key.split(":", 5) + [""] * 6)[:6]
            key_id = _digest(alias, 8) + "-0000-4000-8000-" + _digest(alias + "key", 12)
            arn = f"arn:{self.partition}:kms:{region}:{account}:key/{key_id}"
            return {"keyId": key, "arn": arn, "id": key_id}
        raise ValueError(f"render backend: unsupported invoke {token}")

    def create(self, reg: Registration) -> tuple[str, dict[str, Any]]:
        inputs = unwrap_secrets(dict(reg.inputs))
        rid, computed = self._computed(reg, inputs)
        with self._lock:
            self.created += 1
        if not pulumi.runtime.is_dry_run():
            # The SDK resolves every output a resource does not report from its input (what
            # a provider echoes back): reporting the computed ones only spares serialising
            # each resource's inputs a second time, and the outputs read are the same.
            return rid, computed
        # A preview resolves unreported outputs as unknown: echo the inputs.
        return rid, {**inputs, **computed}

    # -- what each type computes ------------------------------------------------------------------

    def _arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def _computed(self, reg: Registration, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        fake = _digest(_unstacked(reg.urn))
        name = inputs.get("name") or f"{reg.name}-{fake[:7]}"
        compute = _COMPUTED.get(reg.type)
        if compute is not None:
            return compute(self, reg, inputs, fake, name)
        if "bucket" in inputs:  # a bucket setting of a type the table lacks: its ID is the bucket name
            return str(inputs["bucket"]), {}
        return f"{reg.name}-{fake}", {}


# -- what each type computes: (backend, registration, inputs, URN digest, name) -> (id, outputs).
# The output names are the table's (modelops/data/resource_types.json, ``outputs``).

_Computed = Callable[[RenderBackend, Registration, dict[str, Any], str, str], tuple[str, dict[str, Any]]]


def _bucket(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    bucket = inputs.get("bucket") or f"{reg.name}-{fake[:7]}"
    return bucket, {
        "bucket": bucket,
        "arn": f"arn:{b.partition}:s3:::{bucket}",
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{bucket}.s3.{b.region}.amazonaws.com",
        "region": b.region,
    }


def _bucket_setting(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    # the bucket settings resources: their ID is the bucket name
    return (str(inputs["bucket"]), {}) if "bucket" in inputs else (f"{reg.name}-{fake}", {})


def _kms_key(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    urn = _unstacked(reg.urn)
    key_id = f"{fake[:8]}-{fake[8:12]}-4{_digest(urn + '1', 3)}-8{_digest(urn + '2', 3)}-{_digest(urn + '3', 12)}"
    return key_id, {"keyId": key_id, "arn": b._arn("kms", f"key/{key_id}")}


def _kms_alias(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    return name, {"name": name, "arn": b._arn("kms", name), "targetKeyArn": b._arn("kms", f"key/{inputs.get('targetKeyId')}")}


def _role(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    return name, {"name": name, "arn": b._arn("iam", f"role/{name}", region=False), "uniqueId": f"AROA{fake.upper()}"}


def _role_policy(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    return f"{inputs.get('role')}:{name}", {"name": name}


def _sagemaker(kind: str) -> _Computed:
    def compute(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
        return name, {"name": name, "arn": b._arn("sagemaker", f"{kind}/{name}")}
    return compute


def _package_group(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    group = inputs.get("modelPackageGroupName") or name
    return group, {"modelPackageGroupName": group, "arn": b._arn("sagemaker", f"model-package-group/{group}")}


def _scaling_target(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    return inputs.get("resourceId", fake), {"arn": b._arn("application-autoscaling", f"scalable-target/{fake}")}


def _scaling_policy(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    return name, {"name": name, "arn": b._arn("autoscaling", f"scalingPolicy:{fake}:resource/{inputs.get('resourceId')}:policyName/{name}"), "alarmArns": []}


def _topic(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    arn = b._arn("sns", name)
    return arn, {"name": name, "arn": arn}


def _topic_policy(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    return inputs.get("arn", fake), {"owner": b.account_id}


def _subscription(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    arn = f"{inputs.get('topic')}:{fake[:8]}-{fake[8:12]}"
    return arn, {"arn": arn, "ownerId": b.account_id}


def _alarm(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    return name, {"name": name, "arn": b._arn("cloudwatch", f"alarm:{name}")}


def _dashboard(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    dashboard = inputs.get("dashboardName") or name
    return dashboard, {"dashboardName": dashboard, "dashboardArn": b._arn("cloudwatch", f"dashboard/{dashboard}", region=False)}


def _glue_database(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    return f"{b.account_id}:{name}", {"name": name, "catalogId": b.account_id, "arn": b._arn("glue", f"database/{name}")}


def _glue_table(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    db = inputs.get("databaseName")
    return f"{b.account_id}:{db}:{name}", {"name": name, "catalogId": b.account_id, "arn": b._arn("glue", f"table/{db}/{name}")}


def _bucket_object(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    key = inputs.get("key", fake)
    return key, {
        "key": key,
        "etag": _digest(_unstacked(reg.urn) + "etag", 32),
        "versionId": _digest(_unstacked(reg.urn) + "version", 32),
        "arn": f"arn:{b.partition}:s3:::{inputs.get('bucket')}/{key}",
    }


def _bucket_metric(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    return f"{inputs.get('bucket')}:{name}", {"name": name}


def _pipeline(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    pipeline = inputs.get("pipelineName") or name
    return pipeline, {"pipelineName": pipeline, "arn": b._arn("sagemaker", f"pipeline/{pipeline}")}


def _schedule(b: RenderBackend, reg: Registration, inputs: dict[str, Any], fake: str, name: str) -> tuple[str, dict[str, Any]]:
    group = inputs.get("groupName") or "default"
    return name, {"name": name, "arn": b._arn("scheduler", f"schedule/{group}/{name}")}


_COMPUTED: dict[str, _Computed] = {
    rt.BUCKET: _bucket,
    rt.BUCKET_VERSIONING: _bucket_setting,
    rt.BUCKET_SSE: _bucket_setting,
    rt.BUCKET_PAB: _bucket_setting,
    rt.BUCKET_OWNERSHIP: _bucket_setting,
    rt.BUCKET_POLICY: _bucket_setting,
    rt.BUCKET_LIFECYCLE: _bucket_setting,
    rt.BUCKET_OBJECT: _bucket_object,
    rt.BUCKET_METRIC: _bucket_metric,
    rt.KMS_KEY: _kms_key,
    rt.KMS_ALIAS: _kms_alias,
    rt.ROLE: _role,
    rt.ROLE_POLICY: _role_policy,
    rt.SAGEMAKER_MODEL: _sagemaker("model"),
    rt.ENDPOINT_CONFIG: _sagemaker("endpoint-config"),
    rt.ENDPOINT: _sagemaker("endpoint"),
    rt.MODEL_PACKAGE_GROUP: _package_group,
    rt.SCALING_TARGET: _scaling_target,
    rt.SCALING_POLICY: _scaling_policy,
    rt.TOPIC: _topic,
    rt.TOPIC_POLICY: _topic_policy,
    rt.TOPIC_SUBSCRIPTION: _subscription,
    rt.METRIC_ALARM: _alarm,
    rt.DASHBOARD: _dashboard,
    rt.GLUE_DATABASE: _glue_database,
    rt.GLUE_TABLE: _glue_table,
    rt.PIPELINE: _pipeline,
    rt.SCHEDULE: _schedule,
}


@dataclass
class Graph:
    """The rendered resources of one environment, sorted by URN.

    Example::

        graph.by_entity()[("model", "churn-classifier")]   # the model's resources
    """

    project: str
    stack: str
    registrations: list[Registration]
    #: component name -> (kind, entity), see modelops.components.environment.component_entities
    entities: dict[str, tuple[str, str]] = field(default_factory=dict)
    preview: bool = False
    #: the monthly cost estimate (filled by modelops.review.cost when available)
    cost: Any = None

    @property
    def resources(self) -> list[Registration]:
        """Custom resources only (what AWS would hold), sorted by URN."""
        return [r for r in self.registrations if r.custom]

    def by_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def counts(self) -> dict[str, int]:
        """Resource type -> count (custom resources), sorted by type."""
        return dict(sorted(Counter(r.type for r in self.resources).items()))

    def entity_of(self, reg: Registration, by_urn: dict[str, Registration] | None = None) -> tuple[str, str]:
        """The spec entity a resource belongs to: its nearest entity component, else shared."""
        by_urn = by_urn if by_urn is not None else {r.urn: r for r in self.registrations}
        current: Registration | None = reg
        while current is not None:
            if not current.custom and current.name in self.entities:
                return self.entities[current.name]
            current = by_urn.get(current.parent)
        return ("shared", self.project)

    def by_entity(self) -> dict[tuple[str, str], list[Registration]]:
        """(kind, entity) -> custom resources, kinds in order dataset, model, monitor, shared.

        Example::

            for (kind, entity), regs in graph.by_entity().items(): ...
        """
        by_urn = {r.urn: r for r in self.registrations}
        groups: dict[tuple[str, str], list[Registration]] = {}
        for reg in self.resources:
            groups.setdefault(self.entity_of(reg, by_urn), []).append(reg)
        return dict(sorted(groups.items(), key=lambda kv: (GROUP_KINDS.index(kv[0][0]), kv[0][1])))

    def to_json(self, *, reveal_secrets: bool = False) -> dict[str, Any]:
        """The whole graph as JSON-able data; secret inputs masked unless ``reveal_secrets``."""
        entity_of = {}
        for (kind, entity), regs in self.by_entity().items():
            for reg in regs:
                entity_of[reg.urn] = {"kind": kind, "name": entity}
        return {
            "project": self.project,
            "stack": self.stack,
            "preview": self.preview,
            "counts": self.counts(),
            "cost": self.cost,
            "resources": [
                {
                    "urn": r.urn,
                    "type": r.type,
                    "name": r.name,
                    "custom": r.custom,
                    "parent": r.parent,
                    "entity": entity_of.get(r.urn),
                    "dependencies": list(r.dependencies),
                    "id": r.id,
                    "inputs": _plain(r.inputs, reveal_secrets),
                    "options": {
                        "protect": r.protect,
                        "retainOnDelete": r.retain_on_delete,
                        "deleteBeforeReplace": r.delete_before_replace,
                        "ignoreChanges": list(r.ignore_changes),
                        "replaceOnChanges": list(r.replace_on_changes),
                    },
                }
                for r in self.registrations
            ],
        }


def masked_inputs(reg: Registration) -> dict[str, Any]:
    """A registration's inputs as plain data with secrets masked (for printing)."""
    return _plain(reg.inputs, False)


def program_for(env: Environment) -> Callable[[], None]:
    """The Pulumi program of ``env``: the one the engine, render and the local target all run."""
    return program(env)


def render(env: Environment, *, preview: bool = False, collect: bool = True, jobs: int | None = None,
           registry: RegistryView | None = None) -> Graph:
    """Render ``env`` (artifacts attached) to its resource graph, no cloud involved.

    ``registry`` answers the program's registry lookups (see :class:`RenderBackend`): a
    version it does not hold fails the render with
    :class:`~modelops.components.model.UnpublishedVersion` as its cause.

    A large environment renders in several processes at once (``jobs``, default
    :func:`render_jobs`), each running the program for a shard of the datasets (see
    :func:`render_parallel`); the graph is the same.

    ``collect=False``: for a caller about to exit (``plan``), the run's reference cycles
    are not collected at its end (see :func:`modelops.graph.runtime.run`).

    Example::

        render(env).counts()
    """
    jobs = render_jobs(env) if jobs is None else jobs
    registrations = None
    if jobs > 1:
        registrations = render_parallel(env, jobs, preview=preview, collect=collect, registry=registry)
    if registrations is None:
        registrations = _registrations(env, preview=preview, collect=collect, registry=registry)
    return Graph(
        project=env.project,
        stack=env.env,
        registrations=sorted(registrations, key=lambda r: r.urn),
        entities=component_entities(prefix(env.project, env.env), env),
        preview=preview,
    )


def _registrations(env: Environment, *, preview: bool, collect: bool, entities: Selection | None = None,
                   dashboards: bool = True, registry: RegistryView | None = None) -> list[Registration]:
    return run(
        # the same registrations as program_for(env), a few entities in flight at a time
        paced_program(env, settle, entities=entities, dashboards=dashboards),
        RenderBackend(region=env.region, registry=registry),
        project=env.project,
        stack=env.env,
        preview=preview,
        collect=collect,
    )


def render_jobs(env: Environment) -> int:
    """How many processes rendering ``env`` uses: :func:`process_budget` of its models, never
    more than its datasets (a shard is a set of datasets)."""
    return max(1, min(process_budget(len(env.models)), len(env.datasets)))


def shards(env: Environment, jobs: int) -> list[frozenset[str]]:
    """The datasets in at most ``jobs`` sets of about equal work, largest first.

    A dataset carries its entities (the models reading it, the monitors watching it or
    them), which reference nothing of another dataset's: the sets render independently.

    Example::

        shards(env, 2)     # [frozenset({'customers', ...}), frozenset({...})]
    """
    weight = {name: _WEIGHTS["dataset"] for name in env.datasets}
    for kind, entities in (("model", env.models), ("monitor", env.monitors)):
        for name in entities:
            weight[dataset_of(env, kind, name)] += _WEIGHTS[kind]
    loads: list[tuple[int, int, set[str]]] = [(0, i, set()) for i in range(max(1, jobs))]
    for name in sorted(weight, key=lambda d: (-weight[d], d)):  # largest first, onto the lightest shard
        load, i, names = min(loads)
        names.add(name)
        loads[i] = (load + weight[name], i, names)
    return [frozenset(names) for _, _, names in sorted(loads, key=lambda x: (-x[0], x[1])) if names]


def shard_selection(env: Environment, datasets: frozenset[str]) -> Selection:
    """The entities of a shard: its datasets, the models reading them, the monitors watching either."""
    def of(kind: str, names: Iterable[str]) -> frozenset[str]:
        return frozenset(n for n in names if dataset_of(env, kind, n) in datasets)

    return Selection(datasets=datasets, models=of("model", env.models), monitors=of("monitor", env.monitors))


def render_parallel(env: Environment, jobs: int, *, preview: bool = False, collect: bool = True,
                    registry: RegistryView | None = None) -> list[Registration] | None:
    """Every registration of ``env``, rendered in up to ``jobs`` processes; None if a shard failed.

    The program runs once per shard of :func:`shards`, the first in this process, the others
    in forked ones that send their registrations back (:func:`modelops.graph.forked.fork_map`):
    each builds the shared pieces (key, buckets, topics: its entities use them) and its
    datasets' entities; the first one the dashboards too (they are built from names). The
    shards' registrations together, the shared pieces once, are the single program's. A
    failed shard (a program error, a process killed) gives None: the caller renders in one
    process, which reports the error as it always does. On Ctrl-C the forked processes are
    killed.
    """

    parts = [shard_selection(env, datasets) for datasets in shards(env, jobs)]
    if len(parts) < 2:
        return None

    def here(part: Selection) -> list[Registration]:
        return _registrations(env, preview=preview, collect=collect, entities=part, registry=registry)

    def forked(part: Selection) -> list[tuple[Any, ...]]:
        regs = _registrations(env, preview=preview, collect=False, entities=part, dashboards=False,
                              registry=registry)
        return [r.row() for r in regs]  # rows of field values: pickled and read back faster

    try:
        results = fork_map(forked, parts, here=here)
    except ProgramError:
        return None
    if results is None:
        return None
    registrations: list[Registration] = results[0]
    seen = {r.urn for r in registrations}
    with no_gc():  # tens of thousands of acyclic rows
        for rows in results[1:]:
            for row in rows:
                if row[0] not in seen:  # the shared pieces: the first shard's are the same
                    registrations.append(Registration(*row))
    return registrations
