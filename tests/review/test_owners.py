"""``modelops owners``: who owns each spec file and entity, and CODEOWNERS routing each file's
review to its owner (``--check`` exits 3 when it does not, ``--write`` writes the lines)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from modelops.review.owners import BEGIN, END, check_codeowners, ownership
from tests.helpers import FIXTURES, git
from tests.review.helpers import cli

TEAMS = FIXTURES / "specs" / "valid" / "teams"
LINES = [
    "/ml/modelops.yaml platform@example.com",
    "/ml/teams/fraud.yaml fraud@example.com",
    "/ml/teams/search.yaml search@example.com",
    "/ml/stacks/dev.yaml platform@example.com",
    "/ml/stacks/prod.yaml platform-prod@example.com",
]


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A git repository holding the multi-file fixture under ml/, prod's overlay with an owner of its own."""
    root = tmp_path / "repo"
    shutil.copytree(TEAMS, root / "ml")
    prod = root / "ml" / "stacks" / "prod.yaml"
    prod.write_text("owner: platform-prod@example.com\n" + prod.read_text())
    git(root, "init", "-q", "-b", "main")
    return root


def _codeowners(repo: Path, *lines: str) -> Path:
    path = repo / ".github" / "CODEOWNERS"
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_owners_json_names_the_owner_of_every_file_and_entity(repo):
    result = cli("owners", "ml/modelops.yaml", "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(f["file"], f["role"], f["owner"]) for f in data["files"]] == [
        ("modelops.yaml", "spec", "platform@example.com"),
        ("teams/fraud.yaml", "team", "fraud@example.com"),
        ("teams/search.yaml", "team", "search@example.com"),
        ("stacks/dev.yaml", "overlay", "platform@example.com"),
        ("stacks/prod.yaml", "overlay", "platform-prod@example.com"),
    ]
    assert data["files"][2]["models"] == ["ranker", "ranker-experiment"]
    entities = {(e["kind"], e["name"]): (e["owner"], e["file"]) for e in data["entities"]}
    assert entities[("models", "ranker-experiment")] == ("search-labs@example.com", "teams/search.yaml")
    assert entities[("datasets", "events")] == ("platform@example.com", "modelops.yaml")
    # AND the CODEOWNERS lines are anchored at the repository's root
    assert data["codeowners"] == LINES


def test_write_adds_the_block_keeping_other_lines_then_check_passes(repo):
    # GIVEN a CODEOWNERS with lines of its own
    path = _codeowners(repo, "# the platform reviews everything by default", "* @acme/platform")
    # WHEN the lines are written, twice
    first = cli("owners", "ml/modelops.yaml", "--write", ".github/CODEOWNERS", cwd=repo)
    text = path.read_text()
    again = cli("owners", "ml/modelops.yaml", "--write", ".github/CODEOWNERS", cwd=repo)
    # THEN the block follows the file's own lines (the last matching line wins), once
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert text == "# the platform reviews everything by default\n* @acme/platform\n\n" + "\n".join([BEGIN, *LINES, END]) + "\n"
    assert path.read_text() == text
    # AND the check passes
    check = cli("owners", "ml/modelops.yaml", "--check", ".github/CODEOWNERS", cwd=repo)
    assert check.returncode == 0, check.stderr
    assert "5 spec files routed to their owners" in check.stdout


