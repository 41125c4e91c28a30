"""Where commands send AWS calls: the local emulator, a loopback URL, or (evidence only) real AWS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelops.errors import UsageError
from modelops.local.server import REAL_AWS, Target
from tests.helpers import ROOT


def test_real_aws_is_refused_unless_the_caller_reads_evidence(tmp_path: Path) -> None:
    # GIVEN the real-AWS target name WHEN a provisioning caller asks for it THEN it is refused
    with pytest.raises(UsageError):
        Target.for_project(tmp_path, REAL_AWS)


def test_real_aws_target_uses_ambient_credentials_and_no_endpoint_override(tmp_path: Path) -> None:
    # GIVEN promote/drift's evidence target; building a client sends nothing over the network
    target = Target.for_project(tmp_path, REAL_AWS, allow_aws=True)
    client = target.clients("eu-west-1").client("cloudwatch")
    # THEN boto3 resolves AWS's own regional endpoint (not the emulator's dummy credentials)
    assert client.meta.endpoint_url == "https://monitoring.eu-west-1.amazonaws.com"
    assert target.embedded is False


@pytest.mark.parametrize("command", [["up"], ["destroy"]])
def test_up_and_destroy_never_target_real_aws(command: list[str]) -> None:
    # WHEN a user points the local provisioning commands at real AWS
    result = subprocess.run(
        [sys.executable, "-m", "modelops", *command, "--env", "dev", "--endpoint-url", REAL_AWS],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    # THEN it is bad input (real deploys go through the Pulumi CLI), one line, no traceback
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "127.0.0.1" in result.stderr or "loopback" in result.stderr


def test_promote_rejects_both_targets_at_once() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelops", "promote", "churn-classifier", "--from", "staging", "--to", "prod",
         "--aws", "--endpoint-url", "http://127.0.0.1:1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --aws and --endpoint-url exclude each other; give one"


def test_the_projects_emulator_named_by_url_is_trusted_whatever_aws_ca_bundle_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelops.local import server

    # GIVEN a running embedded emulator and an AWS_CA_BUNDLE pointing at the system store
    info = server.start(tmp_path)
    try:
        monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
        # WHEN a command is given the emulator's URL explicitly (as promote does)
        target = Target.for_project(tmp_path, str(info["url"]))
        # THEN it trusts the emulator's own certificate and a real TLS call succeeds
        assert target.verify == str(info["ca_bundle"])
        assert target.clients("eu-west-1").client("s3").list_buckets()["Buckets"] == []
    finally:
        server.stop(tmp_path)
    assert server.status(tmp_path) is None
