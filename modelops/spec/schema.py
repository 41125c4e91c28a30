"""The spec language's JSON Schema and the validators compiled from it.

The JSON Schema (``schemas/modelops.schema.json``) is the single definition of the spec
language; overlays are checked with the same schema with every ``required`` removed, and
included team files with its team keys (both derived here at load time). Each validator is
compiled once per process.

Two validators come from that one schema: a fast one (``fastjsonschema``, generated ahead
and committed, see :mod:`modelops.spec.fast_schema`) that only answers "valid or not", and
``jsonschema``'s Draft 2020-12 validator, run only when the fast one says "invalid", to
list every error with its path (:mod:`modelops.spec.schema_errors`).

Example::

    is_valid({"apiVersion": "modelops/v1"})   # False: `project` is required
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema

if TYPE_CHECKING:  # jsonschema is imported only when a spec is invalid (it is slow to import)
    from jsonschema import Draft202012Validator

from modelops.spec.fast_schema import load_validator

__all__ = [
    "DOCUMENT_KINDS",
    "SCHEMA_PATH",
    "TEAM_KEYS",
    "TEAM_SCHEMA_PATH",
    "definition",
    "fast_definition",
    "fast_validator",
    "is_valid",
    "overlay_schema",
    "python_pattern",
    "schema",
    "team_schema",
    "validator",
]

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "modelops.schema.json"
#: the schema of an included team file, generated from the spec's (:func:`team_schema`)
TEAM_SCHEMA_PATH = SCHEMA_PATH.parent / "team.schema.json"
#: what a spec is written in: the root spec, an environment overlay, an included team file
DOCUMENT_KINDS = ("spec", "overlay", "team")
#: the keys a team file may hold: what one team declares, and who owns it
TEAM_KEYS = ("apiVersion", "owner", "notifications", "datasets", "models", "monitors")


@functools.cache
def schema() -> dict[str, Any]:
    """The spec's JSON Schema (read once per process)."""
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        return json.load(handle)


def overlay_schema(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with every ``required`` removed, and without ``include`` (only the root spec
    includes): what an environment overlay must satisfy."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: strip(value) for key, value in node.items() if key != "required"}
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    stripped = strip(copy.deepcopy(base))
    stripped["properties"].pop("include", None)
    return stripped


def team_schema(base: dict[str, Any]) -> dict[str, Any]:
    """The schema of an included team file, derived from the spec's ``base``: its
    :data:`TEAM_KEYS`, none required, the same definitions. Written to
    ``schemas/team.schema.json`` for editors by ``python -m modelops.spec.schema_docs --write``."""
    properties = {key: copy.deepcopy(base["properties"][key]) for key in TEAM_KEYS}
    properties["owner"]["description"] = ("Team email: the owner of everything this file declares that names no owner "
                                          "of its own (default: the project's `owner`).")
    properties["owner"]["examples"] = ["fraud-team@example.com"]
    return {
        "$schema": base["$schema"],
        "$id": base["$id"].replace("modelops.schema.json", TEAM_SCHEMA_PATH.name),
        "title": "ModelOps team file",
        "description": "The notifications, datasets, models and monitors of one team, in a file the root spec "
                       "includes (`include: [teams/*.yaml]`); the language of schemas/modelops.schema.json.",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "$defs": copy.deepcopy(base["$defs"]),
    }


def definition(kind: str = "spec") -> dict[str, Any]:
    """The JSON Schema of one of the :data:`DOCUMENT_KINDS` (``spec``, ``overlay``, ``team``)."""
    if kind == "overlay":
        return overlay_schema(schema())
    if kind == "team":
        return team_schema(schema())
    if kind != "spec":
        raise ValueError(f"unknown document kind {kind!r}")
    return schema()


@functools.cache
def validator(kind: str = "spec") -> Draft202012Validator:
    """The Draft 2020-12 validator of a spec, overlay or team file; built once per process."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(python_patterns(definition(kind)))


def python_pattern(pattern: str) -> str:
    r"""A schema ``pattern`` (ECMA-262) as Python's ``re`` must read it: each end anchor ``$`` is ``\Z``.

    In ECMA-262 ``$`` matches only at the end; in Python it also matches before a final
    newline, so ``^[a-z]+$`` would pass ``"nl\n"`` (a name that AWS then refuses). The schema
    keeps ``$`` for editors; both validators compiled here get ``\Z``.

    Example::

        python_pattern("^[a-z]+$")   # '^[a-z]+\\Z'
    """
    out: list[str] = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        index += 1
    return "".join(out)


def python_patterns(definition: Any) -> Any:
    """``definition`` with every ``pattern`` rewritten by :func:`python_pattern`."""
    if isinstance(definition, dict):
        return {key: python_pattern(value) if key == "pattern" and isinstance(value, str) else python_patterns(value)
                for key, value in definition.items()}
    if isinstance(definition, list):
        return [python_patterns(item) for item in definition]
    return definition


def _fast_schema(definition: dict[str, Any]) -> dict[str, Any]:
    """The schema as fastjsonschema reads it: draft-07 keywords (all we use), no format checks
    (2020-12 treats ``format`` as an annotation; the patterns beside it do the checking)."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: strip(value) for key, value in node.items() if not (key == "format" and isinstance(value, str))}
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    return {**strip(definition), "$schema": "http://json-schema.org/draft-07/schema#"}


def fast_definition(kind: str = "spec") -> dict[str, Any]:
    """The schema of a spec, overlay or team file as its fast validator is generated from."""
    return _fast_schema(python_patterns(definition(kind)))


@functools.cache
def fast_validator(kind: str = "spec") -> Callable[[Any], Any]:
    """A compiled yes/no validator of a spec, overlay or team file; raises on the first error
    (:mod:`modelops.spec.fast_schema`: generated ahead, never read from a cache)."""
    return load_validator(fast_definition(kind), kind)


def is_valid(data: Any, *, kind: str = "spec") -> bool:
    """True when ``data`` satisfies the schema of its kind (fast; no error details)."""
    try:
        fast_validator(kind)(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True

