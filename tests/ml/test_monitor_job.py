"""The monitor job script (modelops/ml/monitor_job.py): its stats phase in real subprocesses
over capture shards, its merge and scores, against the churn and amount models built once.

Capture files are written as the local server writes them (modelops.ml.capture), with the
model's own predictions; ``--now`` pins the job's window so the tests do not depend on time.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import joblib
import numpy as np
import pytest
from moto import mock_aws

from modelops.components.monitor_job import job_config
from modelops.ml import monitor_job
from modelops.ml.capture import capture_record
from modelops.spec.resolved import Monitor, Threshold
from tests.ml.helpers import DATA, Project

SCRIPT = Path(monitor_job.__file__)
NOW = datetime(2026, 12, 3, 10, 0, 0, tzinfo=timezone.utc)


def _monitor(name: str, metric: str, side: str, value: float, **options) -> Monitor:
    return Monitor(name=name, metric=metric, model="churn", comparison=side, threshold=Threshold(value, "number", str(value)),
                   period_seconds=3600, evaluation_periods=1, schedule="hourly", **options)


class Traffic:
    """Captured requests of a built model: CSV rows in card order, predicted by the model itself."""

    def __init__(self, project: Project, model: str) -> None:
        outcome = getattr(project, model)
        self.package = Path(outcome.artifact.path)
        with tarfile.open(self.package) as tar:
            self.card = json.loads(tar.extractfile("card.json").read())
            tar.extract("model.joblib", path=self.package.parent / "extracted", filter="data")
        self.pipeline = joblib.load(self.package.parent / "extracted" / "model.joblib")
        self.features = [f["name"] for f in self.card["features"]]
        self.kinds = [f["kind"] for f in self.card["features"]]
        data = DATA["customers.csv" if model == "churn" else "transactions.csv"]
        with data.open(newline="") as handle:
            self.table = list(csv.DictReader(handle))

    def records(self, rows: list[dict[str, str]], *, shift: float = 0.0, start: int = 0) -> tuple[list[dict], dict[str, str]]:
        """One capture record per row (numeric features shifted by ``shift`` standard deviations)
        and inference id -> the row's true label."""
        stds = {f: float(np.std([float(r[f]) for r in self.table])) for f, k in zip(self.features, self.kinds) if k == "numeric"}
        out, labels = [], {}
        if not rows:
            return out, labels
        cells = [[str(float(row[f]) + shift * stds[f]) if k == "numeric" and row[f] != "" else row[f]
                  for f, k in zip(self.features, self.kinds)] for row in rows]
        matrix = np.array([[float(v) if k == "numeric" else v for v, k in zip(values, self.kinds)] for values in cells],
                          dtype=object)
        predicted = self.pipeline.predict(matrix).tolist()
        classifier = self.card["task"] == "classification"
        scores = self.pipeline.predict_proba(matrix)[:, 1].tolist() if classifier else None
        for i, (row, values) in enumerate(zip(rows, cells)):
            body = {"predictions": [predicted[i]]}
            if classifier:
                body["probabilities"] = [float(scores[i])]
            inference_id = f"req-{start + i}"
            record = capture_record(",".join(values), "text/csv", json.dumps(body), "application/json",
                                    NOW - timedelta(minutes=30), event_id=f"evt-{start + i}")
            record["eventMetadata"]["inferenceId"] = inference_id
            out.append(record)
            labels[inference_id] = row[self.card["target"]]
        return out, labels


def _write_shards(records: list[dict], directory: Path, shards: int) -> list[Path]:
    """Capture files (20 records each) spread over ``shards`` directories as ShardedByS3Key would."""
    dirs = [directory / f"shard-{i}" for i in range(shards)]
    for d in dirs:
        d.mkdir(parents=True)
    for n, i in enumerate(range(0, len(records), 20)):
        body = "".join(json.dumps(r) + "\n" for r in records[i:i + 20])
        (dirs[n % shards] / f"2026/12/03/09/{n:04d}.jsonl").parent.mkdir(parents=True, exist_ok=True)
        (dirs[n % shards] / f"2026/12/03/09/{n:04d}.jsonl").write_text(body)
    return dirs


