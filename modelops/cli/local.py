"""``modelops up`` / ``destroy`` (the local AWS target) and ``modelops local status|stop``.

Example::

    $ modelops up --env dev                       # the embedded emulator, started if needed
    $ modelops up --env dev --endpoint-url https://127.0.0.1:4566 --json
    $ modelops destroy --env dev
    $ modelops local status; modelops local stop
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from modelops.cli.app import app, local_app, text_table
from modelops.errors import ApplyError, SpecError, UsageError
from modelops.spec.envs import load_environment

__all__ = ["Progress", "destroy_command", "local_status", "local_stop", "prepare", "print_outcome", "up_command"]

DEFAULT_SPEC = Path("modelops.yaml")
SpecArg = typer.Argument(DEFAULT_SPEC, help="The spec file; its directory is the project root.")
EnvOpt = typer.Option(..., "--env", "-e", help="The environment to provision.")
UrlOpt = typer.Option(None, "--endpoint-url", help="A moto server on 127.0.0.1 (default: the embedded emulator).")
JsonOpt = typer.Option(False, "--json", help="Print the result as JSON on stdout.")
StackOpt = typer.Option(None, "--stack", help="One stack of the environment (default: all, see `modelops stacks`).")

_SYMBOLS = {"created": "+", "updated": "~", "replaced": "+-", "deleted": "-", "unchanged": "="}


def project_root(spec: Path) -> Path:
    """The project root: the spec file's directory."""
    return spec.resolve().parent


def prepare(spec: Path, env_name: str, *, build: bool = True, registry: Callable[[Any], Any] | None = None) -> Any:
    """Load, validate (schema, references and mandatory policies) and attach artifacts.

    Raises before anything is provisioned when the spec or an overlay is invalid. With
    ``registry`` (the environment -> its project's :class:`~modelops.registry.Registry`), a
    pinned version missing from ``.modelops/artifacts/`` is copied out of the registry first.
    """
    if not spec.exists():
        raise UsageError(f"{spec}: no such spec file; pass the path of your modelops.yaml")
    env = load_environment(spec, env_name)
    from modelops.checks.pipeline import check_policies  # Pulumi: only when rendering (see cli.app)
    from modelops.ml.artifacts import attach_artifacts

    # the mandatory policies hold before anything is created
    problems = check_policies({env_name: env})
    if problems:
        raise SpecError(problems)
    if registry is not None:
        from modelops.registry import fetch_pins

        fetched = fetch_pins(env, project_root(spec), lambda: registry(env))
        for item in fetched:
            print(f"copied {item.model} {item.digest} out of the registry ({item.source}, {item.bytes:,} bytes)",
                  file=sys.stderr)
    return attach_artifacts(env, build=build, root=project_root(spec))


class Progress:
    """Live progress on stderr: a rich status line on a terminal, plain lines otherwise.

    With ``lines=False``, no line per finished resource (the caller lists them): only the
    status line, on a terminal.
    """

    def __init__(self, verb: str, quiet: bool, lines: bool = True) -> None:
        self._lock = threading.Lock()
        self._quiet = quiet
        self._lines = lines
        self._done = 0
        self._tty = sys.stderr.isatty()
        self._status: Any = None
        self._verb = verb
        if self._tty and not quiet:
            from rich.console import Console

            self._console = Console(stderr=True)
            self._status = self._console.status(f"{verb}...")

    def __enter__(self) -> "Progress":
        if self._status is not None:
            self._status.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)

    def event(self, kind: str, action: Any) -> None:
        if self._quiet:
            return
        with self._lock:
            if kind == "done":
                self._done += 1
                if self._status is not None:
                    self._status.update(f"{self._verb}: {self._done} done")
                if action.action == "unchanged" or not self._lines:
                    return
                line = f"  {_SYMBOLS.get(action.action, '?'):>2} {action.action:<9} {action.type}  {action.label}"
                if self._status is not None:
                    self._console.print(line, highlight=False, markup=False)
                else:
                    print(line, file=sys.stderr, flush=True)
            elif self._status is not None:
                self._status.update(f"{self._verb}: {self._done} done; {kind} {action.type} {action.name}")


