"""``modelops validate`` and ``modelops show``: the spec, checked and resolved.

Example::

    $ modelops validate --all-envs
    ✓ modelops.yaml is valid
      dev      1 datasets  1 models  4 monitors
    $ modelops show --env prod --json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
import yaml

from modelops.cli.app import app
from modelops.spec.document import monitor_document, spec_document
from modelops.spec.envs import check, list_environments, load_environment
from modelops.errors import UsageError
from modelops.secrets import MASK
from modelops.spec.loader import display_name

__all__ = ["mask_secrets", "show", "validate"]

DEFAULT_SPEC = Path("modelops.yaml")

SpecArg = typer.Argument(DEFAULT_SPEC, help="The spec file.", show_default=True)


def _existing_envs(spec: Path) -> list[str]:
    return list_environments(spec)


@app.command()
def validate(
    spec: Path = SpecArg,
    env: Optional[str] = typer.Option(None, "--env", "-e", help="Validate one environment (default: all)."),
    all_envs: bool = typer.Option(False, "--all-envs", help="Validate every environment (the default)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    policies: bool = typer.Option(
        True, "--policies/--no-policies",
        help="Also render every environment and check the built-in policies (the default). "
        "--no-policies checks the spec only (schema, references, semantics): fast, for pre-commit hooks.",
    ),
) -> None:
    """Check the spec and its environment overlays: schema, references, policies.

    Exit 0 when valid, 2 with every problem (one line each, in file order) when not.
    The policy check renders each environment through the per-entity render cache
    (``.modelops/cache``): after a one-model change only that model is rendered again.

    Example: ``modelops validate modelops.yaml --env prod`` or, in a pre-commit hook on a
    large spec, ``modelops validate --no-policies``
    """
    if env is not None and all_envs:
        raise UsageError("--env and --all-envs are exclusive; pass one of them")
    envs = [env] if env is not None else None
    problems, resolved = check(spec, envs)
    if not problems and policies:  # mandatory findings of the built-in policies (modelops.checks.policy), one line each
        # numpy (attaching artifacts), then Pulumi only when rendering: neither for --no-policies (see cli.app)
        from modelops.checks.mandatory import as_problems, kept_mandatory

        # environments unchanged since the last check: their kept findings, nothing rendered
        kept = kept_mandatory(resolved)
        problems = as_problems(resolved, kept)
        rest = {name: e for name, e in resolved.items() if name not in kept}
        if rest:
            from modelops.checks.pipeline import check_policies  # Pulumi: only when rendering (see cli.app)

            problems = sorted(set(problems) | set(check_policies(rest)))
    if problems:
        if as_json:
            json.dump({"valid": False, "problems": [p.to_dict() for p in problems]}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            for problem in problems:
                print(problem, file=sys.stderr)
        raise typer.Exit(2)
    names = list(resolved)
    counts = {name: {"datasets": len(e.datasets), "models": len(e.models), "monitors": len(e.monitors)} for name, e in resolved.items()}
    if as_json:
        json.dump({"valid": True, "spec": display_name(spec), "environments": counts}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    print(f"✓ {display_name(spec)} is valid")
    width = max(len(n) for n in names)
    for name, count in counts.items():
        print(f"  {name:<{width}}  {count['datasets']} datasets  {count['models']} models  {count['monitors']} monitors")


def mask_secrets(data: Any) -> Any:
    """A copy of ``Environment.to_dict()`` data with every https subscription URL masked."""
    if isinstance(data, dict):
        return {key: ([MASK for _ in value] if key == "https" and isinstance(value, (list, tuple)) else mask_secrets(value)) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [mask_secrets(item) for item in data]
    return data


@app.command()
def show(
    spec: Path = SpecArg,
    env: Optional[str] = typer.Option(None, "--env", "-e", help="The environment (required when there are several)."),
    as_json: bool = typer.Option(False, "--json", help="Print the same document as JSON."),
    show_secrets: bool = typer.Option(False, "--show-secrets", help="With --json: print https subscription URLs unmasked."),
) -> None:
    """Print the resolved spec of one environment, every default filled in, in the spec's
    own language: the keys and units of docs/spec.md (``period: 1h``, ``above: 2%``,
    ``notifications:``), the overlay merged; it is itself a valid spec. The monitors that
    ``default_monitors`` adds follow as comments. ``--json`` prints the same document as JSON
    (same keys, same units), for scripts.

    https subscription URLs are secrets: always masked in human output, and in --json
    unless --show-secrets.

    Example: ``modelops show --env prod --json``
    """
    if env is None:
        available = _existing_envs(spec)
        if len(available) != 1:
            raise UsageError(f"pass --env: this spec has several environments: {', '.join(available)}")
        env = available[0]
    if show_secrets and not as_json:
        raise UsageError("--show-secrets only applies to --json output")
    resolved = load_environment(spec, env)
    data = spec_document(resolved)
    if as_json:
        json.dump(data if show_secrets else mask_secrets(data), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    overlay = f", overlay {display_name(resolved.overlay_file)}" if resolved.overlay_file else ""
    spec_dir = Path(resolved.spec_file).parent
    included = (", including " + ", ".join(os.path.relpath(f, spec_dir) for f in resolved.include_files)
                if resolved.include_files else "")
    sys.stdout.write(f"# {display_name(spec)}{included}, environment {env}{overlay}: resolved, every default filled in\n")
    sys.stdout.write(yaml.safe_dump(mask_secrets(data), sort_keys=False, allow_unicode=True, default_flow_style=False))
    defaults = {name: monitor_document(m) for name, m in resolved.monitors.items() if m.default}
    if defaults:
        # not spec keys to copy (default_monitors derives them), but alarms that will exist
        sys.stdout.write("# and, from default_monitors: true\n")
        for line in yaml.safe_dump({"monitors": defaults}, sort_keys=False, default_flow_style=False).splitlines():
            sys.stdout.write(f"#   {line}\n")
