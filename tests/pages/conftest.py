"""Fixtures of the page tests: the churn example's dev environment provisioned to the TLS emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from modelops.local.apply import up
from modelops.ml.artifacts import attach_artifacts
from modelops.spec.envs import load_environment
from tests.helpers import Emulator
from tests.local.helpers import copy_project
from tests.pages.helpers import Deployed


@pytest.fixture(scope="module")
def deployed(emulator_server: Emulator, artifact_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    emulator_server.reset()
    spec = copy_project("churn", tmp_path_factory.mktemp("pages") / "project", artifact_root)
    env = attach_artifacts(load_environment(spec, "dev"), build=False)
    outcome = up(env, emulator_server.target(), spec.parent)
    assert all(c.ok for c in outcome.checks), [c for c in outcome.checks if not c.ok]
    yield Deployed(spec, env, emulator_server)