def print_outcome(outcome: Any, as_json: bool, cli: str) -> None:
    """The result table (or JSON) of ``up``/``destroy`` on stdout, then the smoke checks."""
    if as_json:
        json.dump(outcome.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)
    where = "the embedded emulator" if outcome.embedded else "the moto server"
    if outcome.note:
        console.print(f"note: {outcome.note}", markup=False)
    shown = [a for a in outcome.actions if a.action != "unchanged"] if outcome.command == "up" else outcome.actions
    if outcome.command == "up" and not outcome.changed:
        console.print(f"{outcome.project}-{outcome.env}: no changes; {len(outcome.actions)} resources up to date at "
                      f"{where} {outcome.target}", markup=False)
    else:
        title = f"{outcome.project}-{outcome.env} at {where} {outcome.target}"
        columns = ["spec entity", "type", "AWS name or ARN", "action"]
        rows = [[a.entity or "-", a.type, a.label, a.action + (f" ({a.note})" if a.note else "")] for a in shown]
        if console.is_terminal:
            table = Table(title=title, title_justify="left")
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*row)
            console.print(table)
        else:  # a log (CI): aligned columns, one line per resource (rich takes 0.6 s for 1,500 rows)
            sys.stdout.write(f"{title}\n{text_table(columns, rows)}\n")
        counts = ", ".join(f"{n} {k}" for k, n in sorted(outcome.counts().items()))
        console.print(f"{counts} in {outcome.seconds:.1f}s{_phases(outcome.phases)}", markup=False)
    if outcome.stacks:
        console.print(f"stacks: {', '.join(outcome.stacks)}", markup=False)
    failed = [c for c in outcome.checks if not c.ok]
    console.print(f"checks: {len(outcome.checks) - len(failed)}/{len(outcome.checks)} passed"
                  + ("" if outcome.command == "up" else " (every resource gone)" if not failed else ""), markup=False)
    for check in failed:
        console.print(f"  FAILED {check.name}: {check.detail}", markup=False)
    if outcome.command == "up" and not failed:
        console.file.flush()
        # a command to copy: never wrapped (rich would break it at the console's width)
        sys.stdout.write(f"inspect: {cli} sagemaker list-endpoints\n")


def _phases(phases: dict[str, float]) -> str:
    """``: publish 0.4s, apply 60.2s, smoke checks 3.1s (after the spec check, 9.0s)``, or ""."""
    parts = [f"{k.replace('_', ' ')} {v:.1f}s" for k, v in phases.items() if k != "check"]
    if not parts:
        return ""
    before = f" (after the spec check, {phases['check']:.1f}s)" if "check" in phases else ""
    return f": {', '.join(parts)}{before}"


def _target(spec: Path, endpoint_url: Optional[str]) -> Any:
    from modelops.local.server import Target

    return Target.for_project(project_root(spec), endpoint_url)


@app.command("up")
def up_command(spec: Path = SpecArg, env: str = EnvOpt, endpoint_url: Optional[str] = UrlOpt,
               as_json: bool = JsonOpt, stack: Optional[str] = StackOpt) -> None:
    """Provision one environment to the local AWS emulator; apply only what changed.

    Creates, updates, replaces and deletes so that the emulator holds exactly what the spec
    declares, then describes every resource back. Exit 0 done, 1 failed, 2 invalid input.
    Every stack of the environment, the shared one first, or the one ``--stack`` names.

    Example: ``modelops up --env dev``
    """
    started = time.monotonic()  # the spec check's clock: from here, the imports of the apply included
    from modelops.local.apply import up
    from modelops.local.server import check_loopback

    if endpoint_url is not None:
        check_loopback(endpoint_url)
    targets: list[Any] = []

    def registry(environment: Any) -> Any:  # only asked when a pinned version is not built here
        from modelops.registry import Registry

        targets.append(_target(spec, endpoint_url))
        return Registry.at(targets[0].clients(environment.region), environment.project, targets[0].url)

    resolved = prepare(spec, env, registry=registry)
    checked = time.monotonic() - started
    target = targets[0] if targets else _target(spec, endpoint_url)
    with Progress(f"applying {resolved.project}-{env}", quiet=as_json) as progress:
        outcome = up(resolved, target, project_root(spec), stack=stack, on_event=progress.event)
    # the spec check: imports, load, schema, the mandatory policies (a render), artifacts attached
    outcome.phases = {"check": checked, **outcome.phases}
    print_outcome(outcome, as_json, target.cli_prefix(resolved.region))
    failed = [c for c in outcome.checks if not c.ok]
    if failed:
        raise ApplyError(f"{len(failed)} smoke check(s) failed after up: {failed[0].name}: {failed[0].detail}")


