"""One environment of one project: every dataset, model and monitor of a resolved spec.

:class:`ModelOpsEnvironment` builds the shared pieces (account lookup, KMS key and alias,
artifact bucket, Glue database, notification topics, dashboard) and one component per spec
entity. :func:`program` is the Pulumi program itself: the same function runs under the
Pulumi engine (``stacks/__main__.py``) and under the mock runtime (plan, diff, local up).

Example::

    program(load_environment("modelops.yaml", "dev"))()     # inside a Pulumi program
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Iterator

import pulumi
import pulumi_aws as aws

from modelops.components import naming
from modelops.components.documents import json_document
from modelops.components import metrics
from modelops.components.dataset import Dataset, DatasetArgs
from modelops.components.model import ModelEndpoint, ModelEndpointArgs, captures, partition
from modelops.components.monitor_job import MonitorJob, MonitorJobArgs, marker_keys
from modelops.components.monitor import (
    Monitor,
    MonitorArgs,
    Notifications,
    NotificationsArgs,
    alarm_threshold,
    dashboard_bodies,
    job_widgets,
)
from modelops.components.storage import Scope, SecureBucket, SecureBucketArgs
from modelops.spec.resolved import Environment
from modelops.spec.resolved import Monitor as MonitorSpec

ENVIRONMENT_TYPE = "modelops:index:Environment"

#: model monitors that roll a deployment back: they measure the new fleet itself. Drift and
#: traffic floors do not (drift is of the inputs; a quiet hour is not a bad release).
ROLLBACK_METRICS = frozenset(
    {"latency_p50", "latency_p90", "latency_p99", "latency_avg", "error_rate", "cpu_utilization", "memory_utilization"}
)

#: stack outputs: a contract (renaming one is a breaking change), name -> description
OUTPUTS: dict[str, str] = {
    "artifactsBucket": "S3 bucket holding the content-addressed model artifacts (models/<model>/<sha256>/model.tar.gz).",
    "kmsKeyArn": "ARN of the KMS key encrypting storage, topics and data capture (null under encryption: sse-s3, where the topics have a key of their own).",
    "glueDatabase": "Glue database cataloguing every dataset as a table.",
    "datasetBuckets": "Dataset name -> S3 bucket of the dataset.",
    "endpointNames": "Model name -> SageMaker endpoint name (stable across versions).",
    "endpointConfigNames": "Model name -> current SageMaker endpoint configuration (content-addressed).",
    "executionRoleArns": "Model name -> ARN of the SageMaker execution role.",
    "topicArns": "Notification channel -> SNS topic ARN.",
    "alarmNames": "Monitor name -> CloudWatch alarm name.",
    "dashboardName": "CloudWatch dashboard of the environment.",
}


def watched_variants(env: Environment, spec: MonitorSpec) -> tuple[str, ...]:
    """The variants besides the primary that ``spec`` watches: the canary, for a serving metric
    of a model that has one (its own alarms make "the canary is quiet" evidence)."""
    if spec.model is None or spec.metric not in metrics.VARIANT_METRICS:
        return ()
    return (metrics.CANARY_VARIANT,) if env.models[spec.model].serving.canary is not None else ()


@dataclass(frozen=True)
class Selection:
    """The spec entities one program builds (a stack of a split environment builds some).

    Example::

        Selection(datasets=frozenset({"customers"}), models=frozenset({"churn-classifier"}))
    """

    datasets: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    monitors: frozenset[str] = frozenset()

    def has(self, kind: str, name: str) -> bool:
        return name in {"dataset": self.datasets, "model": self.models, "monitor": self.monitors}[kind]


@dataclass(frozen=True)
class SharedInputs:
    """The shared pieces of an environment, made elsewhere (read from another stack's outputs).

    With these, :class:`ModelOpsEnvironment` builds no key, artifact bucket, catalogue or
    topics of its own and uses the given ones: the values of :data:`OUTPUTS` of the
    program that does build them.

    Example::

        SharedInputs(kms_key_arn=ref.get_output("kmsKeyArn"), artifacts_bucket=ref.get_output("artifactsBucket"),
                     glue_database=ref.get_output("glueDatabase"), topic_arns=ref.get_output("topicArns"))
    """

    kms_key_arn: pulumi.Input[str] | None
    artifacts_bucket: pulumi.Input[str]
    glue_database: pulumi.Input[str]
    #: channel -> topic ARN
    topic_arns: pulumi.Input[dict]


@dataclass(frozen=True)
class EnvironmentArgs:
    """A resolved environment, with every model's artifact attached.

    Example::

        EnvironmentArgs(env=attach_artifacts(load_environment("modelops.yaml", "dev"), build=False))
    """

    env: Environment
    #: register the dashboards (the shared stack of a split environment does; so does one
    #: process of a parallel render)
    dashboards: bool = True
    #: build these entities only (None: every one): a stack of a split environment, or one
    #: process's share of a parallel render (``modelops.graph.render``). The shared pieces are
    #: built unless ``shared`` is given.
    entities: Selection | None = None
    #: the shared pieces, made elsewhere: None builds them here
    shared: SharedInputs | None = None

    def builds(self, dataset: str, kind: str = "dataset", name: str | None = None) -> bool:
        """Whether the component of an entity of ``dataset`` (the dataset itself by default) is built here."""
        return self.entities is None or self.entities.has(kind, dataset if name is None else name)


def dataset_of(env: Environment, kind: str, name: str) -> str:
    """The dataset a spec entity belongs to: itself, a model's, a monitor's (via its model).

    Every entity belongs to exactly one dataset, and references nothing of another
    dataset's entities: the sets of entities of disjoint datasets render independently.
    """
    if kind == "dataset":
        return name
    if kind == "model":
        return env.models[name].dataset
    mon = env.monitors[name]
    return mon.dataset if mon.dataset is not None else env.models[mon.model].dataset


def _job_monitors(env: Environment, model_name: str) -> tuple[MonitorSpec, ...]:
    """The monitors of a model that its monitor job computes; none where no job runs (no
    artifact yet, or an endpoint that captures nothing)."""
    model = env.models[model_name]
    if model.artifact is None or not captures(model):
        return ()
    return tuple(env.monitors[m] for m in sorted(env.monitors)
                 if env.monitors[m].model == model_name and env.monitors[m].is_job)


def component_entities(name: str, env: Environment) -> dict[str, tuple[str, str]]:
    """Child component name -> (kind, spec entity), for grouping a rendered graph by entity.

    Example::

        component_entities("churn-dev", env)["churn-dev-dataset-customers"]   # ('dataset', 'customers')
    """
    out: dict[str, tuple[str, str]] = {}
    out.update({f"{name}-dataset-{d}": ("dataset", d) for d in env.datasets})
    out.update({f"{name}-model-{m}": ("model", m) for m in env.models})
    out.update({f"{name}-monitor-{m}": ("monitor", m) for m in env.monitors})
    return out


def _key_policy(scope: Scope) -> pulumi.Input[str]:
    root = scope.account_id.apply(lambda acct: f"arn:{partition(scope.region)}:iam::{acct}:root")
    service_use = ["kms:Decrypt", "kms:GenerateDataKey*"]
    return json_document(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    # The default key policy: the account administers the key through IAM, so the
                    # key can never become unmanageable. Every other use is granted by IAM policies.
                    "Sid": "AccountAdministersKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    # Alarms publish to encrypted topics: CloudWatch must use the key (this account only).
                    "Sid": "AlarmsPublishToEncryptedTopics",
                    "Effect": "Allow",
                    "Principal": {"Service": ["cloudwatch.amazonaws.com", "sns.amazonaws.com"]},
                    "Action": service_use,
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": scope.account_id}},
                },
            ],
        }
    )


class ModelOpsEnvironment(pulumi.ComponentResource):
    """Everything one resolved environment declares.

    Example::

        ModelOpsEnvironment("churn-dev", EnvironmentArgs(env=env))

    Outputs::

        artifacts_bucket       Output[str]  The model artifact bucket.
        kms_key_arn            Output[str | None]  The environment key (None under sse-s3).
        glue_database          Output[str]  The Glue database.
        dataset_buckets        Output[dict[str, str]]  Dataset -> bucket.
        endpoint_names         Output[dict[str, str]]  Model -> endpoint name.
        endpoint_config_names  Output[dict[str, str]]  Model -> endpoint configuration name.
        execution_role_arns    Output[dict[str, str]]  Model -> execution role ARN.
        topic_arns             Output[dict[str, str]]  Channel -> topic ARN.
        alarm_names            Output[dict[str, str]]  Monitor -> alarm name.
        dashboard_name         Output[str]  The dashboard (its first page, over 166 models).

    (Not class annotations: the SDK evaluates a resource class's annotations as its
    output types at every registration of it.)
    """

    def __init__(self, name: str, args: EnvironmentArgs, opts: pulumi.ResourceOptions | None = None,
                 *, stepwise: bool = False) -> None:
        super().__init__(ENVIRONMENT_TYPE, name, None, opts)
        #: with ``stepwise``, the caller builds the environment by iterating this (one step per
        #: dataset, model and monitor); otherwise it is built here, before the constructor returns
        self.steps: Iterator[None] = self._build(name, args)
        if not stepwise:
            for _ in self.steps:
                pass

    def _build(self, name: str, args: EnvironmentArgs) -> Iterator[None]:
        env = args.env
        child = pulumi.ResourceOptions(parent=self)
        tags = env.all_tags()
        # the account the spec names (environments in separate accounts), else the one deployed to
        account_id = (pulumi.Output.from_input(env.account) if env.account is not None else
                      aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id)

        self.key: aws.kms.Key | None = None
        self.topics_key: aws.kms.Key | None = None
        self.artifacts: SecureBucket | None = None
        self.catalog: aws.glue.CatalogDatabase | None = None
        self.notifications: Notifications | None = None
        shared = args.shared
        if shared is None:
            scope, artifacts_bucket, artifacts_arn, glue_database, topic_arns = self._shared(name, env, tags, account_id, child)
        else:
            scope = Scope(env.project, env.env, env.region, tuple(tags.items()), env.protect, env.encryption, account_id,
                          pulumi.Output.from_input(shared.kms_key_arn) if env.encryption == "kms" else None)
            artifacts_bucket = pulumi.Output.from_input(shared.artifacts_bucket)
            artifacts_arn = pulumi.Output.concat(f"arn:{partition(env.region)}:s3:::", artifacts_bucket)
            glue_database = pulumi.Output.from_input(shared.glue_database)
            every_topic = pulumi.Output.from_input(shared.topic_arns)
            topic_arns = {c: every_topic.apply(lambda arns, c=c: arns[c]) for c in sorted(env.channels)}
        kms_key_arn = scope.kms_key_arn
        # The project's registry (its own stack, deployed first): found by its deterministic
        # names, the bucket <project>-registry-<account> and the key alias/<project>-registry,
        # so no stack reference ties an environment to the registry stack's backend.
        # In another account than the environment's (``registry.account``), the bucket name carries
        # that account, and the key is named by its alias ARN there (an alias name is account-local).
        registry_account = env.registry_account
        registry_bucket = (pulumi.Output.from_input(naming.registry_bucket_name(env.project, registry_account))
                           if registry_account is not None else
                           account_id.apply(lambda acct: naming.registry_bucket_name(env.project, acct)))
        registry_key_arn: pulumi.Output[str] | None = None  # looked up once a model is built here

        # -- datasets ------------------------------------------------------------------------------
        fresh = {m.dataset for m in env.monitors.values() if m.dataset is not None and m.metric == "freshness"}
        markers: dict[str, list[tuple[str, str, str]]] = {}
        for model_name in sorted(env.models):
            model = env.models[model_name]
            job_monitors = _job_monitors(env, model_name)
            if job_monitors:
                for role, key in marker_keys(env.project, env.env, model, job_monitors).items():
                    markers.setdefault(model.dataset, []).append((model_name, role, key))
        self.datasets: dict[str, Dataset] = {}
        for ds_name in sorted(env.datasets):
            if not args.builds(ds_name):
                continue
            self.datasets[ds_name] = Dataset(
                f"{name}-dataset-{ds_name}",
                DatasetArgs(
                    dataset=env.datasets[ds_name],
                    scope=scope,
                    glue_database=glue_database,
                    freshness_monitored=ds_name in fresh,
                    markers=tuple(markers.get(ds_name, ())),
                ),
                opts=child,
            )
            yield

        # -- models ----------------------------------------------------------------------------------
        self.models: dict[str, ModelEndpoint] = {}
        rollbacks: dict[str, list[str]] = {}
        for mon_name in sorted(env.monitors):
            m = env.monitors[mon_name]
            if m.model is not None and m.metric in ROLLBACK_METRICS:
                rollbacks.setdefault(m.model, []).append(naming.alarm_name(env.project, env.env, m.name))
        for model_name in sorted(env.models):
            model = env.models[model_name]
            if not args.builds(model.dataset, "model", model_name):
                continue
            dataset_bucket, dataset_arn = self._dataset_bucket(model.dataset, scope)
            if registry_key_arn is None and registry_account is not None:
                # DescribeKey of the alias ARN: what KMS answers across accounts (ListAliases, behind
                # get_alias, lists only the caller's own account)
                alias_arn = naming.registry_kms_alias_arn(partition(env.region), env.region, registry_account, env.project)
                registry_key_arn = aws.kms.get_key_output(key_id=alias_arn, opts=pulumi.InvokeOutputOptions(parent=self)).arn
            elif registry_key_arn is None:
                registry_key_arn = aws.kms.get_alias_output(name=naming.registry_kms_alias(env.project),
                                                            opts=pulumi.InvokeOutputOptions(parent=self)).target_key_arn
            rollback = tuple(rollbacks.get(model_name, ()))
            self.models[model_name] = ModelEndpoint(
                f"{name}-model-{model_name}",
                ModelEndpointArgs(
                    model=model,
                    scope=scope,
                    artifacts_bucket=artifacts_bucket,
                    artifacts_bucket_arn=artifacts_arn,
                    dataset_bucket=dataset_bucket,
                    dataset_bucket_arn=dataset_arn,
                    registry_bucket=registry_bucket,
                    registry_key_arn=registry_key_arn,
                    rollback_alarms=rollback,
                ),
                opts=child,
            )
            job_monitors = _job_monitors(env, model_name)
            if job_monitors:
                # a child of the model's component: the job is part of the model's group (cache, stacks)
                endpoint = self.models[model_name]
                MonitorJob(
                    f"{name}-model-{model_name}-job",
                    MonitorJobArgs(model=model, monitors=job_monitors, scope=scope,
                                   artifacts_bucket=artifacts_bucket, artifacts_bucket_arn=artifacts_arn,
                                   dataset_bucket=dataset_bucket, dataset_bucket_arn=dataset_arn,
                                   artifact_key=naming.artifact_key(model_name, model.artifact.digest),
                                   instance_count=max(m.instances for m in job_monitors),
                                   depends_on=(endpoint.artifact,)),
                    opts=pulumi.ResourceOptions(parent=endpoint),
                )
            yield

        # -- monitors ----------------------------------------------------------------------------------
        self.monitors: dict[str, Monitor] = {}
        for mon_name in sorted(env.monitors):
            spec = env.monitors[mon_name]
            if not args.builds(dataset_of(env, "monitor", mon_name), "monitor", mon_name):
                continue
            channels = spec.notify or tuple(sorted(topic_arns))
            metric, denominator = self._metric_of(spec)
            self.monitors[mon_name] = Monitor(
                f"{name}-monitor-{mon_name}",
                MonitorArgs(
                    monitor=spec,
                    scope=scope,
                    metric=metric,
                    denominator=denominator,
                    topic_arns=tuple(topic_arns[c] for c in channels),
                    variants=watched_variants(env, spec),
                ),
                opts=child,
            )
            yield

        # -- dashboard ------------------------------------------------------------------------------------
        # Built from names (the bucket's carries the account ID), not from the components: the
        # dashboards need no component of any entity, and a shard of a parallel render that
        # builds some entities registers them whole.
        self.dashboards: list[aws.cloudwatch.Dashboard] = []
        if args.dashboards:
            endpoint_refs = {}
            for m in env.models:
                endpoint = naming.endpoint_name(env.project, env.env, m)
                endpoint_refs[m] = {"latency": metrics.endpoint_latency(endpoint, "p99"),
                                    "errors": metrics.endpoint_errors(endpoint),
                                    "invocations": metrics.endpoint_invocations(endpoint)}
            # the monitor jobs' metrics of each model, beside its latency and errors
            watched: dict[str, dict[str, tuple[str, float, str]]] = {}
            for mon_name in sorted(env.monitors):
                mon = env.monitors[mon_name]
                if mon.model is not None and mon.metric in metrics.JOB_METRICS:
                    watched.setdefault(mon.model, {}).setdefault(mon.metric, (mon_name, alarm_threshold(mon), mon.comparison))
            jobs = {m: job_widgets(m, naming.endpoint_name(env.project, env.env, m), w) for m, w in watched.items()}
            dataset_refs = {}
            for d in env.datasets:
                bucket = scope.bucket_name(d)
                # request metrics only where a freshness monitor asked for them (they are billed)
                dataset_refs[d] = metrics.s3_put_requests(bucket) if d in fresh else metrics.s3_object_count(bucket)
            # one dashboard, or pages of at most 500 widgets (CloudWatch's limit) for a large environment
            self.dashboards = [
                aws.cloudwatch.Dashboard(
                    f"{name}-dashboard" if page == 1 else f"{name}-dashboard-{page}",
                    dashboard_name=naming.dashboard_name(env.project, env.env, page),
                    dashboard_body=body,
                    opts=child,
                )
                for page, body in enumerate(dashboard_bodies(env.region, endpoint_refs, dataset_refs, jobs=jobs), start=1)
            ]
        self.dashboard = self.dashboards[0] if self.dashboards else None

        self.artifacts_bucket = artifacts_bucket
        self.kms_key_arn = kms_key_arn if kms_key_arn is not None else pulumi.Output.from_input(None)
        self.glue_database = glue_database
        self.dataset_buckets = _all({d: ds.bucket for d, ds in self.datasets.items()})
        self.endpoint_names = _all({m: ep.endpoint_name for m, ep in self.models.items()})
        self.endpoint_config_names = _all({m: ep.endpoint_config_name for m, ep in self.models.items()})
        self.execution_role_arns = _all({m: ep.role_arn for m, ep in self.models.items()})
        self.topic_arns = _all(topic_arns) if shared is None else pulumi.Output.from_input(shared.topic_arns)
        self.alarm_names = _all({m: mon.alarm_name for m, mon in self.monitors.items()})
        self.dashboard_name = (self.dashboard.dashboard_name if self.dashboard is not None
                               else pulumi.Output.from_input(naming.dashboard_name(env.project, env.env)))
        self.register_outputs(
            {
                "artifacts_bucket": self.artifacts_bucket,
                "kms_key_arn": self.kms_key_arn,
                "glue_database": self.glue_database,
                "dataset_buckets": self.dataset_buckets,
                "endpoint_names": self.endpoint_names,
                "endpoint_config_names": self.endpoint_config_names,
                "execution_role_arns": self.execution_role_arns,
                "topic_arns": self.topic_arns,
                "alarm_names": self.alarm_names,
                "dashboard_name": self.dashboard_name,
            }
        )

    def _shared(self, name: str, env: Environment, tags: dict[str, str], account_id: pulumi.Output[str],
                child: pulumi.ResourceOptions):
        """The key(s), artifact bucket, catalogue and topics; (scope, artifacts bucket, its ARN,
        Glue database, channel -> topic ARN)."""
        kms_key_arn = None
        bare = Scope(env.project, env.env, env.region, tuple(tags.items()), env.protect, env.encryption, account_id)
        if env.encryption == "kms":
            self.key = self._key(f"{name}-key", f"ModelOps {env.project}/{env.env}: storage, topics, data capture",
                                 naming.kms_alias(env.project, env.env), bare, tags, child)
            kms_key_arn = self.key.arn
        scope = Scope(
            env.project, env.env, env.region, tuple(tags.items()), env.protect, env.encryption, account_id, kms_key_arn
        )

        # Topics are KMS-encrypted whatever the storage encryption: under sse-s3 they get a key of
        # their own. Not the AWS-managed alias/aws/sns: its policy cannot let CloudWatch use it,
        # so alarms could not publish to the topics.
        topics_key_arn = kms_key_arn
        if kms_key_arn is None and env.channels:
            self.topics_key = self._key(f"{name}-topics-key", f"ModelOps {env.project}/{env.env}: notification topics",
                                        naming.topics_kms_alias(env.project, env.env), bare, tags, child)
            topics_key_arn = self.topics_key.arn

        self.artifacts = SecureBucket(
            f"{name}-artifacts", SecureBucketArgs(scope=scope, role="artifacts"), opts=child
        )
        self.catalog = aws.glue.CatalogDatabase(
            f"{name}-catalog",
            name=naming.glue_database_name(env.project, env.env),
            description=f"ModelOps datasets of {env.project}/{env.env}",
            tags=tags,
            opts=child,
        )
        self.notifications = Notifications(
            f"{name}-notifications",
            NotificationsArgs(channels=tuple(env.channels[c] for c in sorted(env.channels)), scope=scope,
                              kms_key_arn=topics_key_arn),
            opts=child,
        )
        topic_arns = {c: t.arn for c, t in self.notifications.topics.items()}
        return scope, self.artifacts.bucket, self.artifacts.arn, self.catalog.name, topic_arns

    def _dataset_bucket(self, dataset: str, scope: Scope) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """A model's dataset bucket and its ARN: the component's when built here, else from its
        name (another stack of a split environment holds it; names are deterministic)."""
        built = self.datasets.get(dataset)
        if built is not None:
            return built.bucket, built.bucket_arn
        bucket = scope.bucket_name(dataset)
        return bucket, pulumi.Output.concat(f"arn:{partition(scope.region)}:s3:::", bucket)

    def _key(self, name: str, description: str, alias: str, bare: Scope, tags: dict[str, str],
             child: pulumi.ResourceOptions) -> aws.kms.Key:
        """A rotated KMS key of the environment (stateful: protected with the environment) and its alias."""
        key = aws.kms.Key(
            name,
            description=description,
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=_key_policy(bare),
            tags=tags,
            opts=bare.stateful_options(self),
        )
        aws.kms.Alias(f"{name}-alias", name=alias, target_key_id=key.key_id, opts=child)
        return key

    def _metric_of(self, spec: MonitorSpec):
        """(metric, denominator) a monitor watches, from the watched component's intent methods."""
        if spec.dataset is not None:
            return self.datasets[spec.dataset].metric_put_requests(), None
        ep = self.models[spec.model]
        if spec.metric.startswith("latency_"):
            return ep.metric_latency({"latency_avg": "Average"}.get(spec.metric, spec.metric.removeprefix("latency_"))), None
        if spec.metric == "error_rate":
            return ep.metric_errors(), ep.metric_invocations()
        table = {
            "invocations": ep.metric_invocations,
            "cpu_utilization": ep.metric_cpu,
            "memory_utilization": ep.metric_memory,
            "data_drift": ep.metric_drift,
            "data_quality": lambda: ep.metric_job("data_quality"),
            "prediction_drift": lambda: ep.metric_job("prediction_drift"),
            "model_quality": lambda: ep.metric_job("model_quality"),
        }
        return table[spec.metric](), None

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        """Every :data:`OUTPUTS` key with its value."""
        return {
            "artifactsBucket": self.artifacts_bucket,
            "kmsKeyArn": self.kms_key_arn,
            "glueDatabase": self.glue_database,
            "datasetBuckets": self.dataset_buckets,
            "endpointNames": self.endpoint_names,
            "endpointConfigNames": self.endpoint_config_names,
            "executionRoleArns": self.execution_role_arns,
            "topicArns": self.topic_arns,
            "alarmNames": self.alarm_names,
            "dashboardName": self.dashboard_name,
        }


def _all(values: dict[str, pulumi.Output]) -> pulumi.Output[dict]:
    return pulumi.Output.all(**values) if values else pulumi.Output.from_input({})


def program(env: Environment, args: Callable[[], EnvironmentArgs] | None = None) -> Callable[[], None]:
    """The Pulumi program of one environment: build it, export every :data:`OUTPUTS` key.

    ``args`` (called inside the program): what to build, by default everything.

    Example::

        program(env)()      # in stacks/__main__.py, or under modelops.graph.runtime.run
    """

    def body() -> None:
        built = args() if args is not None else EnvironmentArgs(env=env)
        _export(ModelOpsEnvironment(naming.prefix(env.project, env.env), built))

    return body


def _export(root: ModelOpsEnvironment) -> None:
    """Every :data:`OUTPUTS` key of a built environment, as a stack output."""
    outputs = root.stack_outputs()
    for key in OUTPUTS:
        pulumi.export(key, outputs[key])


def paced_program(env: Environment, settle: Callable[[], Awaitable[None]], every: int = 8, *,
                  dashboards: bool = True, entities: Selection | None = None,
                  shared: Callable[[], SharedInputs] | None = None,
                  on_outputs: Callable[[dict], None] | None = None) -> Callable[[], Awaitable[None]]:
    """:func:`program`, registering the same resources in the same order, that awaits
    ``settle()`` after every ``every`` entities (datasets, models, monitors).

    ``dashboards``, ``entities`` and ``shared`` (called inside the program, it may register
    what reads them): see :class:`EnvironmentArgs`.
    ``on_outputs`` receives the exported :data:`OUTPUTS` values once they are known.

    A synchronous program registers the whole graph before the SDK's event loop completes
    any of it, and every registration in flight holds its resolvers, futures and inputs.
    The in-process runtime passes a ``settle`` that waits for the registrations made so far:
    a large environment then never has more than a few entities in flight, and peaks at
    about half the memory. (``run_pulumi_func`` awaits a program that returns an awaitable.)

    Example::

        run(paced_program(env, settle), RenderBackend(), project=env.project, stack=env.env)
    """

    async def body() -> None:
        args = EnvironmentArgs(env=env, dashboards=dashboards, entities=entities,
                               shared=shared() if shared is not None else None)
        root = ModelOpsEnvironment(naming.prefix(env.project, env.env), args, stepwise=True)
        for done, _ in enumerate(root.steps, start=1):
            if done % every == 0:
                await settle()
        _export(root)
        if on_outputs is not None:
            pulumi.Output.all(**root.stack_outputs()).apply(on_outputs)

    return body
