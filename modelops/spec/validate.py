"""Schema and semantic checks of a spec, as human problems at ``FILE:LINE:COL``.

The JSON Schema (``schemas/modelops.schema.json``) is the single definition of the spec
language; overlays are checked with the same schema with every ``required`` removed,
derived here at load time. Each validator is compiled once per process.

Two validators come from that one schema: a fast one (``fastjsonschema``, generated ahead
and committed, see :mod:`modelops.spec.fast_schema`) that only answers "valid or not", and
``jsonschema``'s Draft 2020-12 validator, run only when the fast one says "invalid", to
list every error with its path.

What a schema cannot say is checked by :func:`semantic_problems`: references resolve,
names are unique and fit AWS limits, monitor thresholds parse in their metric's unit,
serving options are consistent, local files exist.

Example::

    problems = schema_problems(doc.data, Locator([doc]))
    print(problems[0])
    # modelops.yaml:12:7: models.churn.serving.instance_cout: unknown key; did you mean 'instance_count'?
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema

if TYPE_CHECKING:  # jsonschema is imported only when a spec is invalid (it is slow to import)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

from modelops.components import naming
from modelops.spec import units
from modelops.errors import Problem, excerpt
from modelops.spec.datafiles import csv_sample, parquet_problem, project_file
from modelops.spec.fast_schema import load_validator
from modelops.ml import estimators
from modelops.spec.loader import LoadedDocument, display_name
from modelops.spec.resolved import DATASET_METRICS, MODEL_METRICS

__all__ = [
    "DOCUMENT_KINDS",
    "Locator",
    "SCHEMA_PATH",
    "TEAM_KEYS",
    "TEAM_SCHEMA_PATH",
    "definition",
    "dotted",
    "overlay_schema",
    "schema",
    "schema_problems",
    "semantic_problems",
    "suggest",
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
#: the longest monitor period (a whole number of minutes up to a day); what CloudWatch
#: evaluates in all (period × evaluation periods) is :func:`modelops.spec.units.max_alarm_seconds`
MAX_PERIOD_SECONDS = 86400
_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false", "null": "null"}
_SECRET_KEYS = frozenset({"https"})
_GLUE_COLUMN = re.compile(r"[a-z_][a-z0-9_]{0,127}")  # used with fullmatch: `$` passes a final newline


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


def dotted(path: Iterable[Any]) -> str:
    """``("models", "churn", "train", "features", 0)`` → ``models.churn.train.features[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (did-you-mean), or None."""
    found = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return found[0] if found else None


class Locator:
    """Positions in a layered document: the first document that has a path wins.

    For a merged environment the layers are ``[overlay, base]``: a value the overlay sets
    is reported in the overlay, everything else in the base.
    """

    def __init__(self, docs: list[LoadedDocument]) -> None:
        self.docs = docs

    def key(self, path: Iterable[Any]) -> tuple[str, int, int]:
        """Where the key of ``path`` is written (or its nearest written ancestor)."""
        path = tuple(path)
        while True:
            for doc in self.docs:
                found = doc.positions.get(path)
                if found is not None:
                    return doc.file, found[0], found[1]
            if not path:
                return self.docs[-1].file, 1, 1
            path = path[:-1]

    def value(self, path: Iterable[Any]) -> tuple[str, int, int]:
        """Where the value of ``path`` is written (falls back to :meth:`key`)."""
        path = tuple(path)
        for doc in self.docs:
            found = doc.value_positions.get(path)
            if found is not None:
                return doc.file, found[0], found[1]
        return self.key(path)

    def file_of(self, path: Iterable[Any]) -> str:
        return self.key(path)[0]

    def layer(self, path: Iterable[Any]) -> int | None:
        """The index of the layer that writes the key of ``path`` itself (0: the overlay), or None."""
        path = tuple(path)
        for index, doc in enumerate(self.docs):
            if path in doc.positions:
                return index
        return None


def _at(code: str, where: tuple[str, int, int], path: Iterable[Any], message: str, fix: str = "") -> Problem:
    return Problem(code, where[0], where[1], where[2], dotted(path), message, fix)


def _clash(code: str, where: Locator, first: tuple[Any, ...], second: tuple[Any, ...], message: str, fix: str,
           path: tuple[Any, ...] | None = None, value: bool = False) -> Problem:
    """Two keys that cannot be set together, reported once: at ``second``, unless the overlay
    wrote ``first`` over a base that has ``second`` (then the overlay caused it). When the two
    are in different files, the other one's place is named; an overlay cannot remove a key
    of the base, so the fix says what can be done instead."""
    first_layer, second_layer = where.layer(first), where.layer(second)
    here, other = (first, second) if first_layer is not None and second_layer is not None and first_layer < second_layer else (second, first)
    at, there = (where.value(here) if value else where.key(here)), where.key(other)
    if at[0] != there[0]:
        message = f"{message}: `{other[-1]}` is set at {there[0]}:{there[1]}:{there[2]}"
        if where.layer(here) == 0:
            fix = f"remove `{here[-1]}` here (an overlay cannot remove `{other[-1]}` of {there[0]}: move it from there into the overlays that keep it)"
    return _at(code, at, here if path is None else path, message, fix)


# --------------------------------------------------------------------------- schema


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


def _choices(options: list[Any], limit: int = 8) -> str:
    shown = ", ".join(str(o) for o in options[:limit])
    return shown + (f", ... ({len(options)} in all)" if len(options) > limit else "")


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
            fix = f"did you mean '{close}'?" if close else f"use one of: {_choices(error.validator_value)}"
            yield _at("E-SCHEMA-UNKNOWN-KEY", where.key(key_path), key_path, "unknown key", fix)
            return
        description = node.get("description", "")
        fix = _sentence(description) if description else "rename it"
        flaw = _text_flaw(value)
        if flaw:
            yield _at("E-SCHEMA-NAME", where.key(key_path), key_path, f"invalid name {_show(value)}: {flaw[0]}", flaw[1])
            return
        yield _at("E-SCHEMA-NAME", where.key(key_path), key_path, f"invalid name {_show(value)}", fix)
        return

    if keyword == "additionalProperties" and error.validator_value is False:
        known = list(node.get("properties", {}))
        extras = [key for key in value if key not in node.get("properties", {})]
        for key in extras:
            key_path = (*path, key)
            close = suggest(key, known)
            fix = f"did you mean '{close}'?" if close else f"allowed keys: {_choices(known, 12)}"
            yield _at("E-SCHEMA-UNKNOWN-KEY", where.key(key_path), key_path, "unknown key", fix)
        return
    if keyword == "required":
        for key in error.validator_value:
            if isinstance(value, dict) and key not in value:
                about = node.get("properties", {}).get(key, {})
                target = schema()["$defs"].get(str(about.get("$ref", "")).rsplit("/", 1)[-1], {})
                hint = _example_fix(about) or _example_fix(target)
                fix = f"add `{key}:`" + (f" ({hint})" if hint else "")
                yield _at("E-SCHEMA-REQUIRED", where.key(path), (*path, key), "required key missing", fix)
        return

    at = where.value(path)
    if keyword == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in expected)
        yield _at("E-SCHEMA-TYPE", at, path, f"expected {wanted}, got {_kind(value)}",
                  _example_fix(node) or _type_fix(expected, value))
    elif keyword == "enum":
        options = error.validator_value
        close = suggest(value, [str(o) for o in options]) if isinstance(value, str) else None
        fix = f"did you mean '{close}'?" if close else f"use one of: {_choices(options)}"
        yield _at("E-SCHEMA-ENUM", at, path, f"{_show(value, path)} is not allowed", fix)
    elif keyword == "const":
        yield _at("E-SCHEMA-CONST", at, path, f"must be {json.dumps(error.validator_value)}, got {_show(value, path)}", f"write {json.dumps(error.validator_value)}")
    elif keyword == "pattern" and _text_flaw(value):
        message, fix = _text_flaw(value)  # type: ignore[misc]
        yield _at("E-SCHEMA-PATTERN", at, path, f"{_show(value, path)} {message}", fix)
    elif keyword == "pattern":
        description = _sentence(node.get("description", ""))
        example = _example_fix(node)
        fix = "; ".join(part for part in (description, example) if part) or f"match {error.validator_value}"
        yield _at("E-SCHEMA-PATTERN", at, path, f"{_show(value, path)} is not valid", fix)
    elif keyword in ("minLength", "maxLength"):
        bound = error.validator_value
        word = "at least" if keyword == "minLength" else "at most"
        count = f"{len(value)} character" + ("" if len(value) == 1 else "s")
        yield _at("E-SCHEMA-LENGTH", at, path, f"{_show(value, path)} is {count}; {word} {bound} allowed", "use a shorter value" if keyword == "maxLength" else "use a longer value")
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        sign = {"minimum": "≥", "maximum": "≤", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[keyword]
        yield _at("E-SCHEMA-RANGE", at, path, f"must be {sign} {error.validator_value}, got {_show(value)}", _example_fix(node))
    elif keyword == "uniqueItems":
        yield _at("E-SCHEMA-UNIQUE", at, path, "items must be unique", "remove the repeated item")
    elif keyword == "minItems":
        yield _at("E-SCHEMA-ITEMS", at, path, f"must have at least {error.validator_value} item(s)", "add an item or remove the key")
    elif keyword == "maxItems":
        yield _at("E-SCHEMA-ITEMS", at, path, f"must have at most {error.validator_value} item(s)", "remove items")
    elif keyword == "minProperties":
        keys = ", ".join(node.get("properties", {})) or "a key"
        yield _at("E-SCHEMA-EMPTY", at, path, "must not be empty", f"add {keys}" if keys else "add a key")
    elif keyword == "maxProperties":
        yield _at("E-SCHEMA-SIZE", at, path, f"at most {error.validator_value} entries allowed", "remove entries")
    else:
        yield _at(code, at, path, error.message if not any(p in _SECRET_KEYS for p in path) else "invalid value", _example_fix(node))


# --------------------------------------------------------------------------- semantics


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _entities(data: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in _mapping(data.get(kind)).items() if isinstance(body, dict)}


def _is_true(value: Any) -> bool:
    return value is True


def _serverless(model: dict[str, Any]) -> bool:
    return isinstance(_mapping(model.get("serving")).get("serverless"), dict)


def semantic_problems(data: dict[str, Any], where: Locator, env: str, spec_dir: Path) -> list[Problem]:
    """What the schema cannot express, for one (merged) environment.

    Defensive about shapes the schema already reports (a wrong type is skipped here), so
    that every problem is reported in one run.
    """
    problems: list[Problem] = []
    add = problems.append
    notifications = _entities(data, "notifications")
    datasets = _entities(data, "datasets")
    models = _entities(data, "models")
    monitors = _entities(data, "monitors")

    # names: unique across kinds, not reserved, derived AWS names within limits
    owners: dict[str, tuple[str, tuple[str, int, int]]] = {}
    declared = [(kind, name) for kind in ("datasets", "models", "monitors") for name in _mapping(data.get(kind))]
    declared.sort(key=lambda item: where.key(item))
    project = data.get("project") if isinstance(data.get("project"), str) else None
    for kind, name in declared:
        singular = kind[:-1]
        here = where.key((kind, name))
        if name in naming.RESERVED_NAMES:
            add(_at("E-RESERVED-NAME", here, (kind, name), f"'{name}' is reserved for a name ModelOps derives itself", "choose another name"))
        if name in owners:
            other_kind, other_at = owners[name]
            add(_at("E-DUPLICATE-NAME", here, (kind, name), f"name already used by {other_kind} '{name}' at {other_at[0]}:{other_at[1]}:{other_at[2]}", "names are unique across datasets, models and monitors; rename one"))
        else:
            owners[name] = (singular, here)
        if project:
            roles = {"datasets": ("bucket",), "models": ("endpoint", "role"), "monitors": ("alarm",)}[kind]
            longest = naming.longest_names(project, env, str(name))
            for role in roles:
                derived, limit = longest[role]
                if len(derived) > limit:
                    add(_at("E-NAME-TOO-LONG", here, (kind, name), f"the {role} name '{derived}' of environment '{env}' is {len(derived)} characters, over the AWS limit of {limit}", "shorten the project or this name"))

    # notify targets
    def check_channels(path: tuple[Any, ...], channels: Any) -> None:
        if not isinstance(channels, list):
            return
        for index, channel in enumerate(channels):
            if isinstance(channel, str) and channel not in notifications:
                close = suggest(channel, notifications)
                fix = f"did you mean '{close}'?" if close else (f"declared channels: {_choices(sorted(notifications))}" if notifications else "declare it under `notifications:`")
                add(_at("E-REF", where.value((*path, index)), (*path, index), f"unknown notification channel '{channel}'", fix))

    # datasets: local sources exist, CSV headers give valid columns
    headers: dict[str, tuple[str, tuple[str, ...]]] = {}  # dataset -> (source, CSV header)
    for name, dataset in datasets.items():
        source = dataset.get("source")
        if isinstance(source, str) and source:
            path = ("datasets", name, "source")
            file, reason = project_file(spec_dir, source)
            if file is None:
                add(_file_problem(reason, where.value(path), path, source, spec_dir))
            elif dataset.get("format", "csv") == "csv":
                sample = csv_sample(file, spec_dir / ".modelops" / "cache")
                if sample.problem:
                    add(_at("E-CSV-HEADER", where.value(path), path, f"{excerpt(source)} is not a readable CSV file: {sample.problem}",
                            "put the column names on the first line, or set `format:` if it is not CSV"))
                    continue
                headers[name] = (source, sample.header)
                if dataset.get("columns") is not None:
                    continue
                for column in sample.header:
                    if not _GLUE_COLUMN.fullmatch(column):
                        add(_at("E-CSV-COLUMN", where.value(path), path, f"CSV header column {excerpt(column)} is not a valid catalogue column name", "rename it (lowercase letters, digits, _) or declare `columns:`"))
                        break

    # datasets: a parquet source is a parquet file (its footer only is read)
    for name, dataset in datasets.items():
        source = dataset.get("source")
        if dataset.get("format") == "parquet" and isinstance(source, str) and source:
            file = project_file(spec_dir, source)[0]
            reason = parquet_problem(file) if file is not None else None
            if reason:
                path = ("datasets", name, "source")
                add(_at("E-PARQUET", where.value(path), path, f"{source!r} is not a readable parquet file ({reason})", "write it with a parquet writer, or set `format:` to the file's format"))

    # models
    for name, model in models.items():
        base = ("models", name)
        ref = model.get("dataset")
        if isinstance(ref, str) and ref not in datasets:
            close = suggest(ref, datasets)
            fix = f"did you mean '{close}'?" if close else ("declare it under `datasets:`" if not datasets else f"declared datasets: {_choices(sorted(datasets))}")
            add(_at("E-REF", where.value((*base, "dataset")), (*base, "dataset"), f"unknown dataset '{ref}'", fix))
        has_train, has_artifact = "train" in model, "artifact" in model
        if has_train and has_artifact:
            add(_clash("E-TRAIN-OR-ARTIFACT", where, (*base, "train"), (*base, "artifact"), "a model has either `train` or `artifact`, not both", "remove one of them"))
        elif not has_train and not has_artifact:
            add(_at("E-TRAIN-OR-ARTIFACT", where.key(base), base, "a model needs `train` or `artifact`", "add `train: {estimator: ..., target: ...}` or `artifact: path/to/model.tar.gz`"))
        artifact = model.get("artifact")
        if isinstance(artifact, str) and artifact:
            package, reason = project_file(spec_dir, artifact)
            if package is None:
                add(_file_problem(reason, where.value((*base, "artifact")), (*base, "artifact"), artifact, spec_dir))
        if isinstance(ref, str) and ref in headers and isinstance(model.get("train"), dict):
            problems.extend(_train_column_problems(model["train"], (*base, "train"), headers[ref], where))
        if isinstance(model.get("train"), dict):
            problems.extend(_train_problems(model["train"], (*base, "train"), where))
        problems.extend(_serving_problems(_mapping(model.get("serving")), (*base, "serving"), where))

    # monitors
    for name, monitor in monitors.items():
        problems.extend(_monitor_problems(name, monitor, models, datasets, where))
        check_channels(("monitors", name, "notify"), monitor.get("notify"))
    return problems


@functools.cache
def serving_instance_types() -> tuple[str, ...]:
    """The instance types of SageMaker real-time endpoints, in the API's order
    (``modelops/data/serving_instance_types.json``, with its source)."""
    text = resources.files("modelops.data").joinpath("serving_instance_types.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["instance_types"])


_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
def _train_column_problems(train: dict[str, Any], base: tuple[Any, ...], data: tuple[str, tuple[str, ...]], where: Locator) -> Iterator[Problem]:
    """``train.target`` and ``train.features`` name columns of the dataset's CSV header
    (else ``build`` fails later, without a position)."""
    source, header = data
    if not header:
        return
    columns = set(header)
    named = [((*base, "target"), train.get("target"))]
    features = train.get("features")
    if isinstance(features, list):
        named += [((*base, "features", index), feature) for index, feature in enumerate(features)]
    for path, column in named:
        if not isinstance(column, str) or not column or column in columns:
            continue
        close = suggest(column, header)
        fix = f"did you mean {excerpt(close)}?" if close else f"columns: {_choices([excerpt(c) for c in header])}"
        yield _at("E-TRAIN-COLUMN", where.value(path), path, f"column {excerpt(column)} is not in the header of {excerpt(source)}", fix)
def _train_problems(train: dict[str, Any], base: tuple[Any, ...], where: Locator) -> Iterator[Problem]:
    params = _mapping(train.get("params"))
    for name, message in estimators.size_problems(params, _mapping(train.get("limits"))):
        path = (*base, "params", name)
        text, _, fix = message.partition("; ")
        yield _at("E-SIZE-LIMIT", where.value(path), path, text, fix)
    path_text = train.get("estimator")
    if not isinstance(path_text, str) or not estimators.ESTIMATOR_PATTERN.match(path_text):
        return  # the schema's pattern reports it
    try:
        facts = estimators.describe(path_text)
    except ValueError as exc:
        text, _, fix = str(exc).partition("; ")
        yield _at("E-ESTIMATOR", where.value((*base, "estimator")), (*base, "estimator"), text, fix)
        return
    if facts.open_keywords:
        return
    cls_name = path_text.rsplit(".", 1)[-1]
    for name in params:
        if name not in facts.parameters:
            path = (*base, "params", name)
            close = suggest(name, facts.parameters)
            fix = f"did you mean '{close}'?" if close else f"its parameters: {_choices(sorted(facts.parameters), 12)}"
            yield _at("E-PARAM", where.key(path), path, f"not a parameter of {cls_name}", fix)


def _serving_problems(serving: dict[str, Any], base: tuple[Any, ...], where: Locator) -> Iterator[Problem]:
    instance_type = serving.get("instance_type")
    # the schema's pattern reports a malformed one; a well-formed unknown one would deploy
    # nothing AWS accepts, and cost nothing in the plan
    if isinstance(instance_type, str) and _INSTANCE_TYPE.match(instance_type) and instance_type not in serving_instance_types():
        close = suggest(instance_type, serving_instance_types())
        family = instance_type.split(".")[1]
        sizes = [t.split(".")[2] for t in serving_instance_types() if t.split(".")[1] == family]
        hints = [f"did you mean '{close}'?"] if close else []
        if sizes:
            hints.append(f"ml.{family} sizes: {', '.join(sizes)}")
        fix = " ".join(hints) or "use a SageMaker real-time inference instance type, e.g. 'ml.m5.large'"
        path = (*base, "instance_type")
        yield _at("E-INSTANCE-TYPE", where.value(path), path, f"'{instance_type}' is not an instance type of SageMaker real-time inference", fix)
    autoscaling = serving.get("autoscaling")
    count = serving.get("instance_count")
    if isinstance(autoscaling, dict):
        low, high = autoscaling.get("min"), autoscaling.get("max")
        if _int(low) and _int(high):
            if low > high:
                yield _at("E-AUTOSCALING", where.value((*base, "autoscaling", "min")), (*base, "autoscaling"), f"min ({low}) is greater than max ({high})", "make min ≤ max")
            elif _int(count) and not low <= count <= high:
                yield _at("E-AUTOSCALING", where.value((*base, "instance_count")), (*base, "instance_count"), f"{count} is outside autoscaling min..max ({low}..{high})", f"set instance_count between {low} and {high}")
    if "serverless" in serving:
        for key in ("instance_type", "instance_count", "autoscaling", "canary", "shadow"):
            if key in serving:
                what = "a canary variant" if key == "canary" else "a shadow variant" if key == "shadow" else f"`{key}`"
                yield _clash("E-SERVERLESS", where, (*base, "serverless"), (*base, key), f"{what} cannot be used with serverless", f"remove `{key}`, or remove `serverless`")
        capture = serving.get("data_capture")
        if isinstance(capture, dict) and _is_true(capture.get("enabled")):
            path = (*base, "data_capture", "enabled")
            yield _clash("E-SERVERLESS", where, (*base, "serverless"), path, "serverless endpoints cannot capture data", "remove `data_capture`, or serve on instances", value=True)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _monitor_problems(name: str, monitor: dict[str, Any], models: dict[str, Any], datasets: dict[str, Any], where: Locator) -> Iterator[Problem]:
    base = ("monitors", name)
    metric = monitor.get("metric") if isinstance(monitor.get("metric"), str) else None
    has_model, has_dataset = "model" in monitor, "dataset" in monitor
    target_kind = None
    if has_model and has_dataset:
        yield _clash("E-MONITOR-TARGET", where, (*base, "model"), (*base, "dataset"), "a monitor watches a model or a dataset, not both", "remove `model` or `dataset`", path=base)
    elif not has_model and not has_dataset:
        yield _at("E-MONITOR-TARGET", where.key(base), base, "a monitor needs `model` or `dataset`", "add `model: <name>` or `dataset: <name>`")
    else:
        target_kind = "model" if has_model else "dataset"
        collection = models if has_model else datasets
        ref = monitor.get(target_kind)
        if isinstance(ref, str) and ref not in collection:
            close = suggest(ref, collection)
            fix = f"did you mean '{close}'?" if close else (f"declared {target_kind}s: {_choices(sorted(collection))}" if collection else f"declare it under `{target_kind}s:`")
            yield _at("E-REF", where.value((*base, target_kind)), (*base, target_kind), f"unknown {target_kind} '{ref}'", fix)
    known_metric = metric in MODEL_METRICS or metric in DATASET_METRICS
    if target_kind and known_metric:
        allowed = MODEL_METRICS if target_kind == "model" else DATASET_METRICS
        if metric not in allowed:
            other = "datasets" if target_kind == "model" else "models"
            yield _at("E-METRIC-TARGET", where.value((*base, "metric")), (*base, "metric"), f"metric '{metric}' applies to {other}, not to a {target_kind}", f"use one of: {_choices(list(allowed), 10)}")
            known_metric = False
    if target_kind == "model" and metric == "data_drift":
        model = models.get(monitor.get("model"))
        if isinstance(model, dict):
            serving = _mapping(model.get("serving"))
            capture = _mapping(serving.get("data_capture"))
            if "serverless" in serving:
                yield _at("E-SERVERLESS", where.value((*base, "metric")), (*base, "metric"), f"data_drift needs data capture, which the serverless model '{monitor.get('model')}' cannot do", "serve the model on instances, or remove this monitor")
            elif capture.get("enabled") is False:
                yield _at("E-DRIFT-CAPTURE", where.value((*base, "metric")), (*base, "metric"), f"data_drift needs data capture, which is disabled on model '{monitor.get('model')}'", "enable serving.data_capture, or remove this monitor")
    has_above, has_below = "above" in monitor, "below" in monitor
    if has_above and has_below:
        yield _clash("E-MONITOR-THRESHOLD", where, (*base, "above"), (*base, "below"), "a monitor has `above` or `below`, not both", "keep one of them", path=base)
    elif not has_above and not has_below:
        yield _at("E-MONITOR-THRESHOLD", where.key(base), base, "a monitor needs a threshold", "add `above: <value>` (or `below:` for invocations)")
    elif known_metric and metric is not None:
        side = "above" if has_above else "below"
        value = monitor.get(side)
        if side == "below" and metric not in units.BELOW_METRICS:
            yield _at("E-MONITOR-THRESHOLD", where.key((*base, "below")), (*base, "below"), f"`below` applies only to invocations, not to {metric}", "use `above`")
        elif isinstance(value, (str, int, float)):
            try:
                units.parse_threshold(metric, value)
            except ValueError as exc:
                message, _, fix = str(exc).partition("; ")
                yield _at("E-THRESHOLD", where.value((*base, side)), (*base, side), message, fix)
    period_text, shown = units.monitor_timing(monitor)
    period = _duration(period_text)
    if period is not None:
        if period < 60 or period % 60 or period > MAX_PERIOD_SECONDS:
            yield _at("E-PERIOD", where.value((*base, "period")), (*base, "period"), f"period {period_text!r} must be a whole number of minutes, from 1m to 1d", "use e.g. '1m', '5m' or '1h'")
            period = None
    length = _duration(shown)
    if length is None or not period:
        return
    every = units.format_duration(period)
    limit = units.max_alarm_seconds(period)
    above = None
    if metric == "freshness" and target_kind == "dataset" and known_metric and "above" in monitor:
        # the alarm counts periods without a write: for `above`, then for `for`
        try:
            above = units.parse_threshold(metric, monitor["above"]).value
        except ValueError:
            return  # reported with the threshold
        if above % period:
            divisor = _dividing_period(above)
            fix = f"use a period that divides it, e.g. period: '{divisor}'" if divisor else f"write it as a whole number of periods ({every})"
            yield _at("E-PERIOD", where.value((*base, "above")), (*base, "above"), f"freshness threshold {monitor['above']!r} is not a whole number of periods ({every}): the alarm counts periods without a write", fix)
            above = None
    if length < period or length % period:
        yield _at("E-PERIOD", where.value((*base, "for")), (*base, "for"), f"`for` {shown!r} must be a whole multiple of the period ({every})", f"use e.g. '{units.format_duration(period * 5 if period * 5 <= limit else period)}'")
        return
    subhour = " with periods under 1h" if limit < units.MAX_ALARM_SECONDS else ""
    if metric != "freshness" or target_kind != "dataset":
        if length > limit:
            yield _at("E-PERIOD", where.value((*base, "for")), (*base, "for"), f"`for` {shown!r} is longer than CloudWatch evaluates{subhour}: at most {limit:,} s ({units.format_duration(limit)})", f"use at most '{units.format_duration(limit)}'" + (", or a period of '1h' or more (up to '7d')" if subhour else ""))
        return
    if above is None:
        return
    periods = units.alarm_periods(metric, above, int(period), int(length))
    window = periods * period
    if window > limit:
        spent = f"the freshness alarm needs {periods} periods of {every} without a write ({int(window):,} s: above + for - period); CloudWatch evaluates at most {limit:,} s{subhour}"
        if subhour and above <= units.MAX_ALARM_SECONDS:
            yield _at("E-PERIOD", where.value((*base, "period")), (*base, "period"), spent, "use period: '1h' (and `for` in whole hours, e.g. for: '1h')")
        else:
            yield _at("E-PERIOD", where.value((*base, "for")), (*base, "for"), spent, f"lower `above` or `for`: above + for - period must be at most {units.format_duration(limit)}")


def _dividing_period(seconds: float) -> str | None:
    """The longest of 1d, 1h, 1m that divides ``seconds`` (a freshness threshold), or None."""
    for size in (86400, 3600, 60):
        if seconds % size == 0:
            return units.format_duration(size)
    return None


def _duration(value: Any) -> float | None:
    try:
        return units.parse_duration(value)
    except ValueError:
        return None  # the schema's duration pattern reports it


def _file_problem(reason: str, where: tuple[str, int, int], path: tuple[Any, ...], named: str, spec_dir: Path) -> Problem:
    shown = excerpt(named)
    here = _dir_display(spec_dir)
    if reason == "absolute":
        return _at("E-FILE-OUTSIDE", where, path, f"{shown} is an absolute path", f"write it relative to {here}, inside the project")
    if reason == "outside":
        return _at("E-FILE-OUTSIDE", where, path, f"{shown} resolves outside the project ({here})",
                   "keep the file in the spec's directory or below it (a symlink must point there too)")
    if reason == "not-a-file":
        return _at("E-NOT-A-FILE", where, path, f"{shown} is not a regular file (a directory, pipe or device)", "point it at a data file")
    return _at("E-FILE-MISSING", where, path, f"file {shown} not found", f"the path is relative to {here}")


def _dir_display(spec_dir: Path) -> str:
    shown = display_name(spec_dir)
    return "the current directory" if shown == "." else f"{shown}/"
