"""CloudWatch metric alarms evaluated by the local emulator, with notifications to SNS.

moto stores metric data and alarms but never evaluates an alarm: its state changes only
through ``SetAlarmState``. The emulator closes that loop so that what we deploy can be
tried on a laptop: a metric datum -> the alarm in ALARM -> a message on the alarm's SNS
topics (and on every SQS queue subscribed to them, which moto delivers in-process).

When an alarm is evaluated:

* after every request that added metric data (``PutMetricData``): the alarms watching a
  metric that request touched, at the emulator's clock (wall time, or the time set with
  :func:`set_clock`);
* on an explicit call: :func:`evaluate_alarms` (``POST`` :data:`EVALUATE_PATH`) evaluates
  every metric alarm of every account and region at the time it is given.

There is no background evaluator: nothing changes between two calls, so a test decides
what happens when.

What is evaluated, as CloudWatch does for the alarms ModelOps makes: the statistic
(``Average``, ``Sum``, ``Minimum``, ``Maximum``, ``SampleCount`` and percentiles ``pNN`` /
``pNN.N`` from the raw values received, nearest rank), periods aligned on multiples of
the period, the last ``EvaluationPeriods`` of them ending with the one holding the clock,
``DatapointsToAlarm`` of them (M of N), the comparison operator and threshold,
``TreatMissingData`` (``missing``, ``notBreaching``, ``breaching``, ``ignore``, with the
rules of CloudWatch's missing-data table), dimensions matched exactly and the unit when
the alarm sets one. A state change sets ``StateValue``, ``StateReason``,
``StateReasonData`` (JSON) and ``StateUpdatedTimestamp`` as CloudWatch does, and when
actions are enabled publishes CloudWatch's alarm notification JSON to ``AlarmActions`` on
entering ALARM, ``OKActions`` on entering OK and ``InsufficientDataActions`` on entering
INSUFFICIENT_DATA. Not evaluated: metric-math alarms (``Metrics``), composite alarms,
anomaly detection, extended statistics other than ``pNN`` (trimmed mean …), percentiles of
data sent as ``StatisticValues``, ``EvaluateLowSampleCountPercentile``.

Why a WSGI middleware and moto's backend objects, not a patch of moto's modules: the
emulator's request handling is ours (:func:`modelops.local.emulator.make_app`), so the
hook sees each request end without changing moto for anyone else in the process (the
tests run a plain moto server beside the emulator). Which metrics a request touched is
read from the data the backends gained, not from the request body, so every protocol a
client speaks (query, JSON, CBOR) is covered.

Example::

    evaluate_alarms("https://127.0.0.1:4566", now=dt.datetime(2026, 12, 2, 20, 0, tzinfo=dt.timezone.utc),
                    verify=".modelops/local/tls/cert.pem")
    # [{'AlarmName': 'churn-dev-churn-latency', 'OldStateValue': 'OK', 'NewStateValue': 'ALARM', ...}]
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import requests

#: evaluate every metric alarm now (``POST``, JSON body ``{"now": ISO 8601, "alarms": [names]}``, both optional)
EVALUATE_PATH = "/_modelops/alarms/evaluate"
#: the clock evaluations after ``PutMetricData`` use (``POST`` ``{"now": ISO 8601 | null}``)
CLOCK_PATH = "/_modelops/alarms/clock"

ALARM, OK, INSUFFICIENT_DATA = "ALARM", "OK", "INSUFFICIENT_DATA"

_OPERATORS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
#: what notifications call a region (CloudWatch writes the region's name, not its code)
_REGION_NAMES = {
    "eu-west-1": "EU (Ireland)", "eu-west-2": "EU (London)", "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)", "eu-north-1": "EU (Stockholm)", "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)", "us-west-2": "US West (Oregon)",
}


# --- evaluating one alarm: pure functions --------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """What one ``PutMetricData`` entry added: a raw value, or a statistic set."""

    timestamp: dt.datetime
    value: float | None = None
    #: (sum, minimum, maximum, sample count) of a ``StatisticValues`` entry
    statistics: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Rule:
    """The parts of a metric alarm that decide its state."""

    statistic: str  # Average | Sum | Minimum | Maximum | SampleCount | pNN
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    comparison: str
    threshold: float
    treat_missing_data: str = "missing"


@dataclass(frozen=True)
class Verdict:
    """A state an evaluation reached, why, and the datapoints it looked at (newest first)."""

    state: str
    reason: str
    reason_data: dict[str, Any]


def statistic_of(statistic: str, samples: list[Sample]) -> float | None:
    """``statistic`` of the samples of one period; None when there is none to compute it from.

    Example::

        statistic_of("p50", [Sample(t, 1.0), Sample(t, 5.0), Sample(t, 9.0)])   # 5.0
    """
    values = [s.value for s in samples if s.value is not None]
    sets = [s.statistics for s in samples if s.statistics is not None]
    match = _PERCENTILE.match(statistic)
    if match:
        # a statistic set carries no distribution: percentiles come from raw values only
        if not values:
            return None
        ordered = sorted(values)
        rank = math.ceil(float(match.group(1)) / 100.0 * len(ordered))
        return ordered[max(rank, 1) - 1]
    count = len(values) + sum(s[3] for s in sets)
    if count == 0:
        return None
    total = sum(values) + sum(s[0] for s in sets)
    if statistic == "Sum":
        return total
    if statistic == "SampleCount":
        return float(count)
    if statistic == "Average":
        return total / count
    if statistic == "Minimum":
        return min([*values, *(s[1] for s in sets)])
    if statistic == "Maximum":
        return max([*values, *(s[2] for s in sets)])
    raise ValueError(f"statistic {statistic!r} is not evaluated by the local emulator")


def window(rule: Rule, now: dt.datetime) -> list[dt.datetime]:
    """Start of each evaluated period, oldest first: the last ``evaluation_periods`` periods
    aligned on multiples of ``period``, ending with the one holding ``now``."""
    epoch = int(_utc(now).timestamp())
    current = epoch - epoch % rule.period
    return [_from_epoch(current - (rule.evaluation_periods - 1 - i) * rule.period)
            for i in range(rule.evaluation_periods)]


def evaluate(rule: Rule, samples: Iterable[Sample], now: dt.datetime) -> Verdict | None:
    """The state ``rule`` puts the alarm in at ``now``; None when it keeps its state (``ignore``).

    CloudWatch's missing-data rules: with ``breaching`` / ``notBreaching`` a missing
    period counts as that; with ``missing`` / ``ignore`` it does not count, a window with
    no datapoint is INSUFFICIENT_DATA (``missing``) or keeps the state (``ignore``), and
    fewer than M datapoints that all breach are ALARM (``missing``) or keep the state
    (``ignore``).
    """
    check, words = _OPERATORS[rule.comparison]
    starts = window(rule, now)
    by_period: dict[dt.datetime, list[Sample]] = {start: [] for start in starts}
    first, end = starts[0], starts[-1] + dt.timedelta(seconds=rule.period)
    for sample in samples:
        at = _utc(sample.timestamp)
        if first <= at < end:
            offset = int((at - first).total_seconds()) // rule.period
            by_period[starts[offset]].append(sample)
    points = [(start, statistic_of(rule.statistic, by_period[start]), len(by_period[start])) for start in starts]
    present = [(start, value, count) for start, value, count in points if value is not None]
    treat = rule.treat_missing_data or "missing"
    breaching = sum(1 for _, value, _ in present if check(value, rule.threshold))
    missing = len(points) - len(present)
    if treat == "breaching":
        breaching += missing
    m = rule.datapoints_to_alarm
    if not present and treat in ("missing", "ignore"):
        if treat == "ignore":
            return None
        state = INSUFFICIENT_DATA
    elif breaching >= m:
        state = ALARM
    elif treat in ("missing", "ignore") and len(present) < m and breaching == len(present):
        if treat == "ignore":
            return None
        state = ALARM
    else:
        state = OK
    return Verdict(state, _reason(rule, state, present, missing, breaching, words),
                   _reason_data(rule, now, starts, present))


def _reason(rule: Rule, state: str, present: list, missing: int, breaching: int, words: str) -> str:
    if state == INSUFFICIENT_DATA:
        n = rule.evaluation_periods
        return f"Insufficient Data: {n} datapoint{'s were' if n != 1 else ' was'} unknown."
    if not present:  # only missing periods, treated as breaching or not
        treated = "Breaching" if rule.treat_missing_data == "breaching" else "NonBreaching"
        return (f"Threshold Crossed: no datapoints were received for {missing} period{'s' if missing != 1 else ''} "
                f"and {missing} missing datapoint{'s were' if missing != 1 else ' was'} treated as [{treated}].")
    shown = ", ".join(f"{value} ({start.strftime('%d/%m/%y %H:%M:%S')})" for start, value, _ in reversed(present))
    verb = words if state == ALARM else f"not {words}"
    if rule.evaluation_periods == 1:
        return f"Threshold Crossed: 1 datapoint [{shown}] was {verb} the threshold ({rule.threshold})."
    count = breaching if state == ALARM else rule.evaluation_periods - breaching
    transition = "OK -> ALARM" if state == ALARM else "ALARM -> OK"
    minimum = rule.datapoints_to_alarm if state == ALARM else rule.evaluation_periods - rule.datapoints_to_alarm + 1
    return (f"Threshold Crossed: {count} out of the last {rule.evaluation_periods} datapoints [{shown}] "
            f"{'was' if count == 1 else 'were'} "
            f"{verb} the threshold ({rule.threshold}) (minimum {minimum} datapoint"
            f"{'s' if minimum != 1 else ''} for {transition} transition).")


def _reason_data(rule: Rule, now: dt.datetime, starts: list[dt.datetime], present: list) -> dict[str, Any]:
    return {
        "version": "1.0",
        "queryDate": _stamp(now),
        "startDate": _stamp(starts[0]),
        ("statistic" if not _PERCENTILE.match(rule.statistic) else "extendedStatistic"): rule.statistic,
        "period": rule.period,
        "recentDatapoints": [value for _, value, _ in present],
        "threshold": rule.threshold,
        "evaluatedDatapoints": [
            {"timestamp": _stamp(start), "sampleCount": float(count), "value": value}
            for start, value, count in reversed(present)
        ],
    }


# --- the emulator's alarms: moto's backend objects --------------------------------------------------


def _backends() -> Iterator[tuple[str, str, Any]]:
    """(account, region, backend) of every CloudWatch backend moto has made (none created)."""
    from moto.cloudwatch.models import cloudwatch_backends

    for account, regions in list(dict.items(cloudwatch_backends)):
        for region, backend in list(dict.items(regions)):
            yield account, region, backend


def _metric_key(namespace: str, name: str, dimensions: Iterable[Any]) -> tuple:
    return namespace, name, frozenset((d.name, d.value) for d in dimensions)


def _rule(alarm: Any) -> Rule | None:
    """The alarm's rule, or None when the emulator does not evaluate it (metric math, composite)."""
    if alarm.metric_data_queries or getattr(alarm, "rule", None) or not alarm.metric_name:
        return None
    statistic = alarm.extended_statistic or alarm.statistic
    if alarm.comparison_operator not in _OPERATORS or not statistic:
        return None
    if not (_PERCENTILE.match(statistic) or statistic in ("Average", "Sum", "Minimum", "Maximum", "SampleCount")):
        return None
    periods = int(alarm.evaluation_periods)
    return Rule(statistic=statistic, period=int(alarm.period), evaluation_periods=periods,
                datapoints_to_alarm=int(alarm.datapoints_to_alarm or periods), comparison=alarm.comparison_operator,
                threshold=float(alarm.threshold), treat_missing_data=alarm.treat_missing_data or "missing")


