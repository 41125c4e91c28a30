"""Monitors: CloudWatch alarms, the SNS topics they notify, and the environment dashboard.

:class:`Notifications` makes one KMS-encrypted SNS topic per notification channel (a
customer-managed key CloudWatch may use, whatever the storage encryption), with a topic
policy that lets CloudWatch publish for this account only, and its subscriptions;
:class:`Monitor` makes the alarm of one resolved monitor from a
:class:`~modelops.components.metrics.MetricRef` that the watched component provides.

Example::

    topics = Notifications("churn-dev-notifications", NotificationsArgs(channels=..., scope=scope))
    Monitor("churn-dev-monitor-churn-latency",
            MonitorArgs(monitor=env.monitors["churn-latency"], scope=scope,
                        metric=endpoint.metric_latency("p99"), topic_arns=(topics.topic_arns["oncall"],)))
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from modelops.components import metrics, naming
from modelops.components.documents import json_document
from modelops.components.storage import Scope
from modelops.spec.resolved import Channel
from modelops.spec.resolved import Monitor as MonitorSpec

NOTIFICATIONS_TYPE = "modelops:index:Notifications"
MONITOR_TYPE = "modelops:index:Monitor"

LATENCY_STATISTICS = {"latency_p50": "p50", "latency_p90": "p90", "latency_p99": "p99", "latency_avg": "Average"}
COMPARISONS = {"above": "GreaterThanThreshold", "below": "LessThanThreshold"}


def _short_hash(text: str) -> str:
    # Subscription names must be stable under list reordering and must not print the address
    # (https endpoints are secrets): a short hash of it does both.
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class NotificationsArgs:
    """The environment's notification channels.

    Example::

        NotificationsArgs(channels=tuple(env.channels.values()), scope=scope)
    """

    channels: tuple[Channel, ...]
    scope: Scope
    #: the customer-managed key encrypting the topics: the environment key, or under sse-s3
    #: the topics key (None: the scope's key). CloudWatch cannot publish with alias/aws/sns.
    kms_key_arn: pulumi.Input[str] | None = None


class Notifications(pulumi.ComponentResource):
    """One encrypted SNS topic per channel, publishable by CloudWatch alarms, with subscriptions.

    HTTPS endpoints are secrets: they are passed as ``pulumi.Output.secret`` and never shown.
    SQS queues must allow ``sns.amazonaws.com`` to send messages from the topic (the queue's
    own policy, owned by whoever owns the queue).

    Example::

        Notifications("churn-dev-notifications", NotificationsArgs(channels=(oncall,), scope=scope))

    Outputs::

        topic_arns  Output[dict[str, str]]  Channel name -> SNS topic ARN.

    (Not class annotations: the SDK evaluates a resource class's annotations as its
    output types at every registration of it.)
    """

    def __init__(self, name: str, args: NotificationsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(NOTIFICATIONS_TYPE, name, None, opts)
        scope = args.scope
        child = pulumi.ResourceOptions(parent=self)
        self.topics: dict[str, aws.sns.Topic] = {}
        key = args.kms_key_arn if args.kms_key_arn is not None else scope.kms_key_arn
        if args.channels and key is None:
            # never an unencrypted topic (SNS.1); and not alias/aws/sns, which CloudWatch cannot use
            raise ValueError("notification topics need a customer-managed KMS key: pass NotificationsArgs.kms_key_arn "
                             "(the environment builds a topics key under encryption: sse-s3)")
        for channel in args.channels:
            base = f"{name}-{channel.name}"
            topic = aws.sns.Topic(
                f"{base}-topic",
                name=naming.topic_name(scope.project, scope.env, channel.name),
                kms_master_key_id=key,
                tags=scope.tag_dict(),
                opts=child,
            )
            self.topics[channel.name] = topic
            aws.sns.TopicPolicy(
                f"{base}-topic-policy",
                arn=topic.arn,
                policy=json_document(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "CloudWatchAlarmsPublish",
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Resource": topic.arn,
                                "Condition": {
                                    "StringEquals": {"aws:SourceAccount": scope.account_id},
                                },
                            }
                        ],
                    }
                ),
                opts=child,
            )
            for address in channel.email:
                aws.sns.TopicSubscription(
                    f"{base}-email-{_short_hash(address)}",
                    topic=topic.arn,
                    protocol="email",
                    endpoint=address,
                    opts=child,
                )
            for url in channel.https:
                aws.sns.TopicSubscription(
                    f"{base}-https-{_short_hash(url)}",
                    topic=topic.arn,
                    protocol="https",
                    endpoint=pulumi.Output.secret(url),
                    opts=child,
                )
            for queue in channel.sqs:
                aws.sns.TopicSubscription(
                    f"{base}-sqs-{_short_hash(queue)}",
                    topic=topic.arn,
                    protocol="sqs",
                    endpoint=queue,
                    raw_message_delivery=False,
                    opts=child,
                )
        self.topic_arns = pulumi.Output.all(**{k: t.arn for k, t in self.topics.items()}) if self.topics else pulumi.Output.from_input({})
        self.register_outputs({"topic_arns": self.topic_arns})


@dataclass(frozen=True)
class MonitorArgs:
    """A resolved monitor, the metric it watches, and the topics it notifies.

    ``metric`` comes from the watched component (``endpoint.metric_latency("p99")``,
    ``dataset.metric_put_requests()``); for ``error_rate`` it is the 5XX errors and
    ``denominator`` the invocations.

    Example::

        MonitorArgs(monitor=spec, scope=scope, metric=ep.metric_errors(),
                    denominator=ep.metric_invocations(), topic_arns=(oncall_arn,))
    """

    monitor: MonitorSpec
    scope: Scope
    metric: metrics.MetricRef
    topic_arns: tuple[pulumi.Input[str], ...] = ()
    denominator: metrics.MetricRef | None = None
    #: other production variants watched too (``metrics.CANARY_VARIANT``), each by its own
    #: alarm with the same threshold on its ``VariantName``; only for ``metrics.VARIANT_METRICS``
    variants: tuple[str, ...] = ()


def alarm_threshold(spec: MonitorSpec) -> float:
    """The spec threshold in the metric's CloudWatch unit."""
    value = spec.threshold.value
    if spec.metric.startswith("latency_"):
        # SageMaker publishes ModelLatency in microseconds; the spec speaks seconds.
        return value * metrics.MICROSECONDS_PER_SECOND
    if spec.metric in ("cpu_utilization", "memory_utilization") and spec.threshold.unit == "ratio":
        return value * 100.0
    if spec.metric == "freshness":
        return 1.0
    return value


