"""Helpers of the spec tests (tests/spec/): the spec corpus and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import FIXTURES, ROOT

SPECS = FIXTURES / "specs"
INVALID = SPECS / "invalid"
VALID = SPECS / "valid"
EXAMPLES = (ROOT / "modelops.yaml", ROOT / "examples" / "fraud" / "modelops.yaml", ROOT / "examples" / "teams" / "modelops.yaml")


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the ``modelops`` command as a user does: a separate process, real files."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("MODELOPS_VERBOSE", None)
    return subprocess.run(
        [sys.executable, "-m", "modelops", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def invalid_cases() -> list[str]:
    """Names of the invalid-spec corpus: each ``<name>.expected`` with its spec file or dir."""
    return sorted(path.name[: -len(".expected")] for path in INVALID.glob("*.expected"))


def invalid_spec(name: str) -> str:
    """The spec argument of a corpus case, relative to INVALID (the cwd of the run)."""
    if (INVALID / name).is_dir():
        return f"{name}/modelops.yaml"
    return f"{name}.yaml"


def expected_lines(name: str) -> list[str]:
    return (INVALID / f"{name}.expected").read_text(encoding="utf-8").splitlines()
