"""``modelops publish`` and ``modelops registry list`` as a user runs them: exit codes, one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, Emulator
from tests.local.helpers import copy_project
from tests.registry.helpers import modelops

pytestmark = [pytest.mark.aws, pytest.mark.slow]

MODEL = "churn-classifier"


def test_publish_of_an_invalid_spec_is_exit_2_at_the_place_and_starts_nothing(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "specs" / "invalid" / "bad-gate.yaml", tmp_path / "modelops.yaml")
    expected = (FIXTURES / "specs" / "invalid" / "bad-gate.expected").read_text().strip().replace("bad-gate.yaml", "modelops.yaml")
    result = modelops("publish", "--all", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: {expected}"
    assert not (tmp_path / ".modelops").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["publish", "nope"], "error: model 'nope' is not declared in modelops.yaml (models: churn-classifier)"),
    (["publish"], "error: Missing argument 'MODEL': name the model to publish, or pass --all"),
    (["publish", MODEL, "--aws", "--endpoint-url", "https://127.0.0.1:1"],
     "error: --aws and --endpoint-url exclude each other; give one"),
    (["publish", MODEL, "--endpoint-url", "https://example.com"],
     "error: --endpoint-url 'https://example.com': only a local emulator on 127.0.0.1 is accepted; "
     "`modelops up` never provisions to another host (deploy to AWS with `pulumi up`)"),
    (["registry", "list", "nope"], "error: model 'nope' is not declared in modelops.yaml (models: churn-classifier)"),
])
def test_bad_input_is_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    spec = copy_project("churn", tmp_path / "project")
    result = modelops(*args, cwd=spec.parent)
    assert (result.returncode, result.stderr.strip()) == (2, message)
    assert not (spec.parent / ".modelops" / "local").exists()


def test_an_unbuilt_model_is_exit_2_saying_to_build(tmp_path: Path) -> None:
    spec = copy_project("churn", tmp_path / "project")
    result = modelops("publish", MODEL, cwd=spec.parent)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: models.{MODEL}: no build of its current train spec and data in "
                                     f".modelops/artifacts; run `modelops build {MODEL}`")


def test_registry_list_reads_only_and_says_when_no_emulator_runs(tmp_path: Path) -> None:
    spec = copy_project("churn", tmp_path / "project")
    result = modelops("registry", "list", MODEL, cwd=spec.parent)
    assert result.returncode == 2 and "no local emulator is running" in result.stderr and "Traceback" not in result.stderr
    assert not (spec.parent / ".modelops" / "local" / "server.json").exists()


def test_publish_twice_then_list_as_json(emulator: Emulator, tmp_path: Path, artifact_root: Path) -> None:
    spec = copy_project("churn", tmp_path / "project", artifact_root)
    where = ["--endpoint-url", emulator.url]
    first = modelops("publish", "--all", *where, "--json", cwd=spec.parent, ca_bundle=emulator.ca_bundle)
    assert first.returncode == 0, first.stderr
    (published,) = json.loads(first.stdout)["models"]
    assert published["registered"] and len(published["written"]) == 4
    second = modelops("publish", MODEL, *where, cwd=spec.parent, ca_bundle=emulator.ca_bundle)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == (f"{MODEL}: {published['digest']} already published as version "
                                     f"{published['package_version']}; nothing written")
    listed = modelops("registry", "list", MODEL, *where, "--json", cwd=spec.parent, ca_bundle=emulator.ca_bundle)
    assert listed.returncode == 0, listed.stderr
    (version,) = json.loads(listed.stdout)["versions"]
    assert version["digest"] == published["digest"] and version["approval"] == "PendingManualApproval"
    assert version["served_by"] == [] and "accuracy" in version["metrics"]
    assert version["lineage"]["dataset-digest"].startswith("sha256:")
