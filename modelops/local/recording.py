"""Record every AWS call ``up`` makes (JSON lines), for the benchmarks' replay.

Example::

    clients = RecordingClients(target.clients(region), Path("calls.jsonl"))
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["RECORD_CALLS_ENV", "RecordingClients"]


#: environment variable: a file that ``up`` appends every AWS call it makes to (JSON lines:
#: service, operation, parameters, response, start and end time). The benchmarks replay
#: these calls with plain boto3 to measure what ``up`` adds to the AWS calls themselves.
RECORD_CALLS_ENV = "MODELOPS_RECORD_AWS_CALLS"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class _RecordingClient:
    def __init__(self, service: str, client: Any, sink: "RecordingClients") -> None:
        self._service, self._client, self._sink = service, client, sink

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr) or name in ("get_paginator", "get_waiter", "can_paginate"):
            return attr

        def call(**kwargs: Any) -> Any:
            started = time.monotonic()
            error = None
            try:
                response = attr(**kwargs)
            except Exception as exc:  # an AWS error or a connection failure: recorded, raised as is
                error, response = f"{type(exc).__name__}: {exc}", {}
                raise
            finally:
                self._sink.write(self._service, name, kwargs, response if error is None else {}, started,
                                 time.monotonic(), error)
            return response

        return call


class RecordingClients:
    """The target's boto3 clients, recording every call (see :data:`RECORD_CALLS_ENV`).

    Each call is encoded by the thread that made it, outside the lock; the file is opened
    once, and each line written whole under the lock (and flushed), so concurrent calls
    neither interleave nor queue behind each other's encoding.
    """

    def __init__(self, clients: Any, path: Path) -> None:
        self._clients, self._path, self._lock = clients, path, threading.Lock()
        self._wrapped: dict[str, _RecordingClient] = {}
        self._handle: Any = None

    def client(self, service: str) -> Any:
        wrapped = self._wrapped.get(service)
        if wrapped is not None:
            return wrapped
        with self._lock:
            if service not in self._wrapped:
                self._wrapped[service] = _RecordingClient(service, self._clients.client(service), self)
            return self._wrapped[service]

    def write(self, service: str, operation: str, params: dict[str, Any], response: Any, started: float,
              ended: float, error: str | None) -> None:
        if isinstance(response, dict):
            response = {k: v for k, v in response.items() if k != "ResponseMetadata"}
        line = json.dumps({"service": service, "operation": operation, "params": _jsonable(params),
                           "response": _jsonable(response), "start": started, "end": ended, "error": error})
        with self._lock:
            if self._handle is None:
                self._handle = open(self._path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
            self._handle.write(line + "\n")
            self._handle.flush()

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
