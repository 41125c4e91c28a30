"""The ModelOps monitor job: drift, data quality and model quality of an endpoint's traffic.

One self-contained script (the standard library, numpy, scipy and boto3 only: what the
pinned processing image has, ``components/serving_images.py::PROCESSING_LIBRARIES``; nothing
is installed at run time) run by SageMaker's scikit-learn processing image as two pipeline
steps, and by ``modelops monitor run`` locally in subprocesses, with the very same arguments:

``stats``  one per processing instance. Lists the capture objects of the run's window
           (its hour partitions only, ListObjectsV2 with their prefixes) and fetches its
           share (key *j* to instance *j* mod N, N and its index from SageMaker's
           ``resourceconfig.json``), reads the labels and the model package
           (``card.json``, ``baseline.json`` v2), and writes *mergeable* statistics: counts on the
           baseline's fixed bins and categories, sums, violation counts, label-join
           counts, and the raw values of a small shard. Processing instances cannot
           exchange data, so merging is a step of its own.
``merge``  one instance. Adds the shards' statistics (the sum does not depend on how the
           capture was split), computes each monitor's score and verdict, writes the
           ``modelops/monitor-result/v1`` result to ``monitoring/<monitor>/results/<ts>.json``
           and ``latest.json`` of the dataset bucket, and puts one CloudWatch datum per
           monitor (plus per-feature data for drift and data quality), named as the
           job's config says (``components/metrics.py`` defines them).

Drift test per feature, by type and sample size (see docs/monitoring.md):

=========== ===================== =========================================
feature     rows <= 1,000         rows > 1,000
=========== ===================== =========================================
numeric     ``ks`` (statistic D)  ``wasserstein`` (distance / baseline std)
categorical ``chi2`` (Cramer's V) ``jensen_shannon`` (distance, base 2)
=========== ===================== =========================================

``psi`` (10 quantile bins) replaces both on request (``test: psi``). Each score is 0 for
identical distributions and about 0.1-0.3 for a moderate shift, so one ``above:``
threshold applies to all of them.

Example (as the pipeline runs it)::

    python3 monitor_job.py stats --config /opt/ml/processing/input/config/job.json \\
        --package /opt/ml/processing/input/package --bucket churn-dev-customers-123456789012 \\
        --capture /opt/ml/processing/capture --resource-config /opt/ml/config/resourceconfig.json \\
        --labels /opt/ml/processing/input/labels --out /opt/ml/processing/output/stats
    python3 monitor_job.py merge --config ... --package ... --stats /opt/ml/processing/input/stats \\
        --bucket churn-dev-customers-123456789012
"""

import argparse
import base64
import csv
import hashlib
import io
import json
import math
import os
import sys
import tarfile
from datetime import datetime, timedelta, timezone

import numpy as np

STATS_SCHEMA = "modelops/monitor-stats/v1"
RESULT_SCHEMA = "modelops/monitor-result/v1"
CONFIG_SCHEMA = "modelops/monitor-job/v1"
#: at most this many rows: exact small-sample tests (KS, chi-squared); above: distances
SMALL_SAMPLE = 1000
#: below this many captured rows a drift monitor has no verdict and publishes nothing
MIN_SAMPLE = 100
#: significance of the small-sample tests: a score over the threshold with p >= this is noise
ALPHA = 0.05
#: floor of a share in PSI and chi-squared, so an empty baseline bin gives a finite term
EPSILON = 1e-4
OTHER = "__other__"
#: roc_auc from positive-class probabilities on this many fixed bins (mergeable)
SCORE_BINS = 1000
EXAMPLES = 5
EXAMPLE_CHARS = 40
VIOLATION_KINDS = ("missing", "out_of_range", "wrong_type", "unseen_category")
MAX_LABEL_BYTES = 256 * 1024 * 1024


class JobError(Exception):
    """A problem with the job's inputs: one line on stderr, exit 2."""


# -- inputs ------------------------------------------------------------------------------

def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def find_file(directory, name):
    """``directory/name``, or the one file of that name below it (SageMaker keeps S3 key paths)."""
    direct = os.path.join(directory, name)
    if os.path.isfile(direct):
        return direct
    for root, _, files in sorted(os.walk(directory)):
        if name in files:
            return os.path.join(root, name)
    return None


def read_package(directory):
    """(card, baseline or None) from the model package (``model.tar.gz``) in ``directory``."""
    path = find_file(directory, "model.tar.gz")
    if path is None:
        raise JobError("no model.tar.gz in %s" % directory)
    members = {}
    with tarfile.open(path, "r:gz") as tar:
        for info in tar:
            if info.isfile() and info.name.lstrip("./") in ("card.json", "baseline.json"):
                members[info.name.lstrip("./")] = json.loads(tar.extractfile(info).read().decode("utf-8"))
    if "card.json" not in members:
        return None, None
    return members["card.json"], members.get("baseline.json")