def treat_missing_data(spec: MonitorSpec) -> str:
    """No data means no writes for freshness and no traffic for an invocation floor: both breach."""
    if spec.metric == "freshness":
        return "breaching"
    if spec.is_job:
        # a run without data (no traffic, too few rows, no labels) publishes nothing: the monitor's rule
        return "breaching" if spec.no_data == "alarm" else "notBreaching"
    if spec.metric == "invocations" and spec.comparison == "below":
        return "breaching"
    return "notBreaching"


class Monitor(pulumi.ComponentResource):
    """The CloudWatch alarm of one spec monitor, notifying its channels on ALARM and on OK, and
    one more per other variant it watches (``MonitorArgs.variants``: the canary's own alarm).

    Example::

        Monitor("churn-dev-monitor-churn-latency", MonitorArgs(monitor=spec, scope=scope, metric=m))

    Outputs::

        alarm_name           Output[str]             The alarm's name (``naming.alarm_name``).
        alarm_arn            Output[str]             The alarm's ARN.
        variant_alarm_names  Output[dict[str, str]]  Variant -> its alarm's name (``naming.variant_alarm_name``).

    (Not class annotations: the SDK evaluates a resource class's annotations as its
    output types at every registration of it.)
    """

    def __init__(self, name: str, args: MonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(MONITOR_TYPE, name, None, opts)
        spec = args.monitor
        scope = args.scope
        if args.variants and spec.metric not in metrics.VARIANT_METRICS:
            raise ValueError(f"monitor {spec.name!r}: {spec.metric} is not published per variant; "
                             f"per-variant alarms watch {', '.join(sorted(metrics.VARIANT_METRICS))}")
        self.alarm = self._alarm(f"{name}-alarm", naming.alarm_name(scope.project, scope.env, spec.name),
                                 args, args.metric, args.denominator, "")
        self.variant_alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for variant in args.variants:
            denominator = args.denominator.of_variant(variant) if args.denominator is not None else None
            self.variant_alarms[variant] = self._alarm(
                f"{name}-alarm-{variant}", naming.variant_alarm_name(scope.project, scope.env, spec.name, variant),
                args, args.metric.of_variant(variant), denominator, f" ({variant} variant)")
        self.alarm_name = self.alarm.name
        self.alarm_arn = self.alarm.arn
        self.variant_alarm_names = pulumi.Output.all(**{v: a.name for v, a in self.variant_alarms.items()}) \
            if self.variant_alarms else pulumi.Output.from_input({})
        self.register_outputs({"alarm_name": self.alarm_name, "alarm_arn": self.alarm_arn,
                               "variant_alarm_names": self.variant_alarm_names})

    def _alarm(self, resource: str, alarm_name: str, args: MonitorArgs, metric: metrics.MetricRef,
               denominator: metrics.MetricRef | None, suffix: str) -> aws.cloudwatch.MetricAlarm:
        """One alarm of the monitor's threshold on ``metric`` (the primary's, or another variant's)."""
        spec = args.monitor
        scope = args.scope
        target = spec.model or spec.dataset
        description = spec.description or (
            f"{spec.metric} of {target} {spec.comparison} {spec.threshold.text} (ModelOps monitor {spec.name})"
        )
        period = max(60, spec.period_seconds)
        evaluation_periods = spec.evaluation_periods
        comparison = COMPARISONS[spec.comparison]
        alarm: dict = {}
        if spec.metric == "error_rate":
            if denominator is None:
                raise ValueError(f"monitor {spec.name!r}: error_rate needs the invocations metric as denominator")
            alarm["metric_queries"] = [
                _query("errors", metric, period),
                _query("invocations", denominator, period),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="error_rate",
                    expression="IF(invocations > 0, errors / invocations, 0)",
                    label=f"5XX error rate of {target}{suffix}",
                    return_data=True,
                ),
            ]
        else:
            alarm.update(
                namespace=metric.namespace,
                metric_name=metric.name,
                dimensions=dict(metric.dimensions),
                period=period,
            )
            statistic = metrics.alarm_statistic(spec.metric, spec.comparison,
                                                LATENCY_STATISTICS.get(spec.metric, metric.statistic))
            if statistic.startswith("p"):
                alarm["extended_statistic"] = statistic
            else:
                alarm["statistic"] = statistic
            if spec.metric == "freshness":
                # "No write for <threshold>, for <for>": that many periods in a row without a PUT
                # (the resolved evaluation periods count both; validation keeps them in limits).
                comparison = "LessThanThreshold"
        return aws.cloudwatch.MetricAlarm(
            resource,
            name=alarm_name,
            alarm_description=description[:1024 - len(suffix)] + suffix,
            comparison_operator=comparison,
            threshold=alarm_threshold(spec),
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=treat_missing_data(spec),
            alarm_actions=list(args.topic_arns),
            ok_actions=list(args.topic_arns),
            actions_enabled=True,
            tags=scope.tag_dict(),
            opts=pulumi.ResourceOptions(parent=self),
            **alarm,
        )


