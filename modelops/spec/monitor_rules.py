"""Semantic rules of a monitor: its target, metric, threshold and timing.

A monitor watches one model or one dataset with a metric that applies to it; its threshold
parses in the metric's unit on the side the metric alarms on; its period and ``for`` are
what CloudWatch can evaluate (and, for freshness, whole numbers of periods).

Example::

    list(monitor_problems("lat", {"model": "m", "metric": "latency"}, models, {}, where))
    # [Problem('E-MONITOR-THRESHOLD', ..., 'a monitor needs a threshold', ...)]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelops.errors import Problem
from modelops.spec import units
from modelops.spec.problems import Locator, at, choices, clash, mapping, suggest
from modelops.ml import estimators
from modelops.spec.resolved import DATASET_METRICS, JOB_METRICS, MODEL_METRICS, SCHEDULE_SECONDS

__all__ = ["MAX_PERIOD_SECONDS", "monitor_problems"]

#: the longest monitor period (a whole number of minutes up to a day); what CloudWatch
#: evaluates in all (period × evaluation periods) is :func:`modelops.spec.units.max_alarm_seconds`
MAX_PERIOD_SECONDS = 86400


def monitor_problems(name: str, monitor: dict[str, Any], models: dict[str, Any], datasets: dict[str, Any], where: Locator) -> Iterator[Problem]:
    base = ("monitors", name)
    metric = monitor.get("metric") if isinstance(monitor.get("metric"), str) else None
    has_model, has_dataset = "model" in monitor, "dataset" in monitor
    target_kind = None
    if has_model and has_dataset:
        yield clash("E-MONITOR-TARGET", where, (*base, "model"), (*base, "dataset"), "a monitor watches a model or a dataset, not both", "remove `model` or `dataset`", path=base)
    elif not has_model and not has_dataset:
        yield at("E-MONITOR-TARGET", where.key(base), base, "a monitor needs `model` or `dataset`", "add `model: <name>` or `dataset: <name>`")
    else:
        target_kind = "model" if has_model else "dataset"
        collection = models if has_model else datasets
        ref = monitor.get(target_kind)
        if isinstance(ref, str) and ref not in collection:
            close = suggest(ref, collection)
            fix = f"did you mean '{close}'?" if close else (f"declared {target_kind}s: {choices(sorted(collection))}" if collection else f"declare it under `{target_kind}s:`")
            yield at("E-REF", where.value((*base, target_kind)), (*base, target_kind), f"unknown {target_kind} '{ref}'", fix)
    known_metric = metric in MODEL_METRICS or metric in DATASET_METRICS
    if target_kind and known_metric:
        allowed = MODEL_METRICS if target_kind == "model" else DATASET_METRICS
        if metric not in allowed:
            other = "datasets" if target_kind == "model" else "models"
            yield at("E-METRIC-TARGET", where.value((*base, "metric")), (*base, "metric"), f"metric '{metric}' applies to {other}, not to a {target_kind}", f"use one of: {choices(list(allowed), 10)}")
            known_metric = False
    if target_kind == "model" and metric in JOB_METRICS:
        model = models.get(monitor.get("model"))
        if isinstance(model, dict):
            serving = mapping(model.get("serving"))
            capture = mapping(serving.get("data_capture"))
            if "serverless" in serving:
                yield at("E-SERVERLESS", where.value((*base, "metric")), (*base, "metric"), f"{metric} needs data capture, which the serverless model '{monitor.get('model')}' cannot do", "serve the model on instances, or remove this monitor")
            elif capture.get("enabled") is False:
                yield at("E-DRIFT-CAPTURE", where.value((*base, "metric")), (*base, "metric"), f"{metric} needs data capture, which is disabled on model '{monitor.get('model')}'", "enable serving.data_capture, or remove this monitor")
    if metric is not None and known_metric:
        yield from _job_problems(base, metric, monitor, models, where)
    has_above, has_below = "above" in monitor, "below" in monitor
    if has_above and has_below:
        yield clash("E-MONITOR-THRESHOLD", where, (*base, "above"), (*base, "below"), "a monitor has `above` or `below`, not both", "keep one of them", path=base)
    elif not has_above and not has_below:
        yield at("E-MONITOR-THRESHOLD", where.key(base), base, "a monitor needs a threshold", "add `above: <value>` (or `below:` for invocations)")
    elif known_metric and metric is not None:
        side = "above" if has_above else "below"
        value = monitor.get(side)
        if side == "below" and metric not in units.BELOW_METRICS:
            yield at("E-MONITOR-THRESHOLD", where.key((*base, "below")), (*base, "below"), f"`below` applies only to invocations and model_quality, not to {metric}", "use `above`")
        elif isinstance(value, (str, int, float)):
            try:
                units.parse_threshold(metric, value)
            except ValueError as exc:
                message, _, fix = str(exc).partition("; ")
                yield at("E-THRESHOLD", where.value((*base, side)), (*base, side), message, fix)
            else:
                if metric == "model_quality":
                    yield from _quality_threshold(base, side, float(value), monitor, models, where)
    period_text, shown = units.monitor_timing(monitor)
    period = _duration(period_text)
    if period is not None:
        if period < 60 or period % 60 or period > MAX_PERIOD_SECONDS:
            yield at("E-PERIOD", where.value((*base, "period")), (*base, "period"), f"period {period_text!r} must be a whole number of minutes, from 1m to 1d", "use e.g. '1m', '5m' or '1h'")
            period = None
    length = _duration(shown)
    if length is None or not period:
        return
    every = units.format_duration(period)
    limit = units.max_alarm_seconds(period)
    above = None
    if metric == "freshness" and target_kind == "dataset" and known_metric and "above" in monitor:
        # the alarm counts periods without a write: for `above`, then for `for`
        try:
            above = units.parse_threshold(metric, monitor["above"]).value
        except ValueError:
            return  # reported with the threshold
        if above % period:
            divisor = _dividing_period(above)
            fix = f"use a period that divides it, e.g. period: '{divisor}'" if divisor else f"write it as a whole number of periods ({every})"
            yield at("E-PERIOD", where.value((*base, "above")), (*base, "above"), f"freshness threshold {monitor['above']!r} is not a whole number of periods ({every}): the alarm counts periods without a write", fix)
            above = None
    if length < period or length % period:
        yield at("E-PERIOD", where.value((*base, "for")), (*base, "for"), f"`for` {shown!r} must be a whole multiple of the period ({every})", f"use e.g. '{units.format_duration(period * 5 if period * 5 <= limit else period)}'")
        return
    subhour = " with periods under 1h" if limit < units.MAX_ALARM_SECONDS else ""
    if metric != "freshness" or target_kind != "dataset":
        if length > limit:
            yield at("E-PERIOD", where.value((*base, "for")), (*base, "for"), f"`for` {shown!r} is longer than CloudWatch evaluates{subhour}: at most {limit:,} s ({units.format_duration(limit)})", f"use at most '{units.format_duration(limit)}'" + (", or a period of '1h' or more (up to '7d')" if subhour else ""))
        return
    if above is None:
        return
    periods = units.alarm_periods(metric, above, int(period), int(length))
    window = periods * period
    if window > limit:
        spent = f"the freshness alarm needs {periods} periods of {every} without a write ({int(window):,} s: above + for - period); CloudWatch evaluates at most {limit:,} s{subhour}"
        if subhour and above <= units.MAX_ALARM_SECONDS:
            yield at("E-PERIOD", where.value((*base, "period")), (*base, "period"), spent, "use period: '1h' (and `for` in whole hours, e.g. for: '1h')")
        else:
            yield at("E-PERIOD", where.value((*base, "for")), (*base, "for"), spent, f"lower `above` or `for`: above + for - period must be at most {units.format_duration(limit)}")


#: the job options, and the job metrics each applies to
JOB_OPTIONS = {
    "schedule": JOB_METRICS,
    "no_data": JOB_METRICS,
    "instances": JOB_METRICS,
    "test": ("data_drift", "prediction_drift"),
    "quality": ("model_quality",),
    "labels": ("model_quality",),
}
SCORES = ("accuracy", "f1", "roc_auc")
ERRORS = ("rmse", "mae")


def _task(monitor: dict[str, Any], models: dict[str, Any]) -> str | None:
    """``classifier``/``regressor`` of the watched model's estimator, when the spec says."""
    model = models.get(monitor.get("model"))
    train = mapping(mapping(model).get("train")) if isinstance(model, dict) else {}
    path = train.get("estimator")
    if not isinstance(path, str) or not estimators.ESTIMATOR_PATTERN.match(path):
        return None
    try:
        return estimators.describe(path).kind
    except ValueError:
        return None  # the model's rules report it


