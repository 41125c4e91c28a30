"""Artifacts without training: what a review or a policy check renders a model with when
it has not been built (a deterministic placeholder from its train spec and data digest).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

from modelops.components.serving_images import framework_for_sklearn
from modelops.errors import ModelOpsError
from modelops.files import atomic_write, file_digest
from modelops.ml.artifacts import resolve_artifact
from modelops.spec.resolved import Artifact, Environment


def placeholder_digest(env: Environment, model_name: str) -> str:
    """A deterministic stand-in digest: the model's train spec (or pin) and its data digest."""
    model = env.models[model_name]
    if model.version:
        return model.version
    dataset = env.datasets.get(model.dataset)
    payload = {
        "model": model_name,
        "train": dataclasses.asdict(model.train) if model.train else None,
        "data": dataset.source_digest if dataset else None,
        "artifact_source": _digest_or_none(model.artifact_source) if model.artifact_source else None,
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _digest_or_none(path: str) -> str | None:
    try:
        return file_digest(path)
    except OSError:
        return None


def _default_framework() -> str:
    # a placeholder only needs a plausible tag: the one serving this scikit-learn, or the newest
    return framework_for_sklearn(version("scikit-learn")) or "1.9-0"


def attach_without_training(env: Environment, store_root: Path, scratch: Path,
                            made: dict[Any, tuple[Any, ...]] | None = None) -> tuple[Environment, list[str]]:
    """``env`` with an artifact on every model, never training; returns (env, models with placeholders).

    ``made``, given the same dict for the environments of one spec: a model that is the
    same object with the same dataset object as in an environment attached before gets
    the same attached model (its artifact depends on nothing else), found once."""
    models = {}
    unbuilt = []
    for name, model in env.models.items():
        dataset = env.datasets.get(model.dataset)
        key = (id(model), id(dataset), str(store_root))
        kept = made.get(key) if made is not None else None
        if kept is not None and kept[0] is model and kept[1] is dataset:
            models[name] = kept[2]
            if kept[3]:
                unbuilt.append(name)
            continue
        artifact = model.artifact
        if artifact is None:
            try:
                artifact = resolve_artifact(env, model, build=False, root=store_root)
            except ModelOpsError:
                if model.artifact_source and not model.version and model.train is None:
                    raise  # the spec names a package file that is unusable: the spec's error, not a missing build
                artifact = None
        if artifact is None:
            digest = placeholder_digest(env, name)
            # a stable place (not a temporary directory) keeps render cache keys stable across runs
            path = store_root / ".modelops" / "cache" / "placeholders" / digest.removeprefix("sha256:")[:16] / "model.tar.gz"
            if not path.exists():
                # written whole or not at all: reviews of other environments may read it meanwhile
                atomic_write(path, f"placeholder {digest}\n".encode(), durable=False)
            artifact = Artifact(path=str(path), digest=digest,
                                framework_version=model.framework_version or _default_framework())
            unbuilt.append(name)
        models[name] = dataclasses.replace(model, artifact=artifact)
        if made is not None:
            made[key] = (model, dataset, models[name], bool(unbuilt) and unbuilt[-1] == name)
    return dataclasses.replace(env, models=models), unbuilt
