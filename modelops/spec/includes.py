"""The files a spec is made of: the root spec and the team files it includes.

The root spec may ``include:`` team files, by path or glob pattern relative to its directory::

    include: [teams/*.yaml]

Each included file holds the ``owner``, notifications, datasets, models and monitors of one
team (``schemas/team.schema.json``). Included files obey the rules of the data files a spec
names (:func:`~modelops.spec.datafiles.project_file`): inside the project (the root spec's
directory, after symlinks), regular files; a pattern never goes up (``..``) and matches
within one directory level per ``/`` (no ``**``). At most :data:`MAX_INCLUDED_FILES` files
and :data:`MAX_TOTAL_BYTES` bytes in all (root spec included) are read, each file within
the loader's own limits. A pattern that matches nothing is an error: a team file that went
missing would otherwise delete the team's models.

Names are unique across all files (a second declaration is an error naming both places);
references cross files freely; the entities of a team file belong to its ``owner``.

Example::

    files = load_spec_files("modelops.yaml")
    files.data["models"]                                  # the models of every file
    files.declared_in[("models", "fraud-scorer")].file    # 'teams/fraud.yaml'
    files.file_owners[("models", "fraud-scorer")]         # 'fraud-team@example.com'
"""

from __future__ import annotations

import glob
import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.errors import Problem, SpecError, excerpt
from modelops.spec import resolved as r
from modelops.spec.datafiles import project_file, resolved_path
from modelops.spec.loader import LoadedDocument, display_name, load_yaml
from modelops.spec.problems import dotted, Locator
from modelops.spec.schema import schema, TEAM_KEYS
from modelops.spec.schema_errors import schema_problems

__all__ = ["MAX_INCLUDED_FILES", "MAX_TOTAL_BYTES", "SpecFiles", "included_files", "load_spec_files"]

#: at most this many included files
MAX_INCLUDED_FILES = 256
#: the root spec and its included files together: at most this many bytes
MAX_TOTAL_BYTES = 32 * 1024 * 1024

_GLOB = re.compile(r"[*?\[]")
#: the named collections, each unique across files (``datasets``, ..., ``notifications``)
_KINDS = tuple(k.key for k in r.ENTITY_KINDS)
_SINGULAR = {k.key: k.singular for k in r.ENTITY_KINDS}
#: what a file's ``owner`` owns (notification channels are the project's)
_OWNED = ("datasets", "models", "monitors")


@dataclass
class SpecFiles:
    """A root spec and the team files it includes, loaded, with their collections combined.

    ``data`` is the root spec's data with each named collection holding every file's
    entries (the root's first, then the included files in order); ``declared_in`` names
    the file of each ``(kind, name)``; ``file_owners`` the ``owner`` of the team file that
    declares it, when that file sets one; ``problems`` what is wrong with the includes,
    the team files and duplicate names (the root spec's own schema is checked elsewhere).
    """

    root: LoadedDocument
    teams: list[LoadedDocument] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    declared_in: dict[tuple[str, str], LoadedDocument] = field(default_factory=dict)
    file_owners: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def docs(self) -> list[LoadedDocument]:
        """Every file, the root spec first: the layers a position is looked up in."""
        return [self.root, *self.teams]

    def owner_of(self, doc: LoadedDocument) -> str | None:
        """Who owns ``doc``: a team file's ``owner``, else (and for the root) the project's."""
        own = doc.data.get("owner") if doc is not self.root else None
        project = self.root.data.get("owner")
        return own if isinstance(own, str) else project if isinstance(project, str) else None


def _problem(code: str, where: tuple[str, int, int], path: tuple[Any, ...], message: str, fix: str) -> Problem:
    return Problem(code, where[0], where[1], where[2], dotted(path), message, fix)