def _samples(alarm: Any, data: Iterable[Any]) -> list[Sample]:
    from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum

    key = _metric_key(alarm.namespace, alarm.metric_name, alarm.dimensions)
    found = []
    for datum in data:
        if _metric_key(datum.namespace, datum.name, datum.dimensions) != key:
            continue
        if alarm.unit and (datum.unit or "None") != alarm.unit:
            continue
        timestamp = _parse(datum.timestamp)
        if isinstance(datum, MetricDatum):
            found.append(Sample(timestamp, value=float(datum.value)))
        elif isinstance(datum, MetricAggregatedDatum):
            found.append(Sample(timestamp, statistics=(float(datum.sum_stat), float(datum.min_stat),
                                                       float(datum.max_stat), float(datum.sample_count))))
    return found


def notification(alarm: Any, account: str, region: str, old: str, now: dt.datetime) -> dict[str, Any]:
    """CloudWatch's alarm notification (the SNS message body) for ``alarm``'s new state."""
    extended = bool(alarm.extended_statistic)
    trigger: dict[str, Any] = {
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "StatisticType": "ExtendedStatistic" if extended else "Statistic",
        "Unit": alarm.unit,
        "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
        "Period": int(alarm.period),
        "EvaluationPeriods": int(alarm.evaluation_periods),
        "DatapointsToAlarm": int(alarm.datapoints_to_alarm or alarm.evaluation_periods),
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": float(alarm.threshold),
        "TreatMissingData": alarm.treat_missing_data or "missing",
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
    }
    if extended:
        trigger["ExtendedStatistic"] = alarm.extended_statistic
    else:
        trigger["Statistic"] = str(alarm.statistic).upper()
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": _stamp(_parse(alarm.configuration_updated_timestamp)),
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": _stamp(now),
        "Region": _REGION_NAMES.get(region, region),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old,
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": trigger,
    }


