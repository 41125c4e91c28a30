"""``modelops diff``: review a spec change against a git ref or another directory.

Example::

    $ modelops diff --base origin/main --format markdown --fail-on data-loss,policy,cost>100
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from modelops.cli.app import app
from modelops.errors import GateFailed, UsageError

__all__ = ["diff"]

FORMATS = ("text", "markdown", "json")


@app.command()
def diff(
    spec: Path = typer.Argument(Path("modelops.yaml"), help="The spec file (working tree side)."),
    base: str = typer.Option(..., "--base", help="Git ref (origin/main) or directory holding the other version."),
    env: Optional[list[str]] = typer.Option(None, "--env", "-e", help="Compare only this environment (repeatable)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, markdown (a PR comment) or json."),
    fail_on: str = typer.Option("", "--fail-on", help="Exit 3 when one holds: data-loss, replace, delete, policy, "
                                "endpoint-replaced, capacity-reset, monitor-removed, permission-widened, "
                                "protection-removed, any, cost>N (USD/month rise)."),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """What a spec change does: entities, AWS replacements, risks, cost, policies.

    Exit 0, 3 when a --fail-on condition holds (the report is printed first), 2 on bad input.

    Example: ``modelops diff --base origin/main --env prod --format markdown``
    """
    fmt = "json" if as_json else fmt
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    # the review renders (Pulumi): imported by this command only (see cli.app)
    from modelops.review.diff import diff as diff_specs
    from modelops.review.formats import to_markdown, to_text
    from modelops.review.report import parse_fail_on

    kinds = parse_fail_on(fail_on)
    report = diff_specs(spec, base, envs=list(env) if env else None)
    if fmt == "json":
        text = report.to_json()
    elif fmt == "markdown":
        text = to_markdown(report)
    else:
        text = to_text(report)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    held = report.failed_conditions(kinds)
    if held:
        more = f" (+{len(held) - 1} more)" if len(held) > 1 else ""
        raise GateFailed(f"--fail-on: {held[0]}{more}")
