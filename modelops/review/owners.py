"""Who owns what: each file of a spec and each entity, and whether CODEOWNERS routes the
review of each file to its owner.

A file's owner: an included team file's ``owner`` (else the project's); an environment
overlay's ``owner`` when it sets one (it is that environment's project owner), else the
project's; the root spec's is the project's. An entity's owner: its own ``owner``, else its
file's (:mod:`modelops.spec.includes`). CODEOWNERS routes files, not entities: an entity that
names an owner of its own is routed with its file.

CODEOWNERS is read as GitHub reads it: ``pattern owner…`` lines, ``#`` comments, the last
matching pattern wins; a pattern starting with or containing ``/`` is relative to the
repository root, one without matches at any depth; ``*`` stays within a directory, ``**``
crosses them; a pattern naming a directory (``teams/``) covers everything below it, one
whose last part is a wildcard (``teams/*``) only that directory's files.

Example::

    owned = ownership("modelops.yaml")
    [(f.relative, f.owner) for f in owned.files]     # [('modelops.yaml', 'ml-platform@…'), …]
    check_codeowners(owned, Path(".github/CODEOWNERS"))   # [] when every file is routed
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.errors import Problem, SpecError, UsageError
from modelops.files import atomic_write
from modelops.spec.envs import list_environments, overlay_path, validate
from modelops.spec.includes import load_spec_files
from modelops.spec.loader import display_name, load_yaml
from modelops.spec.resolved import ENTITY_KINDS

__all__ = ["BEGIN", "END", "OwnedFile", "Ownership", "check_codeowners", "codeowners_lines", "ownership",
           "repository_root", "write_codeowners"]

#: the lines ``--write`` manages in a CODEOWNERS file are between these two
BEGIN = "# BEGIN modelops owners: written by `modelops owners --write`; change the owners in the spec, not here"
END = "# END modelops owners"
_BEGIN_MARK = "# BEGIN modelops owners"
#: CODEOWNERS larger than this is not GitHub's (it ignores files over 3 MB)
MAX_CODEOWNERS_BYTES = 3 * 1024 * 1024
_TOKEN = re.compile(r"(?:\\.|\S)+")
_KINDS = tuple(k.key for k in ENTITY_KINDS)


@dataclass(frozen=True)
class OwnedFile:
    """One file of the spec: the root spec, an included team file or an environment overlay."""

    path: Path
    #: the path relative to the spec's directory (``teams/fraud.yaml``)
    relative: str
    #: ``spec``, ``team`` or ``overlay``
    role: str
    owner: str
    #: the names each collection of this file declares (overlays declare nothing)
    declares: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the environment of an overlay
    environment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"file": self.relative, "role": self.role, "owner": self.owner}
        if self.environment is not None:
            data["environment"] = self.environment
        data.update({kind: list(names) for kind, names in self.declares.items()})
        return data


@dataclass(frozen=True)
class Ownership:
    """The owners of a spec's files and entities (``(kind, name)`` → (owner, file))."""

    spec: Path
    project_owner: str
    files: tuple[OwnedFile, ...]
    entities: dict[tuple[str, str], tuple[str, OwnedFile]]

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        return {
            "spec": display_name(self.spec),
            "owner": self.project_owner,
            "files": [f.to_dict() for f in self.files],
            "entities": [{"kind": kind, "name": name, "owner": owner, "file": file.relative}
                         for (kind, name), (owner, file) in self.entities.items()],
            "codeowners": codeowners_lines(self, root or repository_root(self.spec.parent)),
        }


def ownership(spec_path: str | os.PathLike[str]) -> Ownership:
    """The owners of every file and entity of a spec; raises SpecError when it is invalid.

    Example::

        ownership("modelops.yaml").entities[("models", "churn-classifier")][0]   # 'ml-platform@example.com'
    """
    problems = validate(spec_path)
    if problems:
        raise SpecError(problems)
    spec = Path(os.path.abspath(spec_path))
    files = load_spec_files(spec)
    project_owner = files.root.data["owner"]
    spec_dir = spec.parent
    owned: list[OwnedFile] = []
    entities: dict[tuple[str, str], tuple[str, OwnedFile]] = {}
    for doc in files.docs:
        declares = {kind: tuple(doc.data[kind]) for kind in _KINDS if isinstance(doc.data.get(kind), dict) and doc.data[kind]}
        item = OwnedFile(Path(doc.path), os.path.relpath(doc.path, spec_dir), "spec" if doc is files.root else "team",
                         files.owner_of(doc) or project_owner, declares)
        owned.append(item)
        for kind in ("datasets", "models", "monitors"):
            for name, body in (doc.data.get(kind) or {}).items():
                if files.declared_in.get((kind, name)) is doc:
                    own = body.get("owner") if isinstance(body, dict) else None
                    entities[(kind, name)] = (own if isinstance(own, str) else item.owner, item)
    for env in list_environments(spec):
        overlay = overlay_path(spec, env)
        if overlay is None:
            continue
        data = load_yaml(overlay, strict=False, allow_empty=True).data
        owner = data.get("owner") if isinstance(data.get("owner"), str) else project_owner
        owned.append(OwnedFile(overlay, os.path.relpath(overlay, spec_dir), "overlay", owner, {}, env))
    return Ownership(spec, project_owner, tuple(owned), entities)


def repository_root(start: Path) -> Path:
    """The root of the git work tree holding ``start`` (the nearest directory with ``.git``),
    else ``start`` itself: where CODEOWNERS patterns are anchored."""
    here = start.resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists():
            return directory
    return here


