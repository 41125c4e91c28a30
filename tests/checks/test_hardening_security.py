"""Security controls (AWS FSBP-mapped) over the rendered graph of every example environment.

Every example passes every control by default; each control fails when the resource it
guards is weakened (the graph is mutated after rendering, as a broken component would),
and `modelops security` exits 3 on a mandatory failure.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import pytest

from modelops.graph.cache import render_graph
from modelops.ml.placeholders import attach_without_training
from modelops.spec.envs import list_environments, load_environment
from modelops.graph.runtime import Registration
from modelops.checks.security import CONTROLS, evaluate_graph
from tests.helpers import ROOT
from tests.spec.helpers import run_cli

EXAMPLES = [ROOT / "modelops.yaml", ROOT / "examples" / "fraud" / "modelops.yaml"]
CASES = [(spec, env) for spec in EXAMPLES for env in list_environments(spec)]
FRAUD = ROOT / "examples" / "fraud" / "modelops.yaml"
_GRAPHS: dict[tuple[str, str], tuple] = {}


def _rendered(spec: Path, env_name: str):
    key = (str(spec), env_name)
    if key not in _GRAPHS:
        env = load_environment(spec, env_name)
        with tempfile.TemporaryDirectory() as tmp:
            attached, _ = attach_without_training(env, spec.parent, Path(tmp))
            graph = render_graph(attached, Path(tmp) / "cache")
        _GRAPHS[key] = (attached, graph)
    return _GRAPHS[key]


def _mutate(graph: list[Registration], type_: str, change: Callable[[dict], dict], first_only: bool = True):
    out, done = [], False
    for reg in graph:
        if reg.type == type_ and not (first_only and done):
            reg = dataclasses.replace(reg, inputs=change(dict(reg.inputs)))
            done = True
        out.append(reg)
    assert done, type_
    return out


def _policy(doc: dict) -> str:
    return json.dumps(doc)


@pytest.mark.parametrize(("spec", "env"), CASES, ids=[f"{s.parent.name}-{e}" for s, e in CASES])
def test_every_example_environment_passes_every_control(spec, env):
    attached, graph = _rendered(spec, env)
    report = evaluate_graph(attached, graph)
    assert [r.control.id for r in report.results] == [c.id for c in CONTROLS]
    failing = {r.control.id: r.failures for r in report.results if r.failures}
    assert failing == {}
    # AND each applicable control was evaluated on real resources (a control over nothing proves nothing)
    assert all(r.resources >= 1 for r in report.results), [(r.control.id, r.resources) for r in report.results]


MUTATIONS = {
    "S3.8": ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", lambda i: {**i, "restrictPublicBuckets": False}),
    "S3.5": ("aws:s3/bucketPolicy:BucketPolicy", lambda i: {**i, "policy": _policy({"Version": "2012-10-17", "Statement": []})}),
    "s3-encryption": ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                      lambda i: {**i, "rules": []}),
    "S3.17": ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
              lambda i: {**i, "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}),
    "S3.14": ("aws:s3/bucketVersioning:BucketVersioning", lambda i: {**i, "versioningConfiguration": {"status": "Suspended"}}),
    "S3.13": ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
              lambda i: {**i, "rules": [{**r, "status": "Disabled"} for r in i["rules"]]}),
    "endpoint-kms": ("aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                     lambda i: {k: v for k, v in i.items() if k != "kmsKeyArn"}),
    "SageMaker.4": ("aws:sagemaker/endpointConfiguration:EndpointConfiguration", None),
    "SageMaker.5": ("aws:sagemaker/model:Model", lambda i: {**i, "enableNetworkIsolation": False}),
    "SNS.1": ("aws:sns/topic:Topic", lambda i: {k: v for k, v in i.items() if k != "kmsMasterKeyId"}),
    "KMS.4": ("aws:kms/key:Key", lambda i: {**i, "enableKeyRotation": False}),
    "iam-no-wildcard": ("aws:iam/rolePolicy:RolePolicy", lambda i: {**i, "policy": _policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})}),
    "iam-trust": ("aws:iam/role:Role", lambda i: {**i, "assumeRolePolicy": _policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})}),
}


def test_every_control_has_a_failing_case():
    assert set(MUTATIONS) == {c.id for c in CONTROLS}


@pytest.mark.parametrize("control", sorted(MUTATIONS))
def test_each_control_fails_on_the_resource_it_guards(control):
    # GIVEN fraud prod with one resource weakened
    attached, graph = _rendered(FRAUD, "prod")
    type_, change = MUTATIONS[control]
    if change is None:  # SageMaker.4 reads the environment: one instance in production
        model = next(n for n, m in attached.models.items() if m.serving.serverless is None)
        serving = dataclasses.replace(attached.models[model].serving, instance_count=1, autoscaling=None)
        models = {**attached.models, model: dataclasses.replace(attached.models[model], serving=serving)}
        attached, mutated = dataclasses.replace(attached, models=models), graph
    else:
        mutated = _mutate(graph, type_, change)
    # WHEN evaluated
    report = evaluate_graph(attached, mutated)
    # THEN exactly that control fails, on exactly one resource of its type
    failing = {r.control.id: r for r in report.results if r.failures}
    assert control in failing, {k: v.failures for k, v in failing.items()}
    row = failing[control].to_dict()
    assert row["failed"] == 1 and row["passed"] == row["resources"] - 1 and row["status"] == "fail"
    others = set(failing) - {control}
    # S3.17 (KMS) implies a default encryption rule exists: removing every rule fails both
    assert others <= ({"S3.17"} if control == "s3-encryption" else set()), others


def test_a_spec_level_downgrade_makes_the_control_advisory_not_passing():
    attached, graph = _rendered(FRAUD, "prod")
    relaxed = dataclasses.replace(attached, policies={**(attached.policies or {}), "endpoint-encrypted": "advisory"})
    mutated = _mutate(graph, *MUTATIONS["endpoint-kms"])
    report = evaluate_graph(relaxed, mutated)
    [row] = [r for r in report.results if r.control.id == "endpoint-kms"]
    assert row.failures and row.level == "advisory"
    assert not report.failed_mandatory()


def test_cli_reports_every_environment_and_exits_0():
    result = run_cli("security", "examples/fraud/modelops.yaml", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True
    assert [e["env"] for e in report["environments"]] == ["dev", "prod"]
    prod = {c["control"]: c for c in report["environments"][1]["controls"]}
    assert prod["SageMaker.4"]["status"] == "pass" and prod["SageMaker.4"]["resources"] == 2
    assert prod["KMS.4"] == {**prod["KMS.4"], "resources": 1, "passed": 1, "failed": 0, "status": "pass"}
    text = run_cli("security", "--env", "dev")
    assert text.returncode == 0 and text.stdout.startswith("churn-dev: 13 controls, 12 pass, 1 n/a, 0 fail")


def test_cli_exits_3_when_a_mandatory_control_fails(tmp_path):
    # GIVEN a copy of fraud whose prod overlay runs its instance-backed model on one instance
    project = tmp_path / "fraud"
    shutil.copytree(FRAUD.parent, project, ignore=shutil.ignore_patterns(".modelops"))
    prod = project / "stacks" / "prod.yaml"
    text = prod.read_text()
    assert "instance_count: 2" in text
    prod.write_text(text.replace("instance_count: 2", "instance_count: 1"))
    # WHEN checked
    result = run_cli("security", str(project / "modelops.yaml"), "--env", "prod", cwd=tmp_path)
    # THEN exit 3, the failing control and resource named, one error line, no traceback
    assert result.returncode == 3, result.stderr
    assert "fail  SageMaker.4" in result.stdout and "1/2 endpoint configs" in result.stdout
    assert result.stderr.strip().startswith("error: mandatory security controls failed: SageMaker.4 (prod)")
    assert "Traceback" not in result.stderr


def test_cli_on_an_invalid_spec_exits_2():
    result = run_cli("security", "tests/fixtures/specs/invalid/dangling-notify.yaml")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "dangling-notify.yaml:" in result.stderr