def included_files(root: LoadedDocument) -> tuple[list[Path], list[Problem]]:
    """The files ``root`` includes (absolute, as named, each once, in pattern then name
    order), and what is wrong with its ``include`` list. A malformed list is the schema's
    to report: it includes nothing here.

    Example::

        files, problems = included_files(load_yaml("modelops.yaml"))
    """
    patterns = root.data.get("include")
    if not isinstance(patterns, list):
        return [], []
    spec_dir = Path(root.path).parent
    here = "the spec's directory" if display_name(spec_dir) == "." else f"{display_name(spec_dir)}/"
    stacks = resolved_path(str(spec_dir / "stacks"))
    myself = resolved_path(root.path)
    files: list[Path] = []
    seen: set[Path] = set()
    problems: list[Problem] = []
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern:
            continue
        path = ("include", index)
        at = root.file, *root.value_position(path)
        shown = excerpt(pattern)

        def fail(code: str, message: str, fix: str) -> None:
            problems.append(_problem(code, at, path, message, fix))  # noqa: B023 - used at once

        if os.path.isabs(pattern):
            fail("E-INCLUDE-OUTSIDE", f"{shown} is an absolute path", f"write it relative to {here}, inside the project")
            continue
        if ".." in pattern.replace("\\", "/").split("/"):
            fail("E-INCLUDE-OUTSIDE", f"{shown} goes up out of {here} (`..`)", "include files of the project only: in the spec's directory or below it")
            continue
        if "**" in pattern:
            fail("E-INCLUDE-PATTERN", f"{shown}: `**` is not supported", "name each directory level, e.g. `teams/*.yaml` or `teams/*/*.yaml`")
            continue
        if _GLOB.search(pattern):
            # bounded: a pattern over a large tree stops one past the limit
            found = itertools.islice(glob.iglob(pattern, root_dir=spec_dir), MAX_INCLUDED_FILES + 1)
            names = sorted(name for name in found if not (spec_dir / name).is_dir())
            if not names:
                fail("E-INCLUDE-MISSING", f"{shown} matches no file (relative to {here})",
                     "fix the pattern, or remove it: the models of a team file that is not included are not deployed")
                continue
        else:
            names = [pattern]
        for name in names:
            resolved, reason = project_file(spec_dir, name)
            if resolved is None:
                if reason == "outside":
                    fail("E-INCLUDE-OUTSIDE", f"{excerpt(name)} resolves outside the project ({here})",
                         "keep team files in the spec's directory or below it (a symlink must point there too)")
                elif reason == "not-a-file":
                    fail("E-NOT-A-FILE", f"{excerpt(name)} is not a regular file (a directory, pipe or device)", "include a team file")
                else:
                    fail("E-INCLUDE-MISSING", f"file {excerpt(name)} not found", f"the path is relative to {here}")
                continue
            if resolved == myself:
                if name == pattern:
                    fail("E-INCLUDE-SELF", f"{shown} is this spec itself", "include team files only")
                continue  # a pattern such as `*.yaml` may match the root spec: it is read once
            if resolved.parent == stacks:
                fail("E-INCLUDE-OVERLAY", f"{excerpt(name)} is in stacks/ (environment overlays and stack configs), not a team file",
                     "keep team files elsewhere, e.g. teams/<team>.yaml")
                continue
            if resolved in seen:
                continue
            seen.add(resolved)
            files.append(Path(os.path.abspath(spec_dir / name)))
            if len(files) > MAX_INCLUDED_FILES:
                fail("E-INCLUDE-LIMIT", f"includes more than {MAX_INCLUDED_FILES} files", "merge team files: one per team")
                return files[:MAX_INCLUDED_FILES], problems
    return files, problems


def load_spec_files(spec_path: str | os.PathLike[str]) -> SpecFiles:
    """Load the root spec and every file it includes; raises SpecError when the root spec
    cannot be loaded. Problems of the includes and the team files are in ``problems``."""
    root = load_yaml(spec_path, strict=False)
    files, problems = included_files(root)
    result = SpecFiles(root=root, problems=problems)
    if files:
        total = _total_bytes(root, files)
        if total > MAX_TOTAL_BYTES:
            at = root.file, *root.position(("include",))
            problems.append(_problem("E-TOO-LARGE", at, ("include",), f"the spec and its included files are {total:,} bytes, "
                                     f"more than the {MAX_TOTAL_BYTES:,}-byte limit", "remove unused parts, or split the project"))
            files = []
    for file in files:
        try:
            doc = load_yaml(file, strict=False)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(doc.problems)
        problems.extend(_team_problems(doc))
        result.teams.append(doc)
    _combine(result)
    return result


def _total_bytes(root: LoadedDocument, files: list[Path]) -> int:
    total = 0
    for path in (Path(root.path), *files):
        try:
            total += path.stat().st_size
        except OSError:
            pass  # the loader says why it cannot read it
    return total


def _team_problems(doc: LoadedDocument) -> list[Problem]:
    """The team file against its schema; a key only the root spec may set is named as such."""
    problems = []
    root_only = set(schema()["properties"]) - set(TEAM_KEYS)
    data = doc.data
    misplaced = [key for key in data if key in root_only]
    for key in misplaced:
        line, column = doc.positions[(key,)]
        problems.append(Problem("E-TEAM-KEY", doc.file, line, column, key, f"`{key}` is set in the root spec only, not in an included team file",
                                "move it to the root spec (modelops.yaml), or remove it"))
    if misplaced:
        data = {key: value for key, value in data.items() if key not in misplaced}
    problems.extend(schema_problems(data, Locator([doc]), kind="team"))
    return problems


def _combine(files: SpecFiles) -> None:
    """Each named collection of every file into ``files.data``; a name declared twice is a
    problem at the second place, naming the first."""
    root = files.root
    data = dict(root.data) if files.teams else root.data
    for kind in _KINDS:
        combined: dict[str, Any] = {}
        contributed = False
        for doc in files.docs:
            entries = doc.data.get(kind)
            if not isinstance(entries, dict):
                continue
            contributed = True
            for name, body in entries.items():
                first = files.declared_in.get((kind, name))
                if first is not None:
                    line, column = doc.position((kind, name))
                    first_line, first_column = first.position((kind, name))
                    files.problems.append(Problem(
                        "E-DUPLICATE-NAME", doc.file, line, column, f"{kind}.{name}",
                        f"{_SINGULAR[kind]} '{name}' is already declared at {first.file}:{first_line}:{first_column}",
                        "names are unique across the spec and the files it includes: rename one, or remove one"))
                    continue
                files.declared_in[(kind, name)] = doc
                combined[name] = body
            if doc is not root and kind in _OWNED and isinstance(doc.data.get("owner"), str):
                for name in entries:
                    if files.declared_in.get((kind, name)) is doc:
                        files.file_owners[(kind, name)] = doc.data["owner"]
        if contributed and files.teams:
            data[kind] = combined
    files.data = data
