"""Load one YAML file into plain data with the source position of every node.

PyYAML's loaders silently keep the last of two duplicate keys and happily expand an alias
bomb; this loader composes the document with libyaml (``yaml.CSafeLoader`` when available),
then builds plain dicts/lists/scalars itself in one pass, rejecting what a spec must not
contain. Every problem is a :class:`~modelops.errors.Problem` at ``FILE:LINE:COL``.

Limits (documented in ``docs/spec.md``):

* :data:`MAX_BYTES` — a spec or overlay larger than 8 MiB is refused before parsing;
* :data:`MAX_NODES` — at most 1,000,000 nodes after alias expansion (alias bombs);
* :data:`MAX_ALIAS_NODES` — aliases may expand to at most 100,000 nodes in total;
* :data:`MAX_DEPTH` — at most 64 levels of nesting.

Example::

    doc = load_yaml("modelops.yaml")
    doc.data["models"]["churn-classifier"]["serving"]["instance_count"]   # 1
    doc.positions[("models", "churn-classifier", "serving")]              # (29, 5)
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelops.errors import Problem, SpecError, excerpt
from modelops.perf import no_gc

__all__ = [
    "LoadedDocument",
    "MAX_ALIAS_NODES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "display_name",
    "load_yaml",
]

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_ALIAS_NODES = 100_000
MAX_DEPTH = 64

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_constructor = yaml.constructor.SafeConstructor()

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALARS = {
    _INT: _constructor.construct_yaml_int,
    _FLOAT: _constructor.construct_yaml_float,
    _BOOL: _constructor.construct_yaml_bool,
    _NULL: _constructor.construct_yaml_null,
}
# C0 controls other than tab/newline/carriage return: what a text spec never contains
_BINARY = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")

Path_ = tuple[Any, ...]


@dataclass
class LoadedDocument:
    """One parsed YAML file.

    ``positions`` maps a path tuple (``("models", "churn", "serving")``) to the 1-based
    (line, column) of its KEY (or of the item, for list items); ``value_positions`` to the
    position of its value. ``()`` is the document itself. ``problems`` holds non-fatal
    problems (duplicate keys, unsupported tags) when loaded with ``strict=False``.
    """

    file: str
    path: str
    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    value_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def position(self, path: Path_) -> tuple[int, int]:
        """The position of ``path``, or of its nearest ancestor present in the file."""
        path = tuple(path)
        while path:
            found = self.positions.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def value_position(self, path: Path_) -> tuple[int, int]:
        """The position of the value at ``path`` (falls back like :meth:`position`)."""
        found = self.value_positions.get(tuple(path))
        return found if found is not None else self.position(path)


def display_name(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the current directory when it lies below it, else absolute."""
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:
        return absolute
    return absolute if relative.startswith("..") else relative


def _problem(code: str, file: str, line: int, column: int, message: str, fix: str = "", path: str = "") -> Problem:
    return Problem(code, file, line, column, path, message, fix)


def _read(path: Path, file: str) -> str:
    """The file's text, or a SpecError saying why it cannot be a spec."""

    def fail(code: str, message: str, fix: str, line: int = 1, column: int = 1) -> SpecError:
        return SpecError([_problem(code, file, line, column, message, fix)])

    if path.is_dir():
        raise fail("E-NOT-A-FILE", "is a directory, not a spec file", f"pass the spec file, e.g. {file.rstrip('/')}/modelops.yaml")
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # a pipe or device: reading could wait forever (a FIFO with no writer) or never end
            raise fail("E-NOT-A-FILE", "is not a regular file (a pipe, socket or device)",
                       "save the spec to a file and pass that file")
        size = info.st_size
        if size > MAX_BYTES:
            raise fail("E-TOO-LARGE", f"file is {size:,} bytes, larger than the {MAX_BYTES:,}-byte limit", "split the spec or remove unused parts")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise fail("E-NOT-FOUND", "no such file", "check the path, or run from the directory holding modelops.yaml") from None
    except OSError as exc:
        raise fail("E-UNREADABLE", f"cannot be read ({exc.strerror or exc})", "check the file's permissions") from None
    if len(raw) > MAX_BYTES:  # grew after stat, or a special file
        raise fail("E-TOO-LARGE", f"file is larger than the {MAX_BYTES:,}-byte limit", "split the spec or remove unused parts")
    binary = _BINARY.search(raw)
    if binary is not None:
        line, column = _line_col(raw, binary.start())
        raise fail("E-BINARY", "binary file (control byte 0x%02x), not a YAML spec" % raw[binary.start()], "pass the YAML spec file", line, column)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_col(raw, exc.start)
        raise fail("E-ENCODING", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})", "save the file as UTF-8", line, column) from None
    return text.removeprefix("\ufeff")


