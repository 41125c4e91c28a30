"""The GitHub workflows: schema-valid, zizmor-clean, pinned, least privilege — checked offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
FILES = sorted(WORKFLOWS.glob("*.yml"))
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def load(name: str) -> dict:
    # PyYAML reads the key `on` as True: map it back for readable assertions
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(workflow: dict):
    for job in workflow["jobs"].values():
        yield from job.get("steps", [])


def test_the_three_workflows_exist():
    assert [f.name for f in FILES] == ["deploy.yml", "pr.yml", "promote.yml"]


def test_valid_against_the_github_workflow_schema():
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, FILES)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_offline_reports_nothing():
    result = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--persona=auditor", "--format=json", str(WORKFLOWS)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_pinned_and_checkout_without_credentials(path):
    workflow = load(path.name)
    uses = [s for s in steps(workflow) if "uses" in s]
    assert uses
    for step in uses:
        assert SHA_PIN.match(step["uses"]), step["uses"]
        if step["uses"].startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_least_privilege_permissions(path):
    workflow = load(path.name)
    assert workflow["permissions"] == {}
    for job in workflow["jobs"].values():
        assert job["permissions"], "each job states what it needs"
        assert "write-all" not in str(job["permissions"])


def test_pr_workflow_comments_once_and_gates_on_policy_and_data_loss():
    workflow = load("pr.yml")
    assert "pull_request" in workflow["on"]
    text = (WORKFLOWS / "pr.yml").read_text()
    assert "modelops validate" in text and "--format markdown" in text
    assert "<!-- modelops-review -->" in text and "updateComment" in text
    assert "allow-data-loss" in text and 'fail_on="policy,data-loss"' in text
    assert workflow["jobs"]["review"]["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_pr_review_fails_when_codeowners_does_not_route_a_spec_file_to_its_owner():
    # GIVEN the PR workflow THEN it checks the repository's CODEOWNERS, and its gate fails on it
    review = load("pr.yml")["jobs"]["review"]["steps"]
    owners = next(step for step in review if step.get("id") == "owners")
    assert ".venv/bin/modelops owners modelops.yaml --check .github/CODEOWNERS" in owners["run"]
    gate = next(step for step in review if step.get("name", "").startswith("Gate"))
    assert "steps.owners.outputs.exit-code != '0'" in gate["if"]
    # AND the repository's CODEOWNERS passes that very check today (exit 0; 3 when a file is not routed)
    result = subprocess.run([str(BIN / "modelops"), "owners", "modelops.yaml", "--check", ".github/CODEOWNERS"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pr_review_reuses_its_earlier_renders_else_mains():
    # the render cache of the PR's earlier runs, else main's, is restored before validate and diff render
    review = load("pr.yml")["jobs"]["review"]["steps"]
    names = [step.get("name", "") for step in review]
    cache = next(step for step in review if step.get("uses", "").startswith("actions/cache@"))
    assert names.index(cache["name"]) < names.index(next(n for n in names if n.startswith("Validate")))
    assert cache["with"]["path"] == ".modelops/cache"
    # written under the pull request's number; restored from its own runs first, then from main's
    assert cache["with"]["key"].startswith("modelops-render-pr${{ github.event.pull_request.number }}-")
    assert cache["with"]["restore-keys"].splitlines() == ["modelops-render-pr${{ github.event.pull_request.number }}-",
                                                     "modelops-render-main-"]
    # main's cache is saved by the deploy workflow, after rendering every environment of the commit
    job = load("deploy.yml")["jobs"]["render-cache"]
    assert job["permissions"] == {"contents": "read"}
    uses = [step.get("uses", "") for step in job["steps"]]
    runs = " ".join(step.get("run", "") for step in job["steps"])
    save = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/cache/save@"))
    assert "modelops validate modelops.yaml" in runs and "--env" not in runs
    assert uses.index(save["uses"]) == len(uses) - 1
    assert save["with"] == {"path": ".modelops/cache", "key": "modelops-render-main-${{ github.sha }}"}
    # the deploy and promote workflows never read a cache (one a pull request wrote, or any)
    assert all("actions/cache@" not in (WORKFLOWS / name).read_text() for name in ("deploy.yml", "promote.yml"))
    assert "actions/cache/restore@" not in (WORKFLOWS / "deploy.yml").read_text()


def test_deploy_runs_dev_then_staging_with_oidc_the_touched_stacks_only():
    workflow = load("deploy.yml")
    jobs = workflow["jobs"]
    assert workflow["on"]["push"]["branches"] == ["main"]
    # staging starts when dev is done (or had nothing to do), never after a failure
    assert jobs["staging-stacks"]["needs"] == ["dev-shared", "dev-groups"]
    assert "!failure()" in jobs["staging-stacks"]["if"]
    for env in ("dev", "staging"):
        touched = " ".join(s.get("run", "") for s in jobs[f"{env}-stacks"]["steps"])
        assert "modelops stacks modelops.yaml --env \"$ENV\" --changed-since \"$BEFORE\" --json" in touched
        assert jobs[f"{env}-stacks"]["permissions"] == {"contents": "read"}
        # the shared stack first, only when touched
        shared = jobs[f"{env}-shared"]
        assert shared["needs"] == f"{env}-stacks" and f"needs.{env}-stacks.outputs.shared == 'true'" in shared["if"]
        # then the touched group stacks in parallel: one matrix job each, after the shared one
        groups = jobs[f"{env}-groups"]
        assert groups["needs"] == [f"{env}-stacks", f"{env}-shared"]
        assert groups["strategy"]["matrix"]["stack"] == f"${{{{ fromJSON(needs.{env}-stacks.outputs.groups) }}}}"
        assert "!failure()" in groups["if"]  # a skipped shared stack (untouched) does not skip them
        for job, stack in ((shared, env), (groups, "${{ matrix.stack }}")):
            assert job["permissions"]["id-token"] == "write"
            pulumi = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
            assert pulumi and pulumi[0]["with"]["command"] == "up" and pulumi[0]["with"]["stack-name"] == stack
            assert any(s.get("uses", "").startswith("aws-actions/configure-aws-credentials@") for s in job["steps"])
        assert "modelops build" in " ".join(s.get("run", "") for s in groups["steps"])


def test_deploy_builds_deploys_and_publishes_the_registry_before_dev():
    jobs = load("deploy.yml")["jobs"]
    registry = jobs["registry"]
    # dev waits for it, so a version dev deploys is in the registry for every later runner
    assert jobs["dev-stacks"]["needs"] == "registry" and "needs" not in registry
    assert registry["permissions"] == {"contents": "read", "id-token": "write"}
    names = [s["name"] for s in registry["steps"]]
    order = [names.index(n) for n in ("Build every model", "AWS credentials (OIDC)", "pulumi up (registry)",
                                      "Publish every build (idempotent)")]
    assert order == sorted(order)
    pulumi = next(s for s in registry["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"] == {"command": "up", "stack-name": "registry", "work-dir": "."}
    runs = " ".join(s.get("run", "") for s in registry["steps"])
    assert "modelops build" in runs and "modelops publish --all modelops.yaml --aws" in runs


def test_promote_is_dispatched_and_opens_a_pr():
    workflow = load("promote.yml")
    assert set(workflow["on"]["workflow_dispatch"]["inputs"]) == {"model", "from", "to"}
    text = (WORKFLOWS / "promote.yml").read_text()
    assert 'modelops promote "$MODEL"' in text and "pulls.create" in text
    # inputs reach shell only through the environment, never interpolated into a script
    for step in steps(workflow):
        assert "${{" not in step.get("run", "")
