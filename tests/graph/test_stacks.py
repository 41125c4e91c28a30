"""An environment as a shared stack plus group stacks of bounded size (modelops.graph.stacks, .split)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelops.graph.render import masked_inputs, render
from modelops.graph.split import render_stack, split_graph
from modelops.graph.stacks import DEFAULT_BUDGET, config_files, group_slug, jump_hash, layout, partition_of
from modelops.spec.envs import list_environments, load_environment
from tests.graph.helpers import FIXED_ARTIFACT, fixed_environment, write_rich_project
from tests.helpers import ROOT

SHARED_TYPES = {"aws:kms/key:Key", "aws:kms/alias:Alias", "aws:sns/topic:Topic", "aws:glue/catalogDatabase:CatalogDatabase",
                "aws:cloudwatch/dashboard:Dashboard"}


ENTITY_TYPES = {"aws:sagemaker/endpoint:Endpoint", "aws:sagemaker/model:Model", "aws:cloudwatch/metricAlarm:MetricAlarm",
                "aws:glue/catalogTable:CatalogTable", "aws:iam/role:Role"}


def _keys(graph) -> list[tuple]:
    return sorted((r.type, r.name, repr(masked_inputs(r)), r.protect) for r in graph.resources)


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    """A 40-model project (8 datasets, freshness monitors, an https channel), fixed artifact."""
    spec = write_rich_project(tmp_path_factory.mktemp("rich") / "p", 40)
    env = load_environment(spec, "prod")
    models = {n: dataclasses.replace(m, artifact=FIXED_ARTIFACT) for n, m in env.models.items()}
    return dataclasses.replace(env, models=models)


def test_the_example_is_a_shared_stack_and_one_group_stack():
    env = fixed_environment("modelops.yaml", "dev")
    lay = layout(env)
    assert [s.name for s in lay.stacks] == ["dev", "dev.ml-platform"]
    assert lay.stack_of("model", "churn-classifier").name == "dev.ml-platform"
    assert lay.stack_of("monitor", "churn-latency").name == "dev.ml-platform"
    assert lay.stack_of("dataset", "customers").name == "dev.ml-platform"
    assert lay.stack_of("shared", "churn").name == "dev"


@pytest.mark.parametrize("spec", ["modelops.yaml", "examples/fraud/modelops.yaml"])
def test_each_stacks_program_registers_its_part_of_the_single_program(spec):
    # GIVEN an example environment and its split
    env = fixed_environment(spec, "prod")
    lay = layout(env)
    whole = render(env, jobs=1)
    parts = split_graph(whole, lay)
    union = []
    for stack in lay.stacks:
        # WHEN each stack's own program runs (a group reading the shared stack's rendered outputs)
        graph, outputs = render_stack(env, lay, stack.name)
        # THEN it registers exactly its part of the environment's graph, with the same inputs
        assert _keys(graph) == _keys(parts[stack.name]), stack.name
        union += _keys(graph)
        if stack.shared:
            assert not {r.type for r in graph.resources} & ENTITY_TYPES
            assert outputs["artifactsBucket"] == f"{env.project}-prod-artifacts-123456789012"
            assert set(outputs["topicArns"]) == set(env.channels)
        else:
            assert not {r.type for r in graph.resources} & SHARED_TYPES
            assert all(r.urn.startswith(f"urn:pulumi:{stack.name}::") for r in graph.registrations)
    assert sorted(union) == _keys(whole)


def test_a_group_over_the_budget_is_split_and_every_stack_stays_under_it(rich):
    # (a budget of about ten of its models: each has a drift monitor job, 12 more resources)
    lay = layout(rich, budget=300, partitions={})
    groups = lay.groups
    assert len(groups) > 1 and [g.name for g in groups][:2] == ["prod.ml-platform", "prod.ml-platform.2"]
    parts = split_graph(render(rich, jobs=1), lay)
    assert sum(len(g.resources) for g in parts.values()) == len(render(rich, jobs=1).resources)
    assert max(len(parts[g.name].resources) for g in groups) <= 300
    # every monitor is in the stack of what it watches
    for name, mon in rich.monitors.items():
        target = ("dataset", mon.dataset) if mon.dataset else ("model", mon.model)
        assert lay.stack_of("monitor", name) == lay.stack_of(*target)


def test_adding_or_removing_a_model_moves_no_other_model(rich):
    before = layout(rich, partitions={"ml-platform": 4})
    gone = dataclasses.replace(rich, models={n: m for n, m in rich.models.items() if n != "model-0003"},
                               monitors={n: m for n, m in rich.monitors.items() if m.model != "model-0003"})
    after = layout(gone, partitions={"ml-platform": 4})
    for name in gone.models:
        assert after.stack_of("model", name).name == before.stack_of("model", name).name
    added = dataclasses.replace(rich, models={**rich.models, "model-9999": rich.models["model-0000"]})
    grown = layout(added, partitions={"ml-platform": 4})
    for name in rich.models:
        assert grown.stack_of("model", name).name == before.stack_of("model", name).name


def test_one_more_partition_moves_only_what_the_new_one_takes():
    names = [f"model-{i:04d}" for i in range(2000)]
    moved = [n for n in names if partition_of("model", n, 4) != partition_of("model", n, 5)]
    assert all(partition_of("model", n, 5) == 4 for n in moved)
    assert 0.15 < len(moved) / len(names) < 0.25  # about 1/5
    assert jump_hash(12345, 1) == 0


def test_the_recorded_partition_count_wins_over_the_derived_one(rich, tmp_path):
    derived = layout(rich, budget=100, partitions={})
    assert len(derived.groups) > 1
    assert [g.name for g in layout(rich, budget=100, partitions={"ml-platform": 1}).groups] == ["prod.ml-platform"]
    assert DEFAULT_BUDGET == 500


@pytest.mark.parametrize("owner, slug", [("ml-platform@example.com", "ml-platform"), ("@acme/Fraud_Team", "fraud-team"),
                                         ("risk", "risk")])
def test_stack_names_of_owners(owner, slug):
    assert group_slug(owner) == slug


def _cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_stacks_lists_the_environments_stacks_with_their_resource_counts():
    # WHEN the user asks for the stacks of the example's dev environment
    proc = _cli("stacks", "--env", "dev", "--json")
    # THEN the shared stack and the one group stack are listed, their counts adding up to the plan's
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["stacks"]
    assert [(r["stack"], r["config"]) for r in rows] == [("dev", "Pulumi.dev.yaml"),
                                                          ("dev.ml-platform", "Pulumi.dev.ml-platform.yaml")]
    plan = json.loads(_cli("plan", "--env", "dev", "--json").stdout)
    assert sum(r["resources"] for r in rows) == sum(plan["counts"].values())
    assert rows[1]["models"] == 1 and not any(r["over_budget"] for r in rows)
    text = _cli("stacks", "--env", "dev").stdout
    assert "dev.ml-platform  ml-platform@example.com  1/1" in text


def test_stacks_write_records_the_configs_and_their_partition_counts(tmp_path):
    # GIVEN a 40-model project without stack configs and a budget its group exceeds
    spec = write_rich_project(tmp_path / "p", 40)
    # WHEN the stack configs are written
    proc = _cli("stacks", str(spec), "--env", "prod", "--budget", "300", "--write", "--json")
    assert proc.returncode == 0, proc.stderr
    written = sorted(Path(p).name for p in json.loads(proc.stdout)["written"])
    # THEN each stack has its config, the group's partition count recorded in it
    assert written[0] == "Pulumi.prod.ml-platform.2.yaml" and "Pulumi.prod.yaml" in written
    config = yaml.safe_load((spec.parent / "stacks" / "Pulumi.prod.ml-platform.yaml").read_text())["config"]
    count = config["modelops:partitions"]
    assert count == len(written) - 1 and config["modelops:environment"] == "prod" and config["modelops:spec"] == "modelops.yaml"
    # and a later layout reads that count back, whatever budget it is given
    assert len(layout(load_environment(spec, "prod")).groups) == count


def test_the_committed_stack_configs_are_the_derived_ones():
    for env_name in list_environments(ROOT / "modelops.yaml"):
        env = load_environment(ROOT / "modelops.yaml", env_name)
        for name, content in config_files(env, layout(env)).items():
            assert yaml.safe_load((ROOT / "stacks" / name).read_text()) == content, name
