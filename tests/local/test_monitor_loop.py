"""The whole monitoring loop for every job metric, against the emulator.

churn dev with one monitor of each job metric (they share the model's one job): traffic
through ``modelops serve --capture-to-env`` -> capture in the emulator's S3 (labels under
the documented prefix) -> ``modelops monitor run`` -> each monitor's datum -> its alarm ->
CloudWatch's notification on an SQS queue subscribed to the channel's topic.

The expensive part (train, ``up``, the server, three job runs) happens once, in the
module's ``loop`` fixture, in the order an environment lives it: no traffic, then normal
traffic, then shifted traffic. The tests read what each stage left.
"""

from __future__ import annotations

import csv
import http.client
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from modelops.local.apply import up
from modelops.ml.artifacts import attach_artifacts
from modelops.spec.envs import load_environment
from tests.helpers import ROOT, Emulator
from tests.local.helpers import copy_project

pytestmark = [pytest.mark.aws, pytest.mark.slow]

TOPIC = "arn:aws:sns:eu-west-1:123456789012:churn-dev-oncall"
BUCKET = "churn-dev-customers-123456789012"
CUSTOMERS = ROOT / "examples" / "churn" / "data" / "customers.csv"
ROWS = 300
#: one monitor per job metric; model quality alarms on missing labels (``no_data: alarm``)
MONITORS = {
    "data_drift": ("churn-drift", {}),
    "data_quality": ("churn-quality", {"metric": "data_quality", "above": 0.05}),
    "prediction_drift": ("churn-outputs", {"metric": "prediction_drift", "above": 0.2}),
    "model_quality": ("churn-accuracy", {"metric": "model_quality", "quality": "accuracy", "below": 0.7,
                                         "no_data": "alarm"}),
}
METRICS = sorted(MONITORS)


@dataclass
class Stage:
    """What one stage of the loop left: the job's results, alarms and notifications."""

    results: dict[str, dict[str, Any]]  # monitor -> the job's result summary
    changes: dict[str, str]  # alarm -> the state monitor run's evaluation moved it to
    latest: dict[str, dict[str, Any]]  # monitor -> monitoring/<monitor>/latest.json
    alarms: dict[str, dict[str, Any]]  # monitor -> DescribeAlarms entry
    notes: dict[str, list[str]]  # monitor -> NewStateValue of each message on the queue
    metrics: set[tuple[str, str]]  # (namespace, name) of every metric CloudWatch holds
    freshness: dict[str, Any]  # the dataset's freshness alarm, no job's


def _alarm(monitor: str) -> str:
    return f"churn-dev-{monitor}"


def _modelops(root: Path, emulator: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=root, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "AWS_CA_BUNDLE": emulator.ca_bundle})


def _drain(emulator: Emulator, url: str) -> list[dict[str, Any]]:
    sqs, found = emulator.client("sqs"), []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            found.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _rows() -> list[dict[str, str]]:
    with CUSTOMERS.open(newline="") as handle:
        return list(csv.DictReader(handle))[:ROWS]


def _shifted(row: dict[str, str]) -> dict[str, str]:
    """A new kind of customer: tripled charges, many support calls, brand new, monthly contract."""
    return {**row, "monthly_charges": f"{float(row['monthly_charges']) * 3:.2f}", "support_calls": "6",
            "tenure_months": "1", "contract": "month-to-month"}


def _send(port: int, rows: list[dict[str, str]], prefix: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i, row in enumerate(rows):
        body = ",".join(row[k] for k in ("tenure_months", "monthly_charges", "support_calls", "contract",
                                          "payment_method"))
        conn.request("POST", "/invocations", body=body,
                     headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Inference-Id": f"{prefix}-{i}"})
        answer = conn.getresponse()
        assert answer.status == 200, answer.read()
        answer.read()
    conn.close()


def _put_labels(emulator: Emulator, name: str, labels: dict[str, Any]) -> None:
    body = "".join(json.dumps({"inference_id": k, "label": v}) + "\n" for k, v in labels.items())
    emulator.client("s3").put_object(Bucket=BUCKET, Key=f"labels/churn-classifier/{name}.jsonl", Body=body.encode())


def _wait_for_capture(emulator: Emulator, rows: int, seconds: float = 60.0) -> None:
    """Until the capture holds ``rows`` records: the server writes a request's capture after
    its answer is sent (WSGI's close), so the last ones may land after the client has read them."""
    s3 = emulator.client("s3")
    deadline = time.monotonic() + seconds
    while True:
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="capture/churn-classifier/").get("Contents", [])
        count = sum(len([line for line in s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().splitlines()
                         if line.strip()]) for o in listed if o["Key"].endswith(".jsonl"))
        if count >= rows or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def _clear_capture(emulator: Emulator) -> None:
    """The next hour: last hour's capture is out of the job's window (deleted, so no clock is needed)."""
    s3 = emulator.client("s3")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="capture/churn-classifier/").get("Contents", [])
    doomed = [{"Key": o["Key"]} for o in listed if o["Key"].endswith(".jsonl")]
    for start in range(0, len(doomed), 1000):
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": doomed[start:start + 1000]})


