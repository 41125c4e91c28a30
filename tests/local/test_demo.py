"""``make demo`` as a new user sees it in a pipe: each resource once, 100 columns, inspect
commands that work as printed, and a clean-up line that leaves nothing running."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.local.helpers import copy_project, env_state
from modelops.local import server

pytestmark = [pytest.mark.aws, pytest.mark.slow]

#: the venv's scripts first, as after `. .venv/bin/activate`
ACTIVATED = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_the_demo_leaves_the_environment_to_inspect_and_says_how_to_remove_it(
    tmp_path: Path, artifact_root: Path
) -> None:
    spec = copy_project("churn", tmp_path / "project", artifact_root)
    root = spec.parent
    try:
        # WHEN a new user runs the demo in the project, its output going to a pipe
        done = subprocess.run([sys.executable, "-m", "modelops.demo", "--project", str(root)], capture_output=True,
                              text=True, timeout=600, env=ACTIVATED, cwd=root, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.splitlines()
        state = env_state(root)
        # THEN every resource is listed once, on stdout only
        rows = [line for line in lines if line.startswith("  ") and line.endswith("  created")]
        # (37 before the drift monitor got its job: 11 resources)
        assert len(rows) == len(state["resources"]) == 48
        assert " created " not in done.stderr
        # AND the inspect commands are whole lines; every other line fits 100 columns
        inspect = [line.strip() for line in lines if line.startswith("  AWS_ACCESS_KEY_ID=testing")]
        assert len(inspect) == 4
        assert all(len(line) <= 100 for line in lines if line.strip() not in inspect), done.stdout
        # AND the emulator still runs, and each inspect command works as printed
        assert server.status(root) is not None
        if shutil.which("aws", path=ACTIVATED["PATH"]):
            for command in inspect:
                ran = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120,
                                     env=ACTIVATED, cwd=root, check=False)
                assert ran.returncode == 0, f"{command}: {ran.stderr}"
        # AND the printed clean-up removes the environment and stops the emulator
        clean_up = lines[lines.index("The environment and the emulator keep running. Remove both with:") + 1].strip()
        assert clean_up == "modelops destroy --env dev && modelops local stop"
        cleaned = subprocess.run(["bash", "-c", clean_up], capture_output=True, text=True, timeout=300,
                                 env=ACTIVATED, cwd=root, check=False)
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert "48 deleted" in cleaned.stdout and "stopped the local emulator" in cleaned.stdout
        assert server.status(root) is None
    finally:
        server.stop(root)  # whatever failed above, no emulator outlives the test
