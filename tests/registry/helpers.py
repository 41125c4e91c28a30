"""Helpers of the registry tests (tests/registry/): the CLI as a user runs it, the registry at the emulator."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

from modelops.graph.render import RenderBackend
from modelops.graph.runtime import Registration, run
from modelops.local.apply import up_registry
from modelops.local.server import Target
from modelops.registry import Registry
from modelops.spec.resolved import Environment
from tests.helpers import ROOT, Emulator

MODELOPS = [sys.executable, "-m", "modelops"]
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]


def modelops(*args: str, cwd: Path, ca_bundle: str | None = None) -> subprocess.CompletedProcess:
    """``modelops ARGS`` in ``cwd``, trusting the emulator's certificate."""
    env = dict(os.environ)
    if ca_bundle:
        env["AWS_CA_BUNDLE"] = ca_bundle
    return subprocess.run([*MODELOPS, *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd,
                          check=False)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def run_stack_program(monkeypatch, config: dict[str, str], stack: str) -> list[Registration]:
    """Run stacks/__main__.py as the engine would, with ``config`` as the stack config (render backend)."""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    return run(lambda: runpy.run_path(str(ROOT / "stacks" / "__main__.py"), run_name="__main__"), RenderBackend(),
               project="modelops", stack=stack)


def registry_at(emulator: Emulator, env: Environment, root: Path) -> Registry:
    """The project's registry stack applied to the emulator (as `modelops publish` does), and its handle."""
    target: Target = emulator.target()
    outcome = up_registry(env, target, root)
    assert all(c.ok for c in outcome.checks), [c for c in outcome.checks if not c.ok]
    return Registry.at(target.clients(env.region), env.project, emulator.url)


__all__ = ["ROOT", "git", "modelops", "registry_at", "run_stack_program"]
