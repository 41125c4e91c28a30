"""The monitor job of a model, as rendered: pipeline definition, schedule, roles, objects."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from modelops.components.monitor_job import JOB_NAMESPACES, PIPELINE_FORMAT, job_source
from modelops.components.serving_images import PROCESSING_FRAMEWORK, image_uri, processing_image_uri
from modelops.graph.render import render
from modelops.graph.resource_types import BUCKET_OBJECT, PIPELINE, ROLE, ROLE_POLICY, SAGEMAKER_MODEL, SCHEDULE
from modelops.spec.resolved import Artifact
from modelops.spec.envs import load_environment
from tests.components.helpers import by_name, load, one, statements, tiny_artifact
from tests.helpers import ROOT

PROCESSING_STEP_KEYS = {"ProcessingResources", "AppSpecification", "RoleArn", "ProcessingInputs", "Environment",
                        "StoppingCondition", "NetworkConfig"}
S3_INPUT_KEYS = {"S3Uri", "LocalPath", "S3DataType", "S3InputMode", "S3DataDistributionType", "S3CompressionType"}


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory):
    env = load(ROOT / "modelops.yaml", "dev", tiny_artifact(tmp_path_factory.mktemp("artifact")))
    return env, render(env)


def _policy(graph, role_name: str) -> dict[str, dict]:
    role = by_name(graph, ROLE, role_name)
    policy = one(r for r in graph.by_type(ROLE_POLICY) if r.inputs["role"] == role.inputs["name"])
    return {s["Sid"]: s for s in statements(policy.inputs["policy"])}


def test_the_pipeline_definition_has_a_stats_step_on_n_instances_then_a_merge_step(graph) -> None:
    env, g = graph
    pipeline = by_name(g, PIPELINE, "churn-dev-churn-classifier-monitor", key="pipelineName")
    definition = json.loads(pipeline.inputs["pipelineDefinition"])
    # the SageMaker pipeline definition format: version, steps of type Processing
    assert definition["Version"] == PIPELINE_FORMAT == "2020-12-01"
    stats, merge = definition["Steps"]
    assert (stats["Name"], stats["Type"], merge["Name"], merge["Type"]) == ("stats", "Processing", "merge", "Processing")
    assert merge["DependsOn"] == ["stats"] and "DependsOn" not in stats
    for step in (stats, merge):
        args = step["Arguments"]
        assert PROCESSING_STEP_KEYS <= set(args)
        # AWS's scikit-learn image of the region, at the pinned processing version; the job role
        assert args["AppSpecification"]["ImageUri"] == processing_image_uri("eu-west-1")
        assert args["AppSpecification"]["ContainerEntrypoint"][0] == "python3"
        assert args["RoleArn"].endswith(":role/churn-dev-churn-classifier-mon-job")
        for spec in args["ProcessingInputs"]:
            assert set(spec["S3Input"]) == S3_INPUT_KEYS and spec["S3Input"]["LocalPath"].startswith("/opt/ml/processing/")
    inputs = {i["InputName"]: i["S3Input"] for i in stats["Arguments"]["ProcessingInputs"]}
    # no input mounts the capture: the script lists its window's hour prefixes in the dataset
    # bucket and fetches its share, told its instance by SageMaker's resource config
    assert set(inputs) == {"code", "config", "package", "labels"}
    assert inputs["labels"]["S3Uri"].endswith("/labels/churn-classifier/")
    arguments = stats["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--bucket") + 1] == "churn-dev-customers-123456789012"
    assert arguments[arguments.index("--resource-config") + 1] == "/opt/ml/config/resourceconfig.json"
    # the merge step reads what the stats step wrote for this execution
    (out,) = stats["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert out["S3Output"]["S3Uri"]["Std:Join"]["Values"][1] == {"Get": "Execution.PipelineExecutionId"}
    merged = {i["InputName"]: i["S3Input"] for i in merge["Arguments"]["ProcessingInputs"]}
    assert merged["stats"]["S3Uri"] == {"Get": "Steps.stats.ProcessingOutputConfig.Outputs['stats'].S3Output.S3Uri"}
    # the stats step calls S3 (ListObjectsV2, GetObject); the merge step S3 and CloudWatch
    assert stats["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is False
    assert merge["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is False
    assert merge["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1


def test_the_script_and_config_are_content_addressed_in_the_artifacts_bucket(graph) -> None:
    _, g = graph
    objects = {r.inputs["key"]: r for r in g.by_type(BUCKET_OBJECT)}
    digest = hashlib.sha256(job_source().encode()).hexdigest()
    script = objects[f"monitoring/churn-classifier/monitor_job-sha256-{digest}.py"]
    assert script.inputs["content"] == job_source()
    (config_key,) = [k for k in objects if k.startswith("monitoring/churn-classifier/config-sha256-")]
    config = objects[config_key].inputs["content"]
    assert config_key == f"monitoring/churn-classifier/config-sha256-{hashlib.sha256(config.encode()).hexdigest()}.json"
    monitors = json.loads(config)["monitors"]
    assert [(m["name"], m["metric"], m["threshold"]) for m in monitors] == [("churn-drift", "data_drift", 0.2)]
    # no uploaded file: nothing of the job names a path of this checkout
    assert "source" not in script.inputs and "source" not in objects[config_key].inputs


def test_the_schedule_starts_the_pipeline_with_a_role_that_may_do_only_that(graph) -> None:
    _, g = graph
    schedule = by_name(g, SCHEDULE, "churn-dev-churn-classifier-monitor")
    assert schedule.inputs["scheduleExpression"] == "rate(1 hour)"
    target = schedule.inputs["target"]
    assert target["arn"].endswith(":pipeline/churn-dev-churn-classifier-monitor")
    assert target["roleArn"].endswith(":role/churn-dev-churn-classifier-mon-sched")
    sts = _policy(g, "churn-dev-churn-classifier-mon-sched")
    assert list(sts) == ["StartPipeline"]
    assert sts["StartPipeline"]["Action"] == ["sagemaker:StartPipelineExecution"]
    assert sts["StartPipeline"]["Resource"] == target["arn"]


def test_the_job_role_reads_its_inputs_writes_monitoring_and_puts_only_job_metrics(graph) -> None:
    _, g = graph
    sts = _policy(g, "churn-dev-churn-classifier-mon-job")
    reads = sts["ReadJobInputs"]["Resource"]
    assert any(r.endswith("/capture/churn-classifier/churn-dev-churn-classifier/*") for r in reads)
    assert any(r.endswith("/labels/churn-classifier/*") for r in reads)
    assert any(r.endswith("/model.tar.gz") for r in reads)
    assert sts["WriteResults"]["Resource"].endswith("-customers-123456789012/monitoring/*")
    metrics = sts["PutJobMetrics"]
    assert metrics["Action"] == ["cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": list(JOB_NAMESPACES)}}
    actions = [a for s in sts.values() for a in s["Action"]]
    assert not [a for a in actions if "*" in a]
    pipe = _policy(g, "churn-dev-churn-classifier-mon-pipe")
    assert pipe["PassJobRole"]["Resource"].endswith(":role/churn-dev-churn-classifier-mon-job")


def test_a_model_without_job_monitors_gets_no_job(tmp_path: Path) -> None:
    import dataclasses

    env = load(ROOT / "modelops.yaml", "dev", tiny_artifact(tmp_path / "a"))
    env = dataclasses.replace(env, monitors={k: m for k, m in env.monitors.items() if not m.is_job})
    g = render(env)
    assert not list(g.by_type(PIPELINE)) and not list(g.by_type(SCHEDULE))


def test_a_daily_job_runs_once_a_day_and_its_alarm_period_is_a_day(tmp_path: Path) -> None:
    spec = tmp_path / "modelops.yaml"
    text = (ROOT / "modelops.yaml").read_text()
    assert "    metric: data_drift\n    above: 0.2\n    period: 1h\n    for: 1h\n" in text
    spec.write_text(text.replace("    metric: data_drift\n    above: 0.2\n    period: 1h\n    for: 1h\n",
                                 "    metric: data_drift\n    above: 0.2\n    schedule: daily\n    no_data: alarm\n"))
    import shutil

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    env = load(spec, "dev", tiny_artifact(tmp_path / "a"))
    g = render(env)
    assert one(g.by_type(SCHEDULE)).inputs["scheduleExpression"] == "rate(1 day)"
    alarm = by_name(g, "aws:cloudwatch/metricAlarm:MetricAlarm", "churn-dev-churn-drift")
    assert (alarm.inputs["period"], alarm.inputs["evaluationPeriods"], alarm.inputs["treatMissingData"]) == (86400, 1, "breaching")
    assert load_environment(spec, "dev").monitors["churn-drift"].period_seconds == 86400


def test_the_job_runs_on_the_pinned_image_whatever_the_model_serves_with(tmp_path: Path) -> None:
    # GIVEN a model whose artifact was built for the older 1.2-1 serving image
    tiny = tiny_artifact(tmp_path / "artifact")
    env = load(ROOT / "modelops.yaml", "dev", Artifact(tiny.path, tiny.digest, "1.2-1"))
    # WHEN the environment is rendered
    g = render(env)
    # THEN the endpoint serves on 1.2-1, and the job's steps run on the pinned 1.9-0, whose
    # libraries the job is checked against (tests/ml/test_processing_image.py)
    model = one(r for r in g.by_type(SAGEMAKER_MODEL) if r.inputs["name"].startswith("churn-dev-churn-classifier-"))
    assert model.inputs["primaryContainer"]["image"] == image_uri("eu-west-1", "1.2-1")
    pipeline = by_name(g, PIPELINE, "churn-dev-churn-classifier-monitor", key="pipelineName")
    images = {s["Arguments"]["AppSpecification"]["ImageUri"] for s in json.loads(pipeline.inputs["pipelineDefinition"])["Steps"]}
    assert PROCESSING_FRAMEWORK == "1.9-0" and images == {image_uri("eu-west-1", "1.9-0")}