def _query(query_id: str, metric: metrics.MetricRef, period: int) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        return_data=False,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=metric.namespace,
            metric_name=metric.name,
            dimensions=dict(metric.dimensions),
            stat=metric.statistic,
            period=period,
        ),
    )


def _line(ref: metrics.MetricRef, stat: str | None = None, **options) -> list:
    line: list = [ref.namespace, ref.name]
    for key, value in ref.dimensions:
        line += [key, value]
    line.append({"stat": stat or ref.statistic, "period": ref.period, **options})
    return line


def _search(ref: metrics.MetricRef, free: str) -> str:
    """A CloudWatch SEARCH over every value of the ``free`` dimension of ``ref`` (one line per value)."""
    keys = ",".join(k for k, _ in ref.dimensions)
    fixed = " ".join(f'{k}="{v}"' for k, v in ref.dimensions if k != free)
    return f"SEARCH('{{{ref.namespace},{keys}}} MetricName=\"{ref.name}\" {fixed}', '{ref.statistic}', {ref.period})"


#: one widget: (title, metric lines, expressions (id, expression, label), horizontal annotations)
Widget = tuple[str, list[list], list[tuple[str, str, str]], list[tuple[float, str]]]


def _widget(title: str, region: str, widget: Widget, x: int, y: int, width: int = 8) -> dict:
    _, lines, expressions, annotations = widget
    properties: dict = {"title": title, "region": region, "view": "timeSeries",
                        "metrics": [*([{"expression": e, "id": i, "label": label}] for i, e, label in expressions), *lines]}
    if annotations:
        properties["annotations"] = {"horizontal": [{"value": v, "label": label, "color": "#d62728"}
                                                    for v, label in annotations]}
    return {"type": "metric", "x": x, "y": y, "width": width, "height": 6, "properties": properties}


