"""``modelops stacks``: the Pulumi stacks one environment deploys as, with their sizes.

Example::

    $ modelops stacks --env dev
    $ modelops stacks --env prod --json
    $ modelops stacks --env dev --write        # (re)write stacks/Pulumi.<stack>.yaml
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer
import yaml

from modelops.cli.app import app, text_table
from modelops.files import atomic_write
from modelops.graph.stacks import DEFAULT_BUDGET, layout, stacks_dir
from modelops.spec.envs import load_environment

__all__ = ["stacks_command", "write_configs"]

DEFAULT_SPEC = Path("modelops.yaml")


def write_configs(spec: Path, env_name: str, *, budget: int = DEFAULT_BUDGET) -> list[Path]:
    """Write the Pulumi config of every stack of ``env_name`` into ``stacks/`` (keys of
    ours updated, any other key kept); return the files written.

    A group's partition count, once written, is what every later layout reads (the
    partition stays stable): only an explicit edit of ``modelops:partitions`` changes it.
    """
    env = load_environment(spec, env_name)
    lay = layout(env, budget=budget)
    directory = stacks_dir(env)
    spec_rel = os.path.relpath(spec.resolve(), spec.resolve().parent)
    written = []
    for spec_stack in lay.stacks:
        path = directory / f"Pulumi.{spec_stack.name}.yaml"
        current = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
        current = current if isinstance(current, dict) else {}
        config = dict(current.get("config") or {})
        config.update(spec_stack.config(env, spec_rel)["config"])
        if path.exists() and config == (current.get("config") or {}):
            continue
        atomic_write(path, yaml.safe_dump({**current, "config": config}, sort_keys=False))
        written.append(path)
    return written


@app.command("stacks")
def stacks_command(
    spec: Path = typer.Argument(DEFAULT_SPEC, help="The spec file."),
    env: str = typer.Option(..., "--env", "-e", help="The environment."),
    as_json: bool = typer.Option(False, "--json", help="Print the stacks as JSON."),
    write: bool = typer.Option(False, "--write", help="Write their stack configs into stacks/ (Pulumi.<stack>.yaml)."),
    budget: int = typer.Option(DEFAULT_BUDGET, "--budget", min=1, help="Resources per stack a group stays under."),
    changed_since: Optional[str] = typer.Option(
        None, "--changed-since", help="Only the stacks the change from this git ref (or directory) touches."),
) -> None:
    """List the stacks an environment deploys as: the shared one, then one per owner and partition.

    Resource counts come from the environment's render (the render cache makes a second
    run cheap; a model not built yet renders with a placeholder artifact, as in ``diff``). A stack over the budget is flagged: raise its group's ``modelops:partitions``.

    With ``--changed-since BASE``, only the stacks that change touches (what a deploy runs
    ``pulumi up`` on; see ``modelops diff``), and under ``removed`` the stacks it empties.

    Example: ``modelops stacks --env prod``, ``modelops stacks --env dev --changed-since HEAD~1 --json``
    """
    # the render pulls in Pulumi (see cli.app)
    from modelops.graph.cache import cached_render
    from modelops.graph.split import stack_rows
    from modelops.ml.placeholders import attach_without_training

    written = write_configs(spec, env, budget=budget) if write else []
    resolved = load_environment(spec, env)
    lay = layout(resolved, budget=budget)
    root = spec.resolve().parent
    with tempfile.TemporaryDirectory(prefix="modelops-stacks-") as scratch:
        # counts need no trained model: an unbuilt one renders with a placeholder artifact, as in diff
        attached, _ = attach_without_training(resolved, root, Path(scratch))
        rows = stack_rows(cached_render(attached, root / ".modelops" / "cache", collect=False), lay, budget)
    removed: list[str] = []
    if changed_since is not None:
        from modelops.review.diff import diff  # renders both sides (see cli.app)

        touched = {s for e in diff(spec, changed_since, envs=[env]).envs for s in e.stacks}
        removed = sorted(touched - {r["stack"] for r in rows})
        rows = [r for r in rows if r["stack"] in touched]
    if as_json:
        json.dump({"env": env, "budget": budget, "stacks": rows, "removed": removed,
                   "written": [str(p) for p in written]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    table: list[list[str]] = [
        [r["stack"], r["owner"] if r["group"] != "shared" else "(shared)", f"{r['partition']}/{r['partitions']}",
         str(r["datasets"]), str(r["models"]), str(r["monitors"]), str(r["resources"]) + (" OVER" if r["over_budget"] else "")]
        for r in rows
    ]
    print(text_table(["stack", "owner", "partition", "datasets", "models", "monitors", "resources"], table))
    over = [r for r in rows if r["over_budget"]]
    for r in over:
        print(f"{r['stack']}: {r['resources']} resources, over the budget of {budget}: raise modelops:partitions "
              f"in stacks/{r['config']} (one more partition moves about 1/{r['partitions'] + 1} of the group)")
    for name in removed:
        print(f"{name}: no longer in the environment; its resources are deleted by `pulumi destroy --stack {name}`")
    for path in written:
        print(f"wrote {path}")