def _stage(root: Path, spec: Path, emulator: Emulator, queue: str) -> Stage:
    run = _modelops(root, emulator, "monitor", "run", "--all", "--spec", str(spec), "--env", "dev",
                    "--endpoint-url", emulator.url, "--json")
    assert run.returncode == 0, run.stderr
    (job,) = json.loads(run.stdout)
    s3, cloudwatch = emulator.client("s3"), emulator.client("cloudwatch")
    names = [m for m, _ in MONITORS.values()]
    notes: dict[str, list[str]] = {m: [] for m in names}
    for message in _drain(emulator, queue):
        for m in names:
            if message.get("AlarmName") == _alarm(m):
                notes[m].append(message["NewStateValue"])
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmNames=[_alarm(m) for m in names])["MetricAlarms"]}
    return Stage(
        results={r["monitor"]: r for r in job["results"]},
        changes={c["AlarmName"]: c["NewStateValue"] for c in job["alarms"]},
        latest={m: json.loads(s3.get_object(Bucket=BUCKET, Key=f"monitoring/{m}/latest.json")["Body"].read())
                for m in names},
        alarms={m: alarms[_alarm(m)] for m in names},
        notes=notes,
        metrics={(x["Namespace"], x["MetricName"]) for x in cloudwatch.list_metrics()["Metrics"]},
        freshness=cloudwatch.describe_alarms(AlarmNames=[_alarm("customers-fresh")])["MetricAlarms"][0],
    )


@pytest.fixture(scope="module")
def loop(emulator_server: Emulator, artifact_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Stage]]:
    emulator = emulator_server
    emulator.reset()
    # GIVEN churn dev with a monitor of each job metric, provisioned by up, its topic feeding a queue
    spec = copy_project("churn", tmp_path_factory.mktemp("loop") / "project", artifact_root)
    root = spec.parent
    data = yaml.safe_load(spec.read_text())
    for name, extra in MONITORS.values():
        if extra:
            data["monitors"][name] = {"model": "churn-classifier", **extra, "notify": ["oncall"]}
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    env = attach_artifacts(load_environment(spec, "dev"), build=True, root=artifact_root)
    outcome = up(env, emulator.target(), root)
    assert all(check.ok for check in outcome.checks), [c for c in outcome.checks if not c.ok]
    sqs = emulator.client("sqs")
    queue = sqs.create_queue(QueueName="oncall-loop")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    emulator.client("sns").subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=arn)
    stages: dict[str, Stage] = {}

    # WHEN the job runs before any traffic (monitor run then evaluates the alarms, as
    # CloudWatch does every minute, data or not)
    stages["quiet"] = _stage(root, spec, emulator, queue)

    serve = subprocess.Popen(
        [sys.executable, "-m", "modelops", "serve", "churn-classifier", str(spec), "--env", "dev", "--port", "0",
         "--capture-to-env", "dev", "--endpoint-url", emulator.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "AWS_CA_BUNDLE": emulator.ca_bundle}, cwd=root,
    )
    try:
        lines = [serve.stdout.readline(), serve.stdout.readline()]
        port = int(lines[1].split("http://127.0.0.1:")[1].split()[0])
        rows = _rows()
        # AND customers like the training data's come, and their true outcomes arrive as labels
        _send(port, rows, "steady")
        _wait_for_capture(emulator, len(rows))
        _put_labels(emulator, "steady", {f"steady-{i}": int(r["churned"]) for i, r in enumerate(rows)})
        stages["steady"] = _stage(root, spec, emulator, queue)
        # AND an hour later, a new kind of customer comes, and none of them churns
        _clear_capture(emulator)
        _send(port, [_shifted(r) for r in rows], "shifted")
        _wait_for_capture(emulator, len(rows))
        _put_labels(emulator, "shifted", {f"shifted-{i}": 0 for i in range(len(rows))})
        stages["shifted"] = _stage(root, spec, emulator, queue)
    finally:
        serve.terminate()
        serve.wait(timeout=60)
    yield stages


