"""Train a model from its spec: load the dataset, fit a pipeline, evaluate, baseline, card.

The pipeline is ``ColumnTransformer`` (numeric features standardised, missing values set
to the training mean; categorical features one-hot encoded, unknown categories ignored)
followed by the declared scikit-learn estimator. Standardising changes nothing for tree
models and lets linear models converge. The held-out split is stratified for
classifiers; the estimator gets the spec's ``random_state`` unless its params set one, so
the same spec and data always give the same model.

Example::

    result = train_model(env.models["churn-classifier"], env.datasets["customers"])
    result.metrics["roc_auc"]
"""

from __future__ import annotations

import importlib
import inspect
import math
import platform
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelops.components import serving_images
from modelops.errors import BuildError, UsageError, excerpt
from modelops.files import file_digest
from modelops.spec import resolved
from modelops.ml import baseline as baseline_mod
from modelops.ml import estimators
from modelops.ml.table import Table, read_table


def _file_digest(path: str) -> str:
    return file_digest(path)

CARD_SCHEMA = "modelops/model-card/v1"
CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc")
REGRESSION_METRICS = ("r2", "mae", "rmse")


@dataclass(frozen=True)
class TrainResult:
    """A fitted pipeline and everything the package and the card record about it."""

    pipeline: Any
    task: str
    metrics: dict[str, float]
    baseline: dict[str, Any]
    card: dict[str, Any]


def load_estimator_class(path: str, where: str) -> type:
    """The estimator class at ``path``: a scikit-learn classifier or regressor (see :mod:`.estimators`)."""
    try:
        estimators.describe(path)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def framework_version_for_build(where: str) -> str:
    """The serving image version for this scikit-learn; refuse when SageMaker serves none."""
    version = sklearn_version()
    framework = serving_images.framework_for_sklearn(version)
    if framework is None:
        served = ", ".join(sorted(set(serving_images.FRAMEWORK_SKLEARN.values())))
        raise UsageError(
            f"{where}: scikit-learn {version} has no SageMaker serving image (served: {served}); "
            "build with a served scikit-learn version"
        )
    return framework


def _shown(columns: tuple[str, ...], limit: int = 12) -> str:
    """A data file's column names for a message: bounded and escaped (the file may hold anything)."""
    shown = ", ".join(excerpt(column) for column in columns[:limit])
    return shown + (f", … ({len(columns)} in all)" if len(columns) > limit else "")


def features_of(train: resolved.Train, table: Table, where: str) -> list[str]:
    if train.target not in table.columns:
        raise UsageError(f"{where}.target: column {train.target!r} is not in the data (columns: {_shown(table.columns)})")
    features = list(train.features) if train.features else [c for c in table.columns if c != train.target]
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise UsageError(f"{where}.features: {', '.join(missing)} not in the data (columns: {_shown(table.columns)})")
    if train.target in features:
        raise UsageError(f"{where}.features: the target {train.target!r} cannot also be a feature")
    if not features:
        raise UsageError(f"{where}.features: no feature columns besides the target")
    return features


def target_values(table: Table, target: str, classification: bool) -> np.ndarray:
    raw = table.values[target]
    if table.kinds[target] == "numeric":
        if np.isnan(raw).any():
            raise UsageError(f"target column {target!r} has missing values; drop those rows")
        if classification and np.all(raw == np.round(raw)):
            return raw.astype(np.int64)
        return raw.astype(float)
    if not classification:
        raise UsageError(f"target column {target!r} is not numeric; a regressor needs a numeric target")
    return raw.astype(str)