def test_check_exits_3_naming_each_file_routed_elsewhere_or_not_at_all(repo):
    # GIVEN a CODEOWNERS that routes the team directory to one group and says nothing of stacks/
    _codeowners(repo, "/ml/modelops.yaml platform@example.com", "/ml/teams/ @acme/ml", "/ml/teams/fraud.yaml FRAUD@example.com")
    # WHEN checked
    result = cli("owners", "ml/modelops.yaml", "--check", ".github/CODEOWNERS", cwd=repo)
    # THEN exit 3, one line per file not routed to its owner (owners compare without case)
    assert result.returncode == 3
    # (in the order of the spec's files: root spec, team files, overlays)
    assert result.stderr.splitlines() == [
        ".github/CODEOWNERS:2:1: teams/search.yaml: routed to @acme/ml by `/ml/teams/`, not to its owner search@example.com; "
        "route it: `/ml/teams/search.yaml search@example.com` (or run `modelops owners --write .github/CODEOWNERS`)",
        ".github/CODEOWNERS: stacks/dev.yaml: no rule routes it; its owner is platform@example.com; "
        "route it: `/ml/stacks/dev.yaml platform@example.com` (or run `modelops owners --write .github/CODEOWNERS`)",
        ".github/CODEOWNERS: stacks/prod.yaml: no rule routes it; its owner is platform-prod@example.com; "
        "route it: `/ml/stacks/prod.yaml platform-prod@example.com` (or run `modelops owners --write .github/CODEOWNERS`)",
    ]
    as_json = cli("owners", "ml/modelops.yaml", "--check", ".github/CODEOWNERS", "--json", cwd=repo)
    assert as_json.returncode == 3
    assert [p["code"] for p in json.loads(as_json.stdout)["problems"]] == ["E-OWNER-ROUTE", "E-OWNER-UNROUTED", "E-OWNER-UNROUTED"]


def test_a_team_file_that_changes_owner_is_no_longer_routed(repo):
    # GIVEN a routed repository, then the fraud team's file handed to another team
    _codeowners(repo)
    assert cli("owners", "ml/modelops.yaml", "--write", ".github/CODEOWNERS", cwd=repo).returncode == 0
    team = repo / "ml" / "teams" / "fraud.yaml"
    data = yaml.safe_load(team.read_text())
    data["owner"] = "risk@example.com"
    team.write_text(yaml.safe_dump(data, sort_keys=False))
    # WHEN checked THEN that file is reported, and --write routes it again
    result = cli("owners", "ml/modelops.yaml", "--check", ".github/CODEOWNERS", cwd=repo)
    assert result.returncode == 3 and "teams/fraud.yaml: routed to fraud@example.com" in result.stderr
    assert cli("owners", "ml/modelops.yaml", "--write", ".github/CODEOWNERS", cwd=repo).returncode == 0
    assert "/ml/teams/fraud.yaml risk@example.com" in (repo / ".github" / "CODEOWNERS").read_text()


@pytest.mark.parametrize(("pattern", "routed"), [
    ("*", True),
    ("*.yaml", True),                      # any depth
    ("teams/", True),                      # a directory named teams anywhere, and all below it
    ("/ml/teams/", True),
    ("/teams/", False),                    # anchored at the root: there is no /teams
    ("/ml/teams/*", True),                 # the files directly in it
    ("/ml/*", False),                      # ... but not deeper
    ("ml/**/fraud.yaml", True),
    ("**/fraud.yaml", True),
    ("/ml/teams/fraud.yml", False),
    ("/ml/teams/fr?ud.yaml", True),
    ("/ml", True),                         # a directory without the slash covers what is below
])
def test_codeowners_patterns_match_as_github_matches_them(repo, pattern, routed):
    # GIVEN a CODEOWNERS whose only rule routes PATTERN to the fraud team
    path = _codeowners(repo, f"{pattern} fraud@example.com  # the fraud team")
    # WHEN checked THEN teams/fraud.yaml is routed exactly when the pattern matches it
    problems = {p.path for p in check_codeowners(ownership(repo / "ml" / "modelops.yaml"), path)}
    assert ("teams/fraud.yaml" not in problems) is routed


def test_bad_input_exits_2_with_one_line(repo, tmp_path):
    missing = cli("owners", "ml/modelops.yaml", "--check", ".github/CODEOWNERS", cwd=repo)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "no such file; write it with `modelops owners --write .github/CODEOWNERS`" in missing.stderr
    both = cli("owners", "ml/modelops.yaml", "--check", "a", "--write", "b", cwd=repo)
    assert both.returncode == 2 and "exclusive" in both.stderr
    # an invalid spec: its problems, exit 2, nothing written
    (repo / "ml" / "teams" / "search.yaml").write_text("owner: nobody\n")
    invalid = cli("owners", "ml/modelops.yaml", "--write", ".github/CODEOWNERS", cwd=repo)
    assert invalid.returncode == 2 and "ml/teams/search.yaml:1:8: owner:" in invalid.stderr
    assert not (repo / ".github" / "CODEOWNERS").exists()
    assert "Traceback" not in missing.stderr + both.stderr + invalid.stderr
