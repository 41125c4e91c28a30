"""A resolved environment written back in the spec's own language: what ``modelops show`` prints.

Example::

    spec_document(load_environment("modelops.yaml", "prod"))["models"]["churn-classifier"]["serving"]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelops.spec import resolved as r
from modelops.spec import units

__all__ = ["monitor_document", "spec_document"]

def spec_document(env: r.Environment, relative_to: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The resolved environment written in the spec's own language: the keys and units of the
    schema and docs/spec.md, every default filled in, paths relative to the spec's directory.

    What ``modelops show`` prints. It is itself a valid spec (for this one environment): the
    default monitors are left to ``default_monitors: true`` (they are derived again from it:
    see :func:`monitor_document` to print them), and nothing unset is written as ``null``.
    Paths are relative to ``relative_to`` (default: the spec's directory).

    Example::

        spec_document(load_environment("modelops.yaml", "dev"))["monitors"]["churn-drift"]
        # {'model': 'churn-classifier', 'metric': 'data_drift', 'above': 0.2, 'period': '1h', 'for': '1h', 'notify': ['oncall']}
    """
    spec_dir = Path(relative_to) if relative_to is not None else Path(env.spec_file).parent if env.spec_file else Path.cwd()

    def relative(path: str | None) -> str | None:
        return None if path is None else os.path.relpath(path, spec_dir)

    accounts = {**({"account": env.account} if env.account else {}),
                **({"registry": {"account": env.registry_account}} if env.registry_account else {})}
    return {
        "apiVersion": "modelops/v1",
        "project": env.project,
        "owner": env.owner,
        "region": env.region,
        "tags": dict(env.tags),
        "encryption": env.encryption,
        "protect": env.protect,
        **accounts,
        "notifications": {name: _written({"email": list(c.email), "https": list(c.https), "sqs": list(c.sqs)}, drop_empty=True)
                          for name, c in env.channels.items()},
        "datasets": {name: _written({
            "description": d.description,
            "owner": d.owner,
            "format": d.format,
            "source": relative(d.source),
            "columns": dict(d.columns),
            "retention": _written({"noncurrent_days": d.retention.noncurrent_days, "archive_after_days": d.retention.archive_after_days,
                                   "expire_after_days": d.retention.expire_after_days}),
        }) for name, d in env.datasets.items()},
        "models": {name: _model_document(m, relative) for name, m in env.models.items()},
        "monitors": {name: monitor_document(m) for name, m in env.monitors.items() if not m.default},
        "policies": dict(env.policies),
    }


def _written(body: dict[str, Any], *, drop_empty: bool = False) -> dict[str, Any]:
    """``body`` without what the spec cannot write: unset values (and, with ``drop_empty``, empty lists)."""
    return {k: v for k, v in body.items() if v is not None and v != "" and not (drop_empty and v == [])}


def _model_document(m: r.Model, relative: Any) -> dict[str, Any]:
    s = m.serving
    serving: dict[str, Any] = {}
    if s.serverless is None:
        serving = {"instance_type": s.instance_type, "instance_count": s.instance_count}
    if s.autoscaling is not None:
        serving["autoscaling"] = {"min": s.autoscaling.min, "max": s.autoscaling.max, "target_invocations": s.autoscaling.target_invocations}
    if s.serverless is not None:
        serving["serverless"] = {"memory_mb": s.serverless.memory_mb, "max_concurrency": s.serverless.max_concurrency}
    if s.canary is not None:
        serving["canary"] = {"version": s.canary.version, "weight": s.canary.weight}
    if s.shadow is not None:
        serving["shadow"] = {"version": s.shadow.version, "sample_percent": s.shadow.sample_percent}
    serving["data_capture"] = {"enabled": s.data_capture.enabled, "sample_percent": s.data_capture.sample_percent}
    serving["rollout"] = _written({"mode": s.rollout.mode, "percent": s.rollout.percent,
                                   "wait": units.format_duration(s.rollout.wait_seconds)})
    train = None
    if m.train is not None:
        t = m.train
        train = _written({"estimator": t.estimator, "target": t.target, "features": list(t.features) if t.features is not None else None,
                          "params": dict(t.params), "test_size": t.test_size, "random_state": t.random_state})
    return _written({
        "description": m.description,
        "owner": m.owner,
        "dataset": m.dataset,
        "train": train,
        "artifact": relative(m.artifact_source),
        "version": m.version,
        "framework_version": m.framework_version,
        "serving": serving,
        "gates": {g.metric: f"{g.op} {g.value:g}" for g in m.gates},
        "default_monitors": m.default_monitors,
        "soak": units.format_duration(m.soak_seconds),
    })


def monitor_document(m: r.Monitor) -> dict[str, Any]:
    """One resolved monitor in the spec's language (``above: 2%``, ``period: 1m``, ``for: 5m``)."""
    t = m.threshold
    # as written: a duration or percentage in the spec's spelling ("48h" stays "48h")
    value: Any = t.text if t.unit != "number" else (int(t.value) if t.value.is_integer() else t.value)
    length = units.alarm_for(m.metric, t.value, m.period_seconds, m.evaluation_periods)
    return _written({
        "description": m.description,
        "owner": m.owner,
        "model": m.model,
        "dataset": m.dataset,
        "metric": m.metric,
        m.comparison: value,
        "period": units.format_duration(m.period_seconds),
        "for": units.format_duration(length),
        "notify": list(m.notify),
    })
