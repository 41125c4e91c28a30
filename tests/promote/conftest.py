"""Fixtures of the promotion tests: the example project built once, and a git copy per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelops.ml.artifacts import attach_artifacts
from modelops.spec.envs import load_environment
from tests.helpers import ROOT
from tests.promote.helpers import commit, git


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The example project with the model built once (training takes a few seconds)."""
    base = tmp_path_factory.mktemp("built")
    shutil.copy(ROOT / "modelops.yaml", base / "modelops.yaml")
    shutil.copytree(ROOT / "stacks", base / "stacks")
    shutil.copytree(ROOT / "examples" / "churn" / "data", base / "examples" / "churn" / "data")
    attach_artifacts(load_environment(base / "modelops.yaml", "staging"))
    return base


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Path:
    """A git repository of the built project with everything committed (promotions are made from commits)."""
    copy = tmp_path / "project"
    shutil.copytree(built, copy)
    (copy / ".gitignore").write_text(".modelops/\n")
    git(copy, "init", "-q")
    commit(copy, "the example project")
    return copy
