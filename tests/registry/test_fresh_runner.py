"""Acceptance: what one working copy builds and publishes, a fresh clone deploys from the registry alone.

The emulator stands for the AWS account: working copy A builds, publishes and promotes
dev -> staging -> prod (every gate evaluated), then tears its environments down; a fresh
clone B, with no ``.modelops/``, runs ``up`` of staging and prod without building.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import Emulator
from tests.local.helpers import copy_project
from tests.registry.helpers import git, modelops

pytestmark = [pytest.mark.aws, pytest.mark.slow]

MODEL = "churn-classifier"


def test_staging_and_prod_deploy_in_a_fresh_clone_from_the_registry_alone(emulator: Emulator, tmp_path: Path) -> None:
    where = ["--endpoint-url", emulator.url]

    def run(cwd: Path, *args: str) -> str:
        result = modelops(*args, *where, cwd=cwd, ca_bundle=emulator.ca_bundle)
        assert result.returncode == 0, f"modelops {' '.join(args)}: {result.stderr}"
        assert "Traceback" not in result.stderr
        return result.stdout

    # GIVEN working copy A of the churn example, a git repository; soaks are the target's
    # requirement (24h by default), shortened here so that the gates can pass within the test
    a = copy_project("churn", tmp_path / "a").parent
    spec = a / "modelops.yaml"
    spec.write_text(spec.read_text().replace('      roc_auc: ">= 0.85"\n', '      roc_auc: ">= 0.85"\n    soak: 0s\n'))
    git(a, "init", "-q")
    git(a, "add", "-A")
    git(a, "commit", "-qm", "churn")
    # WHEN A builds and publishes (no build builds anything after this)
    build = modelops("build", MODEL, "--json", cwd=a)
    assert build.returncode == 0, build.stderr
    digest = json.loads(build.stdout)["digest"]
    run(a, "publish", MODEL)
    # AND promotes dev -> staging -> prod with every gate, committing each pin
    run(a, "up", "--env", "dev")
    run(a, "promote", MODEL, "--from", "dev", "--to", "staging")
    git(a, "commit", "-qam", "pin staging")
    run(a, "up", "--env", "staging")
    run(a, "promote", MODEL, "--from", "staging", "--to", "prod")
    git(a, "commit", "-qam", "pin prod")
    # AND A's staging is destroyed (B's state knows nothing of it: in AWS, the Pulumi backend would)
    run(a, "destroy", "--env", "staging")

    # WHEN a fresh clone B, with no .modelops/, deploys staging and prod
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(a), str(b))
    assert not (b / ".modelops").exists()
    assert f'version: "{digest}"' in (b / "stacks" / "prod.yaml").read_text()
    errors = {}
    for env in ("staging", "prod"):
        result = modelops("up", "--env", env, *where, "--json", cwd=b, ca_bundle=emulator.ca_bundle)
        # THEN each succeeds, every smoke check passing, from the package the registry held
        assert result.returncode == 0, result.stderr
        outcome = json.loads(result.stdout)
        assert all(c["ok"] for c in outcome["checks"]) and outcome["counts"].get("created")
        errors[env] = result.stderr
    assert f"copied {MODEL} {digest} out of the registry (s3://churn-registry-123456789012/" in errors["staging"]
    assert "copied" not in errors["prod"]  # staging's copy, checked, serves prod too
    # AND every SageMaker model serves the registry's object, which its role may read, and nothing else there
    package = f"churn-registry-123456789012/models/{MODEL}/{digest.removeprefix('sha256:')}/model.tar.gz"
    sm, iam = emulator.client("sagemaker", "eu-west-1"), emulator.client("iam", "eu-west-1")
    for env in ("staging", "prod"):
        config = sm.describe_endpoint_config(EndpointConfigName=sm.describe_endpoint(
            EndpointName=f"churn-{env}-{MODEL}")["EndpointConfigName"])
        for variant in config["ProductionVariants"]:
            described = sm.describe_model(ModelName=variant["ModelName"])
            assert described["PrimaryContainer"]["ModelDataUrl"] == f"s3://{package}"
            role = described["ExecutionRoleArn"].rsplit("/", 1)[1]
            policy = iam.get_role_policy(RoleName=role, PolicyName="modelops-serving")["PolicyDocument"]
            policy = json.loads(policy) if isinstance(policy, str) else policy
            reads = [s for s in policy["Statement"] if "registry" in json.dumps(s.get("Resource"))]
            assert {s["Sid"] for s in reads} == {"ReadServedPackages"}
            (read,) = reads
            assert read["Action"] == ["s3:GetObject"] and read["Resource"] == [f"arn:aws:s3:::{package}"]
    # AND nothing was built in B: the store holds the one published package, and no build record
    assert [p.name for p in (b / ".modelops" / "artifacts").iterdir()] == [digest.removeprefix("sha256:")]
    assert not (b / ".modelops" / "builds").exists()
    # AND the registry says where the version runs
    listed = json.loads(run(b, "registry", "list", MODEL, "--json"))
    (version,) = listed["versions"]
    # (A's dev still runs it: only A's staging was destroyed)
    assert version["digest"] == digest and version["served_by"] == ["dev/primary", "prod/primary", "staging/primary"]
    # AND each promotion marked the version approved for its target
    assert version["approval"] == "Approved" and sorted(version["approved_for"]) == ["prod", "staging"]
