"""``modelops publish`` and ``modelops registry list``: the project's model registry.

Example::

    $ modelops build churn-classifier && modelops publish churn-classifier
    $ modelops publish --all --aws                   # CI, after `pulumi up --stack registry`
    $ modelops registry list churn-classifier --json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from modelops.cli.app import app, text_table
from modelops.errors import UsageError

registry_app = typer.Typer(help="The project's model registry (see docs/registry.md).", no_args_is_help=True)
app.add_typer(registry_app, name="registry")

DEFAULT_SPEC = Path("modelops.yaml")
SPEC_ARG = typer.Argument(DEFAULT_SPEC, help="The spec file; its directory is the project root.")
URL_OPT = typer.Option(None, "--endpoint-url", help="A loopback emulator (default: the project's embedded one).")
JSON_OPT = typer.Option(False, "--json", help="Print the result as JSON.")


def _spec(spec: Path) -> Path:
    if not spec.is_file():
        raise UsageError(f"{spec}: spec file not found; pass the path of your modelops.yaml")
    return spec


def _local_target(root: Path, endpoint_url: Optional[str]) -> Any:
    from modelops.local.server import Target, check_loopback

    if endpoint_url is not None:
        check_loopback(endpoint_url)
    return Target.for_project(root, endpoint_url)


@app.command()
def publish(
    model: Optional[str] = typer.Argument(None, help="The model to publish, as named in the spec."),
    spec: Path = SPEC_ARG,
    every: bool = typer.Option(False, "--all", help="Publish every model of the spec."),
    env: str = typer.Option("dev", "--env", "-e", help="The environment whose artifact of the model is published."),
    endpoint_url: Optional[str] = URL_OPT,
    use_aws: bool = typer.Option(False, "--aws", help="Publish to real AWS with the ambient credentials (CI; "
                                 "the registry stack must be deployed)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Upload MODEL's built package, card and baseline to the registry and register its version.

    Keys are content-addressed and written only when absent; one model package version per
    digest (PendingManualApproval) carries the card's metrics and the lineage. Publishing a
    digest again writes nothing. Locally the registry stack is applied to the emulator first.
    Exit 0 published (or already), 1 failed, 2 bad input.

    Example: modelops publish churn-classifier
    """
    from modelops.spec.envs import load_environment

    if every and model is not None:
        if spec != DEFAULT_SPEC:
            raise UsageError(f"--all publishes every model: give the spec only, not {model!r} and {str(spec)!r}")
        spec, model = Path(model), None
    if not every and model is None:
        raise UsageError("Missing argument 'MODEL': name the model to publish, or pass --all")
    if use_aws and endpoint_url:
        raise UsageError("--aws and --endpoint-url exclude each other; give one")
    if endpoint_url is not None:  # before any slow work
        from modelops.local.server import check_loopback

        check_loopback(endpoint_url)
    environment = load_environment(_spec(spec), env)
    names = sorted(environment.models) if every else [model]
    for name in names:
        if name not in environment.models:
            known = ", ".join(sorted(environment.models)) or "none"
            raise UsageError(f"model {name!r} is not declared in {spec} (models: {known})")
    from modelops.ml.artifacts import default_root, resolve_artifact
    from modelops.registry import publish_all

    root = default_root(environment)
    for name in names:  # every package is here before anything is written
        resolve_artifact(environment, environment.models[name], build=False, root=root)
    registry = _registry(environment, root, endpoint_url, use_aws, provision=True, quiet=as_json)
    outcomes = publish_all(environment, root, registry, [(name, None) for name in names])
    if as_json:
        typer.echo(json.dumps({"registry": registry.bucket, "where": registry.where,
                               "models": [o.to_dict() for o in outcomes]}, indent=2, sort_keys=True))
        return
    for o in outcomes:
        if not o.changed:
            typer.echo(f"{o.model}: {o.digest} already published as version {o.package_version}; nothing written")
            continue
        what = f"registered version {o.package_version}" if o.registered else f"version {o.package_version} was registered"
        typer.echo(f"{o.model}: {o.digest} published to s3://{o.bucket}/{o.package_key}; {what} "
                   f"(PendingManualApproval); wrote {len(o.written)} object(s)")


