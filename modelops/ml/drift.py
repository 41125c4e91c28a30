"""Data drift of an endpoint's captured traffic against its model's training baseline.

Reads the SageMaker data-capture records of the endpoint from its dataset bucket, parses
the requests with the model's own input schema, and computes per feature the population
stability index (PSI; bins and categories from ``baseline.json``) and, for numeric
features, the two-sample Kolmogorov-Smirnov test against the baseline's reference sample.

Sample size matters:

* Below :data:`MIN_SAMPLE` captured rows (100) there is **no verdict and no metric is
  published**: a PSI of a handful of rows is noise, and publishing it would page someone.
* Above it, PSI still has a sampling floor: with ``k`` bins and ``n`` rows, ``n * PSI`` of
  an unchanged distribution is roughly chi-square with ``k - 1`` degrees of freedom. A
  feature is ``drift`` only when its PSI reaches the threshold *and* exceeds that floor's
  99th percentile (``noise_floor``); a PSI over the threshold but under the floor is
  ``inconclusive``.

The threshold is the model's ``data_drift`` monitor's (``above: 0.2``), else
:data:`DEFAULT_THRESHOLD`. The published value is the largest per-feature PSI, to the
metric :func:`modelops.components.metrics.drift_metric` defines (the one the monitor's alarm watches).

Example::

    report = run_drift("modelops.yaml", "churn-classifier", "dev")
    report.verdict, report.max_psi, report.published
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from modelops.components import metrics as metric_defs
from modelops.components import naming
from modelops.spec import resolved
from modelops.errors import UsageError
from modelops.ml import baseline as base
from modelops.ml import inference
from modelops.ml.capture import Captured, read_captures
from modelops.ml.artifacts import resolve_artifact
from modelops.ml.package import read_member
from modelops.ml.artifacts import default_root
from modelops.spec.envs import load_environment
from modelops.local.server import Target

MIN_SAMPLE = 100
DEFAULT_THRESHOLD = 0.2
#: quantile of the no-drift PSI distribution below which a large PSI is called noise
NOISE_QUANTILE = 0.99


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: str
    rows: int
    psi: float | None
    noise_floor: float | None
    ks_statistic: float | None
    ks_pvalue: float | None
    #: ``drift``, ``stable``, ``inconclusive`` or ``insufficient`` (below MIN_SAMPLE)
    verdict: str


@dataclass(frozen=True)
class DriftReport:
    model: str
    endpoint: str
    rows: int
    requests: int
    unreadable: int
    threshold: float
    min_sample: int
    #: ``drift``, ``stable`` or ``insufficient``
    verdict: str
    max_psi: float | None
    features: list[FeatureDrift]
    published: bool = False
    metric: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return _finite(out)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def noise_floor(bins: int, rows: int) -> float:
    """99th percentile of the PSI of ``rows`` draws from an unchanged ``bins``-bin distribution."""
    from scipy.stats import chi2

    return float(chi2.ppf(NOISE_QUANTILE, max(bins - 1, 1)) / rows)


def parse_requests(
    captured: list[Captured], card: dict[str, Any]
) -> tuple[np.ndarray, int]:
    """All captured rows as one 2-D object array (card feature order) and the unreadable request count."""
    features = [f["name"] for f in card["features"]]
    kinds = [f["kind"] for f in card["features"]]
    blocks: list[np.ndarray] = []
    bad = 0
    for item in captured:
        try:
            blocks.append(inference.parse(item.data, item.content_type, features, kinds))
        except inference.PayloadError:
            bad += 1
    if not blocks:
        return np.empty((0, len(features)), dtype=object), bad
    return np.concatenate(blocks, axis=0), bad


def compare(
    rows: np.ndarray,
    baseline: dict[str, Any],
    card: dict[str, Any],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_sample: int = MIN_SAMPLE,
) -> tuple[str, float | None, list[FeatureDrift]]:
    """Per-feature drift of ``rows`` against ``baseline``: (overall verdict, max PSI, features)."""
    n = int(rows.shape[0])
    results: list[FeatureDrift] = []
    for i, feature in enumerate(card["features"]):
        name, kind = feature["name"], feature["kind"]
        spec = baseline["features"][name]
        column = rows[:, i]
        if n < min_sample:
            results.append(FeatureDrift(name, kind, n, None, None, None, None, "insufficient"))
            continue
        psi = base.psi(spec, column)
        if kind == "numeric":
            bins = len(spec["proportions"])
            ks = base.ks(spec, column)
        else:
            bins = sum(1 for p in spec["frequencies"].values() if p > 0)
            ks = None
        floor = noise_floor(bins, n)
        if math.isnan(psi):
            verdict = "insufficient"
        elif psi >= threshold and psi > floor:
            verdict = "drift"
        elif psi >= threshold:
            verdict = "inconclusive"
        else:
            verdict = "stable"
        results.append(
            FeatureDrift(
                name,
                kind,
                n,
                round(psi, 6) if not math.isnan(psi) else None,
                round(floor, 6),
                round(ks[0], 6) if ks else None,
                float(f"{ks[1]:.6g}") if ks else None,
                verdict,
            )
        )
    if n < min_sample:
        return "insufficient", None, results
    values = [f.psi for f in results if f.psi is not None]
    max_psi = max(values) if values else None
    overall = "drift" if any(f.verdict == "drift" for f in results) else "stable"
    return overall, max_psi, results


def threshold_for(env: resolved.Environment, model: str) -> float:
    """The model's ``data_drift`` monitor threshold (the lowest, if several), else the default."""
    values = [
        m.threshold.value
        for m in env.monitors.values()
        if m.model == model and m.metric == "data_drift" and m.comparison == "above"
    ]
    return min(values) if values else DEFAULT_THRESHOLD


