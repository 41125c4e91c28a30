"""The resolved spec of one environment: plain, frozen data, defaults filled in.

This is the only thing components ever receive. It is built by :func:`modelops.spec.envs.resolve`
from a validated base spec and the environment's overlay; nothing here reads files or the
environment, and every value is already parsed (durations in seconds, thresholds in the
metric's own unit). The one exception is a data source's digest (:class:`SourceDigest`):
it is computed the first time it is read, by a render (the source's S3 key is
content-addressed), so that ``validate`` reads no more of a data file than its header and a
bounded sample.

Example::

    env = resolve(load_spec("modelops.yaml"), "dev")
    env.models["churn-classifier"].serving.instance_type   # 'ml.m5.large'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

from modelops.errors import UsageError
from modelops.files import unchanged_file_digest


class EntityKind(NamedTuple):
    """One named collection of a spec, in each vocabulary that names it."""

    #: the key in the spec (``notifications``)
    key: str
    #: one of them, in messages and graph groups (``notification``)
    singular: str
    #: the attribute of a resolved :class:`Environment` (``channels``)
    attr: str


#: the named collections of a spec, in the order reviews and messages list them
ENTITY_KINDS = (
    EntityKind("datasets", "dataset", "datasets"),
    EntityKind("models", "model", "models"),
    EntityKind("monitors", "monitor", "monitors"),
    EntityKind("notifications", "notification", "channels"),
)

Encryption = Literal["kms", "sse-s3"]
PolicyLevel = Literal["mandatory", "advisory", "off"]

MODEL_METRICS = (
    "latency_p50",
    "latency_p90",
    "latency_p99",
    "latency_avg",
    "error_rate",
    "invocations",
    "cpu_utilization",
    "memory_utilization",
    "data_drift",
    "data_quality",
    "prediction_drift",
    "model_quality",
)
#: model metrics a scheduled monitor job computes (the rest are CloudWatch's own)
JOB_METRICS = ("data_drift", "data_quality", "prediction_drift", "model_quality")
#: seconds between two runs of a monitor job, per ``schedule``
SCHEDULE_SECONDS = {"hourly": 3600, "daily": 86400}
DATASET_METRICS = ("freshness",)


@dataclass(frozen=True)
class Retention:
    noncurrent_days: int = 90
    archive_after_days: int | None = None
    expire_after_days: int | None = None
    abort_multipart_days: int = 7


class SourceDigest:
    """The ``source_digest`` field of a :class:`Dataset`: as given, or, when not given and the
    dataset has a ``source``, ``sha256:<hex>`` of that file, computed when first read and
    kept (:func:`modelops.files.unchanged_file_digest`: once per process while unchanged).

    A dataclass field whose default is a descriptor reads and writes through it, so
    equality, :func:`dataclasses.replace` and :func:`modelops.plain.plain` see the digest
    like any other field value."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> str | None:
        if obj is None:
            return None  # the field's default
        value = obj.__dict__.get(self._slot)
        if value is None and obj.source:
            try:
                value = unchanged_file_digest(obj.source)
            except OSError as exc:
                raise UsageError(f"dataset '{obj.name}': its source {obj.source} cannot be read ({exc.strerror}); "
                                 "run `modelops validate`") from None
            obj.__dict__[self._slot] = value
        return value

    def __set__(self, obj: Any, value: str | None) -> None:
        obj.__dict__[self._slot] = value


@dataclass(frozen=True)
class Dataset:
    name: str
    format: Literal["csv", "jsonl", "parquet"] = "csv"
    description: str = ""
    #: team email of who owns it: its own ``owner``, else its file's, else the project's
    owner: str = ""
    #: absolute path of the local data file, or None
    source: str | None = None
    #: ``sha256:<hex>`` of ``source`` (the object key is content-addressed), or None without
    #: a source; computed when first read (:class:`SourceDigest`)
    source_digest: SourceDigest = SourceDigest()
    #: (column, glue type) in declared order
    columns: tuple[tuple[str, str], ...] = ()
    retention: Retention = field(default_factory=Retention)


@dataclass(frozen=True)
class Train:
    estimator: str
    target: str
    features: tuple[str, ...] | None = None
    params: tuple[tuple[str, Any], ...] = ()
    test_size: float = 0.2
    random_state: int = 0


@dataclass(frozen=True)
class Autoscaling:
    min: int
    max: int
    target_invocations: int = 100


@dataclass(frozen=True)
class Serverless:
    memory_mb: int = 2048
    max_concurrency: int = 5


@dataclass(frozen=True)
class Canary:
    version: str
    weight: float = 0.1


@dataclass(frozen=True)
class Shadow:
    version: str
    sample_percent: int = 100


#: the ``rollout.percent`` of each mode when the spec sets none
ROLLOUT_PERCENT = {"canary": 10, "linear": 20}
#: how long the old (blue) fleet is kept after the last shift, for a rollback without a new fleet
ROLLOUT_TERMINATION_WAIT_SECONDS = 600
#: time allowed to provision the new fleet, on top of the waits, in a stepped update's deadline
ROLLOUT_PROVISIONING_SECONDS = 1800
#: SageMaker's bounds: one wait, a deployment's deadline
ROLLOUT_MAX_WAIT_SECONDS = 3600
ROLLOUT_MAX_EXECUTION_SECONDS = 28800
ROLLOUT_MIN_EXECUTION_SECONDS = 600


