"""CloudWatch metrics ModelOps alarms on: every namespace, name and dimension, defined once.

Components expose them through intent methods (``endpoint.metric_latency()``); the drift
tooling publishes :func:`drift_metric` with the very same namespace, name and dimensions
that the drift monitor's alarm watches.

Example::

    drift_metric("churn-dev-churn-classifier").namespace   # 'ModelOps/Drift'
"""

from __future__ import annotations

from dataclasses import dataclass

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
#: SageMaker endpoint instance metrics (CPU, memory) live in their own namespace
SAGEMAKER_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
S3_NAMESPACE = "AWS/S3"
DRIFT_NAMESPACE = "ModelOps/Drift"
DRIFT_METRIC_NAME = "FeatureDriftPSI"
PRIMARY_VARIANT = "primary"
#: the dimension naming an endpoint's production variant in its serving metrics
VARIANT_DIMENSION = "VariantName"


@dataclass(frozen=True)
class MetricRef:
    """One CloudWatch metric with its default statistic and period (seconds)."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str = "Average"
    period: int = 60
    #: the CloudWatch unit the metric is published in (e.g. latency is in Microseconds)
    unit: str | None = None

    def dimensions_dict(self) -> dict[str, str]:
        return dict(self.dimensions)

    def of_variant(self, variant: str) -> MetricRef:
        """The same metric of another variant of the endpoint (dimension ``VariantName``).

        Example::

            endpoint_errors("churn-prod-churn").of_variant(CANARY_VARIANT).dimensions_dict()
            # {'EndpointName': 'churn-prod-churn', 'VariantName': 'canary'}
        """
        if VARIANT_DIMENSION not in self.dimensions_dict():
            raise ValueError(f"{self.namespace} {self.name} has no {VARIANT_DIMENSION} dimension")
        dims = tuple((k, variant if k == VARIANT_DIMENSION else v) for k, v in self.dimensions)
        return MetricRef(self.namespace, self.name, dims, self.statistic, self.period, self.unit)


def drift_metric(endpoint_name: str) -> MetricRef:
    """The largest per-feature PSI of an endpoint's captured traffic against its baseline.

    Published by ``modelops drift`` (statistic Maximum, period 1 hour); watched by
    ``data_drift`` monitors.
    """
    return MetricRef(
        namespace=DRIFT_NAMESPACE,
        name=DRIFT_METRIC_NAME,
        dimensions=(("EndpointName", endpoint_name),),
        statistic="Maximum",
        period=3600,
        unit="None",
    )


# -- additions: endpoint and dataset metrics (used by modelops.components.model / modelops.components.dataset) --

CANARY_VARIANT = "canary"
SHADOW_VARIANT = "shadow"
#: monitor metrics SageMaker publishes per production variant, so one alarm per variant
#: means something with the same threshold. Not invocations: a variant's traffic is its
#: weight's share, so a floor or ceiling set for the endpoint does not fit a canary.
VARIANT_METRICS = frozenset(
    {"latency_p50", "latency_p90", "latency_p99", "latency_avg", "error_rate", "cpu_utilization", "memory_utilization"}
)
#: name of the S3 request-metrics filter (FilterId dimension) over a dataset's data/ prefix
S3_DATA_WRITES_FILTER = "modelops-data-writes"
#: SageMaker publishes ModelLatency in microseconds; spec thresholds are in seconds
MICROSECONDS_PER_SECOND = 1_000_000


def _endpoint_dims(endpoint_name: str, variant: str) -> tuple[tuple[str, str], ...]:
    return (("EndpointName", endpoint_name), (VARIANT_DIMENSION, variant))


def endpoint_latency(endpoint_name: str, statistic: str = "p99", variant: str = PRIMARY_VARIANT) -> MetricRef:
    """Model latency of a variant (Microseconds). ``statistic``: ``p50``/``p90``/``p99``/``Average``."""
    return MetricRef(SAGEMAKER_NAMESPACE, "ModelLatency", _endpoint_dims(endpoint_name, variant), statistic, 60, "Microseconds")


def endpoint_errors(endpoint_name: str, variant: str = PRIMARY_VARIANT) -> MetricRef:
    """Server-side (5XX) invocation errors of a variant (Sum per minute)."""
    return MetricRef(SAGEMAKER_NAMESPACE, "Invocation5XXErrors", _endpoint_dims(endpoint_name, variant), "Sum", 60)


def endpoint_invocations(endpoint_name: str, variant: str = PRIMARY_VARIANT) -> MetricRef:
    """Invocations of a variant (Sum per minute)."""
    return MetricRef(SAGEMAKER_NAMESPACE, "Invocations", _endpoint_dims(endpoint_name, variant), "Sum", 60)


def endpoint_cpu(endpoint_name: str, variant: str = PRIMARY_VARIANT) -> MetricRef:
    """CPU utilisation of a variant's instances (Average, percent; 100 per core)."""
    return MetricRef(SAGEMAKER_INSTANCE_NAMESPACE, "CPUUtilization", _endpoint_dims(endpoint_name, variant), "Average", 60, "Percent")


def endpoint_memory(endpoint_name: str, variant: str = PRIMARY_VARIANT) -> MetricRef:
    """Memory utilisation of a variant's instances (Average, percent)."""
    return MetricRef(SAGEMAKER_INSTANCE_NAMESPACE, "MemoryUtilization", _endpoint_dims(endpoint_name, variant), "Average", 60, "Percent")


