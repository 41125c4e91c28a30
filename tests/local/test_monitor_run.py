"""The whole monitoring loop on a laptop: traffic through ``modelops serve --capture-to-env``
-> capture in the emulator's S3 -> ``modelops monitor run`` (the deployed pipeline's steps in
subprocesses) -> the job's datum -> the drift alarm in ALARM -> CloudWatch's notification
on an SQS queue subscribed to the channel's topic.
"""

from __future__ import annotations

import csv
import http.client
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.ml.artifacts import attach_artifacts
from modelops.ml.capture import write_capture
from modelops.local.apply import up
from modelops.spec.envs import load_environment
from tests.helpers import ROOT, Emulator
from tests.local.helpers import copy_project

pytestmark = [pytest.mark.aws, pytest.mark.slow]

TOPIC = "arn:aws:sns:eu-west-1:123456789012:churn-dev-oncall"
DRIFT_ALARM = "churn-dev-churn-drift"
BUCKET = "churn-dev-customers-123456789012"
PIPELINE = "churn-dev-churn-classifier-monitor"
CUSTOMERS = ROOT / "examples" / "churn" / "data" / "customers.csv"


def _modelops(root: Path, emulator: Emulator, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=root, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "AWS_CA_BUNDLE": emulator.ca_bundle})


def _queue(emulator: Emulator) -> str:
    sqs = emulator.client("sqs")
    url = sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    emulator.client("sns").subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=arn)
    return url


