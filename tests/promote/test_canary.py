"""Promoting prod's canary of the example churn model to its primary: the library and the real CLI.

GIVEN a copy of the example project with its model built and published to the registry,
prod's overlay pinning the previous release as primary and the built version as canary
(tests/fixtures/promote/stacks/prod-canary.yaml), and prod's deployment in a loopback moto
server as ``modelops up`` names it: both SageMaker models, the endpoint configuration with
the primary and canary variants, the endpoint, and each serving monitor's alarm of the
canary variant.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from modelops.components import metrics, naming
from modelops.components.environment import watched_variants
from modelops.errors import UsageError
from modelops.promote import CANARY_GATES, PromotionRefused, promote_canary, verify_promotions
from modelops.spec.envs import load_environment
from modelops.spec.resolved import Environment
from modelops.registry import publish
from tests.promote.helpers import ACCOUNT, IMAGE, registry_of
from tests.promote.helpers import MODEL, PIN_BEFORE, SOAKED, STACKS, commit, later, modelops

LOG = Path("stacks") / "promotions.jsonl"


def use_canary_overlay(project: Path, digest: str, soak: str = "1d") -> str:
    text = (STACKS / "prod-canary.yaml").read_text().replace("CANARY_DIGEST", digest).replace("SOAK", soak)
    (project / "stacks" / "prod.yaml").write_text(text)
    commit(project, "stacks/prod.yaml: a canary of the built version")
    return text


def built_digest(moto, project: Path) -> str:
    """The version staging builds, published to the registry (the canary's version)."""
    staging = load_environment(project / "modelops.yaml", "staging")
    return publish(staging, MODEL, project, registry_of(moto, staging)).digest


def deploy_prod(moto, env: Environment) -> dict[str, str]:
    """prod's endpoint serving the pin (primary) and the canary, and the canary variant's alarms; -> their names."""
    sm = moto.client("sagemaker", env.region)
    bucket = naming.artifacts_bucket_name(env.project, env.env, ACCOUNT)
    model = env.models[MODEL]
    variants = []
    for variant, digest in ((metrics.PRIMARY_VARIANT, model.version), (metrics.CANARY_VARIANT, model.serving.canary.version)):
        name = naming.versioned_name(env.project, env.env, MODEL, digest.removeprefix("sha256:")[:8] + variant[0])
        sm.create_model(ModelName=name, ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/x", PrimaryContainer={
            "Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/{naming.artifact_key(MODEL, digest)}"})
        variants.append({"VariantName": variant, "ModelName": name, "InitialInstanceCount": 1,
                         "InstanceType": "ml.m5.large", "InitialVariantWeight": 0.5})
    sm.create_endpoint_config(EndpointConfigName="prod-config", ProductionVariants=variants)
    sm.create_endpoint(EndpointName=naming.endpoint_name(env.project, env.env, MODEL), EndpointConfigName="prod-config")
    alarms = {}
    cw = moto.client("cloudwatch", env.region)
    for monitor in sorted(env.monitors):
        if metrics.CANARY_VARIANT in watched_variants(env, env.monitors[monitor]):
            alarms[monitor] = naming.variant_alarm_name(env.project, env.env, monitor, metrics.CANARY_VARIANT)
            cw.put_metric_alarm(AlarmName=alarms[monitor], Namespace="AWS/SageMaker", MetricName="ModelLatency",
                                Dimensions=[{"Name": "VariantName", "Value": metrics.CANARY_VARIANT}],
                                Statistic="Average", Period=60, EvaluationPeriods=5, Threshold=250000,
                                ComparisonOperator="GreaterThanThreshold")
    return alarms


@pytest.fixture
def canary(moto, project) -> tuple[str, dict[str, str]]:
    """(the canary's digest, monitor -> canary alarm) of a deployed prod canary."""
    digest = built_digest(moto, project)
    use_canary_overlay(project, digest)
    return digest, deploy_prod(moto, load_environment(project / "modelops.yaml", "prod"))


def test_a_quiet_soaked_canary_becomes_the_primary_and_leaves_the_overlay(moto, project, canary):
    digest, alarms = canary
    # GIVEN prod's canary, watched by its own latency and error-rate alarms, all quiet
    assert sorted(alarms) == ["churn-errors", "churn-latency"]
    before = (project / "stacks" / "prod.yaml").read_text()
    # WHEN its canary is promoted a day after the deploy
    result = promote_canary(project / "modelops.yaml", MODEL, "prod", endpoint_url=moto.url, now=later(SOAKED))
    # THEN every canary gate passed on its evidence
    assert result.written and [g.name for g in result.report.gates] == list(CANARY_GATES)
    gates = {g.name: g for g in result.report.gates}
    assert f"variant canary serves {digest}" in gates["canary"].evidence
    assert "2/2 alarms of the canary variant quiet" in gates["quiet"].evidence
    # AND prod pins the canary's version, runs no canary, and nothing else changed
    after = (project / "stacks" / "prod.yaml").read_text()
    resolved = load_environment(project / "modelops.yaml", "prod").models[MODEL]
    assert (resolved.version, resolved.serving.canary) == (digest, None)
    assert f'    version: "{digest}"  # previous release' in after
    assert "canary: {" not in after and "instance_count: 2" in after and after.startswith("# Production:")
    assert [line for line in before.splitlines() if line not in after.splitlines()] == [
        f'    version: "{PIN_BEFORE}"  # previous release', "      # the candidate, under its own alarms",
        f'      canary: {{version: "{digest}", weight: 0.1}}']
    assert len(after.splitlines()) == len(before.splitlines()) - 2
    # AND the audit log records it, chained
    [record] = [json.loads(line) for line in (project / LOG).read_text().splitlines()]
    assert (record["model"], record["from"], record["to"], record["canary"]) == (MODEL, "prod", "prod", True)
    assert (record["digest"], record["previous_digest"], record["previous_pinned"]) == (digest, PIN_BEFORE, True)
    assert record["approval"] and record["commit"]
    assert verify_promotions(project / "modelops.yaml").valid


