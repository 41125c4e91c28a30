"""The real deploy path: Pulumi.yaml and one stack config per environment overlay."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelops.spec.envs import list_environments
from tests.helpers import ROOT


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_pulumi_project_runs_the_stacks_program_in_the_projects_virtualenv() -> None:
    project = _load(ROOT / "Pulumi.yaml")
    assert project["name"] == "modelops"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    assert (ROOT / project["main"] / "__main__.py").is_file()
    # project keys are declared unnamespaced (Pulumi rejects a type on a namespaced key)
    assert all(":" not in key for key in project.get("config", {}))
    assert project["config"]["spec"]["default"] == "modelops.yaml"


def test_every_environment_overlay_has_a_stack_config_naming_it() -> None:
    project = _load(ROOT / "Pulumi.yaml")
    stacks = ROOT / project["stackConfigDir"]
    envs = list_environments(ROOT / "modelops.yaml")
    assert envs == ["dev", "prod", "staging"]
    for env in envs:
        config = _load(stacks / f"Pulumi.{env}.yaml")["config"]
        assert (ROOT / config["modelops:spec"]).is_file()
        assert config["modelops:environment"] == env
        assert config["aws:region"] == _load(ROOT / "modelops.yaml")["region"]