def _job_problems(base: tuple[Any, ...], metric: str, monitor: dict[str, Any], models: dict[str, Any], where: Locator) -> Iterator[Problem]:
    """Job options where they apply; a quality metric that fits the model; a period of at least one run."""
    for option, metrics in JOB_OPTIONS.items():
        if option in monitor and metric not in metrics:
            kind = "CloudWatch's own metric" if metric not in JOB_METRICS else "a job metric it does not apply to"
            yield at("E-JOB-OPTION", where.key((*base, option)), (*base, option), f"`{option}` applies to {choices(list(metrics))}; {metric} is {kind}", f"remove `{option}`")
    if metric not in JOB_METRICS:
        return
    quality = monitor.get("quality")
    task = _task(monitor, models) if metric == "model_quality" else None
    if isinstance(quality, str) and task is not None:
        fitting = SCORES if task == "classifier" else ERRORS
        if quality not in fitting:
            yield at("E-QUALITY-METRIC", where.value((*base, "quality")), (*base, "quality"), f"{quality} does not measure a {task} (model '{monitor.get('model')}')", f"use one of: {choices(list(fitting))}")
    schedule = monitor.get("schedule", "hourly")
    run = SCHEDULE_SECONDS.get(schedule) if isinstance(schedule, str) else None
    period = _duration(monitor.get("period")) if "period" in monitor else None
    if run is not None and period is not None and period < run:
        yield at("E-JOB-PERIOD", where.value((*base, "period")), (*base, "period"), f"period {monitor['period']!r} is shorter than one run of the {schedule} job ({units.format_duration(run)}): most periods would hold no datum", f"use period: '{units.format_duration(run)}' or longer, or remove `period`")


