"""The emulator evaluates the alarms ``up`` made from the metric data it receives, and
notifies their topics: a datum -> the alarm in ALARM -> a message on a subscribed queue.

The server tests provision churn dev (a tiny artifact: nothing is trained) to the TLS
emulator, subscribe an SQS queue to the alarms' topic and talk to it with plain boto3.
The emulator's clock is fixed per test (:func:`set_clock`); the metric data are a day old.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from modelops.local.alarms import Rule, Sample, evaluate, evaluate_alarms, set_clock, statistic_of
from modelops.local.apply import up
from modelops.local.server import Target, stop
from modelops.spec.envs import load_environment
from tests.components.helpers import tiny_artifact, with_artifact
from tests.helpers import ROOT, Emulator

pytestmark = [pytest.mark.aws]

TOPIC = "arn:aws:sns:eu-west-1:123456789012:churn-dev-oncall"
LATENCY = "churn-dev-churn-latency"
DRIFT = "churn-dev-churn-drift"
FRESH = "churn-dev-customers-fresh"
ERRORS = "churn-dev-churn-errors"
ENDPOINT = "churn-dev-churn-classifier"
BUCKET = "churn-dev-customers-123456789012"
LATENCY_DIMENSIONS = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "primary"}]
#: 98 fast calls and 2 slow ones a minute: the p99 (400 ms) breaches 250 ms, the average does not
SLOW_MINUTE = [1000.0] * 98 + [400_000.0] * 2
FAST_MINUTE = [1000.0] * 100
#: the tests' "now": 30 s into a minute a day ago (CloudWatch takes data up to two weeks old)
T = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).replace(second=30, microsecond=0)


@dataclass
class Env:
    emulator: Emulator
    queue_url: str

    def client(self, service: str) -> Any:
        return self.emulator.client(service)

    def alarm(self, name: str) -> dict[str, Any]:
        return self.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]

    def messages(self) -> list[dict[str, Any]]:
        """The alarm notifications on the queue (consumed), oldest first."""
        sqs, found = self.client("sqs"), []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                envelope = json.loads(message["Body"])
                assert envelope["TopicArn"] == TOPIC
                found.append({"Subject": envelope.get("Subject"), **json.loads(envelope["Message"])})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def evaluate(self, now: dt.datetime) -> list[dict[str, Any]]:
        return evaluate_alarms(self.emulator.url, now=now, verify=self.emulator.ca_bundle)

    def put_latency(self, minute: dt.datetime, values: list[float], dimensions: list[dict] | None = None) -> None:
        self.client("cloudwatch").put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
            "MetricName": "ModelLatency", "Dimensions": dimensions or LATENCY_DIMENSIONS, "Timestamp": minute,
            "Values": values, "Unit": "Microseconds"}])


@pytest.fixture
def churn(emulator_server: Emulator, tmp_path: Path) -> Iterator[Env]:
    """churn dev provisioned by ``up`` to a freshly reset emulator, its topic feeding a queue."""
    emulator_server.reset()
    env = with_artifact(load_environment(ROOT / "modelops.yaml", "dev"), tiny_artifact(tmp_path / "artifact"))
    outcome = up(env, emulator_server.target(), tmp_path / "project")
    assert all(check.ok for check in outcome.checks)
    sqs = emulator_server.client("sqs")
    url = sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    emulator_server.client("sns").subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=arn)
    set_clock(emulator_server.url, T, verify=emulator_server.ca_bundle)
    try:
        yield Env(emulator_server, url)
    finally:
        set_clock(emulator_server.url, None, verify=emulator_server.ca_bundle)


def _minute(offset: int) -> dt.datetime:
    return T.replace(second=0) + dt.timedelta(minutes=offset)


# --- through the emulator ----------------------------------------------------------------------------


def test_latency_p99_breaching_five_of_five_minutes_alarms_and_notifies_the_queue(churn: Env) -> None:
    # GIVEN four slow minutes before the current one (the alarm wants 5 of 5)
    for offset in (-4, -3, -2, -1):
        churn.put_latency(_minute(offset), SLOW_MINUTE)
    # THEN 4 of 5 breaching (the current minute is missing: not breaching) is OK
    assert churn.alarm(LATENCY)["StateValue"] == "OK"
    first = churn.messages()
    assert [(m["OldStateValue"], m["NewStateValue"]) for m in first] == [("INSUFFICIENT_DATA", "OK")]
    # WHEN the current minute is slow too
    churn.put_latency(_minute(0), SLOW_MINUTE)
    # THEN the alarm is in ALARM, with CloudWatch's reason and reason data, stamped at the clock
    alarm = churn.alarm(LATENCY)
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"].startswith("Threshold Crossed: 5 out of the last 5 datapoints [400000.0 (")
    assert "were greater than the threshold (250000.0)" in alarm["StateReason"]
    data = json.loads(alarm["StateReasonData"])
    assert data["extendedStatistic"] == "p99" and data["period"] == 60 and data["threshold"] == 250000.0
    assert data["recentDatapoints"] == [400000.0] * 5
    assert [p["sampleCount"] for p in data["evaluatedDatapoints"]] == [100.0] * 5
    assert alarm["StateUpdatedTimestamp"] == T
    # AND one ALARM notification reached the queue through the topic, as CloudWatch writes it
    [message] = churn.messages()
    assert message["Subject"] == f'ALARM: "{LATENCY}" in EU (Ireland)'
    assert message["AlarmName"] == LATENCY and message["AlarmArn"] == alarm["AlarmArn"]
    assert (message["OldStateValue"], message["NewStateValue"]) == ("OK", "ALARM")
    assert message["NewStateReason"] == alarm["StateReason"]
    assert message["AlarmActions"] == [TOPIC] and message["OKActions"] == [TOPIC]
    assert message["Trigger"] == {
        "MetricName": "ModelLatency", "Namespace": "AWS/SageMaker", "StatisticType": "ExtendedStatistic",
        "ExtendedStatistic": "p99", "Unit": None,
        "Dimensions": [{"value": ENDPOINT, "name": "EndpointName"}, {"value": "primary", "name": "VariantName"}],
        "Period": 60, "EvaluationPeriods": 5, "DatapointsToAlarm": 5, "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 250000.0, "TreatMissingData": "notBreaching", "EvaluateLowSampleCountPercentile": "",
    }


def test_fast_minutes_return_the_latency_alarm_to_ok_with_an_ok_notification(churn: Env) -> None:
    # GIVEN the latency alarm in ALARM
    for offset in range(-4, 1):
        churn.put_latency(_minute(offset), SLOW_MINUTE)
    assert churn.alarm(LATENCY)["StateValue"] == "ALARM"
    churn.messages()
    # WHEN the next minute is fast, and the clock has moved into it
    later = T + dt.timedelta(minutes=1)
    set_clock(churn.emulator.url, later, verify=churn.emulator.ca_bundle)
    churn.put_latency(_minute(1), FAST_MINUTE)
    # THEN the alarm is OK again, and the OK actions were notified
    alarm = churn.alarm(LATENCY)
    assert alarm["StateValue"] == "OK"
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 5 datapoints [1000.0 (")
    assert alarm["StateUpdatedTimestamp"] == later
    [message] = churn.messages()
    assert (message["OldStateValue"], message["NewStateValue"]) == ("ALARM", "OK")
    assert message["Subject"] == f'OK: "{LATENCY}" in EU (Ireland)'


def test_a_single_slow_call_in_a_hundred_does_not_move_the_p99(churn: Env) -> None:
    # GIVEN five minutes, each with one slow call among 101: the maximum breaches, the p99 does not
    for offset in range(-4, 1):
        churn.put_latency(_minute(offset), [1000.0] * 100 + [400_000.0])
    # THEN the p99 alarm went OK on the first minute (its datapoint the p99, not the maximum)
    # and stayed there: an evaluation that keeps the state changes nothing, as in CloudWatch
    alarm = churn.alarm(LATENCY)
    assert alarm["StateValue"] == "OK"
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [1000.0]
    assert LATENCY not in {c["AlarmName"] for c in churn.evaluate(T)}
    assert [m["NewStateValue"] for m in churn.messages() if m["AlarmName"] == LATENCY] == ["OK"]


def test_data_of_other_dimensions_never_trigger_the_alarm(churn: Env) -> None:
    # GIVEN five slow minutes of the canary variant, and of the primary with one dimension more or less
    others = [
        [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "canary"}],
        [*LATENCY_DIMENSIONS, {"Name": "Host", "Value": "i-1"}],
        [{"Name": "EndpointName", "Value": ENDPOINT}],
    ]
    for dimensions in others:
        for offset in range(-4, 1):
            churn.put_latency(_minute(offset), SLOW_MINUTE, dimensions)
    # WHEN the alarms are evaluated at the clock
    churn.evaluate(T)
    # THEN the primary's alarm saw no datapoint: not breaching, OK; nobody was paged
    alarm = churn.alarm(LATENCY)
    assert alarm["StateValue"] == "OK"
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == []
    assert [m["NewStateValue"] for m in churn.messages() if m["AlarmName"] == LATENCY] == ["OK"]


def test_no_drift_data_is_not_breaching_for_the_drift_alarm(churn: Env) -> None:
    # GIVEN a drift score above 0.2 published by a monitor job this hour
    cw = churn.client("cloudwatch")
    cw.put_metric_data(Namespace="ModelOps/Drift", MetricData=[{
        "MetricName": "FeatureDriftPSI", "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}],
        "Timestamp": T, "Value": 0.35, "Unit": "None"}])
    assert churn.alarm(DRIFT)["StateValue"] == "ALARM"
    [alarmed] = churn.messages()
    assert alarmed["AlarmName"] == DRIFT and alarmed["Trigger"]["Statistic"] == "MAXIMUM"
    assert alarmed["Trigger"]["TreatMissingData"] == "notBreaching"
    # WHEN the next hour has no drift data and the alarms are evaluated then
    changes = churn.evaluate(T + dt.timedelta(hours=1))
    # THEN missing data counts as not breaching: OK, and the OK actions were notified
    assert {c["AlarmName"]: c["NewStateValue"] for c in changes}[DRIFT] == "OK"
    alarm = churn.alarm(DRIFT)
    assert alarm["StateValue"] == "OK"
    assert alarm["StateReason"] == ("Threshold Crossed: no datapoints were received for 1 period and 1 missing "
                                    "datapoint was treated as [NonBreaching].")
    assert [(m["AlarmName"], m["NewStateValue"]) for m in churn.messages() if m["AlarmName"] == DRIFT] == [(DRIFT, "OK")]


def test_no_writes_are_breaching_for_the_freshness_alarm_until_writes_arrive(churn: Env) -> None:
    # GIVEN no PUT request metric for the dataset's bucket at all
    # WHEN the alarms are evaluated
    churn.evaluate(T)
    # THEN two days without writes (missing: breaching) put the freshness alarm in ALARM
    alarm = churn.alarm(FRESH)
    assert alarm["StateValue"] == "ALARM"
    assert "treated as [Breaching]" in alarm["StateReason"]
    fresh = [m for m in churn.messages() if m["AlarmName"] == FRESH]
    assert [(m["OldStateValue"], m["NewStateValue"]) for m in fresh] == [("INSUFFICIENT_DATA", "ALARM")]
    assert fresh[0]["Trigger"]["TreatMissingData"] == "breaching"
    assert fresh[0]["Trigger"]["ComparisonOperator"] == "LessThanThreshold"
    # WHEN the bucket got writes yesterday and today
    cw = churn.client("cloudwatch")
    dimensions = [{"Name": "BucketName", "Value": BUCKET}, {"Name": "FilterId", "Value": "modelops-data-writes"}]
    for day in (1, 0):
        cw.put_metric_data(Namespace="AWS/S3", MetricData=[{
            "MetricName": "PutRequests", "Dimensions": dimensions, "Timestamp": T - dt.timedelta(days=day),
            "Value": 3.0, "Unit": "Count"}])
    # THEN it is OK, notified
    assert churn.alarm(FRESH)["StateValue"] == "OK"
    assert [m["NewStateValue"] for m in churn.messages() if m["AlarmName"] == FRESH] == ["OK"]


def test_the_metric_math_error_rate_alarm_is_left_as_moto_made_it(churn: Env) -> None:
    # GIVEN errors and invocations of the endpoint
    cw = churn.client("cloudwatch")
    for name, value in (("Invocation5XXErrors", 50.0), ("Invocations", 100.0)):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
            "MetricName": name, "Dimensions": LATENCY_DIMENSIONS, "Timestamp": T, "Value": value}])
    # WHEN every alarm is evaluated
    changes = churn.evaluate(T)
    # THEN the metric-math alarm is not among the evaluated ones (documented), the others are
    assert ERRORS not in {c["AlarmName"] for c in changes}
    assert churn.alarm(ERRORS)["StateReason"] == "Unchecked: Initial alarm creation"
    assert {LATENCY, DRIFT, FRESH} <= {c["AlarmName"] for c in changes}


def test_an_alarm_with_a_unit_only_counts_data_in_that_unit(churn: Env) -> None:
    # GIVEN an alarm on latency in Milliseconds, and slow data published in Microseconds
    cw = churn.client("cloudwatch")
    cw.put_metric_alarm(AlarmName="ms-latency", Namespace="AWS/SageMaker", MetricName="ModelLatency",
                        Dimensions=LATENCY_DIMENSIONS, Statistic="Maximum", Period=60, EvaluationPeriods=1,
                        Threshold=100.0, ComparisonOperator="GreaterThanThreshold", Unit="Milliseconds",
                        AlarmActions=[TOPIC])
    churn.put_latency(_minute(0), SLOW_MINUTE)
    # THEN there was no datapoint in its unit: missing, INSUFFICIENT_DATA (no action configured)
    assert churn.alarm("ms-latency")["StateValue"] == "INSUFFICIENT_DATA"
    # WHEN a datapoint in Milliseconds arrives
    cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
        "MetricName": "ModelLatency", "Dimensions": LATENCY_DIMENSIONS, "Timestamp": T, "Value": 400.0,
        "Unit": "Milliseconds"}])
    # THEN it alarms
    assert churn.alarm("ms-latency")["StateValue"] == "ALARM"
    assert [m["AlarmName"] for m in churn.messages() if m["NewStateValue"] == "ALARM"] == ["ms-latency"]


def test_the_embedded_emulator_process_evaluates_on_an_explicit_call(tmp_path: Path) -> None:
    # GIVEN the emulator process `modelops up` starts for a project, and an alarm there
    target = Target.for_project(tmp_path)
    try:
        cw = target.clients("eu-west-1").client("cloudwatch")
        cw.put_metric_alarm(AlarmName="writes", Namespace="n", MetricName="m", Statistic="Sum", Period=3600,
                            EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="LessThanThreshold",
                            TreatMissingData="breaching")
        # WHEN a write a day ago arrives (evaluated at wall time: this hour has none) and the
        # alarms are evaluated at the write's hour, then an hour later
        cw.put_metric_data(Namespace="n", MetricData=[{"MetricName": "m", "Timestamp": T, "Value": 2.0}])
        after_put = cw.describe_alarms(AlarmNames=["writes"])["MetricAlarms"][0]["StateValue"]
        at_write = evaluate_alarms(target.url, now=T, verify=target.verify)
        an_hour_later = evaluate_alarms(target.url, now=T + dt.timedelta(hours=1), verify=target.verify)
        # THEN the process evaluated each time: an hour without writes breaches, the write's does not
        assert after_put == "ALARM"
        assert [(c["OldStateValue"], c["NewStateValue"]) for c in at_write] == [("ALARM", "OK")]
        assert [(c["OldStateValue"], c["NewStateValue"]) for c in an_hour_later] == [("OK", "ALARM")]
    finally:
        assert stop(tmp_path) is not None


# --- the rules, without a server ------------------------------------------------------------------------

NOW = dt.datetime(2026, 12, 2, 12, 0, 30, tzinfo=dt.timezone.utc)


def _rule(treat: str, statistic: str = "Maximum", n: int = 5, m: int = 3) -> Rule:
    return Rule(statistic=statistic, period=60, evaluation_periods=n, datapoints_to_alarm=m,
                comparison="GreaterThanThreshold", threshold=1.0, treat_missing_data=treat)


def _samples(pattern: str) -> list[Sample]:
    """``X`` breaching, ``0`` not, ``-`` missing; oldest first, the last is the current minute."""
    start = NOW.replace(second=0) - dt.timedelta(minutes=len(pattern) - 1)
    values = {"X": 5.0, "0": 0.0}
    return [Sample(start + dt.timedelta(minutes=i, seconds=10), value=values[c])
            for i, c in enumerate(pattern) if c != "-"]


# CloudWatch's table of missing-data treatment, 3 of 5 datapoints to alarm (None: the state is kept)
@pytest.mark.parametrize("pattern, missing, ignore, breaching, not_breaching", [
    ("0-X-X", "OK", "OK", "ALARM", "OK"),
    ("----0", "OK", "OK", "ALARM", "OK"),
    ("-----", "INSUFFICIENT_DATA", None, "ALARM", "OK"),
    ("0XX-X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("--X--", "ALARM", None, "ALARM", "OK"),
])
def test_missing_data_follows_cloudwatchs_table(pattern, missing, ignore, breaching, not_breaching) -> None:
    for treat, expected in (("missing", missing), ("ignore", ignore), ("breaching", breaching),
                            ("notBreaching", not_breaching)):
        verdict = evaluate(_rule(treat), _samples(pattern), NOW)
        assert (verdict.state if verdict else None) == expected, (pattern, treat)


def test_m_of_n_needs_m_breaching_datapoints() -> None:
    assert evaluate(_rule("notBreaching"), _samples("00XX0"), NOW).state == "OK"
    assert evaluate(_rule("notBreaching"), _samples("0X0XX"), NOW).state == "ALARM"
    # data outside the window (older, or after the clock) do not count
    old = [Sample(NOW - dt.timedelta(minutes=9), value=9.0), Sample(NOW + dt.timedelta(minutes=1), value=9.0)]
    assert evaluate(_rule("notBreaching", n=1, m=1), old, NOW).state == "OK"


def test_statistics_of_raw_values_and_statistic_sets() -> None:
    values = [Sample(NOW, value=float(v)) for v in range(1, 101)]
    assert statistic_of("p99", values) == 99.0
    assert statistic_of("p50", values) == 50.0
    assert statistic_of("p99.9", values) == 100.0
    assert statistic_of("Average", values) == 50.5
    assert statistic_of("SampleCount", values) == 100.0
    both = [Sample(NOW, value=4.0), Sample(NOW, statistics=(10.0, 1.0, 7.0, 4.0))]
    assert (statistic_of("Sum", both), statistic_of("Minimum", both), statistic_of("Maximum", both)) == (14.0, 1.0, 7.0)
    assert statistic_of("Average", both) == 14.0 / 5
    # a statistic set has no distribution: no percentile from it
    assert statistic_of("p90", both[1:]) is None
    assert statistic_of("Sum", []) is None
