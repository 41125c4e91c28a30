"""A spec in several files: the root spec includes team files; names stay unique, references
cross files, each entity gets its file's owner, overlays adjust anything; includes stay in
the project and bounded. (Mistakes with their exact lines: the ``include-*`` cases of the
invalid corpus.)"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml

from benchmarks.generate import spec as bench_spec
from benchmarks.generate import split_into_teams
from modelops.spec import includes
from modelops.spec.document import spec_document
from modelops.spec.envs import load_environment, validate
from tests.spec.helpers import VALID, run_cli

TEAMS = VALID / "teams"
SPEC = TEAMS / "modelops.yaml"


def _copy(tmp_path: Path) -> Path:
    project = tmp_path / "teams"
    shutil.copytree(TEAMS, project)
    return project


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_the_entities_of_every_file_resolve_into_one_environment():
    # GIVEN a root spec that includes two team files WHEN its dev environment is resolved
    env = load_environment(SPEC, "dev")
    # THEN it holds what every file declares, references crossing files
    assert sorted(env.datasets) == ["events", "payments"]
    assert sorted(env.models) == ["fraud-scorer", "ranker", "ranker-experiment"]
    assert env.models["ranker"].dataset == "events"  # declared in the root spec
    assert sorted(env.channels) == ["fraud-pager", "oncall"]
    assert env.monitors["fraud-latency"].notify == ("oncall", "fraud-pager")
    # AND the included files are named, and paths in them are relative to the root spec
    assert env.include_files == (str(TEAMS / "teams" / "fraud.yaml"), str(TEAMS / "teams" / "search.yaml"))
    assert env.datasets["payments"].source == str(TEAMS / "data" / "payments.csv")
    # AND a team channel notifies like any other: a default monitor notifies every channel
    assert env.monitors["ranker-latency-p99"].notify == ("oncall", "fraud-pager")


def test_every_entity_is_owned_by_its_own_owner_else_its_files_else_the_projects():
    env = load_environment(SPEC, "prod")
    owners = {(kind, name): entity.owner for kind in ("datasets", "models", "monitors")
              for name, entity in getattr(env, kind).items()}
    assert owners == {
        ("datasets", "events"): "platform@example.com",
        ("datasets", "payments"): "fraud@example.com",
        ("models", "fraud-scorer"): "fraud@example.com",
        ("models", "ranker"): "search@example.com",
        ("models", "ranker-experiment"): "search-labs@example.com",
        ("monitors", "fraud-latency"): "fraud@example.com",
        ("monitors", "payments-fresh"): "fraud@example.com",
        # default monitors belong to their model's owner (fraud-latency stands for its latency one)
        ("monitors", "fraud-scorer-error-rate"): "fraud@example.com",
        ("monitors", "ranker-latency-p99"): "search@example.com",
        ("monitors", "ranker-error-rate"): "search@example.com",
        ("monitors", "ranker-experiment-latency-p99"): "search-labs@example.com",
        ("monitors", "ranker-experiment-error-rate"): "search-labs@example.com",
    }


def test_one_overlay_adjusts_entities_of_any_file():
    prod, dev = load_environment(SPEC, "prod"), load_environment(SPEC, "dev")
    assert prod.models["fraud-scorer"].serving.instance_count == 2  # declared in teams/fraud.yaml
    assert prod.models["ranker"].serving.instance_count == 2        # declared in teams/search.yaml
    assert prod.monitors["fraud-latency"].threshold.value == 0.2 and dev.monitors["fraud-latency"].threshold.value == 0.25
    assert prod.protect is True and prod.overlay_file == str(TEAMS / "stacks" / "prod.yaml")


def test_validate_and_show_through_the_cli():
    # WHEN a user validates (spec checks) and shows the multi-file spec
    checked = run_cli("validate", str(SPEC), "--no-policies")
    shown = run_cli("show", str(SPEC), "--env", "prod", "--json")
    header = run_cli("show", str(SPEC), "--env", "prod")
    # THEN it is valid in both environments, and show prints one spec with every owner
    assert checked.returncode == 0, checked.stderr
    assert "prod  2 datasets  3 models  7 monitors" in checked.stdout
    document = json.loads(shown.stdout)
    assert document["models"]["ranker-experiment"]["owner"] == "search-labs@example.com"
    assert "include" not in document  # what show prints is one file: the entities are in it
    assert "including teams/fraud.yaml, teams/search.yaml" in header.stdout.splitlines()[0]


def test_show_of_a_multi_file_spec_is_the_single_file_spec_it_stands_for(tmp_path):
    # GIVEN what show prints for prod, written as one file beside the team files' data
    project = _copy(tmp_path)
    prod = load_environment(project / "modelops.yaml", "prod")
    document = spec_document(prod, relative_to=project)
    single = _write(project / "single" / "modelops.yaml", document)
    shutil.copytree(project / "data", project / "single" / "data")
    # WHEN that file is resolved THEN it is prod again, owners included
    again = load_environment(single, "dev")
    assert spec_document(again) == document
    assert {n: m.owner for n, m in again.monitors.items()} == {n: m.owner for n, m in prod.monitors.items()}
    assert again.models["ranker-experiment"].serving == prod.models["ranker-experiment"].serving


def test_a_generated_spec_split_into_team_files_resolves_as_the_single_file(tmp_path):
    # GIVEN a 40-model spec written once as one file and once as a root spec with 4 team files
    data = bench_spec(40)
    root, team_files = split_into_teams(data, 4)
    single = _write(tmp_path / "single" / "modelops.yaml", data)
    split = _write(tmp_path / "split" / "modelops.yaml", root)
    for path, team in team_files.items():
        _write(tmp_path / "split" / path, team)
    for project in ("single", "split"):
        (tmp_path / project / "artifacts").mkdir()
        (tmp_path / project / "artifacts" / "model.tar.gz").write_bytes(b"package")
    # WHEN both are resolved
    one, many = load_environment(single, "dev"), load_environment(split, "dev")
    # THEN they are the same environment but for the owners (a team file's) and the file names
    assert len(many.include_files) == 4 and many.models["model-0039"].owner == "team-03@example.com"

    def unowned(env):
        plain = {kind: {n: dataclasses.replace(e, owner="", artifact_source=None) if hasattr(e, "artifact_source")
                        else dataclasses.replace(e, owner="") for n, e in getattr(env, kind).items()}
                 for kind in ("datasets", "models", "monitors")}
        return dataclasses.replace(env, spec_file="", include_files=(), **plain)

    assert unowned(one) == unowned(many)
    assert validate(split) == []


def test_names_are_unique_across_files_whatever_the_order(tmp_path, monkeypatch):
    # GIVEN two team files declaring the same model, included by a literal path then a pattern
    project = _copy(tmp_path)
    _write(project / "teams" / "zz-copy.yaml", {"models": {"ranker": {"dataset": "events", "train": {
        "estimator": "sklearn.linear_model.Ridge", "target": "clicked"}}}})
    spec = yaml.safe_load((project / "modelops.yaml").read_text())
    spec["include"] = ["teams/zz-copy.yaml", "teams/*.yaml"]
    _write(project / "modelops.yaml", spec)
    # WHEN validated THEN the second declaration (in include order) is the error, naming the first
    monkeypatch.chdir(project)
    lines = [str(p) for p in validate("modelops.yaml")]
    assert lines == ["teams/search.yaml:4:3: models.ranker: model 'ranker' is already declared at teams/zz-copy.yaml:2:3; "
                     "names are unique across the spec and the files it includes: rename one, or remove one"]


def test_an_included_symlink_out_of_the_project_is_refused_unread(tmp_path):
    # GIVEN a team file that is a symlink to a file outside the project
    project = _copy(tmp_path)
    outside = _write(tmp_path / "elsewhere.yaml", {"models": {"stolen": {"dataset": "events", "artifact": "x.tar.gz"}}})
    (project / "teams" / "search.yaml").unlink()
    (project / "teams" / "search.yaml").symlink_to(outside)
    # WHEN validated THEN the include is refused, and nothing of the outside file was read
    problems = validate(project / "modelops.yaml")
    assert [(p.code, p.path) for p in problems if p.code.startswith("E-INCLUDE")] == [("E-INCLUDE-OUTSIDE", "include[0]")]
    assert "resolves outside the project" in problems[0].message
    assert not any("stolen" in p.path for p in problems)
    # AND so is a directory of team files that is a symlink out of the project
    shutil.rmtree(project / "teams")
    (tmp_path / "outside-teams").mkdir()
    _write(tmp_path / "outside-teams" / "a.yaml", {"owner": "a@example.com"})
    (project / "teams").symlink_to(tmp_path / "outside-teams")
    assert [p.code for p in validate(project / "modelops.yaml") if p.code.startswith("E-INCLUDE")] == ["E-INCLUDE-OUTSIDE"]


def test_the_number_of_included_files_is_bounded(tmp_path):
    # GIVEN a pattern matching one file more than the limit
    project = _copy(tmp_path)
    for index in range(includes.MAX_INCLUDED_FILES + 1):
        _write(project / "many" / f"t{index:03d}.yaml", {"owner": "a@example.com"})
    spec = yaml.safe_load((project / "modelops.yaml").read_text())
    spec["include"] = ["many/*.yaml"]
    _write(project / "modelops.yaml", spec)
    # WHEN validated THEN one problem says so, at the include
    problems = [p for p in validate(project / "modelops.yaml") if p.code == "E-INCLUDE-LIMIT"]
    assert [(p.path, p.message) for p in problems] == [("include[0]", f"includes more than {includes.MAX_INCLUDED_FILES} files")]


def test_the_total_size_of_the_files_is_bounded(tmp_path, monkeypatch):
    # GIVEN a limit below the fixture's size (the real one is 32 MiB: too much to write in a test)
    project = _copy(tmp_path)
    size = sum(p.stat().st_size for p in [project / "modelops.yaml", *(project / "teams").glob("*.yaml")])
    monkeypatch.setattr(includes, "MAX_TOTAL_BYTES", size - 1)
    # WHEN validated THEN the includes are refused as too large, and no team file was read
    problems = validate(project / "modelops.yaml")
    assert [p.code for p in problems if p.path == "include"] == ["E-TOO-LARGE"]
    assert f"{size:,} bytes" in problems[0].message
    monkeypatch.setattr(includes, "MAX_TOTAL_BYTES", size)
    assert validate(project / "modelops.yaml") == []


def test_a_team_file_that_cannot_be_read_is_reported_with_the_others(tmp_path):
    # GIVEN one team file with a YAML syntax error and one with a schema error
    project = _copy(tmp_path)
    (project / "teams" / "fraud.yaml").write_text("models:\n  scorer: {dataset: payments\n")
    (project / "teams" / "search.yaml").write_text("models:\n  ranker: {dataset: events, train: {estimator: sklearn.linear_model.Ridge}}\n")
    # WHEN validated THEN each is reported in its own file, and the references to what is gone too
    problems = validate(project / "modelops.yaml")
    files = {Path(p.file).name for p in problems}
    assert {"fraud.yaml", "search.yaml"} <= files
    assert any(p.code == "E-YAML-SYNTAX" and p.file.endswith("fraud.yaml") for p in problems)
    assert any(p.code == "E-SCHEMA-REQUIRED" and p.path == "models.ranker.train.target" and p.file.endswith("search.yaml")
               for p in problems)


@pytest.mark.parametrize("pattern", ["teams/*.yaml", "teams/fraud.yaml"])
def test_a_spec_without_the_team_files_does_not_silently_lose_them(tmp_path, pattern):
    # GIVEN the team files were moved away
    project = _copy(tmp_path)
    spec = yaml.safe_load((project / "modelops.yaml").read_text())
    spec["include"] = [pattern]
    _write(project / "modelops.yaml", spec)
    shutil.rmtree(project / "teams")
    # WHEN validated THEN the include is an error (the models would otherwise be deleted)
    codes = [p.code for p in validate(project / "modelops.yaml")]
    assert "E-INCLUDE-MISSING" in codes
