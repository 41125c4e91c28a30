"""The whole environment: the program in stacks/, its outputs, previews, and `modelops plan`."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest
import yaml

from modelops.components.environment import OUTPUTS, EnvironmentArgs, ModelOpsEnvironment
from modelops.ml.artifacts import attach_artifacts
from modelops.cli.plan import plan_graph, summarize
from modelops.spec.envs import load_environment
from modelops.errors import ModelOpsError, UsageError
from modelops.graph.render import RenderBackend, render
from modelops.graph.runtime import ProgramError, run
from modelops.graph.split import render_stack
from modelops.graph.stacks import layout
from tests.components.helpers import CASE_IDS, EXAMPLE_CASES, variants_spec
from tests.helpers import FIXTURES, ROOT

STACK_PROGRAM = ROOT / "stacks" / "__main__.py"
INVALID = FIXTURES / "components" / "invalid" / "modelops.yaml"
CLI = [sys.executable, "-m", "modelops"]


@pytest.fixture(scope="module")
def built():
    """The examples' models, built once into their specs' artifact stores (cached across runs)."""
    for spec, env_name in EXAMPLE_CASES:
        attach_artifacts(load_environment(spec, env_name), build=True)


def shared_outputs(spec: Path, env_name: str) -> dict[str, dict]:
    """What a group stack's reference to the shared stack reads: the shared stack's outputs."""
    env = attach_artifacts(load_environment(spec, env_name), build=False)
    lay = layout(env)
    return {lay.shared.name: render_stack(env, lay, lay.shared.name)[1]}


def run_stack(monkeypatch, config: dict[str, str], stack: str, project: str = "modelops",
              references: dict[str, dict] | None = None):
    """Run stacks/__main__.py exactly as the engine would, with ``config`` as the stack config."""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    return run(lambda: runpy.run_path(str(STACK_PROGRAM), run_name="__main__"), RenderBackend(), project=project,
               stack=stack, references=references)


@pytest.mark.parametrize("env_name", ["dev", "staging", "prod"])
def test_stack_program_runs_for_each_stack_config(built, monkeypatch, env_name):
    # GIVEN the stack configs the Pulumi CLI would pass (stacks/Pulumi.<stack>.yaml): the
    # environment's shared stack and its one group stack
    env = load_environment(ROOT / "modelops.yaml", env_name)
    shared_config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{env_name}.yaml").read_text())["config"]
    group = f"{env_name}.ml-platform"
    group_config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{group}.yaml").read_text())["config"]
    # WHEN the program runs under the mock engine for each, the group reading the shared outputs
    shared = run_stack(monkeypatch, shared_config, env_name)
    regs = run_stack(monkeypatch, group_config, group, references=shared_outputs(ROOT / "modelops.yaml", env_name))
    # THEN the shared stack holds the key, the artifact bucket and the topics, the group the endpoints
    assert {r.type for r in shared} >= {"aws:kms/key:Key", "aws:sns/topic:Topic", "aws:glue/catalogDatabase:CatalogDatabase"}
    assert not [r for r in shared if r.type == "aws:sagemaker/endpoint:Endpoint"]
    assert not [r for r in regs if r.type in ("aws:kms/key:Key", "aws:sns/topic:Topic")]
    endpoints = [r.inputs["name"] for r in regs if r.type == "aws:sagemaker/endpoint:Endpoint"]
    assert endpoints == [f"churn-{env_name}-{m}" for m in env.models]
    buckets = [r for r in shared + regs if r.type == "aws:s3/bucket:Bucket"]
    assert len(buckets) == 2 and all(b.protect is env.protect for b in buckets)
    # the model's artifact goes to the shared stack's bucket, read through the reference
    artifact = next(r for r in regs if r.type == "aws:s3/bucketObjectv2:BucketObjectv2" and "-model-" in r.name)
    assert artifact.inputs["bucket"] == f"churn-{env_name}-artifacts-123456789012"
    assert any(r.type == "modelops:index:Environment" and r.name == f"churn-{env_name}" for r in regs)


def test_stack_program_defaults_the_environment_to_the_stack_name(built, monkeypatch):
    fraud = ROOT / "examples" / "fraud" / "modelops.yaml"
    regs = run_stack(monkeypatch, {"modelops:spec": str(fraud)}, "prod.risk-ml",
                     references=shared_outputs(fraud, "prod"))
    names = sorted(r.inputs["name"] for r in regs if r.type == "aws:sagemaker/endpoint:Endpoint")
    assert names == ["fraud-prod-fraud-amount", "fraud-prod-fraud-scorer"]


def test_a_group_stack_before_its_shared_stack_is_deployed_is_refused(built):
    env = attach_artifacts(load_environment(ROOT / "modelops.yaml", "dev"), build=False)
    with pytest.raises(UsageError, match=r"stack dev.ml-platform reads the outputs of stack dev, which has none yet: "
                                         r"deploy dev first"):
        render_stack(env, layout(env), "dev.ml-platform", references={})


def test_stack_program_stops_on_an_invalid_spec_with_the_validate_message(monkeypatch):
    with pytest.raises(ProgramError) as info:
        run_stack(monkeypatch, {"modelops:spec": str(INVALID), "modelops:environment": "dev"}, "dev")
    cause = info.value.__cause__
    while cause is not None and not isinstance(cause, pulumi.RunError):
        cause = cause.__cause__ or cause.__context__
    assert isinstance(cause, pulumi.RunError)
    with pytest.raises(ModelOpsError) as expected:
        load_environment(INVALID, "dev")
    assert str(cause) == str(expected.value)
    assert "models.ranker.serving.instance_cout: unknown key; did you mean 'instance_count'?" in str(cause)


def test_program_exports_every_documented_output(renders):
    env, _ = renders.get(*EXAMPLE_CASES[0])
    captured: dict = {}

    def program() -> None:
        root = ModelOpsEnvironment("churn-dev", EnvironmentArgs(env=env))
        outputs = root.stack_outputs()
        assert set(outputs) == set(OUTPUTS)  # the exported names are the documented contract
        pulumi.Output.all(**outputs).apply(captured.update)

    run(program, RenderBackend(region=env.region), project="churn", stack="dev")
    assert all(OUTPUTS[k].endswith(".") and len(OUTPUTS[k]) > 20 for k in OUTPUTS)
    assert captured["artifactsBucket"] == "churn-dev-artifacts-123456789012"
    assert captured["datasetBuckets"] == {"customers": "churn-dev-customers-123456789012"}
    assert captured["endpointNames"] == {"churn-classifier": "churn-dev-churn-classifier"}
    assert captured["topicArns"] == {"oncall": "arn:aws:sns:eu-west-1:123456789012:churn-dev-oncall"}
    assert set(captured["alarmNames"]) == set(env.monitors)
    assert captured["kmsKeyArn"].startswith("arn:aws:kms:eu-west-1:123456789012:key/")
    assert captured["glueDatabase"] == "churn_dev" and captured["dashboardName"] == "churn-dev"


@pytest.mark.parametrize("spec,env_name", EXAMPLE_CASES, ids=CASE_IDS)
def test_every_taggable_resource_carries_the_environment_tags(renders, spec, env_name):
    env, graph = renders.get(spec, env_name)
    tagged = [r for r in graph.resources if "tags" in r.inputs]
    assert len(tagged) >= 10
    for reg in tagged:
        assert reg.inputs["tags"] == env.all_tags(), reg.urn
    for type_ in ("aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:sagemaker/endpoint:Endpoint", "aws:sns/topic:Topic",
                  "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:iam/role:Role", "aws:glue/catalogDatabase:CatalogDatabase"):
        assert all("tags" in r.inputs for r in graph.by_type(type_)), type_


def test_render_is_deterministic_and_groups_by_entity(renders):
    env, graph = renders.get(*EXAMPLE_CASES[0])
    again = render(env)
    assert json.dumps(again.to_json(), sort_keys=True) == json.dumps(graph.to_json(), sort_keys=True)
    assert [r.urn for r in graph.registrations] == sorted(r.urn for r in graph.registrations)
    groups = graph.by_entity()
    assert list(groups)[:2] == [("dataset", "customers"), ("model", "churn-classifier")]
    assert {k for k in groups if k[0] == "monitor"} == {("monitor", m) for m in env.monitors}
    model_types = {r.type for r in groups[("model", "churn-classifier")]}
    assert "aws:sagemaker/endpoint:Endpoint" in model_types and "aws:s3/bucket:Bucket" not in model_types
    assert sum(len(v) for v in groups.values()) == len(graph.resources)


def test_preview_renders_the_same_resources(renders):
    env, graph = renders.get(*EXAMPLE_CASES[3])
    preview = render(env, preview=True)
    assert preview.preview is True
    assert [r.urn for r in preview.registrations] == [r.urn for r in graph.registrations]
    assert preview.counts() == graph.counts()


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_plan_cli_json_is_the_whole_graph_without_secrets(built):
    done = _cli("plan", "examples/fraud/modelops.yaml", "--env", "dev", "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads(done.stdout)
    assert data["project"] == "fraud" and data["stack"] == "dev"
    resource = data["resources"][0]
    assert set(resource) >= {"type", "name", "urn", "parent", "dependencies", "inputs", "options"}
    assert data["counts"]["aws:sagemaker/endpoint:Endpoint"] == 2
    assert "hooks.example.com" not in done.stdout
    assert data["cost"] is None or data["cost"]["total_monthly"] > 0


def test_plan_human_tree(built):
    # in-process: the subprocess path is covered above, and every CLI start re-imports pulumi_aws
    out = summarize(plan_graph(ROOT / "modelops.yaml", "prod", build=False))
    assert out.startswith("Plan for churn/prod:")
    assert "model churn-classifier" in out and "dataset customers" in out and "monitor churn-latency" in out
    assert "ml.m5.large x2" in out and "protected" in out and "threshold=250000" in out
    assert "Resources by type:" in out


def test_plan_names_every_resource_its_total_leaves_out(tmp_path):
    # GIVEN a model served on a real instance type the price file has no us-west-2 price for
    spec = variants_spec(tmp_path)
    text = spec.read_text().replace("instance_type: ml.c5.xlarge", "instance_type: ml.r5.large")
    # (without the fixture's canary and shadow pins: plan refuses versions the registry does
    # not hold, tests/registry/test_unpublished.py)
    text = re.sub(r"\n *(canary|shadow): \{version: [^\n]*", "", text)
    spec.write_text(text)
    # WHEN it is planned
    graph = plan_graph(spec, "dev", build=False)
    out = summarize(graph)
    # THEN the total says it leaves resources out, and each one is listed with its reason
    unpriced = graph.cost["unpriced"]
    assert any("ml.r5.large" in item["reason"] for item in unpriced)
    assert f"not counting {len(unpriced)} unpriced resource(s):" in out
    for item in unpriced:
        assert f"  ? {item['name']}: {item['reason']}" in out


def test_plan_cli_invalid_spec_exits_2_with_one_line_per_problem():
    done = _cli("plan", str(INVALID), "--env", "dev")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert "instance_cout: unknown key; did you mean 'instance_count'?" in done.stderr
