"""Environments in separate accounts: the registry in one, staging in another, read by grant.

The churn example with ``registry: {account: "111111111111"}`` and staging in
``222222222222``. The registry's bucket and key policies name exactly staging's execution and
deploy roles; ``up`` of staging against the emulator (acting as staging's deploy role there)
reads the package published in the registry's account; a role the registry does not grant,
in staging's account or a third one, is refused by the emulator's cross-account evaluation
(modelops.local.accounts: moto itself lets every account read every bucket).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from modelops.components import naming
from modelops.components.registry import program as registry_program
from modelops.graph.render import RenderBackend, render
from modelops.errors import ApplyError
from modelops.graph.runtime import run
from modelops.local.apply import up
from modelops.ml.artifacts import attach_artifacts
from modelops.spec.envs import check
from tests.helpers import Emulator
from tests.local.helpers import copy_project
from tests.registry.helpers import modelops

pytestmark = [pytest.mark.aws]

MODEL = "churn-classifier"
REGISTRY_ACCOUNT, STAGING_ACCOUNT, OTHER_ACCOUNT = "111111111111", "222222222222", "333333333333"
EXEC_ROLE = f"arn:aws:iam::{STAGING_ACCOUNT}:role/churn-staging-{MODEL}-exec"
DEPLOY_ROLE = f"arn:aws:iam::{STAGING_ACCOUNT}:role/churn-staging-deploy"
BUCKET = f"churn-registry-{REGISTRY_ACCOUNT}"
ALIAS_ARN = f"arn:aws:kms:eu-west-1:{REGISTRY_ACCOUNT}:alias/churn-registry"


@pytest.fixture
def project(tmp_path: Path, artifact_root: Path) -> Path:
    """The churn example, its model built, the registry in one account and staging in another."""
    spec = copy_project("churn", tmp_path / "project", artifact_root)
    spec.write_text(spec.read_text() + f'\nregistry: {{account: "{REGISTRY_ACCOUNT}"}}\n')
    staging = spec.parent / "stacks" / "staging.yaml"
    staging.write_text(staging.read_text() + f'account: "{STAGING_ACCOUNT}"\n')
    return spec


def acting_as(emulator: Emulator, role_arn: str, service: str):
    """A client of the emulator with the credentials of ``role_arn`` (its account's caller)."""
    sts = emulator.client("sts")
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="test")["Credentials"]
    return boto3.client(service, endpoint_url=emulator.url, region_name="eu-west-1", verify=emulator.ca_bundle,
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def _statements(document: str) -> dict[str, dict]:
    return {s.get("Sid"): s for s in json.loads(document)["Statement"]}


def test_the_registry_grants_exactly_the_other_accounts_roles(project: Path) -> None:
    # GIVEN every environment of the spec
    problems, envs = check(project)
    assert problems == []
    assert envs["staging"].account == STAGING_ACCOUNT and envs["dev"].account is None
    # WHEN the registry stack is rendered
    graph = run(registry_program(envs["dev"], envs.values()), RenderBackend(region="eu-west-1"),
                project="churn", stack="registry")
    by_type = {r.type: r for r in graph}
    bucket = by_type["aws:s3/bucket:Bucket"].inputs["bucket"]
    bucket_policy = _statements(by_type["aws:s3/bucketPolicy:BucketPolicy"].inputs["policy"])
    key_policy = _statements(by_type["aws:kms/key:Key"].inputs["policy"])
    # THEN the bucket carries the registry's account, whoever deploys it
    assert bucket == BUCKET
    # AND the bucket policy lets exactly staging's execution and deploy roles read the packages,
    # and only the deploy role list them (the preview lookup), by account root and exact role ARNs
    read = bucket_policy["ReadPackagesFromEnvironmentAccounts"]
    assert read["Principal"] == {"AWS": [f"arn:aws:iam::{STAGING_ACCOUNT}:root"]}
    assert read["Action"] == "s3:GetObject" and read["Resource"] == f"arn:aws:s3:::{BUCKET}/models/*"
    assert read["Condition"] == {"ArnEquals": {"aws:PrincipalArn": [EXEC_ROLE, DEPLOY_ROLE]}}
    listing = bucket_policy["ListPackagesFromEnvironmentAccounts"]
    assert listing["Action"] == "s3:ListBucket" and listing["Resource"] == f"arn:aws:s3:::{BUCKET}"
    assert listing["Condition"] == {"ArnEquals": {"aws:PrincipalArn": [DEPLOY_ROLE]},
                                    "StringLike": {"s3:prefix": "models/*"}}
    # AND the key policy lets them decrypt through S3, and the deploy role describe the key
    decrypt = key_policy["DecryptPackagesFromEnvironmentAccounts"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"] == {"ArnEquals": {"aws:PrincipalArn": [EXEC_ROLE, DEPLOY_ROLE]},
                                    "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    describe = key_policy["DescribeKeyFromEnvironmentAccounts"]
    assert describe["Action"] == "kms:DescribeKey" and describe["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": [DEPLOY_ROLE]}}
    # AND no statement of either policy grants a `*` principal or action (the denials aside)
    for statement in [*bucket_policy.values(), *key_policy.values()]:
        if statement["Effect"] == "Allow":
            assert statement["Principal"] != "*" and "*" not in json.dumps(statement["Principal"])
            assert statement["Action"] != "*"
    # AND dev and prod, in the registry's account, get nothing from these policies
    assert "churn-dev" not in json.dumps(bucket_policy) + json.dumps(key_policy)


def test_staging_in_its_account_reads_the_registry_by_its_account_and_key_arn(project: Path, artifact_root: Path) -> None:
    # GIVEN staging, in its own account
    env = attach_artifacts(check(project)[1]["staging"], build=False, root=project.parent)
    # WHEN its graph is rendered
    graph = render(env)
    models = [r for r in graph.registrations if r.type == "aws:sagemaker/model:Model"]
    policy = next(r for r in graph.registrations if r.type == "aws:iam/rolePolicy:RolePolicy" and "exec" in str(r.inputs["role"]))
    statements = _statements(policy.inputs["policy"])
    # THEN its model data is in the registry's account's bucket
    assert models and all(m.inputs["primaryContainer"]["modelDataUrl"].startswith(f"s3://{BUCKET}/models/")
                          for m in models)
    # AND its execution role may decrypt with the registry's key, in the registry's account
    assert statements["DecryptServedPackages"]["Resource"].startswith(f"arn:aws:kms:eu-west-1:{REGISTRY_ACCOUNT}:key/")
    # AND the role itself lives in staging's account (the trust policy's confused-deputy guard)
    role = next(r for r in graph.registrations if r.type == "aws:iam/role:Role" and r.inputs["name"].endswith("-exec"))
    assert STAGING_ACCOUNT in role.inputs["assumeRolePolicy"]


def test_up_of_staging_reads_the_package_published_in_the_registry_account(emulator: Emulator, project: Path) -> None:
    # GIVEN staging in 222222222222, the registry in 111111111111
    env = attach_artifacts(check(project)[1]["staging"], build=False, root=project.parent)
    root = project.parent
    # WHEN staging is brought up at the emulator (the registry stack applied and published first)
    outcome = up(env, emulator.target(), root)
    assert all(c.ok for c in outcome.checks), [c for c in outcome.checks if not c.ok]
    # THEN the package is in the registry's account, and staging's SageMaker model, in
    # staging's account, serves it
    digest = env.models[MODEL].artifact.digest
    key = naming.registry_key(MODEL, digest)
    registry_s3 = acting_as(emulator, naming.role_arn("aws", REGISTRY_ACCOUNT, "churn-registry-deploy"), "s3")
    assert registry_s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0
    sagemaker = acting_as(emulator, DEPLOY_ROLE, "sagemaker")
    (listed,) = sagemaker.list_models(NameContains="churn-staging")["Models"]
    described = sagemaker.describe_model(ModelName=listed["ModelName"])
    assert described["PrimaryContainer"]["ModelDataUrl"] == f"s3://{BUCKET}/{key}"
    assert described["ExecutionRoleArn"] == EXEC_ROLE
    # AND the policies applied in the registry's account name staging's roles
    applied = _statements(registry_s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    assert applied["ReadPackagesFromEnvironmentAccounts"]["Condition"]["ArnEquals"]["aws:PrincipalArn"] == [
        EXEC_ROLE, DEPLOY_ROLE]
    registry_kms = acting_as(emulator, naming.role_arn("aws", REGISTRY_ACCOUNT, "churn-registry-deploy"), "kms")
    key_id = registry_kms.describe_key(KeyId="alias/churn-registry")["KeyMetadata"]["KeyId"]
    key_policy = _statements(registry_kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert key_policy["DescribeKeyFromEnvironmentAccounts"]["Condition"]["ArnEquals"]["aws:PrincipalArn"] == [DEPLOY_ROLE]
    # AND staging's execution role reads the package across the accounts, its deploy role too,
    # and the deploy role finds the key by its alias ARN
    package = acting_as(emulator, EXEC_ROLE, "s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert "sha256:" + hashlib.sha256(package).hexdigest() == digest
    assert acting_as(emulator, DEPLOY_ROLE, "s3").get_object(Bucket=BUCKET, Key=key)["ContentLength"] == len(package)
    found = acting_as(emulator, DEPLOY_ROLE, "kms").describe_key(KeyId=ALIAS_ARN)["KeyMetadata"]
    assert found["KeyId"] == key_id and found["Arn"].startswith(f"arn:aws:kms:eu-west-1:{REGISTRY_ACCOUNT}:key/")
    # AND a role the registry does not grant is refused: another role of staging's account, and
    # any role of an account that is not granted
    for outsider in (f"arn:aws:iam::{STAGING_ACCOUNT}:role/someone-else",
                     f"arn:aws:iam::{OTHER_ACCOUNT}:role/churn-staging-{MODEL}-exec"):
        with pytest.raises(ClientError) as refused:
            acting_as(emulator, outsider, "s3").get_object(Bucket=BUCKET, Key=key)
        assert refused.value.response["Error"]["Code"] in ("AccessDenied", "403"), outsider
        with pytest.raises(ClientError) as refused:
            acting_as(emulator, outsider, "kms").describe_key(KeyId=ALIAS_ARN)
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException", outsider


def test_the_stack_configs_name_the_deploy_role_and_validate_checks_them(project: Path) -> None:
    # GIVEN staging in its own account
    stacks = project.parent / "stacks"
    # WHEN its stack configs are written
    written = modelops("stacks", "--env", "staging", "--write", cwd=project.parent)
    assert written.returncode == 0, written.stderr
    config = yaml.safe_load((stacks / "Pulumi.staging.yaml").read_text())["config"]
    # THEN they deploy as staging's deploy role, to staging's account only
    assert config["aws:allowedAccountIds"] == [STAGING_ACCOUNT]
    assert config["aws:assumeRoles"] == [{"roleArn": DEPLOY_ROLE, "sessionName": "modelops-staging"}]
    # AND dev's, in the registry's account, its deploy role there
    assert modelops("stacks", "--env", "dev", "--write", cwd=project.parent).returncode == 0
    dev = yaml.safe_load((stacks / "Pulumi.dev.yaml").read_text())["config"]
    assert dev["aws:assumeRoles"][0]["roleArn"] == f"arn:aws:iam::{REGISTRY_ACCOUNT}:role/churn-dev-deploy"
    assert modelops("validate", "--all-envs", cwd=project.parent).returncode == 0
    # AND a deploy role of another account is refused at the spec's account, naming the config
    (stacks / "Pulumi.staging.yaml").write_text(
        (stacks / "Pulumi.staging.yaml").read_text().replace(STAGING_ACCOUNT, OTHER_ACCOUNT))
    refused = modelops("validate", "--all-envs", cwd=project.parent)
    assert refused.returncode == 2
    assert "stacks/staging.yaml:" in refused.stderr and "Pulumi.staging.yaml" in refused.stderr
    assert "is not the account the stack deploys to" in refused.stderr and "Traceback" not in refused.stderr


def test_up_of_an_environment_the_registry_does_not_grant_is_refused(emulator: Emulator, tmp_path: Path,
                                                                       artifact_root: Path) -> None:
    # GIVEN a registry in 111111111111 that one working copy deployed while every environment
    # was in the registry's account (its policies grant no other account)
    first = copy_project("churn", tmp_path / "first", artifact_root)
    first.write_text(first.read_text() + f'\nregistry: {{account: "{REGISTRY_ACCOUNT}"}}\n')
    dev = attach_artifacts(check(first)[1]["dev"], build=False, root=first.parent)
    assert all(c.ok for c in up(dev, emulator.target(), first.parent).checks)
    # AND another working copy, where staging moved to 333333333333 (the registry not deployed again)
    second = copy_project("churn", tmp_path / "second", artifact_root)
    second.write_text(first.read_text())
    staging_overlay = second.parent / "stacks" / "staging.yaml"
    staging_overlay.write_text(staging_overlay.read_text() + f'account: "{OTHER_ACCOUNT}"\n')
    staging = attach_artifacts(check(second)[1]["staging"], build=False, root=second.parent)
    # WHEN staging is brought up
    with pytest.raises(ApplyError) as refused:
        up(staging, emulator.target(), second.parent)
    # THEN the registry's key refuses staging's deploy role at the lookup, and says what to do
    message = str(refused.value)
    assert f"reading the KMS key {ALIAS_ARN}: AccessDeniedException" in message
    assert f"User: arn:aws:iam::{OTHER_ACCOUNT}:role/churn-staging-deploy is not authorized" in message
    assert "does its key policy grant this environment's deploy role?" in message
    # AND no SageMaker model was made in staging's account
    sagemaker = acting_as(emulator, f"arn:aws:iam::{OTHER_ACCOUNT}:role/churn-staging-deploy", "sagemaker")
    assert sagemaker.list_models(NameContains="churn-staging")["Models"] == []
