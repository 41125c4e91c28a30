"""The ``modelops diff`` command as CI runs it: git-ref base, formats, exit codes, no traceback."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import git
from tests.review.helpers import BASE, CASES, cli


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git repository with two commits: the base spec, then a larger instance type."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(BASE, root, dirs_exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    shutil.copytree(CASES / "instance-type", root, dirs_exist_ok=True)
    git(root, "commit", "-q", "-am", "bigger instances")
    return root


def test_git_ref_base_reports_the_change_and_fail_on_exits_3(repo):
    result = cli("diff", "--base", "HEAD~1", "--env", "dev", "--format", "json", "--fail-on", "replace", cwd=repo)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "--fail-on: replace" in result.stderr
    data = json.loads(result.stdout)
    [dev] = data["environments"]
    assert dev["entities"][0]["fields"][0] == {"path": "serving.instance_type", "old": "ml.m5.large", "new": "ml.m5.xlarge"}
    assert {r["action"] for r in dev["resources"]} == {"replace", "update"}


def test_same_ref_is_one_line_and_exit_0(repo):
    result = cli("diff", "--base", "HEAD", "--format", "markdown", "--fail-on", "data-loss,replace,policy,cost>100", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "modelops diff: no changes (HEAD → working tree)"


@pytest.mark.parametrize("args,message", [
    (("--base", "no-such-ref"), "--base no-such-ref: not a directory or a git ref"),
    (("--base", "HEAD", "--fail-on", "bogus"), "--fail-on bogus: unknown condition"),
    (("--base", "HEAD", "--format", "yaml"), "--format yaml"),
    (("--base", "HEAD", "--env", "qa"), "--env qa: no such environment"),
])
def test_bad_input_exits_2_with_one_line(repo, args, message):
    result = cli("diff", *args, cwd=repo)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_invalid_head_spec_exits_2(repo, tmp_path):
    shutil.copytree(repo, tmp_path / "r")
    spec = tmp_path / "r" / "modelops.yaml"
    spec.write_text(spec.read_text().replace("instance_count: 1", "instance_cout: 1"))
    result = cli("diff", "--base", "HEAD", cwd=tmp_path / "r")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "modelops.yaml:" in result.stderr and "instance_cout" in result.stderr
