"""``modelops security``: AWS FSBP-mapped controls over every environment's rendered graph.

Example::

    $ modelops security examples/fraud/modelops.yaml --env prod
    fraud-prod: 13 controls, 12 pass, 1 n/a, 0 fail
      pass  S3.8            2/2 buckets   S3 buckets should block public access
      ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from modelops.graph.resource_types import BUCKET, ENDPOINT_CONFIG, KMS_KEY, ROLE, ROLE_POLICY, SAGEMAKER_MODEL, TOPIC
from modelops.cli.app import app
from modelops.spec.envs import list_environments, load_environment
from modelops.errors import GateFailed, UsageError

if TYPE_CHECKING:  # modelops.checks.security renders (Pulumi): imported by the command, not at start-up
    from modelops.checks.security import EnvironmentReport

__all__ = ["security"]

_NOUN = {
    BUCKET: "buckets",
    ENDPOINT_CONFIG: "endpoint configs",
    SAGEMAKER_MODEL: "models",
    TOPIC: "topics",
    KMS_KEY: "keys",
    ROLE_POLICY: "role policies",
    ROLE: "roles",
}


def _text(report: EnvironmentReport) -> str:
    rows = [r.to_dict() for r in report.results]
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("pass", "n/a", "fail")}
    lines = [f"{report.project}-{report.env}: {len(rows)} controls, {counts['pass']} pass, {counts['n/a']} n/a, "
             f"{counts['fail']} fail"]
    for row in rows:
        noun = _NOUN.get(row["resource_type"], "resources")
        tally = f"{row['passed']}/{row['resources']} {noun}" if row["status"] != "n/a" else "-"
        note = f" ({row['not_applicable']})" if row["not_applicable"] else ""
        level = f" [{row['level']}]" if row["status"] == "fail" and row["level"] != "mandatory" else ""
        lines.append(f"  {row['status']:<4}  {row['control']:<16}{tally:<24}{row['title']}{note}{level}")
        lines += [f"          {f['resource']}: {f['message']}" for f in row["failures"]]
    return "\n".join(lines)


@app.command()
def security(
    spec: Path = typer.Argument(Path("modelops.yaml"), help="The spec file."),
    env: Optional[str] = typer.Option(None, "--env", "-e", help="One environment (default: every environment)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Check the security controls (AWS FSBP where one applies) on the rendered graph.

    Exit 0 when every mandatory control passes, 3 when one fails, 2 for an invalid spec.
    Nothing is deployed and no model is trained (cached builds or placeholders are rendered).

    Example: ``modelops security examples/fraud/modelops.yaml --env prod --json``
    """
    if not spec.exists():
        raise UsageError(f"{spec}: no such file; pass the spec file, e.g. modelops.yaml")
    envs = [env] if env else list_environments(spec)
    from modelops.checks.pipeline import security_report

    reports = [security_report(load_environment(spec, name)) for name in envs]
    if as_json:
        typer.echo(json.dumps({"passed": all(not r.failed_mandatory() for r in reports),
                               "environments": [r.to_dict() for r in reports]}, indent=2))
    else:
        typer.echo("\n".join(_text(r) for r in reports))
    failed = [(r.env, c.control.id) for r in reports for c in r.failed_mandatory()]
    if failed:
        raise GateFailed("mandatory security controls failed: " + ", ".join(f"{c} ({e})" for e, c in failed)
                         + "; fix the resources listed above, or record a reviewed exception in the spec's `policies`")
