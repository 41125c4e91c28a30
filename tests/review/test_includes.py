"""``modelops diff`` of a spec in several files: the base side reads the team files as they
were at the base commit, and moving an entity between files changes no resource."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers import FIXTURES, git
from tests.review.helpers import cli

TEAMS = FIXTURES / "specs" / "valid" / "teams"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _dump(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A git repository whose one commit is the multi-file fixture."""
    root = tmp_path / "repo"
    shutil.copytree(TEAMS, root)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    return root


def test_a_change_in_a_team_file_is_diffed_against_that_file_at_the_base_commit(repo):
    # GIVEN a commit that changes one model's instance type in a team file
    team = _load(repo / "teams" / "search.yaml")
    team["models"]["ranker"]["serving"] = {"instance_type": "ml.m5.xlarge"}
    _dump(repo / "teams" / "search.yaml", team)
    git(repo, "commit", "-q", "-am", "bigger ranker")
    # WHEN the change is reviewed against the commit before
    result = cli("diff", "--base", "HEAD~1", "--env", "dev", "--format", "json", cwd=repo)
    # THEN the one entity changed is that model, by that field (the base read its team file)
    assert result.returncode == 0, result.stderr
    [dev] = json.loads(result.stdout)["environments"]
    assert [(e["kind"], e["name"], e["action"]) for e in dev["entities"]] == [("models", "ranker", "changed")]
    assert dev["entities"][0]["fields"] == [{"path": "serving.instance_type", "old": "ml.m5.large", "new": "ml.m5.xlarge"}]
    assert {r["action"] for r in dev["resources"]} == {"replace", "update"}


def test_moving_a_model_between_files_changes_no_resource(repo):
    # GIVEN a commit that moves a model (which names its own owner) from its team file to the root spec
    team, root = _load(repo / "teams" / "search.yaml"), _load(repo / "modelops.yaml")
    root["models"] = {"ranker-experiment": team["models"].pop("ranker-experiment")}
    _dump(repo / "teams" / "search.yaml", team)
    _dump(repo / "modelops.yaml", root)
    git(repo, "commit", "-q", "-am", "move the experiment")
    # WHEN reviewed THEN nothing changes in any environment
    result = cli("diff", "--base", "HEAD~1", "--format", "markdown", "--fail-on", "data-loss,replace", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "modelops diff: no changes (HEAD~1 → working tree)"
    # AND moving one that takes its file's owner shows as an owner change: the model moves to
    # the new owner's group stack, a delete in the old stack and a create in the new one
    team["models"]["ranker-experiment"] = root["models"].pop("ranker-experiment")
    root["models"] = {"ranker": team["models"].pop("ranker")}
    _dump(repo / "teams" / "search.yaml", team)
    _dump(repo / "modelops.yaml", root)
    moved = cli("diff", "--base", "HEAD", "--env", "dev", "--format", "json", cwd=repo)
    assert moved.returncode == 0, moved.stderr
    [dev] = json.loads(moved.stdout)["environments"]
    changed = {e["name"]: e["fields"] for e in dev["entities"]}
    assert changed["ranker"] == [{"path": "owner", "old": "search@example.com", "new": "platform@example.com"}]
    assert dev["stacks"] == ["dev.platform", "dev.search"]
    moved_urns = {(r["action"], r["urn"].split("::")[0], r["name"]) for r in dev["resources"]}
    assert {a for a, _, _ in moved_urns} == {"delete", "create"}
    assert {(n, s) for a, s, n in moved_urns if a == "delete"} == {(n, "urn:pulumi:dev.search") for a, _, n in moved_urns
                                                                   if a == "delete"}
    assert {n for a, _, n in moved_urns if a == "delete"} == {n for a, _, n in moved_urns if a == "create"}


def test_a_team_file_added_since_the_base_shows_its_entities_as_added(repo):
    # GIVEN a new team file matched by the root spec's pattern
    _dump(repo / "teams" / "growth.yaml", {"owner": "growth@example.com", "models": {"upsell": {
        "dataset": "events", "train": {"estimator": "sklearn.linear_model.Ridge", "target": "clicked"}}}})
    # WHEN the working tree is reviewed against HEAD
    result = cli("diff", "--base", "HEAD", "--env", "dev", "--format", "json", cwd=repo)
    # THEN its model (and the default monitors it gets) are added
    assert result.returncode == 0, result.stderr
    [dev] = json.loads(result.stdout)["environments"]
    added = {(e["kind"], e["name"]) for e in dev["entities"] if e["action"] == "added"}
    assert ("models", "upsell") in added and ("monitors", "upsell-latency-p99") in added
    creates = {r["entity"] for r in dev["resources"] if r["action"] == "create"}
    assert creates == {"models.upsell", "monitors.upsell-latency-p99", "monitors.upsell-error-rate"}
    # AND of the rest it touches only what every model shares (the dashboard: entity "")
    assert {r["entity"] for r in dev["resources"] if r["action"] != "create"} <= {"datasets.events", ""}
