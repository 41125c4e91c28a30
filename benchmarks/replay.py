"""Replay the AWS calls ``modelops up`` made (recorded with MODELOPS_RECORD_AWS_CALLS) with
plain boto3 against a fresh emulator: the floor of ``up`` -- the AWS calls alone.

The replay keeps the concurrency ``up`` achieved: a call starts once every call that had
ended before it started (in the recording) has ended in the replay, on as many threads as
the recording ever had calls in flight. Identifiers the target generates (KMS key IDs,
ARNs with them) are mapped from the recorded responses to the replayed ones.

Example::

    python -m benchmarks.replay calls.jsonl https://127.0.0.1:4566 --ca-bundle cert.pem --region eu-west-1
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def _restore(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def _strings(value: Any, path: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(_strings(v, f"{path}.{k}"))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(_strings(v, f"{path}[{i}]"))
    elif isinstance(value, str):
        out[path] = value
    return out


def replay(calls: list[dict[str, Any]], url: str, region: str, verify: str | bool) -> tuple[float, int]:
    """Make ``calls`` against ``url``; returns (seconds, errors)."""
    import boto3
    from botocore.config import Config

    calls = sorted(calls, key=lambda c: c["start"])
    by_end = sorted(range(len(calls)), key=lambda i: calls[i]["end"])
    end_rank = {index: rank for rank, index in enumerate(by_end)}
    # how many recorded calls had ended before each call started: the first waits[i] calls
    # in order of their recorded end are the ones call i waits for
    waits, j = [], 0
    for c in calls:
        while j < len(by_end) and calls[by_end[j]]["end"] <= c["start"]:
            j += 1
        waits.append(j)
    # as many threads as the recording ever had calls in flight
    in_flight = 1
    events = sorted([(c["start"], 1) for c in calls] + [(c["end"], -1) for c in calls], key=lambda e: (e[0], e[1]))
    current = 0
    for _, delta in events:
        current += delta
        in_flight = max(in_flight, current)

    session = boto3.session.Session(region_name=region)
    config = Config(retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=32)
    clients: dict[str, Any] = {}
    lock = threading.Lock()
    mapping: dict[str, str] = {}
    done = threading.Condition()
    ended = [False] * len(calls)  # by recorded end rank
    prefix = 0  # the first `prefix` calls in recorded end order have all ended in the replay
    errors = 0

    def client(service: str) -> Any:
        with lock:
            if service not in clients:
                clients[service] = session.client(service, endpoint_url=url, verify=verify, config=config)
            return clients[service]

    def substitute(value: Any) -> Any:
        if isinstance(value, str):
            for old, new in mapping.items():
                if old in value:
                    value = value.replace(old, new)
            return value
        if isinstance(value, dict):
            return {k: substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [substitute(v) for v in value]
        return value

    def one(index: int) -> None:
        nonlocal prefix, errors
        call = calls[index]
        with done:
            done.wait_for(lambda: prefix >= waits[index])
        with lock:
            params = substitute(_restore(call["params"]))
        try:
            response = getattr(client(call["service"]), call["operation"])(**params)
        except Exception:  # noqa: BLE001 - counted: the recording's own failed calls fail again
            response = {}
            with lock:
                errors += 1
        recorded = _strings(call["response"])
        got = _strings({k: v for k, v in response.items() if k != "ResponseMetadata"}) if isinstance(response, dict) else {}
        with lock:
            for path, old in recorded.items():
                new = got.get(path)
                if new and new != old and len(old) >= 8:
                    mapping[old] = new
        with done:
            ended[end_rank[index]] = True
            while prefix < len(ended) and ended[prefix]:
                prefix += 1
            done.notify_all()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, in_flight)) as pool:
        list(pool.map(one, range(len(calls))))
    return time.monotonic() - started, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("calls")
    parser.add_argument("url")
    parser.add_argument("--ca-bundle", default=None)
    parser.add_argument("--region", default="eu-west-1")
    args = parser.parse_args()
    with open(args.calls, encoding="utf-8") as handle:
        calls = [json.loads(line) for line in handle if line.strip()]
    seconds, errors = replay(calls, args.url, args.region, args.ca_bundle or True)
    print(json.dumps({"calls": len(calls), "seconds": seconds, "errors": errors,
                      "recorded_errors": sum(1 for c in calls if c.get("error"))}))


if __name__ == "__main__":
    main()