def files_under(directory, suffixes):
    out = []
    if not directory or not os.path.isdir(directory):
        return out
    for root, _, files in os.walk(directory):
        for name in files:
            if name.endswith(suffixes):
                out.append(os.path.join(root, name))
    return sorted(out)


def parse_time(text):
    if not text:
        return None
    try:
        return datetime.strptime(text.replace("Z", "+0000")[:19] + "+0000", "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def decode(side):
    data, encoding = side.get("data", ""), side.get("encoding", "CSV")
    raw = base64.b64decode(data) if encoding == "BASE64" else str(data).encode("utf-8")
    return raw.decode("utf-8", errors="replace"), (side.get("observedContentType") or "").split(";")[0].strip().lower()


def request_rows(body, media, features):
    """The rows of one request as lists of raw cells (feature order); None when unreadable."""
    if media == "text/csv":
        rows = [row for row in csv.reader(io.StringIO(body)) if row]
        if rows and [c.strip() for c in rows[0]] == list(features):
            rows = rows[1:]
    elif media == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if isinstance(data, dict) and "instances" in data:
            data = data["instances"]
        if isinstance(data, dict):
            data = [data]
        if isinstance(data, list) and data and not isinstance(data[0], (list, tuple, dict)):
            data = [data]
        if not isinstance(data, list):
            return None
        rows = data
    else:
        return None
    out = []
    for row in rows:
        if isinstance(row, dict):
            row = [row.get(f) for f in features]
        if not isinstance(row, (list, tuple)) or len(row) != len(features):
            return None
        out.append(list(row))
    return out or None


def response_values(body, media):
    """(predictions, positive-class probabilities or None) of one answer."""
    if media == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            return None, None
        if not isinstance(data, dict) or not isinstance(data.get("predictions"), list):
            return None, None
        probabilities = data.get("probabilities")
        if isinstance(probabilities, list) and probabilities and isinstance(probabilities[0], list):
            probabilities = None  # multiclass: no positive class
        return data["predictions"], probabilities
    if media == "text/csv":
        predictions, probabilities = [], []
        for row in csv.reader(io.StringIO(body)):
            if not row:
                continue
            predictions.append(row[0])
            probabilities.append(float(row[1]) if len(row) == 2 else None)
        return predictions, (probabilities if all(p is not None for p in probabilities) else None)
    return None, None


def label_key(value):
    """Labels and predictions compared as text (``1``, ``1.0`` and ``"1"`` are one class)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return text
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def read_labels(directory):
    """inference id -> label, from JSON lines ``{"inference_id": ..., "label": ...}``."""
    labels = {}
    bad = 0
    for path in files_under(directory, (".jsonl", ".json")):
        if os.path.getsize(path) > MAX_LABEL_BYTES:
            raise JobError("%s: over %d bytes; split the labels into several files" % (path, MAX_LABEL_BYTES))
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    labels[str(item["inference_id"])] = item["label"]
                except (ValueError, KeyError, TypeError):
                    bad += 1
    return labels, bad


# -- statistics of one shard ----------------------------------------------------------------

def numeric_cell(value):
    """(number or None, kind of violation or None)."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None, "missing"
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None, "wrong_type"
    else:
        return None, "wrong_type"
    if math.isnan(number):
        return None, "missing"
    if not math.isfinite(number):
        return None, "wrong_type"
    return number, None


def category_cell(value):
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None, "missing"
    if isinstance(value, (dict, list)):
        return None, "wrong_type"
    if isinstance(value, bool):
        return str(value).lower(), None
    if isinstance(value, float) and value.is_integer():
        return str(int(value)), None
    return str(value), None


def show(value):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS - 3] + "..."