def _publish(alarm: Any, account: str, region: str, old: str, now: dt.datetime) -> None:
    from moto.sns.models import sns_backends

    actions = {ALARM: alarm.alarm_actions, OK: alarm.ok_actions,
               INSUFFICIENT_DATA: alarm.insufficient_data_actions}[alarm.state_value] or []
    if not alarm.actions_enabled or not actions:
        return
    message = json.dumps(notification(alarm, account, region, old, now))
    subject = f'{alarm.state_value}: "{alarm.name}" in {_REGION_NAMES.get(region, region)}'[:100]
    for arn in actions:
        parts = arn.split(":")
        if len(parts) < 6 or parts[2] != "sns":
            continue  # autoscaling, EC2 and Systems Manager actions are not run locally
        sns = sns_backends[parts[4]][parts[3]]
        if arn in sns.topics:  # a topic that is gone: CloudWatch's publish fails, the alarm does not
            sns.publish(message, arn=arn, subject=subject)


class Evaluator:
    """Evaluates the emulator's alarms; one per emulator process, safe from any request thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clock: dt.datetime | None = None
        #: id(backend) -> (its metric_data list, how many of its entries were seen)
        self._seen: dict[int, tuple[list[Any], int]] = {}

    def now(self) -> dt.datetime:
        return self._clock or dt.datetime.now(dt.timezone.utc)

    def set_clock(self, now: dt.datetime | None) -> None:
        with self._lock:
            self._clock = _utc(now) if now is not None else None

    def evaluate_all(self, now: dt.datetime | None = None, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Evaluate every metric alarm (of ``names`` only, if given) at ``now`` (default: the
        clock); the state changes made."""
        wanted = None if names is None else set(names)
        with self._lock:
            at = _utc(now) if now is not None else self.now()
            changes = []
            for account, region, backend in _backends():
                self._mark_seen(backend)
                for alarm in list(backend.alarms.values()):
                    if wanted is None or alarm.name in wanted:
                        changes += self._evaluate_one(alarm, account, region, backend.metric_data, at)
            return changes

    def after_request(self) -> list[dict[str, Any]]:
        """Evaluate the alarms watching a metric that gained data since the last look."""
        if not any(self._gained(backend) for _, _, backend in _backends()):
            return []  # the common case, without the lock
        with self._lock:
            at = self.now()
            changes = []
            for account, region, backend in _backends():
                fresh = self._mark_seen(backend)
                if not fresh:
                    continue
                touched = {_metric_key(d.namespace, d.name, d.dimensions) for d in fresh}
                for alarm in list(backend.alarms.values()):
                    if _metric_key(alarm.namespace or "", alarm.metric_name or "", alarm.dimensions) in touched:
                        changes += self._evaluate_one(alarm, account, region, backend.metric_data, at)
            return changes

    def _gained(self, backend: Any) -> bool:
        data, seen = self._seen.get(id(backend), (None, 0))
        return data is not backend.metric_data or len(backend.metric_data) > seen

    def _mark_seen(self, backend: Any) -> list[Any]:
        data, seen = self._seen.get(id(backend), (None, 0))
        if data is not backend.metric_data:  # a new backend, or moto's reset made a new list
            seen = 0
        current = backend.metric_data
        fresh = current[seen:]
        self._seen[id(backend)] = (current, len(current))
        return fresh

    def _evaluate_one(self, alarm: Any, account: str, region: str, data: list[Any], now: dt.datetime) -> list[dict]:
        rule = _rule(alarm)
        if rule is None:
            return []
        unchecked = _unchecked(alarm)
        old = INSUFFICIENT_DATA if unchecked else alarm.state_value
        verdict = evaluate(rule, _samples(alarm, list(data)), now)
        if verdict is None or verdict.state == old and not unchecked:
            return []
        alarm.update_state(verdict.reason, json.dumps(verdict.reason_data), verdict.state)
        # moto stamps its own wall clock; CloudWatch stamps the evaluation's time
        alarm.state_updated_timestamp = now.replace(tzinfo=None)
        if old != verdict.state:
            _publish(alarm, account, region, old, now)
        return [{"AlarmName": alarm.name, "Region": region, "AccountId": account, "OldStateValue": old,
                 "NewStateValue": verdict.state, "StateReason": verdict.reason, "StateUpdatedTimestamp": _stamp(now)}]