def _stats(config: Path, package: Path, capture: Path, labels: Path | None, out: Path) -> subprocess.CompletedProcess:
    args = [sys.executable, str(SCRIPT), "stats", "--config", str(config), "--package", str(package.parent),
            "--capture", str(capture), "--out", str(out), "--now", "2026-12-03T10:00:00Z"]
    if labels is not None:
        args += ["--labels", str(labels)]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def _run(tmp: Path, traffic: Traffic, monitors: tuple[Monitor, ...], records: list[dict], labels: dict[str, str],
         shards: int = 1):
    """Stats in one subprocess per shard (in parallel), merged here: [(result, data)] per monitor."""
    config = job_config("mltest", "dev", _model(traffic), monitors)
    tmp.mkdir(parents=True, exist_ok=True)
    config_path = tmp / "config.json"
    config_path.write_text(json.dumps(config))
    label_dir = tmp / "labels"
    label_dir.mkdir()
    (label_dir / "labels.jsonl").write_text("".join(json.dumps({"inference_id": k, "label": v}) + "\n"
                                                    for k, v in labels.items()))
    dirs = _write_shards(records, tmp / "capture", shards)
    out = tmp / "stats"
    procs = [subprocess.Popen([sys.executable, str(SCRIPT), "stats", "--config", str(config_path), "--package",
                               str(traffic.package.parent), "--capture", str(d), "--labels", str(label_dir),
                               "--out", str(out), "--now", "2026-12-03T10:00:00Z"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for d in dirs]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    parts = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert len(parts) == shards
    card, baseline = monitor_job.read_package(str(traffic.package.parent))
    merged = monitor_job.merge_stats(parts)
    return monitor_job.results_for(config, card, baseline, merged, NOW, "bucket")


def _model(traffic: Traffic):
    from modelops.spec.resolved import Model

    return Model(name="churn", dataset="customers")


@pytest.fixture(scope="module")
def churn(built_project: Project) -> Traffic:
    return Traffic(built_project, "churn")


@pytest.fixture(scope="module")
def amount(built_project: Project) -> Traffic:
    return Traffic(built_project, "amount")


DRIFT = _monitor("churn-drift", "data_drift", "above", 0.2)
QUALITY = _monitor("churn-dq", "data_quality", "above", 0.01)
PREDICTION = _monitor("churn-pred", "prediction_drift", "above", 0.2)
ACCURACY = _monitor("churn-accuracy", "model_quality", "below", 0.7, quality="accuracy", labels="labels/churn/")


def test_one_and_four_shards_give_the_same_scores(churn: Traffic, tmp_path: Path) -> None:
    # GIVEN 600 shifted requests in 30 capture files
    records, labels = churn.records(churn.table[:600], shift=0.5)
    monitors = (DRIFT, QUALITY, PREDICTION, ACCURACY)
    # WHEN the job runs over 1 shard and over 4 (four stats processes)
    one = _run(tmp_path / "one", churn, monitors, records, labels, shards=1)
    four = _run(tmp_path / "four", churn, monitors, records, labels, shards=4)
    # THEN every monitor has the same verdict, value and per-feature scores (within 1e-9)
    for (a, data_a), (b, data_b) in zip(one, four):
        assert a["verdict"] == b["verdict"] and a["value"] == pytest.approx(b["value"], abs=1e-9), a["monitor"]
        assert [f["score"] for f in a["features"]] == pytest.approx([f["score"] for f in b["features"]], abs=1e-9)
        assert a["violations"] == b["violations"]
        assert len(data_a) == len(data_b)
    assert four[0][0]["inputs"]["shards"] == 4 and one[0][0]["inputs"]["shards"] == 1


def test_shifted_traffic_alarms_and_unshifted_does_not(churn: Traffic, tmp_path: Path) -> None:
    shifted, labels = churn.records(churn.table[:400], shift=1.0)
    same, same_labels = churn.records(churn.table[400:800])
    (alarm, data), = _run(tmp_path / "shifted", churn, (DRIFT,), shifted, labels)
    (calm, _), = _run(tmp_path / "same", churn, (DRIFT,), same, same_labels)
    assert alarm["verdict"] == "alarm" and alarm["value"] > 0.2
    assert {f["name"] for f in alarm["features"] if f["drifted"]} >= {"tenure_months", "monthly_charges"}
    assert calm["verdict"] == "ok" and calm["value"] < 0.2, calm["features"]
    # one datum for the alarm (the largest score), one per feature
    names = [(ns, d["MetricName"]) for ns, d in data]
    assert names[0] == ("ModelOps/Drift", "FeatureDriftPSI") and names.count(("ModelOps/Drift", "FeatureDrift")) == 5


def test_the_test_follows_the_sample_size_and_psi_on_request(churn: Traffic, tmp_path: Path) -> None:
    small, labels = churn.records(churn.table[:300])
    large, large_labels = churn.records(churn.table[:1500] * 1)
    (few, _), = _run(tmp_path / "small", churn, (DRIFT,), small, labels)
    (many, _), = _run(tmp_path / "large", churn, (DRIFT,), large, large_labels)
    psi = _monitor("churn-psi", "data_drift", "above", 0.2, test="psi")
    (by_psi, _), = _run(tmp_path / "psi", churn, (psi,), small, labels)
    tests = lambda r: {f["type"]: f["test"] for f in r["features"]}  # noqa: E731
    assert tests(few) == {"numeric": "ks", "categorical": "chi2"}
    assert tests(many) == {"numeric": "wasserstein", "categorical": "jensen_shannon"}
    assert tests(by_psi) == {"numeric": "psi", "categorical": "psi"}
    # the training rows themselves score low on the distances
    assert many["verdict"] == "ok" and many["value"] < 0.1


def test_each_kind_of_violation_is_counted(churn: Traffic, tmp_path: Path) -> None:
    records, labels = churn.records(churn.table[:200])
    broken = [("tenure_months", ""), ("monthly_charges", "99999"), ("support_calls", "many"), ("contract", "weekly")]
    for i, (feature, value) in enumerate(broken):
        for record in records[i * 5:(i + 1) * 5]:
            cells = next(csv.reader([record["captureData"]["endpointInput"]["data"]]))
            cells[churn.features.index(feature)] = value
            record["captureData"]["endpointInput"]["data"] = ",".join(cells)
    (result, data), = _run(tmp_path, churn, (QUALITY,), records, labels)
    kinds = {(v["feature"], v["kind"]): v["count"] for v in result["violations"]}
    assert kinds == {("tenure_months", "missing"): 5, ("monthly_charges", "out_of_range"): 5,
                     ("support_calls", "wrong_type"): 5, ("contract", "unseen_category"): 5}
    assert result["value"] == pytest.approx(20 / 200) and result["verdict"] == "alarm"
    assert {d["MetricName"] for _, d in data} == {"DataQualityViolationShare", "FeatureViolationShare"}


def test_joined_labels_give_the_models_own_accuracy(churn: Traffic, tmp_path: Path) -> None:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    rows = churn.table[1600:2000]  # the rows least likely to be training rows; any will do
    records, labels = churn.records(rows)
    predicted = [json.loads(r["captureData"]["endpointOutput"]["data"])["predictions"][0] for r in records]
    truth = [int(labels[r["eventMetadata"]["inferenceId"]]) for r in records]
    f1 = _monitor("churn-f1", "model_quality", "below", 0.5, quality="f1")
    auc = _monitor("churn-auc", "model_quality", "below", 0.5, quality="roc_auc")
    results = {r["monitor"]: r for r, _ in _run(tmp_path, churn, (ACCURACY, f1, auc), records, labels)}
    assert results["churn-accuracy"]["value"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
    assert results["churn-accuracy"]["quality"]["labelled"] == 400
    assert results["churn-f1"]["value"] == pytest.approx(f1_score(truth, predicted, pos_label=1), abs=1e-12)
    scores = [json.loads(r["captureData"]["endpointOutput"]["data"])["probabilities"][0] for r in records]
    assert results["churn-auc"]["value"] == pytest.approx(roc_auc_score(truth, scores), abs=0.01)


def test_regression_errors_from_joined_labels(amount: Traffic, tmp_path: Path) -> None:
    records, labels = amount.records(amount.table[:300])
    predicted = np.array([json.loads(r["captureData"]["endpointOutput"]["data"])["predictions"][0] for r in records])
    truth = np.array([float(labels[r["eventMetadata"]["inferenceId"]]) for r in records])
    rmse = _monitor("amount-rmse", "model_quality", "above", 1000.0, quality="rmse")
    mae = _monitor("amount-mae", "model_quality", "above", 1000.0, quality="mae")
    results = {r["monitor"]: r for r, _ in _run(tmp_path, amount, (rmse, mae), records, labels)}
    assert results["amount-rmse"]["value"] == pytest.approx(float(np.sqrt(np.mean((predicted - truth) ** 2))), rel=1e-9)
    assert results["amount-mae"]["value"] == pytest.approx(float(np.mean(np.abs(predicted - truth))), rel=1e-9)


def test_no_traffic_is_no_data_and_publishes_nothing(churn: Traffic, tmp_path: Path) -> None:
    results = _run(tmp_path, churn, (DRIFT, QUALITY, PREDICTION, ACCURACY), [], {})
    assert [(r["verdict"], r["value"], data) for r, data in results] == [("no_data", None, [])] * 4


def test_records_outside_the_window_are_not_counted(churn: Traffic, tmp_path: Path) -> None:
    records, labels = churn.records(churn.table[:150])
    for record in records[:100]:
        record["eventMetadata"]["inferenceTime"] = "2026-12-03T08:30:00.000Z"  # 90 minutes before the run
    (result, _), = _run(tmp_path, churn, (QUALITY,), records, labels)
    assert result["sample_size"]["current"] == 50


def test_a_run_lists_only_its_windows_hour_partitions_and_the_one_before() -> None:
    # an hourly run at 10:20 looks at 09:20-10:20: hours 09 and 10, and 08 as the margin for
    # a capture file whose hour is that of its first record
    assert monitor_job.window_hours(NOW + timedelta(minutes=-40), NOW + timedelta(minutes=20)) == [
        "2026/12/03/08/", "2026/12/03/09/", "2026/12/03/10/"]
    # a daily run at midnight: the 24 hours of the day before, and one more before them
    midnight = datetime(2026, 12, 4, tzinfo=timezone.utc)
    daily = monitor_job.window_hours(midnight - timedelta(days=1), midnight)
    assert daily[0] == "2026/12/02/23/" and daily[-1] == "2026/12/04/00/" and len(daily) == 26


def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    done = _stats(tmp_path / "config.json", tmp_path / "none" / "model.tar.gz", tmp_path, None, tmp_path / "out")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no model.tar.gz" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_capture_key_whose_path_leaves_the_capture_directory_is_refused(tmp_path: Path) -> None:
    # GIVEN a capture object and a key whose ".." segments lead out of the step's capture directory
    prefix = "capture/churn/churn-dev-churn/"
    good, bad = f"{prefix}primary/2026/12/03/10/a.jsonl", f"{prefix}primary/../../input/labels/x.jsonl"
    out = tmp_path / "processing" / "capture"
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="churn-dev-customers", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_object(Bucket="churn-dev-customers", Key=good, Body=b"{}\n")
        # WHEN the stats step fetches its share THEN the capture file lands below its directory
        assert monitor_job.fetch_shard(s3, "churn-dev-customers", prefix, [good], 0, 1, str(out)) == [good]
        assert (out / "primary" / "2026" / "12" / "03" / "10" / "a.jsonl").read_bytes() == b"{}\n"
        # AND the key that would write outside it fails the step, writing nothing
        with pytest.raises(monitor_job.JobError, match="outside"):
            monitor_job.fetch_shard(s3, "churn-dev-customers", prefix, [bad], 0, 1, str(out))
    assert not (tmp_path / "processing" / "input").exists()
