"""SageMaker data-capture records: writing them (local serving, tests) and reading them (drift).

The format is SageMaker's own: JSON Lines objects under
``s3://<dataset bucket>/capture/<model>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "...", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "...", "inferenceTime": "2026-01-01T12:00:00Z"},
     "eventVersion": "0"}

CSV and JSON bodies are stored as text with encoding ``CSV``/``JSON``; anything else is
base64 with encoding ``BASE64``, as SageMaker does.

Example::

    record = capture_record(b"12,70.5", "text/csv", b'{"predictions": [1]}', "application/json", now)
    key = write_capture(s3, bucket, "churn-classifier", "churn-dev-churn-classifier", [record], now)
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from modelops.components import metrics, naming

_ENCODINGS = {"text/csv": "CSV", "application/json": "JSON"}


def _encode(body: bytes | str, content_type: str) -> tuple[str, str]:
    media = content_type.split(";")[0].strip().lower()
    raw = body.encode("utf-8") if isinstance(body, str) else body
    encoding = _ENCODINGS.get(media)
    if encoding is not None:
        try:
            return raw.decode("utf-8"), encoding
        except UnicodeDecodeError:
            pass
    return base64.b64encode(raw).decode("ascii"), "BASE64"


def _timestamp(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def capture_record(
    input_body: bytes | str,
    input_content_type: str,
    output_body: bytes | str,
    output_content_type: str,
    when: datetime,
    event_id: str | None = None,
    inference_id: str | None = None,
) -> dict[str, Any]:
    """One data-capture record, exactly as SageMaker writes it (``inferenceId`` when the caller
    sent ``X-Amzn-SageMaker-Inference-Id``: what the monitor job joins labels on)."""
    in_data, in_encoding = _encode(input_body, input_content_type)
    out_data, out_encoding = _encode(output_body, output_content_type)
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": input_content_type,
                "mode": "INPUT",
                "data": in_data,
                "encoding": in_encoding,
            },
            "endpointOutput": {
                "observedContentType": output_content_type,
                "mode": "OUTPUT",
                "data": out_data,
                "encoding": out_encoding,
            },
        },
        "eventMetadata": {"eventId": event_id or str(uuid.uuid4()), "inferenceTime": _timestamp(when),
                          **({"inferenceId": inference_id} if inference_id else {})},
        "eventVersion": "0",
    }


def endpoint_prefix(model: str, endpoint: str) -> str:
    """``capture/<model>/<endpoint>/``: every variant's capture of one endpoint."""
    return f"{naming.capture_prefix(model)}/{endpoint}/"


def capture_key(model: str, endpoint: str, variant: str, when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    stamp = when.strftime("%Y/%m/%d/%H")
    name = f"{when.strftime('%M-%S')}-{when.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
    return f"{endpoint_prefix(model, endpoint)}{variant}/{stamp}/{name}"


def write_capture(
    s3: Any,
    bucket: str,
    model: str,
    endpoint: str,
    records: Iterable[dict[str, Any]],
    when: datetime,
    variant: str = metrics.PRIMARY_VARIANT,
) -> str:
    """Write ``records`` as one JSON Lines object where SageMaker would; returns the key."""
    body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    key = capture_key(model, endpoint, variant, when)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/jsonl")
    return key


@dataclass(frozen=True)
class Captured:
    """The request side of one captured invocation."""

    data: bytes
    content_type: str
    time: datetime | None
    key: str


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_record(line: str, key: str) -> Captured | None:
    """The captured request of one JSON line, or None when the line is not a capture record."""
    try:
        obj = json.loads(line)
        inp = obj["captureData"]["endpointInput"]
        data, encoding = inp["data"], inp.get("encoding", "CSV")
        raw = base64.b64decode(data) if encoding == "BASE64" else str(data).encode("utf-8")
        return Captured(raw, inp.get("observedContentType", ""), _parse_time(obj.get("eventMetadata", {}).get("inferenceTime")), key)
    except (ValueError, KeyError, TypeError):
        return None


def read_captures(s3: Any, bucket: str, model: str, endpoint: str) -> tuple[list[Captured], int]:
    """Every captured request of ``endpoint`` (all variants) and how many lines were unreadable."""
    captured: list[Captured] = []
    bad = 0
    for key in _keys(s3, bucket, endpoint_prefix(model, endpoint)):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", errors="replace")
        for line in body.splitlines():
            if not line.strip():
                continue
            record = parse_record(line, key)
            if record is None:
                bad += 1
            else:
                captured.append(record)
    return captured, bad


def _keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".jsonl"):
                yield item["Key"]