def _messages(emulator: Emulator, url: str) -> list[dict[str, Any]]:
    sqs, found = emulator.client("sqs"), []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            found.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _send(port: int, rows: list[dict[str, str]], charge_factor: float) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i, row in enumerate(rows):
        body = ",".join([row["tenure_months"], f"{float(row['monthly_charges']) * charge_factor:.2f}",
                         row["support_calls"], row["contract"], row["payment_method"]])
        conn.request("POST", "/invocations", body=body,
                     headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Inference-Id": f"req-{i}"})
        answer = conn.getresponse()
        assert answer.status == 200, answer.read()
        answer.read()
    conn.close()


def test_shifted_traffic_through_serve_fires_the_drift_alarm_via_the_job(
    emulator: Emulator, artifact_root: Path, tmp_path: Path
) -> None:
    # GIVEN churn dev with a 4-instance stats step, provisioned by up (the model trained), its
    # topic feeding a queue
    spec = copy_project("churn", tmp_path / "project", artifact_root)
    root = spec.parent
    data = yaml.safe_load(spec.read_text())
    data["monitors"]["churn-drift"]["instances"] = 4
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    env = attach_artifacts(load_environment(spec, "dev"), build=True, root=artifact_root)
    outcome = up(env, emulator.target(), root)
    assert all(check.ok for check in outcome.checks), [c for c in outcome.checks if not c.ok]
    # (among them: the stats step's role may list and read the capture it fetches through S3)
    assert [c.name for c in outcome.checks if "may list and read" in c.name] == [
        f"pipeline {PIPELINE} step stats: role churn-dev-churn-classifier-mon-job may list and read "
        f"s3://{BUCKET}/capture/churn-classifier/churn-dev-churn-classifier/"]
    url = _queue(emulator)
    sm = emulator.client("sagemaker")
    definition = json.loads(sm.describe_pipeline(PipelineName=PIPELINE)["PipelineDefinition"])
    assert [s["Name"] for s in definition["Steps"]] == ["stats", "merge"]
    assert definition["Steps"][0]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 4

    # WHEN the job runs before any traffic
    quiet = _modelops(root, emulator, "monitor", "run", "churn-drift", "--spec", str(spec), "--env", "dev",
                      "--endpoint-url", emulator.url, "--json")
    # THEN it reports no data, publishes nothing, and the alarm's first evaluation finds it OK
    # (missing data is not breaching)
    assert quiet.returncode == 0, quiet.stderr
    (quiet_job,) = json.loads(quiet.stdout)
    assert [r["verdict"] for r in quiet_job["results"]] == ["no_data"]
    assert [(c["AlarmName"], c["NewStateValue"]) for c in quiet_job["alarms"]] == [(DRIFT_ALARM, "OK")]
    assert not emulator.client("cloudwatch").list_metrics(Namespace="ModelOps/Drift")["Metrics"]

    # WHEN 300 requests whose monthly charges tripled go through the local server, captured to dev
    serve = subprocess.Popen(
        [sys.executable, "-m", "modelops", "serve", "churn-classifier", str(spec), "--env", "dev", "--port", "0",
         "--capture-to-env", "dev", "--endpoint-url", emulator.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "AWS_CA_BUNDLE": emulator.ca_bundle}, cwd=root,
    )
    try:
        lines = [serve.stdout.readline(), serve.stdout.readline()]
        port = int(lines[1].split("http://127.0.0.1:")[1].split()[0])
        with CUSTOMERS.open(newline="") as handle:
            rows = list(csv.DictReader(handle))[:300]
        _send(port, rows, 3.0)
    finally:
        serve.terminate()
        serve.wait(timeout=60)
    keys = [o["Key"] for o in emulator.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix="capture/churn-classifier/")["Contents"] if o["Key"].endswith(".jsonl")]
    assert len(keys) == 300
    # AND older capture beside it: 40 files of three days ago (outside the hours the run
    # lists) and 5 of two hours ago (the hour before the window, listed as a margin: its
    # records are read but before the window)
    s3 = emulator.client("s3")
    record = json.loads(s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read().decode().splitlines()[0])
    now = datetime.now(timezone.utc)
    for age, files in ((timedelta(days=3), 40), (timedelta(hours=2), 5)):
        old = dict(record, eventMetadata=dict(record["eventMetadata"], inferenceTime=(now - age).strftime("%Y-%m-%dT%H:%M:%S.000Z")))
        for _ in range(files):
            write_capture(s3, BUCKET, "churn-classifier", "churn-dev-churn-classifier", [old], now - age)
    # AND the job runs again, from the pipeline the emulator holds
    run = _modelops(root, emulator, "monitor", "run", "--all", "--spec", str(spec), "--env", "dev",
                    "--endpoint-url", emulator.url, "--json")

    # THEN the job found the drift and published it
    assert run.returncode == 0, run.stderr
    (job,) = json.loads(run.stdout)
    (result,) = job["results"]
    # four stats processes, each with its share of the window's 305 capture files, none of
    # the three-day-old ones
    stats = job["steps"][0]
    assert stats["instances"] == 4 and "capture" not in stats["objects"]
    assert sorted(p["read"] for p in stats["printed"]) == [76, 76, 76, 77]
    assert result["monitor"] == "churn-drift" and result["verdict"] == "alarm" and result["value"] > 0.2
    latest = json.loads(emulator.client("s3").get_object(Bucket=BUCKET, Key="monitoring/churn-drift/latest.json")["Body"].read())
    assert latest["sample_size"]["current"] == 300
    assert max(latest["features"], key=lambda f: f["score"])["name"] == "monthly_charges"
    # AND the alarm is in ALARM, and CloudWatch's message is on the queue
    alarm = emulator.client("cloudwatch").describe_alarms(AlarmNames=[DRIFT_ALARM])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM", alarm["StateReason"]
    notes = [m for m in _messages(emulator, url) if m.get("AlarmName") == DRIFT_ALARM]
    assert [m["NewStateValue"] for m in notes] == ["OK", "ALARM"]


def test_monitor_run_refuses_bad_input_with_one_line(emulator: Emulator, tmp_path: Path) -> None:
    spec = copy_project("churn", tmp_path / "project")
    root = spec.parent
    cases = {
        ("churn-latency",): "is a CloudWatch alarm on latency_p99, with no job",
        ("nope",): "monitor 'nope' is not declared",
        ("churn-drift", "--all"): "name one monitor, or pass --all",
        ("churn-drift",): "pipeline churn-dev-churn-classifier-monitor is not deployed on the target",
    }
    for args, message in cases.items():
        done = _modelops(root, emulator, "monitor", "run", *args, "--spec", str(spec), "--env", "dev",
                         "--endpoint-url", emulator.url)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
