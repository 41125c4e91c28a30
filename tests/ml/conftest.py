"""Fixtures of the ML tests: the ML test project (tests/fixtures/ml/), built or not.

Building is the slow part, so one session-wide project is built once and shared read-only;
tests that change files or the store take their own ``fresh_project``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.ml.artifacts import build_model
from modelops.spec.envs import load_environment
from tests.ml.helpers import Project, make_project


@pytest.fixture(scope="session")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The ML test project with both models built once (treat as read-only)."""
    spec = make_project(tmp_path_factory.mktemp("ml-built"))
    env = load_environment(spec, "dev")
    return Project(spec, spec.parent, env, build_model(env, "churn"), build_model(env, "amount"))


@pytest.fixture
def fresh_project(tmp_path: Path) -> Path:
    """A private copy of the ML test project, nothing built; returns the spec path."""
    return make_project(tmp_path / "project")
