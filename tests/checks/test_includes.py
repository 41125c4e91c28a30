"""A policy finding about an entity of an included team file points at that file."""

from __future__ import annotations

import shutil

import yaml

from tests.helpers import FIXTURES
from tests.spec.helpers import run_cli

TEAMS = FIXTURES / "specs" / "valid" / "teams"


def test_a_mandatory_finding_points_at_the_team_file_that_declares_the_model(tmp_path):
    # GIVEN the multi-file fixture whose prod overlay no longer gives ranker-experiment two instances
    project = tmp_path / "teams"
    shutil.copytree(TEAMS, project)
    overlay = yaml.safe_load((project / "stacks" / "prod.yaml").read_text())
    del overlay["models"]["ranker-experiment"]
    (project / "stacks" / "prod.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    # WHEN validated with the policies (as CI does)
    result = run_cli("validate", "modelops.yaml", cwd=project)
    # THEN the one finding is at the model's key in teams/search.yaml, not in the root spec
    assert result.returncode == 2, result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith("teams/search.yaml:7:3: models.ranker-experiment: [SageMaker.4] (prod) ")
