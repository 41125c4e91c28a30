"""Promoting the example churn model from staging to prod: the library and the real CLI.

GIVEN a copy of the repository's example project (spec, overlays, data) with its model
built, and staging's deployment evidence in a loopback moto server (the artifact object,
the SageMaker endpoint serving it, one alarm per monitor), named as ``modelops up`` names
them. The repository's own stacks/*.yaml are never touched.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import shutil
import time
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import requests

from modelops.ml.artifacts import attach_artifacts, card, store_path
from modelops.spec.envs import load_environment
from modelops.errors import ApplyError, UsageError
from modelops.promote import PromotionRefused, append_record, evaluate_gates, promote
from tests.promote.helpers import (MODEL, PIN_BEFORE, SOAKED, STACKS, commit, deploy_evidence, git, later, modelops,
                                   set_alarm)



def use_overlay(project: Path, env: str, fixture: str) -> None:
    shutil.copy(STACKS / fixture, project / "stacks" / f"{env}.yaml")
    commit(project, f"stacks/{env}.yaml: {fixture}")


def deploy_staging(moto, project: Path) -> str:
    env = attach_artifacts(load_environment(project / "modelops.yaml", "staging"), build=False)
    artifact = Path(env.models[MODEL].artifact.path).read_bytes()
    return deploy_evidence(moto, env, MODEL, artifact, published_from=project)


def diff_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if not line.startswith(("---", "+++", "@@")):
            (removed if line.startswith("-") else added).append(line[1:])
    return removed, added


# ------------------------------------------------------------------ library


def test_quiet_staging_with_met_metrics_promotes_by_changing_one_line_and_logs_it(moto, project):
    use_overlay(project, "prod", "prod-pinned.yaml")
    digest = deploy_staging(moto, project)
    before = (project / "stacks" / "prod.yaml").read_text()

    result = promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))

    assert result.written and result.report.passed
    after = (project / "stacks" / "prod.yaml").read_text()
    removed, added = diff_lines(before, after)
    assert removed == [f'    version: "{PIN_BEFORE}"  # previous release']
    assert added == [f'    version: "{digest}"  # previous release']
    assert after.startswith("# Production: protected storage, two instances, pinned model version.\n# The pin below")
    assert load_environment(project / "modelops.yaml", "prod").models[MODEL].version == digest
    records = [json.loads(line) for line in (project / "stacks" / "promotions.jsonl").read_text().splitlines()]
    assert len(records) == 1
    record = records[0]
    assert (record["model"], record["from"], record["to"]) == (MODEL, "staging", "prod")
    assert (record["digest"], record["previous_digest"]) == (digest, PIN_BEFORE)
    assert [g["name"] for g in record["gates"]] == ["metrics", "deployed", "quiet", "policies"]
    assert all(g["passed"] and g["evidence"] for g in record["gates"])
    accuracy = card(digest, project)["metrics"]["accuracy"]
    assert f"accuracy {accuracy:.4g} meets >= 0.8" in record["gates"][0]["evidence"]
    assert record["who"] and record["when"].endswith("Z")


def test_unpinned_prod_gets_exactly_one_added_line(moto, project):
    digest = deploy_staging(moto, project)
    before = (project / "stacks" / "prod.yaml").read_text()
    result = promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED), who="tester")
    removed, added = diff_lines(before, (project / "stacks" / "prod.yaml").read_text())
    assert (removed, added) == ([], [f'    version: "{digest}"'])
    # prod ran the base artifact: the same train spec and data, so the same build
    assert result.record["previous_pinned"] is False and result.record["previous_digest"] == digest
    assert result.record["who"] == "tester"


def test_a_monitor_in_alarm_refuses_and_names_the_alarm(moto, project):
    deploy_staging(moto, project)
    env = load_environment(project / "modelops.yaml", "staging")
    alarm = set_alarm(moto, env, "churn-errors", "ALARM", "Threshold Crossed: error rate 4%")
    before = (project / "stacks" / "prod.yaml").read_bytes()

    with pytest.raises(PromotionRefused, match="gate\\(s\\) failed: quiet") as refused:
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))

    quiet = {g.name: g for g in refused.value.report.gates}["quiet"]
    assert alarm == "churn-staging-churn-errors"
    assert f"alarm {alarm} is in ALARM" in quiet.evidence
    assert (project / "stacks" / "prod.yaml").read_bytes() == before
    assert not (project / "stacks" / "promotions.jsonl").exists()


def test_a_metric_below_the_targets_gate_refuses(moto, project):
    # prod's overlay raises the accuracy gate above what the model card shows
    use_overlay(project, "prod", "prod-strict-gates.yaml")
    digest = deploy_staging(moto, project)
    accuracy = card(digest, project)["metrics"]["accuracy"]
    assert accuracy < 0.95
    with pytest.raises(PromotionRefused, match="failed: metrics$") as refused:
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))
    metrics = refused.value.report.gates[0]
    assert metrics.name == "metrics" and not metrics.passed
    assert f"accuracy {accuracy:.4g} fails >= 0.95" in metrics.evidence


def test_a_soak_not_elapsed_refuses_with_the_time_remaining(moto, project):
    deploy_staging(moto, project)
    endpoint = moto.client("sagemaker").describe_endpoint(EndpointName="churn-staging-churn-classifier")
    now = endpoint["LastModifiedTime"] + timedelta(hours=3)
    with pytest.raises(PromotionRefused) as refused:
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=now)
    quiet = {g.name: g for g in refused.value.report.gates}["quiet"]
    assert "soak not elapsed: churn-staging-churn-classifier last changed 3h ago; 21h of 1d remaining" in quiet.evidence
    assert not (project / "stacks" / "promotions.jsonl").exists()


def test_check_evaluates_every_gate_and_writes_nothing(moto, project):
    deploy_staging(moto, project)
    stacks = {p.name: p.read_bytes() for p in (project / "stacks").iterdir()}
    result = promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED), check=True)
    assert result.report.passed and not result.written
    assert {p.name: p.read_bytes() for p in (project / "stacks").iterdir()} == stacks


def test_evaluate_gates_reports_the_digest_staging_runs_and_the_policies_of_prod(moto, project):
    digest = deploy_staging(moto, project)
    report = evaluate_gates(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))
    assert report.digest == digest and store_path(digest, project).is_file()
    policies = report.gates[3]
    assert policies.name == "policies" and policies.passed, policies.evidence
    assert "prod with the new pin: no mandatory policy finding" in policies.evidence


def test_an_edited_card_beside_the_package_does_not_pass_the_metrics_gate(moto, project):
    # GIVEN prod demanding accuracy >= 0.95, which the model does not reach, and the card
    # copy beside the stored package edited to claim it does
    use_overlay(project, "prod", "prod-strict-gates.yaml")
    digest = deploy_staging(moto, project)
    sidecar = store_path(digest, project).with_name("card.json")
    edited = json.loads(sidecar.read_text())
    actual = edited["metrics"]["accuracy"]
    edited["metrics"]["accuracy"] = 0.99
    sidecar.write_text(json.dumps(edited))
    # WHEN promoting THEN the gate reads the version's registry entry, not the local card
    with pytest.raises(PromotionRefused, match="failed: metrics$") as refused:
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))
    evidence = refused.value.report.gates[0].evidence
    assert evidence.startswith("registry version 1 (PendingManualApproval): ")
    assert f"accuracy {actual:.4g} fails >= 0.95" in evidence
    assert not (project / "stacks" / "promotions.jsonl").exists()


def test_a_card_edited_locally_does_not_change_a_passing_verdict(moto, project):
    # GIVEN the published version passing prod's gates
    digest = deploy_staging(moto, project)
    before = evaluate_gates(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url,
                            now=later(SOAKED)).gates[0]
    assert before.passed, before.evidence
    # WHEN the local card claims every metric fails THEN the metrics gate says exactly what it said
    sidecar = store_path(digest, project).with_name("card.json")
    sidecar.write_text(json.dumps({"metrics": {"accuracy": 0.1, "roc_auc": 0.1}}))
    after = evaluate_gates(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url,
                           now=later(SOAKED)).gates[0]
    assert (after.passed, after.evidence) == (True, before.evidence)
    assert "accuracy 0.1 " not in after.evidence


def test_a_version_not_in_the_registry_fails_the_metrics_gate_with_the_fix(moto, project):
    # GIVEN staging serving a version that was never published
    env = attach_artifacts(load_environment(project / "modelops.yaml", "staging"), build=False)
    digest = deploy_evidence(moto, env, MODEL, Path(env.models[MODEL].artifact.path).read_bytes())
    # WHEN promoting THEN only the metrics gate fails, naming the digest and `modelops publish`
    with pytest.raises(PromotionRefused, match="failed: metrics$") as refused:
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))
    evidence = refused.value.report.gates[0].evidence
    assert evidence == (f"{digest} is not in the registry (churn-registry-{MODEL}): its metrics are unknown; "
                        f"publish it (`modelops publish {MODEL}` on the commit that built it)")


def test_metadata_changed_after_publishing_fails_against_the_registered_card(moto, project):
    # GIVEN prod's strict gate, and the version's metric metadata raised in the registry
    # (UpdateModelPackage allows it; the model metrics it registered cannot change)
    use_overlay(project, "prod", "prod-strict-gates.yaml")
    deploy_staging(moto, project)
    sm = moto.client("sagemaker")
    (summary,) = sm.list_model_packages(ModelPackageGroupName=f"churn-registry-{MODEL}")["ModelPackageSummaryList"]
    described = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    meta = {**described["CustomerMetadataProperties"], "metric:accuracy": "0.99"}
    sm.update_model_package(ModelPackageArn=summary["ModelPackageArn"], CustomerMetadataProperties=meta)
    # WHEN promoting THEN the metrics gate fails on the difference, not on the forged value
    with pytest.raises(PromotionRefused, match="failed: metrics$") as refused:
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))
    evidence = refused.value.report.gates[0].evidence
    assert "metadata metric:accuracy=0.99 differs from" in evidence and "changed after publishing" in evidence


def test_a_promotion_marks_the_version_approved_for_the_target_and_logs_it(moto, project):
    digest = deploy_staging(moto, project)
    head = git(project, "rev-parse", "HEAD")
    result = promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED),
                     who="Tester <tester@example.com>")
    # THEN the package version is Approved, with the approval for prod in its metadata
    sm = moto.client("sagemaker")
    (summary,) = sm.list_model_packages(ModelPackageGroupName=f"churn-registry-{MODEL}")["ModelPackageSummaryList"]
    described = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "approved for prod by modelops promote"
    meta = described["CustomerMetadataProperties"]
    # (SageMaker's metadata values hold letters, digits, spaces and _.:/=+-@ only)
    note = f"{result.report.evaluated_at} from staging by Tester tester@example.com commit {head[:12]}"
    assert meta["modelops:approved:prod"] == note
    # AND every key publish wrote is still there
    assert meta["modelops:digest"] == digest and "metric:accuracy" in meta and "modelops:spec-commit" in meta
    # AND the log's record says so
    record = json.loads((project / "stacks" / "promotions.jsonl").read_text())
    assert record["approval"] == {
        "package_arn": summary["ModelPackageArn"], "package_version": 1, "status": "Approved",
        "metadata_key": "modelops:approved:prod", "note": note, "approved_for": ["prod"],
    }
    # AND `modelops registry list` shows the approval
    listed = modelops(project, "registry", "list", MODEL, "--endpoint-url", moto.url, "--json")
    assert listed.returncode == 0, listed.stderr
    (version,) = json.loads(listed.stdout)["versions"]
    assert (version["approval"], version["approved_for"]) == ("Approved", {"prod": note})
    assert "approved:prod" not in json.dumps(version["lineage"])
    table = modelops(project, "registry", "list", MODEL, "--endpoint-url", moto.url)
    assert table.returncode == 0, table.stderr
    assert f"  approved for prod: {note}" in table.stdout


def test_a_registry_that_refuses_the_approval_restores_the_overlay_and_logs_nothing(moto, project, monkeypatch):
    import modelops.registry.store as store

    deploy_staging(moto, project)
    overlay = project / "stacks" / "prod.yaml"
    before = overlay.read_bytes()

    def refuse(self, model, digest, env, note):
        raise ApplyError(f"{model} {digest} is not in the registry (refused for the test)")

    monkeypatch.setattr(store.Registry, "approve", refuse)
    with pytest.raises(ApplyError, match=r"refused for the test\); restored .*prod\.yaml"):
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))
    assert overlay.read_bytes() == before
    assert not (project / "stacks" / "promotions.jsonl").exists()


def test_the_soak_is_the_targets_even_when_the_source_declares_none(moto, project):
    # GIVEN staging declaring `soak: 0s` and prod keeping the default 24h
    use_overlay(project, "staging", "staging-no-soak.yaml")
    deploy_staging(moto, project)
    endpoint = moto.client("sagemaker").describe_endpoint(EndpointName="churn-staging-churn-classifier")
    # WHEN promoting to prod 3h after staging's deployment THEN prod's 24h soak is waited for
    with pytest.raises(PromotionRefused, match="failed: quiet$") as refused:
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url,
                now=endpoint["LastModifiedTime"] + timedelta(hours=3))
    quiet = refused.value.report.gates[2]
    assert "last changed 3h ago; 21h of 1d remaining" in quiet.evidence
    assert quiet.details["soak_seconds"] == 86400


def test_the_log_records_the_commit_and_chains_each_record_to_the_previous(moto, project):
    deploy_staging(moto, project)
    head = git(project, "rev-parse", "HEAD")
    result = promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))
    log = project / "stacks" / "promotions.jsonl"
    record = json.loads(log.read_text())
    assert record == result.record
    assert (record["commit"], record["allow_dirty"], record["uncommitted"]) == (head, False, [])
    assert record["previous_record"] is None
    # the next record carries the hash of this line, and the CLI checks the chain
    earlier = log.read_bytes()
    append_record(log, {"model": MODEL, "from": "dev", "to": "staging"})
    assert json.loads(log.read_text().splitlines()[1])["previous_record"] == (
        "sha256:" + hashlib.sha256(earlier.rstrip(b"\n")).hexdigest()
    )
    run = modelops(project, "promote", "--verify-log", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout) | {"log": ""} == {
        "log": "", "valid": True, "records": 2, "unchained": 0, "line": None, "problem": ""
    }


def test_an_uncommitted_overlay_is_refused_before_any_gate_and_allowed_dirty_is_logged(moto, project):
    deploy_staging(moto, project)
    overlay = project / "stacks" / "prod.yaml"
    overlay.write_text(overlay.read_text().replace("instance_count: 2", "instance_count: 3"))
    edited = overlay.read_bytes()
    # WHEN promoting from the dirty tree THEN it is a usage error naming the file; nothing written
    with pytest.raises(UsageError, match=r"stacks/prod\.yaml: uncommitted changes; .*commit them, or pass --allow-dirty"):
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))
    assert overlay.read_bytes() == edited
    assert not (project / "stacks" / "promotions.jsonl").exists()
    # WHEN allowed THEN it promotes and the log says from what
    result = promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED),
                     allow_dirty=True)
    assert result.written
    assert (result.record["allow_dirty"], result.record["uncommitted"]) == (True, ["stacks/prod.yaml"])
    assert result.record["commit"] == git(project, "rev-parse", "HEAD")


def test_a_project_outside_a_git_repository_is_refused_unless_allowed_dirty(moto, project):
    # GIVEN the project without a repository: no commit could be recorded
    shutil.rmtree(project / ".git")
    deploy_staging(moto, project)
    with pytest.raises(UsageError, match="not in a git repository with a commit"):
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))
    result = promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED),
                     allow_dirty=True)
    assert (result.record["commit"], result.record["uncommitted"], result.record["allow_dirty"]) == (None, None, True)


@pytest.mark.parametrize(
    "model,source,target,message",
    [
        ("churn-clasifier", "staging", "prod", "did you mean 'churn-classifier'"),
        (MODEL, "staging", "staging", "both 'staging'"),
        (MODEL, "staging", "prdo", "unknown environment 'prdo'"),
    ],
)
def test_bad_input_is_a_usage_error(project, model, source, target, message):
    with pytest.raises(UsageError, match=message):
        evaluate_gates(project / "modelops.yaml", model, source, target, endpoint_url="http://127.0.0.1:9")


def test_a_target_without_an_overlay_is_a_usage_error(project):
    # environments are their overlays: without stacks/dev.yaml there is no dev to pin
    (project / "stacks" / "dev.yaml").unlink()
    with pytest.raises(UsageError, match="unknown environment 'dev'.*available: prod, staging"):
        evaluate_gates(project / "modelops.yaml", MODEL, "staging", "dev", endpoint_url="http://127.0.0.1:9")


# ------------------------------------------------------------------ the CLI, as a user runs it


def test_cli_refuses_with_exit_3_and_each_gates_reason(moto, project):
    use_overlay(project, "prod", "prod-short-soak.yaml")
    deploy_staging(moto, project)
    set_alarm(moto, load_environment(project / "modelops.yaml", "staging"), "churn-latency", "ALARM", "p99 900ms")
    time.sleep(1.1)
    before = (project / "stacks" / "prod.yaml").read_bytes()

    run = modelops(project, "promote", MODEL, "--from", "staging", "--to", "prod", "--endpoint-url", moto.url)

    assert run.returncode == 3, run.stdout + run.stderr
    assert "✓ metrics: " in run.stdout and "✓ deployed: " in run.stdout
    assert "✗ quiet: alarm churn-staging-churn-latency is in ALARM" in run.stdout
    assert run.stderr.strip().splitlines() == [
        f"error: promotion of {MODEL} from staging to prod refused: gate(s) failed: quiet"
    ]
    assert "Traceback" not in run.stdout + run.stderr
    assert (project / "stacks" / "prod.yaml").read_bytes() == before


def test_cli_check_json_reports_and_writes_nothing(moto, project):
    use_overlay(project, "prod", "prod-short-soak.yaml")
    digest = deploy_staging(moto, project)
    time.sleep(1.1)
    before = (project / "stacks" / "prod.yaml").read_bytes()
    run = modelops(project, "promote", MODEL, "--from", "staging", "--to", "prod", "--endpoint-url", moto.url, "--check", "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["digest"] == digest and report["passed"] and not report["written"]
    assert (project / "stacks" / "prod.yaml").read_bytes() == before
    assert not (project / "stacks" / "promotions.jsonl").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["churn", "--from", "staging", "--to", "prod", "--endpoint-url", "http://127.0.0.1:9"], "unknown model"),
        ([MODEL, "--from", "prod", "--to", "prod"], "both 'prod'"),
        ([MODEL, "--from", "staging", "--to", "prod", "--endpoint-url", "http://10.0.0.1:5000"], "only a local emulator"),
        ([MODEL, "--from", "staging", "--to", "prod"], "no local emulator is running"),
        ([MODEL, "--to", "prod"], "Missing option '--from'"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(project, args, message):
    run = modelops(project, "promote", *args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert len([line for line in run.stderr.splitlines() if "rror" in line]) == 1


# ------------------------------------------------------------------ after a real `modelops up`


@pytest.mark.slow
def test_promotion_after_a_real_up_of_staging(project, monkeypatch):
    # GIVEN staging provisioned by `modelops up` into an emulator (TLS, condition-aware
    # bucket policies: the artifacts bucket's TLS-only policy is enforced as in AWS)
    from modelops.local.emulator import EmulatorServer

    use_overlay(project, "prod", "prod-short-soak.yaml")
    server = EmulatorServer(ip_address="127.0.0.1", port=0, tls_dir=project / ".modelops" / "local" / "tls")
    server.start()
    try:
        url, ca = server.url, str(server.cert)
        # a machine-wide AWS_CA_BUNDLE would win over the project's emulator certificate
        monkeypatch.setenv("AWS_CA_BUNDLE", ca)
        # moto's state is per process: clear what other servers of this process left behind
        requests.post(f"{url}/moto-api/reset", verify=ca, timeout=30).raise_for_status()
        up = modelops(project, "up", "--env", "staging", "--endpoint-url", url, AWS_CA_BUNDLE=ca)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        published = modelops(project, "publish", MODEL, "--env", "staging", "--endpoint-url", url, AWS_CA_BUNDLE=ca)
        assert published.returncode == 0, published.stdout + published.stderr
        cw = boto3.client("cloudwatch", endpoint_url=url, region_name="eu-west-1", verify=ca,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        alarm = "churn-staging-churn-latency"
        cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="p99 900ms")
        before = (project / "stacks" / "prod.yaml").read_text()

        # WHEN a monitor of the model is in ALARM THEN promotion is refused naming it
        report = evaluate_gates(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=url, now=later(SOAKED))
        gates = {g.name: g for g in report.gates}
        assert [g.name for g in report.failed] == ["quiet"], [g.evidence for g in report.failed]
        assert f"alarm {alarm} is in ALARM" in gates["quiet"].evidence
        assert "sha256 matches" in gates["deployed"].evidence and "a variant serves this artifact" in gates["deployed"].evidence

        # WHEN it recovers and stays quiet for the (one-second) soak THEN the CLI exits 0
        # having added prod's pin as the one new line, and logged the promotion
        cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="recovered")
        time.sleep(1.1)
        promoted = modelops(project, "promote", MODEL, "--from", "staging", "--to", "prod", "--endpoint-url", url, AWS_CA_BUNDLE=ca)
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        for gate in ("metrics", "deployed", "quiet", "policies"):
            assert f"✓ {gate}: " in promoted.stdout
        assert "promoted: prod.yaml pins" in promoted.stdout
        digest = json.loads((project / "stacks" / "promotions.jsonl").read_text())["digest"]
        removed, added = diff_lines(before, (project / "stacks" / "prod.yaml").read_text())
        assert (removed, added) == ([], [f'    version: "{digest}"'])
    finally:
        server.stop()


def test_an_overlay_that_no_longer_resolves_after_the_rewrite_is_restored(moto, project, monkeypatch):
    # GIVEN a loader that rejects the rewritten overlay (the verification step after writing)
    import modelops.spec.envs

    digest = deploy_staging(moto, project)
    overlay = project / "stacks" / "prod.yaml"
    before = overlay.read_bytes()
    real_load = modelops.spec.envs.load_environment

    def load(spec, env):
        if env == "prod" and digest in overlay.read_text():
            raise UsageError("stacks/prod.yaml: rejected for the test")
        return real_load(spec, env)

    monkeypatch.setattr(modelops.spec.envs, "load_environment", load)
    # WHEN promoting THEN it fails with exit 1, the original bytes are back and nothing is logged
    with pytest.raises(ApplyError, match="does not resolve .*restored the original"):
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=later(SOAKED))
    assert overlay.read_bytes() == before
    assert not (project / "stacks" / "promotions.jsonl").exists()
