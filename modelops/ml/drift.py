"""Data drift of an endpoint's captured traffic against its model's training baseline.

The statistics are the monitor job's (:mod:`modelops.ml.monitor_job`), not a second
implementation: the data-capture objects of the endpoint are read from its dataset bucket
into a temporary directory, laid out as the job's stats step sees them, and the job's own
``shard_stats``, ``merge_stats`` and ``evaluate`` compute the per-feature tests (KS or
chi-squared up to 1,000 rows, Wasserstein or Jensen-Shannon above, PSI with ``test:
psi``), so that ``modelops drift`` and ``modelops monitor run`` give the same scores for
the same capture (``tests/ml/test_drift.py``). Each feature also reports its PSI (the
job's, on the 10 quantile bins) and, for a numeric feature of at most 1,000 rows, the KS
statistic and p-value.

* Below the job's ``MIN_SAMPLE`` captured rows (100) there is **no verdict and no metric is
  published**: a score of a handful of rows is noise, and publishing it would page someone.
* Above it, what is published is the job's, by the job's own publishing code
  (``results_for``, ``put_data``): the largest per-feature score, to the metric
  :func:`modelops.components.metrics.drift_metric` defines (the one the monitor's alarm
  watches), and each feature's score with its ``Feature`` dimension; the verdict is ``drift`` when it is above the threshold, as the alarm
  sees it. A feature is ``drift`` when its score is above the threshold (with p < 0.05 for
  a small-sample test), ``inconclusive`` when its score is above it but p is not.

The threshold and test are the model's ``data_drift`` monitor's (``above: 0.2``), else
:data:`DEFAULT_THRESHOLD` and ``auto``.

Example::

    report = run_drift("modelops.yaml", "churn-classifier", "dev")
    report.verdict, report.value, report.published
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from modelops.components import metrics as metric_defs
from modelops.components import naming
from modelops.spec import resolved
from modelops.errors import UsageError
from modelops.ml import monitor_job as job
from modelops.ml.capture import endpoint_prefix
from modelops.ml.artifacts import resolve_artifact
from modelops.ml.package import read_member
from modelops.ml.artifacts import default_root
from modelops.spec.envs import load_environment
from modelops.local.server import Target

MIN_SAMPLE = job.MIN_SAMPLE
DEFAULT_THRESHOLD = 0.2
#: ``--hours`` unset: every record captured, whenever (the job's window, a century long)
ALL_TIME_SECONDS = 100 * 365 * 24 * 3600


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: str
    rows: int
    #: the job's test for this feature (``ks``, ``chi2``, ``wasserstein``, ``jensen_shannon``, ``psi``)
    test: str | None
    #: the job's score (what the alarm compares with the threshold) and its p-value, if any
    score: float | None
    p_value: float | None
    psi: float | None
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
    #: the job's value: the largest feature score (published, and compared with the threshold)
    value: float | None
    #: the largest feature PSI (informative; the value is the job's test, ``psi`` only with ``test: psi``)
    max_psi: float | None
    features: list[FeatureDrift]
    published: bool = False
    metric: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    test: str = "auto"

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


def compare(
    merged: dict[str, Any], baseline: dict[str, Any], card: dict[str, Any], *,
    threshold: float = DEFAULT_THRESHOLD, test: str = "auto",
) -> tuple[str, float | None, float | None, list[FeatureDrift]]:
    """The job's drift of ``merged`` (its merged statistics) against ``baseline``:
    (overall verdict, the job's value, the largest PSI, features in card order)."""
    n = int(merged["rows"])
    monitor = {"metric": "data_drift", "threshold": threshold, "test": test, "comparison": "above"}
    value, fields = job.evaluate(monitor, baseline, card, merged)
    scored = {f["name"]: f for f in fields["features"]}
    results: list[FeatureDrift] = []
    for feature in card["features"]:
        name, kind = feature["name"], feature["kind"]
        live, spec = merged["features"][name], baseline["features"][name]
        got = scored.get(name)
        if value is None or got is None:
            results.append(FeatureDrift(name, kind, live["n"], None, None, None, None, None, None, "insufficient"))
            continue
        psi = got["score"] if got["test"] == "psi" else job.feature_score(spec, live, "psi")[1]
        ks = (got["score"], got["p_value"]) if got["test"] == "ks" else (None, None)
        if got["drifted"]:
            verdict = "drift"
        elif got["score"] > threshold:
            verdict = "inconclusive"  # over the threshold, but not significant on this sample
        else:
            verdict = "stable"
        results.append(FeatureDrift(name, kind, got["rows"], got["test"], round(got["score"], 6), got["p_value"],
                                    round(psi, 6), None if ks[0] is None else round(ks[0], 6), ks[1], verdict))
    if value is None or n < MIN_SAMPLE:
        return "insufficient", None, None, results
    psis = [f.psi for f in results if f.psi is not None]
    return ("drift" if value > threshold else "stable"), float(value), (max(psis) if psis else None), results


def capture_stats(s3: Any, bucket: str, model: str, endpoint: str, card: dict[str, Any], baseline: dict[str, Any],
                  now: datetime, hours: float | None) -> dict[str, Any]:
    """The job's merged statistics of the endpoint's capture in the window ending at ``now``.

    The capture objects are laid out under a temporary directory by key, as SageMaker mounts
    them for the job's stats step, and read by the job's own ``shard_stats``.
    """
    # the job's window is [now - window, now) in whole seconds: end it after now's second,
    # so that a record captured in that second counts, as "the last HOURS hours" says
    end = now.astimezone(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
    window = ALL_TIME_SECONDS if hours is None else int(math.ceil(hours * 3600)) + 1
    with tempfile.TemporaryDirectory(prefix="modelops-drift-") as directory:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=endpoint_prefix(model, endpoint)):
            for item in page.get("Contents", []):
                if not item["Key"].endswith(".jsonl"):
                    continue
                path = os.path.join(directory, *item["Key"].split("/"))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as handle:
                    handle.write(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        stats = job.shard_stats({"window_seconds": window}, card, baseline, directory, None, end)
    return job.merge_stats([stats])


def drift_monitor(env: resolved.Environment, model: str) -> tuple[float, str]:
    """(threshold, test) of the model's ``data_drift`` monitor (the lowest threshold, if
    several), else the defaults."""
    found = sorted((m.threshold.value, m.test or "auto") for m in env.monitors.values()
                   if m.model == model and m.metric == "data_drift" and m.comparison == "above")
    return found[0] if found else (DEFAULT_THRESHOLD, "auto")


def publish(cloudwatch: Any, env: resolved.Environment, model: str, endpoint: str, card: dict[str, Any],
            baseline: dict[str, Any], merged: dict[str, Any], threshold: float, test: str,
            when: datetime) -> dict[str, Any]:
    """Put what the monitor job would publish for a ``data_drift`` monitor of ``merged``: its
    value and one datum per feature (``Feature`` dimension), by the job's own
    ``results_for`` and ``put_data``; return the drift metric's description."""
    config = {"model": model, "env": env.env,
              "monitors": [{"name": f"{model}-drift", "metric": "data_drift", "comparison": "above",
                            "threshold": threshold, "test": test}],
              "metrics": metric_defs.job_metric_refs(endpoint)}
    ((result, data),) = job.results_for(config, card, baseline, merged, when)
    job.put_data(cloudwatch, data)
    ref = metric_defs.drift_metric(endpoint)
    return {"namespace": ref.namespace, "name": ref.name, "dimensions": dict(ref.dimensions),
            "value": result["value"], "data": len(data)}


def drift_for_environment(
    env: resolved.Environment,
    model_name: str,
    clients: Any,
    *,
    root: Path | None = None,
    hours: float | None = 24.0,
    now: datetime | None = None,
    publish_metric: bool = True,
) -> DriftReport:
    """Drift of ``model_name``'s endpoint in ``env`` on the target behind ``clients`` (``.client(svc)``)."""
    model = env.models.get(model_name)
    if model is None:
        known = ", ".join(sorted(env.models)) or "none"
        raise UsageError(f"model {model_name!r} is not declared in {env.spec_file} (models: {known})")
    artifact = model.artifact or resolve_artifact(env, model, build=True, root=root)
    card_bytes = read_member(artifact.path, "card.json")
    baseline_bytes = read_member(artifact.path, "baseline.json")
    baseline = json.loads(baseline_bytes) if baseline_bytes is not None else None
    if card_bytes is None or baseline is None or baseline.get("version", 1) < 2:
        raise UsageError(
            f"models.{model_name}: artifact {artifact.digest} has no card.json/baseline.json version 2, so there "
            "is no baseline the monitor job can compare with; build it with `modelops build`"
        )
    card = json.loads(card_bytes)

    account = clients.client("sts").get_caller_identity()["Account"]
    bucket = naming.bucket_name(env.project, env.env, model.dataset, account)
    endpoint = naming.endpoint_name(env.project, env.env, model_name)
    s3 = clients.client("s3")
    now = now or datetime.now(timezone.utc)
    try:
        merged = capture_stats(s3, bucket, model_name, endpoint, card, baseline, now, hours)
    except s3.exceptions.NoSuchBucket:
        raise UsageError(
            f"bucket {bucket} does not exist on the target; run `modelops up --env {env.env}` first"
        ) from None
    threshold, test = drift_monitor(env, model_name)
    verdict, value, max_psi, features = compare(merged, baseline, card, threshold=threshold, test=test)
    published = False
    metric: dict[str, Any] = {}
    if verdict != "insufficient" and value is not None and publish_metric:
        metric = publish(clients.client("cloudwatch"), env, model_name, endpoint, card, baseline, merged,
                         threshold, test, now)
        published = True
    return DriftReport(
        model=model_name,
        endpoint=endpoint,
        rows=int(merged["rows"]),
        requests=int(merged["requests"]),
        unreadable=int(merged["unreadable"]),
        threshold=threshold,
        min_sample=MIN_SAMPLE,
        verdict=verdict,
        value=value,
        max_psi=max_psi,
        features=features,
        published=published,
        metric=metric,
        source=f"s3://{bucket}/{naming.capture_prefix(model_name)}/{endpoint}/",
        test=test,
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
