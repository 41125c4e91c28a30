"""Plain data: the one walk from resolved-spec objects to JSON-able values.

Example::

    plain(env.models["churn"])          # {"dataset": "customers", "name": "churn", ...}
    canonical(env.models["churn"])      # the same as canonical JSON (sorted keys, no spaces)
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

__all__ = ["canonical", "plain"]

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def plain(value: Any, leaf: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as plain, key-sorted data: dataclasses as dicts, tuples as lists.

    The result of ``dataclasses.asdict`` and sorting, without its deep copies (resolved
    specs are frozen dataclasses of immutable leaves). ``leaf`` turns any other object
    (an asset, a secret) into plain data; without it, such values are kept as they are."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        return {str(k): plain(v, leaf) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if kind is list or kind is tuple:
        return [plain(v, leaf) for v in value]
    names = _FIELD_NAMES.get(kind)
    if names is None:
        if not (dataclasses.is_dataclass(value) and not isinstance(value, type)):
            if isinstance(value, dict):
                return plain(dict(value), leaf)
            if isinstance(value, (list, tuple)):
                return [plain(v, leaf) for v in value]
            return leaf(value) if leaf is not None else value
        names = _FIELD_NAMES[kind] = tuple(sorted(f.name for f in dataclasses.fields(value)))
    return {name: plain(getattr(value, name), leaf) for name in names}


def canonical(value: Any) -> str:
    """Canonical JSON of ``value`` (plain data, sorted keys, no spaces): what content keys
    and comparisons are made of."""
    return json.dumps(plain(value), sort_keys=True, default=str, separators=(",", ":"))