def split_indices(y: np.ndarray, train: resolved.Train, classification: bool) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices of the held-out split (stratified for classifiers when possible)."""
    from sklearn.model_selection import train_test_split

    stratify = None
    if classification:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and len(counts) <= train.test_size * len(y):
            stratify = y
    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(
        idx, test_size=train.test_size, random_state=train.random_state, stratify=stratify
    )
    return np.sort(train_idx), np.sort(test_idx)


def make_pipeline(cls: type, params: dict[str, Any], kinds: list[str], where: str) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [i for i, k in enumerate(kinds) if k == "numeric"]
    categorical = [i for i, k in enumerate(kinds) if k == "categorical"]
    transformers = []
    if numeric:
        # scaling first keeps NaN (StandardScaler ignores it), then 0 is the training mean
        transformers.append(
            ("numeric", Pipeline([("scale", StandardScaler()), ("impute", SimpleImputer(strategy="constant", fill_value=0.0))]), numeric)
        )
    if categorical:
        transformers.append(("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical))
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise UsageError(f"{where}.params: {exc}; check the estimator's parameters") from None
    return Pipeline([("features", ColumnTransformer(transformers, sparse_threshold=0.0)), ("estimator", estimator)])


def evaluate(pipeline: Any, X: np.ndarray, y: np.ndarray, classification: bool) -> dict[str, float]:
    """Held-out metrics with the names promotion gates use."""
    from sklearn import metrics

    if classification:
        predicted = pipeline.predict(X)
        classes = list(pipeline.classes_)
        out = {"accuracy": float(metrics.accuracy_score(y, predicted))}
        if len(classes) == 2:
            out["f1"] = float(metrics.f1_score(y, predicted, pos_label=classes[1]))
        else:
            out["f1"] = float(metrics.f1_score(y, predicted, average="weighted"))
        if len(np.unique(y)) > 1:
            # scores, not labels: probabilities when the estimator has them, else its decision function
            if hasattr(pipeline, "predict_proba"):
                scores = pipeline.predict_proba(X)
                if len(classes) == 2:
                    out["roc_auc"] = float(metrics.roc_auc_score(y, scores[:, 1]))
                elif len(np.unique(y)) == len(classes):
                    out["roc_auc"] = float(metrics.roc_auc_score(y, scores, multi_class="ovr", labels=classes))
            elif hasattr(pipeline, "decision_function") and len(classes) == 2:
                out["roc_auc"] = float(metrics.roc_auc_score(y, pipeline.decision_function(X)))
        return out
    predicted = pipeline.predict(X)
    return {
        "r2": float(metrics.r2_score(y, predicted)),
        "mae": float(metrics.mean_absolute_error(y, predicted)),
        "rmse": float(math.sqrt(metrics.mean_squared_error(y, predicted))),
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def library_versions() -> dict[str, str]:
    import joblib
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }


def train_model(model: resolved.Model, dataset: resolved.Dataset) -> TrainResult:
    """Fit, evaluate and describe ``model`` on ``dataset``'s local source."""
    where = f"models.{model.name}.train"
    if model.train is None:
        raise UsageError(f"models.{model.name}: has no `train` section; it uses a prebuilt artifact and is not built")
    train = model.train
    if not dataset.source:
        raise UsageError(
            f"datasets.{dataset.name}.source: not set, so there is no data to train models.{model.name} on; "
            "set `source` to a local data file"
        )
    framework = framework_version_for_build(where)
    cls = load_estimator_class(train.estimator, f"{where}.estimator")
    from sklearn.base import is_classifier

    params = {k: _json_value(v) for k, v in train.params}
    signature = inspect.signature(cls.__init__).parameters
    if "random_state" in signature and "random_state" not in params:
        params["random_state"] = train.random_state
    table = read_table(dataset.source, dataset.format, where=f"datasets.{dataset.name}.source ({dataset.source})")
    features = features_of(train, table, where)
    kinds = [table.kinds[f] for f in features]
    pipeline = make_pipeline(cls, params, kinds, where)
    classification = bool(is_classifier(pipeline))
    y = target_values(table, train.target, classification)
    X = table.matrix(features)
    train_idx, test_idx = split_indices(y, train, classification)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            try:
                pipeline.fit(X[train_idx], y[train_idx])
            except ValueError as exc:
                raise UsageError(f"{where}: training failed: {exc}") from None
        metrics = evaluate(pipeline, X[test_idx], y[test_idx], classification)
    except MemoryError:
        # what fit allocated is freed as this unwinds; the rest of the process is fine
        raise BuildError(
            f"models.{model.name}: the build ran out of memory training {train.estimator} on {table.rows:,} rows; "
            f"lower the parameters that size it ({', '.join(estimators.SIZE_LIMITS)}) or build on a machine with more memory"
        ) from None
    notes = sorted({str(w.message).splitlines()[0] for w in caught if issubclass(w.category, ConvergenceWarning)})
    task = "classification" if classification else "regression"
    base = baseline_mod.compute_baseline(table, features, train_idx, predictions=pipeline.predict(X[train_idx]), task=task)
    card: dict[str, Any] = {
        "schema": CARD_SCHEMA,
        "task": task,
        "estimator": train.estimator,
        "params": {k: params[k] for k in sorted(params)},
        "target": train.target,
        "features": [{"name": f, "kind": k} for f, k in zip(features, kinds)],
        "dataset": {
            "name": dataset.name,
            "format": dataset.format,
            "digest": dataset.source_digest or _file_digest(dataset.source),
            "rows": table.rows,
        },
        "split": {
            "test_size": train.test_size,
            "random_state": train.random_state,
            "train_rows": int(len(train_idx)),
            "test_rows": int(len(test_idx)),
        },
        "metrics": {k: float(f"{v:.12g}") for k, v in sorted(metrics.items())},
        "framework_version": framework,
        "libraries": library_versions(),
        "training_warnings": notes,
    }
    if classification:
        card["classes"] = [_json_value(c) for c in pipeline.classes_]
    return TrainResult(pipeline=pipeline, task=task, metrics=card["metrics"], baseline=base, card=card)

