"""validate: policies through the per-entity render cache, ``--no-policies`` for pre-commit
hooks, a broken package file reported as the spec's error, and a start-up that imports
Pulumi only when a command renders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import modelops.graph.cache as diff_mod
from modelops.spec.envs import check
from modelops.checks.pipeline import check_policies
from tests.graph.helpers import write_minimal_package
from tests.helpers import FIXTURES

FULL = FIXTURES / "specs" / "valid" / "full"
CLI = [sys.executable, "-m", "modelops"]


def _modelops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="eu-west-1")
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the full example spec whose package file is a real tarball."""
    root = tmp_path / "full"
    shutil.copytree(FULL, root, ignore=shutil.ignore_patterns(".modelops"))
    write_minimal_package(root / "models" / "model.tar.gz")
    return root


def test_package_that_is_not_a_tarball_is_a_one_line_usage_error(tmp_path: Path) -> None:
    # GIVEN the full example, whose models/model.tar.gz is not a gzipped tar
    root = tmp_path / "full"
    shutil.copytree(FULL, root, ignore=shutil.ignore_patterns(".modelops"))
    assert not tarfile.is_tarfile(root / "models" / "model.tar.gz")
    # WHEN it is validated (policies need the package)
    result = _modelops("validate", "modelops.yaml", cwd=root)
    # THEN one line naming the file and the fix, exit 2, no internal error or traceback
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "models/model.tar.gz" in lines[0] and "models.scorer.artifact" in lines[0]
    assert "not a model package" in lines[0] and "modelops build" in lines[0]
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_no_policies_checks_the_spec_only(project: Path) -> None:
    # GIVEN a spec that is valid but breaks a built-in policy (endpoints without a KMS key)
    # WHEN validated with and without policies
    with_policies = _modelops("validate", "modelops.yaml", cwd=project)
    without = _modelops("validate", "modelops.yaml", "--no-policies", cwd=project)
    # THEN the policy finding fails the default run, and --no-policies passes the spec checks
    assert with_policies.returncode == 2
    assert "[endpoint-encrypted]" in with_policies.stderr
    assert without.returncode == 0, without.stderr
    assert "is valid" in without.stdout


def test_no_policies_still_reports_spec_errors(project: Path) -> None:
    # GIVEN a model that reads a dataset the spec does not declare
    spec = project / "modelops.yaml"
    spec.write_text(spec.read_text().replace("dataset: events", "dataset: eventz", 1))
    # WHEN validated without policies
    result = _modelops("validate", "modelops.yaml", "--no-policies", cwd=project)
    # THEN the reference error is reported: exit 2, file:line:col
    assert result.returncode == 2
    assert "modelops.yaml:" in result.stderr and "eventz" in result.stderr


def test_commands_that_do_not_render_do_not_import_pulumi(project: Path) -> None:
    # GIVEN the CLI in a fresh interpreter
    code = (
        "import sys; from modelops.cli.main import main; rc = main(sys.argv[1:]);"
        " print('PULUMI' if 'pulumi' in sys.modules else 'NO-PULUMI', rc)"
    )
    # WHEN a spec-only validate and --help run
    validate = subprocess.run([sys.executable, "-c", code, "validate", "modelops.yaml", "--no-policies"],
                              cwd=project, capture_output=True, text=True, timeout=120)
    help_ = subprocess.run([sys.executable, "-c", code, "--help"], cwd=project, capture_output=True, text=True, timeout=120)
    # THEN neither loads the Pulumi SDK (command modules import it inside the commands that render)
    assert validate.stdout.strip().endswith("NO-PULUMI 0"), validate.stdout + validate.stderr
    assert "NO-PULUMI" in help_.stdout, help_.stdout + help_.stderr


def test_revalidate_after_one_model_change_renders_only_that_model(project: Path, monkeypatch) -> None:
    # GIVEN a project validated once (policies rendered through a fresh render cache)
    cache = diff_mod.RenderCache()
    monkeypatch.setattr(diff_mod, "RENDER_CACHE", cache)
    spec = project / "modelops.yaml"
    problems, resolved = check(spec, ["dev"])
    assert not problems
    check_policies(resolved)
    assert cache.stats["full"] == 1
    # WHEN one model's capacity changes and the spec is validated again
    text = spec.read_text()
    assert "data_capture: {sample_percent: 10}" in text
    spec.write_text(text.replace("data_capture: {sample_percent: 10}", "data_capture: {sample_percent: 25}", 1))
    problems, resolved = check(spec, ["dev"])
    assert not problems
    incremental = check_policies(resolved)
    # THEN only the changed model was rendered (a partial render, no second full one)
    assert cache.stats["full"] == 1 and cache.stats["partial"] == 1
    # AND the findings equal those of a cold, full render of the changed spec
    cold = diff_mod.RenderCache()
    monkeypatch.setattr(diff_mod, "RENDER_CACHE", cold)
    shutil.rmtree(project / ".modelops" / "cache" / "render")
    shutil.rmtree(project / ".modelops" / "cache" / "findings")  # else the kept findings answer
    assert check_policies(resolved) == incremental
    assert cold.stats["full"] == 1