def _unchecked(alarm: Any) -> bool:
    # moto creates an alarm in OK, "Unchecked: Initial alarm creation"; CloudWatch creates
    # it in INSUFFICIENT_DATA, and its first evaluation is a change from that (OK included).
    return str(alarm.state_reason).startswith("Unchecked")


class AlarmMiddleware:
    """WSGI middleware: evaluates alarms after requests that added metric data, and answers
    :data:`EVALUATE_PATH` and :data:`CLOCK_PATH`."""

    def __init__(self, app: Any, evaluator: Evaluator | None = None) -> None:
        self._app = app
        self.evaluator = evaluator or Evaluator()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO")
        if path in (EVALUATE_PATH, CLOCK_PATH) and environ.get("REQUEST_METHOD") == "POST":
            return self._control(path, environ, start_response)
        if "/monitoring/aws4_request" not in environ.get("HTTP_AUTHORIZATION", ""):
            return self._app(environ, start_response)  # not CloudWatch
        body = list(self._app(environ, start_response))  # the request is done once its body is
        self.evaluator.after_request()
        return body

    def _control(self, path: str, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            given = json.loads(environ["wsgi.input"].read(length) or b"{}")
            now = _parse(given["now"]) if given.get("now") else None
            if path == CLOCK_PATH:
                self.evaluator.set_clock(now)
                answer: Any = {"now": _stamp(self.evaluator.now()), "fixed": now is not None}
            else:
                names = given.get("alarms")
                if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                    raise ValueError("alarms must be a list of alarm names")
                answer = {"changes": self.evaluator.evaluate_all(now, names)}
            status = "200 OK"
        except (ValueError, TypeError, AttributeError) as exc:
            status, answer = "400 Bad Request", {"error": f"{type(exc).__name__}: {exc}"}
        body = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


# --- clients ----------------------------------------------------------------------------------------


def _post(url: str, path: str, payload: dict[str, Any], verify: str | bool) -> Any:
    session = requests.Session()
    session.trust_env = False  # loopback: never through HTTPS_PROXY
    response = session.post(url.rstrip("/") + path, json=payload, verify=verify, timeout=60)
    response.raise_for_status()
    return response.json()


def evaluate_alarms(url: str, *, now: dt.datetime | None = None, verify: str | bool = True,
                    alarms: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Have the emulator at ``url`` evaluate every metric alarm (or those named in ``alarms``)
    at ``now`` (default: its clock).

    Returns the state changes it made (``AlarmName``, ``OldStateValue``, ``NewStateValue``,
    ``StateReason``, ...); notifications went out to the alarms' topics meanwhile.
    ``verify``: the emulator's CA bundle (``Target.verify``).

    Example::

        evaluate_alarms(target.url, now=dt.datetime.now(dt.timezone.utc), verify=target.verify)
    """
    payload: dict[str, Any] = {"now": _stamp(now) if now else None}
    if alarms is not None:
        payload["alarms"] = sorted(alarms)
    return _post(url, EVALUATE_PATH, payload, verify)["changes"]


def set_clock(url: str, now: dt.datetime | None, *, verify: str | bool = True) -> None:
    """Fix the clock the emulator at ``url`` evaluates by after ``PutMetricData`` (None: wall time).

    Example::

        set_clock(target.url, dt.datetime(2026, 12, 2, 20, 0, tzinfo=dt.timezone.utc), verify=target.verify)
    """
    _post(url, CLOCK_PATH, {"now": _stamp(now) if now else None}, verify)


# --- time ----------------------------------------------------------------------------------------------


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)


def _from_epoch(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def _parse(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return _utc(value)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    text = str(value).strip().replace("Z", "+00:00")
    if re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
        return dt.datetime.fromtimestamp(float(text), dt.timezone.utc)
    if re.search(r"[+-]\d{4}$", text):  # CloudWatch's +0000
        text = text[:-2] + ":" + text[-2:]
    return _utc(dt.datetime.fromisoformat(text))


def _stamp(moment: dt.datetime) -> str:
    """CloudWatch's timestamp format: ``2026-12-02T20:00:00.000+0000``."""
    moment = _utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