def publish(cloudwatch: Any, endpoint: str, value: float, when: datetime) -> dict[str, Any]:
    """Put the drift metric (namespace, name, dimensions from modelops.components.metrics) and return its description."""
    ref = metric_defs.drift_metric(endpoint)
    datum: dict[str, Any] = {
        "MetricName": ref.name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in ref.dimensions],
        "Value": float(value),
        "Timestamp": when,
    }
    if ref.unit:
        datum["Unit"] = ref.unit
    cloudwatch.put_metric_data(Namespace=ref.namespace, MetricData=[datum])
    return {"namespace": ref.namespace, "name": ref.name, "dimensions": dict(ref.dimensions), "value": float(value)}


def drift_for_environment(
    env: resolved.Environment,
    model_name: str,
    clients: Any,
    *,
    root: Path | None = None,
    hours: float | None = 24.0,
    now: datetime | None = None,
    min_sample: int = MIN_SAMPLE,
    publish_metric: bool = True,
) -> DriftReport:
    """Drift of ``model_name``'s endpoint in ``env`` on the target behind ``clients`` (``.client(svc)``)."""
    model = env.models.get(model_name)
    if model is None:
        known = ", ".join(sorted(env.models)) or "none"
        raise UsageError(f"model {model_name!r} is not declared in {env.spec_file} (models: {known})")
    artifact = model.artifact or resolve_artifact(env, model, build=True, root=root)
    import json

    card_bytes = read_member(artifact.path, "card.json")
    baseline_bytes = read_member(artifact.path, "baseline.json")
    if card_bytes is None or baseline_bytes is None:
        raise UsageError(
            f"models.{model_name}: artifact {artifact.digest} has no card.json/baseline.json, so there is no "
            "baseline to compare with; build it with `modelops build`"
        )
    card = json.loads(card_bytes)
    baseline = json.loads(baseline_bytes)

    account = clients.client("sts").get_caller_identity()["Account"]
    bucket = naming.bucket_name(env.project, env.env, model.dataset, account)
    endpoint = naming.endpoint_name(env.project, env.env, model_name)
    s3 = clients.client("s3")
    try:
        captured, unreadable_lines = read_captures(s3, bucket, model_name, endpoint)
    except s3.exceptions.NoSuchBucket:
        raise UsageError(
            f"bucket {bucket} does not exist on the target; run `modelops up --env {env.env}` first"
        ) from None
    now = now or datetime.now(timezone.utc)
    if hours is not None:
        since = now - timedelta(hours=hours)
        captured = [c for c in captured if c.time is None or c.time >= since]
    rows, unparseable = parse_requests(captured, card)
    threshold = threshold_for(env, model_name)
    verdict, max_psi, features = compare(rows, baseline, card, threshold=threshold, min_sample=min_sample)
    published = False
    metric: dict[str, Any] = {}
    if verdict != "insufficient" and max_psi is not None and publish_metric:
        metric = publish(clients.client("cloudwatch"), endpoint, max_psi, now)
        published = True
    return DriftReport(
        model=model_name,
        endpoint=endpoint,
        rows=int(rows.shape[0]),
        requests=len(captured),
        unreadable=unreadable_lines + unparseable,
        threshold=threshold,
        min_sample=min_sample,
        verdict=verdict,
        max_psi=max_psi,
        features=features,
        published=published,
        metric=metric,
        source=f"s3://{bucket}/{naming.capture_prefix(model_name)}/{endpoint}/",
    )


def run_drift(
    spec: str | Path,
    model: str,
    env_name: str,
    *,
    endpoint_url: str | None = None,
    hours: float | None = 24.0,
    publish_metric: bool = True,
) -> DriftReport:
    """``modelops drift``: load the environment, read its capture from the target, publish, report."""
    env = load_environment(spec, env_name)
    root = default_root(env)
    target = Target.for_project(root, endpoint_url, allow_aws=True)
    return drift_for_environment(
        env, model, target.clients(env.region), root=root, hours=hours, publish_metric=publish_metric
    )
