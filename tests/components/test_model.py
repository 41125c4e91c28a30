"""Model endpoints: least-privilege role, content-addressed models and configs, variants, scaling."""

from __future__ import annotations

import dataclasses

import pytest

from modelops.components import naming
from modelops.graph.runtime import ProgramError
from modelops.graph.render import render
from tests.components.helpers import (
    CASE_IDS,
    ENDPOINT,
    ENDPOINT_CONFIG,
    EXAMPLE_CASES,
    OBJECT,
    ROLE_POLICY,
    SM_MODEL,
    as_list,
    by_name,
    one,
    replace_model,
    statements,
    load,
    tiny_artifact,
    variants_spec,
)
from modelops.components.model import UnpublishedVersion

from modelops.graph.resource_types import ROLE, SCALING_TARGET as TARGET, SCALING_POLICY as POLICY

#: the one action AWS only authorises on Resource "*"
#: actions without resource-level permissions (a monitor job's PutMetricData is limited by namespace)
STAR_RESOURCE_ACTIONS = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}


@pytest.mark.parametrize("spec,env_name", EXAMPLE_CASES, ids=CASE_IDS)
def test_no_iam_statement_allows_a_wildcard_action_or_s3_star(renders, spec, env_name):
    env, graph = renders.get(spec, env_name)
    policies = graph.by_type(ROLE_POLICY)
    # an execution role per model, and the job, pipeline and scheduler roles of a model's monitor job
    jobs = {m.model for m in env.monitors.values() if m.model is not None and m.is_job}
    assert len(policies) == len(env.models) + 3 * len(jobs)
    for policy in policies:
        for st in statements(policy.inputs["policy"]):
            assert st["Effect"] == "Allow"
            for action in as_list(st["Action"]):
                assert action != "*" and not action.endswith(":*"), (policy.name, st)
            if "*" in as_list(st["Resource"]):
                assert set(as_list(st["Action"])) <= STAR_RESOURCE_ACTIONS, (policy.name, st)


