"""One provisioned environment (churn dev), read back: a second ``up`` does nothing, the
TLS-only policy is deployed as is and enforced by transport, the AWS CLI sees it all."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from modelops.local.apply import Outcome, up
from modelops.local.emulator import evaluate_bucket_policy
from modelops.spec.resolved import Environment
from tests.helpers import ROOT, Emulator
from tests.local.helpers import env_state, environment

pytestmark = [pytest.mark.aws, pytest.mark.slow]

BUCKET = "churn-dev-customers-123456789012"


def _fail_on_any(operation: str, type_: str, name: str) -> Exception:
    return AssertionError(f"unexpected {operation} of {type_} {name}")


@pytest.fixture(scope="module")
def provisioned(
    emulator_server: Emulator, artifact_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Environment, Path, Outcome]]:
    emulator_server.reset()
    root = tmp_path_factory.mktemp("provisioned")
    env = environment(ROOT / "modelops.yaml", "dev", artifact_root)
    yield env, root, up(env, emulator_server.target(), root)


def _ids(root: Path) -> dict[str, str]:
    state = env_state(root)
    return {r["urn"]: r["id"] for r in state["resources"]}


def test_second_up_without_change_touches_nothing(provisioned, emulator_server: Emulator) -> None:
    env, root, first = provisioned
    assert first.changed and all(c.ok for c in first.checks)
    before = _ids(root)
    # WHEN up runs again with a hook that fails on any AWS operation
    again = up(env, emulator_server.target(), root, fail_at=_fail_on_any)
    # THEN nothing was applied, and the outcome says so
    assert not again.changed and {a.action for a in again.actions} == {"unchanged"}
    assert len(again.actions) == len(first.actions)
    assert _ids(root) == before
    assert all(c.ok for c in again.checks)


def test_tls_only_policy_is_deployed_as_is_and_enforced_by_transport(provisioned, emulator_server: Emulator) -> None:
    s3 = emulator_server.client("s3")
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    # THEN the deployed document denies insecure transport and nothing else
    arn = f"arn:aws:s3:::{BUCKET}/data/x.csv"
    assert evaluate_bucket_policy(policy, "s3:PutObject", arn, {"aws:securetransport": "false"}) == "deny"
    assert evaluate_bucket_policy(policy, "s3:GetObject", arn, {"aws:securetransport": "false"}) == "deny"
    assert evaluate_bucket_policy(policy, "s3:PutObject", arn, {"aws:securetransport": "true"}) == "neutral"
    # AND over TLS, object requests work under that very policy
    s3.put_object(Bucket=BUCKET, Key="data/extra.csv", Body=b"a,b\n1,2\n")
    assert s3.get_object(Bucket=BUCKET, Key="data/extra.csv")["Body"].read() == b"a,b\n1,2\n"
    s3.delete_object(Bucket=BUCKET, Key="data/extra.csv")


def test_the_aws_cli_sees_what_up_made(provisioned, emulator_server: Emulator) -> None:
    aws = [str(ROOT / ".venv" / "bin" / "aws"), "--endpoint-url", emulator_server.url,
           "--ca-bundle", emulator_server.ca_bundle, "--region", "eu-west-1", "--output", "json"]

    def cli(*args: str) -> dict:
        done = subprocess.run([*aws, *args], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert cli("s3api", "get-bucket-versioning", "--bucket", BUCKET)["Status"] == "Enabled"
    assert "aws:SecureTransport" in cli("s3api", "get-bucket-policy", "--bucket", BUCKET)["Policy"]
    endpoint = cli("sagemaker", "describe-endpoint", "--endpoint-name", "churn-dev-churn-classifier")
    assert endpoint["EndpointStatus"] == "InService"
    alarm = cli("cloudwatch", "describe-alarms", "--alarm-names", "churn-dev-churn-latency")["MetricAlarms"][0]
    assert alarm["AlarmActions"] == ["arn:aws:sns:eu-west-1:123456789012:churn-dev-oncall"]
