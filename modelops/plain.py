"""Plain data: the one walk from resolved-spec objects to JSON-able values.

Example::

    plain(env.models["churn"])          # {"dataset": "customers", "name": "churn", ...}
    canonical(env.models["churn"])      # the same as canonical JSON (sorted keys, no spaces)
"""

from __future__ import annotations

import dataclasses
import operator
from json.encoder import encode_basestring_ascii as _string
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


def canonical(value: Any, texts: dict[Any, tuple[Any, str]] | None = None) -> str:
    """Canonical JSON of ``value`` (plain data, sorted keys, no spaces): what content keys
    and comparisons are made of. The text of ``json.dumps(plain(value), sort_keys=True,
    default=str, separators=(",", ":"))``, written in one walk without the plain copy.

    ``texts``, when given, keeps the text of every frozen dataclass met (by identity, with
    the object, so that its id names no other while kept): the entities several environments
    of one spec share, and the parts of them (a model's train, its serving), are written once.

    Example::

        texts = {}
        keys = [canonical(env.models["churn"], texts) for env in environments]
    """
    return _text(value, texts)


def _float(value: float) -> str:
    # as the json module writes floats (allow_nan: NaN and the infinities as JavaScript names)
    if value != value:
        return "NaN"
    if value == _INF:
        return "Infinity"
    if value == -_INF:
        return "-Infinity"
    return float.__repr__(value)


_INF = float("inf")
#: dataclass type -> (field names sorted, the JSON text before each field's value, frozen)
_LAYOUTS: dict[type, tuple[tuple[str, ...], tuple[str, ...], bool]] = {}


def _text(value: Any, texts: dict[Any, tuple[Any, str]] | None) -> str:
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _float(value)
    if kind is list or kind is tuple:
        return "[" + ",".join([_text(v, texts) for v in value]) + "]"
    if kind is dict:
        return _mapping(value, texts)
    layout = _LAYOUTS.get(kind)
    if layout is None:
        if not (dataclasses.is_dataclass(value) and not isinstance(value, type)):
            return _other(value, texts)
        names = tuple(sorted(f.name for f in dataclasses.fields(value)))
        heads = tuple(("{" if i == 0 else ",") + _string(name) + ":" for i, name in enumerate(names))
        # every field at once (a tuple, in C), as plain reads them: by name, descriptors included
        getter = operator.attrgetter(*names) if len(names) > 1 else (lambda v, name=names: (getattr(v, name[0]),)) \
            if names else (lambda v: ())
        layout = _LAYOUTS[kind] = (heads, getter, bool(kind.__dataclass_params__.frozen))  # type: ignore[attr-defined]
    heads, getter, frozen = layout
    if frozen and texts is not None:
        kept = texts.get(id(value))
        if kept is not None and kept[0] is value:
            return kept[1]
    if not heads:
        return "{}"
    parts = []
    for head, field_value in zip(heads, getter(value)):
        # the leaves most fields hold, here rather than a call each
        field_kind = type(field_value)
        if field_kind is str:
            parts.append(head + _string(field_value))
        elif field_value is None:
            parts.append(head + "null")
        elif field_kind is bool:
            parts.append(head + ("true" if field_value else "false"))
        elif field_kind is int:
            parts.append(head + int.__repr__(field_value))
        else:
            parts.append(head + _text(field_value, texts))
    text = "".join(parts) + "}"
    if frozen and texts is not None:
        texts[id(value)] = (value, text)
    return text


def _mapping(value: dict[Any, Any], texts: dict[Any, tuple[Any, str]] | None) -> str:
    if all(type(k) is str for k in value):
        keys = sorted(value)
        items = [(k, value[k]) for k in keys]
    else:  # as plain: keys as strings, the last of equal ones wins
        merged = {str(k): v for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
        items = sorted(merged.items(), key=lambda kv: kv[0])
    if not items:
        return "{}"
    return "{" + ",".join([_string(k) + ":" + _text(v, texts) for k, v in items]) + "}"


def _other(value: Any, texts: dict[Any, tuple[Any, str]] | None) -> str:
    """What plain keeps as it is, written as the json module writes it (``default=str``)."""
    if isinstance(value, dict):
        return _mapping(dict(value), texts)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join([_text(v, texts) for v in value]) + "]"
    if isinstance(value, str):
        return _string(value)
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    return _string(str(value))
