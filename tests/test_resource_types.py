"""The per-type table (modelops/data/replacement.json): its facts hold for the pulumi_aws
types the components emit, and diff reads them."""

from __future__ import annotations

import inspect
import re
import shutil

import pulumi_aws
import pytest

from diff_fixtures import BASE
from modelops.graph.resource_types import replace_keys, replacement_table
from modelops.review.diff import diff

MODEL_PACKAGE_GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"


def pulumi_inputs(type_: str) -> set[str]:
    """The camelCase inputs (as the engine sends them) of a pulumi_aws resource type."""
    _, module, cls = type_.split(":")
    resource = getattr(getattr(pulumi_aws, module.split("/")[0]), cls)
    params = set(inspect.signature(resource._internal_init).parameters) - {"self", "__self__", "resource_name", "opts", "__props__"}
    return {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), p) for p in params}


@pytest.mark.parametrize("type_", sorted(replacement_table()))
def test_every_replace_key_is_an_input_of_its_type(type_):
    # GIVEN the inputs pulumi_aws 7 declares for the type
    inputs = pulumi_inputs(type_)
    # THEN every input the table says forces a replacement is one of them (a misspelt or
    # invented name, `keySpec` or `topicArn`, would never match a change)
    forcing, _ = replace_keys(type_)
    assert forcing - inputs == set()
    # AND `region` (pulumi_aws 7: on every type but IAM's) forces one wherever the type has it
    assert ("region" in forcing) == ("region" in inputs)


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
