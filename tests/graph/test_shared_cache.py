"""Main's render cache, restored on a fresh runner: the first review of a pull request.

The deploy workflow saves the render cache of main's commit; a pull request's first run,
on a runner that has never seen the project, restores it before ``validate`` and ``diff``.
That is only worth doing if a cache made in one checkout is read in another: entries are
keyed by the content they were rendered from, never by where the checkout lives.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pulumi
import yaml

from modelops.graph.cache import RenderCache
from modelops.ml.placeholders import attach_without_training
from modelops.plain import plain
from modelops.spec.envs import load_environment
from tests.graph.helpers import write_rich_project
from tests.helpers import ROOT, git


def _modelops(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)


def _entries(project: Path) -> set[str]:
    return {p.name for p in (project / ".modelops" / "cache" / "render").rglob("*.json")}


def test_main_cache_restored_in_a_fresh_clone_renders_only_the_changed_model(tmp_path: Path) -> None:
    # GIVEN main's commit, validated on one runner (the deploy workflow's cache job)
    origin = write_rich_project(tmp_path / "origin", 8).parent
    (origin / "stacks" / "prod.yaml").write_text("protect: true\npolicies: {prod-min-instances: advisory}\n")
    for env in ("dev", "staging"):
        (origin / "stacks" / f"{env}.yaml").write_text("protect: false\n")
    (origin / ".gitignore").write_text(".modelops/\n")
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "main")
    main_runner = tmp_path / "runner-main" / "project"
    git(tmp_path, "clone", "-q", str(origin), str(main_runner))
    validated = _modelops(main_runner, "validate", "modelops.yaml")
    assert validated.returncode == 0, validated.stderr
    saved = _entries(main_runner)
    assert saved, "validate left its render groups in .modelops/cache"
    # AND a pull request changing one model, checked out on another runner at another path,
    # with main's cache directory restored and nothing else
    pr_runner = tmp_path / "runner-pr" / "checkout"
    git(tmp_path, "clone", "-q", str(origin), str(pr_runner))
    shutil.copytree(main_runner / ".modelops" / "cache", pr_runner / ".modelops" / "cache")
    spec = pr_runner / "modelops.yaml"
    data = yaml.safe_load(spec.read_text())
    data["models"]["model-0003"].setdefault("serving", {})["instance_type"] = "ml.c5.2xlarge"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    # WHEN the review runs there
    diff = _modelops(pr_runner, "diff", "modelops.yaml", "--base", "origin/main", "--json")
    # THEN it reports the change
    assert diff.returncode == 0, diff.stderr
    assert "ml.c5.2xlarge" in diff.stdout
    # AND it rendered the changed model's groups only: the model and the monitors watching it
    # (their keys hold the model), in each environment; everything else came from main's cache
    envs = ("dev", "staging", "prod")
    changed = sum(1 + sum(1 for m in load_environment(spec, env).monitors.values() if m.model == "model-0003")
                  for env in envs)
    assert len(_entries(pr_runner) - saved) == changed


def test_a_cache_read_in_another_checkout_names_that_checkouts_files(tmp_path: Path) -> None:
    # GIVEN a project rendered (validate's path) in one checkout, its cache copied to another
    first = write_rich_project(tmp_path / "one", 8).parent
    second = tmp_path / "elsewhere" / "two"
    shutil.copytree(first, second)
    for project in (first, second):
        (project / "stacks" / "prod.yaml").write_text("protect: true\npolicies: {prod-min-instances: advisory}\n")
    assert _modelops(first, "validate", "modelops.yaml").returncode == 0
    shutil.rmtree(second / ".modelops", ignore_errors=True)
    shutil.copytree(first / ".modelops" / "cache", second / ".modelops" / "cache")
    # WHEN the second checkout renders, in a fresh process
    cache = RenderCache()
    env, _ = attach_without_training(load_environment(second / "modelops.yaml", "prod"), second, tmp_path / "scratch")
    graph = cache.render(env, second / ".modelops" / "cache")
    # THEN every group came from the copied cache, and every file the graph uploads is the
    # second checkout's (an up from it reads its own packages), none the first's
    assert cache.stats == {"full": 0, "partial": 0, "hit": 1}
    sources = [str(r.inputs["source"].path) for r in graph.registrations
               if isinstance(r.inputs.get("source"), pulumi.FileAsset)]
    assert sources, "the graph uploads the model packages"
    assert all(Path(s).is_relative_to(second) and Path(s).is_file() for s in sources), sources
    assert str(first) not in json.dumps([plain(r.inputs) for r in graph.registrations], default=str)
