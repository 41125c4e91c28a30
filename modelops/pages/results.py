"""Monitor job results in S3, read back: the one reader of the results contract.

The monitor job (``modelops monitor run``, and the SageMaker Pipeline step in AWS) writes
each run's result as JSON under the model's dataset bucket (the bucket holding its data
capture), ``monitoring/<monitor>/results/<YYYY-MM-DDTHH-MM-SSZ>.json``, and a copy of the
newest as ``monitoring/<monitor>/latest.json``. Listing ``results/`` in key order is the
history. The format (``schema: modelops/monitor-result/v1``) is documented in
docs/monitoring.md ("Job results"); this module only reads it, and refuses what is not it.

Example::

    where = location(env, "churn-drift", account)
    latest_result(s3, where)["verdict"]       # 'alarm'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from modelops.components import naming
from modelops.errors import UsageError
from modelops.spec.resolved import Environment

SCHEMA = "modelops/monitor-result/v1"
#: where the job writes inside the bucket
PREFIX = "monitoring"
LATEST = "latest.json"
#: the keys every result has (the contract may add keys, never drop one)
REQUIRED = ("schema", "monitor", "metric", "computed_at", "sample_size", "value", "threshold", "verdict")
VERDICTS = ("ok", "alarm", "no_data")
#: results a report reads at most (newest first): a year of hourly runs is 8,760
MAX_HISTORY = 1000
#: the largest result object read (a result of 100 features is about 60 kB)
MAX_RESULT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Location:
    """Where one monitor's results live: ``s3://bucket/monitoring/<monitor>/``."""

    bucket: str
    monitor: str

    @property
    def prefix(self) -> str:
        return f"{PREFIX}/{self.monitor}/"

    @property
    def latest_key(self) -> str:
        return f"{self.prefix}{LATEST}"

    @property
    def results_prefix(self) -> str:
        return f"{self.prefix}results/"

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key or self.prefix}"


def location(env: Environment, monitor: str, account: str) -> Location:
    """The results location of a model monitor of ``env`` in ``account``.

    Raises :class:`UsageError` for an unknown monitor or a dataset monitor (those have no job).
    """
    spec = env.monitors.get(monitor)
    if spec is None:
        known = ", ".join(sorted(env.monitors)) or "none"
        raise UsageError(f"monitor {monitor!r} is not declared in {env.spec_file or 'the spec'} "
                         f"for env {env.env} (monitors: {known})")
    if spec.model is None:
        raise UsageError(f"monitor {monitor!r} watches dataset {spec.dataset} ({spec.metric}): a CloudWatch "
                         "alarm with no job and no results; report a model monitor (data_drift, ...)")
    dataset = env.models[spec.model].dataset
    return Location(naming.bucket_name(env.project, env.env, dataset, account), monitor)


def check_result(data: Any, where: str) -> dict[str, Any]:
    """``data`` if it is a result of the contract; a UsageError naming ``where`` and the key otherwise."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: not a monitor result (a JSON object expected)")
    if data.get("schema") != SCHEMA:
        raise UsageError(f"{where}: schema {data.get('schema')!r}, expected {SCHEMA!r}; "
                         "a newer job wrote it: upgrade modelops")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise UsageError(f"{where}: not a whole monitor result (missing {', '.join(missing)})")
    if data["verdict"] not in VERDICTS:
        raise UsageError(f"{where}: verdict {data['verdict']!r}, expected one of {', '.join(VERDICTS)}")
    for key in ("features", "violations"):
        if not isinstance(data.get(key) or [], list):
            raise UsageError(f"{where}: {key} is not a list")
    return data


def _read(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return None
    except s3.exceptions.NoSuchBucket:
        return None
    if int(obj.get("ContentLength") or 0) > MAX_RESULT_BYTES:
        raise UsageError(f"s3://{bucket}/{key}: {obj['ContentLength']} bytes, over the {MAX_RESULT_BYTES} "
                         "a result may have; it was not written by the monitor job")
    body = obj["Body"].read(MAX_RESULT_BYTES + 1)
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise UsageError(f"s3://{bucket}/{key}: not JSON ({exc})") from exc
    return check_result(data, f"s3://{bucket}/{key}")


def latest_result(s3: Any, where: Location) -> dict[str, Any] | None:
    """The newest result (``latest.json``), or None when the job has not run."""
    return _read(s3, where.bucket, where.latest_key)


def result_keys(s3: Any, where: Location, limit: int = MAX_HISTORY) -> list[str]:
    """Keys of the history, oldest first, at most the newest ``limit``."""
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=where.bucket, Prefix=where.results_prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".json")]
    except s3.exceptions.NoSuchBucket:
        return []
    return sorted(keys)[-limit:]


def history(s3: Any, where: Location, limit: int = MAX_HISTORY) -> list[dict[str, Any]]:
    """Every result of the history (oldest first, at most the newest ``limit``)."""
    out = []
    for key in result_keys(s3, where, limit):
        result = _read(s3, where.bucket, key)
        if result is not None:
            out.append(result)
    return out