def _quality_threshold(base: tuple[Any, ...], side: str, value: float, monitor: dict[str, Any], models: dict[str, Any], where: Locator) -> Iterator[Problem]:
    """Scores (accuracy, f1, roc_auc) alarm below a number up to 1; errors (rmse, mae) alarm above."""
    quality = monitor.get("quality")
    task = _task(monitor, models)
    if not isinstance(quality, str):
        quality = {"classifier": "accuracy", "regressor": "rmse"}.get(task or "")
    path = (*base, side)
    if quality in SCORES:
        if side == "above":
            yield at("E-QUALITY-SIDE", where.key(path), path, f"{quality} is a score (higher is better): alarming above it fires on a good model", "use `below:`, e.g. below: 0.8")
        elif value > 1:
            yield at("E-THRESHOLD", where.value(path), path, f"{quality} is at most 1, so below {value:g} always alarms", "use a number from 0 to 1, e.g. below: 0.8")
    elif quality in ERRORS and side == "below":
        yield at("E-QUALITY-SIDE", where.key(path), path, f"{quality} is an error (lower is better): alarming below it fires on a good model", "use `above:`")


def _dividing_period(seconds: float) -> str | None:
    """The longest of 1d, 1h, 1m that divides ``seconds`` (a freshness threshold), or None."""
    for size in (86400, 3600, 60):
        if seconds % size == 0:
            return units.format_duration(size)
    return None


def _duration(value: Any) -> float | None:
    try:
        return units.parse_duration(value)
    except ValueError:
        return None  # the schema's duration pattern reports it

