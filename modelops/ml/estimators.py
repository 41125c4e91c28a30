"""What ``train.estimator`` may name, and the bounds on the parameters that size a model.

ModelOps trains and serves predictors: the estimator must be one of scikit-learn's own
classifier or regressor classes, buildable from the spec's plain ``params`` (a
meta-estimator such as ``StackingClassifier`` needs estimator objects a spec cannot give;
``Pipeline`` or ``ColumnTransformer`` are no predictors: ModelOps builds the feature
pipeline itself). Whether a class is a classifier is read from the class (its mixins),
never by calling a constructor that needs arguments.

Those facts depend only on the installed scikit-learn, whose import costs about a second,
so they are cached per scikit-learn version beside the schema cache
(``~/.cache/modelops/``): a validate naming estimators seen before imports no scikit-learn.

Parameters that size a model are bounded (:data:`SIZE_LIMITS`); a model raises a bound
for itself with ``train.limits``. Both checks run at validate (with the spec position)
and again before a build.

Example::

    describe("sklearn.ensemble.RandomForestClassifier").kind      # 'classifier'
    list(size_problems({"n_estimators": 10**9}, {}))               # [('n_estimators', '1,000,000,000 ...')]
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from modelops.files import atomic_write

__all__ = ["EstimatorFacts", "SIZE_LIMITS", "describe", "size_problems"]

ESTIMATOR_PATTERN = re.compile(r"^sklearn(\.[A-Za-z_][A-Za-z0-9_]*)+$")
#: the default bound of each parameter that sizes a model, and what it counts
SIZE_LIMITS: dict[str, tuple[int, str]] = {
    "n_estimators": (5_000, "trees or boosting stages"),
    "max_iter": (10_000, "iterations: the trees of a histogram gradient boosting model, the epochs of an MLP"),
    "hidden_layer_sizes": (8_192, "the units of all hidden layers together"),
}
_EXAMPLE = "e.g. sklearn.ensemble.RandomForestClassifier"
#: bump when what is cached changes shape or meaning
_CACHE_FORMAT = 1


@dataclass(frozen=True)
class EstimatorFacts:
    """What validate and build need to know about one estimator class."""

    kind: Literal["classifier", "regressor"]
    #: its constructor's keyword parameters
    parameters: tuple[str, ...]
    #: the constructor takes ``**kwargs`` (any parameter name is accepted)
    open_keywords: bool = False


def describe(path: str) -> EstimatorFacts:
    """The facts of the estimator at ``path``; ``ValueError("message; fix")`` when a spec cannot use it."""
    global _loaded
    with _lock:
        # read once per process: a large spec names the same few estimators for every model
        if _loaded is None:
            _loaded = _Cache.load()
        entry = _loaded.entries.get(path)
        if not _well_formed(entry):
            entry = _inspect(path)
            _loaded.entries[path] = entry
            _loaded.save()
    if "refused" in entry:
        raise ValueError(entry["refused"])
    return EstimatorFacts(entry["kind"], tuple(entry["parameters"]), bool(entry.get("open_keywords")))


_lock = threading.Lock()
_loaded: "_Cache | None" = None


def _well_formed(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    if "refused" in entry:
        return isinstance(entry["refused"], str)
    return entry.get("kind") in ("classifier", "regressor") and isinstance(entry.get("parameters"), list)


def size_problems(params: Mapping[str, Any], limits: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(parameter, "message; fix")`` for each parameter of ``params`` over its bound."""
    for name, (default, counts) in SIZE_LIMITS.items():
        if name not in params:
            continue
        size = _size(params[name])
        limit = limits.get(name, default)
        if size is None or not _number(limit) or size <= limit:
            continue
        yield name, (
            f"{size:,} is over the limit of {limit:,} ({counts}); lower it, or raise the bound for this model "
            f"with `train.limits: {{{name}: {int(size)}}}` if the build machine has the memory and time"
        )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _size(value: Any) -> float | None:
    if _number(value):
        return value
    if isinstance(value, (list, tuple)) and value and all(_number(v) for v in value):
        return sum(value)
    return None  # another type: scikit-learn's own parameter validation reports it at build


def _inspect(path: str) -> dict[str, Any]:
    """The cache entry of ``path``: its facts, or the reason a spec cannot use it."""
    if not ESTIMATOR_PATTERN.match(path):
        return {"refused": f"{path!r} is not a scikit-learn import path; use {_EXAMPLE}"}
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return {"refused": f"module {module_name!r} does not exist in scikit-learn; check the estimator path"}
    cls = getattr(module, attr, None)
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    # the import may resolve to anything the module re-exports: re-check it is sklearn's own estimator
    if (
        not inspect.isclass(cls)
        or not issubclass(cls, BaseEstimator)
        or not (cls.__module__ == "sklearn" or cls.__module__.startswith("sklearn."))
    ):
        return {"refused": f"{path!r} is not a scikit-learn estimator class; check the estimator path"}
    # the mixins set a predictor's estimator type; a class that delegates it (Pipeline,
    # FrozenEstimator, a search) knows it only from the estimator objects it is given
    if issubclass(cls, ClassifierMixin):
        kind = "classifier"
    elif issubclass(cls, RegressorMixin):
        kind = "regressor"
    else:
        return {
            "refused": f"{path!r} is neither a classifier nor a regressor; ModelOps trains and serves predictors "
            f"and builds the feature pipeline itself: name a classifier or regressor, {_EXAMPLE}"
        }
    signature = inspect.signature(cls.__init__).parameters.values()
    keywords = [p for p in signature if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    required = [p.name for p in keywords if p.default is inspect.Parameter.empty]
    if required:
        # every such parameter of scikit-learn's predictors takes estimator objects
        needs = ", ".join(f"`{name}`" for name in required)
        return {
            "refused": f"{path!r} needs {needs} (estimator objects), which a spec cannot give; "
            f"name a single classifier or regressor, {_EXAMPLE}"
        }
    return {
        "kind": kind,
        "parameters": [p.name for p in keywords],
        "open_keywords": any(p.kind == p.VAR_KEYWORD for p in signature),
    }


class _Cache:
    """Facts of the estimators seen, for one scikit-learn version (a JSON file)."""

    def __init__(self, file: Path | None, entries: dict[str, Any]) -> None:
        self.file = file
        self.entries = entries

    @classmethod
    def load(cls) -> "_Cache":
        try:
            version = importlib.metadata.version("scikit-learn")
        except importlib.metadata.PackageNotFoundError:
            return cls(None, {})
        # the user cache directory (XDG): a data-only JSON file per scikit-learn version
        root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        file = Path(root) / "modelops" / f"estimators-{_CACHE_FORMAT}-scikit-learn-{version}.json"
        try:
            entries = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entries = {}
        return cls(file, entries if isinstance(entries, dict) else {})

    def save(self) -> None:
        if self.file is None:
            return
        try:
            atomic_write(self.file, json.dumps(self.entries, sort_keys=True), durable=False)
        except OSError:
            pass  # a read-only home only costs the scikit-learn import next time
