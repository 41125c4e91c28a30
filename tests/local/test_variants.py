"""Endpoint variants at the emulator: what an endpoint configuration sends to SageMaker is what
``DescribeEndpointConfig`` answers, shadow variants included, what AWS refuses is refused, and
a canary's own alarms watch the canary alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from modelops.components import metrics, naming
from modelops.graph.render import render
from modelops.graph.resource_types import ENDPOINT_CONFIG, METRIC_ALARM
from modelops.local.alarms import evaluate_alarms
from modelops.local.handlers import Context
from modelops.local.handlers.monitoring import MetricAlarm
from modelops.local.handlers.serving import EndpointConfiguration, production_variant
from modelops.local.server import Clients
from tests.components.helpers import load, tiny_artifact, variants_spec
from tests.helpers import Emulator

pytestmark = [pytest.mark.aws]

IMAGE = "246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"


def _configs(tmp_path: Path) -> dict[str, dict]:
    """model -> the inputs of its endpoint configuration, as the variants fixture renders them (dev)."""
    env = load(variants_spec(tmp_path), "dev", tiny_artifact(tmp_path / "a"))
    graph = render(env)
    return {r.name.split("-model-", 1)[1].removesuffix("-config"): r.inputs for r in graph.by_type(ENDPOINT_CONFIG)}


def _models(emulator: Emulator, inputs: dict) -> None:
    """The SageMaker models the configuration's variants name (SageMaker checks they exist)."""
    sm = emulator.client("sagemaker", "us-west-2")
    for variant in [*inputs["productionVariants"], *inputs.get("shadowProductionVariants", [])]:
        sm.create_model(ModelName=variant["modelName"], ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://b/models/m/0/model.tar.gz"})


def test_the_emulator_stores_the_shadow_variants_it_was_sent(emulator: Emulator, tmp_path: Path) -> None:
    # GIVEN the reranker's rendered configuration: one production variant and one shadow
    inputs = _configs(tmp_path)["reranker"]
    assert len(inputs["shadowProductionVariants"]) == 1
    ctx = Context(Clients(emulator.url, "us-west-2", emulator.ca_bundle), "us-west-2")
    _models(emulator, inputs)
    # WHEN the apply engine creates it, as `up` does
    name, _ = EndpointConfiguration().create(ctx, inputs["name"], inputs)
    # THEN DescribeEndpointConfig answers exactly the variants sent, shadows included
    described = emulator.client("sagemaker", "us-west-2").describe_endpoint_config(EndpointConfigName=name)
    for key, sent in (("ProductionVariants", inputs["productionVariants"]),
                      ("ShadowProductionVariants", inputs["shadowProductionVariants"])):
        wanted = [production_variant(v) for v in sent]
        got = [{k: v[k] for k in w} for v, w in zip(described[key], wanted)]
        assert got == wanted and len(described[key]) == len(wanted)


def test_a_shadow_beside_a_canary_is_refused_as_sagemaker_does(emulator: Emulator, tmp_path: Path) -> None:
    # GIVEN the ranker's configuration (primary and canary) with a shadow added
    inputs = _configs(tmp_path)["ranker"]
    variant = production_variant(inputs["productionVariants"][0])
    sm = emulator.client("sagemaker", "us-west-2")
    _models(emulator, inputs)
    # WHEN it is sent THEN the emulator refuses it, as SageMaker does
    with pytest.raises(ClientError, match="ShadowProductionVariants require exactly one ProductionVariant; got 2"):
        sm.create_endpoint_config(
            EndpointConfigName="two-and-a-shadow",
            ProductionVariants=[production_variant(v) for v in inputs["productionVariants"]],
            ShadowProductionVariants=[{**variant, "VariantName": "shadow"}])
    with pytest.raises(ClientError):
        sm.describe_endpoint_config(EndpointConfigName="two-and-a-shadow")


def test_a_slow_canary_alarms_on_its_own_alarm_while_the_primary_stays_quiet(emulator: Emulator, tmp_path: Path) -> None:
    # GIVEN ranker's rendered cpu alarms (primary and canary: above 80% for 5 minutes) at the emulator
    env = load(variants_spec(tmp_path), "dev", tiny_artifact(tmp_path / "a"))
    alarms = {r.inputs["name"]: r.inputs for r in render(env).by_type(METRIC_ALARM)}
    primary = naming.alarm_name(env.project, env.env, "ranker-cpu")
    canary = naming.variant_alarm_name(env.project, env.env, "ranker-cpu", metrics.CANARY_VARIANT)
    ctx = Context(Clients(emulator.url, "us-west-2", emulator.ca_bundle), "us-west-2")
    for name in (primary, canary):
        MetricAlarm().create(ctx, name, {**alarms[name], "alarmActions": [], "okActions": []})
    # WHEN the canary's instances run at 95% CPU and the primary's at 20%, five minutes long
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    endpoint = naming.endpoint_name(env.project, env.env, "ranker")
    cw = emulator.client("cloudwatch", "us-west-2")
    assert alarms[canary]["evaluationPeriods"] == 5
    for variant, value in ((metrics.CANARY_VARIANT, 95.0), (metrics.PRIMARY_VARIANT, 20.0)):
        ref = metrics.endpoint_cpu(endpoint, variant)
        cw.put_metric_data(Namespace=ref.namespace, MetricData=[{
            "MetricName": ref.name, "Dimensions": [{"Name": k, "Value": v} for k, v in ref.dimensions],
            "Timestamp": now - dt.timedelta(minutes=m), "Value": value, "Unit": "Percent"} for m in range(5)])
    evaluate_alarms(emulator.url, now=now + dt.timedelta(seconds=30), verify=emulator.ca_bundle)
    # THEN the canary's own alarm is in ALARM and the primary's is OK: "the canary is quiet" is
    # read from an alarm of its own
    described = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=[primary, canary])["MetricAlarms"]}
    assert {name: a["StateValue"] for name, a in described.items()} == {primary: "OK", canary: "ALARM"}
    assert "5 out of the last 5 datapoints [95.0" in described[canary]["StateReason"]
    assert "[20.0" in described[primary]["StateReason"]
