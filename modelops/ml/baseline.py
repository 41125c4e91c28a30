"""The drift baseline of a model: each feature's training distribution.

The tests against it are the monitor job's (:mod:`modelops.ml.monitor_job`), the one drift
implementation, which ``modelops drift`` runs too.

Numeric features keep 10 quantile bins (11 edges; the outer bins are open so live values
outside the training range still count) and a reference sample of at most 1,000 order
statistics for the Kolmogorov-Smirnov test. Categorical features keep category
frequencies; categories never seen in training count as ``__other__``.

Version 2 (what the monitor job reads, ``modelops/ml/monitor_job.py``) adds per numeric
feature the training ``min``/``max`` and :data:`FINE_BINS` quantile bins with their counts
(``fine_edges``, ``fine_counts``: the Wasserstein distance and the data-quality range), per
categorical feature the category ``counts`` and the ``missing`` share, the training
``rows``, and the distribution of the model's own predictions on its training rows
(``prediction``, a numeric or categorical feature entry) for prediction drift.

Example::

    base = compute_baseline(table, ["tenure_months", "contract"])
    base["features"]["contract"]["frequencies"]     # {'month-to-month': 0.53, ...}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelops.ml.monitor_job import label_key
from modelops.ml.table import Table

BINS = 10
#: bins of a numeric feature's fine histogram (version 2): what the job's Wasserstein distance uses
FINE_BINS = 100
REFERENCE_SAMPLE = 1000
OTHER = "__other__"


def _round(x: float) -> float:
    # JSON must be byte-identical across runs: fix the printed precision
    return float(f"{x:.12g}")


def numeric_baseline(values: np.ndarray) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    if present.size == 0:
        return {"kind": "numeric", "count": 0, "missing": 1.0, "edges": [], "proportions": [], "reference": []}
    edges = np.quantile(present, np.linspace(0.0, 1.0, BINS + 1))
    proportions = bin_shares(edges, present)
    if present.size <= REFERENCE_SAMPLE:
        reference = np.sort(present)
    else:
        reference = np.quantile(present, np.linspace(0.0, 1.0, REFERENCE_SAMPLE))
    return {
        "kind": "numeric",
        "count": int(values.size),
        "missing": _round(1.0 - present.size / values.size),
        "mean": _round(float(present.mean())),
        "std": _round(float(present.std())),
        "edges": [_round(float(e)) for e in edges],
        "proportions": [_round(float(p)) for p in proportions],
        "reference": [_round(float(r)) for r in reference],
        "min": _round(float(present.min())),
        "max": _round(float(present.max())),
        **_fine(present),
    }


def _fine(present: np.ndarray) -> dict[str, Any]:
    # the printed edges are what the job bins with: count on the rounded edges
    edges = np.unique(np.array([_round(float(e)) for e in np.quantile(present, np.linspace(0.0, 1.0, FINE_BINS + 1))]))
    if edges.size < 2:
        edges = np.array([edges[0], edges[0]])
    inner = edges[1:-1]
    counts = np.bincount(np.searchsorted(inner, present, side="left"), minlength=edges.size - 1)
    return {"fine_edges": [float(e) for e in edges], "fine_counts": [int(c) for c in counts]}


def bin_shares(edges: np.ndarray | list[float], values: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each of the ``len(edges) - 1`` bins; the outer bins are open-ended."""
    edges = np.asarray(edges, dtype=float)
    inner = edges[1:-1]
    # bins are closed on the right: a value equal to an edge counts in the bin that edge closes
    index = np.searchsorted(inner, values, side="left")
    counts = np.bincount(index, minlength=len(edges) - 1).astype(float)
    return counts / max(values.size, 1)


def categorical_baseline(values: np.ndarray) -> dict[str, Any]:
    strings = values.astype(str)
    names, counts = np.unique(strings, return_counts=True)
    total = counts.sum()
    return {
        "kind": "categorical",
        "count": int(values.size),
        "missing": _round(float(np.sum(strings == "")) / max(int(values.size), 1)),
        "frequencies": {str(n): _round(float(c / total)) for n, c in sorted(zip(names, counts))},
        "counts": {str(n): int(c) for n, c in sorted(zip(names, counts))},
    }


def compute_baseline(table: Table, features: list[str] | tuple[str, ...], rows: np.ndarray | None = None,
                     predictions: np.ndarray | None = None, task: str | None = None) -> dict[str, Any]:
    """The baseline of ``features`` over ``rows`` (indices; all rows when None), with the
    distribution of ``predictions`` (the model's outputs on those rows) when given."""
    count = table.rows if rows is None else int(len(rows))
    out: dict[str, Any] = {"version": 2, "bins": BINS, "rows": count, "features": {}}
    if predictions is not None:
        out["prediction"] = (numeric_baseline(np.asarray(predictions, dtype=float)) if task == "regression"
                             else categorical_baseline(np.asarray([_label(p) for p in predictions], dtype=object)))
    for name in features:
        column = table.values[name] if rows is None else table.values[name][rows]
        if table.kinds[name] == "numeric":
            out["features"][name] = numeric_baseline(column.astype(float))
        else:
            out["features"][name] = categorical_baseline(column)
    return out


def _label(value: Any) -> str:
    return label_key(value.item() if isinstance(value, np.generic) else value)