class Distribution:
    """Mergeable counts of one column on its baseline's fixed bins or categories."""

    def __init__(self, spec):
        self.spec = spec
        self.kind = spec["kind"]
        self.n = 0
        if self.kind == "numeric":
            self.fine = np.zeros(max(len(spec.get("fine_edges") or []) - 1, 0), dtype=np.int64)
            self.coarse = np.zeros(max(len(spec.get("edges") or []) - 1, 0), dtype=np.int64)
            self.below = [0, 0.0]  # count, sum of (min - x)
            self.above = [0, 0.0]  # count, sum of (x - max)
            self.values = []
        else:
            self.categories = sorted(spec.get("frequencies") or {})
            self.counts = {}

    def add_numeric(self, values):
        values = np.asarray(values, dtype=float)
        if values.size == 0:
            return
        self.n += int(values.size)
        edges = np.asarray(self.spec.get("fine_edges") or [], dtype=float)
        if edges.size >= 2:
            inside = values[(values >= edges[0]) & (values <= edges[-1])]
            low = values[values < edges[0]]
            high = values[values > edges[-1]]
            self.fine += np.bincount(np.searchsorted(edges[1:-1], inside, side="left"),
                                     minlength=self.fine.size).astype(np.int64)
            self.below[0] += int(low.size)
            self.below[1] += float(np.sum(edges[0] - low))
            self.above[0] += int(high.size)
            self.above[1] += float(np.sum(high - edges[-1]))
        coarse = np.asarray(self.spec.get("edges") or [], dtype=float)
        if coarse.size >= 2:
            self.coarse += np.bincount(np.searchsorted(coarse[1:-1], values, side="left"),
                                       minlength=self.coarse.size).astype(np.int64)
        self.values.extend(float(v) for v in values)

    def add_category(self, value):
        self.n += 1
        self.counts[value] = self.counts.get(value, 0) + 1

    def to_json(self):
        if self.kind == "numeric":
            return {"kind": "numeric", "n": self.n, "fine": self.fine.tolist(), "coarse": self.coarse.tolist(),
                    "below": self.below, "above": self.above,
                    # raw values only of a small shard: a run over more rows uses the binned tests
                    "values": sorted(self.values) if self.n <= SMALL_SAMPLE else None}
        return {"kind": "categorical", "n": self.n, "counts": dict(sorted(self.counts.items()))}


def merge_distributions(parts):
    """The sum of one column's shard statistics (JSON form)."""
    first = parts[0]
    if first["kind"] == "numeric":
        values = None if any(p["values"] is None for p in parts) else sorted(v for p in parts for v in p["values"])
        n = sum(p["n"] for p in parts)
        return {"kind": "numeric", "n": n,
                "fine": np.sum([p["fine"] for p in parts], axis=0).astype(np.int64).tolist() if first["fine"] else [],
                "coarse": np.sum([p["coarse"] for p in parts], axis=0).astype(np.int64).tolist() if first["coarse"] else [],
                "below": [sum(p["below"][0] for p in parts), math.fsum(p["below"][1] for p in parts)],
                "above": [sum(p["above"][0] for p in parts), math.fsum(p["above"][1] for p in parts)],
                "values": values if n <= SMALL_SAMPLE else None}
    counts = {}
    for p in parts:
        for key, value in p["counts"].items():
            counts[key] = counts.get(key, 0) + value
    return {"kind": "categorical", "n": sum(p["n"] for p in parts), "counts": dict(sorted(counts.items()))}


