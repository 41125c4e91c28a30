"""Faults during local apply: a failure at any resource, a killed process, a torn or corrupt
state file — the next run recovers, destroy leaves nothing, and the state always matches
what exists (checked with plain boto3 list calls across every service we provision).

The graph is tests/fixtures/hardening/minimal: one dataset, one model (a prebuilt artifact:
nothing to train), one monitor and its channel — 32 resources.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from modelops.ml.artifacts import attach_artifacts
from modelops.spec.envs import load_environment
from modelops.components import naming
from modelops.errors import ApplyError, UsageError
from modelops.local.apply import destroy, up
from modelops.local.state import StateStore
from modelops.graph.render import RenderBackend, program_for
from modelops.graph.runtime import run
from tests.helpers import FIXTURES, ROOT, Emulator
from tests.local.helpers import env_buckets, env_records, env_state, state_files

pytestmark = [pytest.mark.aws, pytest.mark.slow]

MINIMAL = FIXTURES / "hardening" / "minimal" / "modelops.yaml"
REGION = "eu-west-1"
STATE = Path(".modelops") / "state" / "tiny-dev.json"
#: state type -> inventory kind (what a boto3 list call finds); bucket settings live on the bucket
KIND = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:s3/bucketObjectv2:BucketObjectv2": "object",
    "aws:iam/role:Role": "role",
    "aws:iam/rolePolicy:RolePolicy": "role-policy",
    "aws:sagemaker/model:Model": "sm-model",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": "sm-config",
    "aws:sagemaker/endpoint:Endpoint": "sm-endpoint",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": "sm-package-group",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "alarm",
    "aws:cloudwatch/dashboard:Dashboard": "dashboard",
    "aws:sns/topic:Topic": "topic",
    "aws:sns/topicSubscription:TopicSubscription": "subscription",
    "aws:kms/key:Key": "key",
    "aws:kms/alias:Alias": "alias",
    "aws:glue/catalogDatabase:CatalogDatabase": "glue-db",
    "aws:glue/catalogTable:CatalogTable": "glue-table",
    "aws:appautoscaling/target:Target": "scaling-target",
    "aws:appautoscaling/policy:Policy": "scaling-policy",
}


def _environment(tmp_path: Path):
    return attach_artifacts(load_environment(MINIMAL, "dev"), build=True, root=tmp_path)


def _resource_names() -> list[str]:
    """Every AWS resource of the minimal graph by name (rendered: no cloud), roughly in the
    order up creates them: by dependency depth."""
    env = attach_artifacts(load_environment(MINIMAL, "dev"), build=False, root=MINIMAL.parent)
    graph = run(program_for(env), RenderBackend(region=REGION), project=env.project, stack=env.env)
    by_urn = {r.urn: r for r in graph}
    depth: dict[str, int] = {}

    def depth_of(urn: str) -> int:
        if urn not in depth:
            reg = by_urn[urn]
            depth[urn] = 1 + max([depth_of(d) for d in [*reg.dependencies, reg.parent] if d in by_urn] or [0])
        return depth[urn]

    return [r.name for r in sorted((r for r in graph if r.custom), key=lambda r: (depth_of(r.urn), r.name))]


NAMES = _resource_names()


_CLIENTS: dict[tuple[str, str], object] = {}


#: the names of the minimal project's registry (components/naming.py)
REGISTRY_PREFIX = naming.prefix("tiny", naming.REGISTRY_STACK)


def inventory(emulator: Emulator) -> Counter:
    """How many resources of each kind exist on the server, by plain boto3 list calls; the
    project's registry (bucket, objects, key, alias, package groups) not counted: it outlives
    the environment (docs/registry.md), and what the registry holds is checked on its own."""
    c = {}
    for service in ("s3", "iam", "sagemaker", "cloudwatch", "sns", "kms", "glue", "application-autoscaling"):
        if (emulator.url, service) not in _CLIENTS:
            _CLIENTS[emulator.url, service] = emulator.client(service, REGION)
        c[service] = _CLIENTS[emulator.url, service]
    found: Counter = Counter()
    buckets = env_buckets(c["s3"])
    found["bucket"] = len(buckets)
    for bucket in buckets:
        found["object"] += len(c["s3"].list_objects_v2(Bucket=bucket).get("Contents", []))
    roles = [r["RoleName"] for r in c["iam"].list_roles()["Roles"]]
    found["role"] = len(roles)
    found["role-policy"] = sum(len(c["iam"].list_role_policies(RoleName=r)["PolicyNames"]) for r in roles)
    found["sm-model"] = len(c["sagemaker"].list_models()["Models"])
    found["sm-config"] = len(c["sagemaker"].list_endpoint_configs()["EndpointConfigs"])
    found["sm-endpoint"] = len(c["sagemaker"].list_endpoints()["Endpoints"])
    found["sm-package-group"] = sum(1 for g in c["sagemaker"].list_model_package_groups()["ModelPackageGroupSummaryList"]
                                    if not g["ModelPackageGroupName"].startswith(REGISTRY_PREFIX))
    found["alarm"] = len(c["cloudwatch"].describe_alarms()["MetricAlarms"])
    found["dashboard"] = len(c["cloudwatch"].list_dashboards()["DashboardEntries"])
    found["topic"] = len(c["sns"].list_topics()["Topics"])
    found["subscription"] = len(c["sns"].list_subscriptions()["Subscriptions"])
    aliases = [a for a in c["kms"].list_aliases()["Aliases"] if not a["AliasName"].startswith("alias/aws/")]
    registry_key = {a.get("TargetKeyId") for a in aliases if a["AliasName"] == f"alias/{REGISTRY_PREFIX}"}
    keys = [k["KeyId"] for k in c["kms"].list_keys()["Keys"] if k["KeyId"] not in registry_key]
    found["key"] = sum(1 for k in keys if c["kms"].describe_key(KeyId=k)["KeyMetadata"]["KeyState"] != "PendingDeletion")
    found["alias"] = sum(1 for a in aliases if a["AliasName"] != f"alias/{REGISTRY_PREFIX}")
    databases = [d["Name"] for d in c["glue"].get_databases()["DatabaseList"]]
    found["glue-db"] = len(databases)
    found["glue-table"] = sum(len(c["glue"].get_tables(DatabaseName=d)["TableList"]) for d in databases)
    found["scaling-target"] = len(c["application-autoscaling"].describe_scalable_targets(
        ServiceNamespace="sagemaker")["ScalableTargets"])
    found["scaling-policy"] = len(c["application-autoscaling"].describe_scaling_policies(
        ServiceNamespace="sagemaker")["ScalingPolicies"])
    return +found  # drop zero counts


def settled(emulator: Emulator, quiet: float = 0.3, limit: float = 30.0) -> Counter:
    """The inventory once the requests a killed process had sent have all been served.

    A request in flight when its client dies is still served, by a server thread that may
    run it after the next ``up`` has started: the same inventory twice, ``quiet`` seconds
    apart, says none is left.
    """
    before = inventory(emulator)
    deadline = time.monotonic() + limit
    while True:
        time.sleep(quiet)
        now = inventory(emulator)
        if now == before or time.monotonic() > deadline:
            return now
        before = now


def recorded(root: Path) -> Counter:
    """What the state records (the file plus the journal of a run in progress or killed)."""
    kinds = []
    for path in state_files(root, "tiny", "dev"):  # every stack of the environment
        state = StateStore.read(root, "tiny", path.stem[len("tiny-"):])
        kinds += [KIND[r.type] for r in [*state.resources.values(), *state.pending] if r.type in KIND]
    return Counter(kinds)


def _injected(name: str):
    def fail(operation: str, type_: str, resource: str) -> Exception | None:
        if resource == name and operation in ("create", "delete"):
            return ClientError({"Error": {"Code": "InternalFailure", "Message": "injected"}}, operation)
        return None

    return fail


def test_the_minimal_graph_is_small_and_covers_every_service():
    assert 25 <= len(NAMES) <= 40
    env = attach_artifacts(load_environment(MINIMAL, "dev"), build=False, root=MINIMAL.parent)
    types = {r.type for r in run(program_for(env), RenderBackend(region=REGION), project="tiny", stack="dev") if r.custom}
    assert set(KIND) <= types


def _ids(root: Path) -> dict[str, str]:
    return {r.name: r.id for r in env_records(root, "tiny", "dev").values()}


@pytest.mark.parametrize("chunk", range(2), ids=["even", "odd"])
def test_a_failure_at_each_resource_resumes_and_destroys_without_orphans(emulator, tmp_path, chunk, recwarn):
    # Every position of the graph (half per test, for parallel workers), in chains: each
    # failing up is also the re-run of the one before it, so after every failure we check
    # that the state matches what exists AND that the re-run kept what was recorded. A
    # position created by an earlier run of the chain waits for the next chain.
    env = _environment(tmp_path)
    remaining = NAMES[chunk::2]
    chains = 0
    while remaining:
        chains += 1
        root = tmp_path / f"chain{chains}"
        failed_here = []
        for name in list(remaining):
            before = _ids(root)
            if name in before:
                continue
            # WHEN the create of this resource fails (resuming whatever the chain left)
            with pytest.raises(ApplyError, match=rf"{name} failed: InternalFailure: injected; what exists is recorded"):
                up(env, emulator.target(), root, fail_at=_injected(name))
            remaining.remove(name)
            failed_here.append(name)
            # THEN what exists is exactly what the state records (nothing orphaned, nothing phantom)
            assert inventory(emulator) == recorded(root), name
            after = _ids(root)
            assert name not in after
            # AND the run resumed: everything recorded before is still recorded, with the same id
            assert {k: after.get(k) for k in before} == before, name
        assert failed_here, f"no progress: {remaining}"
        # AND a last re-run completes the environment, every check passing
        before = _ids(root)
        resumed = up(env, emulator.target(), root)
        counts = resumed.counts()
        assert counts.get("unchanged", 0) == len(before) and counts.get("created", 0) == len(NAMES) - len(before)
        assert all(c.ok for c in resumed.checks)
        assert inventory(emulator) == recorded(root)
        # AND destroy leaves nothing in any service, and no state file
        destroy(env, emulator.target(), root)
        assert inventory(emulator) == Counter()
        assert state_files(root, "tiny", "dev") == []
    assert chains <= len(NAMES) // 2
    # AND no failed run left coroutines of the SDK unstarted ("... was never awaited")
    gc.collect()  # what the runs left for later (any later test) is collected, and warns, here
    assert [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)] == []


def test_a_failure_at_each_delete_resumes_and_leaves_nothing(emulator, tmp_path):
    env = _environment(tmp_path)
    order: list[str] = []
    up(env, emulator.target(), tmp_path / "probe")
    destroy(env, emulator.target(), tmp_path / "probe",
            fail_at=lambda op, type_, name: order.append(name) if op == "delete" else None)
    assert sorted(order) == sorted(NAMES)
    up(env, emulator.target(), tmp_path)
    tried = []
    for name in order:  # dependants first, as destroy goes
        state = env_state(tmp_path, "tiny", "dev")
        if name not in {r["name"] for r in state["resources"]}:
            continue  # deleted by an earlier attempt, in the same wave as that one's failure
        tried.append(name)
        # WHEN deleting this resource fails
        with pytest.raises(ApplyError, match=rf"delete \S+ {name} failed: InternalFailure: injected"):
            destroy(env, emulator.target(), tmp_path, fail_at=_injected(name))
        # THEN the state still matches what exists, and the failed one is still recorded
        assert inventory(emulator) == recorded(tmp_path), name
        assert name in {r["name"] for r in env_state(tmp_path, "tiny", "dev")["resources"]}
    assert len(tried) >= 3, tried
    destroy(env, emulator.target(), tmp_path)
    assert inventory(emulator) == Counter()
    assert state_files(tmp_path, "tiny", "dev") == []


def test_a_killed_up_is_recovered_by_the_next_run(emulator, tmp_path):
    # GIVEN a copy of the minimal project
    project = tmp_path / "project"
    project.mkdir()
    for item in ("modelops.yaml", "stacks", "models"):
        source = MINIMAL.parent / item
        (subprocess.run(["cp", "-r", str(source), str(project / item)], check=True))
    cmd = [sys.executable, "-m", "modelops", "up", "modelops.yaml", "--env", "dev", "--endpoint-url", emulator.url]
    env = {**os.environ, "AWS_CA_BUNDLE": emulator.ca_bundle}
    # WHEN up is killed (SIGKILL: no cleanup at all) once some resources exist
    process = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = project / STATE
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if len(env_records(project, "tiny", "dev")) >= 5:
                    break
            except UsageError:  # the journal's last line half-written as we read
                pass
            time.sleep(0.02)
        assert process.poll() is None, "up finished before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    # THEN the state left behind (file and journal) reads back, and each record exists
    killed = env_records(project, "tiny", "dev")
    assert 5 <= len(killed) < len(NAMES)
    found = settled(emulator)
    assert set(recorded(project).items()) <= set(found.items()) | {
        (k, v) for k, v in recorded(project).items() if found[k] >= v}
    # AND the lock died with the process: the next up runs, and completes the environment
    again = subprocess.run(cmd + ["--json"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert "another modelops up/destroy is running" not in again.stderr
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert len(result["resources"]) == len(NAMES)
    # AND destroy leaves nothing (a resource created but not recorded at the kill would show here)
    gone = subprocess.run([*cmd[:3], "destroy", *cmd[4:]], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)
    assert gone.returncode == 0, gone.stderr
    assert inventory(emulator) == Counter()


#: one resource of each way a create can be recovered: named (deleted by name), named with a
#: composite id, an ARN id, an unnamed key (found by description and tags), idempotent puts
CRASH_AT = {
    # name: whether the next run finds and removes something (False: an idempotent put, the
    # repeated create converges on the same resource)
    "tiny-dev-key": True,  # no name: found by description and tags
    "tiny-dev-key-alias": True,
    "tiny-dev-artifacts-bucket": True,
    "tiny-dev-model-scorer-role-policy": True,  # id role:name
    "tiny-dev-dataset-rows-table": True,  # id account:database:name
    "tiny-dev-notifications-oncall-topic": True,  # id an ARN
    "tiny-dev-model-scorer-endpoint": True,
    "tiny-dev-model-scorer-scaling-policy": True,
    "tiny-dev-notifications-oncall-email-d876c66b": False,
    "tiny-dev-model-scorer-artifact": False,
}


def test_the_crash_positions_are_resources_of_the_graph():
    assert set(CRASH_AT) <= set(NAMES), sorted(set(CRASH_AT) - set(NAMES))


@pytest.mark.parametrize("name", CRASH_AT)
def test_a_crash_between_an_aws_create_and_its_record_is_recovered(emulator, tmp_path, name):
    env = _environment(tmp_path)
    # GIVEN an up whose process dies right after AWS created this resource, before its record
    code = (
        "import os, sys; from pathlib import Path; from modelops.local.state import StateStore;"
        "real = StateStore.put;"
        f"StateStore.put = lambda self, r: os._exit(9) if r.name == {name!r} else real(self, r);"
        "from modelops.ml.artifacts import attach_artifacts; from modelops.spec.envs import load_environment;"
        "from modelops.local.apply import up; from modelops.local.server import Target;"
        f"root = Path({str(tmp_path)!r});"
        f"env = attach_artifacts(load_environment({str(MINIMAL)!r}, 'dev'), build=True, root=root);"
        f"up(env, Target(url={emulator.url!r}, verify={emulator.ca_bundle!r}, embedded=False, "
        f"identity={emulator.url!r}), root)"
    )
    died = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert died.returncode == 9, died.stderr[-2000:]
    # THEN it exists but is not recorded (the window the next run must close)
    assert name not in _ids(tmp_path)
    assert settled(emulator) != recorded(tmp_path)
    # WHEN up runs again THEN it removes the unrecorded one first, says so, and completes
    again = up(env, emulator.target(), tmp_path)
    if CRASH_AT[name]:  # (creates in flight beside it were cut short too, and are named with it)
        assert "stopped between creating and recording" in again.note, again.note
    assert len(_ids(tmp_path)) == len(NAMES)
    assert all(c.ok for c in again.checks)
    assert inventory(emulator) == recorded(tmp_path)
    # AND destroy leaves nothing
    destroy(env, emulator.target(), tmp_path)
    assert inventory(emulator) == Counter()


# ---------------------------------------------------------------- the state file itself


def _resource(n: int):
    from modelops.local.state import ResourceState

    return ResourceState(urn=f"urn:{n}", type="aws:s3/bucket:Bucket", name=f"b{n}", id=f"b{n}", inputs={},
                         outputs={})


def _killed_run(root: Path, script: str) -> None:
    """Run ``script`` on an open state in a child process that then dies without cleanup."""
    code = (
        "import os; from pathlib import Path;"
        "from modelops.local.state import StateStore; from tests.local.test_hardening_faults import _resource;"
        f"store = StateStore.open(Path({str(root)!r}), 'tiny', 'dev').__enter__();"
        f"{script}; os._exit(9)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 9, result.stderr


def _urns(root: Path) -> list[str]:
    return sorted(StateStore.read(root, "tiny", "dev").resources)


def test_a_killed_run_leaves_a_journal_that_the_next_run_folds_in(tmp_path):
    # GIVEN a run that recorded three resources, removed one and died (the file was never written)
    _killed_run(tmp_path, "[store.put(_resource(i)) for i in (1, 2, 3)]; store.remove('urn:2')")
    assert not (tmp_path / STATE).exists()
    assert (tmp_path / STATE).with_suffix(".journal").exists()
    # THEN the state reads back from the journal
    assert _urns(tmp_path) == ["urn:1", "urn:3"]
    # AND the next run folds it into the file and removes the journal
    with StateStore.open(tmp_path, "tiny", "dev") as store:
        assert sorted(store.snapshot()) == ["urn:1", "urn:3"]
    assert not (tmp_path / STATE).with_suffix(".journal").exists()
    assert sorted(r["urn"] for r in json.loads((tmp_path / STATE).read_text())["resources"]) == ["urn:1", "urn:3"]


def test_concurrent_records_are_all_journaled_whole_before_a_kill(tmp_path):
    # GIVEN a run where 16 threads record 25 resources each at once (registrations arrive from
    # the SDK's thread pool; journal lines are encoded outside the lock, synced as a group)
    # and that dies as soon as the last record returned
    _killed_run(tmp_path, (
        "from concurrent.futures import ThreadPoolExecutor;"
        "pool = ThreadPoolExecutor(16);"
        "list(pool.map(lambda i: (store.begin_create(__import__('modelops.local.state', fromlist=['Intent']).Intent("
        "f'urn:{i}', 'aws:s3/bucket:Bucket', f'b{i}', f'b{i}', {})), store.put(_resource(i))), range(400)))"
    ))
    # THEN every record returned is in the journal, each line whole, no intent left open
    state = StateStore.read(tmp_path, "tiny", "dev")
    assert sorted(state.resources) == sorted(f"urn:{i}" for i in range(400))
    assert state.intents == {}
    lines = (tmp_path / STATE).with_suffix(".journal").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 1 + 800 + 1
    assert all(json.loads(line) for line in lines[:-1])


def test_a_torn_last_journal_line_is_an_operation_that_did_not_happen(tmp_path):
    _killed_run(tmp_path, "[store.put(_resource(i)) for i in (1, 2)]")
    journal = (tmp_path / STATE).with_suffix(".journal")
    complete = journal.read_bytes()
    # WHEN the process died halfway through appending the next line
    torn = complete.splitlines()[-1][:40]
    journal.write_bytes(complete + torn.replace(b"urn:2", b"urn:9"))
    # THEN the lines before it hold, the torn one is ignored
    assert _urns(tmp_path) == ["urn:1", "urn:2"]


def test_a_corrupt_line_inside_the_journal_is_reported(tmp_path):
    _killed_run(tmp_path, "[store.put(_resource(i)) for i in (1, 2)]")
    journal = (tmp_path / STATE).with_suffix(".journal")
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join([lines[0], b"{not json\n", *lines[1:]]))
    with pytest.raises(UsageError, match=r"tiny-dev.json: the local state is corrupt \(tiny-dev.journal line 2 is not JSON\)"):
        with StateStore.open(tmp_path, "tiny", "dev"):
            pass


@pytest.mark.parametrize("crash", ["mid-write", "before-fsync", "before-rename"])
def test_a_crash_while_folding_the_journal_loses_nothing(tmp_path, monkeypatch, crash):
    from modelops.local import state as state_module

    # GIVEN a file with one resource and a killed run's journal with two more
    with StateStore.open(tmp_path, "tiny", "dev") as store:
        store.put(_resource(1))
    good = (tmp_path / STATE).read_text()
    _killed_run(tmp_path, "[store.put(_resource(i)) for i in (2, 3)]")

    # WHEN the next run dies while folding the journal into the file
    class Torn:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, text):
            self.handle.write(text[: len(text) // 2])
            self.handle.flush()
            raise OSError("killed mid-write")

        def __getattr__(self, name):
            return getattr(self.handle, name)

    def boom(*args, **kwargs):
        raise OSError(f"killed {crash}")

    if crash == "mid-write":
        # the state file is written by modelops.files.atomic_write, through os.fdopen
        fdopen = os.fdopen
        monkeypatch.setattr(state_module.os, "fdopen", lambda *a, **k: Torn(fdopen(*a, **k)))
    elif crash == "before-fsync":
        monkeypatch.setattr(state_module.os, "fsync", boom)
    else:
        monkeypatch.setattr(state_module.os, "replace", boom)
    with pytest.raises(OSError, match="killed"):
        with StateStore.open(tmp_path, "tiny", "dev"):
            pass
    monkeypatch.undo()
    # THEN the file is still the previous complete version, and with the journal nothing is lost
    assert (tmp_path / STATE).read_text() == good
    with StateStore.open(tmp_path, "tiny", "dev") as store:
        assert sorted(store.snapshot()) == ["urn:1", "urn:2", "urn:3"]


def test_a_journal_left_behind_by_a_finished_fold_is_not_replayed(tmp_path, monkeypatch):
    # GIVEN a killed run's journal that puts urn:2
    _killed_run(tmp_path, "store.put(_resource(2))")
    journal = (tmp_path / STATE).with_suffix(".journal")
    stale = journal.read_bytes()
    # AND a later run that folded it and then removed urn:2
    with StateStore.open(tmp_path, "tiny", "dev") as store:
        store.remove("urn:2")
        store.put(_resource(1))
    # WHEN the old journal reappears (the fold renamed the file but died before deleting it)
    journal.write_bytes(stale)
    # THEN it is recognised as already folded: urn:2 stays removed
    assert _urns(tmp_path) == ["urn:1"]


CORRUPT = {
    "truncated JSON": '{"version": 1, "project": "tiny", "env": "dev", "resources": [{"urn": "x"',
    "empty file": "",
    "not UTF-8": b"\xff\xfe{}".decode("latin-1"),
    "wrong schema version": json.dumps({"version": 99, "project": "tiny", "env": "dev", "resources": []}),
    "a JSON list": "[]",
    "a JSON string": '"state"',
    "resources not a list": json.dumps({"version": 1, "project": "tiny", "env": "dev", "resources": {"a": 1}}),
    "resource not an object": json.dumps({"version": 1, "project": "tiny", "env": "dev", "resources": ["urn"]}),
    "resource without type": json.dumps({"version": 1, "project": "tiny", "env": "dev", "resources": [
        {"urn": "u", "type": "", "name": "n", "id": "i", "inputs": {}, "outputs": {}}]}),
    "inputs not an object": json.dumps({"version": 1, "project": "tiny", "env": "dev", "resources": [
        {"urn": "u", "type": "t", "name": "n", "id": "i", "inputs": [], "outputs": {}}]}),
    "id not a string": json.dumps({"version": 1, "project": "tiny", "env": "dev", "resources": [
        {"urn": "u", "type": "t", "name": "n", "id": {"x": 1}, "inputs": {}, "outputs": {}}]}),
    "another environment's state": json.dumps({"version": 1, "project": "other", "env": "prod", "resources": []}),
    "bad salt": json.dumps({"version": 1, "project": "tiny", "env": "dev", "salt": "zz", "resources": []}),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_corrupt_state_is_reported_not_trusted(tmp_path, case):
    path = tmp_path / STATE
    path.parent.mkdir(parents=True)
    path.write_text(CORRUPT[case], encoding="latin-1")
    with pytest.raises(UsageError, match=r"tiny-dev.json: the local state is corrupt \(.+\); it was not used"):
        with StateStore.open(tmp_path, "tiny", "dev"):
            pass
    # AND the lock was released: a corrected file opens at once
    path.unlink()
    with StateStore.open(tmp_path, "tiny", "dev"):
        pass


def test_up_on_a_corrupt_state_exits_2_with_one_line_and_provisions_nothing(emulator, tmp_path):
    project = tmp_path / "project"
    subprocess.run(["cp", "-r", str(MINIMAL.parent), str(project)], check=True)
    (project / STATE).parent.mkdir(parents=True)
    (project / STATE).write_text("[]")
    result = subprocess.run(
        [sys.executable, "-m", "modelops", "up", "modelops.yaml", "--env", "dev", "--endpoint-url", emulator.url],
        cwd=project, env={**os.environ, "AWS_CA_BUNDLE": emulator.ca_bundle}, capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "the local state is corrupt" in result.stderr
    assert inventory(emulator) == Counter()
