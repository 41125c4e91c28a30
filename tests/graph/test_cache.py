"""The render cache: an incremental render (one entity changed) equals a full render."""

from __future__ import annotations


import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from modelops.components.monitor_job import job_source
from modelops.graph.cache import RenderCache
from modelops.graph.keys import code_files
from modelops.ml import monitor_job
from modelops.ml.placeholders import attach_without_training
from modelops.spec.envs import load_environment
from modelops.graph.render import render
from modelops.spec.resolved import Threshold
from tests.helpers import ROOT



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


def test_an_unreadable_disk_entry_is_a_miss_and_rendered_again(fraud, tmp_path):
    # GIVEN a disk cache whose entries are damaged: cut short, or written by another format
    env, _ = fraud
    RenderCache().render(env, tmp_path)
    entries = sorted((tmp_path / "render").rglob("*.json"))
    assert entries, "the render wrote no disk entries"
    entries[0].write_bytes(entries[0].read_bytes()[:20])
    seal, _, payload = entries[1].read_bytes().partition(b"\n")
    entries[1].write_bytes(seal + b"\n" + payload + b" ")  # still JSON, but edited: its seal no longer holds
    # WHEN a new process's cache reads them
    fresh = RenderCache()
    graph = fresh.render(env, tmp_path)
    # THEN they count as missing (a render ran) and the graph is still the full one
    assert fresh.stats["hit"] == 0 and fresh.stats["full"] + fresh.stats["partial"] == 1
    same(graph, render(env))


def test_a_planted_entry_is_never_code_only_a_miss(fraud, tmp_path):
    # GIVEN every disk entry of a render replaced by a pickle that would run code when loaded
    env, _ = fraud
    RenderCache().render(env, tmp_path)
    marker = tmp_path / "code-ran"
    import pickle

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    entries = sorted((tmp_path / "render").rglob("*.json"))
    assert entries
    for entry in entries:
        entry.write_bytes(pickle.dumps(Payload()))
    # WHEN a new process's cache reads them
    fresh = RenderCache()
    graph = fresh.render(env, tmp_path)
    # THEN nothing ran, each was a miss, and the graph is the full one
    assert not marker.exists()
    assert fresh.stats["hit"] == 0 and fresh.stats["full"] == 1
    same(graph, render(env))
    # and the entries written again are data: the seal, then JSON
    seal, _, payload = sorted((tmp_path / "render").rglob("*.json"))[0].read_bytes().partition(b"\n")
    assert len(seal) == 64 and isinstance(json.loads(payload), list)


def test_content_keys_are_canonical_json_of_the_resolved_entities(fraud):
    # The fast plain-data walk behind cache keys and reviews gives what dataclasses.asdict
    # gives (tuples as lists, keys sorted), for every entity of a real example
    import json

    from modelops.plain import canonical as _blob

    env, _ = fraud
    entities = [*env.datasets.values(), *env.models.values(), *env.monitors.values(), *env.channels.values()]
    assert len(entities) > 5
    for entity in entities:
        want = json.dumps(dataclasses.asdict(entity), sort_keys=True, default=str, separators=(",", ":"))
        assert _blob(entity) == want, entity


@pytest.mark.parametrize("value", [
    {1: "int key", "1": "the same key as text: the later wins", "b": [1.5, 10**30, True, None]},
    {"nan": float("nan"), "inf": float("inf"), "-inf": -float("inf"), "": {}},
    {"é": "ü\n\u0000\"quoted\"", "set": {3}, "path": Path("/a b"), "nested": ({"k": (1, (2,))}, [])},
    Path("/as/text"),
])
def test_canonical_text_is_the_json_of_the_plain_data(fraud, value):
    # The one-walk canonical writer gives json.dumps(plain(...)) for any value, the odd
    # ones included (non-string keys, NaN, objects written with str), and the same again
    # when it keeps the texts of the frozen entities it met
    import json

    from modelops.plain import canonical, plain

    def expected(v):
        return json.dumps(plain(v), sort_keys=True, default=str, separators=(",", ":"))

    assert canonical(value) == expected(value)
    env, _ = fraud
    texts: dict = {}
    for entity in [env, *env.models.values(), *env.monitors.values(), *env.models.values()]:
        assert canonical(entity, texts) == canonical(entity) == expected(entity)
    assert texts


@pytest.mark.parametrize("model", ["fraud-amount", "fraud-scorer"])
def test_a_model_missing_alone_from_the_cache_is_rendered_with_its_rollback_alarms(fraud, tmp_path, model):
    # GIVEN a disk cache that lacks one model's group only (an evicted or deleted entry),
    # its monitors' groups present: its endpoint rolls back on those monitors' alarms
    env, _ = fraud
    RenderCache().render(env, tmp_path)
    key = RenderCache().keys(env)[("model", model)]
    Path(RenderCache.entry_path(tmp_path, key)).unlink()
    # WHEN it is rendered from that cache
    fresh = RenderCache()
    graph = fresh.render(env, tmp_path)
    # THEN only that part is re-rendered, and the graph (rollback alarms included) is the full one
    assert fresh.stats["partial"] == 1 and fresh.stats["full"] == 0
    same(graph, render(env))


def test_entries_of_other_code_versions_are_removed_and_this_versions_kept(fraud, tmp_path):
    env, _ = fraud
    other = changed_model(env)
    # GIVEN a disk cache with this code's entries of one spec version...
    RenderCache().render(other, tmp_path)
    # ... and entries another code version left (its fingerprint's directory, and the
    # layout before entries were filed by fingerprint)
    stale = [tmp_path / "render" / "0123456789abcdef" / "ab" / "ab12.json", tmp_path / "render" / "cd" / "cd34.pickle"]
    for path in stale:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"rows of another code version")
    # WHEN a new process renders another spec version there (its changed model is written)
    fresh = RenderCache()
    same(fresh.render(env, tmp_path), render(env))
    assert fresh.stats["partial"] == 1
    # THEN the other code version's entries are gone, and this code's of both spec versions are read back
    assert not any(path.exists() for path in stale)
    assert sorted(p.name for p in (tmp_path / "render").iterdir()) == [Path(RenderCache.entry_path(tmp_path, "k")).parent.parent.name]
    for version in (env, other):
        again = RenderCache()
        same(again.render(version, tmp_path), render(version))
        assert again.stats == {"full": 0, "partial": 0, "hit": 1}


def test_the_code_fingerprint_covers_the_monitor_job_script_the_render_uploads():
    # GIVEN the job script, whose text the monitor job component uploads (content-addressed)
    script = Path(monitor_job.__file__).resolve()
    assert job_source() == script.read_text(encoding="utf-8")
    # THEN a change to it changes the fingerprint: cached graphs never keep the old script
    assert script in code_files()