@dataclass(frozen=True)
class Rollout:
    """How a deploy shifts traffic to the new fleet: SageMaker blue/green ``ALL_AT_ONCE``,
    ``CANARY`` (``percent`` first, then the rest) or ``LINEAR`` (``percent`` per step), each
    shift baking ``wait_seconds`` under the model's alarms."""

    mode: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    #: share of the new fleet's capacity per shift (None for all_at_once)
    percent: int | None = None
    wait_seconds: int = 600

    @property
    def shifts(self) -> int:
        """How many times traffic moves: 1 at once, 2 for a canary, ceil(100 / percent) linear steps."""
        if self.mode == "canary":
            return 2
        if self.mode == "linear":
            return -(-100 // (self.percent or 100))
        return 1

    @property
    def total_seconds(self) -> int:
        """The waits of one update, from the first shift to the old fleet's termination."""
        return self.shifts * self.wait_seconds + ROLLOUT_TERMINATION_WAIT_SECONDS

    @property
    def deadline_seconds(self) -> int | None:
        """SageMaker's ``MaximumExecutionTimeoutInSeconds`` of a stepped update (None: all at once, its default)."""
        if self.mode == "all_at_once":
            return None
        return max(ROLLOUT_MIN_EXECUTION_SECONDS,
                   min(ROLLOUT_MAX_EXECUTION_SECONDS, self.total_seconds + ROLLOUT_PROVISIONING_SECONDS))


@dataclass(frozen=True)
class DataCapture:
    enabled: bool = True
    sample_percent: int = 100


@dataclass(frozen=True)
class Serving:
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    autoscaling: Autoscaling | None = None
    serverless: Serverless | None = None
    canary: Canary | None = None
    shadow: Shadow | None = None
    data_capture: DataCapture = field(default_factory=DataCapture)
    rollout: Rollout = field(default_factory=Rollout)


@dataclass(frozen=True)
class Artifact:
    """A packaged model (``model.tar.gz``) on local disk, content-addressed."""

    #: absolute path of the ``model.tar.gz``
    path: str
    #: ``sha256:<hex>`` of the file's bytes
    digest: str
    #: SageMaker scikit-learn serving image version, e.g. ``1.9-0``
    framework_version: str


@dataclass(frozen=True)
class Gate:
    metric: str
    op: Literal[">=", "<=", ">", "<"]
    value: float


@dataclass(frozen=True)
class Model:
    name: str
    dataset: str
    description: str = ""
    #: team email of who owns it: its own ``owner``, else its file's, else the project's
    owner: str = ""
    train: Train | None = None
    #: the prebuilt artifact path from the spec (absolute), when the model is not trained
    artifact_source: str | None = None
    #: the pinned version (``sha256:…``) of this environment, if any
    version: str | None = None
    framework_version: str | None = None
    serving: Serving = field(default_factory=Serving)
    gates: tuple[Gate, ...] = ()
    default_monitors: bool = True
    soak_seconds: int = 86400
    #: the artifact this environment serves; filled by the toolchain before rendering
    artifact: Artifact | None = None


@dataclass(frozen=True)
class Threshold:
    """A parsed alarm threshold in the metric's unit (seconds, a ratio 0-1, or a count)."""

    value: float
    #: ``seconds`` for durations, ``ratio`` for percentages, ``number`` otherwise
    unit: Literal["seconds", "ratio", "number"]
    #: as written in the spec, for messages
    text: str


@dataclass(frozen=True)
class Monitor:
    name: str
    metric: str
    #: exactly one of model / dataset is set
    model: str | None = None
    dataset: str | None = None
    comparison: Literal["above", "below"] = "above"
    threshold: Threshold = Threshold(0.0, "number", "0")
    period_seconds: int = 60
    evaluation_periods: int = 5
    notify: tuple[str, ...] = ()
    description: str = ""
    #: team email of who owns it: its own ``owner``, else its file's, else the project's
    owner: str = ""
    #: True for the latency/error monitors added by ``default_monitors``
    default: bool = False
    #: job metrics (``JOB_METRICS``) only: how often the job runs, its drift test, the
    #: quality metric, the labels prefix in the dataset bucket, and the no-data rule
    schedule: Literal["hourly", "daily"] | None = None
    test: Literal["auto", "psi"] = "auto"
    quality: str | None = None
    labels: str | None = None
    no_data: Literal["ok", "alarm"] = "ok"
    instances: int = 1

    @property
    def is_job(self) -> bool:
        return self.metric in JOB_METRICS


@dataclass(frozen=True)
class Channel:
    name: str
    email: tuple[str, ...] = ()
    https: tuple[str, ...] = ()
    sqs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Environment:
    """One environment of one project, fully resolved."""

    project: str
    env: str
    owner: str
    region: str
    encryption: Encryption = "kms"
    protect: bool = False
    tags: tuple[tuple[str, str], ...] = ()
    #: the AWS account this environment deploys to, when the spec names it (``account``)
    account: str | None = None
    #: the account of the project's registry (``registry.account``); None: the deploying account
    registry_account: str | None = None
    channels: dict[str, Channel] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    monitors: dict[str, Monitor] = field(default_factory=dict)
    policies: dict[str, PolicyLevel] = field(default_factory=dict)
    #: the spec file this came from and the overlay applied (for messages), absolute paths
    spec_file: str = ""
    overlay_file: str | None = None
    #: the team files the spec includes (absolute paths), in the order they were read
    include_files: tuple[str, ...] = ()

    def all_tags(self) -> dict[str, str]:
        """Tags for every resource: the spec's, then the ones ModelOps always sets."""
        return {
            **dict(self.tags),
            "modelops:project": self.project,
            "modelops:environment": self.env,
            "modelops:owner": self.owner,
            "managed-by": "modelops",
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``show --json`` and for content hashing."""
        return asdict(self)