def s3_put_requests(bucket_name) -> MetricRef:
    """PUT requests under a dataset's data/ prefix (Sum per day).

    ``bucket_name`` may be a ``pulumi.Output`` (bucket names carry the account ID).
    """
    return MetricRef(
        S3_NAMESPACE,
        "PutRequests",
        (("BucketName", bucket_name), ("FilterId", S3_DATA_WRITES_FILTER)),
        "Sum",
        86400,
        "Count",
    )


def s3_object_count(bucket_name) -> MetricRef:
    """Objects in a bucket (free daily storage metric; Average per day): the dashboard's view of
    a dataset without request metrics."""
    return MetricRef(
        S3_NAMESPACE,
        "NumberOfObjects",
        (("BucketName", bucket_name), ("StorageType", "AllStorageTypes")),
        "Average",
        86400,
        "Count",
    )


# -- monitor jobs: what a job publishes (see docs/monitoring.md) -----------------------------

#: monitor metrics whose value a job computes and publishes; the others are CloudWatch's own
JOB_METRICS = ("data_drift", "data_quality", "prediction_drift", "model_quality")
MONITORING_NAMESPACE = "ModelOps/Monitoring"
#: the dimension naming a feature of a per-feature drift metric
FEATURE_DIMENSION = "Feature"
#: a feature's own share of violating rows (dimension Feature), beside the alarmed total
DATA_QUALITY_FEATURE_METRIC = "FeatureViolationShare"


def alarm_statistic(metric: str, comparison: str, default: str) -> str:
    """The statistic an alarm (and its widget) takes of a job metric: the worst value of a
    period that holds several runs. ``model_quality`` is a score that alarms ``below``
    (accuracy, f1, roc_auc: its Minimum) or an error that alarms ``above`` (rmse, mae: its
    Maximum); every other metric keeps its ``default``.

    Example::

        alarm_statistic("model_quality", "above", "Minimum")     # 'Maximum'
    """
    if metric == "model_quality":
        return "Maximum" if comparison == "above" else "Minimum"
    return default


def job_metric(endpoint_name: str, metric: str, feature: str | None = None) -> MetricRef:
    """The metric a monitor job publishes for ``metric`` (one of :data:`JOB_METRICS`), hourly.

    ``data_drift`` is the largest per-feature score (:func:`drift_metric`, the one its alarm
    watches); with ``feature``, that feature's own score. ``data_quality`` is the share of
    rows with a violation, ``model_quality`` the quality metric on labelled traffic (its
    alarm takes the worst of a period: Minimum of a score, Maximum of an error; see
    ``components/monitor.py``), ``prediction_drift`` the drift of the model's outputs.

    Example::

        job_metric("churn-dev-churn", "data_drift", feature="tenure").dimensions_dict()
        # {'EndpointName': 'churn-dev-churn', 'Feature': 'tenure'}
    """
    if metric == "data_drift" and feature is None:
        return drift_metric(endpoint_name)
    dims: tuple[tuple[str, str], ...] = (("EndpointName", endpoint_name),)
    if metric == "data_drift":
        return MetricRef(DRIFT_NAMESPACE, "FeatureDrift", dims + ((FEATURE_DIMENSION, feature),), "Maximum", 3600, "None")
    if metric == "data_quality" and feature is not None:
        return MetricRef(MONITORING_NAMESPACE, DATA_QUALITY_FEATURE_METRIC, dims + ((FEATURE_DIMENSION, feature),),
                         "Maximum", 3600, "None")
    table = {
        "data_quality": (MONITORING_NAMESPACE, "DataQualityViolationShare", "Maximum"),
        "model_quality": (MONITORING_NAMESPACE, "ModelQuality", "Minimum"),
        "prediction_drift": (DRIFT_NAMESPACE, "PredictionDrift", "Maximum"),
    }
    if metric not in table:
        raise ValueError(f"{metric!r} is not a job metric ({', '.join(JOB_METRICS)})")
    namespace, name, statistic = table[metric]
    return MetricRef(namespace, name, dims, statistic, 3600, "None")


def job_metric_refs(endpoint_name: str) -> dict[str, dict]:
    """The monitor job config's ``metrics``: metric -> namespace, name, dimensions, unit; and
    ``<metric>:feature`` for the per-feature data of drift and data quality (the job adds
    the ``Feature`` dimension). ``modelops drift`` publishes through the same table, and
    loads no Pulumi for it: this module is plain data.

    Example::

        job_metric_refs("churn-dev-churn")["data_drift"]["name"]   # 'FeatureDriftPSI'
    """

    def plain(ref: MetricRef) -> dict:
        return {"namespace": ref.namespace, "name": ref.name, "dimensions": [list(d) for d in ref.dimensions],
                "unit": ref.unit}

    refs: dict[str, dict] = {}
    for metric in JOB_METRICS:
        refs[metric] = plain(job_metric(endpoint_name, metric))
    for metric in ("data_drift", "data_quality"):
        ref = plain(job_metric(endpoint_name, metric, feature="*"))
        ref["dimensions"] = [d for d in ref["dimensions"] if d[0] != FEATURE_DIMENSION]
        refs[f"{metric}:feature"] = ref
    return refs
