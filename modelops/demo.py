"""``make demo``: the root example's dev environment, provisioned to the local AWS emulator.

On a fresh machine: validates the spec, trains the model, starts the embedded emulator
(TLS, on 127.0.0.1), provisions every resource and prints each one once, with AWS CLI
commands to inspect them. The environment and the emulator keep running, so those
commands work; it ends with how to remove both
(``modelops destroy --env dev && modelops local stop``). Run again, it finds the
environment up to date.

Example::

    $ python -m modelops.demo                       # what `make demo` runs
    $ python -m modelops.demo --project examples/fraud
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from modelops.errors import ModelOpsError

ENVIRONMENT = "dev"
#: the width of everything the demo prints but the inspect commands (which are never wrapped)
WIDTH = 100
_ARN_PREFIX = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d*:")


def _project_root() -> Path:
    here = Path(__file__).resolve().parent.parent
    return here if (here / "modelops.yaml").exists() else Path.cwd()


def _fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: the middle gives way to ``...``."""
    if len(text) <= width:
        return text
    keep = width - 3
    return text[: keep - keep // 2] + "..." + text[len(text) - keep // 2:]


def resource_table(actions: list[Any], width: int = WIDTH) -> list[str]:
    """One line per resource, under a line per spec entity, in at most ``width`` columns.

    The type is shown as ``service Resource``, an ARN without its ``arn:aws:...:account:``
    prefix (``modelops up --json`` has every full name).
    """
    rows = []
    for action in actions:
        service, _, kind = action.type.partition(":")[2].partition("/")
        rows.append((action.entity or "-", f"{service} {kind.rpartition(':')[2]}",
                     _ARN_PREFIX.sub("", action.label), action.action))
    type_width = min(max((len(r[1]) for r in rows), default=0), 42)
    action_width = max((len(r[3]) for r in rows), default=0)
    name_width = width - 2 - type_width - 2 - 2 - action_width
    lines: list[str] = []
    entity = None
    for row in rows:
        if row[0] != entity:
            entity = row[0]
            lines.append(_fit(entity, width))
        lines.append(f"  {_fit(row[1], type_width):<{type_width}}  {_fit(row[2], name_width):<{name_width}}  "
                     f"{row[3]}".rstrip())
    return lines


def run(root: Path | None = None) -> int:
    """Provision, show, and say how to inspect and clean up; returns the exit code."""
    from modelops.components import naming
    from modelops.cli.local import Progress, prepare
    from modelops.local import server
    from modelops.local.apply import up
    from modelops.local.server import Target

    root = (root or _project_root()).resolve()
    spec = root / "modelops.yaml"
    print(f"== ModelOps demo: {spec.name}, environment {ENVIRONMENT}, on the local AWS emulator", flush=True)
    env = prepare(spec, ENVIRONMENT)
    print(f"   spec valid; {len(env.models)} model(s) built: "
          + ", ".join(f"{m.name} {m.artifact.digest[:19]}" for m in env.models.values() if m.artifact), flush=True)
    was_running = server.status(root) is not None
    target = Target.for_project(root)
    print(f"   emulator {'reused' if was_running else 'started'}: {target.url} (TLS, 127.0.0.1 only)", flush=True)
    p, e = env.project, ENVIRONMENT
    # a live status on a terminal; no line per resource: the table below lists each once
    with Progress(f"applying {p}-{e}", quiet=False, lines=False) as progress:
        outcome = up(env, target, root, on_event=progress.event)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(outcome.counts().items()))
    print(f"\n{p}-{e}: {len(outcome.actions)} resources ({counts}) in {outcome.seconds:.1f}s")
    print("\n".join(resource_table(outcome.actions)))
    failed = [c for c in outcome.checks if not c.ok]
    print(f"checks: {len(outcome.checks) - len(failed)}/{len(outcome.checks)} passed (each resource described back)")
    for check in failed:
        print(_fit(f"  FAILED {check.name}: {check.detail}", WIDTH))
    account = target.clients(env.region).client("sts").get_caller_identity()["Account"]
    cli = target.cli_prefix(env.region)
    dataset, model, monitor = next(iter(env.datasets)), next(iter(env.models)), next(iter(env.monitors))
    bucket = naming.bucket_name(p, e, dataset, account)
    print("\nInspect it with the AWS CLI (the emulator accepts any credentials; one command a line):")
    for command in (
        f"s3api get-bucket-versioning --bucket {bucket}",
        f"s3api get-bucket-policy --bucket {bucket}",
        f"sagemaker describe-endpoint --endpoint-name {naming.endpoint_name(p, e, model)}",
        f"cloudwatch describe-alarms --alarm-names {naming.alarm_name(p, e, monitor)}",
    ):
        sys.stdout.write(f"  {cli} {command}\n")  # never wrapped: it is copied as it is
    where = "" if root == Path.cwd().resolve() else f" {shlex.quote(str(spec))}"
    print(f"\nThe environment and the emulator keep running. Remove both with:\n"
          f"  modelops destroy{where} --env {e} && modelops local stop{where}")
    if shutil.which("modelops") is None:
        print(f"  (`modelops` is in {Path(sys.executable).parent}: activate that virtualenv first)")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--project", type=Path, default=None,
                        help="the directory of the modelops.yaml to provision (default: the root example)")
    args = parser.parse_args(argv)
    try:
        return run(root=args.project)
    except ModelOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