def _registry(environment: Any, root: Path, endpoint_url: Optional[str], use_aws: bool, *, provision: bool,
              quiet: bool) -> Any:
    """The registry at the target: real AWS, or a local emulator (its registry stack applied first)."""
    from modelops.registry import Registry

    if use_aws:
        from modelops.local.server import REAL_AWS, Target

        target = Target.for_project(root, REAL_AWS, allow_aws=True)
        return Registry.at(target.clients(environment.region), environment.project, "AWS",
                           account=environment.registry_account)
    from modelops.local.apply import deploy_role, local_registry

    target = _local_target(root, endpoint_url)
    if not provision:
        return Registry.at(target.clients(environment.region, deploy_role(environment, "registry")),
                           environment.project, target.url, account=environment.registry_account)

    def applied(outcome: Any) -> None:
        if outcome.changed and not quiet:
            counts = ", ".join(f"{n} {k}" for k, n in sorted(outcome.counts().items()))
            print(f"registry stack at {target.url}: {counts}", file=sys.stderr)

    # the local `pulumi up --stack registry`; a registry another working copy made there is used as it is
    registry = local_registry(environment, target, root, applied)
    return registry


@registry_app.command("list")
def list_command(
    model: str = typer.Argument(..., help="The model whose versions to list, as named in the spec."),
    spec: Path = SPEC_ARG,
    endpoint_url: Optional[str] = URL_OPT,
    use_aws: bool = typer.Option(False, "--aws", help="Read real AWS with the ambient credentials (read-only)."),
    as_json: bool = JSON_OPT,
) -> None:
    """MODEL's published versions: digest, approval, metrics, lineage, and which environment/variant serves it.

    Reads only (the embedded emulator is never started for it). Example: modelops registry list churn-classifier
    """
    from modelops.cli.pages import _clients
    from modelops.registry import Registry, list_versions
    from modelops.spec.envs import list_environments, load_environment

    _spec(spec)
    environments = {name: load_environment(spec, name) for name in list_environments(spec)}
    first = next(iter(environments.values()))
    if model not in first.models:
        known = ", ".join(sorted(first.models)) or "none"
        raise UsageError(f"model {model!r} is not declared in {spec} (models: {known})")
    clients, where = _clients(spec, first.region, endpoint_url, use_aws)
    listing = list_versions(environments, model, Registry.at(clients, first.project, where))
    if as_json:
        typer.echo(json.dumps(listing.to_dict(), indent=2, sort_keys=True))
        return
    typer.echo(f"{model}: {len(listing.versions)} version(s) in {listing.group} at {listing.where}")
    if not listing.versions:
        typer.echo(f"  nothing published yet: `modelops publish {model}`")
        return
    rows = []
    for v in listing.versions:
        metrics = " ".join(f"{k}={val:.4f}" for k, val in sorted(v["metrics"].items()))
        rows.append([str(v["version"]), str(v["digest"])[:19] + "…", str(v["approval"]),
                     ", ".join(v["approved_for"]) or "-", metrics or "-", ", ".join(v["served_by"]) or "-"])
    typer.echo(text_table(["version", "digest", "approval", "approved for", "metrics", "served by"], rows))
    for v in listing.versions:
        lineage = v["lineage"]
        typer.echo(f"version {v['version']} {v['digest']}")
        for env_name, note in v["approved_for"].items():
            typer.echo(f"  approved for {env_name}: {note}")
        for key in sorted(lineage):
            typer.echo(f"  {key}: {lineage[key]}")
    others = {k: d for k, d in listing.served.items() if d not in {v["digest"] for v in listing.versions}}
    for variant, digest in sorted(others.items()):
        typer.echo(f"note: {variant} serves {digest or 'an artifact outside ModelOps'}, which is not in the registry")
    for env_name, why in sorted(listing.unreadable.items()):
        typer.echo(f"note: the endpoint of {env_name} could not be read ({why})")