def _crosses(result: dict[str, Any], threshold: float, metric: str) -> bool:
    return result["value"] < threshold if metric == "model_quality" else result["value"] > threshold


@pytest.mark.parametrize("metric", METRICS)
def test_shifted_traffic_fires_the_alarm_and_pages(loop: dict[str, Stage], metric: str) -> None:
    monitor, _ = MONITORS[metric]
    stage = loop["shifted"]
    result, latest = stage.results[monitor], stage.latest[monitor]
    # THEN the job's value crossed the monitor's threshold, on every captured row
    assert result["verdict"] == "alarm", result
    assert _crosses(result, latest["threshold"], metric), result
    assert latest["sample_size"]["current"] == ROWS
    # AND the alarm is in ALARM, and CloudWatch's message is on the queue
    alarm = stage.alarms[monitor]
    assert alarm["StateValue"] == "ALARM", alarm["StateReason"]
    assert stage.notes[monitor] == ["ALARM"]


@pytest.mark.parametrize("metric", METRICS)
def test_unshifted_traffic_keeps_the_alarm_ok(loop: dict[str, Stage], metric: str) -> None:
    monitor, _ = MONITORS[metric]
    stage = loop["steady"]
    result = stage.results[monitor]
    assert result["verdict"] == "ok", result
    assert not _crosses(result, stage.latest[monitor]["threshold"], metric), result
    assert stage.latest[monitor]["sample_size"]["current"] == ROWS
    assert stage.alarms[monitor]["StateValue"] == "OK", stage.alarms[monitor]["StateReason"]
    # model quality was in ALARM for want of labels; the others were OK already and say nothing
    assert stage.notes[monitor] == (["OK"] if metric == "model_quality" else [])


@pytest.mark.parametrize("metric", METRICS)
def test_no_traffic_follows_the_monitors_missing_data_rule(loop: dict[str, Stage], metric: str) -> None:
    monitor, extra = MONITORS[metric]
    stage = loop["quiet"]
    # THEN the job has no verdict and publishes nothing
    assert stage.results[monitor]["verdict"] == "no_data" and stage.results[monitor]["value"] is None
    assert stage.latest[monitor]["value"] is None
    assert not {ns for ns, _ in stage.metrics} & {"ModelOps/Drift", "ModelOps/Monitoring"}
    # AND the alarm follows `no_data`: ok is notBreaching, alarm is breaching (and pages)
    alarm = stage.alarms[monitor]
    rule = extra.get("no_data", "ok")
    assert alarm["TreatMissingData"] == ("breaching" if rule == "alarm" else "notBreaching")
    assert alarm["StateValue"] == ("ALARM" if rule == "alarm" else "OK"), alarm["StateReason"]
    assert stage.notes[monitor] == [alarm["StateValue"]]
    assert stage.changes[_alarm(monitor)] == alarm["StateValue"]
    # AND monitor run evaluated its job's alarms only: the freshness alarm (breaching without
    # S3 request metrics, which the emulator never emits) was left alone
    assert stage.freshness["StateReason"].startswith("Unchecked"), stage.freshness["StateReason"]


def test_model_quality_joins_every_label_by_inference_id(loop: dict[str, Stage]) -> None:
    steady, shifted = loop["steady"].latest["churn-accuracy"], loop["shifted"].latest["churn-accuracy"]
    # the earlier hour's labels are there too, but join no request of this hour
    assert steady["quality"]["labelled"] == ROWS and shifted["quality"]["labelled"] == ROWS
    assert steady["inputs"]["labels"] == f"s3://{BUCKET}/labels/churn-classifier/"
    assert shifted["quality"]["value"] < 0.7 <= steady["quality"]["value"]
