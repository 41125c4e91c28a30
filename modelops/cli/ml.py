"""``modelops build`` / ``serve`` / ``drift``: train and package, serve locally, measure drift.

Example::

    $ modelops build churn-classifier
    $ modelops serve churn-classifier --port 8080
    $ modelops drift churn-classifier --env dev
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from modelops.cli.app import app, text_table
from modelops.errors import UsageError

SPEC_ARG = typer.Argument(Path("modelops.yaml"), help="The spec file.")
ENV_OPT = typer.Option("dev", "--env", "-e", help="The environment whose spec (and pins) to use.")
JSON_OPT = typer.Option(False, "--json", help="Print the result as JSON.")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    return text_table(headers, [[_fmt(c) for c in row] for row in rows])


def _gate_rows(env: Any, model: str, metrics: dict[str, float]) -> list[list[Any]]:
    rows = []
    for gate in env.models[model].gates:
        value = metrics.get(gate.metric)
        ok = value is not None and {
            ">=": value >= gate.value,
            "<=": value <= gate.value,
            ">": value > gate.value,
            "<": value < gate.value,
        }[gate.op]
        rows.append([gate.metric, value, f"{gate.op} {gate.value:g}", "pass" if ok else "FAIL"])
    return rows


@app.command()
def build(
    model: str = typer.Argument(..., help="The model to train and package, as named in the spec."),
    spec: Path = SPEC_ARG,
    env: str = ENV_OPT,
    force: bool = typer.Option(False, "--force", help="Train again even when a cached build matches."),
    as_json: bool = JSON_OPT,
) -> None:
    """Train MODEL with scikit-learn and package a reproducible, content-addressed model.tar.gz.

    The artifact is stored under .modelops/artifacts/<sha256>/ beside the spec; the same
    spec and data always give the same digest.

    Example: modelops build churn-classifier
    """
    from modelops.ml.artifacts import build_model
    from modelops.spec.envs import load_environment

    environment = load_environment(spec, env)
    outcome = build_model(environment, model, force=force)
    gates = _gate_rows(environment, model, outcome.metrics)
    if as_json:
        data = outcome.to_dict()
        data["gates"] = [dict(zip(("metric", "value", "gate", "result"), row)) for row in gates]
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    typer.echo(f"{model}: {outcome.artifact.digest}{'  (cached)' if outcome.cached else ''}")
    typer.echo(f"  {outcome.card.get('estimator')} ({outcome.card.get('task')}), serving image {outcome.artifact.framework_version}")
    typer.echo(f"  {outcome.artifact.path}")
    typer.echo("")
    typer.echo(_table(["metric", "value"], [[k, v] for k, v in sorted(outcome.metrics.items())]))
    if gates:
        typer.echo("")
        typer.echo(_table(["gate", "value", "needs", "result"], gates))


@app.command()
def serve(
    model: str = typer.Argument(..., help="The model to serve, as named in the spec."),
    spec: Path = SPEC_ARG,
    env: str = ENV_OPT,
    port: int = typer.Option(8080, "--port", "-p", help="Port on 127.0.0.1 (0: any free port)."),
    capture_to_env: Optional[str] = typer.Option(
        None,
        "--capture-to-env",
        help="Write each request as SageMaker data capture into this environment's dataset bucket on the local target.",
    ),
    endpoint_url: Optional[str] = typer.Option(
        None, "--endpoint-url", help="With --capture-to-env: a loopback moto server; default: the local emulator."
    ),
) -> None:
    """Serve MODEL's packaged artifact on 127.0.0.1 with the SageMaker container contract.

    GET /ping, POST /invocations (text/csv or application/json). Stop with Ctrl-C.

    Example: modelops serve churn-classifier --port 8080
    """
    from modelops.ml.artifacts import default_root, resolve_artifact
    from modelops.spec.envs import load_environment
    from modelops.ml.serve import make_server

    environment = load_environment(spec, env)
    if model not in environment.models:
        known = ", ".join(sorted(environment.models)) or "none"
        raise UsageError(f"model {model!r} is not declared in {spec} (models: {known})")
    artifact = resolve_artifact(environment, environment.models[model])
    hook = None
    if capture_to_env is not None:
        hook = _capture_hook(spec, model, capture_to_env, endpoint_url, default_root(environment))
    server = make_server(artifact.path, port=port, capture=hook)

    def ready() -> None:
        typer.echo(f"serving {model} {artifact.digest} on {server.url} (GET /ping, POST /invocations); Ctrl-C stops")
        sys.stdout.flush()

    # SIGTERM (a supervisor, `kill`) stops like Ctrl-C, and the extracted package is removed
    server.serve_until_signalled(on_ready=ready)


def _capture_hook(spec: Path, model: str, env_name: str, endpoint_url: str | None, root: Path) -> Any:
    from modelops.components import naming
    from modelops.spec.envs import load_environment
    from modelops.local.server import Target
    from modelops.ml.capture import capture_record, write_capture

    capture_env = load_environment(spec, env_name)
    if model not in capture_env.models:
        raise UsageError(f"--capture-to-env {env_name}: model {model!r} is not in that environment")
    clients = Target.for_project(root, endpoint_url).clients(capture_env.region)
    account = clients.client("sts").get_caller_identity()["Account"]
    bucket = naming.bucket_name(capture_env.project, env_name, capture_env.models[model].dataset, account)
    endpoint = naming.endpoint_name(capture_env.project, env_name, model)

    def hook(event: dict[str, Any]) -> None:
        record = capture_record(
            event["input"], event["input_content_type"], event["output"], event["output_content_type"], event["time"],
            inference_id=event.get("inference_id"),
        )
        try:
            write_capture(clients.client("s3"), bucket, model, endpoint, [record], event["time"])
        except Exception as exc:  # noqa: BLE001 - capture is best effort, as in SageMaker
            print(f"capture to s3://{bucket} failed: {exc}", file=sys.stderr)

    typer.echo(f"capturing requests to s3://{bucket}/{naming.capture_prefix(model)}/{endpoint}/")
    return hook


@app.command()
def drift(
    model: str = typer.Argument(..., help="The model whose endpoint traffic to check, as named in the spec."),
    spec: Path = SPEC_ARG,
    env: str = typer.Option(..., "--env", "-e", help="The environment whose endpoint capture to read."),
    endpoint_url: Optional[str] = typer.Option(
        None, "--endpoint-url", help="A loopback moto server; default: the project's local emulator."
    ),
    use_aws: bool = typer.Option(
        False, "--aws", help="Read capture from and publish to real AWS with the ambient credentials."
    ),
    hours: float = typer.Option(24.0, "--hours", help="Only requests captured in the last HOURS hours."),
    no_publish: bool = typer.Option(False, "--no-publish", help="Report only; do not put the drift metric."),
    as_json: bool = JSON_OPT,
) -> None:
    """Compare MODEL's captured requests with its training baseline and publish the drift metric.

    The monitor job's statistics (the same tests and scores as `modelops monitor run`);
    below 100 captured rows there is no verdict and nothing is published.

    Example: modelops drift churn-classifier --env dev
    """
    from modelops.ml.drift import run_drift

    if use_aws and endpoint_url:
        raise UsageError("--aws and --endpoint-url exclude each other; give one")
    report = run_drift(
        spec, model, env, endpoint_url="aws" if use_aws else endpoint_url, hours=hours, publish_metric=not no_publish
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
        return
    typer.echo(f"{model} on {report.endpoint}: {report.rows} rows from {report.requests} captured requests")
    typer.echo(f"  source {report.source}")
    if report.unreadable:
        typer.echo(f"  {report.unreadable} unreadable records skipped")
    typer.echo("")
    typer.echo(
        _table(
            ["feature", "kind", "test", "score", "p", "psi", "ks", "ks p", "verdict"],
            [[f.name, f.kind, f.test, f.score, f.p_value, f.psi, f.ks_statistic, f.ks_pvalue, f.verdict]
             for f in report.features],
        )
    )
    typer.echo("")
    if report.verdict == "insufficient":
        typer.echo(f"no verdict: {report.rows} rows < minimum sample {report.min_sample}; nothing published")
        return
    typer.echo(f"verdict: {report.verdict} (max score {_fmt(report.value)}, max PSI {_fmt(report.max_psi)}, "
               f"threshold {report.threshold:g})")
    if report.published:
        dims = ", ".join(f"{k}={v}" for k, v in report.metric["dimensions"].items())
        typer.echo(f"published {report.metric['namespace']}/{report.metric['name']} [{dims}] = {_fmt(report.value)}")
