"""The content keys of the render cache's groups, and what they are made of.

A group's key (:func:`group_keys`) holds the environment's settings, the entities the group
depends on and the fingerprint of the rendering code (:func:`code_fingerprint`). Computing
keys reads the spec and the code's files, never the Pulumi SDK: a ``validate`` whose
findings were kept for the same keys (:mod:`modelops.checks.findings_cache`) starts and
ends without loading it. :mod:`modelops.graph.cache` renders and stores by these keys.

Example::

    keys = group_keys(env, Path(".modelops/cache"))   # {("model", "churn"): "3f1c...", ...}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import modelops.components as components
from modelops.plain import canonical, plain
from modelops.spec.resolved import Environment

__all__ = ["RENDER_CACHE_ENV", "code_files", "code_fingerprint", "group_keys", "relocate_to", "relocations", "settings_of"]

#: environment variable: ``off`` renders every environment in full, bypassing the render
#: cache (the benchmarks' reference for the incremental path, and a way to rule the cache out)
RENDER_CACHE_ENV = "MODELOPS_RENDER_CACHE"


def _hash(*parts: Any) -> str:
    return hashlib.sha256(canonical(parts).encode()).hexdigest()


def _hash_blobs(*blobs: str) -> str:
    """One key over canonical JSON texts (the separator never occurs in JSON: it is escaped)."""
    return hashlib.sha256("\x1f".join(blobs).encode()).hexdigest()


def code_files() -> list[Path]:
    """The files whose text shapes a render: the components, the render and its runtime, and
    the monitor job script, which the components upload as an object's content (its digest
    names the object and the pipeline's entrypoint)."""
    here = Path(__file__).resolve().parent
    return (sorted(Path(components.__file__).resolve().parent.glob("*.py"))
            + [here / "render.py", here / "runtime.py", here / "registration.py", here / "resource_types.py",
               here / "keys.py", here.parent / "spec" / "resolved.py", here.parent / "ml" / "monitor_job.py"])


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the code that shapes a render (:func:`code_files`, SDK versions): a cached
    graph is only reused by the code that made it."""
    h = hashlib.sha256()
    for path in code_files():
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    for dist in ("pulumi", "pulumi_aws"):
        try:
            h.update(f"{dist}={version(dist)}".encode())
        except Exception:  # noqa: BLE001 - a missing distribution only weakens the key
            h.update(dist.encode())
    return h.hexdigest()


def _keyed(model: Any) -> Any:
    """A model as its render depends on it. Components read the attached artifact (path and
    digest), never ``artifact_source``: that path differs between the two sides of a diff
    (the base lives in a temporary checkout) and would make every base render a miss."""
    if getattr(model, "artifact_source", None) is None:
        return model
    return dataclasses.replace(model, artifact_source=None)


def _model_text(model: Any, texts: dict[Any, tuple[Any, str]] | None) -> str:
    """Canonical JSON of :func:`_keyed` ``model``, kept in ``texts`` with the model (the same
    attached model in several environments: see ``attach_without_training``'s ``made``)."""
    if texts is None:
        return canonical(_keyed(model))
    kept = texts.get(("keyed", id(model)))
    if kept is not None and kept[0] is model:
        return kept[1]
    text = canonical(_keyed(model), texts)
    texts[("keyed", id(model))] = (model, text)
    return text


#: what stands for the project's directory in keys and entries (a NUL: no spec string holds
#: one), so that a cache made in one checkout is read in another: main's cache on a pull
#: request's runner, the base of a diff in a temporary checkout
_ROOT = "\u0000modelops-project-root"


def _json_text(value: str) -> str:
    """``value`` as it appears inside a JSON string (canonical and entry JSON escape alike)."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def relocations(env: Environment, cache_dir: Path | str | None) -> tuple[tuple[str, str], ...]:
    """(directory as JSON text, its stand-in) for the directory holding ``cache_dir``
    (``<root>/.modelops/cache``: builds and placeholder packages live there) and the spec's
    directory (its data files), longest first: every path under them is kept relative in
    keys and entries. The two differ only for the base of a diff (a temporary checkout);
    an entry read back has its paths under the first (where the packages are), which the
    table's first pair names (``(directory, "")``)."""
    roots: dict[str, str] = {}
    first = ""

    def add(directory: Path) -> None:
        nonlocal first
        # as named and with symbolic links resolved: paths reach the graph in either form
        for form in (os.path.abspath(directory), str(directory.resolve())):
            roots.setdefault(_json_text(form + os.sep), _json_text(_ROOT + "/"))
        first = first or _json_text(os.path.abspath(directory) + os.sep)

    if cache_dir is not None:
        cache = Path(cache_dir)
        if cache.name == "cache" and cache.parent.name == ".modelops":
            add(cache.parent.parent)
    if env.spec_file:
        add(Path(env.spec_file).parent)
    if not roots:
        return ()
    # longest first: a directory may be named inside another's resolved form (/tmp/x in /private/tmp/x)
    return ((first, ""),) + tuple(sorted(roots.items(), key=lambda item: len(item[0]), reverse=True))


_ROOT_TEXT = _json_text(_ROOT + "/").encode("utf-8")


def relocate_to(table: tuple[tuple[str, str], ...]) -> str:
    """The directory (as JSON text) a relative path of an entry is read back under: the
    first entry of a :func:`relocations` table."""
    return table[0][0] if table else ""


def _relocate(text: str, table: tuple[tuple[str, str], ...]) -> str:
    for old, new in table[1:]:
        if old in text:
            text = text.replace(old, new)
    return text


def settings_of(env: Environment) -> dict[str, Any]:
    """Everything but the entities (and the file names): what every group depends on."""
    return {f.name: plain(getattr(env, f.name)) for f in dataclasses.fields(env)
            if f.name not in ("datasets", "models", "monitors", "spec_file", "overlay_file", "include_files")}

def group_keys(env: Environment, cache_dir: Path | str | None = None,
               texts: dict[Any, tuple[Any, str]] | None = None) -> dict[tuple[str, str], str]:
    """(kind, entity) → content key of its group; ``("shared", "")`` for the shared group.
    Paths under the spec's directory (and the one holding ``cache_dir``) count relative:
    the same content checked out elsewhere has the same keys.

    ``texts``: the canonical texts kept by :func:`modelops.plain.canonical`; given the same
    dict for the environments of one spec, what they share is written once."""
    fp = code_fingerprint()
    roots = relocations(env, cache_dir)
    settings = settings_of(env)
    shape = {
        "datasets": sorted(env.datasets),
        "models": sorted((m.name, m.dataset) for m in env.models.values()),
        "monitors": sorted((m.name, m.model or "", m.dataset or "", m.metric) for m in env.monitors.values()),
    }
    keys = {("shared", ""): _hash(fp, "shared", settings, shape)}
    # Every entity's key holds the settings and what it depends on. Each entity is turned
    # into canonical JSON once (a dataset is read by models and monitors, a model by its
    # monitors) and a key hashes those texts: O(entities), not O(entities x dependants).
    common = _hash(fp, settings)
    datasets = {name: _relocate(canonical(ds, texts), roots) for name, ds in env.datasets.items()}
    models = {name: _relocate(_model_text(m, texts), roots) for name, m in env.models.items()}
    readers: dict[str, list[str]] = {}
    watchers: dict[str, list[tuple[str, str]]] = {}
    model_watchers: dict[str, list[tuple[str, str]]] = {}
    for m in env.models.values():
        readers.setdefault(m.dataset, []).append(m.name)
    for mon in env.monitors.values():
        if mon.dataset is not None:
            watchers.setdefault(mon.dataset, []).append((mon.name, mon.metric))
        else:
            # a model's endpoint rolls back on its monitors' alarms: it depends on their names and metrics
            # and builds the monitor job of its job monitors, from their whole spec
            model_watchers.setdefault(mon.model or "", []).append(
                (mon.name, mon.metric, canonical(mon, texts) if mon.is_job else ""))
    for name in env.datasets:
        keys[("dataset", name)] = _hash_blobs(common, "dataset", datasets[name],
                                              canonical([sorted(readers.get(name, ())), sorted(watchers.get(name, ()))]))
    for name, model in env.models.items():
        keys[("model", name)] = _hash_blobs(common, "model", models[name], datasets.get(model.dataset, "null"),
                                            canonical(sorted(model_watchers.get(name, ()))))
    for name, mon in env.monitors.items():
        target = env.models.get(mon.model) if mon.model is not None else None
        target_ds = datasets.get(target.dataset if target is not None else (mon.dataset or ""), "null")
        keys[("monitor", name)] = _hash_blobs(common, "monitor", canonical(mon, texts),
                                              models[mon.model] if target is not None else "null", target_ds)
    return keys
