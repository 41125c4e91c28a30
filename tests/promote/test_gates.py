"""Each promotion gate against real evidence in a loopback moto server (hand-built environments)."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta, timezone

import pytest

from modelops.promote import Evidence, deployed_gate, metrics_gate, policies_gate, quiet_gate
from modelops.spec.resolved import Environment, Gate, Model, Monitor, Threshold
from tests.promote.helpers import deploy_evidence, put_alarm, set_alarm

MODEL = "churn-classifier"
ARTIFACT = b"model.tar.gz bytes of churn-classifier v1"
DAY = timedelta(days=1)
#: what the target (prod) requires by default
SOAK = 86400


def environment(env: str = "staging", soak_seconds: int = 86400) -> Environment:
    monitors = {
        "churn-latency": Monitor("churn-latency", "latency_p99", model=MODEL, threshold=Threshold(0.25, "seconds", "250ms")),
        "churn-errors": Monitor("churn-errors", "error_rate", model=MODEL, threshold=Threshold(0.02, "ratio", "2%")),
        "customers-fresh": Monitor("customers-fresh", "freshness", dataset="customers"),
    }
    model = Model(MODEL, "customers", gates=(Gate("accuracy", ">=", 0.8),), soak_seconds=soak_seconds)
    return Environment("churn", env, "ml@example.com", "eu-west-1", models={MODEL: model}, monitors=monitors)


def later(delta: timedelta) -> datetime:
    return datetime.now(timezone.utc) + delta


# ------------------------------------------------------------------ metrics


def test_metrics_gate_passes_with_each_metric_as_evidence():
    gates = (Gate("accuracy", ">=", 0.8), Gate("roc_auc", ">=", 0.85))
    result = metrics_gate(MODEL, gates, {"metrics": {"accuracy": 0.91, "roc_auc": 0.88}}, "sha256:x")
    assert result.passed
    assert result.evidence == "accuracy 0.91 meets >= 0.8; roc_auc 0.88 meets >= 0.85"


def test_metrics_gate_fails_on_a_metric_below_its_gate_and_on_a_missing_metric():
    gates = (Gate("accuracy", ">=", 0.8), Gate("rmse", "<", 3.0))
    result = metrics_gate(MODEL, gates, {"metrics": {"accuracy": 0.79}}, "sha256:x")
    assert not result.passed
    assert "accuracy 0.79 fails >= 0.8" in result.evidence
    assert "rmse missing from the model card" in result.evidence
    assert [c["passed"] for c in result.details["checks"]] == [False, False]


def test_metrics_gate_fails_without_a_card_and_says_why():
    result = metrics_gate(MODEL, (Gate("accuracy", ">=", 0.8),), "sha256:x is not in the artifact store", "sha256:x")
    assert not result.passed and "not in the artifact store" in result.evidence


# ------------------------------------------------------------------ deployed


def test_deployed_gate_passes_when_the_source_serves_the_digest(moto):
    env = environment()
    digest = deploy_evidence(moto, env, MODEL, ARTIFACT)
    result = deployed_gate(Evidence.at(moto.url, env.region), env, MODEL, digest)
    assert result.passed, result.evidence
    assert "sha256 matches" in result.evidence and "InService" in result.evidence
    assert result.details["artifact"].startswith("s3://churn-registry-123456789012/models/churn-classifier/")


def test_deployed_gate_fails_when_the_object_bytes_differ_from_the_digest(moto):
    env = environment()
    digest = deploy_evidence(moto, env, MODEL, ARTIFACT)
    bucket, key = result_location(env, digest)
    moto.client("s3").put_object(Bucket=bucket, Key=key, Body=b"tampered")
    result = deployed_gate(Evidence.at(moto.url, env.region), env, MODEL, digest)
    assert not result.passed
    assert f"not {digest[:19]}" in result.evidence


def test_deployed_gate_fails_when_nothing_is_deployed(moto):
    env = environment()
    result = deployed_gate(Evidence.at(moto.url, env.region), env, MODEL, "sha256:" + "0" * 64)
    assert not result.passed
    assert "not found (" in result.evidence and "publish it (`modelops publish churn-classifier`)" in result.evidence
    assert "endpoint churn-staging-churn-classifier not found" in result.evidence


def test_deployed_gate_fails_when_the_endpoint_serves_another_version(moto):
    env = environment()
    deploy_evidence(moto, env, MODEL, ARTIFACT)
    other = "sha256:" + __import__("hashlib").sha256(b"v2").hexdigest()
    bucket, key = result_location(env, other)
    moto.client("s3").put_object(Bucket=bucket, Key=key, Body=b"v2")
    result = deployed_gate(Evidence.at(moto.url, env.region), env, MODEL, other)
    assert not result.passed
    assert "serves s3://" in result.evidence and f"not s3://{bucket}/{key}" in result.evidence


def result_location(env: Environment, digest: str) -> tuple[str, str]:
    from modelops.components import naming

    return naming.registry_bucket_name(env.project, "123456789012"), naming.registry_key(MODEL, digest)


# ------------------------------------------------------------------ quiet


def test_quiet_gate_passes_after_the_soak_with_every_alarm_ok(moto):
    env = environment()
    deploy_evidence(moto, env, MODEL, ARTIFACT)
    result = quiet_gate(Evidence.at(moto.url, env.region), env, MODEL, now=later(DAY + timedelta(hours=1)), soak_seconds=SOAK)
    assert result.passed, result.evidence
    assert "2/2 alarms quiet" in result.evidence
    assert {a["alarm"] for a in result.details["alarms"]} == {"churn-staging-churn-latency", "churn-staging-churn-errors"}


def test_quiet_gate_fails_naming_the_alarm_in_alarm(moto):
    env = environment()
    deploy_evidence(moto, env, MODEL, ARTIFACT)
    name = set_alarm(moto, env, "churn-errors", "ALARM", "error rate 5% > 2%")
    result = quiet_gate(Evidence.at(moto.url, env.region), env, MODEL, now=later(DAY + timedelta(hours=1)), soak_seconds=SOAK)
    assert not result.passed
    assert f"alarm {name} is in ALARM" in result.evidence and "error rate 5% > 2%" in result.evidence
    assert "churn-latency" not in result.evidence


def test_quiet_gate_fails_for_an_alarm_that_changed_state_during_the_soak(moto):
    # GIVEN an alarm that fired and recovered 1h ago, inside a 24h soak (the endpoint is older)
    env = environment()
    deploy_evidence(moto, env, MODEL, ARTIFACT)
    set_alarm(moto, env, "churn-latency", "ALARM")
    name = set_alarm(moto, env, "churn-latency", "OK")
    # WHEN evaluated 1h later
    result = quiet_gate(Evidence.at(moto.url, env.region), env, MODEL, now=later(timedelta(hours=1)), soak_seconds=SOAK)
    # THEN the state change inside the soak window fails the gate with its time
    assert not result.passed
    assert f"alarm {name} changed to OK at" in result.evidence and "within the soak" in result.evidence


def test_quiet_gate_refuses_before_the_soak_elapsed_with_the_time_remaining(moto):
    env = environment(soak_seconds=86400)
    deploy_evidence(moto, env, MODEL, ARTIFACT)
    modified = moto.client("sagemaker").describe_endpoint(EndpointName="churn-staging-churn-classifier")["LastModifiedTime"]
    result = quiet_gate(Evidence.at(moto.url, env.region), env, MODEL, now=modified + timedelta(hours=2), soak_seconds=SOAK)
    assert not result.passed
    assert "soak not elapsed: churn-staging-churn-classifier last changed 2h ago; 22h of 1d remaining" in result.evidence
    assert result.details["soak_remaining_seconds"] == 22 * 3600


def test_quiet_gate_fails_when_a_monitors_alarm_is_not_deployed(moto):
    env = environment()
    deploy_evidence(moto, env, MODEL, ARTIFACT, alarms=False)
    put_alarm(moto, env, "churn-latency")
    result = quiet_gate(Evidence.at(moto.url, env.region), env, MODEL, now=later(2 * DAY), soak_seconds=SOAK)
    assert not result.passed
    assert "alarm churn-staging-churn-errors (monitor churn-errors) is not deployed in staging" in result.evidence


# ------------------------------------------------------------------ policies


def test_policies_gate_fails_loudly_when_the_target_cannot_be_rendered():
    env = environment("prod")

    def attach(e: Environment) -> Environment:
        from modelops.errors import UsageError

        raise UsageError("models.churn-classifier.version sha256:… is not in the artifact store")

    result = policies_gate(env, MODEL, "sha256:" + "a" * 64, attach)
    assert not result.passed
    # the gate never passes without its evidence: no renderer/policy engine, or no render
    expected = "does not render: " if importlib.util.find_spec("modelops.graph.render") else "policy checks unavailable"
    assert expected in result.evidence


@pytest.mark.parametrize("op,value,actual,ok", [(">=", 0.8, 0.8, True), (">", 0.8, 0.8, False), ("<=", 2.0, 1.5, True), ("<", 2.0, 2.0, False)])
def test_metrics_gate_comparisons_are_exact_at_the_boundary(op, value, actual, ok):
    assert metrics_gate(MODEL, (Gate("mae", op, value),), {"metrics": {"mae": actual}}, "d").passed is ok


def test_deployed_gate_fails_when_no_variant_names_an_artifact(moto):
    env = environment()
    digest = "sha256:" + __import__("hashlib").sha256(ARTIFACT).hexdigest()
    bucket, key = result_location(env, digest)
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": env.region})
    s3.put_object(Bucket=bucket, Key=key, Body=ARTIFACT)
    sm = moto.client("sagemaker")
    sm.create_model(ModelName="bare", PrimaryContainer={"Image": "1.dkr.ecr.eu-west-1.amazonaws.com/x:1"},
                    ExecutionRoleArn="arn:aws:iam::123456789012:role/r")
    sm.create_endpoint_config(EndpointConfigName="bare", ProductionVariants=[
        {"VariantName": "primary", "ModelName": "bare", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="churn-staging-churn-classifier", EndpointConfigName="bare")
    result = deployed_gate(Evidence.at(moto.url, env.region), env, MODEL, digest)
    assert not result.passed
    assert "no variant of endpoint churn-staging-churn-classifier names an S3 model artifact" in result.evidence
