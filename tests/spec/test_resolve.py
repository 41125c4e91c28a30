"""Resolution: an environment's overlay on the base, every default filled, values parsed."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from modelops.spec import resolved as r
from modelops.spec.document import spec_document
from modelops.spec.envs import deep_merge, list_environments, load_environment, validate
from modelops.errors import SpecError, UsageError
from tests.spec.helpers import EXAMPLES, VALID, run_cli

FULL = VALID / "full" / "modelops.yaml"
PIN = "sha256:" + "3" * 64


@pytest.fixture(scope="module")
def prod() -> r.Environment:
    return load_environment(FULL, "prod")


@pytest.fixture(scope="module")
def dev() -> r.Environment:
    return load_environment(FULL, "dev")


def test_environments_come_from_stacks_overlays_not_pulumi_configs():
    assert list_environments(FULL) == ["dev", "prod"]
    assert list_environments(VALID / "no-stacks" / "modelops.yaml") == ["dev"]


def test_without_stacks_the_implicit_dev_environment_uses_the_base():
    env = load_environment(VALID / "no-stacks" / "modelops.yaml", "dev")
    assert env.overlay_file is None and env.protect is False and env.encryption == "kms"
    model = env.models["forecast"]
    assert model.serving == r.Serving()  # every serving default
    assert model.soak_seconds == 86400 and model.default_monitors is True
    assert model.train == r.Train(estimator="sklearn.linear_model.Ridge", target="units")
    assert env.datasets["sales"] == r.Dataset(name="sales", owner="team@example.com")
    # default monitors, notifying every channel (there are none)
    assert sorted(env.monitors) == ["forecast-error-rate", "forecast-latency-p99"]
    latency = env.monitors["forecast-latency-p99"]
    assert (latency.threshold, latency.period_seconds, latency.evaluation_periods, latency.default) == (r.Threshold(1.0, "seconds", "1s"), 60, 5, True)
    assert env.monitors["forecast-error-rate"].threshold == r.Threshold(0.01, "ratio", "1%")


def test_top_level_settings_and_tags(prod, dev):
    assert (prod.project, prod.env, prod.owner, prod.region, prod.encryption) == ("full", "prod", "team@example.com", "eu-west-1", "sse-s3")
    assert prod.protect is True and dev.protect is False
    # mappings merge key by key: the overlay's tag joins the base's
    assert prod.tags == (("cost-center", "ml-42"), ("team", "forecasting"), ("tier", "critical"))
    assert dev.tags == (("cost-center", "ml-42"), ("team", "forecasting"))
    assert prod.policies == {"prod-min-instances": "mandatory", "no-wildcard-iam": "advisory"}
    assert prod.spec_file == str(FULL) and prod.overlay_file == str(VALID / "full" / "stacks" / "prod.yaml")


def test_channels(prod):
    assert prod.channels == {
        "oncall": r.Channel("oncall", email=("oncall@example.com",)),
        "chat": r.Channel("chat", https=("https://hooks.example.com/services/T000/B000/secret",)),
        "queue": r.Channel("queue", sqs=("arn:aws:sqs:eu-west-1:123456789012:alerts",)),
    }


def test_datasets_sources_digests_columns_and_retention(prod):
    customers = prod.datasets["customers"]
    source = VALID / "full" / "data" / "customers.csv"
    assert customers.source == str(source)
    assert customers.source_digest == "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()
    # columns from the CSV header, typed from the rows, when the spec declares none
    assert customers.columns == (("customer_id", "bigint"), ("tenure_months", "bigint"), ("monthly_charges", "double"), ("churned", "bigint"))
    assert customers.retention == r.Retention(noncurrent_days=60, archive_after_days=180)
    events = prod.datasets["events"]
    assert events.columns == (("ts", "timestamp"), ("amount", "double"))
    # `<<: *keep` merged, then overridden
    assert events.retention == r.Retention(noncurrent_days=30, archive_after_days=180)
    features = prod.datasets["features"]
    assert (features.format, features.source, features.source_digest, features.columns) == ("parquet", None, None, ())


def test_models(prod, dev):
    churn = prod.models["churn"]
    assert churn.version == PIN and dev.models["churn"].version is None
    assert churn.train == r.Train(
        estimator="sklearn.ensemble.RandomForestClassifier",
        target="churned",
        features=("tenure_months", "monthly_charges"),
        params=(("n_estimators", 50), ("max_depth", 4)),
        test_size=0.25,
        random_state=7,
    )
    assert churn.gates == (r.Gate("accuracy", ">=", 0.8), r.Gate("mae", "<", 2.5))
    assert churn.soak_seconds == 7200 and churn.artifact is None
    serving = churn.serving
    # unset instance_count starts at the autoscaling minimum; the overlay's autoscaling wins
    assert serving.instance_count == 3
    assert serving.autoscaling == r.Autoscaling(min=3, max=8, target_invocations=300)
    assert dev.models["churn"].serving.autoscaling == r.Autoscaling(min=2, max=6, target_invocations=100)
    assert serving.canary == r.Canary(version="sha256:" + "1" * 64, weight=0.1)
    assert serving.shadow is None and prod.models["ranker"].serving.shadow == r.Shadow(version="sha256:" + "2" * 64, sample_percent=20)
    assert serving.data_capture == r.DataCapture(enabled=True, sample_percent=10)

    scorer = prod.models["scorer"]
    assert scorer.train is None and scorer.artifact_source == str(VALID / "full" / "models" / "model.tar.gz")
    assert scorer.framework_version == "1.2-1"
    assert scorer.serving.serverless == r.Serverless(memory_mb=4096, max_concurrency=5)
    # serverless endpoints cannot capture data: off, although capture defaults to on
    assert scorer.serving.data_capture.enabled is False

    assert prod.models["ranker"].serving.instance_count == 3 and dev.models["ranker"].serving.instance_count == 1
    assert prod.models["ranker"].serving.instance_type == "ml.c5.large"


def test_monitors(prod, dev):
    latency = prod.monitors["churn-latency"]
    assert latency == r.Monitor(
        name="churn-latency",
        metric="latency_p99",
        model="churn",
        threshold=r.Threshold(0.5, "seconds", "500ms"),
        period_seconds=60,
        evaluation_periods=5,
        notify=("oncall", "chat"),
        owner="team@example.com",
    )
    assert dev.monitors["churn-latency"].threshold.value == 0.25 and dev.monitors["churn-latency"].notify == ("oncall",)
    floor = prod.monitors["traffic-floor"]
    assert (floor.comparison, floor.threshold, floor.period_seconds, floor.evaluation_periods) == ("below", r.Threshold(1.0, "number", "1"), 300, 3)
    # without `notify`: every channel
    assert floor.notify == ("oncall", "chat", "queue")
    # freshness above 48h for 3h, in hourly periods: 48 empty hours, then 2 more
    fresh = prod.monitors["events-fresh"]
    assert (fresh.dataset, fresh.model, fresh.threshold.value, fresh.period_seconds, fresh.evaluation_periods) == ("events", None, 172800.0, 3600, 50)


def test_default_monitors_are_skipped_when_declared_or_disabled(prod):
    defaults = sorted(name for name, m in prod.monitors.items() if m.default)
    # churn declares latency_p99 and error_rate monitors; ranker turns defaults off
    assert defaults == ["scorer-latency-p99"]
    assert "scorer-error-rate" in prod.monitors and not prod.monitors["scorer-error-rate"].default
    assert prod.monitors["scorer-latency-p99"].notify == ("oncall", "chat", "queue")


def test_environment_round_trips_through_json(prod):
    assert json.loads(json.dumps(prod.to_dict()))["models"]["churn"]["version"] == PIN


def test_unknown_environment_is_a_usage_error_listing_the_available_ones():
    with pytest.raises(UsageError, match=r"unknown environment 'prd' \(did you mean 'prod'\?\); available: dev, prod"):
        load_environment(FULL, "prd")
    with pytest.raises(UsageError, match="available: dev"):
        validate(FULL, ["staging"])


def test_invalid_spec_raises_spec_error(tmp_path):
    spec = tmp_path / "modelops.yaml"
    spec.write_text("apiVersion: modelops/v1\nproject: x1\nowner: a@b.co\nregion: mars-1\n")
    with pytest.raises(SpecError, match=r"region: 'mars-1' is not allowed"):
        load_environment(spec, "dev")


def test_overlay_error_names_both_files(tmp_path, monkeypatch):
    shutil.copytree(VALID / "full", tmp_path / "full")
    (tmp_path / "full" / "stacks" / "prod.yaml").write_text("monitors:\n  churn-latncy: {above: 1s}\n")
    monkeypatch.chdir(tmp_path)
    assert [str(p) for p in validate("full/modelops.yaml")] == [
        "full/stacks/prod.yaml:2:3: monitors.churn-latncy: not declared in full/modelops.yaml; did you mean 'churn-latency'?"
    ]


def test_problems_come_in_file_order_across_environments(tmp_path, monkeypatch):
    shutil.copytree(VALID / "full", tmp_path / "full")
    base = tmp_path / "full" / "modelops.yaml"
    base.write_text(base.read_text().replace("above: 48h", "above: 48").replace("dataset: customers", "dataset: customer"))
    (tmp_path / "full" / "stacks" / "dev.yaml").write_text("models:\n  ranker:\n    serving: {instance_count: 0}\n")
    monkeypatch.chdir(tmp_path)
    lines = [str(p) for p in validate("full/modelops.yaml")]
    assert lines == [
        "full/modelops.yaml:40:14: models.churn.dataset: unknown dataset 'customer'; did you mean 'customers'?",
        "full/modelops.yaml:87:12: monitors.events-fresh.above: freshness takes a duration, not a bare number; write e.g. '48h'",
        "full/stacks/dev.yaml:3:31: models.ranker.serving.instance_count: must be ≥ 1, got 0; e.g. 2",
    ]
    # one environment only: the dev overlay's problem is not in prod
    assert len(validate("full/modelops.yaml", ["prod"])) == 2


def test_deep_merge_rules():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    assert deep_merge(base, {"a": {"c": [3]}, "d": "y", "e": 1}) == {"a": {"b": 1, "c": [3]}, "d": "y", "e": 1}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}  # untouched
    assert deep_merge({"a": {"b": 1}}, {"a": 5}) == {"a": 5}


def test_show_masks_https_urls():
    result = run_cli("show", str(FULL), "--env", "prod")
    assert result.returncode == 0, result.stderr
    assert "hooks.example.com" not in result.stdout and "https://****" in result.stdout
    assert "instance_count: 3" in result.stdout
    as_json = run_cli("show", str(FULL), "--env", "prod", "--json")
    assert "hooks.example.com" not in as_json.stdout
    assert json.loads(as_json.stdout)["notifications"]["chat"]["https"] == ["https://****"]
    revealed = run_cli("show", str(FULL), "--env", "prod", "--json", "--show-secrets")
    assert json.loads(revealed.stdout)["notifications"]["chat"]["https"] == ["https://hooks.example.com/services/T000/B000/secret"]


SHOWN_CASES = [(spec, env) for spec in (*EXAMPLES, FULL) for env in list_environments(spec)]


@pytest.mark.parametrize("spec,env", SHOWN_CASES, ids=[f"{s.parent.name}-{e}" for s, e in SHOWN_CASES])
def test_show_prints_a_spec_in_the_spec_language_that_resolves_to_itself(tmp_path, spec, env):
    # GIVEN an environment's resolved spec, as `show` writes it (paths relative to the
    # project), saved in another directory holding the files it names at the same places
    project = Path(spec).resolve().parent
    document = spec_document(load_environment(spec, env), relative_to=project)
    for kind, key in (("datasets", "source"), ("models", "artifact")):
        for entry in document.get(kind, {}).values():
            if isinstance(entry.get(key), str):
                (tmp_path / entry[key]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(project / entry[key], tmp_path / entry[key])
    shown = tmp_path / "modelops.yaml"
    shown.write_text(yaml.safe_dump(document, sort_keys=False))
    # THEN it is a valid spec: the schema's keys, values in the spec's units
    assert validate(shown) == []
    # AND it resolves to the same environment: what show prints is what the components get
    assert spec_document(load_environment(shown, "dev"), relative_to=tmp_path) == document


def test_show_speaks_the_spec_language_not_the_internal_form():
    # GIVEN the full fixture's prod WHEN shown (through the CLI, as a user reads it)
    result = run_cli("show", str(FULL), "--env", "prod")
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    # THEN the keys are the spec's, and durations and percentages are written as in the docs
    assert "notifications" in data and "channels" not in data
    fresh = data["monitors"]["events-fresh"]
    assert (fresh["above"], fresh["period"], fresh["for"]) == ("48h", "1h", "3h")
    assert not any(key in text for key in ("period_seconds", "evaluation_periods", "threshold:", "soak_seconds") for text in [result.stdout])
    model = data["models"]["churn"]
    assert isinstance(model["gates"], dict) and all(str(v)[:1] in "<>" for v in model["gates"].values())
    assert not Path(str(model.get("artifact", "x"))).is_absolute()
    # AND --json is the same document
    as_json = run_cli("show", str(FULL), "--env", "prod", "--json")
    assert json.loads(as_json.stdout) == data


def test_show_needs_env_when_there_are_several():
    result = run_cli("show", str(FULL))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: pass --env: this spec has several environments: dev, prod"


def test_every_entity_has_an_owner_its_own_else_the_projects():
    # GIVEN a spec where some entities name their owner, and a prod overlay that changes
    # the project's owner and one model's
    spec = VALID / "owners" / "modelops.yaml"
    dev, prod = load_environment(spec, "dev"), load_environment(spec, "prod")
    # THEN an entity's own owner wins, the others have the project's
    assert {n: d.owner for n, d in dev.datasets.items()} == {"clicks": "platform@example.com", "payments": "fraud@example.com"}
    assert {n: m.owner for n, m in dev.models.items()} == {"ranker": "platform@example.com", "fraud-scorer": "fraud@example.com"}
    # AND a monitor without one has the project's, not its model's; a default monitor has its model's
    owners = {n: m.owner for n, m in dev.monitors.items()}
    assert owners["payments-fresh"] == "platform@example.com" and owners["scorer-drift"] == "fraud@example.com"
    assert owners["fraud-scorer-latency-p99"] == owners["fraud-scorer-error-rate"] == "fraud@example.com"
    assert owners["ranker-latency-p99"] == "platform@example.com"
    # AND in prod the overlay's owners hold: the project's for what names none, the model's own
    assert prod.owner == "platform-prod@example.com" and prod.datasets["clicks"].owner == "platform-prod@example.com"
    assert prod.models["ranker"].owner == prod.monitors["ranker-latency-p99"].owner == "search@example.com"
    assert prod.models["fraud-scorer"].owner == "fraud@example.com"
    # AND show writes each owner, so the shown spec resolves to the same owners
    assert spec_document(prod)["models"]["ranker"]["owner"] == "search@example.com"


def test_a_parquet_source_catalogues_its_columns_from_the_footer(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # GIVEN a parquet source with typed columns and no `columns:` in the spec
    table = pa.table({
        "customer_id": pa.array([1, 2], pa.int64()), "tenure": pa.array([3, 4], pa.int32()),
        "monthly": pa.array([1.5, 2.5], pa.float64()), "churned": pa.array([True, False]),
        "plan": pa.array(["a", "b"]).dictionary_encode(), "price": pa.array([1, 2], pa.decimal128(10, 2)),
        "tags": pa.array([["x"], []], pa.list_(pa.string())),
        "seen": pa.array([0, 1], pa.timestamp("ms")),
    })
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "features.parquet")
    (tmp_path / "modelops.yaml").write_text(
        "apiVersion: modelops/v1\nproject: pq\nowner: o@example.com\nregion: eu-west-1\n"
        "datasets:\n  features: {format: parquet, source: data/features.parquet}\n", encoding="utf-8")
    # WHEN it is resolved THEN the Glue columns are the file's, in Glue's types
    dataset = load_environment(tmp_path / "modelops.yaml", "dev").datasets["features"]
    assert dataset.columns == (
        ("customer_id", "bigint"), ("tenure", "int"), ("monthly", "double"), ("churned", "boolean"),
        ("plan", "string"), ("price", "decimal(10,2)"), ("tags", "array<string>"), ("seen", "timestamp"))


def test_a_parquet_footer_that_claims_too_much_metadata_is_refused_unread(tmp_path: Path) -> None:
    from modelops.spec.datafiles import MAX_PARQUET_FOOTER_BYTES, parquet_problem

    # GIVEN a file ending like parquet whose footer claims 4 GiB of metadata
    path = tmp_path / "big.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 16 + (2**32 - 1).to_bytes(4, "little") + b"PAR1")
    # THEN it is refused by its declared size, naming the limit
    assert parquet_problem(path) == f"its metadata is larger than {MAX_PARQUET_FOOTER_BYTES:,} bytes (the limit)"