def shard_stats(config, card, baseline, capture_dir, labels_dir, now):
    """The statistics of the capture files under ``capture_dir`` (one shard)."""
    features = [f["name"] for f in card["features"]]
    kinds = [f["kind"] for f in card["features"]]
    specs = baseline["features"]
    window = timedelta(seconds=int(config.get("window_seconds") or 3600))
    start = now - window
    columns = [Distribution(specs[name]) for name in features]
    numeric_values = [[] for _ in features]
    violations = {}  # (feature, kind) -> [count, examples]
    violating_rows = 0
    prediction = Distribution(baseline["prediction"]) if baseline.get("prediction") else None
    prediction_values = []
    labels, bad_labels = read_labels(labels_dir) if labels_dir else ({}, 0)
    task = card.get("task", "classification")
    classes = [label_key(c) for c in card.get("classes") or []]
    quality = {"labelled": 0, "correct": 0, "confusion": {}, "sq": 0.0, "abs": 0.0,
               "scores": {"positive": [0] * SCORE_BINS, "negative": [0] * SCORE_BINS}, "scored": 0}
    rows_total = requests = unreadable = 0
    files = files_under(capture_dir, (".jsonl",))
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    inp = record["captureData"]["endpointInput"]
                    out = record["captureData"].get("endpointOutput") or {}
                    meta = record.get("eventMetadata") or {}
                except (ValueError, KeyError, TypeError):
                    unreadable += 1
                    continue
                when = parse_time(meta.get("inferenceTime"))
                if when is not None and not (start <= when < now):
                    continue
                body, media = decode(inp)
                rows = request_rows(body, media, features)
                if rows is None:
                    unreadable += 1
                    continue
                requests += 1
                rows_total += len(rows)
                for row in rows:
                    broken = False
                    for i, (value, kind) in enumerate(zip(row, kinds)):
                        spec = specs[features[i]]
                        if kind == "numeric":
                            number, problem = numeric_cell(value)
                            if problem is None and spec.get("min") is not None and \
                                    not (spec["min"] <= number <= spec["max"]):
                                problem = "out_of_range"
                            if number is not None:
                                numeric_values[i].append(number)
                        else:
                            category, problem = category_cell(value)
                            if category is not None:
                                columns[i].add_category(category)
                                if category not in spec.get("frequencies", {}):
                                    problem = "unseen_category"
                        if problem == "missing" and (spec.get("missing") or 0) > 0:
                            problem = None  # the training data had missing values here too
                        if problem is not None:
                            broken = True
                            entry = violations.setdefault((features[i], problem), [0, []])
                            entry[0] += 1
                            entry[1] = sorted(set(entry[1]) | {show(value if value is not None else "null")})[:EXAMPLES]
                    violating_rows += broken
                predictions, probabilities = response_values(*decode(out)) if out else (None, None)
                if predictions is None or len(predictions) != len(rows):
                    continue
                prediction_values.extend(predictions)
                inference_id = meta.get("inferenceId") or meta.get("eventId")
                if inference_id is None or str(inference_id) not in labels:
                    continue
                label = labels[str(inference_id)]
                truth = label if isinstance(label, list) else [label]
                if len(truth) != len(predictions):
                    continue
                for j, (actual, predicted) in enumerate(zip(truth, predictions)):
                    quality["labelled"] += 1
                    if task == "classification":
                        a, p = label_key(actual), label_key(predicted)
                        quality["correct"] += a == p
                        cell = quality["confusion"].setdefault(a, {})
                        cell[p] = cell.get(p, 0) + 1
                        if probabilities is not None and len(classes) == 2:
                            side = "positive" if a == classes[1] else "negative"
                            index = min(int(float(probabilities[j]) * SCORE_BINS), SCORE_BINS - 1)
                            quality["scores"][side][max(index, 0)] += 1
                            quality["scored"] += 1
                    else:
                        try:
                            error = float(predicted) - float(actual)
                        except (TypeError, ValueError):
                            quality["labelled"] -= 1
                            continue
                        quality["sq"] += error * error
                        quality["abs"] += abs(error)
    for i, kind in enumerate(kinds):
        if kind == "numeric":
            columns[i].add_numeric(numeric_values[i])
    if prediction is not None:
        if prediction.kind == "numeric":
            prediction.add_numeric([v for v in (numeric_cell(p)[0] for p in prediction_values) if v is not None])
        else:
            for p in prediction_values:
                prediction.add_category(label_key(p))
    return {
        "schema": STATS_SCHEMA,
        "files": len(files),
        "requests": requests,
        "rows": rows_total,
        "unreadable": unreadable,
        "bad_labels": bad_labels,
        "features": {name: col.to_json() for name, col in zip(features, columns)},
        "violations": [{"feature": f, "kind": k, "count": c, "examples": ex}
                       for (f, k), (c, ex) in sorted(violations.items())],
        "violating_rows": violating_rows,
        "prediction": prediction.to_json() if prediction is not None else None,
        "quality": quality,
    }


def merge_stats(parts):
    """The statistics of the whole capture from its shards' (in any order)."""
    if not parts:
        raise JobError("no statistics to merge: the stats step wrote nothing")
    features = sorted(parts[0]["features"])
    violations = {}
    for p in parts:
        for v in p["violations"]:
            entry = violations.setdefault((v["feature"], v["kind"]), [0, []])
            entry[0] += v["count"]
            entry[1] = sorted(set(entry[1]) | set(v["examples"]))[:EXAMPLES]
    quality = {"labelled": 0, "correct": 0, "confusion": {}, "sq": 0.0, "abs": 0.0, "scored": 0,
               "scores": {"positive": [0] * SCORE_BINS, "negative": [0] * SCORE_BINS}}
    for p in parts:
        q = p["quality"]
        for key in ("labelled", "correct", "scored"):
            quality[key] += q[key]
        quality["sq"] = math.fsum([quality["sq"], q["sq"]])
        quality["abs"] = math.fsum([quality["abs"], q["abs"]])
        for side in ("positive", "negative"):
            quality["scores"][side] = [a + b for a, b in zip(quality["scores"][side], q["scores"][side])]
        for actual, row in q["confusion"].items():
            cell = quality["confusion"].setdefault(actual, {})
            for predicted, count in row.items():
                cell[predicted] = cell.get(predicted, 0) + count
    predictions = [p["prediction"] for p in parts if p.get("prediction")]
    return {
        "schema": STATS_SCHEMA,
        "shards": len(parts),
        "files": sum(p["files"] for p in parts),
        "requests": sum(p["requests"] for p in parts),
        "rows": sum(p["rows"] for p in parts),
        "unreadable": sum(p["unreadable"] for p in parts),
        "bad_labels": max(p["bad_labels"] for p in parts),
        "features": {f: merge_distributions([p["features"][f] for p in parts]) for f in features},
        "violations": [{"feature": f, "kind": k, "count": c, "examples": ex}
                       for (f, k), (c, ex) in sorted(violations.items())],
        "violating_rows": sum(p["violating_rows"] for p in parts),
        "prediction": merge_distributions(predictions) if predictions else None,
        "quality": quality,
    }


