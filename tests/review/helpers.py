"""Builders of the review tests (tests/review/): a base spec and head variants copied into a
temporary tree, and the installed CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import FIXTURES

BASE = FIXTURES / "diff" / "base"
CASES = FIXTURES / "diff" / "cases"


def spec_pair(tmp: Path, case: str, base: Path | None = None) -> tuple[Path, Path]:
    """(head spec path, base directory): the base fixture, and a copy with ``case``'s files laid over it.

    Pass ``base`` (an earlier copy of the base fixture) to share it between cases: its renders
    are then cached once for all of them.
    """
    head = tmp / "head"
    if base is None:
        base = tmp / "base"
        shutil.copytree(BASE, base)
    shutil.copytree(BASE, head)
    shutil.copytree(CASES / case, head, dirs_exist_ok=True)
    return head / "modelops.yaml", base


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``modelops`` CLI (the product) in ``cwd``."""
    exe = Path(sys.executable).parent / "modelops"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
