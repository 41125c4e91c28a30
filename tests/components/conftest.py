"""Fixtures of the components tests: the example environments and the variants fixture, rendered."""

from __future__ import annotations

import pytest

from modelops.graph.render import render
from tests.components.helpers import Renders, load, shared_renders, tiny_artifact, variants_spec


@pytest.fixture
def renders() -> Renders:
    """Every example environment with a tiny real artifact, each rendered once per process."""
    return shared_renders()


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """The variants fixture spec (dev), resolved and rendered once per module: ``(env, graph)``."""
    tmp = tmp_path_factory.mktemp("variants")
    env = load(variants_spec(tmp), "dev", tiny_artifact(tmp / "a"))
    return env, render(env)