# -- scores -----------------------------------------------------------------------------

def choose_test(kind, rows, requested):
    if requested == "psi":
        return "psi"
    if kind == "numeric":
        return "ks" if rows <= SMALL_SAMPLE else "wasserstein"
    return "chi2" if rows <= SMALL_SAMPLE else "jensen_shannon"


def _psi(expected, actual):
    e = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=float), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def category_shares(spec, live):
    """(categories, baseline shares, live counts) over the baseline's categories plus OTHER."""
    freqs = spec.get("frequencies") or {}
    categories = sorted(freqs)
    other = sum(c for k, c in live["counts"].items() if k not in freqs)
    base = np.array([freqs[c] for c in categories] + [0.0], dtype=float)
    counts = np.array([live["counts"].get(c, 0) for c in categories] + [other], dtype=float)
    return categories + [OTHER], base, counts


def wasserstein_over_std(spec, live):
    """W1 between the baseline's and the live fine-bin distributions, in baseline standard deviations."""
    edges = np.asarray(spec["fine_edges"], dtype=float)
    base = np.asarray(spec["fine_counts"], dtype=float)
    counts = np.asarray(live["fine"], dtype=float)
    n = float(live["n"])
    base_cdf = np.concatenate([[0.0], np.cumsum(base) / max(base.sum(), 1.0)])
    live_cdf = (live["below"][0] + np.concatenate([[0.0], np.cumsum(counts)])) / n
    gaps = np.abs(base_cdf - live_cdf)
    widths = np.diff(edges)
    # mass inside the range: the CDFs are linear within a bin (trapezoids); outside, the exact
    # mean distance of the live values beyond the baseline's min and max
    inside = float(np.sum(widths * (gaps[:-1] + gaps[1:]) / 2.0))
    distance = inside + (live["below"][1] + live["above"][1]) / n
    std = float(spec.get("std") or 0.0)
    return distance / (std if std > 0 else 1.0)


def feature_score(spec, live, requested):
    """(test, score, p-value or None, baseline counts, current counts, edges, categories)."""
    from scipy import stats as sstats
    from scipy.spatial import distance as sdistance

    test = choose_test(spec["kind"], live["n"], requested)
    if spec["kind"] == "numeric":
        edges = spec["edges"]
        base_counts = [int(round(p * spec["count"])) for p in spec["proportions"]]
        if test == "psi":
            score, p = _psi(spec["proportions"], np.asarray(live["coarse"], dtype=float) / live["n"]), None
        elif test == "ks":
            result = sstats.ks_2samp(np.asarray(spec["reference"], dtype=float), np.asarray(live["values"], dtype=float))
            score, p = float(result.statistic), float(result.pvalue)
        else:
            score, p = wasserstein_over_std(spec, live), None
        return test, score, p, base_counts, list(live["coarse"]), edges, None
    categories, base, counts = category_shares(spec, live)
    n = counts.sum()
    base_counts = [int(round(b * spec["count"])) for b in base]
    if test == "psi":
        score, p = _psi(base, counts / n), None
    elif test == "chi2":
        expected = np.maximum(base, EPSILON)
        expected = expected / expected.sum() * n
        statistic = float(np.sum((counts - expected) ** 2 / expected))
        dof = max(len(categories) - 1, 1)
        score = min(math.sqrt(statistic / (n * dof)), 1.0)  # Cramer's V of the goodness of fit
        p = float(sstats.chi2.sf(statistic, dof))
    else:
        score, p = float(sdistance.jensenshannon(base, counts / n, base=2.0)), None
    return test, score, p, base_counts, [int(c) for c in counts], None, categories


def drift_features(baseline, merged, threshold, requested):
    out = []
    for name in sorted(merged["features"]):
        spec, live = baseline["features"][name], merged["features"][name]
        if live["n"] == 0:
            continue
        test, score, p, base_counts, counts, edges, categories = feature_score(spec, live, requested)
        drifted = score > threshold and (p is None or p < ALPHA)
        out.append({"name": name, "type": spec["kind"], "test": test, "score": round(score, 12),
                    "p_value": None if p is None else float("%.6g" % p), "threshold": threshold,
                    "drifted": bool(drifted), "rows": live["n"], "edges": edges, "categories": categories,
                    "baseline_counts": base_counts, "current_counts": counts})
    return out


