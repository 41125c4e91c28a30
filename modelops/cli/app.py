"""The Typer application every command registers on, and the helpers commands share.

Each command lives in ``modelops/cli/<area>.py`` and registers itself on :data:`app`;
:mod:`modelops.cli.main` imports them all and runs the application.

Command modules import the library at their top, except what pulls in Pulumi (the render,
its cache, reviews, checks, the local apply): those are imported inside the commands that
render, so that ``validate --no-policies``, ``show`` and ``--help`` start without loading
the Pulumi SDK and its AWS provider (about a second). This is the one place where that
trade is made; the library itself imports at module top.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any

import typer

app = typer.Typer(
    name="modelops",
    help="Datasets, models and monitors from one YAML spec, as AWS infrastructure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
local_app = typer.Typer(help="The embedded local AWS emulator.", no_args_is_help=True)
app.add_typer(local_app, name="local")


def existing_target(root: Any, endpoint_url: str | None, use_aws: bool) -> Any:
    """The :class:`~modelops.local.server.Target` a command that reads deployed resources
    talks to: real AWS (``--aws``), a loopback URL (``--endpoint-url``), or the project's
    running local emulator, never started empty (an empty one has nothing to read)."""
    from modelops.errors import UsageError
    from modelops.local.server import REAL_AWS, Target, check_loopback
    from modelops.local.server import endpoint_url as local_endpoint

    if use_aws and endpoint_url:
        raise UsageError("--aws and --endpoint-url exclude each other; give one")
    if use_aws:
        url = REAL_AWS
    elif endpoint_url is not None:
        url = check_loopback(endpoint_url)
    else:
        url = local_endpoint(root, start=False)
    return Target.for_project(root, url, allow_aws=True)


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """Rows as left-aligned columns under their headers: tables for logs and pipes."""
    cells = [list(headers)] + [list(row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def exit_now(code: int) -> None:
    """Exit with ``code`` without tearing the heap down object by object.

    A plan or diff of a large spec leaves millions of objects alive (two rendered graphs,
    the Pulumi SDK's resources); freeing them one by one at interpreter exit takes seconds
    and frees nothing the operating system would not. Output is flushed and exit handlers
    run first; while a non-daemon thread is still working, the normal exit (which waits for
    it) is taken instead.
    """
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()  # what a normal exit runs first: logging, temporary files
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (e.g. `| head`): nothing left to deliver
            pass
    os._exit(code)
