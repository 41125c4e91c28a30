"""``modelops promote``: gates, evidence, then the target's pin rewritten in place.

Example::

    $ modelops promote churn-classifier --from staging --to prod --check
    $ modelops promote churn-classifier --canary --env prod
    $ modelops promote --verify-log
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from modelops.cli.app import app
from modelops.errors import UsageError

if TYPE_CHECKING:  # the promotion module is imported by the command, not at start-up
    from modelops.promote import PromotionReport, PromotionResult


def _marks() -> tuple[str, str]:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓✗→".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "[ok]", "[FAIL]"
    return "✓", "✗"


def _render(report: PromotionReport, canary: bool = False) -> str:
    ok, bad = _marks()
    where = f"  canary to primary in {report.target}" if canary else f"  from {report.source} to {report.target}"
    lines = [f"promote {report.model} {report.digest}", where]
    if report.previous_digest:
        kind = "its pin" if report.previous_pinned else "the base artifact, unpinned"
        lines.append(f"  {report.target} ran {report.previous_digest} ({kind})")
    for gate in report.gates:
        lines.append(f"{ok if gate.passed else bad} {gate.name}: {gate.evidence}")
    return "\n".join(lines)


@app.command()
def promote(
    model: Optional[str] = typer.Argument(None, help="The model to promote, as named in the spec."),
    spec: Path = typer.Argument(Path("modelops.yaml"), help="The spec file."),
    source: Optional[str] = typer.Option(None, "--from", help="The environment whose running version is promoted."),
    target: Optional[str] = typer.Option(None, "--to", help="The environment whose overlay pin is rewritten."),
    canary: bool = typer.Option(
        False, "--canary", help="Make the canary of --env its primary (its gates, then the pin; the canary removed)."
    ),
    env: Optional[str] = typer.Option(None, "--env", "-e", help="With --canary: the environment whose canary is promoted."),
    check: bool = typer.Option(False, "--check", help="Evaluate and report the gates; write nothing."),
    allow_dirty: bool = typer.Option(
        False, "--allow-dirty", help="Promote although the spec or an overlay has uncommitted changes (logged)."
    ),
    verify_log: bool = typer.Option(
        False, "--verify-log", help="Check the hash chain of stacks/promotions.jsonl instead of promoting: [SPEC] only."
    ),
    endpoint_url: Optional[str] = typer.Option(
        None, "--endpoint-url", help="A loopback moto server; default: the project's local emulator."
    ),
    use_aws: bool = typer.Option(
        False, "--aws", help="Read the evidence from real AWS with the ambient credentials (CI), not the emulator."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Promote MODEL's version from one environment to the next once its gates pass.

    With --canary --env E: E's canary version becomes E's primary once the canary's gates
    pass (registry metrics, the canary variant serving it, the canary's own alarms quiet
    for the soak, policies); stacks/E.yaml pins it and drops the canary.

    Exit 0 promoted (or, with --check, would be), 3 a gate failed, 2 bad input.
    With --verify-log: exit 0 the log's chain is intact, 3 it is broken (the line is named).

    Example: modelops promote churn-classifier --from staging --to prod
    """
    if verify_log:
        _verify(model, spec, source, target, as_json)
        return
    if model is None:
        raise UsageError("Missing argument 'MODEL': name the model to promote, e.g. modelops promote churn-classifier")
    if use_aws and endpoint_url:
        raise UsageError("--aws and --endpoint-url exclude each other; give one")
    if canary or env is not None:
        _canary(model, spec, source, target, canary, env, check, allow_dirty,
                "aws" if use_aws else endpoint_url, as_json)
        return
    if source is None:
        raise UsageError("Missing option '--from': give the environment whose version is promoted, e.g. --from staging")
    if target is None:
        raise UsageError("Missing option '--to': give the environment whose pin is rewritten, e.g. --to prod")
    from modelops.promote import PromotionRefused
    from modelops.promote import promote as run_promotion

    try:
        result: PromotionResult = run_promotion(
            spec, model, source, target, endpoint_url="aws" if use_aws else endpoint_url, check=check,
            allow_dirty=allow_dirty,
        )
    except PromotionRefused as refused:
        typer.echo(json.dumps(refused.report.to_dict(), indent=2) if as_json else _render(refused.report))
        raise
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    typer.echo(_render(result.report))
    if result.written:
        typer.echo(result.diff.rstrip("\n"))
        typer.echo(f"promoted: {Path(result.report.overlay_file).name} pins {result.report.digest}; logged to {result.log_file}")
    else:
        typer.echo(f"all gates pass; {result.note}")


def _canary(model: str, spec: Path, source: Optional[str], target: Optional[str], canary: bool, env: Optional[str],
            check: bool, allow_dirty: bool, endpoint_url: Optional[str], as_json: bool) -> None:
    """``--canary --env E``: promotion within one environment, from its canary to its primary."""
    if not canary:
        raise UsageError("--env names the environment of a canary promotion: add --canary, or use --from/--to")
    if source or target:
        raise UsageError("--canary promotes within one environment: give --env E, not --from/--to")
    if env is None:
        raise UsageError("Missing option '--env': give the environment whose canary is promoted, e.g. --env prod")
    from modelops.promote import PromotionRefused, promote_canary

    try:
        result: PromotionResult = promote_canary(spec, model, env, endpoint_url=endpoint_url, check=check,
                                                 allow_dirty=allow_dirty)
    except PromotionRefused as refused:
        typer.echo(json.dumps(refused.report.to_dict(), indent=2) if as_json else _render(refused.report, canary=True))
        raise
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "canary": True}, indent=2))
        return
    typer.echo(_render(result.report, canary=True))
    if result.written:
        typer.echo(result.diff.rstrip("\n"))
        typer.echo(f"promoted: {Path(result.report.overlay_file).name} pins {result.report.digest} "
                   f"and runs no canary; logged to {result.log_file}")
    else:
        typer.echo(f"all gates pass; {result.note}")


def _verify(model: Optional[str], spec: Path, source: Optional[str], target: Optional[str], as_json: bool) -> None:
    """``--verify-log [SPEC]``: the one positional argument is the spec (no model is promoted)."""
    if source or target:
        raise UsageError("--verify-log checks the log and promotes nothing; drop --from/--to")
    if model is not None:
        if spec != Path("modelops.yaml"):
            raise UsageError(f"--verify-log takes one argument, the spec; got {model!r} and {str(spec)!r}")
        spec = Path(model)
    from modelops.promote import LogBroken, verify_promotions

    result = verify_promotions(spec)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif result.valid:
        typer.echo(str(result))
    if not result.valid:
        raise LogBroken(result)
