"""``make demo``: the root example's dev environment, provisioned to the local AWS emulator.

On a fresh machine: validates the spec, trains the model, starts the embedded emulator
(TLS, on 127.0.0.1), provisions every resource, prints what was made and how to inspect it
with the AWS CLI, then destroys it and stops the emulator it started. ``--keep`` leaves
both running and says how to stop them. CI runs it without ``--keep``: nothing stays up.

Example::

    $ python -m modelops.demo            # what `make demo` runs
    $ python -m modelops.demo --keep     # leave the emulator running to explore
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelops.errors import ModelOpsError

ENVIRONMENT = "dev"


def _project_root() -> Path:
    here = Path(__file__).resolve().parent.parent
    return here if (here / "modelops.yaml").exists() else Path.cwd()


def run(keep: bool = False, root: Path | None = None) -> int:
    """Provision, show, (unless ``keep``) destroy and stop; returns the exit code."""
    from modelops.components import naming
    from modelops.cli.local import Progress, prepare, print_outcome
    from modelops.local import server
    from modelops.local.apply import destroy, up
    from modelops.local.server import Target

    root = root or _project_root()
    spec = root / "modelops.yaml"
    print(f"== ModelOps demo: {spec.name}, environment {ENVIRONMENT}, on the local AWS emulator", flush=True)
    env = prepare(spec, ENVIRONMENT)
    print(f"   spec valid; {len(env.models)} model(s) built: "
          + ", ".join(f"{m.name} {m.artifact.digest[:19]}" for m in env.models.values() if m.artifact), flush=True)
    was_running = server.status(root) is not None
    target = Target.for_project(root)
    print(f"   emulator {'reused' if was_running else 'started'}: {target.url} (TLS, 127.0.0.1 only)", flush=True)
    started_here = not was_running
    try:
        with Progress(f"applying {env.project}-{ENVIRONMENT}", quiet=False) as progress:
            outcome = up(env, target, root, on_event=progress.event)
        print_outcome(outcome, False, target.cli_prefix(env.region))
        failed = [c for c in outcome.checks if not c.ok]
        account = target.clients(env.region).client("sts").get_caller_identity()["Account"]
        cli = target.cli_prefix(env.region)
        p, e = env.project, ENVIRONMENT
        dataset = next(iter(env.datasets))
        model = next(iter(env.models))
        monitor = next(iter(env.monitors))
        print("\nInspect it with the AWS CLI (the emulator accepts any credentials):")
        for command in (
            f"s3api get-bucket-versioning --bucket {naming.bucket_name(p, e, dataset, account)}",
            f"s3api get-bucket-policy --bucket {naming.bucket_name(p, e, dataset, account)}",
            f"sagemaker describe-endpoint --endpoint-name {naming.endpoint_name(p, e, model)}",
            f"cloudwatch describe-alarms --alarm-names {naming.alarm_name(p, e, monitor)}",
        ):
            print(f"  {cli} {command}")
        if keep:
            print(f"\nThe emulator keeps running. Remove the environment with `modelops destroy --env {e}`, "
                  "stop the emulator with `modelops local stop`.")
            return 1 if failed else 0
        with Progress(f"destroying {p}-{e}", quiet=True) as progress:
            gone = destroy(env, target, root, on_event=progress.event)
        left = [c for c in gone.checks if not c.ok]
        print(f"\ndestroyed {len(gone.actions)} resources"
              + (f"; {len(left)} still there: {left[0].name}" if left else "; nothing left"))
        return 1 if failed or left else 0
    finally:
        if started_here and not keep:
            server.stop(root)
            print(f"stopped the emulator at {target.url} (run with --keep to leave it running)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the environment and the emulator running")
    args = parser.parse_args(argv)
    try:
        return run(keep=args.keep)
    except ModelOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