def quality_value(name, quality, task, classes):
    """The quality metric on labelled rows (None without labels or scores)."""
    n = quality["labelled"]
    if n == 0:
        return None
    if task == "regression":
        if name == "rmse":
            return math.sqrt(quality["sq"] / n)
        return quality["abs"] / n
    if name == "accuracy":
        return quality["correct"] / n
    if name == "f1":
        confusion = quality["confusion"]
        labels = sorted(set(confusion) | {p for row in confusion.values() for p in row})

        def f1_of(c):
            tp = confusion.get(c, {}).get(c, 0)
            fp = sum(row.get(c, 0) for a, row in confusion.items() if a != c)
            fn = sum(v for p, v in confusion.get(c, {}).items() if p != c)
            return 0.0 if tp == 0 else 2.0 * tp / (2.0 * tp + fp + fn)

        if len(classes) == 2:
            return f1_of(classes[1])
        support = {c: sum(confusion.get(c, {}).values()) for c in labels}
        return sum(f1_of(c) * support[c] for c in labels) / max(sum(support.values()), 1)
    if name == "roc_auc":
        pos = np.asarray(quality["scores"]["positive"], dtype=float)
        neg = np.asarray(quality["scores"]["negative"], dtype=float)
        if pos.sum() == 0 or neg.sum() == 0:
            return None
        below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
        return float(np.sum(pos * (below + neg / 2.0)) / (pos.sum() * neg.sum()))
    raise JobError("unknown quality metric %r" % name)


def evaluate(monitor, baseline, card, merged):
    """(value or None, result fields) of one monitor on the merged statistics."""
    metric = monitor["metric"]
    threshold = float(monitor["threshold"])
    rows = merged["rows"]
    fields = {"features": [], "violations": [], "quality": None}
    if metric == "data_drift":
        if rows < MIN_SAMPLE:
            return None, fields
        fields["features"] = drift_features(baseline, merged, threshold, monitor.get("test", "auto"))
        scores = [f["score"] for f in fields["features"]]
        return (max(scores) if scores else None), fields
    if metric == "prediction_drift":
        live = merged.get("prediction")
        if live is None or live["n"] < MIN_SAMPLE or not baseline.get("prediction"):
            return None, fields
        test, score, p, base_counts, counts, edges, categories = feature_score(
            baseline["prediction"], live, monitor.get("test", "auto"))
        fields["features"] = [{"name": "prediction", "type": baseline["prediction"]["kind"], "test": test,
                               "score": round(score, 12), "p_value": None if p is None else float("%.6g" % p),
                               "threshold": threshold, "drifted": score > threshold, "rows": live["n"],
                               "edges": edges, "categories": categories, "baseline_counts": base_counts,
                               "current_counts": counts}]
        return score, fields
    if metric == "data_quality":
        if rows == 0:
            return None, fields
        fields["violations"] = [dict(v, share=round(v["count"] / rows, 12)) for v in merged["violations"]]
        return merged["violating_rows"] / rows, fields
    if metric == "model_quality":
        classes = [label_key(c) for c in card.get("classes") or []]
        value = quality_value(monitor["quality_metric"], merged["quality"], card.get("task"), classes)
        fields["quality"] = {"name": monitor["quality_metric"], "value": value,
                             "labelled": merged["quality"]["labelled"], "direction": monitor["comparison"]}
        return value, fields
    raise JobError("unknown job metric %r" % metric)


# -- phases -----------------------------------------------------------------------------

