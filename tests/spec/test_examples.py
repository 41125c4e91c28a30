"""The example specs are valid in every environment, through the library and the CLI."""

from __future__ import annotations

import json

import pytest

from modelops.spec.envs import list_environments, load_environment, validate
from tests.helpers import ROOT
from tests.spec.helpers import EXAMPLES, run_cli

EXAMPLE_ENVS = [(spec, env) for spec in EXAMPLES for env in list_environments(spec)]


def test_examples_have_their_environments():
    assert list_environments(ROOT / "modelops.yaml") == ["dev", "prod", "staging"]
    assert list_environments(ROOT / "examples" / "fraud" / "modelops.yaml") == ["dev", "prod"]


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_has_no_problem(spec):
    assert validate(spec) == []


@pytest.mark.parametrize(("spec", "env"), EXAMPLE_ENVS, ids=lambda v: str(v.relative_to(ROOT)) if hasattr(v, "relative_to") else v)
def test_example_resolves(spec, env):
    resolved = load_environment(spec, env)
    assert resolved.env == env
    assert resolved.models and resolved.datasets and resolved.monitors
    for dataset in resolved.datasets.values():
        assert dataset.source_digest and dataset.source_digest.startswith("sha256:")
    for monitor in resolved.monitors.values():
        assert (monitor.model is None) != (monitor.dataset is None)
        assert monitor.notify, "every example monitor notifies someone"


def test_cli_validates_every_environment_of_the_fraud_example():
    spec = ROOT / "examples" / "fraud" / "modelops.yaml"
    result = run_cli("validate", "examples/fraud/modelops.yaml", "--all-envs", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert sorted(report["environments"]) == list_environments(spec) == ["dev", "prod"]
    for env, counts in report["environments"].items():
        resolved = load_environment(spec, env)
        assert counts == {"datasets": len(resolved.datasets), "models": len(resolved.models), "monitors": len(resolved.monitors)}


def test_cli_validates_modelops_yaml_of_the_current_directory_by_default():
    result = run_cli("validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "✓ modelops.yaml is valid",
        "  dev      1 datasets  1 models  4 monitors",
        "  prod     1 datasets  1 models  4 monitors",
        "  staging  1 datasets  1 models  4 monitors",
    ]