def _plain(title: str, refs: list[metrics.MetricRef], stat: str | None = None) -> Widget:
    return (title, [_line(ref, stat) for ref in refs], [], [])


def job_widgets(model: str, endpoint: str, monitors: dict[str, tuple[str, float, str]]) -> list[Widget]:
    """The job metrics of one model beside its latency and errors: per-feature drift (every
    feature's score, found by a SEARCH, with the largest, which the alarm watches), data
    quality, model quality, prediction drift; each with its monitor's threshold as a line.

    ``monitors`` maps a job metric (``metrics.JOB_METRICS``) to (monitor name, threshold,
    comparison): the line shows the statistic its alarm takes (:func:`metrics.alarm_statistic`).
    """
    widgets: list[Widget] = []
    for metric in metrics.JOB_METRICS:
        if metric not in monitors:
            continue
        name, threshold, comparison = monitors[metric]
        ref = metrics.job_metric(endpoint, metric)
        stat = metrics.alarm_statistic(metric, comparison, ref.statistic)
        annotation = [(threshold, f"{name} threshold")]
        if metric == "data_drift":
            feature = metrics.job_metric(endpoint, metric, feature="*")
            widgets.append((f"{model}: drift per feature", [_line(ref, label="largest (alarmed)")],
                            [("features", _search(feature, metrics.FEATURE_DIMENSION), "")], annotation))
        else:
            title = {"data_quality": "data quality (violation share)", "model_quality": "model quality",
                     "prediction_drift": "prediction drift"}[metric]
            widgets.append((f"{model}: {title}", [_line(ref, stat)], [], annotation))
    return widgets


#: what CloudWatch accepts in one dashboard body ("between 0 and 500 widget objects")
MAX_WIDGETS = 500


def dashboard_bodies(
    region: str,
    endpoints: dict[str, dict[str, metrics.MetricRef]],
    datasets: dict[str, metrics.MetricRef],
    max_widgets: int = MAX_WIDGETS,
    jobs: dict[str, list[Widget]] | None = None,
) -> list[pulumi.Input[str]]:
    """The dashboard JSON, in pages of at most ``max_widgets`` widgets (CloudWatch's limit).

    Per model a row of latency, errors and invocations, and under it a row of its monitor
    jobs' metrics (``jobs``: model -> :func:`job_widgets`) where it has any; per dataset its
    freshness, three to a row. A model's rows are never split between pages, and an
    environment that fits one dashboard (166 models without jobs) gets one. ``endpoints``
    maps a model name to its ``latency``/``errors``/``invocations`` metrics; dimension
    values may be Outputs (bucket names), hence Output results.

    Example::

        dashboard_bodies("eu-west-1", {"churn": {"latency": ..., "errors": ..., "invocations": ...}}, {})
    """
    jobs = jobs or {}
    groups: list[list[list[Widget]]] = []
    for model, refs in sorted(endpoints.items()):
        group = [[_plain(f"{model}: latency p99 (µs)", [refs["latency"]], "p99"),
                  _plain(f"{model}: 5XX errors", [refs["errors"]]),
                  _plain(f"{model}: invocations", [refs["invocations"]])]]
        if jobs.get(model):
            group.append(list(jobs[model]))
        groups.append(group)
    freshness = [_plain(f"{dataset}: writes (freshness)", [ref]) for dataset, ref in sorted(datasets.items())]
    groups += [[freshness[i:i + 3]] for i in range(0, len(freshness), 3)]
    pages: list[list[list[Widget]]] = [[]]
    count = 0
    for group in groups:
        size = sum(len(row) for row in group)
        if pages[-1] and count + size > max_widgets:
            pages.append([])
            count = 0
        pages[-1].extend(group)
        count += size
    return [
        json_document({"widgets": [
            _widget(widget[0], region, widget, (24 // max(3, len(row))) * x, 6 * y, 24 // max(3, len(row)))
            for y, row in enumerate(page) for x, widget in enumerate(row)
        ]})
        for page in pages
    ]
