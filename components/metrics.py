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
