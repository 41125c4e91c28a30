"""``modelops owners``: who owns each file and entity of the spec, and CODEOWNERS routing.

Example::

    $ modelops owners
    $ modelops owners --check .github/CODEOWNERS     # exit 3 when a file is not routed to its owner
    $ modelops owners --write .github/CODEOWNERS     # write the lines that route them
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from modelops.cli.app import app, text_table
from modelops.errors import UsageError
from modelops.review.owners import check_codeowners, codeowners_lines, ownership, repository_root, write_codeowners
from modelops.spec.loader import display_name
from modelops.spec.resolved import ENTITY_KINDS

__all__ = ["owners"]

_SINGULAR = {k.key: k.singular for k in ENTITY_KINDS}


@app.command()
def owners(
    spec: Path = typer.Argument(Path("modelops.yaml"), help="The spec file."),
    check: Optional[Path] = typer.Option(None, "--check", help="Exit 3 when this CODEOWNERS file does not route a spec "
                                         "file (root spec, team file, environment overlay) to its owner."),
    write: Optional[Path] = typer.Option(None, "--write", help="Write the lines that route every spec file to its owner "
                                         "into this CODEOWNERS file (a block of its own; other lines are kept)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Who owns what: the owner of each spec file and entity, and the CODEOWNERS lines that
    route each file's review to its owner.

    A team file belongs to its ``owner``, an overlay to its ``owner`` if it sets one, the
    root spec (and anything else) to the project's. Exit 0; with --check, 3 when a file is
    not routed to its owner (one line each); 2 on bad input.

    Example: ``modelops owners --check .github/CODEOWNERS``
    """
    if check is not None and write is not None:
        raise UsageError("--check and --write are exclusive: --write checks what it wrote")
    owned = ownership(spec)
    target = check or write
    if write is not None:
        write_codeowners(owned, write)
    if target is None:
        if as_json:
            json.dump(owned.to_dict(), sys.stdout, indent=2)
            sys.stdout.write("\n")
            return
        _print(owned)
        return
    problems = check_codeowners(owned, target)
    if as_json:
        json.dump({"codeowners": display_name(target), "routed": not problems, "written": write is not None,
                   "problems": [p.to_dict() for p in problems]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            done = "wrote" if write is not None else "checked"
            print(f"✓ {done} {display_name(target)}: {len(owned.files)} spec files routed to their owners")
    if problems:
        raise typer.Exit(3)


def _print(owned) -> None:
    rows = []
    for item in owned.files:
        what = (f"environment {item.environment}" if item.role == "overlay"
                else ", ".join(f"{len(names)} {kind if len(names) != 1 else _SINGULAR[kind]}"
                               for kind, names in item.declares.items()) or "nothing")
        rows.append([item.relative, item.owner, what])
    print(text_table(["FILE", "OWNER", "DECLARES"], rows))
    print()
    entities = [[f"{kind}.{name}", owner, file.relative] for (kind, name), (owner, file) in owned.entities.items()]
    print(text_table(["ENTITY", "OWNER", "FILE"], entities))
    print()
    print("# CODEOWNERS (modelops owners --write .github/CODEOWNERS)")
    for line in codeowners_lines(owned, repository_root(owned.spec.parent)):
        print(line)
