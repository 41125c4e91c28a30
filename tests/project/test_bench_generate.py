"""The benchmark generator writes the same spec as one file or as team files (the multi-file
measurements compare the two), each valid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.graph.helpers import write_minimal_package
from tests.helpers import ROOT


def _generate(out: Path, artifact: Path, *extra: str) -> Path:
    run = subprocess.run([sys.executable, "-m", "benchmarks.generate", "30", str(out), "--artifact", str(artifact), *extra],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return Path(run.stdout.strip())


def _validate(spec: Path) -> dict:
    run = subprocess.run([sys.executable, "-m", "modelops", "validate", str(spec), "--no-policies", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)["environments"]


def test_the_generator_splits_the_spec_into_team_files_that_validate_as_the_single_file(tmp_path):
    # GIVEN the generator's 30-model project, once in one file and once with --teams 3
    artifact = tmp_path / "model.tar.gz"
    write_minimal_package(artifact)
    single = _generate(tmp_path / "single", artifact)
    split = _generate(tmp_path / "split", artifact, "--teams", "3")
    # THEN the split one is a root spec including three team files of ten models each
    teams = sorted((split.parent / "teams").glob("*.yaml"))
    assert [t.name for t in teams] == ["team-00.yaml", "team-01.yaml", "team-02.yaml"]
    assert all(t.read_text().startswith("# yaml-language-server: $schema=../schemas/team.schema.json\n") for t in teams)
    # AND both validate to the same environments, entity for entity
    assert _validate(split) == _validate(single)
