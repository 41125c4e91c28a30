"""Every example environment, provisioned to the TLS moto server: each promise of the spec
checked with plain boto3 describe calls, then destroyed (or refused when protected)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelops.components import naming
from modelops.components.metrics import drift_metric
from modelops.errors import UsageError
from modelops.local.apply import destroy, up
from modelops.local.handlers import HANDLERS
from modelops.graph.render import render
from modelops.spec.resolved import Environment
from tests.helpers import Emulator
from tests.local.helpers import CASES, EXAMPLES, env_buckets, environment, registry_keys

ACCOUNT = "123456789012"

pytestmark = [pytest.mark.aws, pytest.mark.slow]


def _alarm_promises(env: Environment, alarm: dict, monitor_name: str) -> None:
    monitor = env.monitors[monitor_name]
    p, e = env.project, env.env
    expected_op = "GreaterThanThreshold" if monitor.comparison == "above" else "LessThanThreshold"
    assert alarm["EvaluationPeriods"] >= 1
    topics = {f"arn:aws:sns:{env.region}:{ACCOUNT}:{naming.topic_name(p, e, c)}" for c in monitor.notify}
    assert set(alarm["AlarmActions"]) == topics
    dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
    if monitor.model:
        assert alarm["ComparisonOperator"] == expected_op
        endpoint = naming.endpoint_name(p, e, monitor.model)
        if monitor.metric.startswith("latency_p"):
            assert alarm["MetricName"] == "ModelLatency"
            assert alarm["ExtendedStatistic"] == monitor.metric.split("_")[1]
            assert alarm["Threshold"] == pytest.approx(monitor.threshold.value * 1e6)  # microseconds
            assert dims["EndpointName"] == endpoint
        elif monitor.metric == "error_rate":
            stats = [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]
            assert {s["MetricName"] for s in stats} >= {"Invocation5XXErrors", "Invocations"}
            assert all({d["Name"]: d["Value"] for d in s["Dimensions"]}["EndpointName"] == endpoint for s in stats)
            assert alarm["Threshold"] == pytest.approx(monitor.threshold.value)
        elif monitor.metric == "data_drift":
            ref = drift_metric(endpoint)
            assert (alarm["Namespace"], alarm["MetricName"]) == (ref.namespace, ref.name)
            assert dims == ref.dimensions_dict()
            assert alarm["Threshold"] == pytest.approx(monitor.threshold.value)
        elif monitor.metric == "invocations":
            assert alarm["MetricName"] == "Invocations" and dims["EndpointName"] == endpoint
            assert alarm["Threshold"] == pytest.approx(monitor.threshold.value)
    else:
        # freshness "above 48h" alarms when the bucket saw no writes for that long
        assert dims["BucketName"] == naming.bucket_name(p, e, monitor.dataset, ACCOUNT)
        assert (alarm["MetricName"], alarm["ComparisonOperator"]) == ("PutRequests", "LessThanThreshold")
        assert alarm["Period"] * alarm["EvaluationPeriods"] >= monitor.threshold.value


def _check_promises(env: Environment, emu: Emulator) -> None:
    p, e, region = env.project, env.env, env.region
    s3, sm = emu.client("s3", region), emu.client("sagemaker", region)
    key_arn = emu.client("kms", region).describe_key(KeyId=naming.kms_alias(p, e))["KeyMetadata"]["Arn"]
    for dataset in [*env.datasets.values(), None]:
        bucket = (naming.bucket_name(p, e, dataset.name, ACCOUNT) if dataset
                  else naming.artifacts_bucket_name(p, e, ACCOUNT))
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        default = rule["ApplyServerSideEncryptionByDefault"]
        if env.encryption == "kms":
            assert default["SSEAlgorithm"] == "aws:kms" and default["KMSMasterKeyID"] == key_arn
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block[k] for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        assert any(
            st["Effect"] == "Deny" and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for st in policy["Statement"]
        ), policy
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        if dataset:
            retention = dataset.retention
            assert rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == retention.noncurrent_days
            if retention.archive_after_days:
                assert rules[0]["Transitions"][0]["Days"] == retention.archive_after_days
            if retention.expire_after_days:
                assert rules[0]["Expiration"]["Days"] == retention.expire_after_days
            if dataset.source:
                listed = s3.list_objects_v2(Bucket=bucket, Prefix="data/")["Contents"]
                assert [o["Size"] for o in listed] == [Path(dataset.source).stat().st_size]
    for model in env.models.values():
        endpoint = sm.describe_endpoint(EndpointName=naming.endpoint_name(p, e, model.name))
        assert endpoint["EndpointStatus"] == "InService"
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        variant = config["ProductionVariants"][0]
        if model.serving.serverless:
            assert variant["ServerlessConfig"] == {"MemorySizeInMB": model.serving.serverless.memory_mb,
                                                   "MaxConcurrency": model.serving.serverless.max_concurrency}
        else:
            assert variant["InstanceType"] == model.serving.instance_type
            assert variant["InitialInstanceCount"] == model.serving.instance_count
            capture = config["DataCaptureConfig"]
            assert capture["EnableCapture"] is model.serving.data_capture.enabled
            assert capture["InitialSamplingPercentage"] == model.serving.data_capture.sample_percent
            assert config["KmsKeyId"] == key_arn
        sm_model = sm.describe_model(ModelName=variant["ModelName"])
        assert sm_model["PrimaryContainer"]["ModelDataUrl"].endswith(
            naming.artifact_key(model.name, model.artifact.digest))
        role_name = naming.role_name(p, e, model.name)
        assert sm_model["ExecutionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
        iam = emu.client("iam", region)
        names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        assert names
        for name in names:
            document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            document = json.loads(document) if isinstance(document, str) else document
            actions = [a for st in document["Statement"] for a in
                       (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])]
            assert actions and not any(a == "*" or a.endswith(":*") for a in actions), actions
        if model.serving.autoscaling:
            target = emu.client("application-autoscaling", region).describe_scalable_targets(
                ServiceNamespace="sagemaker",
                ResourceIds=[naming.autoscaling_resource_id(naming.endpoint_name(p, e, model.name), "primary")],
            )["ScalableTargets"][0]
            assert (target["MinCapacity"], target["MaxCapacity"]) == (
                model.serving.autoscaling.min, model.serving.autoscaling.max)
    cw, sns = emu.client("cloudwatch", region), emu.client("sns", region)
    for name in env.monitors:
        alarms = cw.describe_alarms(AlarmNames=[naming.alarm_name(p, e, name)])["MetricAlarms"]
        assert len(alarms) == 1, name
        _alarm_promises(env, alarms[0], name)
    for channel in env.channels.values():
        arn = f"arn:aws:sns:{region}:{ACCOUNT}:{naming.topic_name(p, e, channel.name)}"
        subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        assert sorted(s["Endpoint"] for s in subs if s["Protocol"] == "email") == sorted(channel.email)
        assert len([s for s in subs if s["Protocol"] == "https"]) == len(channel.https)
        if env.encryption == "kms":
            assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["KmsMasterKeyId"]


def _nothing_left(env: Environment, emu: Emulator) -> None:
    """Nothing of the environment is left; the project's registry is, with every version the
    environment served (the next environment, or this one again, deploys from it)."""
    region = env.region
    s3 = emu.client("s3", region)
    assert env_buckets(s3) == []
    held = registry_keys(s3, env.project)
    for name, model in env.models.items():
        assert naming.registry_key(name, model.artifact.digest) in held, name
    assert emu.client("sagemaker", region).list_endpoints()["Endpoints"] == []
    assert emu.client("sagemaker", region).list_models()["Models"] == []
    assert emu.client("sagemaker", region).list_endpoint_configs()["EndpointConfigs"] == []
    assert emu.client("cloudwatch", region).describe_alarms()["MetricAlarms"] == []
    assert emu.client("sns", region).list_topics()["Topics"] == []
    assert emu.client("iam", region).list_roles()["Roles"] == []
    assert emu.client("glue", region).get_databases()["DatabaseList"] == []
    kms = emu.client("kms", region)
    registry_key = {a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]
                    if a["AliasName"] == naming.registry_kms_alias(env.project)}
    assert len(registry_key) == 1
    keys = [k["KeyId"] for k in kms.list_keys()["Keys"] if k["KeyId"] not in registry_key]
    assert {kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] for k in keys} <= {"PendingDeletion"}


@pytest.mark.parametrize(("example", "env_name"), CASES)
def test_up_keeps_every_promise_then_destroy_leaves_nothing(
    example: str, env_name: str, emulator: Emulator, artifact_root: Path, tmp_path: Path
) -> None:
    # GIVEN an example environment with its artifacts
    spec, _ = EXAMPLES[example]
    env = environment(spec, env_name, artifact_root)
    # WHEN it is provisioned
    outcome = up(env, emulator.target(), tmp_path)
    # THEN every resource was created, every smoke check passed, every promise holds
    assert {a.action for a in outcome.actions} == {"created"}
    assert [c for c in outcome.checks if not c.ok] == []
    _check_promises(env, emulator)
    # AND no https subscription URL (a secret) is in what up reports
    reported = json.dumps(outcome.to_json())
    assert not [url for c in env.channels.values() for url in c.https if url in reported]
    if env.protect:
        # AND a protected environment refuses destroy, naming what is protected, deleting nothing
        with pytest.raises(UsageError, match=r"protected resources: .*aws:s3/bucket:Bucket.*Remove `protect: true`"):
            destroy(env, emulator.target(), tmp_path)
        _check_promises(env, emulator)
        return
    # AND destroy removes everything
    gone = destroy(env, emulator.target(), tmp_path)
    assert {a.action for a in gone.actions} == {"deleted"} and len(gone.actions) == len(outcome.actions)
    assert all(c.ok for c in gone.checks)
    _nothing_left(env, emulator)


@pytest.mark.parametrize(("example", "env_name"), CASES)
def test_every_token_an_example_emits_has_a_handler(example: str, env_name: str, artifact_root: Path) -> None:
    spec, _ = EXAMPLES[example]
    graph = render(environment(spec, env_name, artifact_root))
    tokens = {r.type for r in graph.resources}
    assert tokens and tokens <= set(HANDLERS), sorted(tokens - set(HANDLERS))