def test_a_canary_alarm_in_alarm_refuses_and_names_it(moto, project, canary):
    # GIVEN the canary's error-rate alarm in ALARM (the primary has no alarm in this evidence)
    _, alarms = canary
    moto.client("cloudwatch", "eu-west-1").set_alarm_state(AlarmName=alarms["churn-errors"], StateValue="ALARM",
                                                           StateReason="error rate 5%")
    before = (project / "stacks" / "prod.yaml").read_bytes()
    # WHEN its canary is promoted THEN the quiet gate refuses, naming the canary's alarm
    with pytest.raises(PromotionRefused, match=r"gate\(s\) failed: quiet$") as refused:
        promote_canary(project / "modelops.yaml", MODEL, "prod", endpoint_url=moto.url, now=later(SOAKED))
    quiet = {g.name: g for g in refused.value.report.gates}["quiet"]
    assert f"alarm {alarms['churn-errors']} is in ALARM" in quiet.evidence
    assert alarms["churn-errors"] == "churn-prod-churn-errors--canary"
    # AND nothing was written
    assert (project / "stacks" / "prod.yaml").read_bytes() == before
    assert not (project / LOG).exists()


def test_a_canary_not_soaked_or_not_deployed_refuses(moto, project):
    # GIVEN a canary in prod's overlay that was never deployed
    digest = built_digest(moto, project)
    use_canary_overlay(project, digest)
    # WHEN it is promoted THEN the canary gate finds no endpoint, and the quiet gate no soak
    with pytest.raises(PromotionRefused, match=r"failed: canary, quiet$") as refused:
        promote_canary(project / "modelops.yaml", MODEL, "prod", endpoint_url=moto.url, now=later(SOAKED))
    gates = {g.name: g for g in refused.value.report.gates}
    assert "endpoint churn-prod-churn-classifier not found in prod" in gates["canary"].evidence
    assert "the soak cannot be measured" in gates["quiet"].evidence
    # WHEN it is deployed but promoted three hours later THEN the soak of a day refuses
    deploy_prod(moto, load_environment(project / "modelops.yaml", "prod"))
    endpoint = moto.client("sagemaker", "eu-west-1").describe_endpoint(EndpointName="churn-prod-churn-classifier")
    with pytest.raises(PromotionRefused, match=r"failed: quiet$") as refused:
        promote_canary(project / "modelops.yaml", MODEL, "prod", endpoint_url=moto.url,
                       now=endpoint["LastModifiedTime"] + timedelta(hours=3))
    assert "21h of 1d remaining" in refused.value.report.gates[2].evidence


def test_a_model_without_a_canary_in_the_environment_is_bad_input(project):
    with pytest.raises(UsageError, match=r"models.churn-classifier.serving.canary: churn-classifier runs no canary in prod"):
        promote_canary(project / "modelops.yaml", MODEL, "prod", endpoint_url="http://127.0.0.1:9")


def test_cli_promotes_the_canary_and_check_writes_nothing(moto, project):
    # GIVEN prod's deployed canary under a one-second soak
    digest = built_digest(moto, project)
    use_canary_overlay(project, digest, soak="1s")
    deploy_prod(moto, load_environment(project / "modelops.yaml", "prod"))
    before = (project / "stacks" / "prod.yaml").read_bytes()
    time.sleep(1.1)
    # WHEN `promote --canary --check --json` runs THEN it reports every gate passed and writes nothing
    run = modelops(project, "promote", MODEL, "--canary", "--env", "prod", "--endpoint-url", moto.url, "--check", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert (report["digest"], report["passed"], report["written"], report["canary"]) == (digest, True, False, True)
    assert (project / "stacks" / "prod.yaml").read_bytes() == before
    # WHEN it runs for real THEN prod pins the canary's version and the log has the promotion
    run = modelops(project, "promote", MODEL, "--canary", "--env", "prod", "--endpoint-url", moto.url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "canary to primary in prod" in run.stdout and "runs no canary" in run.stdout
    assert load_environment(project / "modelops.yaml", "prod").models[MODEL].version == digest
    assert json.loads((project / LOG).read_text().splitlines()[-1])["canary"] is True


@pytest.mark.parametrize(
    "args,message",
    [
        ([MODEL, "--canary", "--from", "staging", "--to", "prod"], "--canary promotes within one environment"),
        ([MODEL, "--canary"], "Missing option '--env'"),
        ([MODEL, "--env", "prod"], "add --canary"),
    ],
)
def test_cli_canary_bad_input_exits_2_with_one_line(project, args, message):
    run = modelops(project, "promote", *args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert len([line for line in run.stderr.splitlines() if "rror" in line]) == 1