def iso(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_now(text):
    if not text:
        return datetime.now(timezone.utc).replace(microsecond=0)
    when = parse_time(text)
    if when is None:
        raise JobError("--now %r is not an ISO time (2026-12-03T10:00:00Z)" % text)
    return when


def window_hours(start, now):
    """The capture hour partitions (``yyyy/mm/dd/hh/``) holding the records of [start, now).

    SageMaker does not say whether a capture file's hour is that of its first record or
    of its last, so the hour before the window's first is listed too; the records are
    then filtered by their own ``inferenceTime``.
    """
    hour = (start - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour <= now:
        hours.append(hour.strftime("%Y/%m/%d/%H/"))
        hour += timedelta(hours=1)
    return hours


def _list(s3, bucket, prefix, delimiter=None):
    """(keys, common prefixes) under ``prefix``: ListObjectsV2, every page."""
    keys, prefixes, token = [], [], None
    while True:
        request = {"Bucket": bucket, "Prefix": prefix}
        if delimiter:
            request["Delimiter"] = delimiter
        if token:
            request["ContinuationToken"] = token
        page = s3.list_objects_v2(**request)
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return keys, prefixes


def window_keys(s3, bucket, prefix, start, now):
    """The capture objects of the window: under each variant of ``prefix``, its hour partitions.

    Keys are ``<prefix><variant>/yyyy/mm/dd/hh/<file>.jsonl``; the listing never leaves the
    window's hours (ListObjectsV2 with their prefixes), so a run reads its window's objects,
    not the whole retained capture.
    """
    _, variants = _list(s3, bucket, prefix, delimiter="/")
    keys = []
    for variant in sorted(variants):
        for hour in window_hours(start, now):
            keys += [k for k in _list(s3, bucket, variant + hour)[0] if k.endswith(".jsonl")]
    return sorted(keys)


def host_of(resource_config):
    """(host, its index, instance count) from SageMaker's ``resourceconfig.json``
    (``{"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}``); one instance without one."""
    if not resource_config or not os.path.isfile(resource_config):
        return "algo-1", 0, 1
    config = read_json(resource_config)
    hosts = sorted(config.get("hosts") or [])
    current = config.get("current_host")
    if current not in hosts:
        raise JobError("%s: current_host %r is not one of hosts %r" % (resource_config, current, hosts))
    return current, hosts.index(current), len(hosts)


def fetch_shard(s3, bucket, prefix, keys, index, count, directory):
    """Download this instance's share of ``keys`` (key *j* to instance *j* mod count, as
    ``ShardedByS3Key`` does) under ``directory``, keeping their paths below ``prefix``.

    A key whose path would leave ``directory`` (``..`` segments: whoever may write capture
    could otherwise overwrite the labels or the package the step reads) is refused.
    """
    fetched = []
    root = os.path.join(os.path.abspath(directory), "")
    for j, key in enumerate(keys):
        if j % count != index:
            continue
        path = os.path.abspath(os.path.join(root, key[len(prefix):]))
        if not path.startswith(root):
            raise JobError("capture object %r would be written outside %s: refused" % (key, directory))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, key, path)
        fetched.append(key)
    return fetched


def run_stats(args):
    config = read_json(args.config)
    card, baseline = read_package(args.package)
    os.makedirs(args.out, exist_ok=True)
    now = parse_now(args.now)
    host, index, count = host_of(args.resource_config)
    fetched = None
    if args.bucket:
        import boto3

        region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        s3 = boto3.client("s3", region_name=region)
        prefix = config["capture_prefix"]
        start = now - timedelta(seconds=int(config.get("window_seconds") or 3600))
        os.makedirs(args.capture, exist_ok=True)
        fetched = fetch_shard(s3, args.bucket, prefix, window_keys(s3, args.bucket, prefix, start, now),
                              index, count, args.capture)
    if card is None or baseline is None or baseline.get("version", 1) < 2:
        stats = {"schema": STATS_SCHEMA, "missing_baseline": True}
    else:
        stats = shard_stats(config, card, baseline, args.capture, args.labels, now)
    names = [os.path.relpath(p, args.capture) for p in files_under(args.capture, (".jsonl",))]
    shard = hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:16]
    # the host in the name: two instances with no capture file must not write one object
    path = os.path.join(args.out, "stats-%s-%s.json" % (host, shard))
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(stats, handle, sort_keys=True)
    outcome = {"phase": "stats", "written": path, "rows": stats.get("rows", 0), "host": host}
    if fetched is not None:
        outcome["read"] = len(fetched)
    return outcome


def metric_datum(ref, value, when, extra=()):
    dimensions = [{"Name": k, "Value": v} for k, v in ref["dimensions"]] + [{"Name": k, "Value": v} for k, v in extra]
    datum = {"MetricName": ref["name"], "Dimensions": dimensions, "Value": float(value), "Timestamp": when}
    if ref.get("unit"):
        datum["Unit"] = ref["unit"]
    return datum


def results_for(config, card, baseline, merged, now, bucket="", package_uri=None):
    """The v1 result and the CloudWatch data (namespace, datum) of every monitor."""
    out = []
    where = "s3://%s/" % bucket
    for monitor in config["monitors"]:
        if merged is None:
            value, fields = None, {"features": [], "violations": [], "quality": None}
        else:
            value, fields = evaluate(monitor, baseline, card, merged)
        threshold = float(monitor["threshold"])
        if value is None:
            verdict = "no_data"
        elif monitor["comparison"] == "below":
            verdict = "alarm" if value < threshold else "ok"
        else:
            verdict = "alarm" if value > threshold else "ok"
        result = {
            "schema": RESULT_SCHEMA, "monitor": monitor["name"], "model": config["model"], "env": config["env"],
            "metric": monitor["metric"], "computed_at": iso(now),
            "inputs": {"capture": where + config.get("capture_prefix", ""),
                       "baseline": (package_uri + "#baseline.json") if package_uri else None,
                       "labels": where + config.get("labels_prefix", "") if monitor["metric"] == "model_quality" else None,
                       "shards": merged["shards"] if merged else 0,
                       "window_start": iso(now - timedelta(seconds=int(config.get("window_seconds") or 3600))),
                       "window_end": iso(now)},
            "sample_size": {"baseline": int(baseline.get("rows", 0)) if baseline else 0,
                            "current": merged["rows"] if merged else 0,
                            "requests": merged["requests"] if merged else 0,
                            "unreadable": merged["unreadable"] if merged else 0},
            "value": None if value is None else round(float(value), 12),
            "threshold": threshold, "comparison": monitor["comparison"], "verdict": verdict,
        }
        result.update(fields)
        if merged is None:
            result["error"] = "the model package has no baseline.json v2: rebuild it with `modelops build`"
        data = []
        if value is not None:
            ref = config["metrics"][monitor["metric"]]
            data.append((ref["namespace"], metric_datum(ref, value, now)))
            feature_ref = config["metrics"].get(monitor["metric"] + ":feature")
            if feature_ref is not None and monitor["metric"] == "data_drift":
                for f in result["features"]:
                    data.append((feature_ref["namespace"], metric_datum(feature_ref, f["score"], now, [("Feature", f["name"])])))
            if feature_ref is not None and monitor["metric"] == "data_quality":
                shares = {}
                for v in result["violations"]:
                    shares[v["feature"]] = shares.get(v["feature"], 0.0) + v["share"]
                for name in sorted(shares):
                    data.append((feature_ref["namespace"], metric_datum(feature_ref, shares[name], now, [("Feature", name)])))
        out.append((result, data))
    return out


