"""Policy findings of an environment kept with the render groups they were computed from.

A ``validate`` (a pre-commit hook, every pull request) of a spec that has not changed since
the last one would read every render group back from the render cache and evaluate every
policy again, to find the same findings. The findings of an environment are a function of
its render groups' keys (which hold the environment's settings, policy levels included, every
entity's content and the render code's fingerprint) and of the policy code. So they are kept
under one key over all of those: ``.modelops/cache/findings/<key>.json``. A change to any
entity, setting or policy module is another key, and the graph is rendered and evaluated as
before.

Entries are data only (JSON, never code), and each carries its key and a digest of its
findings: a damaged or foreign entry is a miss. Findings that hold a secret URL or a path of
this checkout are never written. At most :data:`MAX_ENTRIES` entries are kept.

Example::

    found = cached_findings(attached, Path(".modelops/cache"), lambda: findings(attached, graph()))
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelops.checks.policy import Finding
from modelops.files import atomic_write
from modelops.graph.keys import RENDER_CACHE_ENV, code_fingerprint, group_keys
from modelops.plain import canonical
from modelops.secrets import secret_urls
from modelops.spec.resolved import Environment

__all__ = ["FORMAT", "MAX_ENTRIES", "cached_findings", "findings_key", "kept_findings"]

#: the entry format; a new one makes every old entry a miss
FORMAT = "modelops/findings/v1"
#: entries kept (one per state of an environment); the oldest are removed past it
MAX_ENTRIES = 256
_FIELDS = ("policy", "level", "resource", "entity", "message", "fix")


@functools.lru_cache(maxsize=1)
def _checks_fingerprint() -> str:
    """Hash of the policy code: findings are only reused by the code that found them."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def findings_key(env: Environment, cache_dir: Path, texts: dict[Any, tuple[Any, str]] | None = None) -> str:
    """The key of ``env``'s findings: its render groups' keys, the render and policy code
    (``texts``: see :func:`modelops.graph.keys.group_keys`)."""
    keys = sorted((f"{kind}:{name}", key) for (kind, name), key in group_keys(env, cache_dir, texts).items())
    return hashlib.sha256(canonical([FORMAT, code_fingerprint(), _checks_fingerprint(), keys]).encode()).hexdigest()


def _digest(rows: list[list[str]]) -> str:
    return hashlib.sha256(canonical(rows).encode()).hexdigest()


def _read(file: Path, key: str) -> list[Finding] | None:
    try:
        data = json.loads(file.read_bytes())
        rows = data["findings"]
        if data.get("format") != FORMAT or data.get("key") != key or data.get("digest") != _digest(rows):
            return None
        if not all(isinstance(row, list) and len(row) == len(_FIELDS) and all(isinstance(v, str) for v in row)
                   for row in rows):
            return None
        return [Finding(*row) for row in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, damaged or foreign: a miss


def _storable(rows: list[list[str]], root: str) -> bool:
    return not any(secret_urls(rows)) and not any(root in value for row in rows for value in row)


def _prune(folder: Path) -> None:
    with contextlib.suppress(OSError):
        entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[:-MAX_ENTRIES]:
            old.unlink(missing_ok=True)


def kept_findings(env: Environment, cache_dir: Path | None,
                  texts: dict[Any, tuple[Any, str]] | None = None) -> list[Finding] | None:
    """``env``'s findings as kept in ``cache_dir`` for its current key, or None when none are
    (or the render cache is off). Reads no graph and loads no Pulumi: a ``validate`` of an
    unchanged spec ends here. ``texts``: see :func:`modelops.graph.keys.group_keys`.

    Example::

        found = kept_findings(attached, Path(".modelops/cache"))   # None: render and evaluate
    """
    if cache_dir is None or os.environ.get(RENDER_CACHE_ENV) == "off":
        return None
    key = findings_key(env, cache_dir, texts)
    return _read(Path(cache_dir) / "findings" / f"{key}.json", key)


def cached_findings(env: Environment, cache_dir: Path | None, compute: Callable[[], list[Finding]]) -> list[Finding]:
    """``env``'s findings from ``cache_dir`` when they were kept for the same key, else
    ``compute()`` (render and evaluate), kept for the next run. Without a ``cache_dir``, or
    with the render cache off (:data:`~modelops.graph.cache.RENDER_CACHE_ENV`), it computes."""
    if cache_dir is None or os.environ.get(RENDER_CACHE_ENV) == "off":
        return compute()
    key = findings_key(env, cache_dir)
    folder = Path(cache_dir) / "findings"
    file = folder / f"{key}.json"
    found = _read(file, key)
    if found is not None:
        return found
    found = compute()
    rows = [[getattr(f, name) for name in _FIELDS] for f in found]
    root = str(Path(cache_dir).resolve().parent.parent)
    if _storable(rows, root):
        with contextlib.suppress(OSError):  # an optimisation: an unwritable cache only costs time
            atomic_write(file, json.dumps({"format": FORMAT, "key": key, "digest": _digest(rows), "findings": rows}),
                         durable=False)
            _prune(folder)
    return found
