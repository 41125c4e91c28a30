"""Properties: whatever a user writes, validation answers with problems, never a crash.

Random YAML documents and random mutations of the example spec either validate (and
then resolve in every environment) or give SpecError problems with positions. The fast
yes/no schema check agrees with the full Draft 2020-12 validator on every document.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelops.spec.envs import list_environments, load_environment, validate
from modelops.errors import Problem, SpecError
from modelops.spec.loader import load_yaml
from modelops.spec.schema import is_valid, validator
from tests.helpers import ROOT

EXAMPLE = ROOT / "examples" / "fraud"
BASE = yaml.safe_load((EXAMPLE / "modelops.yaml").read_text())
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["250ms", "5m", "2%", "sha256:" + "0" * 64, "churn", "customers", ">= 0.8", "ml.m5.large", "1d", "90s"]),
)
keys = st.one_of(st.text(max_size=10), st.sampled_from(["models", "datasets", "monitors", "serving", "train", "above", "below", "metric", "notify", "period", "for"]))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=20)


def _check_outcome(spec: Path) -> None:
    problems = validate(spec)
    assert all(isinstance(p, Problem) and p.line >= 1 and p.column >= 1 for p in problems)
    if not problems:
        for env in list_environments(spec):
            load_environment(spec, env)


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_text_loads_or_is_a_spec_error(text):
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "modelops.yaml"
        spec.write_text(text, encoding="utf-8")
        try:
            load_yaml(spec)
        except SpecError as exc:
            assert exc.problems and all(p.line >= 1 for p in exc.problems)
        _check_outcome(spec)


@SETTINGS
@given(data=documents)
def test_random_documents_give_problems_never_a_crash(data):
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "modelops.yaml"
        spec.write_text(yaml.safe_dump(data), encoding="utf-8")
        _check_outcome(spec)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


ALL_PATHS = [p for p in _paths(BASE) if p]


@st.composite
def mutations(draw):
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            last = path[-1]
            parent[last]  # still there after an earlier mutation?
        except (KeyError, IndexError, TypeError):
            continue
        action = draw(st.sampled_from(["delete", "replace", "rename", "add"]))
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(documents)
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(keys)] = parent.pop(last)
        elif action == "add" and isinstance(parent[last], dict):
            parent[last][draw(keys)] = draw(documents)
    return data


@SETTINGS
@given(data=mutations())
def test_mutations_of_the_example_give_problems_never_a_crash(data):
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(EXAMPLE, Path(tmp) / "fraud", ignore=shutil.ignore_patterns("data"))
        (Path(tmp) / "fraud" / "data").symlink_to(EXAMPLE / "data")
        spec = Path(tmp) / "fraud" / "modelops.yaml"
        spec.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        _check_outcome(spec)
        # the fast schema check and the full validator agree
        assert is_valid(data) == validator().is_valid(data)
        assert is_valid(data, kind="overlay") == validator("overlay").is_valid(data)


@SETTINGS
@given(data=documents)
def test_fast_and_full_schema_checks_agree_on_random_documents(data):
    assert is_valid(data) == validator().is_valid(data)
