"""The multi-file example (examples/teams: a root spec and one file per team), end to end as a
user runs it: validate, owners, plan, then up against the emulator and destroy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelops.components import naming
from tests.helpers import Emulator
from tests.local.helpers import copy_project

pytestmark = [pytest.mark.aws, pytest.mark.slow]


def modelops(*args: str, cwd: Path, ca_bundle: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"AWS_CA_BUNDLE": ca_bundle} if ca_bundle else {})}
    return subprocess.run([sys.executable, "-m", "modelops", *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=cwd, check=False)


def test_the_teams_example_validates_plans_and_provisions_every_teams_models(
    emulator: Emulator, tmp_path: Path, artifact_root: Path
) -> None:
    # GIVEN a copy of the example: the root spec, teams/churn.yaml, teams/fraud.yaml, overlays, data
    spec = copy_project("teams", tmp_path / "project", artifact_root)
    project = spec.parent
    assert sorted(p.name for p in (project / "teams").iterdir()) == ["churn.yaml", "fraud.yaml"]
    # WHEN it is validated (schema, references across files, policies) THEN every environment is valid
    checked = modelops("validate", "--json", cwd=project)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["environments"]["prod"] == {"datasets": 2, "models": 2, "monitors": 5}
    # AND each team's file belongs to its team
    owned = json.loads(modelops("owners", "--json", cwd=project).stdout)
    assert {f["file"]: f["owner"] for f in owned["files"] if f["role"] == "team"} == {
        "teams/churn.yaml": "churn-team@example.com", "teams/fraud.yaml": "risk-ml@example.com"}
    # WHEN dev is planned THEN the graph holds both teams' models
    plan = modelops("plan", "--env", "dev", "--json", cwd=project)
    assert plan.returncode == 0, plan.stderr
    entities = {(r["entity"]["kind"], r["entity"]["name"]) for r in json.loads(plan.stdout)["resources"] if r.get("entity")}
    assert {("model", "churn-classifier"), ("model", "fraud-scorer"), ("dataset", "customers"), ("dataset", "transactions")} <= entities
    # WHEN dev is provisioned to the emulator
    up = modelops("up", "--env", "dev", "--endpoint-url", emulator.url, "--json", cwd=project, ca_bundle=emulator.ca_bundle)
    assert up.returncode == 0, up.stderr
    result = json.loads(up.stdout)
    assert all(c["ok"] for c in result["checks"])
    # THEN both teams' endpoints serve and both teams' buckets exist, tagged with the project
    endpoints = {e["EndpointName"] for e in emulator.client("sagemaker").list_endpoints()["Endpoints"]}
    assert {naming.endpoint_name("retail", "dev", m) for m in ("churn-classifier", "fraud-scorer")} <= endpoints
    buckets = {b["Name"] for b in emulator.client("s3").list_buckets()["Buckets"]}
    assert {naming.bucket_name("retail", "dev", d, "123456789012") for d in ("customers", "transactions")} <= buckets
    # AND the fraud team's alarm notifies its own channel and the platform's, declared in two files
    alarm = emulator.client("cloudwatch").describe_alarms(AlarmNames=[naming.alarm_name("retail", "dev", "fraud-errors")])
    topics = {arn.rsplit(":", 1)[-1] for arn in alarm["MetricAlarms"][0]["AlarmActions"]}
    assert topics == {naming.topic_name("retail", "dev", c) for c in ("risk-oncall", "oncall")}
    # AND destroy removes it all
    gone = modelops("destroy", "--env", "dev", "--endpoint-url", emulator.url, cwd=project, ca_bundle=emulator.ca_bundle)
    assert gone.returncode == 0, gone.stderr
    assert emulator.client("sagemaker").list_endpoints()["Endpoints"] == []
