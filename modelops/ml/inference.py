"""Inference script of a ModelOps model package (shipped as ``code/inference.py``).

Implements the SageMaker scikit-learn serving contract: ``model_fn`` loads the model from
the extracted package directory, ``input_fn`` parses a request (``text/csv`` or
``application/json``), ``predict_fn`` predicts, ``output_fn`` encodes the answer. It
depends only on what the SageMaker scikit-learn image has (the standard library, numpy,
joblib, scikit-learn) and reads the feature list from ``card.json`` beside the model.

Request bodies:
    text/csv           one row per line, the features in card order, no header
                       (a first line equal to the feature names is skipped)
    application/json   ``[[...], ...]`` rows, ``[{"feature": value}, ...]`` records, one
                       record, or ``{"instances": <rows or records>}``

Answer (``application/json``): ``{"predictions": [...]}`` plus ``"probabilities"`` for
classifiers (the positive class's for binary, one list per row otherwise). ``text/csv``:
one line per row, the prediction then the probabilities.

Example::

    model = model_fn("/opt/ml/model")
    rows = input_fn("12,70.5,1,month-to-month,credit-card", "text/csv")
    output_fn(predict_fn(rows, model), "application/json")
"""

from __future__ import annotations

import csv
import io
import json
import math
import os

import joblib
import numpy as np

CSV = "text/csv"
JSON = "application/json"


class PayloadError(ValueError):
    """The request body cannot be turned into model input; the server answers 400."""

    status = 400


class UnsupportedContentType(PayloadError):
    """The content type or accept type is not served; the server answers 415 (or 406)."""

    status = 415


def model_fn(model_dir):
    """Load the pipeline and its feature schema from the extracted package."""
    with open(os.path.join(model_dir, "card.json"), encoding="utf-8") as handle:
        card = json.load(handle)
    pipeline = joblib.load(os.path.join(model_dir, "model.joblib"))
    return {
        "pipeline": pipeline,
        "features": [f["name"] for f in card["features"]],
        "kinds": [f["kind"] for f in card["features"]],
        "task": card["task"],
    }


def _media_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


def _show(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _cell(value, row, col, name, kind):
    if kind == "numeric":
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return math.nan
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int) and abs(value) < 2**1023:
            return float(value)
        if isinstance(value, float) and math.isfinite(value):
            return value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
            if number is not None and math.isfinite(number):
                return number
        raise PayloadError(f"row {row}, column {col} ({name}): {_show(value)} is not a number")
    if isinstance(value, (dict, list)):
        raise PayloadError(f"row {row}, column {col} ({name}): expected a scalar, got {type(value).__name__}")
    return "" if value is None else str(value)


def _rows_to_matrix(rows, features, kinds):
    if not rows:
        raise PayloadError("the request has no rows")
    out = np.empty((len(rows), len(features)), dtype=object)
    for r, row in enumerate(rows, start=1):
        if isinstance(row, dict):
            missing = [f for f in features if f not in row]
            if missing:
                raise PayloadError(f"row {r}: missing feature(s) {', '.join(missing)}")
            row = [row[f] for f in features]
        elif not isinstance(row, (list, tuple)):
            raise PayloadError(f"row {r}: expected a list of {len(features)} values or an object")
        if len(row) != len(features):
            raise PayloadError(
                f"row {r}: expected {len(features)} values ({', '.join(features)}), got {len(row)}"
            )
        for c, (value, name, kind) in enumerate(zip(row, features, kinds), start=1):
            out[r - 1, c - 1] = _cell(value, r, c, name, kind)
    return out


def _reject_constant(name):
    raise PayloadError(f"{name} is not a number JSON allows; send null for a missing value")


def parse(request_body, request_content_type, features, kinds):
    """The model input (2-D object array) of a request; raises :class:`PayloadError`."""
    media = _media_type(request_content_type)
    if isinstance(request_body, (bytes, bytearray)):
        try:
            request_body = request_body.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError("the request body is not UTF-8 text") from None
    if media == CSV:
        rows = [row for row in csv.reader(io.StringIO(request_body)) if row]
        if rows and [c.strip() for c in rows[0]] == list(features):
            rows = rows[1:]
        return _rows_to_matrix(rows, features, kinds)
    if media == JSON:
        try:
            data = json.loads(request_body, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise PayloadError(f"the request body is not valid JSON: {exc.msg} at position {exc.pos}") from None
        except RecursionError:
            raise PayloadError("the request body nests JSON too deeply; send rows of scalar values") from None
        except PayloadError:
            raise
        except ValueError as exc:  # e.g. an integer longer than Python's 4,300-digit limit
            raise PayloadError(f"the request body is not valid JSON: {exc}") from None
        if isinstance(data, dict) and "instances" in data:
            data = data["instances"]
        if isinstance(data, dict):
            data = [data]
        if isinstance(data, list) and data and not isinstance(data[0], (list, tuple, dict)):
            data = [data]
        if not isinstance(data, list):
            raise PayloadError("expected a JSON list of rows, a list of objects, or {\"instances\": [...]}")
        return _rows_to_matrix(data, features, kinds)
    raise UnsupportedContentType(
        f"content type {request_content_type!r} is not supported; use {CSV} or {JSON}"
    )


def _schema():
    # SageMaker extracts the package to /opt/ml/model and imports code/inference.py from it;
    # the card sits one level up. input_fn gets no model argument, so read it from there.
    global _SCHEMA
    if _SCHEMA is None:
        model_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(model_dir, "card.json"), encoding="utf-8") as handle:
            card = json.load(handle)
        _SCHEMA = ([f["name"] for f in card["features"]], [f["kind"] for f in card["features"]])
    return _SCHEMA


_SCHEMA = None


def input_fn(request_body, request_content_type):
    """Parse a request into model input (2-D object array); raises :class:`PayloadError`."""
    features, kinds = _schema()
    return parse(request_body, request_content_type, features, kinds)


def _plain(values):
    out = []
    for v in np.asarray(values).tolist():
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            out.append(int(v) if not isinstance(v, bool) else v)
        else:
            out.append(v)
    return out


def predict_fn(input_data, model):
    """Predict every row; classifiers also give probabilities."""
    pipeline = model["pipeline"]
    result = {"predictions": np.asarray(pipeline.predict(input_data)).tolist()}
    if model["task"] == "classification":
        result["predictions"] = _plain(result["predictions"])
        if hasattr(pipeline, "predict_proba"):
            proba = np.asarray(pipeline.predict_proba(input_data), dtype=float)
            result["probabilities"] = proba[:, 1].tolist() if proba.shape[1] == 2 else proba.tolist()
    return result


def output_fn(prediction, accept):
    """Encode the prediction as JSON (default) or CSV."""
    media = _media_type(accept) or JSON
    if media in (JSON, "*/*"):
        return json.dumps(prediction)
    if media == CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        probabilities = prediction.get("probabilities")
        for i, value in enumerate(prediction["predictions"]):
            row = [value]
            if probabilities is not None:
                p = probabilities[i]
                row.extend(p if isinstance(p, list) else [p])
            writer.writerow(row)
        return buffer.getvalue()
    error = UnsupportedContentType(f"accept type {accept!r} is not supported; use {JSON} or {CSV}")
    error.status = 406
    raise error
