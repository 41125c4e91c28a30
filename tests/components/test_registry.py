"""The registry component (components/registry.py) and its stack: what it renders, what the policies say of it."""

from __future__ import annotations

import json

import pytest

from modelops.checks.policy import evaluate
from modelops.components.registry import IMMUTABLE_ACTIONS, OUTPUTS, program
from modelops.errors import SpecError
from modelops.graph.render import RenderBackend
from modelops.graph.resource_types import table
from modelops.graph.runtime import run
from modelops.spec.envs import load_environment
from tests.registry.helpers import run_stack_program
from tests.helpers import ROOT

BUCKET = "aws:s3/bucket:Bucket"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"


def render_registry(spec=ROOT / "modelops.yaml"):
    env = load_environment(spec, "dev")
    return env, run(program(env), RenderBackend(region=env.region), project=env.project, stack="registry")


def test_the_registry_is_one_protected_append_only_bucket_and_a_group_per_model() -> None:
    # GIVEN the fraud example (two models) WHEN its registry stack renders
    env, regs = render_registry(ROOT / "examples" / "fraud" / "modelops.yaml")
    by_type = {}
    for r in regs:
        by_type.setdefault(r.type, []).append(r)
    # THEN one bucket named <project>-registry-<account>, protected and retained
    (bucket,) = by_type[BUCKET]
    assert bucket.inputs["bucket"] == "fraud-registry-123456789012"
    assert bucket.protect and bucket.retain_on_delete
    # AND versioned, KMS-encrypted with its own rotated key, private, owner-enforced
    assert by_type["aws:s3/bucketVersioning:BucketVersioning"][0].inputs["versioningConfiguration"]["status"] == "Enabled"
    (key,) = by_type["aws:kms/key:Key"]
    assert key.inputs["enableKeyRotation"] is True and key.protect and key.retain_on_delete
    rule = by_type["aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"][0].inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    pab = by_type["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"][0].inputs
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    assert by_type["aws:s3/bucketOwnershipControls:BucketOwnershipControls"][0].inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    # AND no lifecycle: nothing ever expires a version
    assert "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration" not in by_type
    # AND one package group per model, kept like the bucket
    groups = sorted(r.inputs["modelPackageGroupName"] for r in by_type[GROUP])
    assert groups == [f"fraud-registry-{m}" for m in sorted(env.models)]
    assert all(r.protect and r.retain_on_delete for r in by_type[GROUP])


def test_the_bucket_policy_denies_deletes_lifecycle_and_versioning_changes_to_everyone() -> None:
    _, regs = render_registry()
    (policy,) = [r for r in regs if r.type == POLICY]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    denied = {a for s in statements if s["Effect"] == "Deny" and s["Principal"] == "*" and "Condition" not in s
              for a in s["Action"]}
    assert denied == set(IMMUTABLE_ACTIONS)
    tls = [s for s in statements if s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
    assert tls and tls[0]["Action"] == "s3:*" and tls[0]["Effect"] == "Deny"
    # the policy comes after the versioning it forbids changing
    versioning = next(r for r in regs if r.type == "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.urn in policy.dependencies


def test_the_registry_passes_every_policy_and_every_type_is_known() -> None:
    env, regs = render_registry()
    assert evaluate(env, regs) == []
    assert {r.type for r in regs if r.custom} <= set(table())


def test_the_stack_program_runs_the_registry_for_the_registry_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the stack config of stacks/Pulumi.registry.yaml WHEN the program runs as the engine would
    import yaml

    config = yaml.safe_load((ROOT / "stacks" / "Pulumi.registry.yaml").read_text())["config"]
    regs = run_stack_program(monkeypatch, config, "registry")
    # THEN it registers the registry and no environment
    types = {r.type for r in regs}
    assert "modelops:index:ModelRegistry" in types and "modelops:index:Environment" not in types
    assert [r.inputs["bucket"] for r in regs if r.type == BUCKET] == ["churn-registry-123456789012"]
    assert set(OUTPUTS) == {"registryBucket", "registryKeyArn", "packageGroups"}


def test_an_environment_named_registry_is_refused(tmp_path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "modelops.yaml").write_text("apiVersion: modelops/v1\nproject: tiny\nowner: a@example.com\nregion: eu-west-1\n")
    (tmp_path / "stacks" / "registry.yaml").write_text("{}\n")
    with pytest.raises(SpecError, match=r"registry.yaml:1:1: environment name 'registry' is taken by the project's "
                                        r"model registry stack; rename the overlay file"):
        load_environment(tmp_path / "modelops.yaml", "registry")
