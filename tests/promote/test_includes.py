"""Promoting a model declared in an included team file: the pin is still one line of the
target's overlay, the team file is untouched, and it must be committed like the spec.

GIVEN the example project with its churn team's dataset, model and monitors moved to
``teams/churn.yaml`` (owner churn-team@example.com), the model built, and staging's
deployment evidence in a loopback moto server.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from modelops.errors import UsageError
from modelops.ml.artifacts import attach_artifacts
from modelops.promote import promote
from modelops.spec.envs import load_environment
from tests.helpers import ROOT
from tests.promote.helpers import deploy_evidence

MODEL = "churn-classifier"
SOAKED = timedelta(hours=25)


def git(project: Path, *args: str) -> str:
    run = subprocess.run(
        ["git", "-c", "user.name=Tester", "-c", "user.email=tester@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=project, capture_output=True, text=True, check=True, timeout=60,
    )
    return run.stdout.strip()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The example project split into a root spec and the churn team's file, built once."""
    base = tmp_path_factory.mktemp("teams-built")
    shutil.copytree(ROOT / "stacks", base / "stacks")
    shutil.copytree(ROOT / "examples" / "churn" / "data", base / "examples" / "churn" / "data")
    spec = yaml.safe_load((ROOT / "modelops.yaml").read_text())
    team = {"owner": "churn-team@example.com", **{kind: spec.pop(kind) for kind in ("datasets", "models", "monitors")}}
    spec["include"] = ["teams/*.yaml"]
    (base / "teams").mkdir()
    (base / "teams" / "churn.yaml").write_text(yaml.safe_dump(team, sort_keys=False))
    (base / "modelops.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    attach_artifacts(load_environment(base / "modelops.yaml", "staging"))
    return base


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(built, copy)
    (copy / ".gitignore").write_text(".modelops/\n")
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    git(copy, "commit", "-q", "-m", "the example project, one file per team")
    return copy


def deploy_staging(moto, project: Path) -> str:
    env = attach_artifacts(load_environment(project / "modelops.yaml", "staging"), build=False)
    assert env.models[MODEL].owner == "churn-team@example.com"
    return deploy_evidence(moto, env, MODEL, Path(env.models[MODEL].artifact.path).read_bytes(), published_from=project)


def test_the_pin_of_a_team_files_model_is_one_added_line_of_the_overlay(moto, project):
    digest = deploy_staging(moto, project)
    files = {path: path.read_bytes() for path in (project / "modelops.yaml", project / "teams" / "churn.yaml")}
    before = (project / "stacks" / "prod.yaml").read_text()
    # WHEN promoted from staging to prod
    now = datetime.now(timezone.utc) + SOAKED
    result = promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=now)
    # THEN the overlay got one line, and neither the root spec nor the team file changed
    assert result.written and result.report.passed
    added = [line[1:] for line in difflib.unified_diff(before.splitlines(), (project / "stacks" / "prod.yaml").read_text().splitlines(),
                                                       lineterm="", n=0) if line.startswith("+") and not line.startswith("+++")]
    assert added == [f'    version: "{digest}"']
    assert all(path.read_bytes() == text for path, text in files.items())
    assert load_environment(project / "modelops.yaml", "prod").models[MODEL].version == digest
    assert result.record["uncommitted"] == []


def test_an_uncommitted_team_file_is_refused_like_an_uncommitted_spec(moto, project):
    # GIVEN the team file's gates lowered without a commit
    deploy_staging(moto, project)
    team = project / "teams" / "churn.yaml"
    team.write_text(team.read_text().replace(">= 0.85", ">= 0.5"))
    now = datetime.now(timezone.utc) + SOAKED
    # WHEN promoting THEN it is refused, naming the team file, and nothing is written
    with pytest.raises(UsageError, match=r"teams/churn\.yaml: uncommitted changes"):
        promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=now)
    assert not (project / "stacks" / "promotions.jsonl").exists()
    # AND allowed dirty, the log names it
    result = promote(project / "modelops.yaml", MODEL, "staging", "prod", endpoint_url=moto.url, now=now, allow_dirty=True)
    assert result.record["uncommitted"] == ["teams/churn.yaml"]
