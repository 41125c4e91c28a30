"""The promotion log, ``stacks/promotions.jsonl``: one JSON line per promotion, append-only.

Example::

    append_record(Path("stacks") / LOG_NAME, {"model": "churn-classifier", ...})
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from modelops.errors import ApplyError

#: the append-only audit trail, next to the overlays
LOG_NAME = "promotions.jsonl"


def append_record(log: Path, record: dict[str, Any]) -> None:
    """Append one JSON line; O_APPEND with a single write keeps concurrent appends whole."""
    line = (json.dumps(record, sort_keys=False, separators=(",", ":"), default=str) + "\n").encode("utf-8")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
    finally:
        os.close(fd)
    if written != len(line):
        raise ApplyError(f"{log}: short write ({written} of {len(line)} bytes); check the disk and the last line")

