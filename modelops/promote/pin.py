"""The pin rewrite: set ``models.<model>.version`` in an overlay and change nothing else.

Example::

    rewrite_pin(Path("stacks/prod.yaml").read_text(), "churn-classifier", "sha256:…")
"""

from __future__ import annotations

import difflib
import io
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from modelops.errors import ApplyError, UsageError
from modelops.files import atomic_write

#: a pin value as written: optionally quoted digest
_PIN_TOKEN = re.compile(r"""(["']?)sha256:[0-9a-f]{64}\1""")


def rewrite_pin(text: str, model: str, digest: str) -> str:
    """The overlay text with ``models.<model>.version`` set to ``digest`` and nothing else changed.

    A round trip through ruamel.yaml keeps comments, key order, quoting and indentation;
    the result is then checked to differ from ``text`` only where the pin lives (one
    changed line, or only added lines when there was no pin). When the dumper would also
    normalise something else (odd spacing, document markers), the pin is instead spliced
    into the original text at the position ruamel.yaml parsed it from. A missing path is
    created.

    Example::

        rewrite_pin("models:\\n  churn:\\n    version: sha256:aa…\\n", "churn", "sha256:bb…")
        # 'models:\\n  churn:\\n    version: sha256:bb…\\n'
    """
    _, indent, block_seq_indent = load_yaml_guess_indent(text)
    indent = indent or 2
    block_seq_indent = block_seq_indent or 0
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 1 << 16  # never re-wrap a long line the user wrote
    yaml.indent(mapping=indent, sequence=indent + block_seq_indent, offset=block_seq_indent)
    data = yaml.load(text)
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        raise UsageError("the overlay is not a mapping; it must be a YAML mapping such as `{}`")

    def block(node: CommentedMap) -> CommentedMap:
        # `{}` written in flow style would otherwise grow into one long flow line
        if not node:
            node.fa.set_block_style()
        return node

    block(data)
    models = data.get("models")
    if models is None:
        models = data["models"] = CommentedMap()
    if not isinstance(models, CommentedMap):
        raise UsageError("models: expected a mapping in the overlay")
    block(models)
    entry = models.get(model)
    if entry is None:
        entry = models[model] = CommentedMap()
    if not isinstance(entry, CommentedMap):
        raise UsageError(f"models.{model}: expected a mapping in the overlay")
    block(entry)
    old = entry.get("version")
    if isinstance(old, SingleQuotedScalarString):
        value: str = SingleQuotedScalarString(digest)
    elif old is not None and not isinstance(old, DoubleQuotedScalarString):
        value = digest
    else:
        value = DoubleQuotedScalarString(digest)
    if old is None:
        # first key of the model: the pin is the first thing a reviewer sees
        entry.insert(0, "version", value)
    else:
        entry["version"] = value
    out = io.StringIO()
    yaml.dump(data, out)
    new = out.getvalue()
    if _is_minimal(text, new, pinned_before=old is not None):
        return new
    spliced = _splice(text, models, entry, model, digest, old, indent)
    if spliced is not None and _is_minimal(text, spliced, pinned_before=old is not None):
        return spliced
    removed, added = _changed_lines(text, new)
    raise ApplyError(
        f"rewriting the pin of {model} would change other lines of the overlay (-{len(removed)} +{len(added)}); "
        f'set models.{model}.version: "{digest}" by hand'
    )


def _splice(
    text: str, models: Any, entry: Any, model: str, digest: str, old: Any, indent: int
) -> str | None:
    """``text`` with the pin replaced (or inserted) at the line ruamel.yaml parsed; None if not possible."""
    lines = text.splitlines(keepends=True)
    if old is not None:
        line, col = entry.lc.value("version")
        match = _PIN_TOKEN.match(lines[line], col)
        if match is None:
            return None
        quote = match.group(1)
        lines[line] = lines[line][: match.start()] + f"{quote}{digest}{quote}" + lines[line][match.end() :]
        return "".join(lines)
    # insertion into an existing block mapping: before its first key, at that key's column
    if len(entry) > 1 and not entry.fa.flow_style():
        first = next(k for k in entry if k != "version")
        line, col = entry.lc.key(first)
        lines.insert(line, f'{" " * col}version: "{digest}"\n')
        return "".join(lines)
    if len(entry) == 1 and len(models) > 1 and not models.fa.flow_style():
        first = next(k for k in models if k != model)
        line, col = models.lc.key(first)
        lines[line:line] = [f"{' ' * col}{model}:\n", f'{" " * (col + indent)}version: "{digest}"\n']
        return "".join(lines)
    return None


def _is_minimal(old: str, new: str, *, pinned_before: bool) -> bool:
    removed, added = _changed_lines(old, new)
    if pinned_before:
        return len(removed) == 1 and len(added) == 1
    # `{}` may become block style: that line alone may go
    return all(line.strip() == "{}" for line in removed) and 1 <= len(added) <= 3


def _changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        (removed if line.startswith("-") else added).append(line[1:])
    return removed, added


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path``'s content with ``text`` whole, keeping its permissions."""
    atomic_write(path, text.encode("utf-8"), mode=path.stat().st_mode & 0o777)


def remove_canary(text: str, model: str) -> str:
    """The overlay text without ``models.<model>.serving.canary`` (and a ``serving`` it leaves empty).

    A round trip through ruamel.yaml keeps comments, key order and quoting; the result is
    checked to mean exactly the overlay minus the canary. Raises
    :class:`~modelops.errors.UsageError` when the overlay sets no canary of ``model``.

    Example::

        remove_canary("models:\\n  churn:\\n    serving:\\n      canary: {version: sha256:aa…}\\n", "churn")
        # 'models:\\n  churn: {}\\n'
    """
    _, indent, block_seq_indent = load_yaml_guess_indent(text)
    indent = indent or 2
    block_seq_indent = block_seq_indent or 0
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 1 << 16
    yaml.indent(mapping=indent, sequence=indent + block_seq_indent, offset=block_seq_indent)
    data = yaml.load(text)
    serving = _get(_get(_get(data, "models"), model), "serving")
    if not isinstance(serving, CommentedMap) or "canary" not in serving:
        raise UsageError(f"models.{model}.serving.canary: not set in this overlay")
    del serving["canary"]
    if not serving:
        del data["models"][model]["serving"]
    out = io.StringIO()
    yaml.dump(data, out)
    new = out.getvalue()
    safe = YAML(typ="safe")
    want = safe.load(text)
    del want["models"][model]["serving"]["canary"]
    if not want["models"][model]["serving"]:
        del want["models"][model]["serving"]
    if safe.load(new) != want:
        raise ApplyError(f"removing the canary of {model} would change other settings of the overlay; "
                         f"remove models.{model}.serving.canary by hand")
    return new


def _get(node: Any, key: str) -> Any:
    return node.get(key) if isinstance(node, CommentedMap) else None
