"""``modelops plan`` renders through the project's render cache: a second plan of the same
content renders nothing and prints the same bytes, a plan after a one-model change renders
that model's groups only, and the policy check of ``up`` (or ``validate``) after a plan
reads what the plan left instead of rendering again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

import modelops.graph.cache as diff_module
from modelops.spec.envs import load_environment
from modelops.checks.pipeline import check_policies
from tests.graph.helpers import write_rich_project
from tests.helpers import ROOT


def _plan(spec: Path, **env: str) -> bytes:
    proc = subprocess.run(
        [sys.executable, "-m", "modelops", "plan", str(spec), "--env", "prod", "--json"],
        cwd=spec.parent, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def _entries(spec: Path) -> dict[str, int]:
    """Every render cache entry on disk, by name, with its inode (a rewritten entry gets a new one)."""
    return {p.name: p.stat().st_ino for p in (spec.parent / ".modelops" / "cache" / "render").rglob("*.json")}


def test_a_second_plan_reads_the_cache_the_first_left_and_prints_the_same_bytes(tmp_path: Path) -> None:
    # GIVEN a project planned once (a cold cache)
    spec = write_rich_project(tmp_path / "proj", 8)
    first = _plan(spec)
    written = _entries(spec)
    assert len(written) > 6, "the plan left its render groups in .modelops/cache"
    # WHEN it is planned again, and once more with the cache off
    second = _plan(spec)
    uncached = _plan(spec, MODELOPS_RENDER_CACHE="off")
    # THEN the three plans are the same bytes, and the second wrote no entry (it rendered nothing)
    assert second == first
    assert uncached == first
    assert _entries(spec) == written
    # AND the secret channel's URL reached neither the plan nor the cache on disk
    assert b"hooks.example.com/services/ml-alerts" not in first
    cache_bytes = b"".join(p.read_bytes() for p in (spec.parent / ".modelops" / "cache").rglob("*.json"))
    assert b"hooks.example.com/services/ml-alerts" not in cache_bytes


def test_a_plan_after_one_model_changed_renders_that_models_groups_only(tmp_path: Path) -> None:
    # GIVEN a planned project, then one model's instance type changed in the spec
    spec = write_rich_project(tmp_path / "proj", 8)
    _plan(spec)
    before = _entries(spec)
    data = yaml.safe_load(spec.read_text())
    data["models"]["model-0003"].setdefault("serving", {})["instance_type"] = "ml.c5.2xlarge"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    # (the spec's monitors of the model and the default ones the model gets)
    watchers = [m.name for m in load_environment(spec, "prod").monitors.values() if m.model == "model-0003"]
    assert len(watchers) == 4
    # WHEN it is planned again
    incremental = _plan(spec)
    # THEN only the model's group and its monitors' groups (their keys hold the model) were rendered
    new = set(_entries(spec)) - set(before)
    assert len(new) == 1 + len(watchers)
    assert all(_entries(spec)[name] == ino for name, ino in before.items()), "no other entry was rewritten"
    # AND the plan is the one a full render of the changed spec gives
    assert incremental == _plan(spec, MODELOPS_RENDER_CACHE="off")
    assert b"ml.c5.2xlarge" in incremental


def test_the_policy_check_of_up_after_a_plan_renders_nothing(tmp_path: Path, monkeypatch) -> None:
    # GIVEN a project planned by the CLI (another process), whose prod records its one-instance
    # endpoints as a reviewed exception (else SageMaker.4 fails it: the check must pass here)
    spec = write_rich_project(tmp_path / "proj", 8)
    (spec.parent / "stacks" / "prod.yaml").write_text(
        "protect: true\npolicies: {prod-min-instances: advisory}\n")
    _plan(spec)
    # WHEN up's mandatory policy check runs in a new process (a fresh in-process cache)
    fresh = diff_module.RenderCache()
    monkeypatch.setattr(diff_module, "RENDER_CACHE", fresh)
    problems = check_policies({"prod": load_environment(spec, "prod")})
    # THEN it passed, every group read from the plan's cache: no render at all
    assert problems == []
    assert fresh.stats == {"full": 0, "partial": 0, "hit": 1}
