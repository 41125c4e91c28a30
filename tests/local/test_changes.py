"""Re-running ``up``: only what changed is touched; failures stop cleanly and resume; state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from modelops.graph.resource_types import (
    BUCKET_OBJECT, DASHBOARD, ENDPOINT_CONFIG, ENDPOINT, METRIC_ALARM as ALARM, PIPELINE, ROLE, ROLE_POLICY, SCHEDULE,
)
from modelops.ml.artifacts import attach_artifacts
from modelops.spec.envs import load_environment
from modelops.errors import ApplyError, UsageError
from modelops.local.apply import destroy, up
from modelops.local.backend import MotoBackend, handler_for
from modelops.local.handlers import Context
from modelops.local.state import StateStore
from modelops.graph.runtime import ProgramError, run
from tests.helpers import ROOT, Emulator
from tests.local.helpers import copy_project, env_buckets, env_state, environment, state_files

pytestmark = [pytest.mark.aws, pytest.mark.slow]


#: the resources of one model's monitor job (components/monitor_job.py: pipeline, schedule,
#: three roles and their policies, script, config) and its labels prefix marker
JOB_RESOURCES = 11
#: what churn dev provisions: 37 before the drift monitor's job, 11 for it
CHURN_DEV_RESOURCES = 37 + JOB_RESOURCES


def _fail_on_any(operation: str, type_: str, name: str) -> Exception:
    return AssertionError(f"unexpected {operation} of {type_} {name}")


def _state(root: Path, project: str = "churn", env: str = "dev") -> dict:
    return env_state(root, project, env)


def _ids(root: Path) -> dict[str, str]:
    return {r["urn"]: r["id"] for r in _state(root)["resources"]}


def test_spec_change_applies_only_the_change(emulator: Emulator, artifact_root: Path, tmp_path: Path) -> None:
    # GIVEN the churn project, provisioned
    spec = copy_project("churn", tmp_path / "project")
    root = spec.parent
    env = attach_artifacts(load_environment(spec, "dev"), build=True, root=artifact_root)
    first = up(env, emulator.target(), root)
    before = {r["urn"]: r for r in _state(root)["resources"]}
    kms = emulator.client("kms")
    key_id = kms.describe_key(KeyId="alias/churn-dev")["KeyMetadata"]["KeyId"]
    role_id = emulator.client("iam").get_role(RoleName="churn-dev-churn-classifier-exec")["Role"]["RoleId"]
    # WHEN the overlay doubles the instances and the base drops the drift monitor and
    # raises the latency threshold
    (root / "stacks" / "dev.yaml").write_text("models: {churn-classifier: {serving: {instance_count: 2}}}\n")
    base = yaml.safe_load(spec.read_text())
    del base["monitors"]["churn-drift"]
    base["monitors"]["churn-latency"]["above"] = "400ms"
    spec.write_text(yaml.safe_dump(base, sort_keys=False))
    changed_env = attach_artifacts(load_environment(spec, "dev"), build=True, root=artifact_root)
    second = up(changed_env, emulator.target(), root)
    # THEN exactly the endpoint configuration is replaced, the endpoint moves to it, the
    # latency alarm is updated and the drift alarm deleted with the model's monitor job (its
    # only job monitor: pipeline, schedule, three roles and policies, script, config and the
    # labels prefix marker), and the dashboard loses the drift job's widget; everything else is untouched
    changes = {(a.type, a.name.rsplit("-", 1)[-1] if a.type == ALARM else a.type, a.action)
               for a in second.actions if a.action != "unchanged"}
    assert {(t, a) for t, _, a in changes} == {(ENDPOINT_CONFIG, "replaced"), (ENDPOINT, "updated"),
                                                (ALARM, "updated"), (ALARM, "deleted"), (DASHBOARD, "updated"),
                                                (PIPELINE, "deleted"), (SCHEDULE, "deleted"), (ROLE, "deleted"),
                                                (ROLE_POLICY, "deleted"), (BUCKET_OBJECT, "deleted")}
    by_action = {a.action: a for a in second.actions if a.type == ALARM and a.action != "unchanged"}
    assert by_action["deleted"].label.endswith("churn-dev-churn-drift")
    assert "churn-latency" in by_action["updated"].label
    endpoint_action = next(a for a in second.actions if a.type == ENDPOINT)
    assert "moto has no UpdateEndpoint" in endpoint_action.note
    unchanged = [a for a in second.actions if a.action == "unchanged"]
    assert len(unchanged) == len(first.actions) - 5 - JOB_RESOURCES
    after = {r["urn"]: r for r in _state(root)["resources"]}
    assert all(after[a.urn]["id"] == before[a.urn]["id"] for a in unchanged)
    # AND in the emulator: same key, same role; the endpoint serves the new configuration
    # with two instances; the old configuration and the drift alarm are gone
    assert kms.describe_key(KeyId="alias/churn-dev")["KeyMetadata"]["KeyId"] == key_id
    assert emulator.client("iam").get_role(RoleName="churn-dev-churn-classifier-exec")["Role"]["RoleId"] == role_id
    sm = emulator.client("sagemaker")
    config_name = sm.describe_endpoint(EndpointName="churn-dev-churn-classifier")["EndpointConfigName"]
    assert sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"][0][
        "InitialInstanceCount"] == 2
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    assert configs == [config_name]
    alarms = emulator.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert "churn-dev-churn-drift" not in {a["AlarmName"] for a in alarms}
    latency = next(a for a in alarms if a["AlarmName"] == "churn-dev-churn-latency")
    assert latency["Threshold"] == pytest.approx(400_000)
    # AND a third run has nothing to do
    assert not up(changed_env, emulator.target(), root, fail_at=_fail_on_any).changed


def test_failure_mid_apply_stops_cleanly_resumes_and_destroys(
    emulator: Emulator, artifact_root: Path, tmp_path: Path
) -> None:
    env = environment(ROOT / "modelops.yaml", "dev", artifact_root)
    creates: list[str] = []

    def fail_fifth_create(operation: str, type_: str, name: str) -> Exception | None:
        if operation != "create":
            return None
        creates.append(name)
        if len(creates) == 5:
            return ClientError({"Error": {"Code": "InternalFailure", "Message": "injected"}}, "Create")
        return None

    # WHEN the fifth create fails
    with pytest.raises(ApplyError, match=r"^create aws:\S+ \S+ failed: InternalFailure: injected; what exists is "
                                         r"recorded in .*churn-dev.json"):
        up(env, emulator.target(), tmp_path, fail_at=fail_fifth_create)
    # THEN what was created is recorded, and every recorded resource exists
    recorded = _state(tmp_path)["resources"]
    assert 4 <= len(recorded) < CHURN_DEV_RESOURCES
    failed_name = creates[4]
    assert failed_name not in {r["name"] for r in recorded}
    ctx = Context(emulator.target().clients(env.region), env.region)
    assert all(handler_for(r["type"]).exists(ctx, r["id"], r["outputs"]) for r in recorded)
    # AND a re-run resumes: what exists is unchanged, the rest is created
    resumed = up(env, emulator.target(), tmp_path)
    counts = resumed.counts()
    assert counts["unchanged"] == len(recorded) and counts["created"] == CHURN_DEV_RESOURCES - len(recorded)
    assert all(c.ok for c in resumed.checks)
    # AND destroy leaves no orphan
    destroy(env, emulator.target(), tmp_path)
    assert env_buckets(emulator.client("s3")) == []
    assert emulator.client("sagemaker").list_models()["Models"] == []
    assert emulator.client("iam").list_roles()["Roles"] == []
    assert state_files(tmp_path) == []


def test_failure_during_destroy_names_the_resource_and_resumes(
    emulator: Emulator, artifact_root: Path, tmp_path: Path
) -> None:
    env = environment(ROOT / "modelops.yaml", "dev", artifact_root)
    up(env, emulator.target(), tmp_path)

    def fail_role(operation: str, type_: str, name: str) -> Exception | None:
        if operation == "delete" and type_ == "aws:iam/role:Role":
            return ClientError({"Error": {"Code": "Throttling", "Message": "rate exceeded"}}, "DeleteRole")
        return None

    with pytest.raises(ApplyError, match=r"delete aws:iam/role:Role churn-dev-\S+ failed: Throttling: rate exceeded"):
        destroy(env, emulator.target(), tmp_path, fail_at=fail_role)
    # the group stack stopped at the first role it deleted (a monitor job role, before the
    # job's objects and the buckets' own resources are gone, now that the model has three
    # more roles): that role and what was still to delete stay recorded, and they exist;
    # the shared stack, destroyed last, was not touched
    group = json.loads((tmp_path / ".modelops" / "state" / "churn-dev.ml-platform.json").read_text())
    left = group["resources"]
    assert "aws:iam/role:Role" in [r["type"] for r in left] and 0 < len(left) < CHURN_DEV_RESOURCES
    ctx = Context(emulator.target().clients(env.region), env.region)
    assert all(handler_for(r["type"]).exists(ctx, r["id"], r["outputs"]) for r in left)
    assert (tmp_path / ".modelops" / "state" / "churn-dev.json").exists()
    destroy(env, emulator.target(), tmp_path)
    assert emulator.client("iam").list_roles()["Roles"] == []


def test_corrupt_state_is_reported_and_nothing_is_provisioned(
    emulator: Emulator, artifact_root: Path, tmp_path: Path
) -> None:
    env = environment(ROOT / "modelops.yaml", "dev", artifact_root)
    state = tmp_path / ".modelops" / "state" / "churn-dev.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"version": 1, "resources": [{"urn": "x"')
    with pytest.raises(UsageError, match=r"churn-dev.json: the local state is corrupt .* it was not used"):
        up(env, emulator.target(), tmp_path)
    assert emulator.client("s3").list_buckets()["Buckets"] == []


def test_concurrent_runs_on_one_environment_are_refused(
    emulator: Emulator, artifact_root: Path, tmp_path: Path
) -> None:
    env = environment(ROOT / "modelops.yaml", "dev", artifact_root)
    with StateStore.open(tmp_path, "churn", "dev"):
        with pytest.raises(UsageError, match=r"another modelops up/destroy is running on churn-dev"):
            up(env, emulator.target(), tmp_path)
    assert emulator.client("s3").list_buckets()["Buckets"] == []


def test_a_token_without_handler_is_a_loud_error(emulator: Emulator, tmp_path: Path) -> None:
    def program() -> None:
        import pulumi_aws as aws

        aws.ec2.Vpc("network", cidr_block="10.0.0.0/16")

    with pytest.raises(ApplyError, match=r"no local handler for resource type aws:ec2/vpc:Vpc"):
        handler_for("aws:ec2/vpc:Vpc")
    with StateStore.open(tmp_path, "p", "e") as state:
        backend = MotoBackend(Context(emulator.target().clients("eu-west-1"), "eu-west-1"), state)
        with pytest.raises(ProgramError, match=r"aws:ec2/vpc:Vpc"):
            run(program, backend, project="p", stack="e")


def test_smoke_checks_describe_each_thing_once_and_catch_a_deleted_topic_or_alarm(
    emulator: Emulator, artifact_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import Counter

    from modelops.local.apply import RECORD_CALLS_ENV, RecordingClients
    from modelops.local.smoke import smoke_checks

    # GIVEN the churn project, provisioned, whose alarms notify one topic
    spec = copy_project("churn", tmp_path / "project")
    root = spec.parent
    env = attach_artifacts(load_environment(spec, "dev"), build=True, root=artifact_root)
    monkeypatch.delenv(RECORD_CALLS_ENV, raising=False)
    assert all(c.ok for c in up(env, emulator.target(), root).checks)
    # (the topics are the shared stack's, the alarms the group stack's, which reads their ARNs)
    topics = [r for r in StateStore.read(root, env.project, env.env).resources.values()
              if r.type == "aws:sns/topic:Topic"]
    arns = {t.id for t in topics}
    with StateStore.open(root, env.project, f"{env.env}.ml-platform") as state:
        resources = state.snapshot().values()
        alarms = [r for r in resources if r.type == ALARM]
        assert alarms and topics
        # WHEN the smoke checks run (their AWS calls recorded)
        calls = tmp_path / "calls.jsonl"
        ctx = Context(RecordingClients(emulator.target().clients(env.region), calls), env.region)
        checks = smoke_checks(ctx, state, arns)
        ctx.clients.close()
        ops = Counter((c["service"], c["operation"]) for c in map(json.loads, calls.read_text().splitlines()))
        # THEN every check passes with each thing described once: the alarms (their actions
        # with them) 100 to a call, each topic once for all the alarms that notify it, each
        # pipeline once for itself and its schedule, each step role's policies once
        assert all(c.ok for c in checks), [c for c in checks if not c.ok]
        assert ops[("cloudwatch", "describe_alarms")] == -(-len(alarms) // 100)
        assert ops[("sns", "get_topic_attributes")] == len(topics)
        pipelines = [r for r in resources if r.type == "aws:sagemaker/pipeline:Pipeline"]
        schedules = [r for r in resources if r.type == "aws:scheduler/schedule:Schedule"]
        assert pipelines and schedules and ops[("sagemaker", "describe_pipeline")] == len(pipelines)
        assert ops[("iam", "list_role_policies")] == len({c.name.split(" role ")[1].split(" ")[0] for c in checks
                                                          if " may read its inputs" in c.name})
        # AND WHEN the topic is deleted behind our back, every alarm wired to it fails its check
        for topic in topics:
            emulator.client("sns").delete_topic(TopicArn=topic.id)
        failed = {c.name for c in smoke_checks(Context(emulator.target().clients(env.region), env.region), state,
                                               arns) if not c.ok}
        wired = {f"alarm {a.id} wired to its topics" for a in alarms
                 if any(t.id in a.inputs.get("alarmActions", []) for t in topics)}
        assert wired and wired <= failed
        # AND WHEN an alarm is deleted behind our back, its check says it is not found
        gone = alarms[0].id
        emulator.client("cloudwatch").delete_alarms(AlarmNames=[gone])
        failed_now = {c.name: c.detail for c in smoke_checks(Context(emulator.target().clients(env.region), env.region),
                                                         state, arns) if not c.ok}
        assert [(name, detail) for name, detail in failed_now.items() if gone in name] == [
            (f"cloudwatch/metricAlarm arn:aws:cloudwatch:{env.region}:123456789012:alarm:{gone} described", "not found")
        ], failed_now