@app.command("destroy")
def destroy_command(spec: Path = SpecArg, env: str = EnvOpt, endpoint_url: Optional[str] = UrlOpt,
                    as_json: bool = JsonOpt, stack: Optional[str] = StackOpt,
                    empty_buckets: bool = typer.Option(
                        False, "--empty-buckets",
                        help="Also delete objects ModelOps did not put in its buckets (data capture, uploads).")) -> None:
    """Remove everything ``modelops up`` made for one environment, dependants first.

    Protected resources (``protect: true`` in the overlay) are refused: nothing is destroyed.
    Every stack, the group stacks first and the shared one last, or the one ``--stack`` names.

    Example: ``modelops destroy --env dev``
    """
    from modelops.spec.envs import load_environment
    from modelops.local.apply import destroy, nothing_to_destroy
    from modelops.local.server import check_loopback

    if endpoint_url is not None:
        check_loopback(endpoint_url)
    if not spec.exists():
        raise UsageError(f"{spec}: no such spec file; pass the path of your modelops.yaml")
    resolved = load_environment(spec, env)
    # no emulator running: nothing of ours exists, and starting one to find that out would leave it running
    outcome = nothing_to_destroy(resolved, project_root(spec), stack) if endpoint_url is None else None
    cli = ""
    if outcome is None:
        target = _target(spec, endpoint_url)
        cli = target.cli_prefix(resolved.region)
        with Progress(f"destroying {resolved.project}-{env}", quiet=as_json) as progress:
            outcome = destroy(resolved, target, project_root(spec), stack=stack, on_event=progress.event,
                              empty_buckets=empty_buckets)
    if not outcome.actions and not as_json:
        print(f"{resolved.project}-{env}: nothing to destroy" + (f" ({outcome.note})" if outcome.note else ""))
        return
    print_outcome(outcome, as_json, cli)
    failed = [c for c in outcome.checks if not c.ok]
    if failed:
        raise ApplyError(f"{len(failed)} resource(s) still exist after destroy: {failed[0].name}")


@local_app.command("status")
def local_status(spec: Path = SpecArg, as_json: bool = JsonOpt) -> None:
    """Show the embedded emulator of this project (pid, URL), if one is running.

    Example: ``modelops local status``
    """
    from modelops.local.server import status

    info = status(project_root(spec))
    if as_json:
        json.dump({"running": info is not None, **(info or {})}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    if info is None:
        print("the local emulator is not running (`modelops up` starts it)")
        return
    print(f"the local emulator is running: {info['url']} (pid {info['pid']}, since {info.get('started', '?')})")
    print(f"  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --endpoint-url {info['url']} "
          f"--ca-bundle {info['ca_bundle']} s3api list-buckets")


@local_app.command("stop")
def local_stop(spec: Path = SpecArg) -> None:
    """Stop the embedded emulator of this project (everything in it is gone).

    Example: ``modelops local stop``
    """
    from modelops.local.server import stop

    info = stop(project_root(spec))
    if info is None:
        print("the local emulator was not running")
        return
    print(f"stopped the local emulator at {info['url']} (pid {info['pid']})")
