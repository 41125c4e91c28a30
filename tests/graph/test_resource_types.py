"""The per-type table (modelops/data/resource_types.json): one entry for every type token the
components emit, with every field, and what each reader does agrees with it: the render
computes the outputs it lists, the local handlers replace on the inputs diff replaces on,
plan shows its paths, cost buckets each type as it says."""

from __future__ import annotations

import inspect
import json
import re
import shutil
from importlib import resources

import pulumi_aws
import pytest

from modelops.graph.render import render
from tests.components.helpers import EXAMPLE_CASES, load, shared_renders, variants_spec
from tests.helpers import ROOT
from tests.review.helpers import BASE
from modelops.cli.plan import _get
from modelops.graph import render as render_module
from modelops.graph.resource_types import FIELDS, MODEL_PACKAGE_GROUP, replace_keys, table
from modelops.local.handlers import HANDLERS
from modelops.review.cost import estimate, prices
from modelops.review.diff import diff
from modelops.spec.envs import list_environments

#: fixture specs rendered besides the examples (their environments: every overlay)
FIXTURE_SPECS = (ROOT / "tests" / "fixtures" / "specs" / "valid" / "full" / "modelops.yaml",
                 ROOT / "tests" / "fixtures" / "specs" / "valid" / "no-stacks" / "modelops.yaml",
                 BASE / "modelops.yaml")


def pulumi_inputs(type_: str) -> set[str]:
    """The camelCase inputs (as the engine sends them) of a pulumi_aws resource type."""
    _, module, cls = type_.split(":")
    resource = getattr(getattr(pulumi_aws, module.split("/")[0]), cls)
    params = set(inspect.signature(resource._internal_init).parameters) - {"self", "__self__", "resource_name", "opts", "__props__"}
    return {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), p) for p in params}


def raw_entries() -> dict[str, dict]:
    """The table file as shipped, before any accessor reads it."""
    text = resources.files("modelops.data").joinpath("resource_types.json").read_text(encoding="utf-8")
    return json.loads(text)["types"]


@pytest.fixture(scope="module")
def emitted(tmp_path_factory) -> dict[str, list]:
    """Every custom resource the examples and the fixture specs render to, by type token."""
    renders = shared_renders()
    graphs = [renders.get(spec, env)[1] for spec, env in EXAMPLE_CASES]
    variants = variants_spec(tmp_path_factory.mktemp("variants"))
    for spec in (*FIXTURE_SPECS, variants):
        graphs += [render(load(spec, env, renders.artifact)) for env in list_environments(spec)]
    by_type: dict[str, list] = {}
    for graph in graphs:
        for reg in graph.resources:
            by_type.setdefault(reg.type, []).append(reg)
    return by_type


def test_every_emitted_type_has_an_entry_with_every_field(emitted):
    # GIVEN the table as shipped
    entries = raw_entries()
    # THEN every type the components emit has an entry, and the table knows no other type
    assert sorted(set(emitted) - set(entries)) == [], "types the components emit without an entry"
    assert sorted(set(entries) - set(emitted)) == [], "entries of types no example or fixture emits"
    # AND every entry has every field, of its kind
    for token, entry in entries.items():
        assert sorted(entry) == sorted(FIELDS), token
        assert isinstance(entry["all"], bool), token
        assert all(isinstance(entry[f], list) and all(isinstance(v, str) for v in entry[f])
                   for f in ("replace", "outputs", "plan")), token
        assert entry["cost"] in ("free", "priced") or re.fullmatch(r"usage:\w+", entry["cost"]), token


@pytest.mark.parametrize("type_", sorted(table()))
def test_every_replace_key_is_an_input_of_its_type(type_):
    # GIVEN the inputs pulumi_aws 7 declares for the type
    inputs = pulumi_inputs(type_)
    # THEN every input the table says forces a replacement is one of them (a misspelt or
    # invented name, `keySpec` or `topicArn`, would never match a change)
    forcing, _ = replace_keys(type_)
    assert forcing - inputs == set()
    # AND `region` (pulumi_aws 7: on every type but IAM's) forces one wherever the type has it
    assert ("region" in forcing) == ("region" in inputs)


def test_render_computes_the_outputs_the_table_lists(emitted):
    # GIVEN the render's per-type code and the table
    assert sorted(render_module._COMPUTED) == sorted(table())
    # THEN every rendered resource reports exactly the outputs its entry lists
    for token, regs in emitted.items():
        listed = set(table()[token].outputs)
        for reg in regs:
            assert set(reg.outputs) == listed, (token, reg.name)


def test_the_local_handlers_replace_on_what_diff_replaces_on():
    # GIVEN the handlers `up` applies with
    # THEN they cover exactly the table's types
    assert sorted(HANDLERS) == sorted(table())
    # AND each replaces on the table's inputs (any change, where every input forces one)
    for token, handler in HANDLERS.items():
        facts = table()[token]
        assert handler.replace_keys == (None if facts.replace_all else facts.replace), token


def test_plan_shows_paths_the_rendered_inputs_have(emitted):
    # every path the table lists for plan resolves on the rendered resources of its type
    for token, facts in table().items():
        for path in facts.plan:
            assert any(_get(reg.inputs, path) is not None for reg in emitted[token]), (token, path)


def test_cost_buckets_each_type_as_the_table_says(emitted):
    for token, facts in table().items():
        # GIVEN the rendered resources of one type
        regs = emitted[token]
        # WHEN they alone are estimated
        report = estimate(regs, "us-east-1")
        # THEN they land in the bucket their cost class names
        unknown = [u for u in report.unpriced if u.reason.startswith("no price for resource type")]
        if facts.cost == "priced":
            assert report.lines and not unknown and report.free == 0, token
        elif facts.usage is not None:
            assert len(report.usage_based) == len(regs) and not report.lines and not report.unpriced, token
            assert facts.usage in prices(), token  # the section of the price file it depends on
        else:
            assert report.free == len(regs) and not report.lines and not report.usage_based and not report.unpriced, token


def test_a_model_description_change_replaces_its_package_group(tmp_path):
    # GIVEN the base spec, and a head that gives the model a description
    base, head = tmp_path / "base", tmp_path / "head"
    shutil.copytree(BASE, base)
    shutil.copytree(BASE, head)
    spec = head / "modelops.yaml"
    spec.write_text(spec.read_text().replace("  ranker:\n", "  ranker:\n    description: Ranks orders\n", 1))
    # WHEN the change is reviewed
    report = diff(spec, str(base), envs=["dev"])
    # THEN the package group is replaced: SageMaker cannot update a group's description
    [dev] = report.envs
    [group] = [r for r in dev.resources if r.type == MODEL_PACKAGE_GROUP]
    assert group.action == "replace"
    assert group.causes[0].startswith("modelPackageGroupDescription")
