"""``modelops drift``: captured traffic against the training baseline, published to CloudWatch (moto)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelops.components import metrics, naming
from modelops.errors import UsageError
from modelops.ml import baseline as base
from modelops.ml import monitor_job as job
from modelops.ml.capture import capture_record, write_capture
from modelops.ml.drift import MIN_SAMPLE, drift_for_environment
from modelops.ml.package import read_member
from modelops.ml.serve import start_server
from tests.ml.helpers import ACCOUNT, MotoClients, Project, read_csv, run_cli

MODEL = "churn"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract", "payment_method"]
ENDPOINT = naming.endpoint_name("mltest", "dev", MODEL)
BUCKET = naming.bucket_name("mltest", "dev", "customers", ACCOUNT)

pytestmark = pytest.mark.aws


def held_out_rows(project: Project, n: int) -> list[list[str]]:
    """Rows drawn from the same distribution as training (the last rows of the file, as text)."""
    header, rows = read_csv(project.root / "data" / "customers.csv")
    index = [header.index(f) for f in FEATURES]
    return [[row[i] for i in index] for row in rows[-n:]]


def shifted(rows: list[list[str]]) -> list[list[str]]:
    """Newer, pricier, month-to-month customers: what a drifting population looks like."""
    return [[str(max(1, int(r[0]) // 4)), f"{float(r[1]) + 40:.2f}", r[2], "month-to-month", r[4]] for r in rows]


def capture(moto: Any, rows: list[list[str]], when: datetime, per_request: int = 10, as_json: bool = False) -> None:
    s3 = moto.client("s3")
    records = []
    for start in range(0, len(rows), per_request):
        chunk = rows[start:start + per_request]
        if as_json:
            body = json.dumps([[float(r[0]), float(r[1]), int(r[2]), r[3], r[4]] for r in chunk])
            records.append(capture_record(body, "application/json", '{"predictions": []}', "application/json", when))
        else:
            body = "\n".join(",".join(r) for r in chunk)
            records.append(capture_record(body, "text/csv", '{"predictions": []}', "application/json", when))
    write_capture(s3, BUCKET, MODEL, ENDPOINT, records, when)


def make_bucket(moto: Any) -> None:
    moto.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})


def published(moto: Any, now: datetime) -> list[dict[str, Any]]:
    ref = metrics.drift_metric(ENDPOINT)
    stats = moto.client("cloudwatch").get_metric_statistics(
        Namespace=ref.namespace,
        MetricName=ref.name,
        Dimensions=[{"Name": k, "Value": v} for k, v in ref.dimensions],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(hours=1),
        Period=ref.period,
        Statistics=[ref.statistic],
    )
    return stats["Datapoints"]


def run(project: Project, moto: Any, **kwargs: Any):
    return drift_for_environment(project.env, MODEL, MotoClients(moto), root=project.root, **kwargs)


def test_shifted_traffic_crosses_the_threshold_and_publishes_the_metric(built_project: Project, moto: Any) -> None:
    # GIVEN 400 captured rows from a shifted population
    now = datetime.now(timezone.utc)
    make_bucket(moto)
    capture(moto, shifted(held_out_rows(built_project, 400)), now)
    # WHEN drift runs
    report = run(built_project, moto, now=now)
    # THEN the shifted features drift, the rest do not, and the job's value is published
    verdicts = {f.name: f.verdict for f in report.features}
    assert report.rows == 400 and report.requests == 40
    assert report.verdict == "drift"
    assert report.threshold == 0.2  # from the churn-drift monitor of the spec
    assert verdicts["tenure_months"] == verdicts["monthly_charges"] == verdicts["contract"] == "drift"
    assert verdicts["payment_method"] == "stable"
    assert report.max_psi >= 0.2 and report.value > 0.2
    tenure = next(f for f in report.features if f.name == "tenure_months")
    assert tenure.ks_pvalue < 1e-6 and tenure.ks_statistic > 0.3
    assert tenure.test == "ks" and tenure.score == tenure.ks_statistic
    assert report.published
    points = published(moto, now)
    assert len(points) == 1
    assert points[0]["Maximum"] == pytest.approx(report.value)


def test_drift_publishes_the_jobs_per_feature_data_too(built_project: Project, moto: Any) -> None:
    # GIVEN 400 captured rows from a shifted population
    now = datetime.now(timezone.utc).replace(microsecond=0)
    make_bucket(moto)
    capture(moto, shifted(held_out_rows(built_project, 400)), now)
    # WHEN drift runs
    report = run(built_project, moto, now=now)
    # THEN, as the job publishes, one FeatureDrift datum per feature (EndpointName, Feature),
    # each the feature's score, beside the drift metric itself
    cloudwatch = moto.client("cloudwatch")
    scores = {}
    for feature in FEATURES:
        ref = metrics.job_metric(ENDPOINT, "data_drift", feature=feature)
        points = cloudwatch.get_metric_statistics(
            Namespace=ref.namespace, MetricName=ref.name, Dimensions=[{"Name": k, "Value": v} for k, v in ref.dimensions],
            StartTime=now - timedelta(hours=1), EndTime=now + timedelta(hours=1), Period=ref.period,
            Statistics=["Maximum", "SampleCount"])["Datapoints"]
        assert [p["SampleCount"] for p in points] == [1.0], feature
        scores[feature] = points[0]["Maximum"]
    assert scores == pytest.approx({f.name: f.score for f in report.features}, abs=1e-6)
    assert report.metric["data"] == 1 + len(FEATURES)
    assert [p["Maximum"] for p in published(moto, now)] == [pytest.approx(report.value)]


def test_same_distribution_does_not_cross_the_threshold(built_project: Project, moto: Any) -> None:
    now = datetime.now(timezone.utc)
    make_bucket(moto)
    capture(moto, held_out_rows(built_project, 400), now, as_json=True)
    report = run(built_project, moto, now=now)
    assert report.rows == 400
    assert report.verdict == "stable"
    assert all(f.verdict == "stable" for f in report.features), report.features
    assert report.max_psi < 0.1
    # a stable reading is still a reading: the alarm sees a low value, not missing data
    assert report.value < 0.2
    points = published(moto, now)
    assert [p["Maximum"] for p in points] == [pytest.approx(report.value)]


def test_a_tiny_sample_gives_no_verdict_and_publishes_nothing(built_project: Project, moto: Any) -> None:
    now = datetime.now(timezone.utc)
    make_bucket(moto)
    capture(moto, shifted(held_out_rows(built_project, MIN_SAMPLE - 1)), now)
    report = run(built_project, moto, now=now)
    assert report.rows == MIN_SAMPLE - 1
    assert report.verdict == "insufficient"
    assert report.value is None and report.max_psi is None and not report.published
    assert {f.verdict for f in report.features} == {"insufficient"}
    assert published(moto, now) == []
    assert moto.client("cloudwatch").list_metrics(Namespace=metrics.DRIFT_NAMESPACE)["Metrics"] == []


def test_requests_outside_the_window_and_unreadable_ones_are_not_counted(built_project: Project, moto: Any) -> None:
    now = datetime.now(timezone.utc)
    make_bucket(moto)
    capture(moto, shifted(held_out_rows(built_project, 300)), now - timedelta(hours=30))
    capture(moto, held_out_rows(built_project, 150), now)
    bad = capture_record("1,2", "text/csv", "{}", "application/json", now)
    write_capture(moto.client("s3"), BUCKET, MODEL, ENDPOINT, [bad], now)
    moto.client("s3").put_object(
        Bucket=BUCKET, Key=f"capture/{MODEL}/{ENDPOINT}/primary/2026/01/01/00/junk.jsonl", Body=b"not json\n"
    )
    report = run(built_project, moto, now=now, hours=24)
    assert report.rows == 150
    assert report.unreadable == 2
    assert report.verdict == "stable"


def test_missing_bucket_says_to_run_up(built_project: Project, moto: Any) -> None:
    with pytest.raises(UsageError, match=rf"bucket {BUCKET} does not exist on the target; run `modelops up --env dev`"):
        run(built_project, moto)


def test_served_requests_captured_in_sagemaker_format_feed_drift(built_project: Project, moto: Any) -> None:
    # GIVEN the local server capturing each request into the dataset bucket, as the endpoint would
    make_bucket(moto)
    s3 = moto.client("s3")

    def hook(event: dict[str, Any]) -> None:
        record = capture_record(event["input"], event["input_content_type"], event["output"],
                                event["output_content_type"], event["time"])
        write_capture(s3, BUCKET, MODEL, ENDPOINT, [record], event["time"])

    rows = shifted(held_out_rows(built_project, 120))
    import http.client

    with start_server(built_project.churn.artifact.path, capture=hook) as server:
        for start in range(0, len(rows), 20):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("POST", "/invocations", body="\n".join(",".join(r) for r in rows[start:start + 20]),
                         headers={"Content-Type": "text/csv"})
            assert conn.getresponse().status == 200
            conn.close()
    # THEN the objects sit where SageMaker writes them, in its format
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert len(keys) == 6
    for key in keys:
        assert re.fullmatch(rf"capture/{MODEL}/{ENDPOINT}/primary/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/[^/]+\.jsonl", key)
    line = json.loads(s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read().decode().splitlines()[0])
    assert set(line) == {"captureData", "eventMetadata", "eventVersion"}
    assert line["eventVersion"] == "0"
    assert line["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert line["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert line["captureData"]["endpointInput"]["observedContentType"] == "text/csv"
    assert line["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert "predictions" in json.loads(line["captureData"]["endpointOutput"]["data"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", line["eventMetadata"]["inferenceTime"])
    # AND drift reads them back
    report = run(built_project, moto)
    assert report.rows == 120 and report.verdict == "drift"


def test_cli_drift_against_a_moto_url(built_project: Project, moto: Any) -> None:
    now = datetime.now(timezone.utc)
    make_bucket(moto)
    capture(moto, shifted(held_out_rows(built_project, 200)), now)
    done = run_cli("drift", MODEL, str(built_project.spec), "--env", "dev", "--endpoint-url", moto.url, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "drift" and report["published"] is True
    assert report["metric"] == {
        "namespace": "ModelOps/Drift",
        "name": "FeatureDriftPSI",
        "dimensions": {"EndpointName": ENDPOINT},
        "value": report["value"],
        "data": 6,  # the value and one datum per feature, as the job publishes
    }
    text = run_cli("drift", MODEL, str(built_project.spec), "--env", "dev", "--endpoint-url", moto.url, "--no-publish")
    assert text.returncode == 0, text.stderr
    assert "verdict: drift" in text.stdout and "tenure_months" in text.stdout


# ------------------------------------------------------------------------------ the statistics


def test_drift_gives_the_monitor_jobs_scores_for_the_same_capture(built_project: Project, moto: Any,
                                                                  tmp_path: Path) -> None:
    # GIVEN 400 shifted rows captured, and the same capture objects as the job's stats step mounts them
    now = datetime.now(timezone.utc)
    make_bucket(moto)
    capture(moto, shifted(held_out_rows(built_project, 400)), now)
    s3 = moto.client("s3")
    for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]:
        path = tmp_path / "capture" / item["Key"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
    card = json.loads(read_member(built_project.churn.artifact.path, "card.json"))
    baseline = json.loads(read_member(built_project.churn.artifact.path, "baseline.json"))
    # WHEN drift runs, and the job's phases run on that capture
    report = run(built_project, moto, now=now, publish_metric=False)
    stats = job.shard_stats({"window_seconds": 3600}, card, baseline, str(tmp_path / "capture"), None,
                            now + timedelta(seconds=1))
    monitor = {"name": "churn-drift", "metric": "data_drift", "threshold": 0.2, "comparison": "above", "test": "auto"}
    value, fields = job.evaluate(monitor, baseline, card, job.merge_stats([stats]))
    # THEN both give the same value, and every feature the same test and score
    assert report.value == pytest.approx(value, abs=1e-9)
    assert {f.name: (f.test, f.score) for f in report.features} == {
        f["name"]: (f["test"], pytest.approx(f["score"], abs=1e-6)) for f in fields["features"]}


def test_psi_is_zero_for_the_baseline_itself_and_grows_with_shift() -> None:
    rng = np.random.RandomState(0)
    values = rng.normal(size=5000)
    feature = base.numeric_baseline(values)

    def psi(live: np.ndarray) -> float:
        column = job.Distribution(feature)
        column.add_numeric(live)
        return job.feature_score(feature, column.to_json(), "psi")[1]

    assert psi(values) == pytest.approx(0.0, abs=1e-6)
    small, large = psi(values + 0.2), psi(values + 1.0)
    assert 0 < small < large
    assert large > 0.2


def test_categorical_psi_counts_unseen_categories() -> None:
    feature = base.categorical_baseline(np.array(["a"] * 50 + ["b"] * 50, dtype=object))

    def psi(live: list[str]) -> float:
        column = job.Distribution(feature)
        for value in live:
            column.add_category(value)
        return job.feature_score(feature, column.to_json(), "psi")[1]

    assert psi(["a"] * 50 + ["b"] * 50) == pytest.approx(0.0)
    assert psi(["c"] * 100) > 1.0


def test_drift_loads_no_pulumi() -> None:
    # GIVEN a fresh interpreter WHEN it imports what `modelops drift` runs
    code = "import sys, modelops.ml.drift; print('PULUMI' if 'pulumi' in sys.modules else 'NO-PULUMI')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    # THEN the Pulumi SDK is not loaded: drift publishes through components.metrics, plain data
    assert result.stdout.strip() == "NO-PULUMI", result.stdout + result.stderr
