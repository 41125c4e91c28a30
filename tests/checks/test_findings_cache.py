"""An unchanged spec's policy findings are reused: a later ``validate`` renders nothing.

The findings are kept under ``.modelops/cache/findings/`` with the keys of the render groups
they were found in; a change to the spec or its policies is another key.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelops.checks.findings_cache import _storable
from tests.review.helpers import BASE, cli


@pytest.fixture()
def failing(tmp_path: Path) -> Path:
    """The base fixture with prod on one instance and that policy mandatory: validate exits 2."""
    shutil.copytree(BASE, tmp_path / "spec")
    root = tmp_path / "spec"
    spec = root / "modelops.yaml"
    spec.write_text(spec.read_text().replace(
        "region: us-east-1\n", "region: us-east-1\npolicies: {prod-min-instances: mandatory}\n"))
    prod = root / "stacks" / "prod.yaml"
    prod.write_text(prod.read_text().replace("instance_count: 2", "instance_count: 1"))
    return root


def _validate(root: Path):
    result = cli("validate", "modelops.yaml", "--env", "prod", cwd=root)
    assert "Traceback" not in result.stderr
    return result


def test_a_second_validate_of_an_unchanged_spec_reports_the_same_findings_without_rendering(failing: Path) -> None:
    # GIVEN a spec validated once (its findings kept)
    first = _validate(failing)
    assert first.returncode == 2 and "[prod-min-instances]" in first.stderr
    assert len(list((failing / ".modelops" / "cache" / "findings").glob("*.json"))) == 1
    # WHEN the render cache is gone and the unchanged spec is validated again
    shutil.rmtree(failing / ".modelops" / "cache" / "render")
    second = _validate(failing)
    # THEN the same problems are reported, and nothing was rendered (no render group written)
    assert (second.returncode, second.stderr) == (first.returncode, first.stderr)
    assert not (failing / ".modelops" / "cache" / "render").exists()


def test_a_change_to_the_spec_or_its_policies_finds_again(failing: Path) -> None:
    # GIVEN a spec validated once
    assert _validate(failing).returncode == 2
    # WHEN the policy is made advisory
    spec = failing / "modelops.yaml"
    spec.write_text(spec.read_text().replace("prod-min-instances: mandatory", "prod-min-instances: advisory"))
    # THEN validate passes: the kept findings were not reused
    assert _validate(failing).returncode == 0
    # AND fixing the capacity under the mandatory policy passes too
    spec.write_text(spec.read_text().replace("prod-min-instances: advisory", "prod-min-instances: mandatory"))
    assert _validate(failing).returncode == 2
    prod = failing / "stacks" / "prod.yaml"
    prod.write_text(prod.read_text().replace("instance_count: 1", "instance_count: 2"))
    assert _validate(failing).returncode == 0


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"format": "modelops/findings/v1", "key": "x", "findings": []}'])
def test_a_damaged_or_foreign_entry_is_a_miss(failing: Path, damage: bytes) -> None:
    # GIVEN a spec validated once, whose kept findings are then damaged (or replaced by another's)
    first = _validate(failing)
    [entry] = (failing / ".modelops" / "cache" / "findings").glob("*.json")
    entry.write_bytes(damage)
    # WHEN it is validated again THEN the findings are found again, not read from the entry
    second = _validate(failing)
    assert (second.returncode, second.stderr) == (first.returncode, first.stderr)


def test_findings_holding_a_secret_or_a_local_path_are_not_kept() -> None:
    row = ["p", "mandatory", "urn:x", "models.m", "message", "fix"]
    assert _storable([row], "/home/me/project")
    assert not _storable([[*row[:4], "posts to https://hooks.example.com/T0/B1/secret", "fix"]], "/home/me/project")
    assert not _storable([[*row[:4], "reads /home/me/project/data.csv", "fix"]], "/home/me/project")
