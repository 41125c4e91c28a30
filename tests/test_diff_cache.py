"""The render cache: an incremental render (one entity changed) equals a full render."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from modelops.diff import RenderCache, attach_without_training
from modelops.envs import load_environment
from modelops.render import render
from modelops.resolved import Threshold

from diff_fixtures import ROOT


@pytest.fixture(scope="module")
def fraud(tmp_path_factory):
    """The fraud example (two models, one serverless, an https channel) with placeholder artifacts."""
    root = tmp_path_factory.mktemp("fraud")
    shutil.copytree(ROOT / "examples" / "fraud", root / "fraud")
    env = load_environment(root / "fraud" / "modelops.yaml", "prod")
    attached, unbuilt = attach_without_training(env, root, root / "scratch")
    assert sorted(unbuilt) == ["fraud-amount", "fraud-scorer"]
    return attached, root


def same(a, b) -> None:
    ja, jb = a.to_json(reveal_secrets=True), b.to_json(reveal_secrets=True)
    assert [r["urn"] for r in ja["resources"]] == [r["urn"] for r in jb["resources"]]
    assert ja == jb


def changed_model(env):
    model = env.models["fraud-amount"]
    serving = dataclasses.replace(model.serving, instance_type="ml.c5.xlarge")
    return dataclasses.replace(env, models={**env.models, "fraud-amount": dataclasses.replace(model, serving=serving)})


def changed_monitor(env):
    mon = env.monitors["scorer-latency"]
    return dataclasses.replace(env, monitors={**env.monitors, "scorer-latency": dataclasses.replace(
        mon, threshold=Threshold(0.5, "seconds", "500ms"))})


@pytest.mark.parametrize("change", [changed_model, changed_monitor], ids=["model", "monitor"])
def test_incremental_render_equals_full_render(fraud, change):
    env, _ = fraud
    cache = RenderCache()
    cache.render(env)                       # GIVEN a warm cache of the environment
    assert cache.stats == {"full": 1, "partial": 0, "hit": 0}
    after = change(env)                     # WHEN one entity changes
    incremental = cache.render(after)
    assert cache.stats["partial"] == 1 and cache.stats["full"] == 1, "only the changed entity is rendered"
    same(incremental, render(after))        # THEN the graph is the one a full render gives


def test_adding_a_model_renders_in_full(fraud):
    env, _ = fraud
    cache = RenderCache()
    cache.render(env)
    model = env.models["fraud-amount"]
    grown = dataclasses.replace(env, models={**env.models, "fraud-extra": dataclasses.replace(model, name="fraud-extra")})
    same(cache.render(grown), render(grown))
    assert cache.stats["full"] == 2, "a new entity changes the shared resources (dashboard): full render"


def test_disk_cache_is_reused_by_a_new_process_cache(fraud, tmp_path):
    env, _ = fraud
    RenderCache().render(env, tmp_path)
    fresh = RenderCache()
    graph = fresh.render(env, tmp_path)
    assert fresh.stats == {"full": 0, "partial": 0, "hit": 1}
    same(graph, render(env))
