"""Fixtures of the ML tests: a copy of the ML test project, its built artifacts.

The project (``tests/fixtures/ml/``: the example datasets with small estimators) is copied
to a temporary directory so every build writes its ``.modelops/`` store there. Building
is the slow part, so one session-wide project is built once and shared read-only; tests
that change files or the store take their own ``fresh_project``.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops.spec import resolved
from modelops.ml.artifacts import BuildOutcome, build_model
from modelops.spec.envs import load_environment
from tests.helpers import Moto

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "ml"
DATA = {
    "customers.csv": ROOT / "examples" / "churn" / "data" / "customers.csv",
    "transactions.csv": ROOT / "examples" / "fraud" / "data" / "transactions.csv",
}
REGION = "eu-west-1"
ACCOUNT = "123456789012"


def make_project(destination: Path) -> Path:
    """Copy the ML test project (spec, overlays, data) to ``destination``; returns the spec path."""
    shutil.copytree(FIXTURE, destination, dirs_exist_ok=True)
    (destination / "data").mkdir(exist_ok=True)
    for name, source in DATA.items():
        shutil.copyfile(source, destination / "data" / name)
    return destination / "modelops.yaml"


@dataclass(frozen=True)
class Project:
    spec: Path
    root: Path
    env: resolved.Environment
    churn: BuildOutcome
    amount: BuildOutcome


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


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real ``modelops`` command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "modelops", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class MotoClients:
    """What drift needs from a target: ``client(service)`` bound to the moto server."""

    def __init__(self, moto: Moto) -> None:
        self._moto = moto

    def client(self, service: str):
        return self._moto.client(service)
