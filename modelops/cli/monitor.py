"""``modelops monitor run``: run a model's monitor job as deployed.

Example::

    $ modelops monitor run churn-drift --env dev
    $ modelops monitor run --all --env dev --json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from modelops.cli.app import app, existing_target, text_table
from modelops.errors import UsageError

monitor_app = typer.Typer(help="Monitor jobs: drift, data quality, model quality.", no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")


@monitor_app.command("run")
def run(
    monitor: Optional[str] = typer.Argument(None, help="A job monitor, as named in the spec (its model's job runs)."),
    spec: Path = typer.Option(Path("modelops.yaml"), "--spec", help="The spec file."),
    env: str = typer.Option(..., "--env", "-e", help="The environment whose job to run."),
    every: bool = typer.Option(False, "--all", help="Run the job of every model with job monitors."),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help="A loopback emulator; default: the project's local emulator."),
    use_aws: bool = typer.Option(False, "--aws", help="Start the deployed pipeline in real AWS (its steps run there)."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
) -> None:
    """Run MONITOR's job (or every job with --all) from the pipeline the target holds.

    Locally, each processing step of the deployed pipeline runs here, one subprocess per
    instance, against the emulator's S3 and CloudWatch (where the alarms are evaluated).
    With --aws the pipeline is started in AWS.

    Example: modelops monitor run churn-drift --env dev
    """
    from modelops.ml.monitor_run import run_monitors
    from modelops.spec.envs import load_environment

    if every == (monitor is not None):
        raise UsageError("name one monitor, or pass --all (not both)")
    if use_aws and endpoint_url:
        raise UsageError("--aws and --endpoint-url exclude each other; give one")
    if not spec.is_file():
        raise UsageError(f"{spec}: spec file not found; pass --spec with the path of modelops.yaml")
    environment = load_environment(spec, env)
    target = existing_target(spec.resolve().parent, endpoint_url, use_aws)
    runs = run_monitors(environment, target, monitor=monitor)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in runs], indent=2, sort_keys=True))
        return
    rows = []
    for r in runs:
        if r.started:
            rows.append([r.model, "-", "started", "-", r.execution])
        for result in r.results:
            value = "-" if result.get("value") is None else f"{result['value']:.4g}"
            rows.append([r.model, result["monitor"], result["verdict"], value, result.get("key", "")])
    typer.echo(text_table(["model", "monitor", "verdict", "value", "result"], rows))
