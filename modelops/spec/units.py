"""Units of the spec language: durations, percentages and alarm thresholds.

Every parser raises :class:`ValueError` with a message a user can act on; the validator
turns it into a :class:`~modelops.errors.Problem` at the value's position.

Example::

    parse_duration("250ms")                     # 0.25
    parse_threshold("error_rate", "2%")         # Threshold(value=0.02, unit='ratio', text='2%')
    parse_threshold("latency_p99", "250ms")     # Threshold(value=0.25, unit='seconds', ...)
"""

from __future__ import annotations

import math
import re

from modelops.spec.resolved import DATASET_METRICS, JOB_METRICS, MODEL_METRICS, Threshold

__all__ = [
    "DURATION_METRICS",
    "MAX_ALARM_SECONDS",
    "NUMBER_METRICS",
    "PERCENT_METRICS",
    "alarm_for",
    "alarm_periods",
    "format_duration",
    "max_alarm_seconds",
    "monitor_timing",
    "metric_unit",
    "parse_duration",
    "parse_gate",
    "parse_percent",
    "parse_threshold",
]

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$")
_PERCENT = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*%$")
_GATE = re.compile(r"^(>=|<=|>|<)\s*(-?[0-9]+(?:\.[0-9]+)?)$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

#: metrics whose thresholds are durations (seconds)
DURATION_METRICS = frozenset({"latency_p50", "latency_p90", "latency_p99", "latency_avg", "freshness"})
#: metrics whose thresholds are percentages (a ratio 0-1 once parsed)
PERCENT_METRICS = frozenset({"error_rate", "cpu_utilization", "memory_utilization"})
#: metrics whose thresholds are plain numbers (a count, or the drift PSI)
NUMBER_METRICS = frozenset({"invocations", "data_drift", "data_quality", "prediction_drift", "model_quality"})
#: the only metric a `below` threshold makes sense for (a traffic floor)
BELOW_METRICS = frozenset({"invocations", "model_quality"})
#: the highest percentage each percentage metric can reach (SageMaker CPU is per core)
_MAX_PERCENT = {"error_rate": 100.0, "memory_utilization": 100.0, "cpu_utilization": 12800.0}

assert DURATION_METRICS | PERCENT_METRICS | NUMBER_METRICS == set(MODEL_METRICS) | set(DATASET_METRICS)

#: CloudWatch PutMetricAlarm: Period × EvaluationPeriods is at most seven days, and at most
#: one day when Period is under an hour (botocore 1.44.5's CloudWatch model, ``Period``)
MAX_ALARM_SECONDS = 7 * 86400
_MAX_SUBHOUR_ALARM_SECONDS = 86400


#: a job monitor's period and `for` when unset: one run of its schedule
JOB_PERIODS = {"hourly": "1h", "daily": "1d"}

#: a freshness monitor's period and `for` when unset: an hour, and one period (the schema's
#: 1m/5m would ask CloudWatch for more than its one-day limit of sub-hour periods)
FRESHNESS_PERIOD = "1h"


def monitor_timing(monitor: dict[str, object]) -> tuple[object, object]:
    """The ``period`` and ``for`` of a monitor as written, or their defaults when unset.

    Example::

        monitor_timing({"metric": "freshness", "above": "48h"})   # ('1h', '1h')
    """
    if monitor.get("metric") == "freshness":
        period = monitor.get("period", FRESHNESS_PERIOD)
        return period, monitor.get("for", period)
    if monitor.get("metric") in JOB_METRICS:
        # a job publishes one datum per run: a shorter period could never hold one
        run = JOB_PERIODS.get(str(monitor.get("schedule", "hourly")), "1h")
        period = monitor.get("period", run)
        return period, monitor.get("for", period)
    return monitor.get("period", "1m"), monitor.get("for", "5m")


def max_alarm_seconds(period: float) -> int:
    """The longest Period × EvaluationPeriods CloudWatch accepts for alarms of ``period`` seconds."""
    return _MAX_SUBHOUR_ALARM_SECONDS if period < 3600 else MAX_ALARM_SECONDS


def alarm_periods(metric: str, threshold_seconds: float, period: int, length: int) -> int:
    """The alarm's evaluation periods for a monitor of ``period`` and ``for`` (``length``) seconds.

    Every metric: ``for / period`` consecutive breaching periods. Freshness is watched as "no
    write in a period": its condition (nothing written for ``above``) first holds after
    ``above / period`` empty periods, and holds for ``for`` (``for / period`` datapoints)
    after ``for / period - 1`` more.

    Example::

        alarm_periods("freshness", 26 * 3600, 3600, 86400)   # 49: 26 h without a write, then 23 h more
    """
    if metric == "freshness":
        return math.ceil(threshold_seconds / period) + length // period - 1
    return length // period


def parse_duration(text: object) -> float:
    """Seconds in a duration such as ``250ms``, ``5m``, ``48h`` or ``1d``.

    Example::

        parse_duration("1.5h")   # 5400.0
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as '5m' or '250ms', got {_show(text)}")
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit (ms, s, m, h, d), e.g. '5m'")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration: ``format_duration(300)`` is ``'5m'``."""
    for unit in ("d", "h", "m", "s"):
        size = _SECONDS[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{round(seconds * 1000, 3):g}ms"


def alarm_for(metric: str, threshold_seconds: float, period: int, evaluation_periods: int) -> int:
    """The ``for`` (seconds) that gives an alarm ``evaluation_periods``: the inverse of :func:`alarm_periods`."""
    if metric == "freshness":
        return (evaluation_periods + 1 - math.ceil(threshold_seconds / period)) * period
    return evaluation_periods * period


def parse_percent(text: object) -> float:
    """A percentage such as ``2%`` as a ratio (0.02)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a percentage such as '2%', got {_show(text)}")
    match = _PERCENT.fullmatch(text.strip())
    if match is None:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a percentage; write it like '2%'") from None
        raise ValueError(f"{text!r} is not a percentage; write {_as_percent(number)}")
    return float(match.group(1)) / 100.0


def metric_unit(metric: str) -> str:
    """``seconds``, ``ratio`` or ``number``: the unit a metric's threshold is written in."""
    if metric in DURATION_METRICS:
        return "seconds"
    if metric in PERCENT_METRICS:
        return "ratio"
    if metric in NUMBER_METRICS:
        return "number"
    raise ValueError(f"unknown metric {metric!r}")


def parse_threshold(metric: str, value: object) -> Threshold:
    """Parse an ``above``/``below`` value in the unit of ``metric``.

    Durations for latency_* and freshness (``250ms``), percentages for error_rate and the
    utilisations (``2%``), plain non-negative numbers for invocations and data_drift.

    Example::

        parse_threshold("data_drift", 0.2)   # Threshold(value=0.2, unit='number', text='0.2')
    """
    unit = metric_unit(metric)
    text = value if isinstance(value, str) else _show(value)
    if unit == "seconds":
        if _is_number(value):
            unit_hint = "h" if metric == "freshness" else "ms"
            raise ValueError(f"{metric} takes a duration, not a bare number; write e.g. '{_show(value)}{unit_hint}'")
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError(f"{metric} threshold must be longer than 0; use a positive duration, e.g. '{'6h' if metric == 'freshness' else '500ms'}'")
        return Threshold(seconds, "seconds", text)
    if unit == "ratio":
        if _is_number(value):
            raise ValueError(f"{metric} takes a percentage, not a bare number; write {_as_percent(value)}")
        ratio = parse_percent(value)
        highest = _MAX_PERCENT[metric]
        if ratio * 100.0 > highest:
            raise ValueError(f"{metric} threshold {text} is above {highest:g}%; use a percentage from 0% to {highest:g}%")
        return Threshold(ratio, "ratio", text)
    if not _is_number(value):
        raise ValueError(f"{metric} takes a plain number, got {_show(value)}; write a number such as 0.2 or 100, unquoted")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{metric} threshold must be a finite number ≥ 0, got {_show(value)}; use a number such as 0.2")
    return Threshold(number, "number", text)


def parse_gate(text: object) -> tuple[str, float]:
    """A promotion gate ``">= 0.85"`` as its operator and value."""
    if not isinstance(text, str):
        raise ValueError(f"expected a comparison such as '>= 0.85', got {_show(text)}")
    match = _GATE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a comparison; write an operator and a number, e.g. '>= 0.85'")
    return match.group(1), float(match.group(2))


def _as_percent(number: float) -> str:
    """The percentage a bare number most likely means: below 1 a ratio (0.01 is '1%'), else a
    percentage without its sign (80 is '80%')."""
    if 0 < number < 1:
        return f"'{round(number * 100, 6):g}%' ({number:g} as a ratio)"
    return f"'{number:g}%'"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else str(value)
