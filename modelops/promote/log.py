"""The promotion log, ``stacks/promotions.jsonl``: one JSON line per promotion, hash-chained.

Each record carries ``previous_record``: ``sha256:`` and the hex SHA-256 of the line before
it (its bytes without the newline), ``null`` for the first record. Editing, removing or
reordering any record breaks the chain at the record after it, which
:func:`verify_log` (``modelops promote --verify-log``) reports by line.

Records written before the chain existed (no ``previous_record`` key) are accepted only
as a leading run: the first chained record hashes the last of them, and they are
reported as unchained.

Example::

    append_record(Path("stacks") / LOG_NAME, {"model": "churn-classifier", ...})
    verify_log(Path("stacks") / LOG_NAME).valid     # True
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.errors import ApplyError, GateFailed, UsageError

#: the append-only audit trail, next to the overlays
LOG_NAME = "promotions.jsonl"
#: the key holding the hash of the previous line
CHAIN_KEY = "previous_record"


def line_hash(line: bytes) -> str:
    """``sha256:<hex>`` of one log line (without its newline): what the next record carries."""
    return "sha256:" + hashlib.sha256(line).hexdigest()


def _open(log: Path, flags: int) -> int:
    """An fd of the log itself: a symlink (it could point outside the repository) or a non-file is refused."""
    try:
        fd = os.open(log, flags | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(
                f"{log}: is a symbolic link; the promotion log must be a regular file in the repository: "
                "replace the link with the file it points to"
            ) from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{log}: not a regular file; the promotion log must be a file of JSON lines")
    return fd


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def append_record(log: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Append ``record`` as one chained JSON line; returns it as written (with ``previous_record``).

    An exclusive lock on the file orders concurrent promotions, so that each record hashes
    the one before it; O_APPEND with a single write keeps each line whole. A last line
    without its newline is completed when it is a whole record, refused when it is not.
    """
    fd = _open(log, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        existing = _read_all(fd)
        prefix = b""
        if existing and not existing.endswith(b"\n"):
            last = existing.rsplit(b"\n", 1)[-1]
            number = existing.count(b"\n") + 1
            if not _is_record(last):
                raise ApplyError(
                    f"{log}:{number}: the last line is cut off (no newline, not a whole JSON record); "
                    f"restore the file from git (`git checkout -- {log.name}` in its directory), then promote again"
                )
            # a whole record that lost its newline (an editor): complete it rather than fuse with it
            prefix = b"\n"
        lines = existing.splitlines()
        written = {**record, CHAIN_KEY: line_hash(lines[-1]) if lines else None}
        line = prefix + (json.dumps(written, sort_keys=False, separators=(",", ":"), default=str) + "\n").encode("utf-8")
        count = os.write(fd, line)
    finally:
        os.close(fd)
    if count != len(line):
        raise ApplyError(f"{log}: short write ({count} of {len(line)} bytes); check the disk and the last line")
    return written


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


@dataclass(frozen=True)
class LogVerification:
    """What :func:`verify_log` found: ``valid`` unless ``line`` (1-based) breaks the chain, and why."""

    log: str
    records: int
    #: leading records written before the chain existed (not covered by it)
    unchained: int = 0
    line: int | None = None
    problem: str = ""

    @property
    def valid(self) -> bool:
        return self.line is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "valid": self.valid,
            "records": self.records,
            "unchained": self.unchained,
            "line": self.line,
            "problem": self.problem,
        }

    def __str__(self) -> str:
        if not self.valid:
            return f"{self.log}:{self.line}: {self.problem}"
        if not self.records:
            return f"{self.log}: no promotions logged"
        text = f"{self.log}: {self.records} record(s), hash chain intact"
        if self.unchained:
            text += f"; the first {self.unchained} predate the chain and are not covered by it"
        return text


class LogBroken(GateFailed):
    """The promotion log's chain is broken (exit 3); ``result`` names the line."""

    code = "E-PROMOTE-LOG"

    def __init__(self, result: LogVerification) -> None:
        self.result = result
        super().__init__(f"{result}; compare the file with its git history (git log -p -- {Path(result.log).name})")


def verify_log(log: Path) -> LogVerification:
    """Check every line of the log: whole, a JSON object, carrying the hash of the line before.

    A missing log is valid and empty. Raises :class:`~modelops.errors.UsageError` for a
    symlink or a non-file.

    Example::

        verify_log(Path("stacks/promotions.jsonl")).line     # None, or the first broken line
    """
    try:
        fd = _open(log, os.O_RDONLY)
    except FileNotFoundError:
        return LogVerification(str(log), 0)
    try:
        data = _read_all(fd)
    finally:
        os.close(fd)
    lines = data.split(b"\n")
    tail = lines.pop()  # what follows the last newline: empty for a whole file
    unchained = 0
    for number, line in enumerate(lines, start=1):
        problem, chained = _check(line, lines[number - 2] if number > 1 else None, number, chained=unchained < number - 1)
        if problem:
            return LogVerification(str(log), number - 1, unchained, number, problem)
        unchained += not chained
    if tail:
        return LogVerification(
            str(log), len(lines), unchained, len(lines) + 1,
            "the last line is cut off (no newline): a write did not finish, or the file was edited",
        )
    return LogVerification(str(log), len(lines), unchained)


def _check(line: bytes, previous: bytes | None, number: int, *, chained: bool) -> tuple[str, bool]:
    """(what is wrong with line ``number`` or "", whether it is chained); ``chained``: the chain began before it."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        return f"not a JSON record ({exc})", False
    if not isinstance(record, dict):
        return "not a JSON object", False
    if CHAIN_KEY not in record:
        return (f"no {CHAIN_KEY}: a record was inserted after the chain began" if chained else ""), False
    if previous is None:
        if record[CHAIN_KEY] is not None:
            return f"the first record has {CHAIN_KEY} {record[CHAIN_KEY]!r}, not null: records before it were removed", True
    elif record[CHAIN_KEY] != line_hash(previous):
        return (
            f"{CHAIN_KEY} does not match line {number - 1}: that line or this one was changed, "
            "or a record between them removed"
        ), True
    return "", True


def read_records(log: Path) -> list[dict[str, Any]]:
    """Every record of the log, oldest first; a missing log has none.

    A line that is not a JSON record is skipped here: :func:`verify_log` is what reports it.

    Example::

        [r["digest"] for r in read_records(Path("stacks") / LOG_NAME) if r["to"] == "prod"]
    """
    try:
        fd = _open(log, os.O_RDONLY)
    except FileNotFoundError:
        return []
    try:
        data = _read_all(fd)
    finally:
        os.close(fd)
    records = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
