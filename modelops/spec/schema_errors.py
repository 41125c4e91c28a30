"""Schema violations as human problems: unknown keys with did-you-mean, wrong types with an
example of the right one, names and text that AWS would refuse.

``jsonschema`` lists every violation only when the fast validator says "invalid"
(:mod:`modelops.spec.schema`), so a valid spec never imports it.

Example::

    problems = schema_problems(doc.data, Locator([doc]))
    print(problems[0])
    # modelops.yaml:12:7: models.churn.serving.instance_cout: unknown key; did you mean 'instance_count'?
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

from modelops.errors import Problem
from modelops.spec.problems import Locator, at, choices, suggest
from modelops.spec.schema import is_valid, schema, validator

__all__ = ["schema_problems"]

_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false", "null": "null"}
_SECRET_KEYS = frozenset({"https"})


def schema_problems(data: Any, where: Locator, *, kind: str = "spec") -> list[Problem]:
    """Every schema violation of ``data`` (a spec, overlay or team file) as a human problem (unordered)."""
    if is_valid(data, kind=kind):
        return []
    problems: list[Problem] = []
    for error in validator(kind).iter_errors(data):
        problems.extend(_translate(error, where))
    return problems


def _show(value: Any, path: tuple[Any, ...] = ()) -> str:
    if any(part in _SECRET_KEYS for part in path if isinstance(part, str)):
        return "the URL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return "null" if value is None else type(value).__name__


def _example_fix(schema_node: Any) -> str:
    if not isinstance(schema_node, dict):
        return ""
    examples = schema_node.get("examples")
    if examples:
        sample = examples[0]
        if isinstance(sample, (dict, list)):
            text = json.dumps(sample, separators=(", ", ": "))
            return f"e.g. {text}" if len(text) <= 80 else ""
        return f"e.g. {json.dumps(sample) if isinstance(sample, str) else _show(sample)}"
    return ""


def _type_fix(expected: list[str], value: Any) -> str:
    """How to write a value of the expected type, when the schema gives no example."""
    if "string" in expected and isinstance(value, (bool, int, float)):
        return f'quote it: "{_show(value)}"'
    if "object" in expected and isinstance(value, list):
        return "write `name: settings` entries (a mapping), not a `- item` list"
    return f"write {' or '.join(_TYPE_NAMES.get(t, t) for t in expected)} here"


def _sentence(description: str) -> str:
    """A schema description as the tail of a message: no final period, lowercase start."""
    text = description.strip().rstrip(".")
    return text[0].lower() + text[1:] if len(text) > 1 and text[1].islower() else text



_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text_flaw(value: Any) -> tuple[str, str] | None:
    """What is wrong with text that no spec string may hold (a NUL, a final newline, edge
    spaces), as (message, fix); None for text without such a flaw."""
    if not isinstance(value, str):
        return None
    if value.endswith(("\n", "\r")):
        return "ends with a line break", "remove it (a YAML `|` or `>` block keeps its final line break; write `|-` or `>-`)"
    control = _CONTROL.search(value)
    if control:
        return f"contains the control character U+{ord(control.group()):04X}", "remove it: spec text is printable characters only"
    if value != value.strip():
        return "starts or ends with white space", "remove the spaces around the value"
    return None


def _translate(error: ValidationError, where: Locator) -> Iterator[Problem]:
    path = tuple(error.absolute_path)
    keyword = error.validator
    value = error.instance
    node = error.schema if isinstance(error.schema, dict) else {}
    code = f"E-SCHEMA-{str(keyword).upper()}"

    if "propertyNames" in error.absolute_schema_path:
        key_path = (*path, value)
        if keyword == "enum":
            close = suggest(value, error.validator_value)
            fix = f"did you mean '{close}'?" if close else f"use one of: {choices(error.validator_value)}"
            yield at("E-SCHEMA-UNKNOWN-KEY", where.key(key_path), key_path, "unknown key", fix)
            return
        description = node.get("description", "")
        fix = _sentence(description) if description else "rename it"
        flaw = _text_flaw(value)
        if flaw:
            yield at("E-SCHEMA-NAME", where.key(key_path), key_path, f"invalid name {_show(value)}: {flaw[0]}", flaw[1])
            return
        yield at("E-SCHEMA-NAME", where.key(key_path), key_path, f"invalid name {_show(value)}", fix)
        return

    if keyword == "additionalProperties" and error.validator_value is False:
        known = list(node.get("properties", {}))
        extras = [key for key in value if key not in node.get("properties", {})]
        for key in extras:
            key_path = (*path, key)
            close = suggest(key, known)
            fix = f"did you mean '{close}'?" if close else f"allowed keys: {choices(known, 12)}"
            yield at("E-SCHEMA-UNKNOWN-KEY", where.key(key_path), key_path, "unknown key", fix)
        return
    if keyword == "required":
        for key in error.validator_value:
            if isinstance(value, dict) and key not in value:
                about = node.get("properties", {}).get(key, {})
                target = schema()["$defs"].get(str(about.get("$ref", "")).rsplit("/", 1)[-1], {})
                hint = _example_fix(about) or _example_fix(target)
                fix = f"add `{key}:`" + (f" ({hint})" if hint else "")
                yield at("E-SCHEMA-REQUIRED", where.key(path), (*path, key), "required key missing", fix)
        return

    here = where.value(path)
    if keyword == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in expected)
        yield at("E-SCHEMA-TYPE", here, path, f"expected {wanted}, got {_kind(value)}",
                  _example_fix(node) or _type_fix(expected, value))
    elif keyword == "enum":
        options = error.validator_value
        close = suggest(value, [str(o) for o in options]) if isinstance(value, str) else None
        fix = f"did you mean '{close}'?" if close else f"use one of: {choices(options)}"
        yield at("E-SCHEMA-ENUM", here, path, f"{_show(value, path)} is not allowed", fix)
    elif keyword == "const":
        yield at("E-SCHEMA-CONST", here, path, f"must be {json.dumps(error.validator_value)}, got {_show(value, path)}", f"write {json.dumps(error.validator_value)}")
    elif keyword == "pattern" and _text_flaw(value):
        message, fix = _text_flaw(value)  # type: ignore[misc]
        yield at("E-SCHEMA-PATTERN", here, path, f"{_show(value, path)} {message}", fix)
    elif keyword == "pattern":
        description = _sentence(node.get("description", ""))
        example = _example_fix(node)
        fix = "; ".join(part for part in (description, example) if part) or f"match {error.validator_value}"
        yield at("E-SCHEMA-PATTERN", here, path, f"{_show(value, path)} is not valid", fix)
    elif keyword in ("minLength", "maxLength"):
        bound = error.validator_value
        word = "at least" if keyword == "minLength" else "at most"
        count = f"{len(value)} character" + ("" if len(value) == 1 else "s")
        yield at("E-SCHEMA-LENGTH", here, path, f"{_show(value, path)} is {count}; {word} {bound} allowed", "use a shorter value" if keyword == "maxLength" else "use a longer value")
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        sign = {"minimum": "≥", "maximum": "≤", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[keyword]
        yield at("E-SCHEMA-RANGE", here, path, f"must be {sign} {error.validator_value}, got {_show(value)}", _example_fix(node))
    elif keyword == "uniqueItems":
        yield at("E-SCHEMA-UNIQUE", here, path, "items must be unique", "remove the repeated item")
    elif keyword == "minItems":
        yield at("E-SCHEMA-ITEMS", here, path, f"must have at least {error.validator_value} item(s)", "add an item or remove the key")
    elif keyword == "maxItems":
        yield at("E-SCHEMA-ITEMS", here, path, f"must have at most {error.validator_value} item(s)", "remove items")
    elif keyword == "minProperties":
        keys = ", ".join(node.get("properties", {})) or "a key"
        yield at("E-SCHEMA-EMPTY", here, path, "must not be empty", f"add {keys}" if keys else "add a key")
    elif keyword == "maxProperties":
        yield at("E-SCHEMA-SIZE", here, path, f"at most {error.validator_value} entries allowed", "remove entries")
    else:
        yield at(code, here, path, error.message if not any(p in _SECRET_KEYS for p in path) else "invalid value", _example_fix(node))

