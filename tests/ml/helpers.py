"""Helpers of the ML tests (tests/ml/): a copy of the ML test project, a CLI runner.

The project (``tests/fixtures/ml/``: the example datasets with small estimators) is copied
to a temporary directory so every build writes its ``.modelops/`` store there; the
fixtures that build it are in tests/ml/conftest.py.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from modelops.spec import resolved
from modelops.ml.artifacts import BuildOutcome
from tests.helpers import FIXTURES, ROOT, Moto

FIXTURE = FIXTURES / "ml"
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
