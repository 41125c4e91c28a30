"""``modelops up`` / ``destroy`` stack by stack, as a user runs them against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Emulator
from tests.local.helpers import copy_project, env_buckets, env_state, state_files

pytestmark = [pytest.mark.aws, pytest.mark.slow]


def _modelops(*args: str, emulator: Emulator) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_CA_BUNDLE": emulator.ca_bundle}
    return subprocess.run([sys.executable, "-m", "modelops", *args, "--endpoint-url", emulator.url], capture_output=True,
                          text=True, timeout=300, env=env, check=False)


def test_each_stack_goes_up_and_down_in_its_order(emulator: Emulator, tmp_path: Path, artifact_root: Path) -> None:
    spec = str(copy_project("churn", tmp_path / "project", artifact_root))
    # WHEN the group stack goes up before the shared stack THEN it is refused, nothing made
    early = _modelops("up", spec, "--env", "dev", "--stack", "dev.ml-platform", emulator=emulator)
    assert early.returncode == 2 and "Traceback" not in early.stderr
    assert "reads the outputs of stack dev, which is not up" in early.stderr
    assert "modelops up --env dev --stack dev" in early.stderr
    assert env_buckets(emulator.client("s3")) == []
    # WHEN the shared stack goes up THEN it holds the key, the artifact bucket and the topics only
    shared = _modelops("up", spec, "--env", "dev", "--stack", "dev", "--json", emulator=emulator)
    assert shared.returncode == 0, shared.stderr
    assert json.loads(shared.stdout)["stacks"] == ["dev"]
    assert emulator.client("sagemaker").list_endpoints()["Endpoints"] == []
    # AND the group stack then goes up on the shared stack's outputs, every check passing
    group = _modelops("up", spec, "--env", "dev", "--stack", "dev.ml-platform", "--json", emulator=emulator)
    assert group.returncode == 0, group.stderr
    result = json.loads(group.stdout)
    # the group stack: 23 resources, and 11 of the drift monitor's job (components/monitor_job.py)
    assert all(c["ok"] for c in result["checks"]) and result["counts"] == {"created": 23 + 11}
    [endpoint] = emulator.client("sagemaker").list_endpoints()["Endpoints"]
    assert endpoint["EndpointName"] == "churn-dev-churn-classifier"
    # AND the whole environment is then up to date
    again = _modelops("up", spec, "--env", "dev", "--json", emulator=emulator)
    assert json.loads(again.stdout)["changed"] is False
    assert json.loads(again.stdout)["stacks"] == ["dev", "dev.ml-platform"]
    # WHEN the shared stack alone is destroyed while the group stack reads it THEN it is refused
    refused = _modelops("destroy", spec, "--env", "dev", "--stack", "dev", emulator=emulator)
    assert refused.returncode == 2 and "is read by dev.ml-platform: destroy them first" in refused.stderr
    # AND destroying the environment removes the group stack first, then the shared one
    gone = _modelops("destroy", spec, "--env", "dev", "--json", emulator=emulator)
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["stacks"] == ["dev.ml-platform", "dev"]
    assert env_buckets(emulator.client("s3")) == []
    assert state_files(Path(spec).parent) == []


def test_a_state_from_before_the_split_is_moved_not_made_again(emulator: Emulator, tmp_path: Path,
                                                                 artifact_root: Path) -> None:
    # GIVEN an environment up as one stack (every record in the state of the environment's name)
    spec = str(copy_project("churn", tmp_path / "project", artifact_root))
    root = Path(spec).parent
    assert _modelops("up", spec, "--env", "dev", emulator=emulator).returncode == 0
    states = root / ".modelops" / "state"
    single = env_state(root)
    for path in state_files(root)[1:]:
        path.unlink()
    shared = json.loads((states / "churn-dev.json").read_text())
    shared["resources"] = [{**r, "urn": r["urn"].replace("urn:pulumi:dev.ml-platform::", "urn:pulumi:dev::"),
                            "parent": r["parent"].replace("urn:pulumi:dev.ml-platform::", "urn:pulumi:dev::")}
                           for r in single["resources"]]
    (states / "churn-dev.json").write_text(json.dumps(shared))
    # WHEN up runs with the split
    moved = _modelops("up", spec, "--env", "dev", "--json", emulator=emulator)
    # THEN the records move to the group stack and nothing in the emulator changes
    assert moved.returncode == 0, moved.stderr
    result = json.loads(moved.stdout)
    # (23 resources and the 11 of the drift monitor's job)
    assert result["changed"] is False and "moved the records of 34 resources into the stacks dev.ml-platform" in result["note"]
    assert sorted(r["id"] for r in env_state(root)["resources"]) == sorted(r["id"] for r in single["resources"])


def test_a_model_deployed_before_its_datasets_stack_goes_up(emulator: Emulator, tmp_path: Path,
                                                            artifact_root: Path) -> None:
    """A group split in 3 puts churn-classifier in dev.ml-platform and its dataset in
    dev.ml-platform.3, which goes up after it (as parallel deploys of the stacks may too).
    The model's monitor job needs empty objects under its capture and labels prefixes: the
    dataset's stack makes them beside the bucket, never the model's stack (NoSuchBucket)."""
    spec = copy_project("churn", tmp_path / "project", artifact_root)
    config = spec.parent / "stacks" / "Pulumi.dev.ml-platform.yaml"
    config.write_text(config.read_text().replace("modelops:partitions: 1", "modelops:partitions: 3"))
    layout = json.loads(subprocess.run([sys.executable, "-m", "modelops", "stacks", str(spec), "--env", "dev", "--json"],
                                       capture_output=True, text=True, timeout=300, check=True).stdout)
    holding = {s["stack"]: (s["datasets"], s["models"]) for s in layout["stacks"]}
    assert holding["dev.ml-platform"] == (0, 1) and holding["dev.ml-platform.3"] == (1, 0)

    up = _modelops("up", str(spec), "--env", "dev", "--json", emulator=emulator)
    assert up.returncode == 0, up.stderr
    assert all(c["ok"] for c in json.loads(up.stdout)["checks"])
    [bucket] = [b["Name"] for b in emulator.client("s3").list_buckets()["Buckets"] if "-customers-" in b["Name"]]
    keys = {o["Key"] for o in emulator.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert "labels/churn-classifier/_modelops-empty" in keys
    # the marker is the dataset stack's resource
    dataset_stack = json.loads((spec.parent / ".modelops" / "state" / "churn-dev.ml-platform.3.json").read_text())
    assert sum(r["urn"].endswith("-marker") for r in dataset_stack["resources"]) == 1

    gone = _modelops("destroy", str(spec), "--env", "dev", "--json", emulator=emulator)
    assert gone.returncode == 0, gone.stderr
    assert env_buckets(emulator.client("s3")) == []
