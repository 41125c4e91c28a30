"""A spec in several files renders as the single file it stands for, and the render cache
keys what the team files hold: a plan after a change in one team file renders that model."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import yaml

from modelops.graph.render import render
from modelops.spec.envs import load_environment
from tests.graph.helpers import FIXED_ARTIFACT, graph_json, write_rich_project
from tests.helpers import ROOT


def _fixed(spec: Path, env: str):
    resolved = load_environment(spec, env)
    return dataclasses.replace(resolved, models={n: dataclasses.replace(m, artifact=FIXED_ARTIFACT)
                                                 for n, m in resolved.models.items()})


def _plan(spec: Path, **env: str) -> bytes:
    proc = subprocess.run(
        [sys.executable, "-m", "modelops", "plan", str(spec), "--env", "prod", "--json"],
        cwd=spec.parent, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def _entries(spec: Path) -> set[str]:
    return {p.name for p in (spec.parent / ".modelops" / "cache" / "render").rglob("*.json")}


def test_a_spec_split_into_team_files_renders_the_graph_of_the_single_file(tmp_path):
    # GIVEN one generated spec written as one file, and as a root spec with three team files
    single = write_rich_project(tmp_path / "single", 12)
    split = write_rich_project(tmp_path / "split", 12, teams=3)
    assert len(list((split.parent / "teams").glob("*.yaml"))) == 3
    # WHEN the prod environment of both is rendered
    one, many = graph_json(render(_fixed(single, "prod"))), graph_json(render(_fixed(split, "prod")))
    # THEN every resource, input and dependency is the same
    assert len(one["resources"]) > 100
    assert [r["urn"] for r in many["resources"]] == [r["urn"] for r in one["resources"]]
    assert many == one


def test_a_plan_after_a_change_in_one_team_file_renders_that_models_groups_only(tmp_path):
    # GIVEN a planned multi-file project, then one model's instance type changed in its team file
    spec = write_rich_project(tmp_path / "proj", 8, teams=2)
    _plan(spec)
    before = _entries(spec)
    team = spec.parent / "teams" / "team-00.yaml"
    data = yaml.safe_load(team.read_text())
    data["models"]["model-0003"]["serving"]["instance_type"] = "ml.c5.2xlarge"
    team.write_text(yaml.safe_dump(data, sort_keys=False))
    watchers = [m.name for m in load_environment(spec, "prod").monitors.values() if m.model == "model-0003"]
    # WHEN planned again
    incremental = _plan(spec)
    # THEN the model's group and its monitors' groups are the only new entries
    assert len(_entries(spec) - before) == 1 + len(watchers)
    # AND the plan is the one a full render gives, with the change in it
    assert incremental == _plan(spec, MODELOPS_RENDER_CACHE="off")
    assert b"ml.c5.2xlarge" in incremental