def put_data(cloudwatch, data):
    """Put ``data`` ([(namespace, datum)], as :func:`results_for` gives them) to CloudWatch."""
    by_namespace = {}
    for namespace, datum in data:
        by_namespace.setdefault(namespace, []).append(datum)
    for namespace, items in sorted(by_namespace.items()):
        for i in range(0, len(items), 1000):  # PutMetricData takes at most 1,000 data
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=items[i:i + 1000])


def run_merge(args):
    import boto3

    config = read_json(args.config)
    card, baseline = read_package(args.package)
    now = parse_now(args.now)
    parts = [read_json(p) for p in files_under(args.stats, (".json",))]
    if card is None or baseline is None or baseline.get("version", 1) < 2 or any(p.get("missing_baseline") for p in parts):
        merged = None
    else:
        merged = merge_stats(parts)
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    s3 = boto3.client("s3", region_name=region)
    cloudwatch = boto3.client("cloudwatch", region_name=region)
    summary = []
    for result, data in results_for(config, card, baseline, merged, now, args.bucket, args.package_uri):
        body = json.dumps(result, sort_keys=True, indent=1).encode("utf-8")
        prefix = "monitoring/%s/" % result["monitor"]
        stamp = result["computed_at"].replace(":", "-")
        s3.put_object(Bucket=args.bucket, Key=prefix + "results/" + stamp + ".json", Body=body,
                      ContentType="application/json")
        s3.put_object(Bucket=args.bucket, Key=prefix + "latest.json", Body=body, ContentType="application/json")
        put_data(cloudwatch, data)
        summary.append({"monitor": result["monitor"], "verdict": result["verdict"], "value": result["value"],
                        "data": len(data), "key": prefix + "results/" + stamp + ".json"})
    return {"phase": "merge", "results": summary}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="monitor_job.py", description="ModelOps monitor job")
    sub = parser.add_subparsers(dest="phase")
    stats = sub.add_parser("stats")
    merge = sub.add_parser("merge")
    for p in (stats, merge):
        p.add_argument("--config", required=True)
        p.add_argument("--package", required=True)
        p.add_argument("--now", default=None)
    stats.add_argument("--capture", required=True,
                       help="capture files to read; with --bucket, where this instance's share of the window is fetched")
    stats.add_argument("--bucket", default=None, help="read the window's capture from this bucket (config capture_prefix)")
    stats.add_argument("--region", default=None)
    stats.add_argument("--resource-config", default=None, help="SageMaker's /opt/ml/config/resourceconfig.json")
    stats.add_argument("--labels", default=None)
    stats.add_argument("--out", required=True)
    merge.add_argument("--stats", required=True)
    merge.add_argument("--bucket", required=True)
    merge.add_argument("--region", default=None)
    merge.add_argument("--package-uri", default=None)
    args = parser.parse_args(argv)
    if args.phase is None:
        parser.print_usage(sys.stderr)
        return 2
    try:
        outcome = run_stats(args) if args.phase == "stats" else run_merge(args)
    except (JobError, OSError, tarfile.TarError, json.JSONDecodeError) as exc:
        sys.stderr.write("monitor_job.py %s: %s\n" % (args.phase, exc))
        return 2
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("botocore", "boto3"):
            raise
        # an AWS call refused (access, a missing bucket): one line in the job's log
        sys.stderr.write("monitor_job.py %s: %s\n" % (args.phase, exc))
        return 1
    sys.stdout.write(json.dumps(outcome, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
