"""``modelops status`` and ``modelops report``: the pages people look at.

Example::

    $ modelops status --env prod
    $ modelops status --env dev --html status.html
    $ modelops report churn-drift --env dev --out churn-drift.html
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from modelops.cli.app import app, existing_target
from modelops.errors import UsageError
from modelops.files import atomic_write

SPEC_ARG = typer.Argument(Path("modelops.yaml"), help="The spec file.")
ENV_OPT = typer.Option(..., "--env", "-e", help="The environment to read.")
URL_OPT = typer.Option(None, "--endpoint-url", help="A loopback moto server; default: the project's local emulator.")
AWS_OPT = typer.Option(False, "--aws", help="Read real AWS with the ambient credentials (read-only).")


def _clients(spec: Path, region: str, endpoint_url: Optional[str], use_aws: bool):
    """(clients, where) of the target: the running local emulator (never started empty), a URL, or AWS."""
    from modelops.local.server import REAL_AWS

    target = existing_target(spec.resolve().parent, endpoint_url, use_aws)
    return target.clients(region), ("AWS" if target.url == REAL_AWS else target.url)


def _environment(spec: Path, env: str):
    from modelops.spec.envs import load_environment

    if not spec.is_file():
        raise UsageError(f"{spec}: spec file not found; pass the path of modelops.yaml")
    return load_environment(spec, env)


@app.command()
def status(
    spec: Path = SPEC_ARG,
    env: str = ENV_OPT,
    endpoint_url: Optional[str] = URL_OPT,
    use_aws: bool = AWS_OPT,
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the status as one self-contained HTML page."),
) -> None:
    """The environment at a glance: what runs where, against the spec, and what fired.

    Per model: each variant's live version, weight and instances against the spec, the
    endpoint state, each monitor's alarm and last job verdict, the pinned and latest
    approved version, the last promotion. Per dataset: size, last write, freshness alarm.
    Differences from the spec are listed first. Reads only.

    Example: modelops status --env prod
    """
    from modelops.pages.status import collect
    from modelops.pages.status_views import html_page, plain_text, rich_tables

    environment = _environment(spec, env)
    clients, where = _clients(spec, environment.region, endpoint_url, use_aws)
    result = collect(environment, clients, target=where)
    if html is not None:
        atomic_write(html, html_page(result))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    elif sys.stdout.isatty():
        from rich.console import Console

        Console().print(rich_tables(result))
    else:
        typer.echo(plain_text(result))
    if html is not None and not as_json:
        typer.echo(f"wrote {html}")


@app.command()
def report(
    monitor: str = typer.Argument(..., help="The monitor whose job results to render, as named in the spec."),
    spec: Path = SPEC_ARG,
    env: str = ENV_OPT,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="The HTML file to write; default: MONITOR.ENV.html."),
    endpoint_url: Optional[str] = URL_OPT,
    use_aws: bool = AWS_OPT,
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Render MONITOR's latest job result and its history as one self-contained HTML page.

    Per feature the baseline and current distributions on one chart with test, score and
    threshold, sorted by score; data-quality violations with examples; the value (model
    quality) over time against the threshold; sample sizes; when and from which data.
    The page needs no network. Reads only.

    Example: modelops report churn-drift --env dev --out churn-drift.html
    """
    from modelops.pages.report import build_report

    environment = _environment(spec, env)
    clients, _ = _clients(spec, environment.region, endpoint_url, use_aws)
    made = build_report(environment, monitor, clients)
    target = out or Path(f"{monitor}.{env}.html")
    atomic_write(target, made.html)
    if as_json:
        typer.echo(json.dumps({**made.to_dict(), "out": str(target)}, indent=2, sort_keys=True))
        return
    typer.echo(f"wrote {target}: {made.monitor} {made.verdict} at {made.computed_at}, "
               f"{made.results} result(s), {made.to_dict()['bytes'] // 1024} KiB")