def _line_col(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, len(raw[line_start:offset].decode("utf-8", "replace")) + 1


class _Builder:
    """Turns composed nodes into plain data, recording positions; one instance per file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.value_positions: dict[Path_, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self.nodes = 0
        self.aliases: set[int] = set()
        self.alias_uses = 0
        self.seen: set[int] = set()

    def fatal(self, code: str, node: yaml.Node, message: str, fix: str) -> SpecError:
        mark = node.start_mark
        return SpecError([_problem(code, self.file, mark.line + 1, mark.column + 1, message, fix)])

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fatal("E-ALIAS-BOMB", node, f"document expands to more than {MAX_NODES:,} nodes (alias bomb?)", "write the data out instead of nesting aliases")
        if depth > MAX_DEPTH:
            raise self.fatal("E-TOO-DEEP", node, f"nested more than {MAX_DEPTH} levels deep", "flatten the document")
        ident = id(node)
        if ident in self.seen:
            # a node met twice comes from an alias: what aliases expand to is bounded
            self.alias_uses += 1
            if self.alias_uses > MAX_ALIAS_NODES:
                raise self.fatal("E-ALIAS-BOMB", node, f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes (alias bomb?)", "write the data out instead of nesting aliases")
        else:
            self.seen.add(ident)
        mark = node.start_mark
        self.value_positions[path] = (mark.line + 1, mark.column + 1)
        cls = node.__class__
        if cls is yaml.ScalarNode:
            return self.scalar(node, path)
        if cls is yaml.MappingNode:
            return self.mapping(node, path, depth)
        if node.tag != _SEQ:
            self.unsupported(node, path)
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            item_mark = item.start_mark
            self.positions[child] = (item_mark.line + 1, item_mark.column + 1)
            items.append(self.build(item, child, depth + 1))
        return items

    def scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _TIMESTAMP:
            # dates stay text: the spec language has no date type, and JSON output stays plain
            return node.value
        construct = _SCALARS.get(tag)
        if construct is None:
            # reported once here; the text stands in so later checks see a plain value
            self.unsupported(node, path)
            return node.value
        try:
            return construct(node)
        except (ValueError, TypeError):
            mark = node.start_mark
            self.problems.append(
                _problem("E-YAML-VALUE", self.file, mark.line + 1, mark.column + 1, f"{excerpt(node.value)} is not a valid {tag.rsplit(':', 1)[-1]}", "fix the value or quote it", _dotted(path))
            )
            return node.value

    def unsupported(self, node: yaml.Node, path: Path_) -> None:
        mark = node.start_mark
        self.problems.append(
            _problem("E-YAML-TAG", self.file, mark.line + 1, mark.column + 1, f"unsupported YAML tag {node.tag!r}", "remove the tag: a spec holds only mappings, lists, strings, numbers and booleans", _dotted(path))
        )
        return None

    def mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[Any, Any]:
        if node.tag != _MAP:
            self.unsupported(node, path)
        result: dict[Any, Any] = {}
        first: dict[Any, tuple[int, int]] = {}
        merged: set[Any] = set()
        merge_at: tuple[int, int] | None = None
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                kmark = key_node.start_mark
                if merge_at is not None:
                    # a second `<<` would silently win over the first: as for any repeated key
                    self.problems.append(
                        _problem("E-DUPLICATE-KEY", self.file, kmark.line + 1, kmark.column + 1, f"duplicate key (first defined at line {merge_at[0]}, column {merge_at[1]})",
                                 "merge several anchors with one key: `<<: [*first, *second]`", _dotted((*path, "<<")))
                    )
                    continue
                merge_at = (kmark.line + 1, kmark.column + 1)
                self.merge(value_node, path, depth, result, merged)
                continue
            if key_node.__class__ is not yaml.ScalarNode:
                mark = key_node.start_mark
                self.problems.append(_problem("E-YAML-KEY", self.file, mark.line + 1, mark.column + 1, "a key must be a plain string, not a list or mapping", "write the key as text", _dotted(path)))
                continue
            key = self.scalar(key_node, path)
            if key.__class__ is not str:
                # YAML 1.1 reads `yes:`/`1:` as booleans/numbers; the spec only has text keys
                key = key_node.value
            kmark = key_node.start_mark
            where = (kmark.line + 1, kmark.column + 1)
            if key in first:
                line, column = first[key]
                self.problems.append(
                    _problem("E-DUPLICATE-KEY", self.file, where[0], where[1], f"duplicate key (first defined at line {line}, column {column})", "remove one of them", _dotted((*path, key)))
                )
                continue
            first[key] = where
            merged.discard(key)
            child = (*path, key)
            self.positions[child] = where
            result[key] = self.build(value_node, child, depth + 1)
        return result

    def merge(self, value_node: yaml.Node, path: Path_, depth: int, result: dict[Any, Any], merged: set[Any]) -> None:
        """``<<: *base`` (or a list of them): keys not set explicitly come from the anchors."""
        sources = value_node.value if value_node.__class__ is yaml.SequenceNode else [value_node]
        for source in sources:
            if source.__class__ is not yaml.MappingNode:
                mark = source.start_mark
                self.problems.append(_problem("E-YAML-MERGE", self.file, mark.line + 1, mark.column + 1, "`<<` merges mappings only", "merge an anchored mapping: `<<: *name`", _dotted(path)))
                continue
            probe = _Builder(self.file)
            probe.nodes, probe.alias_uses, probe.seen = self.nodes, self.alias_uses, self.seen
            data = probe.mapping(source, path, depth + 1)
            self.nodes, self.alias_uses = probe.nodes, probe.alias_uses
            self.problems.extend(probe.problems)
            for key, value in data.items():
                # explicit keys win, then the anchors in their order (YAML: earlier ones override later)
                if key not in result:
                    result[key] = value
                    merged.add(key)
            for child, where in probe.positions.items():
                self.positions.setdefault(child, where)
            for child, where in probe.value_positions.items():
                self.value_positions.setdefault(child, where)


def _dotted(path: Path_) -> str:
    return ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in path).replace(".[", "[")


def load_yaml(path: str | os.PathLike[str], *, strict: bool = True, allow_empty: bool = False) -> LoadedDocument:
    """Parse one YAML file into plain data plus the position of every key and value.

    Raises :class:`~modelops.errors.SpecError` for a file that cannot be a spec: missing,
    a directory, unreadable, too large, binary, not UTF-8, a YAML syntax error, an alias
    bomb, an empty file (unless ``allow_empty``; then ``data`` is ``{}``) and, when
    ``strict``, duplicate keys or unsupported tags (otherwise those are in ``problems``).

    Example::

        doc = load_yaml("stacks/prod.yaml")
        doc.positions[("models", "churn-classifier")]   # (5, 3)
    """
    file = display_name(path)
    absolute = Path(os.path.abspath(path))
    text = _read(absolute, file)
    with no_gc():
        return _parse(text, file, absolute, strict=strict, allow_empty=allow_empty)


def _parse(text: str, file: str, absolute: Path, *, strict: bool, allow_empty: bool) -> LoadedDocument:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        if mark is not None and (text[mark.index: mark.index + 1] == "\t" or "tab character" in message):
            # the parser names a tab only in some places ("cannot start any token" elsewhere)
            raise SpecError([_problem("E-YAML-TAB", file, line, column, "YAML syntax error: a tab character; YAML indents with spaces only",
                                      "replace the tab with spaces")]) from None
        raise SpecError([_problem("E-YAML-SYNTAX", file, line, column, f"YAML syntax error: {message}", "fix the YAML at this position")]) from None
    except yaml.reader.ReaderError as exc:
        # a character YAML does not allow (a control character): its position in the text
        at = max(0, min(exc.position, len(text)))
        line, column = text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        raise SpecError([_problem("E-YAML-SYNTAX", file, line, column,
                                  f"YAML syntax error: unacceptable character #x{char:04x}: {exc.reason}",
                                  "remove the character or write it as an escape in a quoted string")]) from None
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())  # one line, whatever the parser's layout
        raise SpecError([_problem("E-YAML-SYNTAX", file, 1, 1, f"YAML syntax error: {message}", "fix the YAML")]) from None
    except RecursionError:
        raise SpecError([_problem("E-TOO-DEEP", file, 1, 1, "nested too deeply to parse", "flatten the document")]) from None
    if node is None:
        if allow_empty:
            return LoadedDocument(file, str(absolute), {}, {(): (1, 1)}, {(): (1, 1)})
        raise SpecError([_problem("E-EMPTY", file, 1, 1, "empty file", "start the spec with `apiVersion: modelops/v1`")])
    builder = _Builder(file)
    builder.positions[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
    data = builder.build(node, (), 0)
    if not isinstance(data, dict):
        kind = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(type(data), "null")
        mark = node.start_mark
        raise SpecError([_problem("E-TOP-LEVEL", file, mark.line + 1, mark.column + 1, f"the top level must be a mapping of keys, not {kind}", "start the file with `apiVersion: modelops/v1`" if not allow_empty else "write the overlay as keys, e.g. `protect: true`, or `{}`")])
    if strict and builder.problems:
        raise SpecError(builder.problems)
    return LoadedDocument(file, str(absolute), data, builder.positions, builder.value_positions, builder.problems)