def test_execution_role_is_scoped_to_its_own_prefixes_log_group_image_and_key(renders):
    env, graph = renders.get(*EXAMPLE_CASES[0])
    role = one(r for r in graph.by_type(ROLE) if r.inputs["name"].endswith("-exec"))
    (trust,) = statements(role.inputs["assumeRolePolicy"])
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    sts = {s["Sid"]: s for s in statements(one(p for p in graph.by_type(ROLE_POLICY)
                                               if p.inputs["name"] == "modelops-serving").inputs["policy"])}
    # the registry: exactly the served package's key, and its key only through S3
    digest = env.models["churn-classifier"].artifact.digest
    assert sts["ReadServedPackages"]["Action"] == ["s3:GetObject"]
    assert sts["ReadServedPackages"]["Resource"] == [
        f"arn:aws:s3:::churn-registry-123456789012/{naming.registry_key('churn-classifier', digest)}"]
    assert sts["DecryptServedPackages"]["Action"] == ["kms:Decrypt"]
    assert sts["DecryptServedPackages"]["Resource"].startswith("arn:aws:kms:eu-west-1:123456789012:key/")
    assert sts["DecryptServedPackages"]["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    # and nothing of the environment's artifacts bucket (the monitor job's copy)
    assert not [st for st in sts.values() if "artifacts" in str(st["Resource"])]
    assert sts["WriteDataCapture"]["Resource"] == "arn:aws:s3:::churn-dev-customers-123456789012/capture/churn-classifier/*"
    assert sts["WriteLogs"]["Resource"][0].endswith(":log-group:/aws/sagemaker/Endpoints/churn-dev-churn-classifier")
    assert sts["PullServingImage"]["Resource"] == "arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-scikit-learn"
    key_arn = one(graph.by_type("aws:kms/key:Key")).outputs["arn"]
    assert sts["UseEnvironmentKey"]["Resource"] == key_arn


def test_model_serves_the_registry_package_with_the_matching_image(renders):
    env, graph = renders.get(*EXAMPLE_CASES[0])
    artifact = env.models["churn-classifier"].artifact
    key = naming.artifact_key("churn-classifier", artifact.digest)
    upload = one(r for r in graph.by_type(OBJECT) if r.inputs["key"] == key)
    assert upload.inputs["source"].path == artifact.path
    assert upload.inputs["bucket"] == "churn-dev-artifacts-123456789012"
    model = one(graph.by_type(SM_MODEL))
    container = model.inputs["primaryContainer"]
    assert container["modelDataUrl"] == f"s3://churn-registry-123456789012/{naming.registry_key('churn-classifier', artifact.digest)}"
    assert container["image"] == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
    assert model.inputs["executionRoleArn"] == one(r for r in graph.by_type(ROLE) if r.inputs["name"].endswith("-exec")).outputs["arn"]
    assert model.inputs["name"].startswith("churn-dev-churn-classifier-")


def test_config_name_changes_with_instance_type_and_endpoint_name_does_not(renders):
    env, graph = renders.get(*EXAMPLE_CASES[0])
    bigger = render(replace_model(env, "churn-classifier", instance_type="ml.m5.xlarge"))
    before, after = one(graph.by_type(ENDPOINT_CONFIG)), one(bigger.by_type(ENDPOINT_CONFIG))
    assert before.inputs["name"] != after.inputs["name"]
    assert after.inputs["productionVariants"][0]["instanceType"] == "ml.m5.xlarge"
    assert before.urn == after.urn  # same resource, replaced (create before delete)
    assert not after.delete_before_replace
    assert one(graph.by_type(ENDPOINT)).inputs["name"] == one(bigger.by_type(ENDPOINT)).inputs["name"] == "churn-dev-churn-classifier"
    assert one(bigger.by_type(ENDPOINT)).inputs["endpointConfigName"] == after.inputs["name"]
    # and the SageMaker model, which did not change, keeps its name
    assert one(graph.by_type(SM_MODEL)).inputs["name"] == one(bigger.by_type(SM_MODEL)).inputs["name"]


def test_a_new_artifact_renames_the_model_and_the_config(renders, tmp_path):
    env, graph = renders.get(*EXAMPLE_CASES[0])
    other = tiny_artifact(tmp_path, b"retrained")
    retrained = dataclasses.replace(env, models={k: dataclasses.replace(m, artifact=other) for k, m in env.models.items()})
    again = render(retrained)
    assert one(again.by_type(SM_MODEL)).inputs["name"] != one(graph.by_type(SM_MODEL)).inputs["name"]
    assert one(again.by_type(ENDPOINT_CONFIG)).inputs["name"] != one(graph.by_type(ENDPOINT_CONFIG)).inputs["name"]


@pytest.mark.parametrize("spec,env_name", EXAMPLE_CASES, ids=CASE_IDS)
def test_autoscaling_bounds_are_as_declared(renders, spec, env_name):
    env, graph = renders.get(spec, env_name)
    scaled = {n: m for n, m in env.models.items() if m.serving.autoscaling and not m.serving.serverless}
    targets = graph.by_type(TARGET)
    assert len(targets) == len(scaled) == len(graph.by_type(POLICY))
    for name, model in scaled.items():
        endpoint = naming.endpoint_name(env.project, env.env, name)
        target = by_name(graph, TARGET, f"endpoint/{endpoint}/variant/primary", key="resourceId")
        assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (model.serving.autoscaling.min, model.serving.autoscaling.max)
        assert target.inputs["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
        policy = one(p for p in graph.by_type(POLICY) if p.inputs["resourceId"] == target.inputs["resourceId"])
        tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
        assert tracking["targetValue"] == model.serving.autoscaling.target_invocations
        assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
        # the target waits for the endpoint: its variant must exist to be registered
        endpoint_urn = by_name(graph, ENDPOINT, endpoint).urn
        assert endpoint_urn in target.dependencies
        config = by_name(graph, ENDPOINT_CONFIG, by_name(graph, ENDPOINT, endpoint).inputs["endpointConfigName"])
        count = config.inputs["productionVariants"][0]["initialInstanceCount"]
        assert model.serving.autoscaling.min <= count <= model.serving.autoscaling.max


@pytest.mark.parametrize("spec,env_name", EXAMPLE_CASES, ids=CASE_IDS)
def test_endpoint_rolls_back_on_its_own_alarms_and_captures_encrypted(renders, spec, env_name):
    env, graph = renders.get(spec, env_name)
    alarm_names = {a.inputs["name"] for a in graph.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    key_arn = one(graph.by_type("aws:kms/key:Key")).outputs["arn"]
    for name, model in env.models.items():
        endpoint = by_name(graph, ENDPOINT, naming.endpoint_name(env.project, env.env, name))
        deploy = endpoint.inputs["deploymentConfig"]
        routing = deploy["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
        assert routing["type"] == model.serving.rollout.mode.upper()
        assert routing["waitIntervalInSeconds"] == model.serving.rollout.wait_seconds
        rollback = {a["alarmName"] for a in deploy["autoRollbackConfiguration"]["alarms"]}
        own = {naming.alarm_name(env.project, env.env, m.name) for m in env.monitors.values() if m.model == name and m.metric.startswith(("latency", "error"))}
        assert own and own <= rollback <= alarm_names
        config = by_name(graph, ENDPOINT_CONFIG, endpoint.inputs["endpointConfigName"])
        if model.serving.serverless:
            assert "dataCaptureConfig" not in config.inputs and "kmsKeyArn" not in config.inputs
        else:
            capture = config.inputs["dataCaptureConfig"]
            bucket = naming.bucket_name(env.project, env.env, model.dataset, "123456789012")
            assert capture["destinationS3Uri"] == f"s3://{bucket}/capture/{name}"
            assert capture["kmsKeyId"] == key_arn and config.inputs["kmsKeyArn"] == key_arn


def test_the_example_prod_canaries_a_new_version_on_one_of_its_two_instances(renders):
    # GIVEN the example's prod overlay: `rollout: {mode: canary, percent: 50, wait: 15m}`
    env, graph = renders.get("modelops.yaml", "prod")
    endpoint = by_name(graph, ENDPOINT, naming.endpoint_name(env.project, env.env, "churn-classifier"))
    policy = endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    # THEN half the new fleet takes traffic first, bakes 15m, then the rest does; the old fleet
    # stays 10m more, and the deadline covers both waits, the bake and 30m of provisioning
    assert policy["trafficRoutingConfiguration"] == {
        "type": "CANARY", "waitIntervalInSeconds": 900, "canarySize": {"type": "CAPACITY_PERCENT", "value": 50}}
    assert policy["terminationWaitInSeconds"] == 600
    assert policy["maximumExecutionTimeoutInSeconds"] == 2 * 900 + 600 + 1800
    # AND dev keeps today's all-at-once shift, with no deadline of its own
    dev_env, dev = renders.get("modelops.yaml", "dev")
    dev_policy = by_name(dev, ENDPOINT, naming.endpoint_name(dev_env.project, "dev", "churn-classifier")).inputs[
        "deploymentConfig"]["blueGreenUpdatePolicy"]
    assert dev_policy == {"trafficRoutingConfiguration": {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 600},
                          "terminationWaitInSeconds": 600}


@pytest.mark.parametrize(("mode", "percent", "wait", "size_key", "deadline"), [
    ("linear", 25, 600, "linearStepSize", 4 * 600 + 600 + 1800),
    ("linear", 10, 2400, "linearStepSize", 10 * 2400 + 600 + 1800),  # 7h20m: within the 8h deadline
    ("canary", 10, 300, "canarySize", 2 * 300 + 600 + 1800),
])
def test_stepped_rollouts_render_their_step_and_deadline_and_keep_the_rollback_alarms(renders, mode, percent, wait,
                                                                                     size_key, deadline):
    from modelops.spec.resolved import Rollout

    env, graph = renders.get("modelops.yaml", "prod")
    name = naming.endpoint_name(env.project, env.env, "churn-classifier")
    alarms = by_name(graph, ENDPOINT, name).inputs["deploymentConfig"]["autoRollbackConfiguration"]
    stepped = render(replace_model(env, "churn-classifier", rollout=Rollout(mode, percent, wait)))
    deploy = by_name(stepped, ENDPOINT, name).inputs["deploymentConfig"]
    routing = deploy["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
    assert routing == {"type": mode.upper(), "waitIntervalInSeconds": wait,
                       size_key: {"type": "CAPACITY_PERCENT", "value": percent}}
    assert deploy["blueGreenUpdatePolicy"]["maximumExecutionTimeoutInSeconds"] == deadline
    # the rollout changes how traffic moves, not what rolls it back
    assert deploy["autoRollbackConfiguration"] == alarms and alarms["alarms"]


def _config(graph, model):
    return by_name(graph, ENDPOINT_CONFIG, by_name(graph, ENDPOINT, f"variants-dev-{model}").inputs["endpointConfigName"])


def test_canary_and_shadow_are_variants_of_their_own_models_without_uploads(variants):
    # GIVEN the ranker with a canary and the reranker with a shadow (SageMaker allows a shadow
    # only beside exactly one production variant, so never both on one endpoint)
    env, graph = variants
    config = _config(graph, "ranker")
    production = {v["variantName"]: v for v in config.inputs["productionVariants"]}
    assert production["primary"]["initialVariantWeight"] == pytest.approx(0.8)
    assert production["canary"]["initialVariantWeight"] == pytest.approx(0.2)
    assert production["primary"]["initialInstanceCount"] == 2 and production["primary"]["instanceType"] == "ml.c5.xlarge"
    assert "shadowProductionVariants" not in config.inputs
    shadowed = _config(graph, "reranker")
    assert [v["variantName"] for v in shadowed.inputs["productionVariants"]] == ["primary"]
    (shadow,) = shadowed.inputs["shadowProductionVariants"]
    assert shadow["variantName"] == "shadow" and shadow["initialVariantWeight"] == pytest.approx(0.5)
    models = {m.inputs["name"]: m for m in graph.by_type(SM_MODEL)}
    for model, served_by, digest in (("ranker", production["canary"], "1" * 64), ("reranker", shadow, "2" * 64)):
        served = models[served_by["modelName"]]
        assert served.inputs["primaryContainer"]["modelDataUrl"].endswith(f"models/{model}/{digest}/model.tar.gz")
    uploads = [o.inputs["key"] for o in graph.by_type(OBJECT)]
    assert not any(("1" * 64) in k or ("2" * 64) in k for k in uploads)
    assert config.inputs["dataCaptureConfig"]["initialSamplingPercentage"] == 20
    # sse-s3: no key anywhere in the endpoint configuration
    assert "kmsKeyArn" not in config.inputs and "kmsKeyId" not in config.inputs["dataCaptureConfig"]


@pytest.mark.parametrize(("primary", "canary"), [(2, 2), (5, 2), (1, 1)])
def test_a_canary_runs_the_primarys_instances_up_to_two(variants, primary, canary):
    # GIVEN the ranker (canary) and the reranker (shadow) serving on `primary` instances, no autoscaling
    env, _ = variants
    env = replace_model(env, "ranker", instance_count=primary, autoscaling=None)
    graph = render(replace_model(env, "reranker", instance_count=primary))
    # WHEN their endpoint configurations are rendered
    counts = {v["variantName"]: v["initialInstanceCount"] for v in _config(graph, "ranker").inputs["productionVariants"]}
    # THEN the canary, a production variant serving live traffic, survives one failure when the
    # primary does (SageMaker.4 holds for every production variant); the shadow runs one instance
    assert counts == {"primary": primary, "canary": canary}
    assert [s["initialInstanceCount"] for s in _config(graph, "reranker").inputs["shadowProductionVariants"]] == [1]


def test_serverless_model_has_serverless_variant_and_no_capture_grant(variants):
    env, graph = variants
    config = by_name(graph, ENDPOINT_CONFIG, by_name(graph, ENDPOINT, "variants-dev-scorer").inputs["endpointConfigName"])
    (variant,) = config.inputs["productionVariants"]
    assert variant["serverlessConfig"] == {"memorySizeInMb": 3072, "maxConcurrency": 4}
    assert "instanceType" not in variant
    role_policy = one(p for p in graph.by_type(ROLE_POLICY) if "scorer" in p.name)
    assert "WriteDataCapture" not in {s["Sid"] for s in statements(role_policy.inputs["policy"])}


def test_a_model_without_artifact_is_refused_with_a_clear_message(renders):
    env, _ = renders.get(*EXAMPLE_CASES[0])
    bare = dataclasses.replace(env, models={k: dataclasses.replace(m, artifact=None) for k, m in env.models.items()})
    with pytest.raises(ProgramError) as info:
        render(bare)
    assert isinstance(info.value.__cause__, ValueError) or "has no artifact" in str(info.value)
    assert "model 'churn-classifier' has no artifact" in str(info.value)


CANARY = "sha256:" + "1" * 64
SHADOW = "sha256:" + "2" * 64


def _registry_reads(graph, model: str) -> set[str]:
    policy = one(p for p in graph.by_type(ROLE_POLICY)
                 if p.inputs["name"] == "modelops-serving" and f"-model-{model}-" in p.name)
    (read,) = [st for st in statements(policy.inputs["policy"]) if st["Sid"] == "ReadServedPackages"]
    return set(as_list(read["Resource"]))


def test_canary_and_shadow_models_read_their_registry_keys_and_the_role_exactly_those(tmp_path):
    # GIVEN the variants fixture: ranker with a canary, reranker with a shadow
    env = load(variants_spec(tmp_path), "dev", tiny_artifact(tmp_path / "a"))
    primary = env.models["ranker"].artifact.digest
    # WHEN it is rendered
    graph = render(env)
    # THEN every variant's model reads its version out of the registry
    bucket = f"s3://{env.project}-registry-123456789012"
    ranker = sorted(r.inputs["primaryContainer"]["modelDataUrl"] for r in graph.by_type(SM_MODEL) if "-model-ranker-" in r.name)
    assert ranker == sorted([f"{bucket}/{naming.registry_key('ranker', primary)}", f"{bucket}/{naming.registry_key('ranker', CANARY)}"])
    # AND each role may read exactly the keys its endpoint serves
    arn = f"arn:aws:s3:::{env.project}-registry-123456789012/"
    assert _registry_reads(graph, "ranker") == {arn + naming.registry_key("ranker", primary), arn + naming.registry_key("ranker", CANARY)}
    assert _registry_reads(graph, "reranker") == {arn + naming.registry_key("reranker", primary),
                                                  arn + naming.registry_key("reranker", SHADOW)}


def test_a_canary_the_registry_does_not_hold_fails_the_render_naming_model_variant_and_digest(tmp_path):
    # GIVEN the variants fixture and a registry that holds every version but ranker's canary
    env = load(variants_spec(tmp_path), "dev", tiny_artifact(tmp_path / "a"))
    asked: list[tuple[str, str]] = []

    def registry(bucket: str, key: str) -> bool:
        asked.append((bucket, key))
        return key != naming.registry_key("ranker", CANARY)

    # WHEN it is rendered against that registry THEN the program's lookup stops it, with our message
    with pytest.raises(ProgramError) as raised:
        render(env, registry=registry)
    cause = raised.value.__cause__
    while cause is not None and not isinstance(cause, UnpublishedVersion):
        cause = cause.__cause__ or cause.__context__
    assert isinstance(cause, UnpublishedVersion)
    assert (cause.model, cause.variant, cause.digest) == ("ranker", "canary", CANARY)
    assert str(cause) == (f"models.ranker.serving.canary.version: ranker canary version {CANARY} is not in the registry "
                          f"(s3://{env.project}-registry-123456789012/{naming.registry_key('ranker', CANARY)}); publish it "
                          "(`modelops publish ranker` on the commit that built it) or pin a published version")
    # AND the lookup asked the registry bucket for that exact key
    assert (f"{env.project}-registry-123456789012", naming.registry_key("ranker", CANARY)) in asked
