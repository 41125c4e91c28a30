"""``modelops status`` as a user runs it, against the churn dev environment ``up`` provisioned.

Each test that changes the live environment by hand (boto3, as an operator in the console
would) puts it back before it ends, so the module shares one provisioned environment.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelops.pages.results import location
from modelops.registry.store import DIGEST_KEY, Registry
from tests.helpers import ROOT
from tests.local.helpers import copy_project
from tests.pages.helpers import Deployed, drift_result, hourly, publish

pytestmark = [pytest.mark.aws, pytest.mark.slow]

MODELOPS = [sys.executable, "-m", "modelops"]
ENDPOINT = "churn-dev-churn-classifier"
ALARM = "churn-dev-churn-drift"


def _env(deployed: Deployed) -> dict[str, str]:
    return {**os.environ, "AWS_CA_BUNDLE": deployed.emulator.ca_bundle}


def status(deployed: Deployed, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MODELOPS, "status", str(deployed.spec), "--env", "dev", "--endpoint-url",
                           deployed.emulator.url, *args], capture_output=True, text=True, timeout=300,
                          env=_env(deployed), cwd=deployed.spec.parent, check=False)


def status_json(deployed: Deployed) -> dict:
    done = status(deployed, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def differences(deployed: Deployed) -> list[str]:
    return [d["text"] for d in status_json(deployed)["differences"]]


def test_a_fresh_environment_matches_its_spec_in_plain_text(deployed: Deployed) -> None:
    # WHEN status runs in a pipe right after up
    done = status(deployed)
    # THEN it exits 0 with plain columns: no colour codes, no box drawing
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "\x1b[" not in out and "━" not in out and "│" not in out
    assert "matches the spec: no differences" in out
    # AND it shows the live primary variant with its weight and instances against the spec
    row = next(line.split() for line in out.splitlines() if line.strip().startswith("primary"))
    assert row[0] == "primary" and row[1].startswith("sha256:") and row[2:] == ["1", "1", "1", "1-4"]
    assert f"endpoint {ENDPOINT}: InService" in out
    # AND every monitor with its alarm state, the drift monitor's job not run yet
    for monitor in ("churn-latency", "churn-errors", "churn-drift"):
        assert any(line.split()[:1] == [monitor] for line in out.splitlines()), out
    drift = next(line for line in out.splitlines() if line.strip().startswith("churn-drift"))
    assert drift.rstrip().endswith("not run")
    # AND the dataset with its size, last write and freshness alarm
    dataset = next(line for line in out.splitlines() if line.strip().startswith("customers "))
    assert "KiB" in dataset and "customers-fresh:" in dataset


def test_json_carries_the_same_facts(deployed: Deployed) -> None:
    data = status_json(deployed)
    assert data["differences"] == []
    (model,) = data["models"]
    assert model["endpoint_state"] == "InService"
    (primary,) = model["variants"]
    assert (primary["weight"], primary["spec_weight"], primary["instances"], primary["spec_instances"]) == (1.0, 1.0, 1, "1-4")
    assert primary["version"] == primary["expected_version"] == deployed.env.models["churn-classifier"].artifact.digest
    assert model["autoscaling"] == {"min": 1, "max": 4, "spec_min": 1, "spec_max": 4}
    (dataset,) = data["datasets"]
    assert dataset["objects"] == 1 and dataset["bytes"] == (ROOT / "examples/churn/data/customers.csv").stat().st_size
    assert dataset["freshness"]["alarm"] == "churn-dev-customers-fresh"


def test_a_variant_weight_changed_by_hand_is_called_out(deployed: Deployed) -> None:
    sm = deployed.emulator.client("sagemaker")
    sm.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredWeight": 0.5}])
    try:
        found = differences(deployed)
    finally:
        sm.update_endpoint_weights_and_capacities(
            EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredWeight": 1.0}])
    assert len(found) == 1 and found[0].startswith("churn-classifier: variant primary weight 0.5, spec 1 "), found
    assert differences(deployed) == []


def test_capacity_outside_the_autoscaling_bounds_is_called_out(deployed: Deployed) -> None:
    sm = deployed.emulator.client("sagemaker")
    sm.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredInstanceCount": 6}])
    try:
        done = status(deployed)
    finally:
        sm.update_endpoint_weights_and_capacities(
            EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredInstanceCount": 1}])
    assert done.returncode == 0, done.stderr
    assert "  ! churn-classifier: variant primary runs 6 instance(s), outside the autoscaling bounds 1-4" in done.stdout
    # AND capacity inside the bounds, as autoscaling leaves it, is no difference
    sm.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredInstanceCount": 3}])
    try:
        assert differences(deployed) == []
    finally:
        sm.update_endpoint_weights_and_capacities(
            EndpointName=ENDPOINT, DesiredWeightsAndCapacities=[{"VariantName": "primary", "DesiredInstanceCount": 1}])


def test_scaling_bounds_changed_by_hand_are_called_out(deployed: Deployed) -> None:
    scaling = deployed.emulator.client("application-autoscaling")
    resource = f"endpoint/{ENDPOINT}/variant/primary"
    dimension = "sagemaker:variant:DesiredInstanceCount"
    scaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=dimension,
                                     MinCapacity=1, MaxCapacity=10)
    try:
        found = differences(deployed)
    finally:
        scaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                         ScalableDimension=dimension, MinCapacity=1, MaxCapacity=4)
    assert found == ["churn-classifier: autoscaling bounds 1-10, spec 1-4"]


def test_an_alarm_disabled_by_hand_is_called_out(deployed: Deployed) -> None:
    cloudwatch = deployed.emulator.client("cloudwatch")
    cloudwatch.disable_alarm_actions(AlarmNames=[ALARM])
    try:
        done = status(deployed)
    finally:
        cloudwatch.enable_alarm_actions(AlarmNames=[ALARM])
    assert done.returncode == 0, done.stderr
    assert f"  ! monitor churn-drift: alarm {ALARM} has its actions disabled: it notifies no one" in done.stdout
    drift = next(line for line in done.stdout.splitlines() if line.strip().startswith("churn-drift"))
    assert " DISABLED " in drift


def test_the_last_job_verdict_and_alarm_state_are_shown(deployed: Deployed) -> None:
    # GIVEN three drift job runs, the newest alarming, and the alarm it set
    where = location(deployed.env, "churn-drift", deployed.account)
    s3 = deployed.emulator.client("s3")
    runs = [drift_result(where, shift=s, when=w) for s, w in zip((0.0, 0.1, 0.8), hourly(3))]
    publish(s3, where, runs)
    cloudwatch = deployed.emulator.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="drift")
    try:
        data = status_json(deployed)
    finally:
        cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="test over")
    monitor = next(m for m in data["models"][0]["monitors"] if m["name"] == "churn-drift")
    assert monitor["state"] == "ALARM"
    assert monitor["job"]["verdict"] == "alarm" and monitor["job"]["computed_at"] == runs[-1]["computed_at"]
    assert monitor["job"]["value"] == runs[-1]["value"] and monitor["job"]["threshold"] == 0.2
    assert monitor["job"]["result"] == f"s3://{where.bucket}/monitoring/churn-drift/latest.json"


def test_pin_latest_approved_and_last_promotion(deployed: Deployed, tmp_path: Path) -> None:
    digest = deployed.env.models["churn-classifier"].artifact.digest
    # GIVEN the live artifact's registry version approved for dev, as promote records it
    registry = Registry(deployed.emulator, "churn", deployed.account)
    registry.approve("churn-classifier", digest, "dev", "2026-12-01T10:00:00Z by Tester from abc123")
    log = deployed.spec.parent / "stacks" / "promotions.jsonl"
    record = {"model": "churn-classifier", "from": "staging", "to": "dev", "digest": digest, "who": "Tester",
              "when": "2026-12-01T10:00:00Z", "commit": "abc123", "previous_record": None}
    log.write_text(json.dumps(record) + "\n")
    try:
        model = status_json(deployed)["models"][0]
        text = status(deployed).stdout
    finally:
        log.unlink()
    assert model["latest_approved"] == digest
    assert model["last_promotion"]["when"] == "2026-12-01T10:00:00Z" and model["last_promotion"]["who"] == "Tester"
    assert f"latest approved {digest[:19]}" in text
    assert f"last promotion here {digest[:19]} from staging at 2026-12-01T10:00:00Z by Tester" in text


def test_html_file_is_written_beside_the_text(deployed: Deployed, tmp_path: Path) -> None:
    page = tmp_path / "status.html"
    done = status(deployed, "--html", str(page))
    assert done.returncode == 0, done.stderr
    assert f"wrote {page}" in done.stdout
    html = page.read_text()
    assert "<h2 id=\"model-churn-classifier\">Model churn-classifier</h2>" in html and "<script" not in html


def test_in_a_terminal_status_draws_rich_tables(deployed: Deployed) -> None:
    # WHEN status runs with its output on a terminal (a pty), as a person types it
    master, slave = pty.openpty()
    env = {**_env(deployed), "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen([*MODELOPS, "status", str(deployed.spec), "--env", "dev", "--endpoint-url",
                                deployed.emulator.url], stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                               env=env, cwd=deployed.spec.parent)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(master)
    assert process.wait(timeout=30) == 0, process.stderr.read().decode()
    out = b"".join(chunks).decode("utf-8", "replace")
    # THEN it is coloured and drawn as tables, with the same facts
    assert "\x1b[" in out, out[:500]
    assert "━" in out or "─" in out, out[:500]
    assert "matches the spec: no differences" in out and "churn-drift" in out


def test_without_a_running_emulator_it_says_what_to_do(tmp_path: Path, deployed: Deployed) -> None:
    # GIVEN a project whose emulator was never started
    spec = copy_project("churn", tmp_path / "project")
    done = subprocess.run([*MODELOPS, "status", str(spec), "--env", "dev"], capture_output=True, text=True,
                          timeout=120, cwd=spec.parent, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no local emulator is running" in done.stderr and "modelops up" in done.stderr


def test_an_unknown_environment_is_one_line_exit_2(deployed: Deployed) -> None:
    done = subprocess.run([*MODELOPS, "status", str(deployed.spec), "--env", "qa", "--endpoint-url",
                           deployed.emulator.url], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_pin_is_compared_with_the_latest_approved_version(deployed: Deployed) -> None:
    digest = deployed.env.models["churn-classifier"].artifact.digest
    other = "sha256:" + "ab" * 32
    # GIVEN dev pinning the version it serves, and a newer version approved for dev in the registry
    overlay = deployed.spec.parent / "stacks" / "dev.yaml"
    before = overlay.read_text()
    overlay.write_text(f"models:\n  churn-classifier:\n    version: \"{digest}\"\n")
    registry = Registry(deployed.emulator, "churn", deployed.account)
    sm = deployed.emulator.client("sagemaker")
    newer = staging_only = None
    try:
        registry.approve("churn-classifier", digest, "dev", "approved by Tester")
        pinned_is_latest = status(deployed).stdout
        # a version approved for staging only is not dev's
        staging_only = sm.create_model_package(
            ModelPackageGroupName=registry.group("churn-classifier"), ModelApprovalStatus="Approved",
            CustomerMetadataProperties={DIGEST_KEY: "sha256:" + "cd" * 32, "modelops:approved:staging": "x"},
            InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": "s3://b/k"}],
                                    "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]})
        newer = sm.create_model_package(
            ModelPackageGroupName=registry.group("churn-classifier"), ModelApprovalStatus="Approved",
            CustomerMetadataProperties={DIGEST_KEY: other, "modelops:approved:dev": "approved by Tester"},
            InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": "s3://b/k"}],
                                    "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]})
        data = status_json(deployed)
        newer_approved = status(deployed).stdout
    finally:
        overlay.write_text(before)
        for made in (newer, staging_only):  # the emulator cannot delete a version: withdrawn instead
            if made is not None:
                sm.update_model_package(ModelPackageArn=made["ModelPackageArn"], ModelApprovalStatus="Rejected")
    assert f"pinned {digest[:19]}; spec serves {digest[:19]}" in pinned_is_latest
    assert f"latest approved {digest[:19]} (pinned)" in pinned_is_latest
    # THEN a newer approval than the pin is said, and is no difference of the infrastructure
    assert f"latest approved {other[:19]} (not the pinned version)" in newer_approved
    assert data["models"][0]["pinned"] == digest and data["models"][0]["latest_approved"] == other
    assert data["differences"] == []


@pytest.mark.parametrize(("args", "message"), [
    (["--endpoint-url", "http://10.1.2.3:5000"], "only a local emulator on 127.0.0.1 is accepted"),
    (["--endpoint-url", "https://127.0.0.1:1", "--aws"], "--aws and --endpoint-url exclude each other"),
])
def test_a_target_that_is_not_allowed_is_refused_before_any_call(deployed: Deployed, args: list[str], message: str) -> None:
    done = subprocess.run([*MODELOPS, "status", str(deployed.spec), "--env", "dev", *args], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_by_default_status_reads_the_projects_own_emulator(tmp_path: Path, artifact_root: Path) -> None:
    # GIVEN a project that `modelops up` provisioned to its embedded emulator (started by up)
    spec = copy_project("churn", tmp_path / "project", artifact_root)

    def modelops(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*MODELOPS, *args, str(spec)], capture_output=True, text=True, timeout=300,
                              cwd=spec.parent, check=False)

    try:
        assert modelops("up", "--env", "dev").returncode == 0
        # WHEN status runs without naming a target
        done = modelops("status", "--env", "dev", "--json")
    finally:
        stopped = modelops("local", "stop")
    # THEN it read that emulator, and found what up made
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["target"].startswith("https://127.0.0.1:") and data["differences"] == []
    assert data["models"][0]["endpoint_state"] == "InService"
    assert stopped.returncode == 0, stopped.stderr