def _root_of(codeowners: Path) -> Path:
    """The repository a CODEOWNERS file routes: GitHub reads it in ``.github/``, the root or ``docs/``."""
    folder = codeowners.resolve().parent
    return folder.parent if folder.name in (".github", "docs") else folder


def _escape(path: str) -> str:
    return re.sub(r"([\s#\\])", r"\\\1", path)


def codeowners_lines(owned: Ownership, root: Path) -> list[str]:
    """One anchored CODEOWNERS line per file of the spec, for a repository rooted at ``root``."""
    lines = []
    for item in owned.files:
        relative = os.path.relpath(item.path, root)
        if relative.startswith(".."):
            raise UsageError(f"{display_name(item.path)} is outside the repository {display_name(root)}/ that CODEOWNERS routes")
        lines.append(f"/{_escape(Path(relative).as_posix())} {item.owner}")
    return lines


@dataclass(frozen=True)
class _Rule:
    line: int
    pattern: str
    owners: tuple[str, ...]
    regex: re.Pattern[str]


def _regex(pattern: str) -> re.Pattern[str]:
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    directory = pattern.endswith("/")
    out, index = [], 0
    while index < len(body):
        if body.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif body.startswith("**", index):
            out.append(".*")
            index += 2
        elif body[index] == "*":
            out.append("[^/]*")
            index += 1
        elif body[index] == "?":
            out.append("[^/]")
            index += 1
        elif body[index] == "\\" and index + 1 < len(body):
            out.append(re.escape(body[index + 1]))
            index += 2
        else:
            out.append(re.escape(body[index]))
            index += 1
    last = body.rsplit("/", 1)[-1]
    # `teams/` covers everything below it; `teams/*` only the files directly in it (GitHub's rule)
    below = "/.*" if directory else "" if ("*" in last or "?" in last) else "(?:/.*)?"
    return re.compile(("" if anchored else "(?:.*/)?") + "".join(out) + below)


def _rules(text: str) -> list[_Rule]:
    rules = []
    for number, raw in enumerate(text.splitlines(), 1):
        tokens = _TOKEN.findall(raw)
        if not tokens or tokens[0].startswith("#"):
            continue
        owners = []
        for token in tokens[1:]:
            if token.startswith("#"):
                break  # a comment after the owners
            owners.append(token)
        rules.append(_Rule(number, tokens[0], tuple(owners), _regex(tokens[0])))
    return rules


def _read(codeowners: Path) -> str:
    try:
        size = codeowners.stat().st_size
        if size > MAX_CODEOWNERS_BYTES:
            raise UsageError(f"{display_name(codeowners)}: {size:,} bytes; GitHub ignores a CODEOWNERS file over {MAX_CODEOWNERS_BYTES:,} bytes")
        return codeowners.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{display_name(codeowners)}: no such file; write it with `modelops owners --write {display_name(codeowners)}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{display_name(codeowners)}: cannot be read ({exc})") from None


def check_codeowners(owned: Ownership, codeowners: Path) -> list[Problem]:
    """A problem for each file of the spec whose review CODEOWNERS does not route to its owner.

    Example::

        for problem in check_codeowners(ownership("modelops.yaml"), Path(".github/CODEOWNERS")):
            print(problem)   # .github/CODEOWNERS:4:1: teams/fraud.yaml: routed to @org/ml, not to its owner …
    """
    rules = _rules(_read(codeowners))
    root = _root_of(codeowners)
    lines = dict(zip((f.relative for f in owned.files), codeowners_lines(owned, root)))
    shown = display_name(codeowners)
    problems = []
    for item in owned.files:
        relative = Path(os.path.relpath(item.path, root)).as_posix()
        rule = next((r for r in reversed(rules) if r.regex.fullmatch(relative)), None)
        fix = f"route it: `{lines[item.relative]}` (or run `modelops owners --write {shown}`)"
        if rule is None:
            problems.append(Problem("E-OWNER-UNROUTED", shown, 0, 0, item.relative, f"no rule routes it; its owner is {item.owner}", fix))
        elif item.owner.lower() not in {o.lower() for o in rule.owners}:
            to = ", ".join(rule.owners) or "no one"
            problems.append(Problem("E-OWNER-ROUTE", shown, rule.line, 1, item.relative,
                                    f"routed to {to} by `{rule.pattern}`, not to its owner {item.owner}", fix))
    return problems


def write_codeowners(owned: Ownership, codeowners: Path) -> str:
    """Write the spec's lines into ``codeowners`` between :data:`BEGIN` and :data:`END` (the
    block is replaced where it is, else appended: the last matching line wins), keeping every
    other line; returns the new text.

    Example::

        write_codeowners(ownership("modelops.yaml"), Path(".github/CODEOWNERS"))
    """
    block = [BEGIN, *codeowners_lines(owned, _root_of(codeowners)), END]
    old = _read(codeowners) if codeowners.exists() else ""
    lines = old.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(_BEGIN_MARK)), None)
    end = next((i for i, line in enumerate(lines) if i > start and line == END), None) if start is not None else None
    if start is not None and end is not None:
        lines[start:end + 1] = block
    else:
        lines += ([""] if lines and lines[-1].strip() else []) + block
    text = "\n".join(lines) + "\n"
    codeowners.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(codeowners, text.encode("utf-8"))
    return text
