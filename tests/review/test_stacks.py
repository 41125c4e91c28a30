"""Which stacks a change touches, and a resource that moves between stacks (modelops diff)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import yaml

from modelops.graph.resource_types import BUCKET
from modelops.review.diff import diff
from tests.graph.helpers import write_rich_project
from tests.helpers import ROOT
from tests.local.helpers import copy_project


def _edit(spec, change) -> None:
    data = yaml.safe_load(spec.read_text())
    change(data)
    spec.write_text(yaml.safe_dump(data, sort_keys=False))


def _pair(tmp_path):
    base = copy_project("churn", tmp_path / "base")
    head = copy_project("churn", tmp_path / "head")
    return base, head


def test_a_one_model_change_touches_its_group_stack_only(tmp_path):
    # GIVEN the example, and a change of one model's serving
    base, head = _pair(tmp_path)
    _edit(head, lambda d: d["models"]["churn-classifier"].setdefault("serving", {}).update(instance_type="ml.c5.large"))
    # WHEN it is reviewed
    [dev] = diff(head, str(base.parent), envs=["dev"]).envs
    # THEN only the model's group stack is touched: the shared stack has nothing to deploy
    assert dev.stacks == ["dev.ml-platform"]
    assert all(r.urn.startswith("urn:pulumi:dev.ml-platform::") for r in dev.resources)


def test_a_notification_change_touches_the_shared_stack(tmp_path):
    base, head = _pair(tmp_path)
    _edit(head, lambda d: d["notifications"]["oncall"]["email"].append("second@example.com"))
    [dev] = diff(head, str(base.parent), envs=["dev"]).envs
    assert dev.stacks[0] == "dev" and {r.type for r in dev.resources} == {"aws:sns/topicSubscription:TopicSubscription"}


def test_an_entity_that_moves_stack_is_a_delete_and_a_create_with_its_data_loss(tmp_path):
    # GIVEN a 40-model project deployed as one group stack, and a change that splits the group in two
    base = write_rich_project(tmp_path / "base", 40)
    (base.parent / "stacks" / "Pulumi.prod.ml-platform.yaml").write_text(yaml.safe_dump(
        {"config": {"modelops:group": "ml-platform", "modelops:partitions": 1}}))
    shutil.copytree(base.parent, tmp_path / "head")
    head = tmp_path / "head" / "modelops.yaml"
    (head.parent / "stacks" / "Pulumi.prod.ml-platform.yaml").write_text(yaml.safe_dump(
        {"config": {"modelops:group": "ml-platform", "modelops:partitions": 2}}))
    # WHEN it is reviewed
    [prod] = diff(head, str(base.parent), envs=["prod"]).envs
    # THEN what moves to the new stack is deleted from the old one and created in the new one
    assert prod.stacks == ["prod.ml-platform", "prod.ml-platform.2"]
    deleted = {r.name for r in prod.resources if r.action == "delete" and r.type == BUCKET}
    created = {r.name for r in prod.resources if r.action == "create" and r.type == BUCKET}
    assert deleted and deleted == created
    assert all(r.urn.startswith("urn:pulumi:prod.ml-platform.2::") for r in prod.resources if r.action == "create")
    # AND each moved bucket is flagged as data loss, and nothing that stays is touched
    lost = {f.resource for f in prod.flags if f.kind == "data-loss"}
    assert {r.urn for r in prod.resources if r.action == "delete" and r.type == BUCKET} <= lost
    assert {r.action for r in prod.resources} == {"delete", "create"}


def test_stacks_changed_since_lists_what_a_deploy_runs_pulumi_up_on(tmp_path):
    # GIVEN a one-model change (the deploy workflow's question: which stacks to `pulumi up`)
    base, head = _pair(tmp_path)
    _edit(head, lambda d: d["models"]["churn-classifier"].setdefault("serving", {}).update(instance_count=2))
    # WHEN the stacks it touches are listed
    proc = subprocess.run([sys.executable, "-m", "modelops", "stacks", str(head), "--env", "dev", "--changed-since",
                           str(base.parent), "--json"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    # THEN the one group stack, not the shared one
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [r["stack"] for r in data["stacks"]] == ["dev.ml-platform"] and data["removed"] == []
