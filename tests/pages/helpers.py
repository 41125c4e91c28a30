"""Helpers of the page tests (tests/pages/): monitor job results in the results contract, in S3.

The monitor job (issue 25) writes results as docs/monitoring.md ("Job results") says; until
the page tests can run that job, :func:`publish` writes results of exactly that format where
the job writes them, built by :func:`drift_result`, :func:`quality_result` and
:func:`data_quality_result` from the churn example's data with shifted values. This module
is the one place to replace with a run of the real job.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from modelops.pages.results import SCHEMA, Location
from modelops.spec.resolved import Environment
from tests.helpers import ROOT, Emulator

CHURN_DATA = ROOT / "examples" / "churn" / "data" / "customers.csv"
NUMERIC = ("tenure_months", "monthly_charges", "support_calls")
CATEGORICAL = ("contract", "payment_method")
START = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Deployed:
    """A private copy of the churn project whose dev environment ``up`` provisioned to ``emulator``."""

    spec: Path
    env: Environment
    emulator: Emulator
    account: str = "123456789012"


def churn_columns() -> dict[str, list[str]]:
    with CHURN_DATA.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {name: [row[name] for row in rows] for name in rows[0]}


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _psi(base: np.ndarray, cur: np.ndarray) -> float:
    b = np.clip(base / max(base.sum(), 1), 1e-4, None)
    c = np.clip(cur / max(cur.sum(), 1), 1e-4, None)
    return float(np.sum((c - b) * np.log(c / b)))


def _numeric(name: str, values: np.ndarray, shift: float, rng: np.random.Generator, current_rows: int) -> dict[str, Any]:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, 11)))
    base, _ = np.histogram(values, bins=edges)
    live = rng.choice(values, size=current_rows) + shift * values.std()
    cur, _ = np.histogram(np.clip(live, edges[0], edges[-1]), bins=edges)
    score = round(_psi(base, cur), 4)
    return {"name": name, "type": "numeric", "test": "psi", "score": score, "threshold": 0.2,
            "drifted": score > 0.2, "edges": [round(float(e), 4) for e in edges], "categories": None,
            "baseline_counts": [int(x) for x in base], "current_counts": [int(x) for x in cur]}


def _categorical(name: str, values: list[str], shift: float, rng: np.random.Generator, current_rows: int) -> dict[str, Any]:
    cats = sorted(set(values))
    base = np.array([values.count(c) for c in cats])
    weights = base / base.sum()
    weights = weights * np.exp(shift * np.linspace(-1, 1, len(cats)))
    cur = rng.multinomial(current_rows, weights / weights.sum())
    score = round(_psi(base, cur), 4)
    return {"name": name, "type": "categorical", "test": "chi2", "score": score, "threshold": 0.2,
            "drifted": score > 0.2, "edges": None, "categories": cats,
            "baseline_counts": [int(x) for x in base], "current_counts": [int(x) for x in cur]}


def _common(where: Location, model: str, env: str, metric: str, when: datetime, current: int) -> dict[str, Any]:
    bucket = where.bucket
    return {
        "schema": SCHEMA, "monitor": where.monitor, "model": model, "env": env, "metric": metric,
        "computed_at": _iso(when),
        "inputs": {"capture": f"s3://{bucket}/capture/{model}/", "baseline": f"s3://{bucket}/baseline/{model}/baseline.json",
                   "labels": None, "shards": 1, "window_start": _iso(when - timedelta(hours=1)), "window_end": _iso(when)},
        "sample_size": {"baseline": 2000, "current": current},
    }


def drift_result(where: Location, *, model: str = "churn-classifier", env: str = "dev", shift: float = 0.6,
                 when: datetime = START, extra_features: int = 0, current: int = 812, seed: int = 0) -> dict[str, Any]:
    """A data_drift result: the churn features against their own data shifted by ``shift`` standard
    deviations (numeric) or re-weighted (categorical); ``extra_features`` synthetic numeric ones more."""
    rng = np.random.default_rng(seed)
    columns = churn_columns()
    features = [_numeric(n, np.array(columns[n], dtype=float), shift, rng, current) for n in NUMERIC]
    features += [_categorical(n, columns[n], shift, rng, current) for n in CATEGORICAL]
    for i in range(extra_features):
        values = rng.normal(50 + i, 10, size=2000)
        features.append(_numeric(f"feature_{i:03d}", values, shift * (i % 7) / 6, rng, current))
    value = max(f["score"] for f in features)
    return {**_common(where, model, env, "data_drift", when, current), "value": value, "threshold": 0.2,
            "verdict": "alarm" if value > 0.2 else "ok", "features": features, "violations": [], "quality": None}


def data_quality_result(where: Location, *, model: str = "churn-classifier", env: str = "dev",
                        when: datetime = START) -> dict[str, Any]:
    """A data_quality result with two violations (one with a secret-looking value the job never writes)."""
    violations = [
        {"feature": "monthly_charges", "kind": "out_of_range", "count": 12, "share": 0.015, "examples": ["-4.0", "99999"]},
        {"feature": "contract", "kind": "unseen_category", "count": 3, "share": 0.0037, "examples": ["<weekly>"]},
    ]
    return {**_common(where, model, env, "data_quality", when, 812), "value": 0.015, "threshold": 0.01,
            "verdict": "alarm", "features": [], "violations": violations, "quality": None}


def quality_result(where: Location, accuracy: float, *, model: str = "churn-classifier", env: str = "dev",
                   when: datetime = START) -> dict[str, Any]:
    """A model_quality result: accuracy on labelled captured traffic, alarming below 0.8."""
    return {**_common(where, model, env, "model_quality", when, 640), "value": accuracy, "threshold": 0.8,
            "verdict": "alarm" if accuracy < 0.8 else "ok", "features": [], "violations": [],
            "quality": {"name": "accuracy", "value": accuracy, "labelled": 640, "direction": "below"}}


def publish(s3: Any, where: Location, results: list[dict[str, Any]]) -> list[str]:
    """Write ``results`` as the job does: one object per run under results/, the newest as latest.json."""
    keys = []
    for result in results:
        stamp = result["computed_at"].replace(":", "-")
        key = f"{where.results_prefix}{stamp}.json"
        s3.put_object(Bucket=where.bucket, Key=key, Body=json.dumps(result).encode(), ContentType="application/json")
        keys.append(key)
    newest = max(results, key=lambda r: r["computed_at"])
    s3.put_object(Bucket=where.bucket, Key=where.latest_key, Body=json.dumps(newest).encode(),
                  ContentType="application/json")
    return keys


def hourly(count: int, start: datetime = START) -> list[datetime]:
    return [start + timedelta(hours=i) for i in range(count)]
